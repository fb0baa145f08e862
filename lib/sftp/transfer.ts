/**
 * Whole-file transfers over an SftpClientCore with a deep pipeline: up to `maxInFlight`
 * READs or WRITEs of the largest size the server's limits allow, as OpenSSH's client does
 * (64 requests by default). These run inside the worker; only progress crosses threads.
 *
 * Exactness rules: short reads are re-requested (a server may return less than asked
 * anywhere, not only at EOF), data reaches the sink in file order, and an upload never
 * resolves after a failed WRITE, fsync or CLOSE.
 */
import { SFTPAttributes } from './attributes';
import { DEFAULT_MAX_IN_FLIGHT, DEFAULT_READS_IN_FLIGHT, errnoOf, EXT, FXF } from './constants';
import { IOError } from '../errors';
import type { SftpClientCore, SftpLimits } from './client-core';
import type { PathLike } from './requests';

/** Receives downloaded data in order: `offset` counts from the first byte transferred. */
export type DownloadSink = (offset: number, data: Buffer) => void | Promise<void>;
/**
 * Receives downloaded data in order as runs of contiguous chunks (`chunks[0]` starts at `offset`,
 * each next one where the last ended): one local `writev` per run instead of one write per READ.
 */
export type DownloadRunSink = (offset: number, chunks: Buffer[]) => void | Promise<void>;
/**
 * Yields the bytes at `offset` (counted from the first byte transferred): `length` is one
 * WRITE's worth; fewer is fine, and more goes out as several WRITEs. Null or an empty buffer
 * ends the upload. The buffer is sent without a copy: return a fresh one each time (or one left
 * untouched until onWritten gives it back).
 */
export type UploadSource = (offset: number, length: number) => Buffer | null | Promise<Buffer | null>;
export type Progress = (bytesSoFar: number, total: number) => void;

export interface DownloadOptions {
  /** Bytes per READ (default and ceiling: the server's max-read-length). */
  requestSize?: number;
  /** READs in flight (default 64). */
  maxInFlight?: number;
  /** `(bytesSoFar, total)`; total is the remote size (0 if unknown), as Paramiko's callback. */
  onProgress?: Progress;
  /** First remote byte to fetch (default 0). */
  offset?: number;
  /** Bytes to fetch at most (default: to end of file). */
  length?: number;
  /**
   * The sink neither keeps nor reads its `data` once it has returned (or its promise has
   * settled): the memory is then reused for later replies.
   */
  sinkReleasesData?: boolean;
  /**
   * The file's size when already known (from a directory listing): no FSTAT round trip after
   * the OPEN. A file that changed since is still read to its end (a READ at that size looks for
   * more, and EOF ends it earlier); progress totals then use this size.
   */
  knownSize?: number;
}

export interface DownloadRunOptions extends DownloadOptions {
  /**
   * Bytes a run holds before it goes to the sink (default 0: whatever has arrived in order); a
   * shorter run goes only when no READ is left in flight, at the end. Chunks waiting to fill a
   * run count against `maxInFlight`.
   */
  minRunBytes?: number;
  /**
   * Bytes a run holds at most (default: no limit but MAX_RUN_CHUNKS); a single chunk larger
   * than this still goes alone. A run that cannot take another full request goes at once,
   * whatever `minRunBytes` says.
   */
  maxRunBytes?: number;
}

/** Longest run handed to a sink at once (well under IOV_MAX, 1024). */
const MAX_RUN_CHUNKS = 64;

