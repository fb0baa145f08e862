import { closeSync, fchmodSync, futimesSync, mkdirSync, openSync, readdirSync, readSync, statSync, utimesSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { runAsync, runSync, type Op } from '../bridge';
import { SCPException } from '../errors';
import { ioErrorFrom, writeAllSync } from '../files';
import type { Channel } from './channel';
import type { ReadableFileLike, WritableFileLike } from './sftp-client';
import type { Transport } from './transport';
import { parseScpEntry, parseScpTimes, SCP_ACK, SCP_FATAL, SCP_MAX_LINE, SCP_OK, SCP_WARNING, scpEntryLine, scpGlob, scpTimesLine } from '../wire/scp';

/**
 * SCP (the `rcp` protocol over an exec channel), for servers without SFTP: routers, embedded
 * systems, Dropbear without sftp-server. The API is the one Paramiko users know from the `scp`
 * package (`SCPClient(transport).put(files, remotePath)`), on a session channel of ours.
 *
 * The protocol, as OpenSSH's scp speaks it: the side receiving files runs `scp -t <target>`
 * ("to"), the side sending them `scp -f <sources>` ("from"); the sender's control lines and
 * the receiver's one-byte answers are in lib/wire/scp.ts.
 */

/** Progress: the file's name, its size and the bytes sent or received so far. */
export type SCPProgress = (filename: string, size: number, sent: number) => void;
/** As SCPProgress, plus the peer's [host, port] (the `scp` package's progress4). */
export type SCPProgress4 = (filename: string, size: number, sent: number, peername: [string, number]) => void;

export interface SCPClientOptions {
  /** Bytes per local read and channel send (the `scp` package's buff_size; 256 KiB here). */
  bufferSize?: number;
  /** Seconds to wait for the remote side at each step; null waits forever. Default 10. */
  socketTimeout?: number | null;
  progress?: SCPProgress | null;
  progress4?: SCPProgress4 | null;
  /** Makes a remote path safe for the remote shell; default single-quotes it (`shQuote`). */
  sanitize?: (path: string) => string;
}

export interface SCPTransferOptions {
  recursive?: boolean;
  /** Send (or apply) modification and access times, and exact modes (`scp -p`). */
  preserveTimes?: boolean;
}

const DEFAULT_BUFFER = 256 * 1024;

/** Quotes a path for a POSIX shell: 'it'\''s' (the `scp` package's default sanitize). */
export function shQuote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

/** A remote path as a command argument: quoted, and never read as an option. */
function remoteArgument(path: string, sanitize: (p: string) => string): string {
  return sanitize(path.startsWith('-') ? `./${path}` : path);
}

/** The remote side's bytes: control lines, acknowledgements and file data, buffered. */
class Stream {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    readonly channel: Channel,
    private readonly chunk: number,
  ) {}

  /** Up to `max` bytes, waiting for some; empty at EOF. */
  *readOp(max: number): Op<Buffer> {
    if (this.pending.length) {
      const out = this.pending.subarray(0, max);
      this.pending = this.pending.subarray(out.length);
      return out;
    }
    return yield* this.channel.recvOp(Math.min(max, this.chunk));
  }

  /** One line without its \n; null at EOF before any byte. */
  *lineOp(): Op<string | null> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      const data = yield* this.readOp(SCP_MAX_LINE);
      if (data.length === 0) {
        if (length === 0) return null;
        throw new SCPException('the remote scp ended in the middle of a line');
      }
      const nl = data.indexOf(0x0a);
      if (nl >= 0) {
        parts.push(data.subarray(0, nl));
        this.pending = Buffer.concat([data.subarray(nl + 1), this.pending]);
        return Buffer.concat(parts).toString('utf8');
      }
      parts.push(data);
      length += data.length;
      if (length > SCP_MAX_LINE) throw new SCPException(`the remote scp sent a line longer than ${SCP_MAX_LINE} bytes`);
    }
  }

  /**
   * Sends to the remote scp. When it has closed the channel (it stops at its first fatal
   * error), the error is what it said last: its error line, or its exit status and stderr.
   */
  *sendOp(data: string | Buffer): Op<void> {
    try {
      yield* this.channel.sendallOp(data);
    } catch (e) {
      if (!this.channel.closed) throw e;
      const rest: Buffer[] = [];
      for (let b = yield* this.readOp(SCP_MAX_LINE); b.length; b = yield* this.readOp(SCP_MAX_LINE)) rest.push(b);
      const text = Buffer.concat(rest);
      const at = text.findIndex((b) => b === SCP_WARNING || b === SCP_FATAL);
      const said = at >= 0 ? text.subarray(at + 1).toString('utf8').split('\n')[0] : '';
      const status = this.channel.exitStatusReady() ? `, exit status ${this.channel.exitStatus}` : '';
      throw new SCPException(said || `the remote scp closed the channel before the transfer ended${status}${stderrOf(this.channel)}`, { cause: e });
    }
  }

  /**
   * Acknowledges what the remote sent (receiving side). A remote that already closed the
   * channel cannot read it, but what it sent before is still ours to read and judge.
   */
  *ackOp(): Op<void> {
    if (this.channel.closed) return;
    try {
      yield* this.channel.sendallOp(SCP_ACK);
    } catch (e) {
      if (!this.channel.closed) throw e;
    }
  }

  /** Reads an acknowledgement: \0, or \1 / \2 and a message (raised). */
  *confirmOp(what: string): Op<void> {
    const b = yield* this.readOp(1);
    if (b.length === 0) throw new SCPException(`the remote scp ended without confirming ${what}${stderrOf(this.channel)}`);
    if (b[0] === SCP_OK) return;
    if (b[0] === SCP_WARNING || b[0] === SCP_FATAL) {
      const message = (yield* this.lineOp()) ?? '';
      throw new SCPException(message || `the remote scp refused ${what}`);
    }
    const rest = (yield* this.readOp(200)).toString('utf8');
    throw new SCPException(`unexpected reply from the remote scp to ${what}: ${JSON.stringify(b.toString('latin1') + rest)}${stderrOf(this.channel)}`);
  }
}

