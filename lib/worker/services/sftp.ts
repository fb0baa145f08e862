import { open as fsOpen } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { callback, withTransfer } from '../../bridge/worker-side';
import type { Transfer } from '../../bridge/worker-side';
import type { Service } from '../../bridge/worker-side';
import { IOError, SocketTimeout, SSHException } from '../../errors';
import { FILE_WRITE_CALL_BYTES, FileWriter, ioErrorFrom } from '../../files';
import { SFTPAttributes } from '../../sftp/attributes';
import { BufferPool } from '../../buffer-pool';
import { batchSlots, batchWeight, copyRemote, downloadRuns, readRange, upload } from '../../sftp/transfer';
import type { RangeRead } from '../../sftp/transfer';
import { SftpClientChannel } from '../sftp/client-channel';
import { connectionOf } from './transport';

/** One SFTP session of the main thread's SFTPClient. */
interface Session {
  link: SftpClientChannel;
  /** Pipelined writes not yet acknowledged, per handle (hex), and the first error among them. */
  writes: Map<string, { pending: Set<Promise<void>>; error: Error | null }>;
}

const sessions = new Map<number, Session>();
let nextId = 1;

function session(id: number): Session {
  const s = sessions.get(id);
  if (!s) throw new SSHException('the SFTP session is closed');
  return s;
}

/** Attributes from the main thread (a plain object once cloned) as the engine's class. */
function attrs(a: Record<string, unknown> | null | undefined): SFTPAttributes | undefined {
  if (!a) return undefined;
  const out = new SFTPAttributes();
  for (const k of ['st_size', 'st_uid', 'st_gid', 'st_mode', 'st_atime', 'st_mtime'] as const) {
    if (a[k] !== undefined && a[k] !== null) (out as unknown as Record<string, unknown>)[k] = a[k];
  }
  return out;
}

/**
 * Runs a transfer with an inactivity limit (Paramiko's channel timeout is per read, not per
 * transfer): SocketTimeout when `seconds` pass with no progress. `touch()` marks progress.
 */
function withIdleTimeout<T>(seconds: number | null | undefined, run: (touch: () => void) => Promise<T>): Promise<T> {
  if (seconds === null || seconds === undefined) return run(() => undefined);
  let last = performance.now();
  const touch = () => {
    last = performance.now();
  };
  return new Promise<T>((resolve, reject) => {
    const timer = setInterval(() => {
      if (performance.now() - last > seconds * 1000) {
        clearInterval(timer);
        reject(new SocketTimeout(`no SFTP progress within ${seconds} s`));
      }
    }, Math.min(1000, Math.max(20, (seconds * 1000) / 4)));
    run(touch).then(
      (v) => {
        clearInterval(timer);
        resolve(v);
      },
      (e) => {
        clearInterval(timer);
        reject(e);
      },
    );
  });
}

const handleOf = (h: Uint8Array): Buffer => Buffer.from(h);
const key = (h: Uint8Array): string => Buffer.from(h).toString('hex');

/**
 * A read the main thread gets without a copy of its data: readRange's result of a large read is
 * the whole of an ArrayBuffer nothing else holds, which goes as it is; a view into other memory
 * (a reply packet) is copied into memory of its own first.
 */
function transferable(r: RangeRead): Transfer<RangeRead | { data: Uint8Array; eof: boolean }> | RangeRead {
  const b = r.data;
  if (b.length < 64 * 1024) return r;
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return withTransfer(r, [b.buffer]);
  const own = new Uint8Array(b.length);
  own.set(b);
  return withTransfer({ data: own, eof: r.eof }, [own.buffer]);
}

/**
 * The main thread's progress callback: called at most every 100 ms without waiting for it; an
 * exception it throws aborts the transfer (Paramiko scripts cancel a transfer this way), at the
 * next piece of data and at the latest at the final call, which is awaited.
 */
class ProgressReporter {
  private last = 0;
  error: Error | null = null;
  constructor(private readonly key: number) {}