export interface UploadOptions {
  /** Bytes per WRITE (default and ceiling: the server's max-write-length). */
  requestSize?: number;
  /** WRITEs in flight (default 64). */
  maxInFlight?: number;
  onProgress?: Progress;
  /** Expected total, for progress (and checked: a source yielding another amount fails the upload). */
  size?: number;
  /** First remote byte to write; when set, the file is not truncated (a resumed upload). */
  offset?: number;
  /** SSH_FXF_* open flags (default WRITE|CREAT|TRUNC, or WRITE|CREAT with an offset). */
  flags?: number;
  /** Attributes for a created file (permissions). */
  attrs?: SFTPAttributes;
  /** fsync@openssh.com before closing (when the server has it). */
  fsync?: boolean;
  /**
   * Paramiko's put(confirm=True): the remote file must have the size uploaded (IOError "size
   * mismatch in put!" otherwise), and its attributes are handed over here. Its STAT goes right
   * behind the CLOSE, in the same round trip (a round trip less per file: what a tree of small
   * files far away is made of); as a server may answer a path request before a handle's CLOSE
   * is done (the protocol allows it), an answer with another size is asked again once closed.
   */
  confirm?: (attrs: SFTPAttributes) => void;
  /**
   * Called with each buffer the source yielded once the server has acknowledged all of it: the
   * bytes are sent and no longer read, so the source may reuse the buffer.
   */
  onWritten?: (data: Buffer) => void;
}

const inFlightOf = (n: number | undefined, dflt = DEFAULT_MAX_IN_FLIGHT): number => Math.max(1, Math.floor(n ?? dflt));

/**
 * Runs `body` with the handle, then closes it; a close error surfaces only when the body
 * succeeded. `behind`: requests sent right after the CLOSE (no round trip of their own), awaited
 * with it once the body succeeded.
 */
async function withHandle<T>(core: SftpClientCore, handle: Buffer, body: () => Promise<T>, behind?: () => Promise<unknown>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await core.close(handle).catch(() => undefined);
    throw err;
  }
  const closing = core.close(handle);
  const after = behind?.();
  // Both settle before either is raised: nothing left unhandled.
  const [closed, also] = await Promise.allSettled([closing, after]);
  if (closed.status === 'rejected') throw closed.reason;
  if (also.status === 'rejected') throw also.reason;
  return result;
}

export function download(core: SftpClientCore, remotePath: PathLike, sink: DownloadSink, opts: DownloadOptions = {}): Promise<number> {
  return downloadRuns(core, remotePath, chunkByChunk(sink), opts);
}

/** A run sink that hands each chunk of a run to `sink` in turn, waiting for each it makes wait. */
function chunkByChunk(sink: DownloadSink): DownloadRunSink {
  const from = (offset: number, chunks: Buffer[], i: number): void | Promise<void> => {
    for (; i < chunks.length; i++) {
      const r = sink(offset, chunks[i]);
      offset += chunks[i].length;
      if (r && typeof r.then === 'function') {
        const next = i + 1;
        const at = offset;
        return r.then(() => from(at, chunks, next));
      }
    }
  };
  return (offset, chunks) => from(offset, chunks, 0);
}

/**
 * The server's limits, asked (if the session has not asked yet) along with a transfer's OPEN: a
 * request size is needed only once the handle is. Awaited in the transfer's body (withHandle
 * closes the handle if they fail); until then a failure is held, not left unhandled.
 */
function limitsAlongside(core: SftpClientCore): Promise<SftpLimits> {
  const limits = core.limits();
  limits.catch(() => undefined);
  return limits;
}

/** download with runs of contiguous chunks for the sink (see DownloadRunSink, minRunBytes, maxRunBytes). */
export async function downloadRuns(core: SftpClientCore, remotePath: PathLike, sink: DownloadRunSink, opts: DownloadRunOptions = {}): Promise<number> {
  const limiting = limitsAlongside(core);
  const maxInFlight = inFlightOf(opts.maxInFlight, DEFAULT_READS_IN_FLIGHT);
  const start = opts.offset ?? 0;
  const end = opts.length === undefined ? Infinity : start + opts.length;
  // Without a listed size, a STAT of the path rides with the OPEN (Paramiko's get stats the path
  // too): the READs go out once both are answered, one round trip, where an FSTAT of the handle
  // would take a second. Should the STAT fail where the OPEN worked, the FSTAT is asked after all.
  const stating = opts.knownSize === undefined ? core.stat(remotePath).catch(() => null) : null;
  const handle = await core.open(remotePath, FXF.READ);
  return withHandle(core, handle, async () => {
    const limits = await limiting;
    const requestSize = Math.max(1, Math.min(opts.requestSize ?? limits.maxReadLength, limits.maxReadLength));
    const st = stating && ((await stating) ?? (await core.fstat(handle).catch(() => null)));
    const remoteSize = opts.knownSize ?? (typeof st?.st_size === 'number' ? st.st_size : undefined);
    const total = remoteSize === undefined ? 0 : Math.max(0, Math.min(end, remoteSize) - start);
    const release = opts.sinkReleasesData ? (data: Buffer) => core.replyPool.release(data) : undefined;
    try {
      return await new DownloadPipeline(core, handle, sink, {
        requestSize,
        maxInFlight,
        start,
        end,
        remoteSize,
        total,
        minRunBytes: opts.minRunBytes ?? 0,
        maxRunBytes: opts.maxRunBytes ?? Infinity,
        onProgress: opts.onProgress,
        release,
      }).run();
    } finally {
      core.replyPool.clear();
    }
  });
}

