import { StringDecoder } from 'node:string_decoder';
import { runAsync, runSync, type Op } from '../bridge';
import { IncompleteReadError, SSHException } from '../errors';
import type { Channel } from './channel';
import { GROW_IN_PLACE_FROM, GrowingBuffer } from './growing-buffer';

/** The most one fill of a read() to EOF asks for. */
const FILL_BYTES = 1 << 20;

/** What readUntil looks for: text or bytes as they are, or a RegExp over the text (UTF-8). */
export type Separator = string | Buffer | RegExp;

/** readUntil's default `limit`: bytes searched before it gives up (the data stays unread). */
const READ_UNTIL_LIMIT = 4 << 20;

/**
 * A file-like object's read side: Python's BufferedFile semantics over a byte source. Unread
 * data is kept as the chunks the source gave, and joined once when it is taken: reading a large
 * `read(n)` or a long line copies each byte once, however many chunks it spans.
 */
abstract class BufferedReader {
  /** Unread data, oldest first; `buffered` bytes in all. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  private eof = false;
  closed = false;
  constructor(readonly mode: string) {}

  /** One chunk from the source: empty at EOF. */
  protected abstract fillOp(): Op<Buffer>;

  /**
   * Reads from the source straight into `target` (up to its length); 0 at EOF. Optional: a
   * source that has it saves a read() to EOF one copy of every byte.
   */
  protected fillIntoOp?(target: Uint8Array): Op<number>;