/** What the remote command wrote on stderr so far, as a suffix for a message. */
function stderrOf(ch: Channel): string {
  const parts: Buffer[] = [];
  while (ch.recvStderrReady()) {
    const b = ch.recvStderr(65536);
    if (b.length === 0) break;
    parts.push(b);
  }
  const text = Buffer.concat(parts).toString('utf8').trim();
  return text ? ` (${text})` : '';
}

interface Times {
  mtime: number;
  atime: number;
}

export class SCPClient {
  readonly bufferSize: number;
  readonly socketTimeout: number | null;
  readonly progress: SCPProgress | null;
  readonly progress4: SCPProgress4 | null;
  readonly sanitize: (path: string) => string;
  /** The channel of the transfer in progress, if any. */
  channel: Channel | null = null;
  private busy = false;

  /**
   * `new SCPClient(transport, bufferSize, socketTimeout, progress, progress4, sanitize)`, or
   * `new SCPClient(transport, { bufferSize, socketTimeout, progress, progress4, sanitize })`.
   */
  constructor(
    readonly transport: Transport,
    bufferSize: number | SCPClientOptions = DEFAULT_BUFFER,
    socketTimeout: number | null = 10,
    progress: SCPProgress | null = null,
    progress4: SCPProgress4 | null = null,
    sanitize: (path: string) => string = shQuote,
  ) {
    const o: SCPClientOptions = typeof bufferSize === 'object' ? bufferSize : { bufferSize, socketTimeout, progress, progress4, sanitize };
    this.bufferSize = o.bufferSize ?? DEFAULT_BUFFER;
    if (!Number.isInteger(this.bufferSize) || this.bufferSize < 1) throw new RangeError(`bufferSize must be a positive integer, not ${this.bufferSize}`);
    this.socketTimeout = o.socketTimeout === undefined ? 10 : o.socketTimeout;
    this.progress = o.progress ?? null;
    this.progress4 = o.progress4 ?? null;
    this.sanitize = o.sanitize ?? shQuote;
  }

  /**
   * Sends local files (and with `recursive`, directories) to `remotePath`: a directory, or a
   * file's new name when one file is sent.
   */
  put(files: string | string[], remotePath: string | SCPTransferOptions = '.', recursive: boolean | SCPTransferOptions = false, preserveTimes = false): void {
    runSync(this.putOp(files, ...transferArgs(remotePath, recursive, preserveTimes, '.')));
  }