/** What readRange read, and whether a READ answered EOF (the file ends where `data` does). */
export interface RangeRead {
  data: Buffer;
  eof: boolean;
}

/**
 * Reads `length` bytes at `offset` of an open handle with many READs in flight (SFTPFile reads
 * and prefetch). A read of one request resolves with what the server gave (it may give less
 * anywhere); one of more, with all of it unless EOF came first (short reads are asked again),
 * in memory of its own (the SFTP service transfers it to the main thread as it is).
 *
 * `toEnd` (a read of the rest of the file): an FSTAT goes out with the READs, and an answer that
 * ends short exactly where the file's size says it ends is its end, with no READ only to hear
 * EOF (a small file's `read()`: one round trip instead of two).
 */
export async function readRange(
  core: SftpClientCore,
  handle: Buffer,
  offset: number,
  length: number,
  opts: { requestSize?: number; maxInFlight?: number; toEnd?: boolean } = {},
): Promise<RangeRead> {
  const limits = await core.limits();
  const requestSize = Math.max(1, Math.min(opts.requestSize ?? limits.maxReadLength, limits.maxReadLength));
  const sizing = opts.toEnd ? core.fstat(handle).then((st) => (typeof st.st_size === 'number' ? st.st_size : null), () => null) : null;
  if (length <= requestSize) {
    const data = await core.read(handle, offset, length);
    if (!data) return { data: Buffer.alloc(0), eof: true };
    const size = sizing && (await sizing);
    return { data, eof: data.length < length && offset + data.length === size };
  }
  const out = Buffer.allocUnsafe(length);
  let got = 0;
  const sink: DownloadRunSink = (at, chunks) => {
    for (const data of chunks) {
      data.copy(out, at);
      at += data.length;
    }
    got = at;
  };
  // The sink copies: each reply's memory can serve the next.
  await new DownloadPipeline(core, handle, sink, {
    requestSize,
    maxInFlight: inFlightOf(opts.maxInFlight, DEFAULT_READS_IN_FLIGHT),
    start: offset,
    end: offset + length,
    remoteSize: undefined,
    total: length,
    minRunBytes: 0,
    maxRunBytes: Infinity,
    release: (data) => core.replyPool.release(data),
    endHint: sizing ?? undefined,
  }).run();
  return got === length ? { data: out, eof: false } : { data: out.subarray(0, got), eof: true };
}

interface PipelineParams {
  requestSize: number;
  maxInFlight: number;
  start: number;
  end: number;
  remoteSize: number | undefined;
  total: number;
  minRunBytes: number;
  maxRunBytes: number;
  onProgress?: Progress;
  /** Called with each delivered buffer once the sink is done with it. */
  release?: (data: Buffer) => void;
  /**
   * Where the file ends by its size, once known: a READ answered short exactly there found the
   * end (no READ of the rest only to hear EOF). A file that grew since answers beyond it.
   */
  endHint?: Promise<number | null>;
}

