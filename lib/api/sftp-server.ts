import { chmodSync, chownSync, closeSync, constants as fsc, readSync, truncateSync, utimesSync } from 'node:fs';
import { posix } from 'node:path';
import { writeAllSync } from '../files';
import { SFTPAttributes } from '../sftp/attributes';
import { CHECK_FILE, checkFileAnnouncement, CheckFileRequest, decodeCheckFileArgs, encodeCheckFileReply, hashFileRangeSync, planCheckFile } from '../sftp/check-file';
import { EXT, FX, FXF, SFTP_VERSION } from '../sftp/constants';
import { PacketFramer } from '../sftp/framing';
import { encodeReply } from '../sftp/replies';
import { decodeRequest, peekId } from '../sftp/requests';
import type { SftpRequest } from '../sftp/requests';
import { StatusError } from '../sftp/server-paths';
import { SERVER_LIMITS } from '../sftp/server-core';
import type { Channel } from './channel';
import { ServerInterface, SubsystemHandler } from './server';
import type { Transport } from './transport';

/** Paramiko's SFTP_* result codes (SSH_FX_* values). */
export const SFTP_OK = FX.OK;
export const SFTP_EOF = FX.EOF;
export const SFTP_NO_SUCH_FILE = FX.NO_SUCH_FILE;
export const SFTP_PERMISSION_DENIED = FX.PERMISSION_DENIED;
export const SFTP_FAILURE = FX.FAILURE;
export const SFTP_BAD_MESSAGE = FX.BAD_MESSAGE;
export const SFTP_NO_CONNECTION = FX.NO_CONNECTION;
export const SFTP_CONNECTION_LOST = FX.CONNECTION_LOST;
export const SFTP_OP_UNSUPPORTED = FX.OP_UNSUPPORTED;

/**
 * Paramiko's SFTPHandle: an open file of an SFTPServerInterface. The default read/write work on
 * the file descriptors `readfile` / `writefile` (Node's fs numbers; Paramiko's are Python files),
 * positional, and `close` closes them; override them for anything else.
 */
export class SFTPHandle {
  readfile: number | null = null;
  writefile: number | null = null;
  /** Set by the server for stat()-style help; any name you like. */
  filename = '';

  constructor(readonly flags = 0) {}

  /** Bytes at `offset` (an empty Buffer at end of file), or an SFTP_* code. */
  read(offset: number, length: number): Buffer | number {
    if (this.readfile === null) return SFTP_OP_UNSUPPORTED;
    const buf = Buffer.allocUnsafe(length);
    const n = readSync(this.readfile, buf, 0, length, offset);
    return buf.subarray(0, n);
  }

  /** Writes all of `data` at `offset` (no partial writes): SFTP_OK or an SFTP_* code. */
  write(offset: number, data: Buffer): number {
    if (this.writefile === null) return SFTP_OP_UNSUPPORTED;
    // O_APPEND files take the data at their end whatever the offset, as pwrite does.
    writeAllSync(this.writefile, data, offset);
    return SFTP_OK;
  }

  stat(): SFTPAttributes | number {
    return SFTP_OP_UNSUPPORTED;
  }

  chattr(_attr: SFTPAttributes): number {
    return SFTP_OP_UNSUPPORTED;
  }

  close(): void {
    const fds = new Set([this.readfile, this.writefile]);
    for (const fd of fds) if (fd !== null) closeSync(fd);
    this.readfile = null;
    this.writefile = null;
  }
}

/**
 * Paramiko's SFTPServerInterface: override what your server supports; every default refuses
 * with SFTP_OP_UNSUPPORTED (canonicalize normalizes the path, as Paramiko's). Methods return
 * results or SFTP_* codes; one that throws answers with a code from its error (convertErrno).
 * `open` gets Node's `fs.constants.O_*` flags, as Paramiko passes `os.O_*`.
 */
export class SFTPServerInterface {
  constructor(
    protected readonly server: ServerInterface,
    ..._args: unknown[]
  ) {}

