/**
 * The SFTP server engine, sans-I/O: request bytes in through `receive`, reply bytes out
 * through `send`, the work done on a real directory tree (server-ops.ts) inside a jail
 * (server-paths.ts). The worker runs it on a channel; spec/support/sftp runs it on stdio
 * for OpenSSH's `sftp -D`.
 *
 * Ordering: requests on one handle keep their order (READs overlap); path requests run one
 * at a time in arrival order; replies for different handles may go out of order, which
 * SFTP allows (draft-02 section 6.1). Hostile input gets a status, never a crash: a garbage
 * handle is FAILURE, an unknown type OP_UNSUPPORTED; a truncated or oversize packet ends
 * the session (after a BAD_MESSAGE when it had an id), as OpenSSH's server does.
 */
import { SSHException } from '../errors';
import { FILE_WRITE_CALL_BYTES } from '../files';
import { SFTPAttributes } from './attributes';
import { CHECK_FILE, checkFileAnnouncement, decodeCheckFileArgs } from './check-file';
import { DEFAULT_MAX_PACKET, EXT, FX, FXP_NAMES, messageFromErrnoCode, SFTP_MAX_MSG_LENGTH, SFTP_VERSION, statusFromErrnoCode } from './constants';
import { SFTPError } from './errors';
import { PacketFramer } from './framing';
import { encodeReply } from './replies';
import type { BufferPool } from '../buffer-pool';
import { decodeRequest, peekId, SftpRequest } from './requests';
import { FileEntry, HandleTable, OrderedQueue, releaseEntry, WriteRun } from './server-handles';
import { getUint64, ServerLimits, ServerOps, writeFitsSafely } from './server-ops';
import { PathJail, StatusError } from './server-paths';

export interface SftpServerCoreOptions {
  /** Refuse every change (PERMISSION_DENIED), as sftp-server -R. */
  readOnly?: boolean;
  /** Applied to the modes of created files and directories, exactly (as sftp-server -u). Default: the process umask. */
  umask?: number;
  /** Diagnostics (one line each). */
  log?: (line: string) => void;
  /** Open handles allowed at once (default 1024). */
  maxHandles?: number;
  /** Called once when the session ends on its own (protocol error); the I/O layer then closes the channel. */
  onEnd?: (err: Error) => void;
  /**
   * Flow control: called with true when this many requests are in progress (stop feeding
   * `receive`), then with false when half of them are done. Default 256.
   */
  highWaterMark?: number;
  onBackpressure?: (paused: boolean) => void;
  /** READ replies are built in buffers from this pool; `send`'s owner returns them once sent. */
  replyPool?: BufferPool;
}

/**
 * What the server announces in limits@openssh.com: OpenSSH's own values. 256 KiB packets are
 * what every OpenSSH peer accepts; reads and writes of 255 KiB leave 1 KiB for the packet
 * header and handle (OpenSSH's SFTP_MAX_READ_LENGTH); 1024 handles bound the descriptors one
 * session can hold.
 */
export const SERVER_LIMITS: ServerLimits = {
  maxPacketLength: SFTP_MAX_MSG_LENGTH,
  maxReadLength: SFTP_MAX_MSG_LENGTH - 1024,
  maxWriteLength: SFTP_MAX_MSG_LENGTH - 1024,
  maxOpenHandles: 1024,
};

/** Extensions announced in VERSION, with OpenSSH's version strings. */
const EXTENSIONS: Array<[string, string]> = [
  [EXT.POSIX_RENAME, '1'],
  [EXT.STATVFS, '2'],
  [EXT.FSTATVFS, '2'],
  [EXT.HARDLINK, '1'],
  [EXT.FSYNC, '1'],
  [EXT.LSETSTAT, '1'],
  [EXT.LIMITS, '1'],
  [EXT.EXPAND_PATH, '1'],
  [EXT.USERS_GROUPS_BY_ID, '1'],
  [EXT.COPY_DATA, '1'],
  checkFileAnnouncement(),
];

/**
 * WRITEs gathered into one system call at most: 64 parts (IOV_MAX is 1024) and
 * FILE_WRITE_CALL_BYTES, four of OpenSSH's 255 KiB WRITEs or 32 of its 32 KiB ones. Runs of up to
 * 8 MiB cost the kernel ~1 s more per GiB on our VMs than runs of 1 MiB (a put from OpenSSH's sftp
 * 0.73-0.86x of sshd's against 1.04-1.23x).
 */
const RUN_PARTS = 64;
const RUN_BYTES = FILE_WRITE_CALL_BYTES;