/** The read side: issues READs ahead, re-requests short reads, delivers in order. */
class DownloadPipeline {
  private next: number;
  /** Where the file ends, once a READ has answered EOF. */
  private eofAt = Infinity;
  /** Requests up to here are sized by the remote size; one probe READ at it looks for growth. */
  private softEnd: number;
  private probeSent = false;
  private inFlight = 0;
  /** Remainders of short reads, to request before anything new. */
  private gaps: Array<[number, number]> = [];
  /** Received, not yet delivered (out of order, or waiting for the sink). */
  private ready = new Map<number, Buffer>();
  private delivered: number;
  /** Chunks of the run the sink has not finished with. */
  private inSink = 0;
  private readonly minRun: number;
  private failed: Error | null = null;
  /** See PipelineParams.endHint: null when there is none (or it said nothing), undefined until it is known. */
  private endHint: number | null | undefined;
  /** Short answers' remainders waiting for the end hint: each is the end or a gap to ask. */
  private held: Array<[number, number]> = [];
  private done!: (n: number) => void;
  private reject!: (e: Error) => void;

  constructor(
    private readonly core: SftpClientCore,
    private readonly handle: Buffer,
    private readonly sink: DownloadRunSink,
    private readonly p: PipelineParams,
  ) {
    this.next = this.delivered = p.start;
    this.softEnd = p.remoteSize ?? Infinity;
    if (p.endHint) {
      void p.endHint.then((n) => {
        this.endHint = n;
        for (const [off, len] of this.held.splice(0)) this.shortAt(off, len);
        this.deliver();
        this.pump();
      });
    } else {
      this.endHint = null;
    }
    // A run never waits for more than a quarter of the pipeline: the rest keeps READs going.
    this.minRun = Math.min(p.minRunBytes, Math.floor(p.maxInFlight / 4) * p.requestSize);
  }

  run(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.done = resolve;
      this.reject = reject;
      this.pump();
    });
  }

  private get stop(): number {
    return Math.min(this.p.end, this.eofAt);
  }

  private pump(): void {
    if (this.failed) return;
    // Remainders of short reads go first and only need a free request slot: the data held
    // back in `ready` may be waiting for exactly them.
    while (this.gaps.length > 0 && this.inFlight < this.p.maxInFlight) {
      const [off, len] = this.gaps.shift()!;
      if (off < this.stop) this.issue(off, Math.min(len, this.stop - off));
    }
    while (this.inFlight + this.ready.size + this.inSink < this.p.maxInFlight && this.next < this.stop) {
      if (this.next >= this.softEnd) {
        if (this.probeSent) break;
        this.probeSent = true;
      }
      const off = this.next;
      const len = Math.min(this.p.requestSize, this.stop - off, off < this.softEnd ? this.softEnd - off : Infinity);
      this.next += len;
      this.issue(off, len);
    }
    if (this.inFlight === 0 && this.ready.size === 0 && this.inSink === 0 && this.gaps.length === 0 && this.held.length === 0 && this.next >= this.stop) {
      this.done(this.delivered - this.p.start);
    }
  }

  private issue(off: number, len: number): void {
    this.inFlight++;
    this.core.read(this.handle, off, len).then(
      (data) => {
        this.inFlight--;
        if (this.failed) return;
        this.onData(off, len, data);
        this.deliver();
        this.pump();
      },
      (err: Error) => {
        this.inFlight--;
        this.fail(err);
      },
    );
  }

  private onData(off: number, len: number, data: Buffer | null): void {
    if (data === null || data.length === 0) {
      // A zero-length DATA would loop forever; it means the same as EOF.
      this.setEof(off);
      return;
    }
    if (off === this.softEnd && off + data.length > this.softEnd) this.softEnd = Infinity; // the file grew
    if (off >= this.stop) return;
    if (off + data.length > this.stop) data = data.subarray(0, this.stop - off);
    else if (data.length < len) {
      // Its answer may come after the READs' (they are settled in one go from one packet).
      if (this.endHint === undefined) this.held.push([off + data.length, len - data.length]);
      else this.shortAt(off + data.length, len - data.length);
    }
    this.ready.set(off, data);
  }

  /** A READ was answered short, up to `off`: the end of the file if the end hint says so, else a gap to ask. */
  private shortAt(off: number, len: number): void {
    if (off === this.endHint) this.setEof(off);
    else this.gaps.push([off, len]);
  }

  private setEof(off: number): void {
    if (off >= this.eofAt) return;
    this.eofAt = off;
    // Data beyond a newly found end came from a file changing under us: keep a consistent prefix.
    for (const [o, d] of this.ready) {
      if (o >= off) this.ready.delete(o);
      else if (o + d.length > off) this.ready.set(o, d.subarray(0, off - o));
    }
  }

  private deliver(): void {
    while (this.inSink === 0 && !this.failed) {
      const maxRun = this.p.maxRunBytes;
      let end = this.delivered;
      let n = 0;
      for (let d = this.ready.get(end); d && n < MAX_RUN_CHUNKS && (n === 0 || end - this.delivered + d.length <= maxRun); d = this.ready.get(end)) {
        end += d.length;
        n++;
      }
      if (n === 0) return;
      // A short run waits for more while READs are out (each arrival calls here again), unless
      // no further request could join it.
      const full = n === MAX_RUN_CHUNKS || end - this.delivered + this.p.requestSize > maxRun;
      if (end - this.delivered < this.minRun && !full && this.inFlight > 0) return;
      const at = this.delivered - this.p.start;
      const chunks = new Array<Buffer>(n);
      for (let i = 0; i < n; i++) {
        const data = this.ready.get(this.delivered)!;
        this.ready.delete(this.delivered);
        this.delivered += data.length;
        chunks[i] = data;
      }
      this.inSink = n;
      let r: void | Promise<void>;
      try {
        r = this.sink(at, chunks);
      } catch (err) {
        return this.fail(err as Error);
      }
      this.progress();
      if (r && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(
          () => {
            this.sinkDone(chunks);
            this.deliver();
            this.pump();
          },
          (err: Error) => this.fail(err),
        );
      } else {
        this.sinkDone(chunks);
      }
    }
  }

  private sinkDone(chunks: Buffer[]): void {
    this.inSink = 0;
    if (this.p.release) for (const data of chunks) this.p.release(data);
  }

  private progress(): void {
    const done = this.delivered - this.p.start;
    this.p.onProgress?.(done, Math.max(this.p.total, done));
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.reject(err);
  }
}

