import { runAsync, runSync, toBuffer, type Op } from '../bridge';
import { IOError } from '../errors';
import type { SFTPAttributes } from '../sftp/attributes';
import { FXF } from '../sftp/constants';
import type { SftpStatVFS } from '../sftp/client-core';
import { GROW_IN_PLACE_FROM, GrowingBuffer } from './growing-buffer';
import type { SFTPClient } from './sftp-client';
import { toAttributes, utimeAttrs } from './sftp-client';

/** Python's open() modes as SFTP open flags (Paramiko's table). */
export function parseMode(mode: string): { flags: number; read: boolean; write: boolean; append: boolean; binary: boolean } {
  const m = mode.replace(/[bU]/g, '');
  const plus = m.includes('+');
  let flags: number;
  let read = false;
  let write = false;
  let append = false;
  switch (m.replace('+', '')) {
    case 'r':
      flags = FXF.READ | (plus ? FXF.WRITE : 0);
      read = true;
      write = plus;
      break;
    case 'w':
      flags = FXF.WRITE | FXF.CREAT | FXF.TRUNC | (plus ? FXF.READ : 0);
      write = true;
      read = plus;
      break;
    case 'a':
      flags = FXF.WRITE | FXF.CREAT | FXF.APPEND | (plus ? FXF.READ : 0);
      write = true;
      append = true;
      read = plus;
      break;
    case 'x':
      flags = FXF.WRITE | FXF.CREAT | FXF.EXCL | (plus ? FXF.READ : 0);
      write = true;
      read = plus;
      break;
    default:
      throw new TypeError(`invalid mode ${JSON.stringify(mode)} (r, w, a, x, with + and b)`);
  }
  return { flags, read, write, append, binary: mode.includes('b') };
}

/** SFTPFile.check's optional arguments as an options object. */
export interface CheckOptions {
  offset?: number;
  length?: number;
  blockSize?: number;
}

/** check()'s optional arguments: positional numbers, then possibly an options object (its keys win). */
function checkOptions(args: Array<number | CheckOptions | undefined>): Required<CheckOptions> {
  const names = ['offset', 'length', 'blockSize'] as const;
  const out: Required<CheckOptions> = { offset: 0, length: 0, blockSize: 0 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a !== null && typeof a === 'object') {
      for (const n of names) if (a[n] !== undefined) out[n] = a[n]!;
      break;
    }
    if (a !== undefined) out[names[i]] = a;
  }
  for (const n of names) {
    const v = out[n];
    const max = n === 'blockSize' ? 0xffffffff : Number.MAX_SAFE_INTEGER;
    if (!Number.isInteger(v) || v < 0 || v > max) throw new TypeError(`check: ${n} must be an integer from 0 to ${max}, not ${String(v)}`);
  }
  return out;
}

/** Read-ahead when the file is not given a larger buffer. */
const DEFAULT_BUFSIZE = 256 * 1024;
/** Read size once prefetch() was called: large ranges with many requests in flight. */
const PREFETCH_CHUNK = 8 * 1024 * 1024;

/**
 * Paramiko's SFTPFile: a remote file, read and written through the worker. Reads are buffered
 * (with prefetch, in large pipelined ranges); writes are buffered, and with `setPipelined`
 * sent without waiting for each acknowledgement (an error then surfaces at the next call on the
 * file, at the latest at `close`).
 */
export class SFTPFile implements Iterable<string | Buffer> {
  private pos = 0;
  private readBuf: Buffer = Buffer.alloc(0);
  /** File offset of readBuf[0]. */
  private readBufAt = 0;
  /** The READs that filled readBuf met the end of the file where it ends (see moreOp). */
  private readBufEof = false;
  private writeBuf: Buffer[] = [];
  private writeBufLen = 0;
  private pipelined = false;
  private readAhead: number;
  private closed = false;
  private readonly mode: ReturnType<typeof parseMode>;
  /** Write buffering as Paramiko's: 0 none (the default), 1 line by line, more: that many bytes. */
  private readonly bufsize: number;

  constructor(
    readonly sftp: SFTPClient,
    private readonly handle: Buffer,
    mode = 'r',
    bufsize = -1,
    readonly name = '',
  ) {
    this.mode = parseMode(mode);
    // Paramiko does no write buffering by default ("writes will get buffered in a way that will
    // probably confuse people"): each write is on the server when it returns (or, pipelined, sent).
    this.bufsize = bufsize < 0 ? 0 : bufsize;
    this.readAhead = this.bufsize > 1 ? this.bufsize : DEFAULT_BUFSIZE;
  }

