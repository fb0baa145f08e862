import { runAsync, runSync, type Op } from '../bridge';
import type { Channel } from './channel';
import { GROW_IN_PLACE_FROM, GrowingBuffer } from './growing-buffer';

/** The most one fill of a read() to EOF asks for. */
const FILL_BYTES = 1 << 20;

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