  /** Adds one chunk from the source; false at EOF. */
  private *moreOp(): Op<boolean> {
    if (this.eof) return false;
    const chunk = yield* this.fillOp();
    if (chunk.length === 0) {
      this.eof = true;
      return false;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    return true;
  }

  /** Removes and returns the first `n` (at most `buffered`) unread bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0 || !first) return Buffer.alloc(0);
    this.buffered -= n;
    if (first.length >= n) {
      // Chunks are the source's own fresh buffers: a view of one aliases nothing else.
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; ) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }

  /** Reads `size` bytes, or everything to EOF when `size` is omitted or negative. */
  read(size?: number | null): Buffer {
    return runSync(this.readOp(size));
  }

  /** The promise twin of read. */
  readAsync(size?: number | null): Promise<Buffer> {
    return runAsync(this.readOp(size));
  }

  /** @internal the body of read and readAsync (SSHClient.run runs it). */
  *readOp(size?: number | null): Op<Buffer> {
    if (size === undefined || size === null || size < 0) return yield* this.readAllOp();
    while (this.buffered < size && (yield* this.moreOp()));
    return this.take(Math.min(size, this.buffered));
  }

  /**
   * Everything to EOF. A small output stays chunks joined once; a large one goes into one
   * buffer that grows in place, each page touched once. An error (a timeout) keeps what was
   * read unread, for the next call, as the chunk path does.
   */
  private *readAllOp(): Op<Buffer> {
    while (this.buffered < GROW_IN_PLACE_FROM && (yield* this.moreOp()));
    if (this.eof) return this.take(this.buffered);
    const all = new GrowingBuffer();
    for (const c of this.chunks.splice(0)) all.append(c);
    this.buffered = 0;
    try {
      for (;;) {
        const room = this.fillIntoOp ? all.room(FILL_BYTES) : null;
        if (room) {
          const n = yield* this.fillIntoOp!(room);
          if (n === 0) break;
          all.commit(n);
        } else {
          if (!(yield* this.moreOp())) break;
          all.append(this.chunks.pop()!);
          this.buffered = 0;
        }
      }
    } catch (e) {
      const kept = all.finish();
      if (kept.length) this.chunks.unshift(kept);
      this.buffered += kept.length;
      throw e;
    }
    this.eof = true;
    return all.finish();
  }

  /** One line including its '\n' (text unless the mode has 'b'); '' / empty at EOF. */
  readline(size?: number | null): string | Buffer {
    return runSync(this.readlineOp(size));
  }

  /** The promise twin of readline. */
  readlineAsync(size?: number | null): Promise<string | Buffer> {
    return runAsync(this.readlineOp(size));
  }

  private *readlineOp(size?: number | null): Op<string | Buffer> {
    const limit = size === undefined || size === null || size < 0 ? Infinity : size;
    // Each chunk is searched once: `scanned` bytes (whole chunks) hold no newline.
    let scanned = 0;
    let next = 0;
    let end = -1;
    for (;;) {
      while (end < 0 && next < this.chunks.length && scanned < limit) {
        const c = this.chunks[next++];
        const nl = c.indexOf(0x0a);
        if (nl >= 0) end = scanned + nl + 1;
        else scanned += c.length;
      }
      if (end >= 0 || scanned >= limit || !(yield* this.moreOp())) break;
    }
    const line = this.take(Math.min(end >= 0 ? end : this.buffered, limit));
    return this.mode.includes('b') ? line : line.toString('utf8');
  }

  /** Every remaining line; with `sizehint`, whole lines until they total at least that much (as Paramiko's). */
  readlines(sizehint: number | null = null): Array<string | Buffer> {
    return runSync(this.readlinesOp(sizehint));
  }

  /** The promise twin of readlines. */
  readlinesAsync(sizehint: number | null = null): Promise<Array<string | Buffer>> {
    return runAsync(this.readlinesOp(sizehint));
  }

  private *readlinesOp(sizehint: number | null): Op<Array<string | Buffer>> {
    const out: Array<string | Buffer> = [];
    let total = 0;
    for (;;) {
      const line = yield* this.readlineOp();
      if (line.length === 0) break;
      out.push(line);
      total += line.length;
      if (sizehint !== null && sizehint > 0 && total >= sizehint) break;
    }
    return out;
  }

  /**
   * Beyond Paramiko (AsyncSSH's readuntil): everything up to and including the first
   * `separator` (a string or Buffer as it is, a RegExp over the text; or a list of them: the one
   * that ends first wins), as text unless the mode has 'b'. Waits as `read` does (the channel's
   * timeout: SocketTimeout, and what came stays unread for the next call). At EOF without a
   * match: IncompleteReadError with what came as `partial` (consumed). No match within `limit`
   * bytes (4 MiB): SSHException, the data left unread.
   */
  readUntil(separator: Separator | Separator[], options: { limit?: number } = {}): string | Buffer {
    return runSync(this.readUntilOp(separator, options.limit ?? READ_UNTIL_LIMIT));
  }

  /** The promise twin of readUntil. */
  readUntilAsync(separator: Separator | Separator[], options: { limit?: number } = {}): Promise<string | Buffer> {
    return runAsync(this.readUntilOp(separator, options.limit ?? READ_UNTIL_LIMIT));
  }

  private *readUntilOp(separator: Separator | Separator[], limit: number): Op<string | Buffer> {
    const list = Array.isArray(separator) ? separator : [separator];
    if (!list.length || list.some((s) => !(s instanceof RegExp) && s.length === 0)) throw new TypeError('readUntil needs non-empty separators');
    const fixed = list.filter((s): s is string | Buffer => !(s instanceof RegExp)).map((s) => Buffer.from(s));
    const patterns = list.filter((s): s is RegExp => s instanceof RegExp).map((r) => new RegExp(r.source, r.flags.replace(/[gy]/g, '')));
    const longest = Math.max(0, ...fixed.map((f) => f.length));
    // Each pass looks only at what came since the last: fixed separators in the new bytes (and
    // the few before them a separator could start in), patterns over the text decoded so far,
    // extended by the new bytes. Nothing is joined or decoded twice, so a prompt that comes
    // after megabytes of output costs a pass over them, not one per chunk.
    const decoder = patterns.length ? new StringDecoder('utf8') : null;
    let text = '';
    let searched = 0;
    for (;;) {
      let end = -1;
      if (fixed.length) {
        const from = Math.max(0, searched - longest + 1);
        const fresh = this.peek(from, this.buffered);
        for (const f of fixed) {
          const at = fresh.indexOf(f);
          if (at >= 0 && (end < 0 || from + at + f.length < end)) end = from + at + f.length;
        }
      }
      if (decoder) {
        text += decoder.write(this.peek(searched, this.buffered));
        for (const p of patterns) {
          const m = p.exec(text);
          if (!m) continue;
          const at = byteOffsetOf(this.peek(0, this.buffered), m.index + m[0].length);
          if (end < 0 || at < end) end = at;
        }
      }
      if (end >= 0) {
        const out = this.take(end);
        return this.mode.includes('b') ? out : out.toString('utf8');
      }
      searched = this.buffered;
      if (searched >= limit) throw new SSHException(`readUntil: no separator in the first ${searched} bytes (limit ${limit}); they stay unread`);
      if (!(yield* this.moreOp())) {
        const rest = this.take(this.buffered);
        throw new IncompleteReadError(this.mode.includes('b') ? rest : rest.toString('utf8'), `a separator (${list.map(describe).join(', ')})`);
      }
    }
  }

  /**
   * Beyond Paramiko (AsyncSSH's readexactly): `n` bytes, waiting for them as `read` does; at EOF
   * before them, IncompleteReadError with what came as `partial` (consumed).
   */
  readExactly(n: number): Buffer {
    return runSync(this.readExactlyOp(n));
  }

  /** The promise twin of readExactly. */
  readExactlyAsync(n: number): Promise<Buffer> {
    return runAsync(this.readExactlyOp(n));
  }

  private *readExactlyOp(n: number): Op<Buffer> {
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`readExactly needs a byte count, not ${n}`);
    const got = yield* this.readOp(n);
    if (got.length < n) throw new IncompleteReadError(got, `${n} bytes`);
    return got;
  }

