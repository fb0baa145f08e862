import { getBridge, request, runAsync, runSync, toBuffer, type Op } from '../bridge';
import { IOError, SSHException } from '../errors';
import { SFTPAttributes } from '../sftp/attributes';
import { FX } from '../sftp/constants';
import type { SftpLimits, SftpStatVFS } from '../sftp/client-core';
import { MAX_DATA_PACKET, SFTP_WINDOW_SIZE } from '../transport/channel';
import { SFTPFile, parseMode } from './sftp-file';
import { fromAttrs, fromStats, getTree, joinRemote, preservedAttrs, preserveLocal, putTree, type TreeHost, type TreeOptions } from './sftp-tree';
import { globWalk, type GlobEntry, type GlobTree } from './glob';
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
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

/**
 * Files a recursive get or put moves at once (each small one is three or four round trips, and a
 * tree far away is made of them): through a 20 ms round trip, 200 small files went up in 1925 ms
 * with 8 at once, 1068 with 16, 671 with 32; on loopback 32 is no slower than 8. The worker
 * weighs larger files more and keeps to half the handles a server announces (limits@openssh.com).
 */
const TREE_PARALLEL_FILES = 32;

/** This machine's files as glob walks them (mput). */
const LOCAL_TREE: GlobTree = {
  // eslint-disable-next-line require-yield
  *listOp(dir) {
    try {
      return readdirSync(dir === '' ? '.' : dir, { withFileTypes: true }).map((d) => ({ name: d.name, dir: d.isDirectory(), link: d.isSymbolicLink() }));
    } catch {
      return [];
    }
  },
  // eslint-disable-next-line require-yield
  *probeOp(path, dirsOnly) {
    try {
      return dirsOnly ? statSync(path).isDirectory() : Boolean(lstatSync(path));
    } catch {
      return false;
    }
  },
};

/** The paths `patterns` match, in order, each once; IOError ENOENT for a pattern that matches nothing. */
function* matchesOp(patterns: string | string[], glob: (pattern: string) => Op<string[]>, side: string): Op<string[]> {
  const out = new Set<string>();
  for (const p of Array.isArray(patterns) ? patterns : [patterns]) {
    const found = yield* glob(p);
    if (!found.length) throw new IOError(`ENOENT: no ${side} path matches '${p}'`, { code: 'ENOENT', errno: 2, filename: p });
    for (const f of found) out.add(f);
  }
  return [...out];
}

/** The local directory mget copies into; IOError ENOTDIR when it is not one. */
function needLocalDirectory(dir: string): void {
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new IOError(`ENOTDIR: mget needs a local directory, '${dir}' is not one`, { code: 'ENOTDIR', errno: 20, filename: dir });
}

/** A directory matched without `recurse`. */
function isDirectory(path: string, what: string): IOError {
  return new IOError(`EISDIR: '${path}' is a directory (${what} copies directories with { recurse: true })`, { code: 'EISDIR', errno: 21, filename: path });
}

/** Whether `e` is the server's answer with one of these SFTP statuses (not a lost session). */
function failedWith(e: unknown, ...statuses: number[]): boolean {
  return e instanceof IOError && statuses.includes((e as { status?: number }).status ?? -1);
}

/** get's options (Paramiko's `prefetch`, and the tree options of AsyncSSH's get). */
export interface GetOptions extends TreeOptions {
  /** Paramiko's: reads run many in flight whatever it says. */
  prefetch?: boolean;
}

/** copyFile's options. */
export interface CopyFileOptions {
  /** Fail with EEXIST when the destination exists (fs.copyFile's COPYFILE_EXCL). */
  exclusive?: boolean;
  /** Copy through this connection even when the server could copy by itself. */
  throughClient?: boolean;
  /** `(bytesSoFar, total)` as the copy goes (once at the end when the server copies). */
  callback?: TransferCallback | null;
}

/** fromTransport's channel sizes. */
export interface SftpOpenOptions {
  windowSize?: number;
  maxPacketSize?: number;
}

/** utime's attributes: `times` [atime, mtime] in seconds, or now. */
export function utimeAttrs(times: [number, number] | null): Record<string, number> {
  const now = Math.floor(Date.now() / 1000);
  const [atime, mtime] = times ?? [now, now];
  return { st_atime: Math.floor(atime), st_mtime: Math.floor(mtime) };
}