  report = (done: number, total: number): void => {
    const now = performance.now();
    if (now - this.last < 100) return;
    this.last = now;
    callback('sftp-progress', { key: this.key, done, total }).catch((e: Error) => (this.error ??= e));
  };

  /** Throws the callback's error, if it threw. */
  check(): void {
    if (this.error) throw this.error;
  }

  async final(done: number, total: number): Promise<void> {
    this.check();
    await callback('sftp-progress', { key: this.key, done, total });
  }
}
/** The engine's operations the main thread may call by name, with path/attribute arguments. */
const OPS: Record<string, (s: Session, a: Record<string, any>) => Promise<unknown>> = {
  stat: (s, a) => s.link.core.stat(a.path),
  lstat: (s, a) => s.link.core.lstat(a.path),
  setstat: (s, a) => s.link.core.setstat(a.path, attrs(a.attrs)!),
  listdir: (s, a) => s.link.core.listdir(a.path),
  remove: (s, a) => s.link.core.remove(a.path),
  mkdir: (s, a) => s.link.core.mkdir(a.path, attrs(a.attrs)),
  rmdir: (s, a) => s.link.core.rmdir(a.path),
  realpath: (s, a) => s.link.core.realpath(a.path),
  readlink: (s, a) => s.link.core.readlink(a.path),
  symlink: (s, a) => s.link.core.symlink(a.target, a.link),
  rename: (s, a) => s.link.core.rename(a.oldPath, a.newPath),
  posixRename: (s, a) => s.link.core.posixRename(a.oldPath, a.newPath),
  hardlink: (s, a) => s.link.core.hardlink(a.oldPath, a.newPath),
  statvfs: (s, a) => s.link.core.statvfs(a.path),
  limits: (s) => s.link.core.limits(),
  open: (s, a) => s.link.core.open(a.path, a.flags, attrs(a.attrs)),
  fstat: (s, a) => s.link.core.fstat(handleOf(a.handle)),
  fsetstat: (s, a) => s.link.core.fsetstat(handleOf(a.handle), attrs(a.attrs)!),
  fsync: (s, a) => s.link.core.fsync(handleOf(a.handle)),
  fstatvfs: (s, a) => s.link.core.fstatvfs(handleOf(a.handle)),
  copyData: (s, a) => s.link.core.copyData(handleOf(a.from), a.fromOffset, a.length, handleOf(a.to), a.toOffset),
  checkFile: (s, a) => s.link.core.checkFile(handleOf(a.handle), a.algorithms, a.offset, a.length, a.blockSize),
};

/** Waits for a handle's pipelined writes; throws the first error among them (then forgets it). */
async function settleWrites(s: Session, handle: Uint8Array): Promise<void> {
  const w = s.writes.get(key(handle));
  if (!w) return;
  while (w.pending.size) await Promise.allSettled([...w.pending]);
  const e = w.error;
  w.error = null;
  if (e) throw e;
}

/** What get and put have in common. */
interface TransferArgs {
  sftp: number;
  progressKey: number | null;
  maxInFlight?: number;
  /** Seconds without progress before SocketTimeout (the client's channel timeout). */
  idleTimeout?: number | null;
}

/**
 * A local file operation of get/put: an fs error becomes an IOError naming the local file, as
 * Paramiko's (Python's open/read/write raise OSErrors with errno and filename).
 */
async function local<T>(action: string, filename: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw localError(e, action, filename);
  }
}

/** An fs error of `filename` as an IOError naming it; anything else as it is. */
function localError(e: unknown, action: string, filename: string): unknown {
  return (e as NodeJS.ErrnoException)?.code && !(e instanceof IOError) ? ioErrorFrom(e, `cannot ${action}`, filename) : e;
}

/**
 * A get hands its FileWriter runs of up to this many bytes (four of OpenSSH's READs). Written
 * through libuv's thread pool (the writer's fallback), each run is one hand-off, which costs the
 * worker ~50 microseconds on these VMs (one per 255 KiB READ was ~10% of a download's time in
 * the worker); no more either: larger writes cost the kernel more (FILE_WRITE_CALL_BYTES).
 * Written inline, each READ's reply in the run is a call of its own.
 */
