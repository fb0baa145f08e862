/**
 * The SFTP client engine, sans-I/O: requests go out through `send`, replies come in through
 * `receive`, and each request's promise is settled by the reply with its id (any number in
 * flight, in any order). The worker wires it to a channel; tests wire it to a pipe or to
 * SftpServerCore in memory. Whole-file transfers (download/upload) live in transfer.ts.
 */
import { IOError } from '../errors';
import { Message } from '../wire/message';
import { SFTPAttributes } from './attributes';
import { DEFAULT_IO_SIZE, DEFAULT_MAX_PACKET, EXT, FX, FXF, FXP_NAMES, SFTP_MAX_MSG_LENGTH, SFTP_VERSION } from './constants';
import { CHECK_FILE, decodeCheckFileReply, encodeCheckFileArgs } from './check-file';
import { PacketFramer } from './framing';
import { BufferPool } from '../buffer-pool';
import { diagnosedError, RequestContext, SFTPError, statusError } from './errors';
import { DATA_HEADER, decodeReply, SftpReply } from './replies';
import { encodeRequest, PathLike } from './requests';
import { download, DownloadOptions, upload, UploadOptions, UploadSource, DownloadSink } from './transfer';
import { readUint64, Uint64 } from './uint64';

/** limits@openssh.com: what the server accepts (0 for max-open-handles means no limit announced). */
export interface SftpLimits {
  maxPacketLength: number;
  maxReadLength: number;
  maxWriteLength: number;
  maxOpenHandles: number;
}

/** statvfs@openssh.com / fstatvfs@openssh.com reply, as POSIX statvfs (AsyncSSH's SFTPVFSAttrs names). */
export interface SftpStatVFS {
  bsize: Uint64;
  frsize: Uint64;
  blocks: Uint64;
  bfree: Uint64;
  bavail: Uint64;
  files: Uint64;
  ffree: Uint64;
  favail: Uint64;
  fsid: Uint64;
  flag: Uint64;
  namemax: Uint64;
}
const STATVFS_FIELDS = ['bsize', 'frsize', 'blocks', 'bfree', 'bavail', 'files', 'ffree', 'favail', 'fsid', 'flag', 'namemax'] as const;

type Expect = 'status' | 'handle' | 'data' | 'name' | 'attrs' | 'extended';
interface Pending {
  expect: Expect;
  ctx: RequestContext;
  /** For reads: the length asked (a larger DATA reply is a protocol violation). */
  maxLength?: number;
  /** EOF status resolves with null instead of rejecting (READ, READDIR). */
  eofIsNull?: boolean;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export interface SftpClientCoreOptions {
  /** Largest reply accepted (default 256 KiB + 1 KiB, as OpenSSH's client). */
  maxPacket?: number;
  /** Called once when the session fails for good (protocol violation, oversize packet); pending requests are rejected. */
  onError?: (err: Error) => void;
  /** `receive`'s chunks are valid only during the call (see PacketFramer's `copy`). */
  copyInput?: boolean;
}

/** Idle READ reply buffers a session keeps during a download (64 in flight of 255 KiB fill it). */
const REPLY_POOL_BYTES = 16 * 1024 * 1024;

/**
 * READDIRs a listing sends in its first round, and at most in one round (see listdir). A server
 * answers a READDIR with up to ~100 names (OpenSSH's) and every READDIR after the last with EOF:
 * a small directory costs three spare EOF replies, one of 1000 names two rounds, not 11 round trips.
 */
const READDIRS_AT_FIRST = 4;
const READDIRS_AT_MOST = 64;

const pathOf = (p: PathLike): string => (typeof p === 'string' ? p : p.toString('utf8'));

export class SftpClientCore {
  /** Negotiated protocol version (0 until VERSION arrives). */
  version = 0;
  /** Extensions the server announced: name to version data ("1", "2"...). */
  readonly extensions = new Map<string, string>();
  private readonly framer: PacketFramer;
  /**
   * Where a copying framer assembles large replies; `replyPool.release(data)` gives one back once
   * the data read from it is no longer used (a download's file write is done).
   */
  readonly replyPool = new BufferPool(REPLY_POOL_BYTES, 64 * 1024);
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed: Error | null = null;
  private versionWait: { resolve(): void; reject(e: Error): void } | null = null;
  private limitsCache: Promise<SftpLimits> | null = null;
  /** The check-file request name this server answered (learnt on the first success). */
  private checkFileName: string | null = null;