  sessionStarted(): void {}
  sessionEnded(): void {}
  open(_path: string, _flags: number, _attr: SFTPAttributes): SFTPHandle | number {
    return SFTP_OP_UNSUPPORTED;
  }
  /** Entries with `filename` set. */
  listFolder(_path: string): SFTPAttributes[] | number {
    return SFTP_OP_UNSUPPORTED;
  }
  stat(_path: string): SFTPAttributes | number {
    return SFTP_OP_UNSUPPORTED;
  }
  lstat(_path: string): SFTPAttributes | number {
    return SFTP_OP_UNSUPPORTED;
  }
  remove(_path: string): number {
    return SFTP_OP_UNSUPPORTED;
  }
  /** Should fail when `newpath` exists (SFTPv3). */
  rename(_oldpath: string, _newpath: string): number {
    return SFTP_OP_UNSUPPORTED;
  }
  /** posix-rename@openssh.com: replaces `newpath`. Announced only when overridden. */
  posixRename(_oldpath: string, _newpath: string): number {
    return SFTP_OP_UNSUPPORTED;
  }
  mkdir(_path: string, _attr: SFTPAttributes): number {
    return SFTP_OP_UNSUPPORTED;
  }
  rmdir(_path: string): number {
    return SFTP_OP_UNSUPPORTED;
  }
  chattr(_path: string, _attr: SFTPAttributes): number {
    return SFTP_OP_UNSUPPORTED;
  }
  /** The client's path made absolute and normal: security-sensitive, check it in yours. */
  canonicalize(path: string): string {
    return posix.normalize(posix.join('/', path));
  }
  readlink(_path: string): string | number {
    return SFTP_OP_UNSUPPORTED;
  }
  symlink(_targetPath: string, _path: string): number {
    return SFTP_OP_UNSUPPORTED;
  }
}

/** SFTP open flags as Node's fs O_* flags (Paramiko hands os.O_* to the interface). */
function osFlags(pflags: number): number {
  const rw = pflags & (FXF.READ | FXF.WRITE);
  let f = rw === (FXF.READ | FXF.WRITE) ? fsc.O_RDWR : rw === FXF.WRITE ? fsc.O_WRONLY : fsc.O_RDONLY;
  if (pflags & FXF.APPEND) f |= fsc.O_APPEND;
  if (pflags & FXF.CREAT) f |= fsc.O_CREAT;
  if (pflags & FXF.TRUNC) f |= fsc.O_TRUNC;
  if (pflags & FXF.EXCL) f |= fsc.O_EXCL;
  return f;
}

type InterfaceClass = new (server: ServerInterface, ...args: any[]) => SFTPServerInterface;

/** Entries sent per READDIR reply. */
const READDIR_BATCH = 100;

/**
 * Paramiko's SFTPServer: a SubsystemHandler, registered with
 * `transport.setSubsystemHandler('sftp', SFTPServer, MySFTPServerInterface, ...args)`. The
 * protocol runs on this thread inside `startSubsystem`, calling the interface for each request
 * (Paramiko runs it on a thread of its own). For a server that needs no user code, SSHServer
 * serves SFTP from a directory entirely in the worker, much faster.
 */
export class SFTPServer extends SubsystemHandler {
  private readonly si: SFTPServerInterface;
  private readonly files = new Map<string, SFTPHandle>();
  private readonly dirs = new Map<string, SFTPAttributes[]>();
  private nextHandle = 1;

  constructor(channel: Channel, name: string, server: ServerInterface, sftpSi: InterfaceClass = SFTPServerInterface, ...args: unknown[]) {
    super(channel, name, server);
    this.si = new sftpSi(server, ...args);
  }

  /** An errno-carrying error as an SFTP_* code (Paramiko's convert_errno). */
  static convertErrno(e: { code?: string } | null | undefined): number {
    switch (e?.code) {
      case 'ENOENT':
        return SFTP_NO_SUCH_FILE;
      case 'EACCES':
      case 'EPERM':
        return SFTP_PERMISSION_DENIED;
      default:
        return SFTP_FAILURE;
    }
  }