const GET_RUN_BYTES = FILE_WRITE_CALL_BYTES;

interface GetArgs extends TransferArgs {
  remote: string;
  local: string;
  /**
   * The size a listing gave (a recursive get): no FSTAT, and no size check, as the file may have
   * changed since it was listed (it is read to its end all the same).
   */
  listedSize?: number;
}

async function getFile(a: GetArgs, touch: () => void): Promise<number> {
  const s = session(a.sftp);
  let fh: FileHandle | null = await local('write', a.local, () => fsOpen(a.local, 'w'));
  let expected: number | undefined;
  const progress = a.progressKey === null ? null : new ProgressReporter(a.progressKey);
  try {
    const opened = fh;
    const writer = await local('write', a.local, () => FileWriter.forFile(opened, a.local, { inOrder: true }));
    const n = await downloadRuns(s.link.core, a.remote, (offset, chunks) => {
      touch();
      progress?.check();
      try {
        return writer.write(chunks, offset)?.catch((e: unknown) => {
          throw localError(e, 'write', a.local);
        });
      } catch (e) {
        throw localError(e, 'write', a.local);
      }
    }, {
      maxInFlight: a.maxInFlight,
      minRunBytes: GET_RUN_BYTES,
      maxRunBytes: GET_RUN_BYTES,
      // The file has the bytes once the write resolves: their buffer serves a later reply.
      sinkReleasesData: true,
      knownSize: a.listedSize,
      onProgress: (done, total) => {
        expected = total || undefined;
        progress?.report(done, total);
      },
    });
    await local('write', a.local, () => fh!.close());
    fh = null;
    // As Paramiko: any difference from the size the server gave is an error.
    if (expected !== undefined && a.listedSize === undefined && n !== expected) throw new IOError(`size mismatch in get!  ${n} != ${expected}`);
    await progress?.final(n, expected ?? n);
    return n;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

interface PutArgs extends TransferArgs {
  local: string;
  remote: string;
  confirm: boolean;
}

/**
 * A put reads the local file this many WRITEs at a time (the upload splits what it gets): each
 * read is a hand-off to libuv's thread pool, as a get's writes are (GET_RUN_BYTES).
 */
const PUT_READ_WRITES = 4;

/**
 * What a put reads: `fh` to its end, as Paramiko's put and OpenSSH's sftp read, so that a file
 * that grows meanwhile (a log being written) is sent with what was appended, one that shrinks
 * with what is left, and one whose size says less than it holds (/proc, /sys) whole; the size
 * check compares what was sent. A regular file (`size` its size at the start) is read at
 * offsets, anything else (a FIFO, a pipe, a device) at its current offset. Buffers come from
 * `chunks` (released by the caller once sent); `io` wraps each read (its errors).
 * @internal exported for its tests.
 */
export function localSource(
  fh: Pick<FileHandle, 'read'>,
  size: number | undefined,
  chunks: BufferPool,
  io: <T>(fn: () => Promise<T>) => Promise<T>,
): (offset: number, length: number) => Promise<Buffer | null> {
  return async (offset, length) => {
    // Near the size it had, no more than what is left and a byte: that byte tells whether the
    // file grew, and the read of 0 bytes that ends it costs no large buffer.
    const want = size !== undefined && offset <= size ? Math.min(PUT_READ_WRITES * length, size - offset + 1) : PUT_READ_WRITES * length;
    const buf = chunks.take(want);
    const { bytesRead } = await io(() => fh.read(buf, 0, buf.length, size === undefined ? null : offset));
    if (bytesRead > 0) return buf.subarray(0, bytesRead);
    chunks.release(buf);
    return null;
  };
}

async function putFile(a: PutArgs, touch: () => void): Promise<SFTPAttributes> {
  const s = session(a.sftp);
  const fh = await local('read', a.local, () => fsOpen(a.local, 'r'));
  try {
    const st = await local('read', a.local, () => fh.stat());
    // The size it has now is for progress only: the file is read to its end (localSource).
    const size = st.isFile() ? st.size : undefined;
    const progress = a.progressKey === null ? null : new ProgressReporter(a.progressKey);
    const chunks = new BufferPool(16 * 1024 * 1024, 64 * 1024);
    const read = localSource(fh, size, chunks, (fn) => local('read', a.local, fn));
    const confirmed = new SFTPAttributes();
    const n = await upload(
      s.link.core,
      (offset, length) => {
        touch();
        progress?.check();
        return read(offset, length);
      },
      a.remote,
      {
        maxInFlight: a.maxInFlight,
        onProgress: (done) => {
          touch();
          progress?.report(done, Math.max(size ?? 0, done));
        },
        // The server has the bytes: the buffer takes a later chunk of the file.
        onWritten: (data) => chunks.release(data),
        confirm: a.confirm ? (attrs) => Object.assign(confirmed, attrs) : undefined,
      },
    );
    await progress?.final(n, n);
    if (!a.confirm) confirmed.st_size = n;
    return confirmed;
  } finally {
    await fh.close();
  }
}

/** One file of a batch: `size` is what the caller listed (it weighs the file and counts toward progress). */
interface BatchFile {
  remote: string;
  local: string;
  size: number;
}

interface BatchArgs extends TransferArgs {
  direction: 'get' | 'put';
  files: BatchFile[];
  /** Files in flight at once (small files are bound by round trips, not bandwidth). */
  parallel: number;
  confirm: boolean;
}

/** Requests in flight for removeMany and makeDirs. */
const MANY_IN_FLIGHT = 64;

/**
 * Runs `job` for every item, MANY_IN_FLIGHT at a time; all are tried, then the first failure in
 * the order of `items` is raised.
 */
async function eachAtOnce<T>(items: readonly T[], job: (item: T, index: number) => Promise<unknown>): Promise<void> {
  const errors: Array<Error | null> = new Array(items.length).fill(null);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await job(items[i], i).catch((e: Error) => (errors[i] = e));
    }
  };
  await Promise.all(Array.from({ length: Math.min(MANY_IN_FLIGHT, items.length) }, lane));
  const first = errors.find((e) => e !== null);
  if (first) throw first;
}


