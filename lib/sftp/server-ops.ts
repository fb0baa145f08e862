/**
 * What the server does for each request, on the real filesystem inside the jail. Every
 * method resolves with the reply packet or throws (a StatusError, or a Node fs error whose
 * errno the core turns into a status as OpenSSH's errno_to_portable does).
 */
import { constants as C, lstat } from 'node:fs';
import type { Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as posix from 'node:path/posix';
import { Message } from '../wire/message';
import { FileWriter, writeAllAt } from '../files';
import type { FileHandle } from 'node:fs/promises';
import { SFTPAttributes } from './attributes';
import { CheckFileRequest, encodeCheckFileReply, hashFileRangeAsync, planCheckFile, CHECK_FILE_CHUNK } from './check-file';
import { FX, FXF, STATVFS_FLAG } from './constants';
import { allocDataReply, DATA_HEADER, encodeReply, finishDataReply } from './replies';
import type { BufferPool } from '../buffer-pool';
import { DirEntry, FileEntry, HandleEntry, HandleTable, OrderedQueue } from './server-handles';
import { PathJail, StatusError } from './server-paths';
import { readUint64, Uint64 } from './uint64';
import { SYSTEM_ID_NAMES } from './id-names';

/** Entries per NAME reply to READDIR: OpenSSH's sftp-server sends at most 100. */
const READDIR_BATCH = 100;

/** copy-data moves data through a buffer of this size. */
const COPY_CHUNK = 64 * 1024;

/** Whether a WRITE of `length` bytes at `offset` stays within the offsets a JavaScript number
 * holds exactly (2^53, 8 PiB); past them ServerOps.write refuses it as too large. */
export function writeFitsSafely(offset: Uint64, length: number): offset is number {
  return typeof offset !== 'bigint' && Number.isSafeInteger(offset + length);
}

/**
 * lstat of every path at once, null for one that fails (removed since it was listed). Through
 * fs.lstat's callbacks and one promise: a promise API call per name cost several times the
 * syscall's own time on the worker's thread (a listing of 1000 names took 12-20 ms, sshd's 7-9).
 */
function lstatAll(paths: readonly string[]): Promise<Array<Stats | null>> {
  const out: Array<Stats | null> = new Array(paths.length).fill(null);
  if (paths.length === 0) return Promise.resolve(out);
  return new Promise((resolve) => {
    let left = paths.length;
    paths.forEach((path, i) =>
      lstat(path, (err, st) => {
        if (!err) out[i] = st;
        if (--left === 0) resolve(out);
      }),
    );
  });
}

export interface ServerLimits {
  maxPacketLength: number;
  maxReadLength: number;
  maxWriteLength: number;
  maxOpenHandles: number;
}

export interface OpsConfig {
  /** Where READ replies get their buffers (the owner gives them back once sent). */
  replyPool?: BufferPool;
  readOnly: boolean;
  umask: number | undefined;
  limits: ServerLimits;
}

const denied = (): StatusError => new StatusError(FX.PERMISSION_DENIED, 'Permission denied');
const invalidHandle = (): StatusError => new StatusError(FX.FAILURE, 'Invalid handle');

export class ServerOps {
  constructor(
    readonly jail: PathJail,
    readonly handles: HandleTable,
    readonly cfg: OpsConfig,
  ) {}

  ok(id: number): Buffer {
    return encodeReply.status(id, FX.OK);
  }

  writable(): void {
    if (this.cfg.readOnly) throw denied();
  }

  /** The HANDLE reply for what an OPEN or OPENDIR opened; closed again when the table filled or the session ended while it opened. */
  private handleReply(id: number, entry: HandleEntry): Buffer {
    const handle = this.handles.add(entry);
    if (!handle) throw new StatusError(FX.FAILURE, `Too many open handles (limit ${this.handles.maxHandles})`);
    return encodeReply.handle(id, handle);
  }

  private roomForHandle(): void {
    if (this.handles.full) throw new StatusError(FX.FAILURE, `Too many open handles (limit ${this.handles.maxHandles})`);
  }

  /** Creation mode: the client's permissions (or the default), less the configured umask. */
  private createMode(attrs: SFTPAttributes, fallback: number): number {
    const mode = attrs.st_mode !== undefined ? attrs.st_mode & 0o7777 : fallback;
    return this.cfg.umask === undefined ? mode : mode & ~this.cfg.umask;
  }

  /** Refuses to remove, rename or replace the root itself. */
  private notRoot(real: string): string {
    if (real === this.jail.realRoot) throw denied();
    return real;
  }

  // ---- files ----

  async open(id: number, path: string, pflags: number, attrs: SFTPAttributes): Promise<Buffer> {
    const readable = (pflags & FXF.READ) !== 0;
    const writable = (pflags & FXF.WRITE) !== 0;
    if (this.cfg.readOnly && (writable || pflags & (FXF.CREAT | FXF.TRUNC | FXF.APPEND))) throw denied();
    this.roomForHandle();
    let flags = readable && writable ? C.O_RDWR : writable ? C.O_WRONLY : C.O_RDONLY;
    if (pflags & FXF.APPEND) flags |= C.O_APPEND;
    if (pflags & FXF.CREAT) flags |= C.O_CREAT;
    if (pflags & FXF.TRUNC) flags |= C.O_TRUNC;
    if (pflags & FXF.EXCL) flags |= C.O_EXCL;
    const real = await this.jail.resolve(path, true);
    const mode = this.createMode(attrs, 0o666);
    // With an explicit umask, a created file gets exactly its mode, whatever the process umask.
    const created = this.cfg.umask !== undefined && pflags & FXF.CREAT ? await fsp.lstat(real).then(() => false, () => true) : false;
    const fh = await fsp.open(real, flags | C.O_NOFOLLOW, mode);
    if (created) await fh.chmod(mode).catch(() => undefined);
    return this.handleReply(id, { kind: 'file', fh, realPath: real, readable, writable, queue: new OrderedQueue() });
  }

  file(handle: Buffer): FileEntry {
    const e = this.handles.get(handle);
    if (!e || e.kind !== 'file') throw invalidHandle();
    return e;
  }

  async read(id: number, e: FileEntry, offset: Uint64, length: number): Promise<Buffer> {
    // Beyond 2^53 (8 PiB) no real file has data.
    if (typeof offset === 'bigint') return encodeReply.status(id, FX.EOF);
    const n = Math.min(length, this.cfg.limits.maxReadLength);
    const buf = this.cfg.replyPool ? this.cfg.replyPool.take(DATA_HEADER + n) : allocDataReply(n);
    const { bytesRead } = await e.fh.read(buf, DATA_HEADER, n, offset);
    if (bytesRead === 0) return encodeReply.status(id, FX.EOF);
    return finishDataReply(buf, id, bytesRead);
  }

  async write(id: number, e: FileEntry, offset: Uint64, data: Buffer): Promise<Buffer> {
    this.writable();
    if (!writeFitsSafely(offset, data.length)) throw new StatusError(FX.FAILURE, 'File too large');
    await this.writeRun(e, offset, [data]);
    return this.ok(id);
  }

  /**
   * Several WRITEs of one handle that follow each other in the file (the core gathers them while
   * the write before them runs), all of each (no partial writes in SFTP). A regular file's go on
   * this thread, one call each (FileWriter); otherwise, or once one was slow, in one system call
   * through libuv's pool: what a client streaming 32 KiB WRITEs would otherwise cost in
   * thread-pool round trips, one per request.
   */
  async writeRun(e: FileEntry, offset: number, parts: Buffer[]): Promise<void> {
    this.writable();
    // A handle's writes are queued one after the other: the first makes the writer.
    e.writer ??= await FileWriter.forFile(e.fh, e.realPath);
    await e.writer.write(parts, offset);
  }

  async fstat(id: number, e: FileEntry): Promise<Buffer> {
    return encodeReply.attrs(id, SFTPAttributes.fromStat(await e.fh.stat()));
  }

  async fsetstat(id: number, e: FileEntry, a: SFTPAttributes): Promise<Buffer> {
    this.writable();
    if (a.st_size !== undefined) await e.fh.truncate(Number(a.st_size));
    if (a.st_mode !== undefined) await e.fh.chmod(a.st_mode & 0o7777);
    if (a.st_atime !== undefined && a.st_mtime !== undefined) await e.fh.utimes(a.st_atime, a.st_mtime);
    if (a.st_uid !== undefined && a.st_gid !== undefined) await e.fh.chown(a.st_uid, a.st_gid);
    return this.ok(id);
  }

  async fsync(id: number, e: FileEntry): Promise<Buffer> {
    await e.fh.sync();
    return this.ok(id);
  }

  /** copy-data: from one open file to another, `length` 0 meaning to end of file. */
  async copyData(id: number, from: FileEntry, readOffset: Uint64, length: Uint64, to: FileEntry, writeOffset: Uint64): Promise<Buffer> {
    this.writable();
    if (!from.readable || !to.writable) throw denied();
    const rOff = Number(readOffset);
    const wOff = Number(writeOffset);
    const len = Number(length);
    if (!Number.isSafeInteger(rOff + (len || 0)) || !Number.isSafeInteger(wOff + (len || 0))) throw new StatusError(FX.FAILURE, 'Offset too large');
    // The same file: overlapping ranges would read what was just written (OpenSSH refuses too).
    if (from === to && (len === 0 || (rOff < wOff + len && wOff < rOff + len))) {
      throw new StatusError(FX.FAILURE, 'Overlapping copy-data ranges');
    }
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    for (let done = 0; len === 0 || done < len; ) {
      const want = len === 0 ? COPY_CHUNK : Math.min(COPY_CHUNK, len - done);
      const { bytesRead } = await from.fh.read(buf, 0, want, rOff + done);
      if (bytesRead === 0) {
        if (len !== 0) throw new StatusError(FX.EOF, 'End of file');
        break;
      }
      await writeAllAt(to.fh, [buf.subarray(0, bytesRead)], wOff + done);
      done += bytesRead;
    }
    return this.ok(id);
  }

  /** check-file: hashes a range of an open file, a chunk at a time, yielding to other work between chunks. */
  async checkFile(id: number, fh: FileHandle, req: CheckFileRequest): Promise<Buffer> {
    const plan = planCheckFile(req, (await fh.stat()).size);
    const buf = Buffer.allocUnsafe(CHECK_FILE_CHUNK);
    const hashes = await hashFileRangeAsync(plan, async (offset, length) => {
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    });
    return encodeCheckFileReply(id, plan.algorithm, hashes);
  }

  /** check-file-name's file: opened read-only inside the jail, following links as OPEN does. */
  async openForCheck(path: string): Promise<FileHandle> {
    const real = await this.jail.resolve(path, true);
    return fsp.open(real, C.O_RDONLY | C.O_NOFOLLOW);
  }

  // ---- directories ----

  async opendir(id: number, path: string): Promise<Buffer> {
    this.roomForHandle();
    const real = await this.jail.resolve(path, true);
    // A batch's names in one read of the directory (Node's default buffers 32 at a time).
    const dir = await fsp.opendir(real, { bufferSize: READDIR_BATCH });
    return this.handleReply(id, { kind: 'dir', dir, realPath: real, dotsSent: false, queue: new OrderedQueue() });
  }

  dir(handle: Buffer): DirEntry {
    const e = this.handles.get(handle);
    if (!e || e.kind !== 'dir') throw invalidHandle();
    return e;
  }

  async readdir(id: number, e: DirEntry): Promise<Buffer> {
    const names: string[] = [];
    if (!e.dotsSent) {
      e.dotsSent = true;
      names.push('.', '..');
    }
    while (names.length < READDIR_BATCH) {
      const ent = await e.dir.read();
      if (!ent) break;
      names.push(ent.name);
    }
    if (names.length === 0) return encodeReply.status(id, FX.EOF);
    const parentOfRoot = e.realPath === this.jail.realRoot;
    // `..` of the root is shown as the root itself: nothing about its real parent leaks.
    const targets = names.map((name) => (name === '.' || (name === '..' && parentOfRoot) ? e.realPath : posix.join(e.realPath, name)));
    const stats = await lstatAll(targets);
    const entries: SFTPAttributes[] = [];
    names.forEach((name, i) => {
      const st = stats[i];
      if (!st) return; // removed since it was listed
      const a = SFTPAttributes.fromStat(st, name);
      a.longname = a.toString(undefined, { user: SYSTEM_ID_NAMES.user(st.uid), group: SYSTEM_ID_NAMES.group(st.gid) });
      entries.push(a);
    });
    return encodeReply.name(id, entries);
  }

  // ---- paths ----

  async stat(id: number, path: string, follow: boolean): Promise<Buffer> {
    const real = await this.jail.resolve(path, follow);
    const st = follow ? await fsp.stat(real) : await fsp.lstat(real);
    return encodeReply.attrs(id, SFTPAttributes.fromStat(st));
  }

  /** SETSTAT (follow) and lsetstat@openssh.com (no follow), in OpenSSH's order: size, mode, times, owner. */
  async setstat(id: number, path: string, a: SFTPAttributes, follow: boolean): Promise<Buffer> {
    this.writable();
    const real = await this.jail.resolve(path, follow);
    const isLink = !follow && (await fsp.lstat(real)).isSymbolicLink();
    if (isLink && (a.st_size !== undefined || a.st_mode !== undefined)) {
      // Linux cannot truncate or chmod a symlink itself.
      throw new StatusError(FX.OP_UNSUPPORTED, 'Operation not supported on a symbolic link');
    }
    if (a.st_size !== undefined) await fsp.truncate(real, Number(a.st_size));
    if (a.st_mode !== undefined) await fsp.chmod(real, a.st_mode & 0o7777);
    if (a.st_atime !== undefined && a.st_mtime !== undefined) {
      await (isLink ? fsp.lutimes : fsp.utimes)(real, a.st_atime, a.st_mtime);
    }
    if (a.st_uid !== undefined && a.st_gid !== undefined) await (isLink ? fsp.lchown : fsp.chown)(real, a.st_uid, a.st_gid);
    return this.ok(id);
  }

  async remove(id: number, path: string): Promise<Buffer> {
    this.writable();
    await fsp.unlink(this.notRoot(await this.jail.resolve(path, false)));
    return this.ok(id);
  }

  async mkdir(id: number, path: string, attrs: SFTPAttributes): Promise<Buffer> {
    this.writable();
    const real = await this.jail.resolve(path, false);
    const mode = this.createMode(attrs, 0o777);
    await fsp.mkdir(real, mode);
    if (this.cfg.umask !== undefined) await fsp.chmod(real, mode);
    return this.ok(id);
  }

  async rmdir(id: number, path: string): Promise<Buffer> {
    this.writable();
    await fsp.rmdir(this.notRoot(await this.jail.resolve(path, false)));
    return this.ok(id);
  }

  /** REALPATH as OpenSSH answers it: a missing last component is fine, a missing directory before it is not. */
  async realpath(id: number, path: string): Promise<Buffer> {
    const real = await this.jail.resolve(path, true);
    if (real !== this.jail.realRoot) await fsp.stat(posix.dirname(real));
    const v = this.jail.toVirtual(real);
    const a = new SFTPAttributes();
    a.filename = a.longname = v;
    return encodeReply.name(id, [a]);
  }

  /** expand-path@openssh.com: `~` is the root (the session's home), then as REALPATH. */
  async expandPath(id: number, path: string): Promise<Buffer> {
    if (path === '~' || path.startsWith('~/')) path = '/' + path.slice(1);
    else if (path.startsWith('~')) throw new StatusError(FX.NO_SUCH_FILE, 'No such user');
    return this.realpath(id, path);
  }

  /** SFTP v3 rename: refuses to replace an existing target. */
  async rename(id: number, oldPath: string, newPath: string, overwrite: boolean): Promise<Buffer> {
    this.writable();
    const from = this.notRoot(await this.jail.resolve(oldPath, false));
    const to = this.notRoot(await this.jail.resolve(newPath, false));
    if (!overwrite && (await fsp.lstat(to).then(() => true, () => false))) throw new StatusError(FX.FAILURE, 'File exists');
    await fsp.rename(from, to);
    return this.ok(id);
  }

  async readlink(id: number, path: string): Promise<Buffer> {
    const real = await this.jail.resolve(path, false);
    let target = await fsp.readlink(real);
    // An absolute target inside the root is shown as the client sees it.
    if (target.startsWith('/') && this.jail.inside(posix.normalize(target))) target = this.jail.toVirtual(posix.normalize(target));
    const a = new SFTPAttributes();
    a.filename = a.longname = target;
    return encodeReply.name(id, [a]);
  }

  /**
   * SYMLINK (OpenSSH's order: target, then link). An absolute target means a path inside the
   * root, so it is stored relative to the link's directory; a target leading out of the root
   * is refused.
   */
  async symlink(id: number, targetPath: string, linkPath: string): Promise<Buffer> {
    this.writable();
    if (targetPath.includes('\0')) throw new StatusError(FX.BAD_MESSAGE, 'Bad message');
    const link = this.notRoot(await this.jail.resolve(linkPath, false));
    let target = targetPath;
    if (target.startsWith('/')) target = posix.relative(posix.dirname(this.jail.virtual(linkPath)), this.jail.virtual(target)) || '.';
    await this.jail.checkTarget(posix.dirname(link), target);
    await fsp.symlink(target, link);
    return this.ok(id);
  }

  async hardlink(id: number, oldPath: string, newPath: string): Promise<Buffer> {
    this.writable();
    await fsp.link(await this.jail.resolve(oldPath, false), this.notRoot(await this.jail.resolve(newPath, false)));
    return this.ok(id);
  }

  /** statvfs@openssh.com from statfs(2); Node lacks frsize/favail/fsid/namemax, filled as Linux reports them. */
  async statvfs(id: number, realPath: string): Promise<Buffer> {
    const s = await fsp.statfs(realPath);
    const flag = this.cfg.readOnly ? STATVFS_FLAG.RDONLY : 0;
    const fields = [s.bsize, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.ffree, 0, flag, 255];
    return encodeReply.extendedReply(id, (m) => {
      for (const f of fields) m.addInt64(f);
    });
  }

  /**
   * users-groups-by-id@openssh.com: the names of the uids and gids asked for (packed uint32s),
   * each list a string of strings, empty for an id without a name.
   */
  usersGroupsById(id: number, uids: Buffer, gids: Buffer): Buffer {
    if (uids.length % 4 !== 0 || gids.length % 4 !== 0) return encodeReply.status(id, FX.BAD_MESSAGE, 'users-groups-by-id: an id list is not a whole number of uint32s');
    const names = (packed: Buffer, lookup: (n: number) => string | null): Buffer => {
      const list = new Message();
      for (let at = 0; at < packed.length; at += 4) list.addString(lookup(packed.readUInt32BE(at)) ?? '');
      return list.asBytes();
    };
    const users = names(uids, (n) => SYSTEM_ID_NAMES.user(n));
    const groups = names(gids, (n) => SYSTEM_ID_NAMES.group(n));
    return encodeReply.extendedReply(id, (m) => void m.addString(users).addString(groups));
  }

  limits(id: number): Buffer {
    const l = this.cfg.limits;
    return encodeReply.extendedReply(id, (m) => {
      m.addInt64(l.maxPacketLength).addInt64(l.maxReadLength).addInt64(l.maxWriteLength).addInt64(l.maxOpenHandles);
    });
  }
}

/** Reads a uint64 from an extended request's payload. */
export const getUint64 = (m: Message): Uint64 => readUint64(m.getBytes(8), 0);