  /** Unread bytes `from` to `to`, left unread (a view when they lie in one chunk). */
  private peek(from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    let at = 0;
    for (const c of this.chunks) {
      const lo = Math.max(from, at);
      const hi = Math.min(to, at + c.length);
      if (lo < hi) parts.push(c.subarray(lo - at, hi - at));
      at += c.length;
      if (at >= to) break;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Reads up to `buff.length` bytes into `buff`; returns how many (0 at EOF). */
  readinto(buff: Uint8Array): number {
    const data = this.read(buff.length);
    buff.set(data);
    return data.length;
  }

  *[Symbol.iterator](): Iterator<string | Buffer> {
    for (;;) {
      const line = this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }

  /** `for await (const line of stdout)`: the lines, read without blocking the event loop. */
  async *[Symbol.asyncIterator](): AsyncIterator<string | Buffer> {
    for (;;) {
      const line = await this.readlineAsync();
      if (line.length === 0) return;
      yield line;
    }
  }
}

/**
 * Where in `bytes` the first `chars` UTF-16 units of its UTF-8 decoding end: the shortest prefix
 * that decodes to at least that many. Exact for invalid bytes too (each decodes to one U+FFFD, so
 * re-encoding the text would count three bytes for one).
 */
function byteOffsetOf(bytes: Buffer, chars: number): number {
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bytes.toString('utf8', 0, mid).length >= chars) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function describe(s: Separator): string {
  return s instanceof RegExp ? String(s) : JSON.stringify(Buffer.isBuffer(s) ? s.toString('latin1') : s);
}

/**
 * Paramiko's ChannelFile: `read()` gives bytes, `readline()` and iteration give text (UTF-8)
 * unless the mode has 'b'. Closing it only flushes; the channel lives on (`stdout.channel`).
 */
export class ChannelFile extends BufferedReader {
  constructor(
    readonly channel: Channel,
    mode = 'r',
    readonly bufsize = -1,
  ) {
    super(mode);
  }

  protected fillOp(): Op<Buffer> {
    return this.channel.recvOp(1 << 20);
  }

  protected override fillIntoOp(target: Uint8Array): Op<number> {
    return this.channel.recvIntoOp(target, 0);
  }

  write(data: string | Buffer): void {
    this.channel.sendall(data);
  }

  /** The promise twin of write. */
  writeAsync(data: string | Buffer): Promise<void> {
    return this.channel.sendallAsync(data);
  }

  writelines(lines: Iterable<string | Buffer>): void {
    for (const l of lines) this.write(l);
  }

  flush(): void {}

  close(): void {
    this.closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Reads the stderr stream (Paramiko's ChannelStderrFile); writes go to stderr (server side). */
export class ChannelStderrFile extends ChannelFile {
  protected override fillOp(): Op<Buffer> {
    return this.channel.recvStderrOp(1 << 20);
  }

  protected override fillIntoOp(target: Uint8Array): Op<number> {
    return this.channel.recvIntoOp(target, 1);
  }

  override write(data: string | Buffer): void {
    this.channel.sendallStderr(data);
  }

  override writeAsync(data: string | Buffer): Promise<void> {
    return this.channel.sendallStderrAsync(data);
  }
}

/** The command's stdin (Paramiko's ChannelStdinFile): `close()` sends EOF to the command. */
export class ChannelStdinFile extends ChannelFile {
  override close(): void {
    runSync(this.closeOp());
  }

  /** The promise twin of close: EOF to the command, after the data written before it. */
  closeAsync(): Promise<void> {
    return runAsync(this.closeOp());
  }

  private *closeOp(): Op<void> {
    if (this.closed) return;
    super.close();
    yield* this.channel.shutdownWriteOp();
  }
}