  /** The promise twin of put. */
  putAsync(files: string | string[], remotePath: string | SCPTransferOptions = '.', recursive: boolean | SCPTransferOptions = false, preserveTimes = false): Promise<void> {
    return runAsync(this.putOp(files, ...transferArgs(remotePath, recursive, preserveTimes, '.')));
  }

  /**
   * Sends the contents of a Buffer, a string or a file-like object (read to its end) as the
   * remote file `remotePath`, with `mode` (octal string or number, default 0644).
   */
  putfo(fl: ReadableFileLike | Buffer | string, remotePath: string, mode: string | number | { mode?: string | number; size?: number | null } = '0644', size: number | null = null): void {
    runSync(this.putfoOp(fl, remotePath, mode, size));
  }

  /** The promise twin of putfo. */
  putfoAsync(fl: ReadableFileLike | Buffer | string, remotePath: string, mode: string | number | { mode?: string | number; size?: number | null } = '0644', size: number | null = null): Promise<void> {
    return runAsync(this.putfoOp(fl, remotePath, mode, size));
  }

  /**
   * Fetches remote files (and with `recursive`, directories) into `localPath`: a directory,
   * or the file's new name when one file is fetched; '' is the current directory.
   */
  get(remotePath: string | string[], localPath: string | SCPTransferOptions = '', recursive: boolean | SCPTransferOptions = false, preserveTimes = false): void {
    runSync(this.getOp(remotePath, ...transferArgs(localPath, recursive, preserveTimes, '')));
  }

  /** The promise twin of get. */
  getAsync(remotePath: string | string[], localPath: string | SCPTransferOptions = '', recursive: boolean | SCPTransferOptions = false, preserveTimes = false): Promise<void> {
    return runAsync(this.getOp(remotePath, ...transferArgs(localPath, recursive, preserveTimes, '')));
  }

  /** Fetches one remote file into `fl` (anything with `write(Buffer)`); returns its size. */
  getfo(remotePath: string, fl: WritableFileLike): number {
    return runSync(this.getfoOp(remotePath, fl));
  }

  /** The promise twin of getfo. */
  getfoAsync(remotePath: string, fl: WritableFileLike): Promise<number> {
    return runAsync(this.getfoOp(remotePath, fl));
  }

  /** Closes the channel of a transfer in progress (each transfer opens and closes its own). */
  close(): void {
    const ch = this.channel;
    this.channel = null;
    ch?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- sending (scp -t on the remote side) ----

  private *putOp(files: string | string[], remotePath: string, recursive: boolean, preserve: boolean): Op<void> {
    const list = typeof files === 'string' ? [files] : files;
    const stats = list.map((f) => localStat(f));
    stats.forEach((st, i) => {
      if (st.isDirectory() && !recursive) throw new SCPException(`${list[i]} is a directory (pass recursive to send it)`);
      // The protocol sends a file's size before its bytes: a FIFO or a device has none to give.
      if (!st.isDirectory() && !st.isFile()) throw new SCPException(`${list[i]}: not a regular file`);
    });
    yield* this.session(this.command('-t', recursive, preserve, [remotePath]), function* (this: SCPClient, s: Stream) {
      yield* s.confirmOp('the transfer');
      for (let i = 0; i < list.length; i++) {
        if (stats[i].isDirectory()) yield* this.sendDirOp(s, list[i], stats[i], preserve);
        else yield* this.sendFileOp(s, list[i], stats[i], preserve);
      }
    });
  }

  private *putfoOp(fl: ReadableFileLike | Buffer | string, remotePath: string, modeArg: string | number | { mode?: string | number; size?: number | null }, sizeArg: number | null): Op<void> {
    const o = typeof modeArg === 'object' ? modeArg : { mode: modeArg, size: sizeArg };
    const mode = typeof o.mode === 'number' ? o.mode : parseInt(o.mode ?? '0644', 8);
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new RangeError(`mode must be an octal permission such as '0644', not ${JSON.stringify(o.mode)}`);
    const data = contents(fl);
    if (o.size !== null && o.size !== undefined && o.size !== data.length) {
      throw new SCPException(`putfo: size ${o.size} given but the source holds ${data.length} bytes`);
    }
    const name = basename(remotePath);
    yield* this.session(this.command('-t', false, false, [remotePath]), function* (this: SCPClient, s: Stream) {
      yield* s.confirmOp('the transfer');
      yield* this.sendDataOp(s, name, mode, data.length, (buf, at) => data.copy(buf, 0, at));
    });
  }

  private *sendFileOp(s: Stream, path: string, st: Stats, preserve: boolean): Op<void> {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw ioErrorFrom(e, 'cannot read', path);
    }
    try {
      if (preserve) yield* this.sendTimesOp(s, st, path);
      yield* this.sendDataOp(s, basename(path), st.mode, st.size, (buf, at) => {
        try {
          return readSync(fd, buf, 0, buf.length, at);
        } catch (e) {
          throw ioErrorFrom(e, 'cannot read', path);
        }
      });
    } finally {
      closeSync(fd);
    }
  }