type WriteRequest = Extract<SftpRequest, { kind: 'write' }>;

export class SftpServerCore {
  private readonly framer = new PacketFramer(DEFAULT_MAX_PACKET);
  private readonly ops: ServerOps;
  private readonly handles: HandleTable;
  /** Path requests, one at a time. */
  private readonly pathQueue = new OrderedQueue();
  private initDone = false;
  private ended = false;
  private busy = 0;
  private paused = false;
  private readonly highWaterMark: number;

  constructor(
    root: string,
    private readonly send: (bytes: Buffer) => void,
    private readonly options: SftpServerCoreOptions = {},
  ) {
    const limits = { ...SERVER_LIMITS, maxOpenHandles: options.maxHandles ?? SERVER_LIMITS.maxOpenHandles };
    this.handles = new HandleTable(limits.maxOpenHandles);
    this.ops = new ServerOps(new PathJail(root), this.handles, { readOnly: !!options.readOnly, umask: options.umask, limits, replyPool: options.replyPool });
    this.highWaterMark = options.highWaterMark ?? 256;
  }

  /** Requests in progress. */
  get pending(): number {
    return this.busy;
  }

  /** Open handles. */
  get openHandles(): number {
    return this.handles.size;
  }

  /** Feeds bytes from the client. Never throws. */
  receive(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.framer.push(chunk, (packet) => this.onPacket(packet));
    } catch (err) {
      this.fatal(err as Error);
    }
  }

  /**
   * Feeds one whole packet (type byte and payload, without its length word), framed by the
   * caller; `release` is called once the request is done with the packet's memory (its WRITE
   * data written), so the caller may reuse it. Never throws.
   */
  receivePacket(packet: Buffer, release?: () => void): void {
    if (this.ended) return;
    try {
      this.onPacket(packet, release);
    } catch (err) {
      this.fatal(err as Error);
    }
  }

  /** The caller's framing found the stream unusable (an oversize length): the session ends as for a bad packet. */
  protocolError(err: Error): void {
    this.fatal(err);
  }

  /** Ends the session (the channel closed): open files and directories are closed. */
  async end(): Promise<void> {
    this.ended = true;
    await Promise.all(this.handles.drain().map(releaseEntry));
  }

  private fatal(err: Error): void {
    if (this.ended) return;
    this.options.log?.(`sftp session ends: ${err.message}`);
    void this.end();
    this.options.onEnd?.(err);
  }

  private onPacket(packet: Buffer, release?: () => void): void {
    if (this.ended) return;
    if (packet.length === 0) throw new SFTPError('empty SFTP packet');
    let req: SftpRequest;
    try {
      req = decodeRequest(packet);
    } catch (err) {
      const id = peekId(packet);
      if (id !== undefined) this.send(encodeReply.status(id, FX.BAD_MESSAGE, 'Bad message'));
      throw new SFTPError(`malformed ${FXP_NAMES[packet[0]] ?? `packet type ${packet[0]}`}: ${(err as Error).message}`);
    }
    if (req.kind === 'init') {
      if (this.initDone) throw new SFTPError('SSH_FXP_INIT received twice');
      this.initDone = true;
      this.options.log?.(`client version ${req.version}`);
      this.send(encodeReply.version(SFTP_VERSION, EXTENSIONS));
      return;
    }
    if (!this.initDone) throw new SFTPError(`${FXP_NAMES[packet[0]] ?? `packet type ${packet[0]}`} before SSH_FXP_INIT`);
    this.schedule(req, release);
  }

  private schedule(req: Exclude<SftpRequest, { kind: 'init' }>, release?: () => void): void {
    let work: Promise<Buffer>;
    try {
      work = this.route(req);
    } catch (err) {
      if (err instanceof SSHException) {
        // An extended request's payload was cut short: as truncated as any other packet.
        this.send(encodeReply.status(req.id, FX.BAD_MESSAGE, 'Bad message'));
        throw new SFTPError(`malformed ${req.kind} request: ${err.message}`);
      }
      work = Promise.reject(err);
    }
    this.busy++;
    if (!this.paused && this.busy >= this.highWaterMark) {
      this.paused = true;
      this.options.onBackpressure?.(true);
    }
    // Replies leave in request order, though the work runs concurrently: clients written
    // against OpenSSH's sequential sftp-server can misbehave otherwise (OpenSSH's scp, in place,
    // truncates a download whose READ replies came out of order: seen with OpenSSH 9.2).
    const slot: { bytes: Buffer | null } = { bytes: null };
    this.inOrder.push(slot);
    work.then(
      (reply) => {
        release?.();
        this.reply(slot, reply);
      },
      (err: unknown) => {
        release?.();
        this.reply(slot, this.errorReply(req, err));
      },
    );
  }

  /** Replies waiting for those of earlier requests, in request order. */
  private readonly inOrder: Array<{ bytes: Buffer | null }> = [];

  private reply(slot: { bytes: Buffer | null }, bytes: Buffer): void {
    this.busy--;
    if (this.paused && this.busy <= this.highWaterMark >> 1) {
      this.paused = false;
      this.options.onBackpressure?.(false);
    }
    slot.bytes = bytes;
    while (this.inOrder.length && this.inOrder[0].bytes) {
      const ready = this.inOrder.shift()!.bytes!;
      if (!this.ended) this.send(ready);
    }
  }

  private errorReply(req: { id: number; kind: string }, err: unknown): Buffer {
    if (err instanceof StatusError) return encodeReply.status(req.id, err.status, err.message);
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === undefined || !/^E[A-Z]+$/.test(code)) {
      // Not an errno: a bad argument (NUL in a path, an offset Node refuses) or a bug.
      this.options.log?.(`${req.kind} failed: ${(err as Error)?.message ?? err}`);
      if (code?.startsWith('ERR_')) return encodeReply.status(req.id, FX.BAD_MESSAGE, 'Bad message');
    }
    const status = statusFromErrnoCode(code);
    return encodeReply.status(req.id, status, messageFromErrnoCode(code, status));
  }

  /** Runs a request on its queue: its handle's, or the path queue. */
  private route(req: Exclude<SftpRequest, { kind: 'init' }>): Promise<Buffer> {
    const ops = this.ops;
    const path = (fn: () => Promise<Buffer>) => this.pathQueue.run(false, fn);
    switch (req.kind) {
      case 'open':
        return path(() => ops.open(req.id, req.path, req.pflags, req.attrs));
      case 'opendir':
        return path(() => ops.opendir(req.id, req.path));
      case 'close': {
        const e = this.handles.take(req.handle);
        if (!e) return Promise.reject(new StatusError(FX.FAILURE, 'Invalid handle'));
        return e.queue.run(false, async () => {
          if (e.kind === 'file') await e.fh.close();
          else await e.dir.close();
          return ops.ok(req.id);
        });
      }
      case 'read': {
        const e = ops.file(req.handle);
        if (!e.readable) return Promise.reject(new StatusError(FX.PERMISSION_DENIED, 'File not open for reading'));
        return e.queue.run(true, () => ops.read(req.id, e, req.offset, req.length));
      }
      case 'write': {
        const e = ops.file(req.handle);
        if (!e.writable) return Promise.reject(new StatusError(FX.PERMISSION_DENIED, 'File not open for writing'));
        return this.write(e, req);
      }
      case 'fstat': {
        const e = ops.file(req.handle);
        return e.queue.run(false, () => ops.fstat(req.id, e));
      }
      case 'fsetstat': {
        const e = ops.file(req.handle);
        return e.queue.run(false, () => ops.fsetstat(req.id, e, req.attrs));
      }
      case 'readdir': {
        const e = ops.dir(req.handle);
        return e.queue.run(false, () => ops.readdir(req.id, e));
      }
      case 'stat':
      case 'lstat':
        return path(() => ops.stat(req.id, req.path, req.kind === 'stat'));
      case 'setstat':
        return path(() => ops.setstat(req.id, req.path, req.attrs, true));
      case 'remove':
        return path(() => ops.remove(req.id, req.path));
      case 'mkdir':
        return path(() => ops.mkdir(req.id, req.path, req.attrs));
      case 'rmdir':
        return path(() => ops.rmdir(req.id, req.path));
      case 'realpath':
        return path(() => ops.realpath(req.id, req.path));
      case 'readlink':
        return path(() => ops.readlink(req.id, req.path));
      case 'rename':
        return path(() => ops.rename(req.id, req.oldPath, req.newPath, false));
      case 'symlink':
        return path(() => ops.symlink(req.id, req.targetPath, req.linkPath));
      case 'extended':
        return this.extended(req);
      case 'unknown':
        return Promise.resolve(encodeReply.status(req.id, FX.OP_UNSUPPORTED, `Unsupported request type ${req.type}`));
    }
  }

  /**
   * A WRITE joins the run of WRITEs still gathering on its handle when it continues it in the
   * file and nothing else was queued on the handle since (a READ or FSTAT between them keeps
   * its place); otherwise it starts a run of its own. A run gathers until its turn on the
   * handle's queue comes, that is while the write before it runs, then goes in one system call;
   * each WRITE in it is answered when it is written (a failure answers them all with it).
   */
  private write(e: FileEntry, req: WriteRequest): Promise<Buffer> {
    const { id, offset, data } = req;
    const ops = this.ops;
    // Past 2^53, ops.write refuses each WRITE by itself.
    if (!writeFitsSafely(offset, data.length)) return e.queue.run(false, () => ops.write(id, e, offset, data));
    const open = e.gathering;
    if (open && open.queuedAt === e.queue.queued && open.offset + open.bytes === offset && open.parts.length < RUN_PARTS && open.bytes + data.length <= RUN_BYTES) {
      open.parts.push(data);
      open.bytes += data.length;
      return open.written.then(() => ops.ok(id));
    }
    const run: WriteRun = { offset, bytes: data.length, parts: [data], queuedAt: 0, written: Promise.resolve() };
    run.written = e.queue.run(false, () => {
      if (e.gathering === run) e.gathering = undefined;
      return ops.writeRun(e, run.offset, run.parts);
    });
    run.queuedAt = e.queue.queued;
    e.gathering = run;
    return run.written.then(() => ops.ok(id));
  }

  private extended(req: Extract<SftpRequest, { kind: 'extended' }>): Promise<Buffer> {
    const { id, payload: m } = req;
    const ops = this.ops;
    const path = (fn: () => Promise<Buffer>) => this.pathQueue.run(false, fn);
    switch (req.name) {
      case EXT.POSIX_RENAME:
      case EXT.HARDLINK: {
        const oldPath = m.getText();
        const newPath = m.getText();
        if (req.name === EXT.HARDLINK) return path(() => ops.hardlink(id, oldPath, newPath));
        return path(() => ops.rename(id, oldPath, newPath, true));
      }
      case EXT.STATVFS: {
        const p = m.getText();
        return path(async () => ops.statvfs(id, await ops.jail.resolve(p, true)));
      }
      case EXT.FSTATVFS: {
        const e = ops.file(m.getString('a handle'));
        return e.queue.run(false, () => ops.statvfs(id, e.realPath));
      }
      case EXT.FSYNC: {
        const e = ops.file(m.getString('a handle'));
        return e.queue.run(false, () => ops.fsync(id, e));
      }
      case EXT.LSETSTAT: {
        const p = m.getText();
        const attrs = SFTPAttributes.decode(m);
        return path(() => ops.setstat(id, p, attrs, false));
      }
      case EXT.LIMITS:
        return Promise.resolve(ops.limits(id));
      case EXT.EXPAND_PATH: {
        const p = m.getText();
        return path(() => ops.expandPath(id, p));
      }
      case EXT.USERS_GROUPS_BY_ID: {
        const uids = Buffer.from(m.getString('a uid list'));
        const gids = Buffer.from(m.getString('a gid list'));
        return Promise.resolve(ops.usersGroupsById(id, uids, gids));
      }
      case EXT.COPY_DATA: {
        const from = ops.file(m.getString('a handle'));
        const readOffset = getUint64(m);
        const length = getUint64(m);
        const to = ops.file(m.getString('a handle'));
        const writeOffset = getUint64(m);
        return to.queue.run(false, () => ops.copyData(id, from, readOffset, length, to, writeOffset));
      }
      // The draft's two names, and Paramiko's for the handle form.
      case CHECK_FILE.HANDLE:
      case CHECK_FILE.LEGACY: {
        const args = decodeCheckFileArgs(m);
        const e = ops.file(args.target);
        // The draft: a handle opened without read access gets PERMISSION_DENIED.
        if (!e.readable) return Promise.reject(new StatusError(FX.PERMISSION_DENIED, 'File not open for reading'));
        // Reads only, as READ: it overlaps other reads of the handle and holds back later writes.
        return e.queue.run(true, () => ops.checkFile(id, e.fh, args));
      }
      case CHECK_FILE.NAME: {
        const args = decodeCheckFileArgs(m);
        return this.pathQueue.run(false, () => ops.openForCheck(args.target.toString('utf8'))).then((fh) => ops.checkFile(id, fh, args).finally(() => fh.close()));
      }
      default:
        return Promise.resolve(encodeReply.status(id, FX.OP_UNSUPPORTED, `Unsupported extension ${req.name}`));
    }
  }
}