export async function upload(core: SftpClientCore, source: UploadSource, remotePath: PathLike, opts: UploadOptions = {}): Promise<number> {
  const limiting = limitsAlongside(core);
  const maxInFlight = inFlightOf(opts.maxInFlight);
  const start = opts.offset ?? 0;
  const flags = opts.flags ?? (FXF.WRITE | FXF.CREAT | (opts.offset === undefined ? FXF.TRUNC : 0));
  const handle = await core.open(remotePath, flags, opts.attrs);
  // What the STAT sent behind the CLOSE said (confirm).
  const early: { st: SFTPAttributes | null } = { st: null };
  const uploaded = await withHandle(core, handle, async () => {
    const limits = await limiting;
    const requestSize = Math.max(1, Math.min(opts.requestSize ?? limits.maxWriteLength, limits.maxWriteLength));
    let failed: Error | null = null;
    let inFlight = 0;
    let sent = 0;
    let acked = 0;
    let wake: (() => void) | null = null;
    const settle = (): void => {
      inFlight--;
      const w = wake;
      wake = null;
      w?.();
    };
    const waitSlot = (limit: number): Promise<void> | null =>
      inFlight > limit && !failed ? new Promise<void>((resolve) => (wake = resolve)) : null;

    const writeOne = (data: Buffer, at: number, written: () => void): void => {
      inFlight++;
      core.write(handle, start + at, data).then(
        () => {
          acked += data.length;
          written();
          opts.onProgress?.(acked, Math.max(opts.size ?? 0, acked));
          settle();
        },
        (err: Error) => {
          failed ??= err;
          settle();
        },
      );
    };

    for (;;) {
      for (let w = waitSlot(maxInFlight - 1); w; w = waitSlot(maxInFlight - 1)) await w;
      if (failed) break;
      const chunk = await source(sent, requestSize);
      if (!chunk || chunk.length === 0) break;
      // The chunk is the source's again once every WRITE of a piece of it is acknowledged.
      let pieces = Math.ceil(chunk.length / requestSize);
      const written = (): void => {
        if (--pieces === 0) opts.onWritten?.(chunk);
      };
      for (let i = 0; i < chunk.length; i += requestSize) {
        if (i > 0) for (let w = waitSlot(maxInFlight - 1); w; w = waitSlot(maxInFlight - 1)) await w;
        if (failed) break;
        const piece = chunk.length <= requestSize ? chunk : chunk.subarray(i, i + requestSize);
        writeOne(piece, sent, written);
        sent += piece.length;
      }
    }
    // Every WRITE must be acknowledged before the outcome is known.
    while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve));
    if (failed) throw failed;
    if (opts.size !== undefined && sent !== opts.size) {
      throw new IOError(`size mismatch in upload: the source gave ${sent} bytes, ${opts.size} expected`, { filename: String(remotePath) });
    }
    if (opts.fsync && core.hasExtension(EXT.FSYNC)) await core.fsync(handle);
    return sent;
  }, opts.confirm && (() => core.stat(remotePath).then((st) => (early.st = st), () => undefined)));
  if (opts.confirm) opts.confirm(early.st?.st_size === uploaded ? early.st : await verifySize(core, remotePath, uploaded));
  return uploaded;
}