const progressCallbacks = new Map<number, TransferCallback>();
let progressRegistered = false;
let nextProgressKey = 1;
function* withProgress<T>(cb: TransferCallback | null | undefined, run: (key: number | null) => Op<T>): Op<T> {
  if (!cb) return yield* run(null);
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
    return yield* run(key);
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
  static fromTransport(t: Transport, options: SftpOpenOptions = {}): SFTPClient {
    return runSync(SFTPClient.fromTransportOp(t, options));
  }

  /** The promise twin of fromTransport. */
  static fromTransportAsync(t: Transport, options: SftpOpenOptions = {}): Promise<SFTPClient> {
    return runAsync(SFTPClient.fromTransportOp(t, options));
  }

  private static *fromTransportOp(t: Transport, options: SftpOpenOptions): Op<SFTPClient> {
    if (t.id === null) throw new SSHException('No existing session');
    const info = yield* request<{ sftp: number; version: number; extensions: string[] }>(
      'sftp',
      'open',
      // A window as deep as the engine's pipeline (64 reads of up to 255 KiB): the server never
      // waits for it. Packets as large as the transport takes: a server sends a READ's answer
      // in one or two packets, not eight, and OpenSSH's sshd spends its time per packet.
      { id: t.id, window: options.windowSize ?? SFTP_WINDOW_SIZE, maxPacket: options.maxPacketSize ?? MAX_DATA_PACKET },
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
    return runSync(this.callOp<T>(method, args, timeout));
  }

  /** @internal `call` as an op, for the twins of SFTPFile's methods. */
  *callOp<T>(method: string, args: Record<string, unknown>, timeout: number | null = this.timeout): Op<T> {
    return yield* request<T>('sftp', method, { sftp: this.need(), ...args }, timeout);
  }

  private *op<T>(op: string, args: Record<string, unknown>): Op<T> {
    return yield* this.callOp<T>('op', { op, args });
  }

  /** Paramiko's cwd emulation: relative paths are joined to the directory chdir set. */
  private adjust(path: string): string {
    if (this.cwd === null || path.startsWith('/')) return path;
    return this.cwd === '/' ? `/${path}` : `${this.cwd}/${path}`;
  }

  // Each method below has a promise twin, `<name>Async`, running the same op.

  // ---- directories and names ----

  listdir(path = '.'): string[] {
    return runSync(this.listdirOp(path));
  }
  listdirAsync(path = '.'): Promise<string[]> {
    return runAsync(this.listdirOp(path));
  }
  private *listdirOp(path: string): Op<string[]> {
    return (yield* this.listdirAttrOp(path)).map((a) => a.filename!);
  }

  /** Entries with `filename` and `longname`; no `.` or `..`. */
  listdirAttr(path = '.'): SFTPAttributes[] {
    return runSync(this.listdirAttrOp(path));
  }
  listdirAttrAsync(path = '.'): Promise<SFTPAttributes[]> {
    return runAsync(this.listdirAttrOp(path));
  }
  private *listdirAttrOp(path: string): Op<SFTPAttributes[]> {
    const all = (yield* this.op<unknown[]>('listdir', { path: this.adjust(path) })).map(toAttributes);
    return all.filter((a) => a.filename !== '.' && a.filename !== '..');
  }

  *listdirIter(path = '.'): Generator<SFTPAttributes> {
    yield* this.listdirAttr(path);
  }

  /** `for await (const attr of sftp.listdirIterAsync(path))`. */
  async *listdirIterAsync(path = '.'): AsyncGenerator<SFTPAttributes> {
    yield* await this.listdirAttrAsync(path);
  }

  mkdir(path: string, mode = 0o777): void {
    runSync(this.mkdirOp(path, mode));
  }
  mkdirAsync(path: string, mode = 0o777): Promise<void> {
    return runAsync(this.mkdirOp(path, mode));
  }
  private *mkdirOp(path: string, mode: number): Op<void> {
    yield* this.op('mkdir', { path: this.adjust(path), attrs: { st_mode: mode } });
  }

  rmdir(path: string): void {
    runSync(this.pathOp('rmdir', path));
  }
  rmdirAsync(path: string): Promise<void> {
    return runAsync(this.pathOp('rmdir', path));
  }

  remove(path: string): void {
    runSync(this.pathOp('remove', path));
  }
  removeAsync(path: string): Promise<void> {
    return runAsync(this.pathOp('remove', path));
  }

  unlink(path: string): void {
    this.remove(path);
  }
  unlinkAsync(path: string): Promise<void> {
    return this.removeAsync(path);
  }

  /** An operation on one path whose answer is OK or an error. */
  private *pathOp(op: 'rmdir' | 'remove', path: string): Op<void> {
    yield* this.op(op, { path: this.adjust(path) });
  }

  /** SFTPv3 rename: fails when `newpath` exists (see posixRename). */
  rename(oldpath: string, newpath: string): void {
    runSync(this.twoPathOp('rename', oldpath, newpath));
  }
  renameAsync(oldpath: string, newpath: string): Promise<void> {
    return runAsync(this.twoPathOp('rename', oldpath, newpath));
  }

  /** posix-rename@openssh.com: replaces `newpath` atomically. */
  posixRename(oldpath: string, newpath: string): void {
    runSync(this.twoPathOp('posixRename', oldpath, newpath));
  }
  posixRenameAsync(oldpath: string, newpath: string): Promise<void> {
    return runAsync(this.twoPathOp('posixRename', oldpath, newpath));
  }

  /** hardlink@openssh.com (beyond Paramiko). */
  hardlink(oldpath: string, newpath: string): void {
    runSync(this.twoPathOp('hardlink', oldpath, newpath));
  }
  hardlinkAsync(oldpath: string, newpath: string): Promise<void> {
    return runAsync(this.twoPathOp('hardlink', oldpath, newpath));
  }

  private *twoPathOp(op: 'rename' | 'posixRename' | 'hardlink', oldpath: string, newpath: string): Op<void> {
    yield* this.op(op, { oldPath: this.adjust(oldpath), newPath: this.adjust(newpath) });
  }

  /** A symbolic link at `dest` pointing to `source` (OpenSSH's argument order is handled). */
  symlink(source: string, dest: string): void {
    runSync(this.symlinkOp(source, dest));
  }
  symlinkAsync(source: string, dest: string): Promise<void> {
    return runAsync(this.symlinkOp(source, dest));
  }
  private *symlinkOp(source: string, dest: string): Op<void> {
    yield* this.op('symlink', { target: source, link: this.adjust(dest) });
  }

  readlink(path: string): string {
    return runSync(this.nameOp('readlink', path));
  }
  readlinkAsync(path: string): Promise<string> {
    return runAsync(this.nameOp('readlink', path));
  }

  /** The server's canonical absolute path (`.`: its working directory). */
  normalize(path: string): string {
    return runSync(this.nameOp('realpath', path));
  }
  normalizeAsync(path: string): Promise<string> {
    return runAsync(this.nameOp('realpath', path));
  }

  /** An operation on one path whose answer is a name. */
  private *nameOp(op: 'readlink' | 'realpath', path: string): Op<string> {
    return yield* this.op<string>(op, { path: this.adjust(path) });
  }

  /** Client-side working directory, as Paramiko (null resets); IOError if not a directory. */
  chdir(path: string | null = null): void {
    runSync(this.chdirOp(path));
  }
  chdirAsync(path: string | null = null): Promise<void> {
    return runAsync(this.chdirOp(path));
  }
  private *chdirOp(path: string | null): Op<void> {
    if (path === null) {
      this.cwd = null;
      return;
    }
    const st = yield* this.statOp('stat', path);
    if (((st.st_mode ?? 0) & 0o170000) !== 0o040000) throw new IOError(`ENOTDIR: not a directory, chdir '${path}'`, { code: 'ENOTDIR', errno: 20, filename: path });
    this.cwd = yield* this.nameOp('realpath', path);
  }

  /** The directory chdir set, or null when it was never called (Paramiko). */
  getcwd(): string | null {
    return this.cwd;
  }

  /** mkdir -p (beyond Paramiko). */
  makedirs(path: string, mode = 0o777): void {
    runSync(this.makedirsOp(path, mode));
  }
  makedirsAsync(path: string, mode = 0o777): Promise<void> {
    return runAsync(this.makedirsOp(path, mode));
  }
  private *makedirsOp(path: string, mode: number): Op<void> {
    const abs = this.adjust(path);
    const parts = abs.split('/').filter(Boolean);
    let cur = abs.startsWith('/') ? '' : '.';
    for (const p of parts) {
      cur = cur === '' ? `/${p}` : `${cur}/${p}`;
      let st: SFTPAttributes | null = null;
      try {
        st = yield* this.statOp('stat', cur);
      } catch (e) {
        if ((e as IOError).code !== 'ENOENT') throw e;
      }
      if (st === null) yield* this.mkdirOp(cur, mode);
      else if (((st.st_mode ?? 0) & 0o170000) !== 0o040000) throw new IOError(`EEXIST: not a directory, mkdir '${cur}'`, { code: 'EEXIST', errno: 17, filename: cur });
    }
  }

  /**
   * rm -r (beyond Paramiko): removes `path` and everything under it; symlinks are not followed.
   * The tree is listed first, then its files removed many at a time in the worker, then its
   * directories, deepest first (one request each would be one round trip each).
   */
  rmtree(path: string): void {
    runSync(this.rmtreeOp(path));
  }
  rmtreeAsync(path: string): Promise<void> {
    return runAsync(this.rmtreeOp(path));
  }
  private *rmtreeOp(path: string): Op<void> {
    const files: string[] = [];
    const levels: string[][] = [];
    const walk = function* (this: SFTPClient, dir: string, depth: number): Op<void> {
      (levels[depth] ??= []).push(dir);
      for (const a of yield* this.listdirAttrOp(dir)) {
        const child = `${dir}/${a.filename}`;
        if (a.isDirectory()) yield* walk.call(this, child, depth + 1);
        else files.push(child);
      }
    };
    yield* walk.call(this, this.adjust(path), 0);
    yield* this.callOp('removeMany', { op: 'remove', paths: files });
    for (const level of levels.reverse()) yield* this.callOp('removeMany', { op: 'rmdir', paths: level });
  }

  // ---- attributes ----

  stat(path: string): SFTPAttributes {
    return runSync(this.statOp('stat', path));
  }
  statAsync(path: string): Promise<SFTPAttributes> {
    return runAsync(this.statOp('stat', path));
  }

  lstat(path: string): SFTPAttributes {
    return runSync(this.statOp('lstat', path));
  }
  lstatAsync(path: string): Promise<SFTPAttributes> {
    return runAsync(this.statOp('lstat', path));
  }

  private *statOp(op: 'stat' | 'lstat', path: string): Op<SFTPAttributes> {
    return toAttributes(yield* this.op(op, { path: this.adjust(path) }));
  }

  // ---- glob (AsyncSSH's) ----

  /**
   * The remote paths matching `pattern`, sorted (AsyncSSH's glob): `*`, `?` and `[...]`
   * (`[!...]` negated) within a name, `**` for any depth of directories (links to directories
   * are not followed there). As a shell: a name starting with "." matches only a pattern part
   * that starts with "."; a part without wildcards must exist; a trailing "/" keeps directories
   * only. Relative patterns give relative paths (from chdir's directory). Directories the server
   * will not list are passed over, as Python's glob does.
   */
  glob(pattern: string): string[] {
    return runSync(this.globOp(pattern));
  }
  globAsync(pattern: string): Promise<string[]> {
    return runAsync(this.globOp(pattern));
  }

  private *globOp(pattern: string): Op<string[]> {
    return yield* globWalk(pattern, this.globTree);
  }

  /** The server's files as glob walks them. */
  private readonly globTree: GlobTree = {
    listOp: (dir) => this.listableOp(dir),
    probeOp: (path, dirsOnly) => this.probeOp(dirsOnly ? 'stat' : 'lstat', path, (a) => !dirsOnly || a.isDirectory()),
  };

  /** A directory's entries for glob, or none when it cannot be listed (missing, not a directory, refused). */
  private *listableOp(dir: string): Op<GlobEntry[]> {
    try {
      const entries = yield* this.listdirAttrOp(dir === '' ? '.' : dir);
      return entries.map((a) => ({ name: a.filename!, dir: a.isDirectory(), link: a.isSymbolicLink() }));
    } catch (e) {
      if (failedWith(e, FX.NO_SUCH_FILE, FX.PERMISSION_DENIED, FX.FAILURE)) return [];
      throw e;
    }
  }

  // ---- os.path-style tests (AsyncSSH's; Python's os.path) ----

  /**
   * Whether `path` names something, following links (a dangling link does not exist). As
   * Python's os.path.exists: false when the server answers no such file or permission denied;
   * other errors (a closed session) still raise.
   */
  exists(path: string): boolean {
    return runSync(this.probeOp('stat', path, () => true));
  }
  existsAsync(path: string): Promise<boolean> {
    return runAsync(this.probeOp('stat', path, () => true));
  }

  /** As exists, without following a final link (a dangling link exists). */
  lexists(path: string): boolean {
    return runSync(this.probeOp('lstat', path, () => true));
  }
  lexistsAsync(path: string): Promise<boolean> {
    return runAsync(this.probeOp('lstat', path, () => true));
  }

  /** Whether `path` is a directory, following links; false where exists is. */
  isdir(path: string): boolean {
    return runSync(this.probeOp('stat', path, (a) => a.isDirectory()));
  }
  isdirAsync(path: string): Promise<boolean> {
    return runAsync(this.probeOp('stat', path, (a) => a.isDirectory()));
  }

  /** Whether `path` is a regular file, following links; false where exists is. */
  isfile(path: string): boolean {
    return runSync(this.probeOp('stat', path, (a) => a.isFile()));
  }
  isfileAsync(path: string): Promise<boolean> {
    return runAsync(this.probeOp('stat', path, (a) => a.isFile()));
  }

  /** Whether `path` itself is a symbolic link; false where lexists is. */
  islink(path: string): boolean {
    return runSync(this.probeOp('lstat', path, (a) => a.isSymbolicLink()));
  }
  islinkAsync(path: string): Promise<boolean> {
    return runAsync(this.probeOp('lstat', path, (a) => a.isSymbolicLink()));
  }

  private *probeOp(op: 'stat' | 'lstat', path: string, test: (a: SFTPAttributes) => boolean): Op<boolean> {
    let attrs: SFTPAttributes;
    try {
      attrs = yield* this.statOp(op, path);
    } catch (e) {
      if (failedWith(e, FX.NO_SUCH_FILE, FX.PERMISSION_DENIED)) return false;
      throw e;
    }
    return test(attrs);
  }

  chmod(path: string, mode: number): void {
    runSync(this.setstatOp(path, { st_mode: mode }));
  }
  chmodAsync(path: string, mode: number): Promise<void> {
    return runAsync(this.setstatOp(path, { st_mode: mode }));
  }

  chown(path: string, uid: number, gid: number): void {
    runSync(this.setstatOp(path, { st_uid: uid, st_gid: gid }));
  }
  chownAsync(path: string, uid: number, gid: number): Promise<void> {
    return runAsync(this.setstatOp(path, { st_uid: uid, st_gid: gid }));
  }

  /** `times`: [atime, mtime] in seconds, or null for now. */
  utime(path: string, times: [number, number] | null = null): void {
    runSync(this.setstatOp(path, utimeAttrs(times)));
  }
  utimeAsync(path: string, times: [number, number] | null = null): Promise<void> {
    return runAsync(this.setstatOp(path, utimeAttrs(times)));
  }

  truncate(path: string, size: number): void {
    runSync(this.setstatOp(path, { st_size: size }));
  }
  truncateAsync(path: string, size: number): Promise<void> {
    return runAsync(this.setstatOp(path, { st_size: size }));
  }

  private *setstatOp(path: string, attrs: Record<string, number>): Op<void> {
    yield* this.op('setstat', { path: this.adjust(path), attrs });
  }

  /** statvfs@openssh.com (beyond Paramiko). */
  statvfs(path: string): SftpStatVFS {
    return runSync(this.op<SftpStatVFS>('statvfs', { path: this.adjust(path) }));
  }
  statvfsAsync(path: string): Promise<SftpStatVFS> {
    return runAsync(this.op<SftpStatVFS>('statvfs', { path: this.adjust(path) }));
  }

  /** limits@openssh.com, or the defaults OpenSSH's client assumes (beyond Paramiko). */
  limits(): SftpLimits {
    return runSync(this.op<SftpLimits>('limits', {}));
  }
  limitsAsync(): Promise<SftpLimits> {
    return runAsync(this.op<SftpLimits>('limits', {}));
  }

  // ---- files ----

  // ---- copies on the server ----

  /** Whether the server copies files itself (the copy-data extension: OpenSSH 9.0+, our server). AsyncSSH's supports_remote_copy. */
  get supportsRemoteCopy(): boolean {
    return this.extensions.includes('copy-data');
  }

  /**
   * Copies remote file `src` to remote path `dst` (beyond Paramiko; fs.copyFile's meaning,
   * `exclusive` as its COPYFILE_EXCL: EEXIST when `dst` exists). The server copies the bytes
   * itself when it has copy-data; otherwise they come down and go back up through this
   * connection, in the worker with both pipelines full (`throughClient` forces that). A new file
   * gets the source's permissions; the size is checked afterwards, and copying a file onto
   * itself leaves it whole. `callback(bytesSoFar, total)` as get's. Returns the bytes copied.
   */
  copyFile(src: string, dst: string, options: CopyFileOptions = {}): number {
    return runSync(this.copyFileOp(src, dst, options));
  }
  copyFileAsync(src: string, dst: string, options: CopyFileOptions = {}): Promise<number> {
    return runAsync(this.copyFileOp(src, dst, options));
  }
  private *copyFileOp(src: string, dst: string, options: CopyFileOptions): Op<number> {
    const args = { from: this.adjust(src), to: this.adjust(dst), exclusive: Boolean(options.exclusive), throughClient: Boolean(options.throughClient), idleTimeout: this.timeout };
    const r = yield* withProgress(options.callback, (progressKey) => this.callOp<{ bytes: number }>('copy', { ...args, progressKey }, null));
    return r.bytes;
  }

  /**
   * AsyncSSH's remote_copy: the server copies `srcLength` bytes (0: to the end) at `srcOffset`
   * of `src` to `dstOffset` of `dst`, with the copy-data extension (IOError with status
   * OP_UNSUPPORTED when the server lacks it: see supportsRemoteCopy, or use copyFile). Each of
   * `src` and `dst` is an open SFTPFile of this client (buffered writes are sent first) or a
   * path, opened for the copy as AsyncSSH does: `src` to read, `dst` to write, truncated.
   */
  remoteCopy(src: string | SFTPFile, dst: string | SFTPFile, srcOffset = 0, srcLength = 0, dstOffset = 0): void {
    runSync(this.remoteCopyOp(src, dst, srcOffset, srcLength, dstOffset));
  }
  remoteCopyAsync(src: string | SFTPFile, dst: string | SFTPFile, srcOffset = 0, srcLength = 0, dstOffset = 0): Promise<void> {
    return runAsync(this.remoteCopyOp(src, dst, srcOffset, srcLength, dstOffset));
  }
  private *remoteCopyOp(src: string | SFTPFile, dst: string | SFTPFile, srcOffset: number, srcLength: number, dstOffset: number): Op<void> {
    for (const [name, n] of [['srcOffset', srcOffset], ['srcLength', srcLength], ['dstOffset', dstOffset]] as const) {
      if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`remoteCopy: ${name} must be a byte count >= 0, not ${n}`);
    }
    const opened: SFTPFile[] = [];
    let failed = true;
    try {
      const from = typeof src === 'string' ? (opened[opened.length] = yield* this.openOp(src, 'rb', -1)) : src;
      const to = typeof dst === 'string' ? (opened[opened.length] = yield* this.openOp(dst, 'wb', -1)) : dst;
      const fromHandle = yield* from.serverHandleOp(this, false);
      const toHandle = yield* to.serverHandleOp(this, true);
      yield* this.op('copyData', { from: fromHandle, fromOffset: srcOffset, length: srcLength, to: toHandle, toOffset: dstOffset });
      failed = false;
    } finally {
      // Files opened here are closed here; a close error counts only when the copy succeeded.
      for (const f of opened) {
        try {
          yield* f.closeOp();
        } catch (e) {
          if (!failed) throw e;
        }
      }
    }
  }

  /** Opens a remote file: modes r w a r+ w+ a+ x (+b; b only changes readline to Buffers). */
  open(filename: string, mode = 'r', bufsize = -1): SFTPFile {
    return runSync(this.openOp(filename, mode, bufsize));
  }
  openAsync(filename: string, mode = 'r', bufsize = -1): Promise<SFTPFile> {
    return runAsync(this.openOp(filename, mode, bufsize));
  }
  private *openOp(filename: string, mode: string, bufsize: number): Op<SFTPFile> {
    const { flags } = parseMode(mode);
    const handle = toBuffer(yield* this.op<Uint8Array>('open', { path: this.adjust(filename), flags, attrs: null })) as Buffer;
    return yield* new SFTPFile(this, handle, mode, bufsize, filename).openedOp();
  }

  file(filename: string, mode = 'r', bufsize = -1): SFTPFile {
    return this.open(filename, mode, bufsize);
  }

  /**
   * Uploads a local file (`remotepath` must include the file name). Runs in the worker with
   * many writes in flight; `confirm` checks the size afterwards ("size mismatch in put!").
   * Beyond Paramiko, AsyncSSH's options: `recurse` uploads a local directory and everything
   * under it as the remote directory `remotepath` (merged into one that exists; `callback` then
   * counts over the whole tree; the result is the remote directory's attributes), `preserve`
   * sets permissions and times as the originals', `followSymlinks` copies what links point to.
   */
  put(localpath: string, remotepath: string, callback: TransferCallback | null = null, confirm = true, options: TreeOptions = {}): SFTPAttributes {
    return runSync(this.putEntryOp(localpath, remotepath, callback, confirm, options));
  }

  /** The promise twin of put: the transfer runs in the worker either way; `callback` runs on this thread. */
  putAsync(localpath: string, remotepath: string, callback: TransferCallback | null = null, confirm = true, options: TreeOptions = {}): Promise<SFTPAttributes> {
    return runAsync(this.putEntryOp(localpath, remotepath, callback, confirm, options));
  }

  private *putEntryOp(localpath: string, remotepath: string, callback: TransferCallback | null, confirm: boolean, o: TreeOptions): Op<SFTPAttributes> {
    if (o.recurse) {
      yield* putTree(this.treeHost(confirm), localpath, this.adjust(remotepath), callback, o);
      return yield* this.statOp('stat', remotepath);
    }
    const st = yield* this.putOp(localpath, remotepath, callback, confirm);
    if (o.preserve) yield* this.setstatOp(remotepath, preservedAttrs(fromStats('', statSync(localpath))));
    return st;
  }

  private *putOp(localpath: string, remotepath: string, callback: TransferCallback | null, confirm: boolean): Op<SFTPAttributes> {
    // The timeout bounds inactivity, not the whole transfer (as a Paramiko channel's recv).
    const args = { local: localpath, remote: this.adjust(remotepath), confirm, idleTimeout: this.timeout };
    return toAttributes(yield* withProgress(callback, (progressKey) => this.callOp('put', { ...args, progressKey }, null)));
  }

  /**
   * Downloads to a local file, in the worker with many reads in flight; returns the byte count.
   * Beyond Paramiko, AsyncSSH's options: `recurse` downloads a remote directory and everything
   * under it as the local directory `localpath` (made if missing, merged into if there; the
   * byte count and `callback` are then over the whole tree), `preserve` sets permissions and
   * times as the originals', `followSymlinks` copies what links point to (links are otherwise
   * made again, pointing where they pointed). `prefetch` is accepted and always on.
   */
  get(remotepath: string, localpath: string, callback: TransferCallback | null = null, options: GetOptions = {}): number {
    return runSync(this.getEntryOp(remotepath, localpath, callback, options));
  }

  /** The promise twin of get. */
  getAsync(remotepath: string, localpath: string, callback: TransferCallback | null = null, options: GetOptions = {}): Promise<number> {
    return runAsync(this.getEntryOp(remotepath, localpath, callback, options));
  }

  private *getEntryOp(remotepath: string, localpath: string, callback: TransferCallback | null, o: GetOptions): Op<number> {
    if (o.recurse) return yield* getTree(this.treeHost(true), this.adjust(remotepath), localpath, callback, o);
    const n = yield* this.getOp(remotepath, localpath, callback);
    if (o.preserve) preserveLocal(localpath, fromAttrs('', yield* this.statOp('stat', remotepath)));
    return n;
  }

  private *getOp(remotepath: string, localpath: string, callback: TransferCallback | null): Op<number> {
    const args = { remote: this.adjust(remotepath), local: localpath, idleTimeout: this.timeout };
    return yield* withProgress(callback, (progressKey) => this.callOp<number>('get', { ...args, progressKey }, null));
  }

  // ---- mget / mput (AsyncSSH's) ----

  /**
   * Beyond Paramiko (AsyncSSH's mget): downloads every remote path matching `patterns` (glob's
   * syntax; one or a list) into the local directory `localdir`, each under its own name; files
   * go several at a time in the worker. A directory needs `recurse` (IOError EISDIR otherwise);
   * `preserve` and `followSymlinks` as for get. A pattern that matches nothing is an IOError
   * ENOENT, before anything is copied. Returns the bytes copied; `callback` follows the files
   * together, then each directory.
   */
  mget(patterns: string | string[], localdir = '.', callback: TransferCallback | null = null, options: GetOptions = {}): number {
    return runSync(this.mgetOp(patterns, localdir, callback, options));
  }

  /** The promise twin of mget. */
  mgetAsync(patterns: string | string[], localdir = '.', callback: TransferCallback | null = null, options: GetOptions = {}): Promise<number> {
    return runAsync(this.mgetOp(patterns, localdir, callback, options));
  }

  private *mgetOp(patterns: string | string[], localdir: string, callback: TransferCallback | null, o: GetOptions): Op<number> {
    const paths = yield* matchesOp(patterns, (p) => this.globOp(p), 'remote');
    needLocalDirectory(localdir);
    const files: Array<{ remote: string; local: string; size: number; attrs: SFTPAttributes }> = [];
    const dirs: string[] = [];
    for (const path of paths) {
      // A link counts as what it points to (get copies a link's target).
      const attrs = yield* this.statOp('stat', path);
      if (attrs.isDirectory()) dirs.push(path);
      else files.push({ remote: path, local: join(localdir, basename(path)), size: Number(attrs.st_size ?? 0), attrs });
    }
    if (dirs.length && !o.recurse) throw isDirectory(dirs[0], 'mget');
    let total = yield* this.batchOp('get', files.map((f) => ({ remote: this.adjust(f.remote), local: f.local, size: f.size })), callback, true);
    if (o.preserve) for (const f of files) preserveLocal(f.local, fromAttrs('', f.attrs));
    for (const dir of dirs) total += yield* getTree(this.treeHost(true), this.adjust(dir), join(localdir, basename(dir)), callback, o);
    return total;
  }

  /**
   * Beyond Paramiko (AsyncSSH's mput): uploads every local path matching `patterns` into the
   * remote directory `remotedir`, as mget the other way (`confirm` checks each file's size).
   * Returns the bytes copied.
   */
  mput(patterns: string | string[], remotedir = '.', callback: TransferCallback | null = null, confirm = true, options: TreeOptions = {}): number {
    return runSync(this.mputOp(patterns, remotedir, callback, confirm, options));
  }

  /** The promise twin of mput. */
  mputAsync(patterns: string | string[], remotedir = '.', callback: TransferCallback | null = null, confirm = true, options: TreeOptions = {}): Promise<number> {
    return runAsync(this.mputOp(patterns, remotedir, callback, confirm, options));
  }

  private *mputOp(patterns: string | string[], remotedir: string, callback: TransferCallback | null, confirm: boolean, o: TreeOptions): Op<number> {
    const paths = yield* matchesOp(patterns, (p) => globWalk(p, LOCAL_TREE), 'local');
    if (!(yield* this.probeOp('stat', remotedir, (a) => a.isDirectory()))) {
      throw new IOError(`ENOTDIR: mput needs a remote directory, '${remotedir}' is not one`, { code: 'ENOTDIR', errno: 20, filename: remotedir });
    }
    const files: Array<{ remote: string; local: string; size: number }> = [];
    const dirs: string[] = [];
    for (const path of paths) {
      // A link counts as what it points to (put copies a link's target).
      const st = statSync(path);
      if (st.isDirectory()) dirs.push(path);
      else files.push({ local: path, remote: joinRemote(remotedir, basename(path)), size: st.size });
    }
    if (dirs.length && !o.recurse) throw isDirectory(dirs[0], 'mput');
    let total = yield* this.batchOp('put', files.map((f) => ({ ...f, remote: this.adjust(f.remote) })), callback, confirm);
    if (o.preserve) for (const f of files) yield* this.setstatOp(f.remote, preservedAttrs(fromStats('', statSync(f.local))));
    for (const dir of dirs) {
      total += yield* putTree(this.treeHost(confirm), dir, this.adjust(joinRemote(remotedir, basename(dir))), callback, o);
    }
    return total;
  }

  /** This client's ops for the tree transfers (lib/api/sftp-tree.ts); paths there are absolute or as given. */
  private treeHost(confirm: boolean): TreeHost {
    return {
      statOp: (op, path) => this.statOp(op, path),
      listdirsAttrOp: (paths) => this.listdirsAttrOp(paths),
      readlinkOp: (path) => this.nameOp('readlink', path),
      realpathOp: (path) => this.nameOp('realpath', path),
      makeDirsOp: (levels) => this.makeDirsOp(levels),
      symlinkOp: (source, dest) => this.symlinkOp(source, dest),
      removeOp: (path) => this.pathOp('remove', path),
      setstatOp: (path, attrs) => this.setstatOp(path, attrs),
      transferFilesOp: (direction, files, cb) => this.batchOp(direction, files, cb, confirm),
    };
  }

  /** Listings of many directories at once in the worker (a level of a recursive get). */
  private *listdirsAttrOp(paths: string[]): Op<SFTPAttributes[][]> {
    if (paths.length === 0) return [];
    const all = yield* this.callOp<unknown[][]>('listdirMany', { paths: paths.map((p) => this.adjust(p)) });
    return all.map((list) => list.map(toAttributes).filter((a) => a.filename !== '.' && a.filename !== '..'));
  }

  /** Directories made level by level, each level's at once in the worker (the tree transfers). */
  private *makeDirsOp(levels: Array<Array<{ path: string; mode: number }>>): Op<void> {
    if (levels.length) yield* this.callOp('makeDirs', { levels });
  }

  /** Files moved several at a time in the worker (the tree transfers). */
  private *batchOp(direction: 'get' | 'put', files: Array<{ remote: string; local: string; size: number }>, callback: TransferCallback | null, confirm: boolean): Op<number> {
    if (files.length === 0) return 0;
    const args = { direction, files, parallel: TREE_PARALLEL_FILES, confirm, idleTimeout: this.timeout };
    return yield* withProgress(callback, (progressKey) => this.callOp<number>('batch', { ...args, progressKey }, null));
  }

  /** Uploads what `fl.read()` gives until it is empty; returns the remote attributes. */
  putfo(fl: ReadableFileLike, remotepath: string, fileSize = 0, callback: TransferCallback | null = null, confirm = true): SFTPAttributes {
    return runSync(this.putfoOp(fl, remotepath, fileSize, callback, confirm));
  }

  /** The promise twin of putfo (`fl.read` stays synchronous). */
  putfoAsync(fl: ReadableFileLike, remotepath: string, fileSize = 0, callback: TransferCallback | null = null, confirm = true): Promise<SFTPAttributes> {
    return runAsync(this.putfoOp(fl, remotepath, fileSize, callback, confirm));
  }

  private *putfoOp(fl: ReadableFileLike, remotepath: string, fileSize: number, callback: TransferCallback | null, confirm: boolean): Op<SFTPAttributes> {
    const f = yield* this.openOp(remotepath, 'wb', -1);
    let size = 0;
    try {
      f.setPipelined(true);
      for (;;) {
        const chunk = fl.read(1 << 20);
        if (chunk === null || chunk === undefined || chunk.length === 0) break;
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
        yield* f.writeOp(buf);
        size += buf.length;
        callback?.(size, fileSize);
      }
    } finally {
      yield* f.closeOp();
    }
    if (!confirm) return Object.assign(new SFTPAttributes(), { st_size: size });
    const st = yield* this.statOp('stat', remotepath);
    if (st.st_size !== size) throw new IOError(`size mismatch in put!  ${String(st.st_size)} != ${size}`);
    return st;
  }

  /** Downloads into `fl.write()`; returns the byte count. */
  getfo(remotepath: string, fl: WritableFileLike, callback: TransferCallback | null = null, _options: { prefetch?: boolean } = {}): number {
    return runSync(this.getfoOp(remotepath, fl, callback));
  }

  /** The promise twin of getfo (`fl.write` stays synchronous). */
  getfoAsync(remotepath: string, fl: WritableFileLike, callback: TransferCallback | null = null, _options: { prefetch?: boolean } = {}): Promise<number> {
    return runAsync(this.getfoOp(remotepath, fl, callback));
  }

  private *getfoOp(remotepath: string, fl: WritableFileLike, callback: TransferCallback | null): Op<number> {
    const f = yield* this.openOp(remotepath, 'rb', -1);
    let n = 0;
    try {
      const total = Number((yield* f.statOp()).st_size ?? 0);
      f.prefetch(total);
      for (;;) {
        const chunk = yield* f.readOp(1 << 22);
        if (chunk.length === 0) break;
        fl.write(chunk);
        n += chunk.length;
        callback?.(n, total);
      }
    } finally {
      yield* f.closeOp();
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
    runSync(this.closeOp());
  }

  /** The promise twin of close. */
  closeAsync(): Promise<void> {
    return runAsync(this.closeOp());
  }

  private *closeOp(): Op<void> {
    if (this.id === null) return;
    const id = this.id;
    this.id = null;
    yield* request('sftp', 'closeSession', { sftp: id }, 10);
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