  /** @internal SFTPClient.open's last step: a file opened to append starts at its end. */
  *openedOp(): Op<this> {
    if (this.mode.append) this.pos = Number((yield* this.statOp()).st_size ?? 0);
    return this;
  }

  /** A worker call on this file; its errors name the file, as the path-based calls' do. */
  private call<T = unknown>(method: string, args: Record<string, unknown>): T {
    return runSync(this.callOp<T>(method, args));
  }

  private *callOp<T = unknown>(method: string, args: Record<string, unknown>): Op<T> {
    try {
      return yield* this.sftp.callOp<T>(method, args);
    } catch (e) {
      const err = e as IOError & { path?: string };
      if (err instanceof IOError && this.name && err.path === undefined) {
        err.path = this.name;
        err.filename ??= this.name;
        err.message = `${err.message} '${this.name}'`;
      }
      throw e;
    }
  }

  private need(): void {
    if (this.closed) throw new IOError('I/O operation on closed file');
  }

  // ---- reading ----

  /**
   * Refills the read buffer from the current position, which the callers have found outside
   * it: what it held is read or skipped, and only unread data is kept (a sequential reader
   * holds one read-ahead, not everything read so far). False at EOF.
   */
  /** `toEnd`: the caller reads to the end of the file (the worker may then stop at its size). */
  private *fillOp(min: number, toEnd = false): Op<boolean> {
    const want = Math.max(min, this.readAhead);
    const r = yield* this.callOp<{ data: Uint8Array; eof: boolean }>('read', { handle: this.handle, offset: this.pos, length: want, toEnd });
    const data = toBuffer(r.data) as Buffer;
    this.readBuf = data;
    this.readBufAt = this.pos;
    this.readBufEof = r.eof;
    return data.length > 0;
  }

  /**
   * fillOp for a read that has used up the buffer, unless this same call filled it and its READs
   * met the end of the file right there: no READ only to hear EOF again (a later call asks anew,
   * so a file that grows is read on). False at EOF.
   */
  private *moreOp(min: number, filledThisCall: boolean, toEnd = false): Op<boolean> {
    if (filledThisCall && this.readBufEof && this.pos === this.readBufAt + this.readBuf.length) return false;
    return yield* this.fillOp(min, toEnd);
  }

  /** Up to `size` bytes (all the rest when null); an empty Buffer at EOF. */
  read(size: number | null = null): Buffer {
    return runSync(this.readOp(size));
  }

  /** The promise twin of read. */
  readAsync(size: number | null = null): Promise<Buffer> {
    return runAsync(this.readOp(size));
  }

  /** @internal the body of the method and of its twin (SFTPClient.putfo/getfo run it). */
  *readOp(size: number | null): Op<Buffer> {
    this.need();
    if (!this.mode.read) throw new IOError('File not open for reading');
    yield* this.flushWritesOp();
    if (size === null || size < 0) return yield* this.readAllOp();
    const limit = size;
    const parts: Buffer[] = [];
    let got = 0;
    let filled = false;
    while (got < limit) {
      const offsetInBuf = this.pos - this.readBufAt;
      if (offsetInBuf < 0 || offsetInBuf >= this.readBuf.length) {
        if (!(yield* this.moreOp(Math.min(limit - got, PREFETCH_CHUNK), filled))) break;
        filled = true;
        continue;
      }
      const take = this.readBuf.subarray(offsetInBuf, offsetInBuf + Math.min(limit - got, this.readBuf.length - offsetInBuf));
      parts.push(take);
      got += take.length;
      this.pos += take.length;
    }
    return parts.length === 1 ? Buffer.from(parts[0]) : Buffer.concat(parts);
  }