/**
 * Many whole-file transfers (a recursive get or put), up to `parallel` slots at once: a file
 * takes a slot per BATCH_SLOT_BYTES, a large one every slot. Progress counts whole files. The
 * first failure stops new starts, waits for the transfers already running, and is raised.
 */
async function transferBatch(a: BatchArgs, touch: () => void): Promise<number> {
  const progress = a.progressKey === null ? null : new ProgressReporter(a.progressKey);
  const total = a.files.reduce((n, f) => n + f.size, 0);
  const slots = batchSlots(a.parallel, (await session(a.sftp).link.core.limits()).maxOpenHandles);
  let moved = 0;
  let used = 0;
  let failed: Error | null = null;
  let wake: (() => void) | null = null;
  const running = new Set<Promise<void>>();
  for (const f of a.files) {
    const weight = batchWeight(f.size, slots);
    while (!failed && used + weight > slots) await new Promise<void>((r) => (wake = r));
    if (failed) break;
    used += weight;
    const one = { sftp: a.sftp, progressKey: null, maxInFlight: a.maxInFlight, remote: f.remote, local: f.local, confirm: a.confirm, listedSize: f.size };
    const job = (a.direction === 'get' ? getFile(one, touch) : putFile(one, touch).then((st) => Number(st.st_size ?? f.size))).then(
      (n) => {
        moved += n;
        progress?.report(moved, Math.max(total, moved));
      },
      (e: Error) => {
        failed ??= e;
      },
    );
    const tracked: Promise<void> = job.finally(() => {
      used -= weight;
      running.delete(tracked);
      const w = wake;
      wake = null;
      w?.();
    });
    running.add(tracked);
  }
  await Promise.all([...running]);
  if (failed) throw failed;
  await progress?.final(moved, Math.max(total, moved));
  return moved;
}

interface CopyArgs extends TransferArgs {
  from: string;
  to: string;
  exclusive: boolean;
  throughClient: boolean;
}