  /** C line, the bytes `fill` gives (it returns how many it put in the buffer), \0, and the confirmations. */
  private *sendDataOp(s: Stream, name: string, mode: number, size: number, fill: (buf: Buffer, at: number) => number): Op<void> {
    if (/[\n\r]/.test(name)) throw new SCPException(`cannot send a file whose name holds a line break: ${JSON.stringify(name)}`);
    yield* s.sendOp(scpEntryLine('C', mode, size, name));
    yield* s.confirmOp(`${name}`);
    const buf = Buffer.allocUnsafe(Math.min(this.bufferSize, Math.max(size, 1)));
    let sent = 0;
    this.report(name, size, 0);
    while (sent < size) {
      const n = fill(buf.subarray(0, Math.min(buf.length, size - sent)), sent);
      if (n <= 0) throw new SCPException(`${name} shrank while it was sent (${sent} of ${size} bytes)`);
      yield* s.sendOp(buf.subarray(0, n));
      sent += n;
      this.report(name, size, sent);
    }
    yield* s.sendOp(SCP_ACK);
    yield* s.confirmOp(`${name}`);
  }

  private *sendTimesOp(s: Stream, st: Stats, path: string): Op<void> {
    yield* s.sendOp(scpTimesLine(st.mtimeMs, st.atimeMs));
    yield* s.confirmOp(`the times of ${path}`);
  }

  private *sendDirOp(s: Stream, path: string, st: Stats, preserve: boolean): Op<void> {
    const name = basename(path);
    if (/[\n\r]/.test(name)) throw new SCPException(`cannot send a directory whose name holds a line break: ${JSON.stringify(name)}`);
    if (preserve) yield* this.sendTimesOp(s, st, path);
    yield* s.sendOp(scpEntryLine('D', st.mode, 0, name));
    yield* s.confirmOp(`directory ${path}`);
    let entries: string[];
    try {
      entries = readdirSync(path).sort();
    } catch (e) {
      throw ioErrorFrom(e, 'cannot list', path);
    }
    for (const entry of entries) {
      const child = join(path, entry);
      const cst = localStat(child);
      if (cst.isDirectory()) yield* this.sendDirOp(s, child, cst, preserve);
      else if (cst.isFile()) yield* this.sendFileOp(s, child, cst, preserve);
      // sockets, FIFOs and devices are skipped, as OpenSSH's scp skips them
    }
    yield* s.sendOp('E\n');
    yield* s.confirmOp(`the end of directory ${path}`);
  }

  // ---- receiving (scp -f on the remote side) ----