  /** Applies the set fields of `attr` to a local file (Paramiko's set_file_attr). */
  static setFileAttr(filename: string, attr: SFTPAttributes): void {
    if (attr.st_mode !== undefined) chmodSync(filename, attr.st_mode & 0o7777);
    if (attr.st_uid !== undefined && attr.st_gid !== undefined) chownSync(filename, attr.st_uid, attr.st_gid);
    if (attr.st_atime !== undefined && attr.st_mtime !== undefined) utimesSync(filename, attr.st_atime, attr.st_mtime);
    if (attr.st_size !== undefined) truncateSync(filename, Number(attr.st_size));
  }

  /** Serves requests until the client ends the session. */
  override startSubsystem(_name: string, _transport: Transport, channel: Channel): void {
    const framer = new PacketFramer();
    this.si.sessionStarted();
    try {
      for (;;) {
        const chunk = channel.recv(1 << 20);
        if (chunk.length === 0) break;
        const replies: Buffer[] = [];
        framer.push(chunk, (packet) => replies.push(this.handle(packet)));
        for (const r of replies) channel.sendall(r);
      }
    } finally {
      for (const h of this.files.values()) h.close();
      this.files.clear();
      this.dirs.clear();
      this.si.sessionEnded();
    }
  }

  override finishSubsystem(): void {
    if (!this.channel.closed) this.channel.sendExitStatus(0);
    super.finishSubsystem();
  }

  /** One request, one reply. */
  private handle(packet: Buffer): Buffer {
    let req: SftpRequest;
    try {
      req = decodeRequest(packet);
    } catch (e) {
      return encodeReply.status(peekId(packet) ?? 0, SFTP_BAD_MESSAGE, (e as Error).message);
    }
    if (req.kind === 'init') {
      // check-file is answered here through the handles' read, as Paramiko's server does.
      const exts: Array<[string, string]> = [checkFileAnnouncement()];
      if (this.si.posixRename !== SFTPServerInterface.prototype.posixRename) exts.push([EXT.POSIX_RENAME, '1']);
      return encodeReply.version(SFTP_VERSION, exts);
    }
    try {
      return this.dispatch(req);
    } catch (e) {
      console.error(`paramiko-ts: SFTPServerInterface failed on ${req.kind}:`, e);
      return encodeReply.status(req.id, SFTPServer.convertErrno(e as { code?: string }), (e as Error).message);
    }
  }

  private status(id: number, r: number): Buffer {
    return encodeReply.status(id, r);
  }

  private attrsOr(id: number, r: SFTPAttributes | number): Buffer {
    return typeof r === 'number' ? this.status(id, r) : encodeReply.attrs(id, r);
  }

  /**
   * check-file, answered through the handle's `read` as Paramiko's SFTPServer does. The size
   * comes from the handle's `stat` when it gives one; without it the range runs to where `read`
   * finds the end.
   */
  private checkFile(id: number, f: SFTPHandle, req: CheckFileRequest): Buffer {
    const st = f.stat();
    const size = typeof st === 'number' || st.st_size === undefined ? undefined : Number(st.st_size);
    try {
      const plan = planCheckFile(req, size);
      const hashes = hashFileRangeSync(plan, (offset, length) => {
        const r = f.read(offset, length);
        if (r === SFTP_EOF) return null;
        if (typeof r === 'number') throw new StatusError(r, 'Unable to hash file');
        return r;
      });
      return encodeCheckFileReply(id, plan.algorithm, hashes);
    } catch (e) {
      if (e instanceof StatusError) return encodeReply.status(id, e.status, e.message);
      throw e;
    }
  }