/** Files this large or larger go alone in a batch: their own pipeline fills the connection. */
const BATCH_ALONE_BYTES = 4 * 1024 * 1024;
/** A file of a batch takes a slot per this many bytes (at least one): what is in flight stays bounded. */
const BATCH_SLOT_BYTES = 256 * 1024;

/**
 * The slots of a batch of whole-file transfers: `parallel`, but at most half the handles a
 * server announces (limits@openssh.com; 0 when it does not), the rest left for the caller's own.
 */
export function batchSlots(parallel: number, maxOpenHandles: number): number {
  return Math.max(1, Math.min(Math.floor(parallel), maxOpenHandles > 0 ? Math.floor(maxOpenHandles / 2) : Infinity));
}

/** The slots a file of `size` bytes takes in a batch of `slots`: one per BATCH_SLOT_BYTES, all from BATCH_ALONE_BYTES. */
export function batchWeight(size: number, slots: number): number {
  return size >= BATCH_ALONE_BYTES ? slots : Math.min(slots, Math.max(1, Math.ceil(size / BATCH_SLOT_BYTES)));
}

/** Paramiko's put(confirm=True) check: stat the remote file and compare its size. */
export async function verifySize(core: SftpClientCore, remotePath: PathLike, expected: number, what = 'put'): Promise<SFTPAttributes> {
  const st = await core.stat(remotePath);
  if (st.st_size !== expected) {
    throw new IOError(`size mismatch in ${what}! ${st.st_size} != ${expected}`, { filename: String(remotePath) });
  }
  return st;
}

export interface CopyOptions {
  /** Fail with EEXIST when the destination exists (SSH_FXF_EXCL), as fs.copyFile's COPYFILE_EXCL. */
  exclusive?: boolean;
  /** Copy through this client even when the server has copy-data (tests; servers whose copy-data misbehaves). */
  throughClient?: boolean;
  /** WRITEs (and READs) in flight when the bytes go through the client. */
  maxInFlight?: number;
  /** `(bytesSoFar, total)` as the bytes are written (through the client; once at the end with copy-data). */
  onProgress?: Progress;
}

/** What copyRemote did: the bytes copied and whether the server copied them itself. */
export interface CopyResult {
  bytes: number;
  serverSide: boolean;
}

/**
 * Copies remote file `from` to remote path `to`, as fs.copyFile does locally: the server copies
 * the bytes itself when it has copy-data (OpenSSH 9.0+, our server), else they come down and go
 * back up through this client with both pipelines full. A new file gets the source's
 * permissions. Copying a file onto itself (or a hard link of it) leaves it whole, where
 * truncating first would lose it. Checks the size afterwards; a source that changes size
 * meanwhile fails.
 */