  constructor(
    private readonly send: (bytes: Buffer) => void,
    private readonly options: SftpClientCoreOptions = {},
  ) {
    this.framer = new PacketFramer(options.maxPacket ?? DEFAULT_MAX_PACKET, options.copyInput, options.copyInput ? this.replyPool : null);
  }

  /** Requests awaiting their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Largest reply packet accepted. */
  get maxPacket(): number {
    return this.framer.maxPacket;
  }

  /** Sends INIT; resolves once the server's VERSION arrives. */
  start(): Promise<void> {
    if (this.versionWait || this.version) return Promise.reject(new SFTPError('SFTP session already started'));
    return new Promise<void>((resolve, reject) => {
      this.versionWait = { resolve, reject };
      this.send(encodeRequest.init(SFTP_VERSION));
    });
  }

  /** Feeds bytes from the server. Never throws: a broken stream ends the session (see onError). */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.framer.push(chunk, (packet) => this.dispatch(packet));
    } catch (err) {
      this.fail(err instanceof SFTPError ? err : new SFTPError(`bad SFTP reply: ${(err as Error).message}`, { cause: err }));
    }
  }

  /** Ends the session (the channel closed): every pending and later request is rejected with `err`. */
  end(err: Error = new SFTPError('SFTP session closed')): void {
    if (this.closed) return;
    this.closed = err;
    this.versionWait?.reject(err);
    this.versionWait = null;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
  }

  /** Whether the server announced an extension (optionally with this version data). */
  hasExtension(name: string, version?: string): boolean {
    const v = this.extensions.get(name);
    return v !== undefined && (version === undefined || v === version);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.end(err);
    this.options.onError?.(err);
  }

  private dispatch(packet: Buffer): void {
    const reply = decodeReply(packet);
    if (reply.kind === 'version') return this.onVersion(reply);
    const p = this.pending.get(reply.id);
    if (!p) throw new SFTPError(`SFTP reply ${FXP_NAMES[packet[0]]} for unknown request id ${reply.id}`);
    this.pending.delete(reply.id);
    this.settle(p, reply);
  }

  private onVersion(reply: Extract<SftpReply, { kind: 'version' }>): void {
    if (!this.versionWait) throw new SFTPError('unexpected SSH_FXP_VERSION');
    const wait = this.versionWait;
    this.versionWait = null;
    if (reply.version < SFTP_VERSION) {
      const err = new SFTPError(`the server speaks SFTP version ${reply.version}; version ${SFTP_VERSION} is needed`);
      wait.reject(err);
      this.fail(err);
      return;
    }
    this.version = SFTP_VERSION;
    for (const [k, v] of reply.extensions) this.extensions.set(k, v);
    // Transfers need the limits: asked now, they are here by the first one (OpenSSH's sftp asks
    // them at start too, and waits). A failure is not cached: a transfer asks again.
    if (this.extensions.has(EXT.LIMITS)) this.limits().catch(() => undefined);
    wait.resolve();
  }

  private settle(p: Pending, reply: Exclude<SftpReply, { kind: 'version' }>): void {
    if (reply.kind === 'status') {
      if (reply.code === FX.OK && p.expect === 'status') return p.resolve(undefined);
      if (reply.code === FX.EOF && p.eofIsNull) return p.resolve(null);
      if (reply.code === FX.OK) return p.reject(new SFTPError(`${p.ctx.syscall}: the server answered OK where ${p.expect} was due`));
      return p.reject(statusError(reply.code, reply.message, p.ctx));
    }
    if (reply.kind !== p.expect) {
      return p.reject(new SFTPError(`${p.ctx.syscall}: the server answered ${reply.kind} where ${p.expect} was due`));
    }
    switch (reply.kind) {
      case 'handle':
        return p.resolve(Buffer.from(reply.handle)); // detached: the packet's chunk is not ours to keep
      case 'data':
        if (reply.data.length > p.maxLength!) {
          const err = new SFTPError(`the server sent ${reply.data.length} bytes for a read of ${p.maxLength}`);
          p.reject(err);
          return this.fail(err);
        }
        return p.resolve(reply.data);
      case 'name':
        return p.resolve(reply.names);
      case 'attrs':
        return p.resolve(reply.attrs);
      case 'extended':
        return p.resolve(reply.payload);
    }
  }

  private allocId(): number {
    // Ids wrap at 2^32; skip any still in flight.
    do this.nextId = (this.nextId + 1) >>> 0;
    while (this.pending.has(this.nextId));
    return this.nextId;
  }

  /** Sends one request built by `build(id)` and waits for its reply. */
  private request<T>(build: (id: number) => Buffer | Buffer[], expect: Expect, ctx: RequestContext, extra?: Partial<Pending>): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    if (!this.version) return Promise.reject(new SFTPError('SFTP session not started (call start() and wait for it)'));
    const id = this.allocId();
    const bytes = build(id);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { expect, ctx, resolve: resolve as (v: unknown) => void, reject, ...extra });
      if (Array.isArray(bytes)) for (const b of bytes) this.send(b);
      else this.send(bytes);
    });
  }

  private unsupported(name: string, ctx: RequestContext): Promise<never> {
    return Promise.reject(statusError(FX.OP_UNSUPPORTED, `the server does not support ${name}`, ctx));
  }

  private extended<T>(name: string, expect: Expect, ctx: RequestContext, fill?: (m: Message) => void): Promise<T> {
    if (!this.extensions.has(name)) return this.unsupported(name, ctx);
    return this.request<T>((id) => encodeRequest.extended(id, name, fill), expect, ctx);
  }

  // ---- files ----

  /** Opens a file with SSH_FXF_* flags; resolves with the handle. */
  open(path: PathLike, pflags: number, attrs?: SFTPAttributes): Promise<Buffer> {
    const opened = this.request<Buffer>((id) => encodeRequest.open(id, path, pflags, attrs), 'handle', { syscall: 'open', path: pathOf(path) });
    if (!(pflags & (FXF.WRITE | FXF.EXCL))) return opened;
    return this.diagnosed(opened, async () => {
      const kind = await this.kindOf(path);
      if (kind === 'dir') return 'EISDIR';
      return pflags & FXF.EXCL && kind !== null ? 'EEXIST' : null;
    });
  }

  /**
   * OpenSSH's server (and Dropbear's, which is OpenSSH's) answers most failed calls with a bare
   * FAILURE, "Failure": SFTP v3 has no status for EEXIST, ENOTEMPTY or EISDIR. Where one errno is
   * the likely cause and a look can tell (the name exists, the directory is not empty, it is a
   * directory), `diagnose` looks after the failure and the error gets that code. Only bare
   * failures are looked at (with `alsoNoSuchFile`, NO_SUCH_FILE too, which OpenSSH also sends
   * for ENOTDIR, unless the server's text was the OS's own); a look that fails, or finds
   * nothing, leaves the error.
   */
  private async diagnosed<T>(
    call: Promise<T>,
    diagnose: () => Promise<'EEXIST' | 'ENOTEMPTY' | 'EISDIR' | 'ENOTDIR' | null>,
    alsoNoSuchFile = false,
  ): Promise<T> {
    try {
      return await call;
    } catch (e) {
      const err = e as IOError & { status?: number; serverMessage?: string };
      // A bare FAILURE, or OpenSSH's NO_SUCH_FILE for ENOTDIR too ("No such file": ENOENT by default).
      const bare =
        err instanceof IOError &&
        ((err.status === FX.FAILURE && !err.code) ||
          (alsoNoSuchFile && err.status === FX.NO_SUCH_FILE && err.code === 'ENOENT' && err.serverMessage !== 'No such file or directory'));
      if (!bare) throw e;
      const code = await diagnose().catch(() => null);
      throw code ? diagnosedError(err, code) : e;
    }
  }

  /** 'dir', 'other' or null (nothing there), not following a final link. */
  private async kindOf(path: PathLike): Promise<'dir' | 'other' | null> {
    try {
      return (await this.lstat(path)).isDirectory() ? 'dir' : 'other';
    } catch (e) {
      if ((e as { status?: number }).status === FX.NO_SUCH_FILE) return null;
      throw e;
    }
  }

  /** Closes a file or directory handle. */
  close(handle: Buffer): Promise<void> {
    return this.request((id) => encodeRequest.close(id, handle), 'status', { syscall: 'close' });
  }

  /** Reads up to `length` bytes at `offset`: the server may return fewer; null at end of file. */
  read(handle: Buffer, offset: Uint64, length: number): Promise<Buffer | null> {
    return this.request((id) => encodeRequest.read(id, handle, offset, length), 'data', { syscall: 'read' }, {
      maxLength: length,
      eofIsNull: true,
    });
  }

  /** Writes `data` at `offset` (all of it: SFTP has no partial writes). `data` is sent without a copy. */
  write(handle: Buffer, offset: Uint64, data: Uint8Array): Promise<void> {
    return this.request((id) => encodeRequest.write(id, handle, offset, data), 'status', { syscall: 'write' });
  }

  fstat(handle: Buffer): Promise<SFTPAttributes> {
    return this.request((id) => encodeRequest.fstat(id, handle), 'attrs', { syscall: 'fstat' });
  }

  fsetstat(handle: Buffer, attrs: SFTPAttributes): Promise<void> {
    return this.request((id) => encodeRequest.fsetstat(id, handle, attrs), 'status', { syscall: 'fsetstat' });
  }

  /** fsync@openssh.com: flushes the file to stable storage. */
  fsync(handle: Buffer): Promise<void> {
    return this.extended(EXT.FSYNC, 'status', { syscall: 'fsync' }, (m) => m.addString(handle));
  }

  fstatvfs(handle: Buffer): Promise<SftpStatVFS> {
    return this.extended<Message>(EXT.FSTATVFS, 'extended', { syscall: 'fstatvfs' }, (m) => m.addString(handle)).then(decodeStatVFS);
  }

  /**
   * copy-data: the server copies `length` bytes (0: to end of file) from one open handle to
   * another, without the data crossing the wire.
   */
  copyData(readHandle: Buffer, readOffset: Uint64, length: Uint64, writeHandle: Buffer, writeOffset: Uint64): Promise<void> {
    return this.extended(EXT.COPY_DATA, 'status', { syscall: 'copy-data' }, (m) => {
      m.addString(readHandle).addInt64(readOffset).addInt64(length).addString(writeHandle).addInt64(writeOffset);
    });
  }

  /**
   * check-file: the server hashes `length` bytes (0: to end of file) from `offset` of an open
   * file, one digest per `blockSize` bytes (0: one for the whole range), with the first
   * algorithm of `algorithms` (a comma-separated preference list) it supports. Asked for whether
   * or not the server announced "check-file" (not every server that has it does), first by the
   * draft's name, check-file-handle, then by the only one Paramiko's server answers,
   * check-file; the name that worked is kept for the session. Both refused: OP_UNSUPPORTED.
   */
  async checkFile(handle: Buffer, algorithms: string, offset: Uint64 = 0, length: Uint64 = 0, blockSize = 0): Promise<{ algorithm: string; hashes: Buffer }> {
    const ctx = { syscall: 'check-file' };
    const fill = (m: Message) => encodeCheckFileArgs(m, { target: handle, algorithms, offset, length, blockSize });
    const names = this.checkFileName ? [this.checkFileName] : [CHECK_FILE.HANDLE, CHECK_FILE.LEGACY];
    for (const name of names) {
      try {
        const m = await this.request<Message>((id) => encodeRequest.extended(id, name, fill), 'extended', ctx);
        this.checkFileName = name;
        return decodeCheckFileReply(m);
      } catch (err) {
        if ((err as { status?: number }).status !== FX.OP_UNSUPPORTED || this.checkFileName) throw err;
      }
    }
    return this.unsupported(CHECK_FILE.LEGACY, ctx);
  }

  // ---- paths ----

  stat(path: PathLike): Promise<SFTPAttributes> {
    return this.request((id) => encodeRequest.stat(id, path), 'attrs', { syscall: 'stat', path: pathOf(path) });
  }

  lstat(path: PathLike): Promise<SFTPAttributes> {
    return this.request((id) => encodeRequest.lstat(id, path), 'attrs', { syscall: 'lstat', path: pathOf(path) });
  }

  setstat(path: PathLike, attrs: SFTPAttributes): Promise<void> {
    return this.request((id) => encodeRequest.setstat(id, path, attrs), 'status', { syscall: 'setstat', path: pathOf(path) });
  }

  /** lsetstat@openssh.com: setstat that does not follow a final symlink. */
  lsetstat(path: PathLike, attrs: SFTPAttributes): Promise<void> {
    return this.extended(EXT.LSETSTAT, 'status', { syscall: 'lsetstat', path: pathOf(path) }, (m) => attrs.encode(m.addString(path)));
  }

  opendir(path: PathLike): Promise<Buffer> {
    return this.request((id) => encodeRequest.opendir(id, path), 'handle', { syscall: 'opendir', path: pathOf(path) });
  }

  /** The next batch of entries (with filename and longname), or null when the directory is exhausted. */
  readdir(handle: Buffer): Promise<SFTPAttributes[] | null> {
    return this.request((id) => encodeRequest.readdir(id, handle), 'name', { syscall: 'readdir' }, { eofIsNull: true });
  }

  /**
   * Every entry of a directory, `.` and `..` included if the server sends them. READDIRs go out
   * several at a time (READDIRS_AT_FIRST, twice as many each round up to READDIRS_AT_MOST) until a
   * round brings EOF: one READDIR per round trip (OpenSSH's `sftp`, Paramiko) took a round trip
   * per hundred names and one more for the EOF. Every round is answered in full before the next
   * goes out, and the listing ends with the round that brought EOF, so entries a server sends
   * out of order (for a later READDIR than the EOF's) are kept all the same.
   */
  async listdir(path: PathLike): Promise<SFTPAttributes[]> {
    const handle = await this.opendir(path);
    const out: SFTPAttributes[] = [];
    try {
      let done = false;
      for (let n = READDIRS_AT_FIRST; !done; n = Math.min(2 * n, READDIRS_AT_MOST)) {
        const round = await Promise.allSettled(Array.from({ length: n }, () => this.readdir(handle)));
        for (const r of round) {
          if (r.status === 'rejected') {
            // After an EOF, an error only says the server saw nothing left.
            if (done) continue;
            throw r.reason;
          }
          if (r.value) out.push(...r.value);
          else done = true;
        }
      }
    } finally {
      await this.close(handle);
    }
    return out;
  }

  remove(path: PathLike): Promise<void> {
    const removed = this.request<void>((id) => encodeRequest.remove(id, path), 'status', { syscall: 'remove', path: pathOf(path) });
    return this.diagnosed(removed, async () => ((await this.kindOf(path)) === 'dir' ? 'EISDIR' : null));
  }

  mkdir(path: PathLike, attrs?: SFTPAttributes): Promise<void> {
    const made = this.request<void>((id) => encodeRequest.mkdir(id, path, attrs), 'status', { syscall: 'mkdir', path: pathOf(path) });
    return this.diagnosed(made, () => this.existsDiagnosis(path));
  }

  rmdir(path: PathLike): Promise<void> {
    const removed = this.request<void>((id) => encodeRequest.rmdir(id, path), 'status', { syscall: 'rmdir', path: pathOf(path) });
    return this.diagnosed(removed, async () => {
      const kind = await this.kindOf(path);
      if (kind === 'other') return 'ENOTDIR';
      if (kind === null) return null;
      return kind === 'dir' && (await this.listdir(path)).some((a) => a.filename !== '.' && a.filename !== '..') ? 'ENOTEMPTY' : null;
    }, true);
  }

  /** The server's canonical absolute form of a path ('.' gives its working directory). */
  realpath(path: PathLike): Promise<string> {
    return this.singleName((id) => encodeRequest.realpath(id, path), { syscall: 'realpath', path: pathOf(path) });
  }

  /** expand-path@openssh.com: realpath that also expands `~` and `~user`. */
  expandPath(path: PathLike): Promise<string> {
    const ctx = { syscall: 'expand-path', path: pathOf(path) };
    if (!this.extensions.has(EXT.EXPAND_PATH)) return this.unsupported(EXT.EXPAND_PATH, ctx);
    return this.singleName((id) => encodeRequest.extended(id, EXT.EXPAND_PATH, (m) => m.addString(path)), ctx);
  }

  readlink(path: PathLike): Promise<string> {
    return this.singleName((id) => encodeRequest.readlink(id, path), { syscall: 'readlink', path: pathOf(path) });
  }

  /** Creates `linkPath` pointing to `targetPath` (sent in OpenSSH's argument order). */
  symlink(targetPath: PathLike, linkPath: PathLike): Promise<void> {
    const made = this.request<void>((id) => encodeRequest.symlink(id, targetPath, linkPath), 'status', {
      syscall: 'symlink',
      path: pathOf(targetPath),
      dest: pathOf(linkPath),
    });
    return this.diagnosed(made, () => this.existsDiagnosis(linkPath));
  }

  /** SFTP v3 rename: fails when `newPath` exists. */
  rename(oldPath: PathLike, newPath: PathLike): Promise<void> {
    const renamed = this.request<void>((id) => encodeRequest.rename(id, oldPath, newPath), 'status', {
      syscall: 'rename',
      path: pathOf(oldPath),
      dest: pathOf(newPath),
    });
    return this.diagnosed(renamed, () => this.existsDiagnosis(newPath));
  }

  /** EEXIST when something is at `path` (the name a call would have made). */
  private async existsDiagnosis(path: PathLike): Promise<'EEXIST' | null> {
    return (await this.kindOf(path)) !== null ? 'EEXIST' : null;
  }

  /** posix-rename@openssh.com: rename(2), replacing `newPath` atomically. */
  posixRename(oldPath: PathLike, newPath: PathLike): Promise<void> {
    const ctx = { syscall: 'posix-rename', path: pathOf(oldPath), dest: pathOf(newPath) };
    return this.extended(EXT.POSIX_RENAME, 'status', ctx, (m) => m.addString(oldPath).addString(newPath));
  }

  /** hardlink@openssh.com: link(2). */
  hardlink(oldPath: PathLike, newPath: PathLike): Promise<void> {
    const ctx = { syscall: 'hardlink', path: pathOf(oldPath), dest: pathOf(newPath) };
    return this.diagnosed(this.extended<void>(EXT.HARDLINK, 'status', ctx, (m) => m.addString(oldPath).addString(newPath)), () => this.existsDiagnosis(newPath));
  }

  statvfs(path: PathLike): Promise<SftpStatVFS> {
    return this.extended<Message>(EXT.STATVFS, 'extended', { syscall: 'statvfs', path: pathOf(path) }, (m) => m.addString(path)).then(
      decodeStatVFS,
    );
  }

  /** Any other extended request: resolves with the EXTENDED_REPLY payload, or undefined for a STATUS OK. */
  extendedRequest(name: string, fill?: (m: Message) => void, expect: 'status' | 'extended' = 'extended'): Promise<Message | undefined> {
    return this.request((id) => encodeRequest.extended(id, name, fill), expect, { syscall: name });
  }

  /**
   * The server's limits (limits@openssh.com), fetched once. Without the extension, or for
   * fields it leaves 0: OpenSSH's client assumptions (256 KiB packets, 32 KiB reads and writes).
   * Reads are also capped so a DATA reply fits this client's own packet limit.
   */
  limits(): Promise<SftpLimits> {
    // A failed fetch (session ended) is not cached: a later call asks again.
    this.limitsCache ??= this.fetchLimits().catch((err) => {
      this.limitsCache = null;
      throw err;
    });
    return this.limitsCache;
  }

  private async fetchLimits(): Promise<SftpLimits> {
    let raw = { maxPacketLength: 0, maxReadLength: 0, maxWriteLength: 0, maxOpenHandles: 0 };
    if (this.extensions.has(EXT.LIMITS)) {
      const m = await this.extended<Message>(EXT.LIMITS, 'extended', { syscall: 'limits' });
      const num = (v: Uint64) => (typeof v === 'number' ? v : Number.MAX_SAFE_INTEGER);
      const [a, b, c, d] = [0, 1, 2, 3].map(() => num(readUint64(m.getBytes(8), 0)));
      raw = { maxPacketLength: a, maxReadLength: b, maxWriteLength: c, maxOpenHandles: d };
    }
    const maxPacketLength = raw.maxPacketLength || SFTP_MAX_MSG_LENGTH;
    // A WRITE carries 21 bytes of header plus the handle (at most 256 bytes in practice).
    const writeRoom = maxPacketLength - 1024;
    return {
      maxPacketLength,
      maxReadLength: Math.min(raw.maxReadLength || DEFAULT_IO_SIZE, this.framer.maxPacket - DATA_HEADER + 4),
      maxWriteLength: Math.max(1, Math.min(raw.maxWriteLength || DEFAULT_IO_SIZE, writeRoom)),
      maxOpenHandles: raw.maxOpenHandles,
    };
  }

  private async singleName(build: (id: number) => Buffer, ctx: RequestContext): Promise<string> {
    const names = await this.request<SFTPAttributes[]>(build, 'name', ctx);
    if (names.length !== 1) throw new SFTPError(`${ctx.syscall}: expected one name, the server sent ${names.length}`);
    return names[0].filename!;
  }

  // ---- whole-file transfers (transfer.ts) ----

  /** Downloads a remote file (or a range of it) through `sink`, in order; resolves with the byte count. */
  download(remotePath: PathLike, sink: DownloadSink, options?: DownloadOptions): Promise<number> {
    return download(this, remotePath, sink, options);
  }

  /** Uploads what `source` yields to a remote file; resolves with the byte count once the file is closed. */
  upload(source: UploadSource, remotePath: PathLike, options?: UploadOptions): Promise<number> {
    return upload(this, source, remotePath, options);
  }
}

function decodeStatVFS(m: Message): SftpStatVFS {
  const out = {} as Record<(typeof STATVFS_FIELDS)[number], Uint64>;
  for (const f of STATVFS_FIELDS) out[f] = readUint64(m.getBytes(8), 0);
  return out;
}