  private dispatch(req: Exclude<SftpRequest, { kind: 'init' }>): Buffer {
    const si = this.si;
    const id = req.id;
    const file = (h: Buffer) => this.files.get(h.toString('latin1'));
    switch (req.kind) {
      case 'open': {
        const r = si.open(req.path, osFlags(req.pflags), req.attrs);
        if (typeof r === 'number') return this.status(id, r);
        const h = `f${this.nextHandle++}`;
        this.files.set(h, r);
        return encodeReply.handle(id, Buffer.from(h, 'latin1'));
      }
      case 'opendir': {
        const r = si.listFolder(req.path);
        if (typeof r === 'number') return this.status(id, r);
        const h = `d${this.nextHandle++}`;
        this.dirs.set(h, [...r]);
        return encodeReply.handle(id, Buffer.from(h, 'latin1'));
      }
      case 'close': {
        const key = req.handle.toString('latin1');
        const f = this.files.get(key);
        if (f) {
          this.files.delete(key);
          f.close();
          return this.status(id, SFTP_OK);
        }
        return this.status(id, this.dirs.delete(key) ? SFTP_OK : SFTP_FAILURE);
      }
      case 'readdir': {
        const list = this.dirs.get(req.handle.toString('latin1'));
        if (!list) return encodeReply.status(id, SFTP_FAILURE, 'Invalid handle');
        if (!list.length) return this.status(id, SFTP_EOF);
        const batch = list.splice(0, READDIR_BATCH);
        for (const a of batch) a.longname ??= a.toString();
        return encodeReply.name(id, batch);
      }
      case 'read': {
        const f = file(req.handle);
        if (!f) return encodeReply.status(id, SFTP_FAILURE, 'Invalid handle');
        // At most what OpenSSH's sftp-server reads at once: a length of 4 GiB from a hostile (or
        // careless) client would be 4 GiB of memory for one request, and a reply no client takes.
        const r = f.read(Number(req.offset), Math.min(req.length, SERVER_LIMITS.maxReadLength));
        if (typeof r === 'number') return this.status(id, r);
        return r.length ? encodeReply.data(id, r) : this.status(id, SFTP_EOF);
      }
      case 'write': {
        const f = file(req.handle);
        return f ? this.status(id, f.write(Number(req.offset), req.data)) : encodeReply.status(id, SFTP_FAILURE, 'Invalid handle');
      }
      case 'fstat': {
        const f = file(req.handle);
        return f ? this.attrsOr(id, f.stat()) : encodeReply.status(id, SFTP_FAILURE, 'Invalid handle');
      }
      case 'fsetstat': {
        const f = file(req.handle);
        return f ? this.status(id, f.chattr(req.attrs)) : encodeReply.status(id, SFTP_FAILURE, 'Invalid handle');
      }
      case 'stat':
        return this.attrsOr(id, si.stat(req.path));
      case 'lstat':
        return this.attrsOr(id, si.lstat(req.path));
      case 'setstat':
        return this.status(id, si.chattr(req.path, req.attrs));
      case 'remove':
        return this.status(id, si.remove(req.path));
      case 'mkdir':
        return this.status(id, si.mkdir(req.path, req.attrs));
      case 'rmdir':
        return this.status(id, si.rmdir(req.path));
      case 'rename':
        return this.status(id, si.rename(req.oldPath, req.newPath));
      case 'symlink':
        return this.status(id, si.symlink(req.targetPath, req.linkPath));
      case 'realpath': {
        const p = si.canonicalize(req.path);
        return encodeReply.name(id, [Object.assign(new SFTPAttributes(), { filename: p, longname: p })]);
      }
      case 'readlink': {
        const r = si.readlink(req.path);
        if (typeof r === 'number') return this.status(id, r);
        return encodeReply.name(id, [Object.assign(new SFTPAttributes(), { filename: r, longname: r })]);
      }
      case 'extended':
        if (req.name === EXT.POSIX_RENAME) {
          const oldPath = req.payload.getText();
          return this.status(id, si.posixRename(oldPath, req.payload.getText()));
        }
        if (req.name === CHECK_FILE.HANDLE || req.name === CHECK_FILE.LEGACY) {
          const args = decodeCheckFileArgs(req.payload);
          const f = file(args.target);
          return f ? this.checkFile(id, f, args) : encodeReply.status(id, SFTP_FAILURE, 'Invalid handle');
        }
        if (req.name === CHECK_FILE.NAME) {
          const args = decodeCheckFileArgs(req.payload);
          const f = si.open(args.target.toString('utf8'), fsc.O_RDONLY, new SFTPAttributes());
          if (typeof f === 'number') return this.status(id, f);
          try {
            return this.checkFile(id, f, args);
          } finally {
            f.close();
          }
        }
        return this.status(id, SFTP_OP_UNSUPPORTED);
      case 'unknown':
        return this.status(id, SFTP_OP_UNSUPPORTED);
    }
    return this.status(id, SFTP_OP_UNSUPPORTED);
  }
}