export async function copyRemote(core: SftpClientCore, from: string, to: string, opts: CopyOptions = {}): Promise<CopyResult> {
  const st = await core.stat(from);
  if (st.isDirectory()) throw new IOError(`EISDIR: illegal operation on a directory, copyfile '${from}' -> '${to}'`, { code: 'EISDIR', errno: errnoOf('EISDIR'), filename: from });
  // A Uint64 beyond 2^53 bytes (8 PiB) would lose precision here: no file is that large.
  const size = Number(st.st_size ?? 0);
  const created = new SFTPAttributes();
  if (st.st_mode !== undefined) created.st_mode = st.st_mode & 0o7777;
  if (opts.exclusive) await createExclusive(core, to, created);
  // Truncate only a longer file, which cannot be the source itself: opening the source as the
  // destination with TRUNC would empty it before it is read. A shorter or equal one is
  // overwritten to the source's size. (A SETSTAT of the size afterwards would do the same, but
  // Paramiko's server implements it as open(path, "w+") then truncate: zeros.)
  const existing = opts.exclusive ? null : await core.stat(to).catch(() => null);
  const flags = FXF.WRITE | FXF.CREAT | (existing && Number(existing.st_size ?? 0) > size ? FXF.TRUNC : 0);
  const serverSide = !opts.throughClient && core.hasExtension(EXT.COPY_DATA);
  let bytes: number;
  if (serverSide) {
    const src = await core.open(from, FXF.READ);
    bytes = await withHandle(core, src, async () => {
      const dst = await core.open(to, flags, created);
      return withHandle(core, dst, async () => {
        await core.copyData(src, 0, 0, dst, 0);
        return size;
      });
    });
    opts.onProgress?.(bytes, size);
  } else {
    bytes = await relay(core, from, to, size, flags, created, opts);
  }
  await verifySize(core, to, size, 'copy');
  return { bytes, serverSide };
}

/** Creates `to` with SSH_FXF_EXCL (EEXIST when it is there, even from OpenSSH: see SftpClientCore.open). */
async function createExclusive(core: SftpClientCore, to: string, attrs: SFTPAttributes): Promise<void> {
  await core.close(await core.open(to, FXF.WRITE | FXF.CREAT | FXF.EXCL, attrs));
}

/**
 * The bytes of `from` downloaded and uploaded to `to` at once: the download's sink feeds the
 * upload's source through a queue of at most a few megabytes, so both pipelines stay full and
 * neither outruns the other. Either side's failure stops both.
 */
async function relay(core: SftpClientCore, from: string, to: string, size: number, flags: number, attrs: SFTPAttributes, opts: CopyOptions): Promise<number> {
  const QUEUE_LIMIT = 8 * 1024 * 1024;
  const queue: Buffer[] = [];
  let queued = 0;
  let downloaded = false;
  let stop: Error | null = null;
  let wakeReader: (() => void) | null = null;
  let wakeWriter: (() => void) | null = null;
  const wake = (which: 'reader' | 'writer'): void => {
    const w = which === 'reader' ? wakeReader : wakeWriter;
    if (which === 'reader') wakeReader = null;
    else wakeWriter = null;
    w?.();
  };

  const down = download(core, from, async (_offset, data) => {
    queue.push(data);
    queued += data.length;
    wake('writer');
    while (queued > QUEUE_LIMIT && !stop) await new Promise<void>((r) => (wakeReader = r));
    if (stop) throw stop;
  }, { maxInFlight: opts.maxInFlight }).finally(() => {
    downloaded = true;
    wake('writer');
  });
  const up = upload(core, async (_offset, length) => {
    while (!queue.length && !downloaded && !stop) await new Promise<void>((r) => (wakeWriter = r));
    if (stop) throw stop;
    if (!queue.length) return null;
    let head = queue[0];
    if (head.length > length) {
      queue[0] = head.subarray(length);
      head = head.subarray(0, length);
    } else {
      queue.shift();
    }
    queued -= head.length;
    wake('reader');
    return head;
  }, to, { flags, attrs, size, maxInFlight: opts.maxInFlight, onProgress: opts.onProgress });

  const [d, u] = await Promise.allSettled([
    down.catch((e: Error) => {
      stop ??= e;
      wake('writer');
      throw e;
    }),
    up.catch((e: Error) => {
      stop ??= e;
      wake('reader');
      throw e;
    }),
  ]);
  // The first failure is the cause; the other side only stopped because of it.
  if (stop) throw stop;
  if (d.status === 'rejected') throw d.reason;
  if (u.status === 'rejected') throw u.reason;
  return u.value;
}