  private *getOp(remotePath: string | string[], localPath: string, recursive: boolean, preserve: boolean): Op<void> {
    const sources = typeof remotePath === 'string' ? [remotePath] : remotePath;
    if (sources.length === 0) throw new SCPException('get: no remote path given');
    const target = localPath === '' ? '.' : localPath;
    const targetIsDir = isDirectory(target);
    if (sources.length > 1 && !targetIsDir) throw new SCPException(`${target} is not a directory (several files are fetched)`);
    // What a top-level name may be: the basename asked for (a glob matches as the shell would).
    // For `.`, `..` or `/` the remote names a directory we cannot predict: any safe name then.
    const patterns = sources.map((p) => basename(p)).map((b) => (b === '' || b === '.' || b === '..' ? '*' : b));
    yield* this.session(this.command('-f', recursive, preserve, sources), function* (this: SCPClient, s: Stream) {
      yield* s.ackOp();
      const dirs: Array<{ path: string; times: Times | null }> = [];
      const warnings: string[] = [];
      let times: Times | null = null;
      for (;;) {
        const line = yield* s.lineOp();
        if (line === null) break;
        const kind = line.charCodeAt(0);
        if (kind === SCP_WARNING || kind === SCP_FATAL) {
          if (kind === SCP_FATAL) throw new SCPException(line.slice(1));
          warnings.push(line.slice(1));
          continue;
        }
        if (line[0] === 'T') {
          times = parseScpTimes(line);
          if (!times) throw new SCPException(`the remote scp sent a bad times line: ${JSON.stringify(line)}`);
          yield* s.ackOp();
          continue;
        }
        if (line === 'E') {
          const dir = dirs.pop();
          if (!dir) throw new SCPException('the remote scp left a directory it never entered');
          if (dir.times) setTimes(dir.path, dir.times);
          yield* s.ackOp();
          continue;
        }
        const entry = parseScpEntry(line);
        if (!entry) throw new SCPException(`the remote scp sent a line that is not part of the protocol: ${JSON.stringify(line.slice(0, 80))}`);
        const { type, mode, size, name } = entry;
        // A name is one path component; at the top it must be one that was asked for (a
        // hostile server must not choose where files land: CVE-2019-6111).
        // `.` is allowed for a directory, as OpenSSH's scp allows it: `scp -r -f .` sends `D... .`,
        // meaning the target itself.
        if ((name === '.' && type === 'C') || name === '..' || name.includes('/') || name.includes('\0')) {
          throw new SCPException(`the remote scp sent an unsafe name: ${JSON.stringify(name)}`);
        }
        if (dirs.length === 0 && name !== '.' && !patterns.some((p) => scpGlob(p).test(name))) {
          throw new SCPException(`the remote scp sent ${JSON.stringify(name)}, which was not asked for`);
        }
        const path = dirs.length ? join(dirs[dirs.length - 1].path, name) : targetIsDir ? join(target, name) : target;
        if (type === 'D') {
          if (!recursive) throw new SCPException(`the remote scp sent directory ${JSON.stringify(name)} without recursive`);
          makeDirectory(path, preserve ? mode : 0o777);
          dirs.push({ path, times });
          times = null;
          yield* s.ackOp();
          continue;
        }
        if (size === null) throw new SCPException(`the remote scp sent a bad size: ${JSON.stringify(line.slice(0, 80))}`);
        yield* this.receiveFileOp(s, path, name, mode, size, preserve, times);
        times = null;
      }
      if (dirs.length) throw new SCPException(`the remote scp ended inside directory ${dirs[dirs.length - 1].path}`);
      if (warnings.length) throw new SCPException(warnings.join('; '));
    });
  }

  private *receiveFileOp(s: Stream, path: string, name: string, mode: number, size: number, preserve: boolean, times: Times | null): Op<void> {
    let fd: number;
    try {
      fd = openSync(path, 'w', mode & 0o777);
    } catch (e) {
      throw ioErrorFrom(e, 'cannot write', path);
    }
    try {
      yield* s.ackOp();
      yield* this.receiveDataOp(s, name, size, (data) => {
        try {
          writeAllSync(fd, data);
        } catch (e) {
          throw ioErrorFrom(e, 'cannot write', path);
        }
      });
      if (preserve) fchmodSync(fd, mode);
      if (times) futimesSync(fd, times.atime, times.mtime);
    } finally {
      closeSync(fd);
    }
    yield* s.ackOp();
  }

  /** `size` bytes of file data to `sink`, then the sender's confirmation. */
  private *receiveDataOp(s: Stream, name: string, size: number, sink: (data: Buffer) => void): Op<void> {
    let received = 0;
    this.report(name, size, 0);
    while (received < size) {
      const data = yield* s.readOp(Math.min(this.bufferSize, size - received));
      if (data.length === 0) throw new SCPException(`the remote scp ended after ${received} of the ${size} bytes of ${name}${stderrOf(s.channel)}`);
      sink(data);
      received += data.length;
      this.report(name, size, received);
    }
    yield* s.confirmOp(`the end of ${name}`);
  }