export const sftpService: Service = {
  name: 'sftp',
  methods: {
    /** Opens a session channel on transport `id`, starts the sftp subsystem and the protocol. */
    async open(a: { id: number; window: number; maxPacket: number }) {
      const c = connectionOf(a.id);
      const channel = await c.conn.open('session', undefined, a.window, a.maxPacket);
      const id = nextId++;
      // A session whose channel went (its connection closed without SFTPClient.close(), as
      // Paramiko scripts often do) is forgotten: the entry held the whole connection.
      const link = new SftpClientChannel(channel, () => {
        sessions.delete(id);
        c.log(`[chan ${channel.localId}] sftp session closed${channel.pacingNote}`);
      });
      // The INIT goes right behind the subsystem request, not after its reply, as OpenSSH's sftp
      // sends it (ssh writes its stdin to the channel once it is open): a round trip less.
      const accepted = channel.request('subsystem', true, (m) => m.addString('sftp'));
      const started = link.core.start();
      try {
        if (!(await accepted)) throw new SSHException('the server refused the sftp subsystem');
        await started;
      } catch (e) {
        // Ended by close() below when no VERSION came: nothing left unhandled.
        started.catch(() => undefined);
        link.close();
        throw e;
      }
      if (link.closedError) throw link.closedError;
      sessions.set(id, { link, writes: new Map() });
      return { sftp: id, version: link.core.version, extensions: [...link.core.extensions.keys()] };
    },

    async op(a: { sftp: number; op: string; args: Record<string, unknown> }) {
      const run = OPS[a.op];
      if (!run) throw new SSHException(`unknown SFTP operation ${a.op}`);
      const s = session(a.sftp);
      if (a.op === 'fstat' || a.op === 'fsync' || a.op === 'fsetstat' || a.op === 'checkFile') await settleWrites(s, a.args.handle as Uint8Array);
      // The server copies what its files hold: this client's pipelined writes must be there.
      if (a.op === 'copyData') await Promise.all([settleWrites(s, a.args.from as Uint8Array), settleWrites(s, a.args.to as Uint8Array)]);
      return run(s, a.args);
    },

    /**
     * Reads up to `length` bytes at `offset`, many requests in flight for large reads; `eof`:
     * a READ answered EOF, or (`toEnd`) ended short where the file's size says it ends: the file
     * ended where the data does when it was read.
     */
    async read(a: { sftp: number; handle: Uint8Array; offset: number; length: number; toEnd?: boolean }) {
      const s = session(a.sftp);
      await settleWrites(s, a.handle);
      return transferable(await readRange(s.link.core, handleOf(a.handle), a.offset, a.length, { toEnd: a.toEnd }));
    },

    /**
     * Writes `data` at `offset`. Pipelined: returns once sent, and an error surfaces at the next
     * call on the handle (or close); otherwise waits for the server's acknowledgements.
     */
    async write(a: { sftp: number; handle: Uint8Array; offset: number; data: Uint8Array; pipelined: boolean }) {
      const s = session(a.sftp);
      const core = s.link.core;
      const limits = await core.limits();
      const h = handleOf(a.handle);
      const data = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
      const parts: Array<Promise<void>> = [];
      for (let off = 0; off < data.length; off += limits.maxWriteLength) {
        parts.push(core.write(h, a.offset + off, data.subarray(off, Math.min(data.length, off + limits.maxWriteLength))));
      }
      if (!a.pipelined) {
        await settleWrites(s, a.handle);
        await Promise.all(parts);
        return data.length;
      }
      let w = s.writes.get(key(a.handle));
      if (!w) s.writes.set(key(a.handle), (w = { pending: new Set(), error: null }));
      const entry = w;
      for (const p of parts) {
        entry.pending.add(p);
        p.then(
          () => entry.pending.delete(p),
          (e: Error) => {
            entry.pending.delete(p);
            entry.error ??= e;
          },
        );
      }
      // Keep the memory held by unacknowledged writes bounded: wait while too many are out.
      while (entry.pending.size > 64) await Promise.race(entry.pending);
      if (entry.error) await settleWrites(s, a.handle);
      return data.length;
    },

    /** Closes a handle after its pipelined writes; their first error (or the close's) is raised. */
    async close(a: { sftp: number; handle: Uint8Array }) {
      const s = session(a.sftp);
      let first: Error | null = null;
      try {
        await settleWrites(s, a.handle);
      } catch (e) {
        first = e as Error;
      }
      s.writes.delete(key(a.handle));
      await s.link.core.close(handleOf(a.handle)).catch((e: Error) => (first ??= e));
      if (first) throw first;
      return true;
    },

    /** Whole-file download into a local file, entirely here (Paramiko's get, with prefetch). */
    get(a: GetArgs) {
      return withIdleTimeout(a.idleTimeout, (touch) => getFile(a, touch));
    },

    /** Whole-file upload from a local file, entirely here; `confirm` checks the remote size. */
    put(a: PutArgs) {
      return withIdleTimeout(a.idleTimeout, (touch) => putFile(a, touch));
    },

    /**
     * REMOVEs or RMDIRs of many paths (SFTPClient.rmtree), MANY_IN_FLIGHT at a time; all are
     * tried, and the first failure, in the order given, is raised.
     */
    async removeMany(a: { sftp: number; op: 'remove' | 'rmdir'; paths: string[] }) {
      const core = session(a.sftp).link.core;
      await eachAtOnce(a.paths, (path) => (a.op === 'remove' ? core.remove(path) : core.rmdir(path)));
      return a.paths.length;
    },

    /**
     * Listings of many directories (a level of a recursive get), MANY_IN_FLIGHT at a time, in
     * the order given; all are tried, and the first failure, in that order, is raised.
     */
    async listdirMany(a: { sftp: number; paths: string[] }) {
      const core = session(a.sftp).link.core;
      const out: unknown[][] = new Array(a.paths.length);
      await eachAtOnce(a.paths, async (path, i) => (out[i] = await core.listdir(path)));
      return out;
    },

    /**
     * The directories of a recursive put, a level at a time (parents first), each level's at
     * once: an existing directory is left as it is (merged into), anything else is MKDIRed.
     */
    async makeDirs(a: { sftp: number; levels: Array<Array<{ path: string; mode: number }>> }) {
      const core = session(a.sftp).link.core;
      for (const level of a.levels) {
        await eachAtOnce(level, async ({ path, mode }) => {
          const there = await core.lstat(path).catch(() => null);
          if (!there?.isDirectory()) await core.mkdir(path, attrs({ st_mode: mode }));
        });
      }
      return true;
    },

    /** Several whole-file gets or puts at once (SFTPClient's recursive get/put). */
    batch(a: BatchArgs) {
      return withIdleTimeout(a.idleTimeout, (touch) => transferBatch(a, touch));
    },

    /** A remote file copied to a remote path: by the server (copy-data) or through here. */
    copy(a: CopyArgs) {
      return withIdleTimeout(a.idleTimeout, async (touch) => {
        const progress = a.progressKey === null ? null : new ProgressReporter(a.progressKey);
        const r = await copyRemote(session(a.sftp).link.core, a.from, a.to, {
          exclusive: a.exclusive,
          throughClient: a.throughClient,
          maxInFlight: a.maxInFlight,
          onProgress: (done, total) => {
            touch();
            progress?.check();
            progress?.report(done, total);
          },
        });
        await progress?.final(r.bytes, r.bytes);
        return r;
      });
    },

    /** Several ranges of an open file, all at once (SFTPFile.readv). */
    async readv(a: { sftp: number; handle: Uint8Array; ranges: Array<[number, number]> }) {
      const s = session(a.sftp);
      await settleWrites(s, a.handle);
      const h = handleOf(a.handle);
      return (await Promise.all(a.ranges.map(([offset, length]) => readRange(s.link.core, h, offset, length)))).map((r) => r.data);
    },

    closeSession(a: { sftp: number }) {
      const s = sessions.get(a.sftp);
      if (!s) return true;
      sessions.delete(a.sftp);
      s.link.close();
      return true;
    },
  },
};

