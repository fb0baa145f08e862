import { getBridge, toBuffer } from '../bridge';
import { IOError, SSHException } from '../errors';
import { SFTPAttributes } from '../sftp/attributes';
import type { SftpLimits, SftpStatVFS } from '../sftp/client-core';
import { DEFAULT_MAX_PACKET_SIZE, DEFAULT_WINDOW_SIZE } from '../transport/channel';
import { SFTPFile, parseMode } from './sftp-file';
import type { Transport } from './transport';

/** Paramiko's transfer callback: `(bytesSoFar, total)`. */
export type TransferCallback = (bytesSoFar: number, total: number) => void;

/** A file-like object `putfo` reads from (`read(n)` returns a Buffer or string, empty at EOF). */
export interface ReadableFileLike {
  read(size?: number): Buffer | string | Uint8Array | null;
}

/** A file-like object `getfo` writes to. */
export interface WritableFileLike {
  write(data: Buffer): unknown;
}

/** Attributes as the worker sends them (a clone of the engine's class). */
export function toAttributes(plain: unknown): SFTPAttributes {
  const a = Object.assign(new SFTPAttributes(), plain as object);
  if (!(a.attr instanceof Map)) a.attr = new Map();
  for (const [k, v] of a.attr) a.attr.set(k, toBuffer(v) as Buffer);
  return a;
}

const progressCallbacks = new Map<number, TransferCallback>();
let progressRegistered = false;
let nextProgressKey = 1;
function withProgress<T>(cb: TransferCallback | null | undefined, run: (key: number | null) => T): T {
  if (!cb) return run(null);
  if (!progressRegistered) {
    progressRegistered = true;
    getBridge().onCallback('sftp-progress', (p: { key: number; done: number; total: number }) => {
      progressCallbacks.get(p.key)?.(p.done, p.total);
      return null;
    });
  }
  const key = nextProgressKey++;
  progressCallbacks.set(key, cb);
  try {
    return run(key);
  } finally {
    progressCallbacks.delete(key);
  }
}

/**
 * Paramiko's SFTPClient over an SSH transport. The protocol engine runs in the transport worker;
 * whole-file `get`/`put` run there entirely (many requests in flight, local file I/O in the
 * worker). Errors are `IOError`s with Node's `code` and `errno` (`ENOENT`, `EACCES`...) and the
 * server's message; `EOFError` for end of file.
 */
export class SFTPClient {
  private id: number | null;
  private cwd: string | null = null;
  /** Seconds each request may take (null: forever, Paramiko's default); see getChannel().settimeout. */
  private timeout: number | null = null;
  /** The SFTP protocol version the server speaks (3). */
  readonly version: number;
  /** Extensions the server announced (posix-rename@openssh.com, limits@openssh.com...). */
  readonly extensions: readonly string[];

  private constructor(
    readonly transport: Transport,
    info: { sftp: number; version: number; extensions: string[] },
  ) {
    this.id = info.sftp;
    this.version = info.version;
    this.extensions = info.extensions;
  }

  /** Opens a session channel on `t` and starts the sftp subsystem on it. */
  static fromTransport(t: Transport, options: { windowSize?: number; maxPacketSize?: number } = {}): SFTPClient {
    if (t.id === null) throw new SSHException('No existing session');
    const info = getBridge().call<{ sftp: number; version: number; extensions: string[] }>(
      'sftp',
      'open',
      // A window as deep as the engine's pipeline (64 reads of up to 255 KiB): the server never waits for it.
      { id: t.id, window: options.windowSize ?? DEFAULT_WINDOW_SIZE * 8, maxPacket: options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE },
      t.channelTimeout,
    );
    return new SFTPClient(t, info);
  }

  private need(): number {
    if (this.id === null) throw new SSHException('the SFTP session is closed');
    return this.id;
  }

  /** @internal a worker call on this session, bounded by the channel timeout (SocketTimeout). */
  call<T>(method: string, args: Record<string, unknown>, timeout: number | null = this.timeout): T {
    return getBridge().call<T>('sftp', method, { sftp: this.need(), ...args }, timeout);
  }

  private op<T>(op: string, args: Record<string, unknown>): T {
    return this.call<T>('op', { op, args });
  }

  /** Paramiko's cwd emulation: relative paths are joined to the directory chdir set. */
  private adjust(path: string): string {
    if (this.cwd === null || path.startsWith('/')) return path;
    return this.cwd === '/' ? `/${path}` : `${this.cwd}/${path}`;
  }

  // ---- directories and names ----

  listdir(path = '.'): string[] {
    return this.listdirAttr(path).map((a) => a.filename!);
  }

  /** Entries with `filename` and `longname`; no `.` or `..`. */
  listdirAttr(path = '.'): SFTPAttributes[] {
    const all = this.op<unknown[]>('listdir', { path: this.adjust(path) }).map(toAttributes);
    return all.filter((a) => a.filename !== '.' && a.filename !== '..');
  }