  private *getfoOp(remotePath: string, fl: WritableFileLike): Op<number> {
    let total = -1;
    yield* this.session(this.command('-f', false, false, [remotePath]), function* (this: SCPClient, s: Stream) {
      yield* s.ackOp();
      for (;;) {
        const line = yield* s.lineOp();
        if (line === null) break;
        const kind = line.charCodeAt(0);
        if (kind === SCP_WARNING || kind === SCP_FATAL) throw new SCPException(line.slice(1));
        if (line[0] === 'T') {
          yield* s.ackOp();
          continue;
        }
        const entry = parseScpEntry(line);
        if (entry?.type !== 'C' || total >= 0) throw new SCPException(`getfo expects one file; the remote scp sent ${JSON.stringify(line.slice(0, 80))}`);
        if (entry.size === null) throw new SCPException(`the remote scp sent a bad size: ${JSON.stringify(line.slice(0, 80))}`);
        total = entry.size;
        yield* s.ackOp();
        yield* this.receiveDataOp(s, entry.name, total, (data) => fl.write(data));
        yield* s.ackOp();
      }
      if (total < 0) throw new SCPException(`the remote scp sent no file for ${remotePath}`);
    });
    return total;
  }

  // ---- the channel ----

  private command(direction: '-t' | '-f', recursive: boolean, preserve: boolean, paths: string[]): string {
    const flags = [recursive ? '-r' : '', preserve ? '-p' : '', direction].filter(Boolean).join(' ');
    return `scp ${flags} ${paths.map((p) => remoteArgument(p, this.sanitize)).join(' ')}`;
  }

  /**
   * Runs `command` on a new session channel, `body` over it, then ends the channel: EOF, the
   * exit status (a failure with the remote stderr when not 0), close.
   */
  private *session(command: string, body: (this: SCPClient, s: Stream) => Op<void>): Op<void> {
    if (this.busy) throw new SCPException('a transfer is already in progress on this SCPClient');
    this.busy = true;
    let ch: Channel;
    try {
      ch = yield* this.transport.openSessionOp();
    } catch (e) {
      this.busy = false;
      throw e;
    }
    this.channel = ch;
    try {
      ch.settimeout(this.socketTimeout);
      yield* ch.requestOp('exec', { command });
      yield* body.call(this, new Stream(ch, this.bufferSize));
      yield* ch.shutdownWriteOp();
      if (!(yield* ch.statusWaitOp(this.socketTimeout))) throw new SCPException(`the remote scp did not exit within ${this.socketTimeout} s`);
      const status = ch.exitStatus;
      if (status !== 0) throw new SCPException(`the remote scp exited with status ${status}${stderrOf(ch)}`);
    } catch (e) {
      if (e instanceof SCPException) e.message += stderrOf(ch); // empty when already told
      throw e;
    } finally {
      this.channel = null;
      this.busy = false;
      yield* ch.closeOp();
    }
  }

  private report(name: string, size: number, sent: number): void {
    this.progress?.(name, size, sent);
    if (this.progress4) this.progress4(name, size, sent, this.transport.getpeername());
  }
}

function transferArgs(
  path: string | SCPTransferOptions,
  recursive: boolean | SCPTransferOptions,
  preserveTimes: boolean,
  defaultPath: string,
): [string, boolean, boolean] {
  if (typeof path === 'object') return [defaultPath, !!path.recursive, !!path.preserveTimes];
  if (typeof recursive === 'object') return [path, !!recursive.recursive, !!recursive.preserveTimes];
  return [path, recursive, preserveTimes];
}

function localStat(path: string): Stats {
  try {
    return statSync(path);
  } catch (e) {
    throw ioErrorFrom(e, 'cannot read', path);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function makeDirectory(path: string, mode: number): void {
  if (isDirectory(path)) return;
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    throw ioErrorFrom(e, 'cannot create directory', path);
  }
}

function setTimes(path: string, times: Times): void {
  try {
    utimesSync(path, times.atime, times.mtime);
  } catch (e) {
    throw ioErrorFrom(e, 'cannot set the times of', path);
  }
}

/** The whole contents of what putfo was given. */
function contents(fl: ReadableFileLike | Buffer | string): Buffer {
  if (Buffer.isBuffer(fl)) return fl;
  if (typeof fl === 'string') return Buffer.from(fl, 'utf8');
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = fl.read(1 << 20);
    if (chunk === null || chunk === undefined || chunk.length === 0) break;
    parts.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
  }
  return Buffer.concat(parts);
}