  /**
   * The rest of the file. Past GROW_IN_PLACE_FROM it is gathered into one buffer that grows in
   * place (each page touched once); a small file is one copy of what was read, as before.
   *
   * The first request is the file's read-ahead (256 KiB unless bufsize or prefetch said
   * otherwise) and each one answered in full asks four times as much, up to PREFETCH_CHUNK (many
   * READs in flight): a small file costs one request and one that finds its end. Asking 8 MiB at
   * once cost 32 READs and 8 MiB of fresh memory twice, 10-30 ms for a 1 KB file.
   */
  private *readAllOp(): Op<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    let all: GrowingBuffer | null = null;
    const first = this.readAhead;
    let chunk = first;
    let filled = false;
    for (;;) {
      const offsetInBuf = this.pos - this.readBufAt;
      if (offsetInBuf < 0 || offsetInBuf >= this.readBuf.length) {
        if (!(yield* this.moreOp(chunk, filled, true))) break;
        filled = true;
        // A short answer is most likely the end: the next request only has to confirm it.
        chunk = this.readBuf.length >= chunk ? Math.min(chunk * 4, Math.max(PREFETCH_CHUNK, first)) : first;
        continue;
      }
      const take = this.readBuf.subarray(offsetInBuf);
      this.pos += take.length;
      if (all) {
        all.append(take);
        continue;
      }
      parts.push(take);
      got += take.length;
      if (got >= GROW_IN_PLACE_FROM) {
        all = new GrowingBuffer();
        for (const p of parts.splice(0)) all.append(p);
      }
    }
    if (all) return all.finish();
    return parts.length === 1 ? Buffer.from(parts[0]) : Buffer.concat(parts);
  }

  /** One line, with its newline: a string, or a Buffer when the mode has 'b'. */
  readline(size: number | null = null): string | Buffer {
    return runSync(this.readlineOp(size));
  }

  /** The promise twin of readline. */
  readlineAsync(size: number | null = null): Promise<string | Buffer> {
    return runAsync(this.readlineOp(size));
  }

  private *readlineOp(size: number | null): Op<string | Buffer> {
    this.need();
    const parts: Buffer[] = [];
    let got = 0;
    let filled = false;
    for (;;) {
      const offsetInBuf = this.pos - this.readBufAt;
      if (offsetInBuf < 0 || offsetInBuf >= this.readBuf.length) {
        yield* this.flushWritesOp();
        if (!(yield* this.moreOp(this.readAhead, filled))) break;
        filled = true;
        continue;
      }
      const avail = this.readBuf.subarray(offsetInBuf);
      const nl = avail.indexOf(0x0a);
      let n = nl >= 0 ? nl + 1 : avail.length;
      if (size !== null && size >= 0) n = Math.min(n, size - got);
      parts.push(avail.subarray(0, n));
      got += n;
      this.pos += n;
      if ((nl >= 0 && n === nl + 1) || (size !== null && got >= size)) break;
    }
    const line = Buffer.concat(parts);
    return this.mode.binary ? line : line.toString('utf8');
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
    for (let l = yield* this.readlineOp(null); l.length; l = yield* this.readlineOp(null)) {
      out.push(l);
      total += l.length;
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
    for (let l = this.readline(); l.length; l = this.readline()) yield l;
  }

  /** `for await (const line of file)`: the lines, read without blocking the event loop. */
  async *[Symbol.asyncIterator](): AsyncIterator<string | Buffer> {
    for (let l = await this.readlineAsync(); l.length; l = await this.readlineAsync()) yield l;
  }

  /** Reads `[offset, length]` ranges, many requests in flight; returns the data of each. */
  readv(chunks: Array<[number, number]>): Buffer[] {
    return runSync(this.readvOp(chunks));
  }

  /** The promise twin of readv. */
  readvAsync(chunks: Array<[number, number]>): Promise<Buffer[]> {
    return runAsync(this.readvOp(chunks));
  }

  private *readvOp(chunks: Array<[number, number]>): Op<Buffer[]> {
    this.need();
    yield* this.flushWritesOp();
    return (yield* this.callOp<Uint8Array[]>('readv', { handle: this.handle, ranges: chunks })).map((b) => toBuffer(b) as Buffer);
  }

  /**
   * Paramiko's prefetch: from now on reads fetch large ranges with many requests in flight, so
   * reading the rest of the file streams. (`fileSize` is accepted for Paramiko's signature.)
   */
  prefetch(_fileSize: number | null = null): void {
    this.readAhead = PREFETCH_CHUNK;
  }

  // ---- writing ----

  /** Buffers `data` (sent when the buffer fills, on flush, seek, read or close). */
  write(data: string | Buffer | Uint8Array): number {
    return runSync(this.writeOp(data));
  }

  /** The promise twin of write. */
  writeAsync(data: string | Buffer | Uint8Array): Promise<number> {
    return runAsync(this.writeOp(data));
  }

  /** @internal the body of the method and of its twin (SFTPClient.putfo/getfo run it). */
  *writeOp(data: string | Buffer | Uint8Array): Op<number> {
    this.need();
    if (!this.mode.write) throw new IOError('File not open for writing');
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    this.writeBuf.push(buf);
    this.writeBufLen += buf.length;
    const lineDone = this.bufsize === 1 && buf.includes(0x0a);
    if (this.bufsize <= 1 ? this.bufsize === 0 || lineDone : this.writeBufLen >= this.bufsize) yield* this.flushWritesOp();
    return buf.length;
  }

  writelines(lines: Iterable<string | Buffer>): void {
    for (const l of lines) this.write(l);
  }

  private flushWrites(): void {
    runSync(this.flushWritesOp());
  }

  private *flushWritesOp(): Op<void> {
    if (!this.writeBufLen) return;
    const data = this.writeBuf.length === 1 ? this.writeBuf[0] : Buffer.concat(this.writeBuf);
    this.writeBuf = [];
    this.writeBufLen = 0;
    // Data read ahead over this range is stale now.
    this.readBuf = Buffer.alloc(0);
    this.readBufEof = false;
    // Append mode: the server writes at the end whatever the offset; the position follows it.
    if (this.mode.append) this.pos = Number((yield* this.fstatOp()).st_size ?? this.pos);
    yield* this.callOp('write', { handle: this.handle, offset: this.pos, data, pipelined: this.pipelined });
    this.pos += data.length;
  }

  /**
   * @internal SFTPClient.remoteCopy: the server's handle, once the buffered writes are sent (the
   * worker waits for their acknowledgements). `written`: the server will write into the file,
   * so data read ahead is dropped.
   */
  *serverHandleOp(client: SFTPClient, written: boolean): Op<Buffer> {
    this.need();
    if (this.sftp !== client) throw new TypeError(`remoteCopy: ${this.name || 'the file'} belongs to another SFTPClient`);
    yield* this.flushWritesOp();
    if (written) {
      this.readBuf = Buffer.alloc(0);
      this.readBufEof = false;
    }
    return this.handle;
  }

  /** Sends buffered writes (with pipelining, their acknowledgements may still be pending). */
  flush(): void {
    runSync(this.flushOp());
  }

  /** The promise twin of flush. */
  flushAsync(): Promise<void> {
    return runAsync(this.flushOp());
  }

  private *flushOp(): Op<void> {
    this.need();
    yield* this.flushWritesOp();
  }

  /** Writes stop waiting for each acknowledgement; errors surface later (at close at the latest). */
  setPipelined(pipelined = true): void {
    this.pipelined = pipelined;
  }

  // ---- position ----

  /** whence: 0 from the start, 1 from the current position, 2 from the end. */
  seek(offset: number, whence = 0): number {
    return runSync(this.seekOp(offset, whence));
  }

  /** The promise twin of seek (it may flush writes, and asks the size for whence 2). */
  seekAsync(offset: number, whence = 0): Promise<number> {
    return runAsync(this.seekOp(offset, whence));
  }

  private *seekOp(offset: number, whence: number): Op<number> {
    this.need();
    yield* this.flushWritesOp();
    if (whence === 1) this.pos += offset;
    else if (whence === 2) this.pos = Number((yield* this.statOp()).st_size ?? 0) + offset;
    else this.pos = offset;
    if (this.pos < 0) throw new IOError('negative seek position', { code: 'EINVAL', errno: 22 });
    return this.pos;
  }

  tell(): number {
    return this.pos + this.writeBufLen;
  }

  seekable(): boolean {
    return true;
  }
  readable(): boolean {
    return this.mode.read;
  }
  writable(): boolean {
    return this.mode.write;
  }

  // ---- attributes ----

  stat(): SFTPAttributes {
    return runSync(this.statOp());
  }

  /** The promise twin of stat. */
  statAsync(): Promise<SFTPAttributes> {
    return runAsync(this.statOp());
  }

  /** @internal the body of the method and of its twin (SFTPClient.putfo/getfo run it). */
  *statOp(): Op<SFTPAttributes> {
    this.need();
    yield* this.flushWritesOp();
    return yield* this.fstatOp();
  }

  /** The server's attributes of the handle, as they are (no flush first). */
  private *fstatOp(): Op<SFTPAttributes> {
    return toAttributes(yield* this.callOp('op', { op: 'fstat', args: { handle: this.handle } }));
  }

  private *setattrOp(attrs: Record<string, number>): Op<void> {
    this.need();
    yield* this.flushWritesOp();
    yield* this.callOp('op', { op: 'fsetstat', args: { handle: this.handle, attrs } });
  }

  chmod(mode: number): void {
    runSync(this.setattrOp({ st_mode: mode }));
  }
  chmodAsync(mode: number): Promise<void> {
    return runAsync(this.setattrOp({ st_mode: mode }));
  }

  chown(uid: number, gid: number): void {
    runSync(this.setattrOp({ st_uid: uid, st_gid: gid }));
  }
  chownAsync(uid: number, gid: number): Promise<void> {
    return runAsync(this.setattrOp({ st_uid: uid, st_gid: gid }));
  }

  /** `times`: [atime, mtime] in seconds, or null for now. */
  utime(times: [number, number] | null = null): void {
    runSync(this.setattrOp(utimeAttrs(times)));
  }
  utimeAsync(times: [number, number] | null = null): Promise<void> {
    return runAsync(this.setattrOp(utimeAttrs(times)));
  }

  truncate(size: number): void {
    runSync(this.setattrOp({ st_size: size }));
  }
  truncateAsync(size: number): Promise<void> {
    return runAsync(this.setattrOp({ st_size: size }));
  }

  /** fsync@openssh.com (beyond Paramiko): the server flushes the file to disk. */
  fsync(): void {
    runSync(this.fsyncOp());
  }

  /** The promise twin of fsync. */
  fsyncAsync(): Promise<void> {
    return runAsync(this.fsyncOp());
  }

  private *fsyncOp(): Op<void> {
    this.need();
    yield* this.flushWritesOp();
    yield* this.callOp('op', { op: 'fsync', args: { handle: this.handle } });
  }

  /** fstatvfs@openssh.com (beyond Paramiko). */
  statvfs(): SftpStatVFS {
    return runSync(this.statvfsOp());
  }

  /** The promise twin of statvfs. */
  statvfsAsync(): Promise<SftpStatVFS> {
    return runAsync(this.statvfsOp());
  }

  private *statvfsOp(): Op<SftpStatVFS> {
    this.need();
    return yield* this.callOp<SftpStatVFS>('op', { op: 'fstatvfs', args: { handle: this.handle } });
  }

  /**
   * Paramiko's check(): the server hashes `length` bytes from `offset` (0: to the end of the
   * file) with the first algorithm of `hashAlgorithm` it supports ("sha1", "md5", or a list:
   * "sha256,sha1"), one digest per `blockSize` bytes (0: one digest; otherwise at least 256),
   * and this returns the digests end to end. It uses the check-file extension, which most
   * servers lack (OpenSSH's among them): IOError (ENOSYS, status OP_UNSUPPORTED) then; an
   * algorithm or block size the server refuses is IOError (status FAILURE), a start past the
   * end of the file EOFError. The optional arguments may come as an options object, in any
   * place after `hashAlgorithm`: `check('sha1', { length: 4096, blockSize: 1024 })`.
   */
  check(hashAlgorithm: string | readonly string[], offset?: number | CheckOptions, length?: number | CheckOptions, blockSize?: number | CheckOptions): Buffer {
    return runSync(this.checkOp(hashAlgorithm, [offset, length, blockSize]));
  }

  /** The promise twin of check. */
  checkAsync(hashAlgorithm: string | readonly string[], offset?: number | CheckOptions, length?: number | CheckOptions, blockSize?: number | CheckOptions): Promise<Buffer> {
    return runAsync(this.checkOp(hashAlgorithm, [offset, length, blockSize]));
  }

  private *checkOp(hashAlgorithm: string | readonly string[], rest: Array<number | CheckOptions | undefined>): Op<Buffer> {
    const o = checkOptions(rest);
    const algorithms = typeof hashAlgorithm === 'string' ? hashAlgorithm : hashAlgorithm.join(',');
    if (!algorithms) throw new TypeError('check: no hash algorithm given');
    this.need();
    yield* this.flushWritesOp();
    const r = yield* this.callOp<{ algorithm: string; hashes: Uint8Array }>('op', { op: 'checkFile', args: { handle: this.handle, algorithms, ...o } });
    return toBuffer(r.hashes) as Buffer;
  }

  /** As Paramiko's: sets the timeout of the SFTP session's channel (every request of the client). */
  settimeout(timeout: number | null): void {
    this.sftp.getChannel().settimeout(timeout);
  }

  gettimeout(): number | null {
    return this.sftp.getChannel().gettimeout();
  }

  /** As Paramiko's: `settimeout(null)` when true, `settimeout(0)` (non-blocking) when false. */
  setblocking(blocking: boolean | number): void {
    this.settimeout(blocking ? null : 0);
  }

  /** Flushes, waits for pipelined writes (their first error is raised here), closes the handle. */
  close(): void {
    runSync(this.closeOp());
  }

  /** The promise twin of close. */
  closeAsync(): Promise<void> {
    return runAsync(this.closeOp());
  }

  /** @internal the body of the method and of its twin (SFTPClient.putfo/getfo run it). */
  *closeOp(): Op<void> {
    if (this.closed) return;
    let first: Error | null = null;
    try {
      yield* this.flushWritesOp();
    } catch (e) {
      first = e as Error;
    }
    this.closed = true;
    try {
      yield* this.callOp('close', { handle: this.handle });
    } catch (e) {
      first ??= e as Error;
    }
    if (first) throw first;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