  *listdirIter(path = '.'): Generator<SFTPAttributes> {
    yield* this.listdirAttr(path);
  }

  mkdir(path: string, mode = 0o777): void {
    this.op('mkdir', { path: this.adjust(path), attrs: { st_mode: mode } });
  }

  rmdir(path: string): void {
    this.op('rmdir', { path: this.adjust(path) });
  }

  remove(path: string): void {
    this.op('remove', { path: this.adjust(path) });
  }

  unlink(path: string): void {
    this.remove(path);
  }

  /** SFTPv3 rename: fails when `newpath` exists (see posixRename). */
  rename(oldpath: string, newpath: string): void {
    this.op('rename', { oldPath: this.adjust(oldpath), newPath: this.adjust(newpath) });
  }

  /** posix-rename@openssh.com: replaces `newpath` atomically. */
  posixRename(oldpath: string, newpath: string): void {
    this.op('posixRename', { oldPath: this.adjust(oldpath), newPath: this.adjust(newpath) });
  }

  /** A symbolic link at `dest` pointing to `source` (OpenSSH's argument order is handled). */
  symlink(source: string, dest: string): void {
    this.op('symlink', { target: source, link: this.adjust(dest) });
  }

  readlink(path: string): string {
    return this.op<string>('readlink', { path: this.adjust(path) });
  }

  /** hardlink@openssh.com (beyond Paramiko). */
  hardlink(oldpath: string, newpath: string): void {
    this.op('hardlink', { oldPath: this.adjust(oldpath), newPath: this.adjust(newpath) });
  }

  /** The server's canonical absolute path (`.`: its working directory). */
  normalize(path: string): string {
    return this.op<string>('realpath', { path: this.adjust(path) });
  }

  /** Client-side working directory, as Paramiko (null resets); IOError if not a directory. */
  chdir(path: string | null = null): void {
    if (path === null) {
      this.cwd = null;
      return;
    }
    const st = this.stat(path);
    if (((st.st_mode ?? 0) & 0o170000) !== 0o040000) throw new IOError(`ENOTDIR: not a directory, chdir '${path}'`, { code: 'ENOTDIR', errno: 20, filename: path });
    this.cwd = this.normalize(path);
  }

  /** The directory chdir set, or null when it was never called (Paramiko). */
  getcwd(): string | null {
    return this.cwd;
  }

  /** mkdir -p (beyond Paramiko). */
  makedirs(path: string, mode = 0o777): void {
    const abs = this.adjust(path);
    const parts = abs.split('/').filter(Boolean);
    let cur = abs.startsWith('/') ? '' : '.';
    for (const p of parts) {
      cur = cur === '' ? `/${p}` : `${cur}/${p}`;
      try {
        const st = this.stat(cur);
        if (((st.st_mode ?? 0) & 0o170000) !== 0o040000) throw new IOError(`EEXIST: not a directory, mkdir '${cur}'`, { code: 'EEXIST', errno: 17, filename: cur });
      } catch (e) {
        if ((e as IOError).code !== 'ENOENT') throw e;
        this.mkdir(cur, mode);
      }
    }
  }

  /** rm -r (beyond Paramiko): removes `path` and everything under it; symlinks are not followed. */
  rmtree(path: string): void {
    const abs = this.adjust(path);
    for (const a of this.listdirAttr(abs)) {
      const child = `${abs}/${a.filename}`;
      if (((a.st_mode ?? 0) & 0o170000) === 0o040000) this.rmtree(child);
      else this.remove(child);
    }
    this.rmdir(abs);
  }

  // ---- attributes ----

  stat(path: string): SFTPAttributes {
    return toAttributes(this.op('stat', { path: this.adjust(path) }));
  }

  lstat(path: string): SFTPAttributes {
    return toAttributes(this.op('lstat', { path: this.adjust(path) }));
  }

  chmod(path: string, mode: number): void {
    this.op('setstat', { path: this.adjust(path), attrs: { st_mode: mode } });
  }

  chown(path: string, uid: number, gid: number): void {
    this.op('setstat', { path: this.adjust(path), attrs: { st_uid: uid, st_gid: gid } });
  }

  /** `times`: [atime, mtime] in seconds, or null for now. */
  utime(path: string, times: [number, number] | null = null): void {
    const now = Math.floor(Date.now() / 1000);
    const [atime, mtime] = times ?? [now, now];
    this.op('setstat', { path: this.adjust(path), attrs: { st_atime: Math.floor(atime), st_mtime: Math.floor(mtime) } });
  }

  truncate(path: string, size: number): void {
    this.op('setstat', { path: this.adjust(path), attrs: { st_size: size } });
  }

  /** statvfs@openssh.com (beyond Paramiko). */
  statvfs(path: string): SftpStatVFS {
    return this.op<SftpStatVFS>('statvfs', { path: this.adjust(path) });
  }

  /** limits@openssh.com, or the defaults OpenSSH's client assumes (beyond Paramiko). */
  limits(): SftpLimits {
    return this.op<SftpLimits>('limits', {});
  }

  // ---- files ----

  /** Opens a remote file: modes r w a r+ w+ a+ x (+b; b only changes readline to Buffers). */
  open(filename: string, mode = 'r', bufsize = -1): SFTPFile {
    const { flags } = parseMode(mode);
    const handle = toBuffer(this.op<Uint8Array>('open', { path: this.adjust(filename), flags, attrs: null })) as Buffer;
    return new SFTPFile(this, handle, mode, bufsize, filename);
  }

  file(filename: string, mode = 'r', bufsize = -1): SFTPFile {
    return this.open(filename, mode, bufsize);
  }

  /**
   * Uploads a local file (`remotepath` must include the file name). Runs in the worker with
   * many writes in flight; `confirm` checks the size afterwards ("size mismatch in put!").
   */
  put(localpath: string, remotepath: string, callback: TransferCallback | null = null, confirm = true): SFTPAttributes {
    return withProgress(callback, (progressKey) =>
      // The timeout bounds inactivity, not the whole transfer (as a Paramiko channel's recv).
      toAttributes(this.call('put', { local: localpath, remote: this.adjust(remotepath), confirm, progressKey, idleTimeout: this.timeout }, null)),
    );
  }

  /** Downloads to a local file, in the worker with many reads in flight; returns the byte count. */
  get(remotepath: string, localpath: string, callback: TransferCallback | null = null, _options: { prefetch?: boolean } = {}): number {
    return withProgress(callback, (progressKey) =>
      this.call<number>('get', { remote: this.adjust(remotepath), local: localpath, progressKey, idleTimeout: this.timeout }, null),
    );
  }

  /** Uploads what `fl.read()` gives until it is empty; returns the remote attributes. */
  putfo(fl: ReadableFileLike, remotepath: string, fileSize = 0, callback: TransferCallback | null = null, confirm = true): SFTPAttributes {
    const f = this.open(remotepath, 'wb');
    let size = 0;
    try {
      f.setPipelined(true);
      for (;;) {
        const chunk = fl.read(1 << 20);
        if (chunk === null || chunk === undefined || chunk.length === 0) break;
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
        f.write(buf);
        size += buf.length;
        callback?.(size, fileSize);
      }
    } finally {
      f.close();
    }
    if (!confirm) return Object.assign(new SFTPAttributes(), { st_size: size });
    const st = this.stat(remotepath);
    if (st.st_size !== size) throw new IOError(`size mismatch in put!  ${String(st.st_size)} != ${size}`);
    return st;
  }

  /** Downloads into `fl.write()`; returns the byte count. */
  getfo(remotepath: string, fl: WritableFileLike, callback: TransferCallback | null = null, _options: { prefetch?: boolean } = {}): number {
    const f = this.open(remotepath, 'rb');
    let n = 0;
    try {
      const total = Number(f.stat().st_size ?? 0);
      f.prefetch(total);
      for (;;) {
        const chunk = f.read(1 << 22);
        if (chunk.length === 0) break;
        fl.write(chunk);
        n += chunk.length;
        callback?.(n, total);
      }
    } finally {
      f.close();
    }
    return n;
  }

  /**
   * The session's channel, for what Paramiko scripts do with it: `settimeout(seconds)` bounds
   * every later request of this client and its files (SocketTimeout; null waits forever, the
   * default), `gettimeout()`, `getTransport()`. The channel itself is driven inside the worker.
   */
  getChannel(): SFTPChannel {
    return new SFTPChannel(this, this.transport);
  }

  /** @internal */
  setTimeout(timeout: number | null): void {
    if (timeout !== null && (!Number.isFinite(timeout) || timeout < 0)) throw new TypeError('timeout must be null or seconds >= 0');
    this.timeout = timeout;
  }

  /** @internal */
  getTimeout(): number | null {
    return this.timeout;
  }

  close(): void {
    if (this.id === null) return;
    const id = this.id;
    this.id = null;
    getBridge().call('sftp', 'closeSession', { sftp: id }, 10);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** What `SFTPClient.getChannel()` gives: the channel's timeout and transport. */
export class SFTPChannel {
  constructor(
    private readonly sftp: SFTPClient,
    private readonly transport: Transport,
  ) {}

  settimeout(timeout: number | null): void {
    this.sftp.setTimeout(timeout);
  }

  gettimeout(): number | null {
    return this.sftp.getTimeout();
  }

  getTransport(): Transport {
    return this.transport;
  }

  close(): void {
    this.sftp.close();
  }
}

/** Paramiko exports SFTPClient as SFTP too. */
export const SFTP = SFTPClient;
