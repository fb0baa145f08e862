/**
 * Local files read for the user (keys, certificates, known_hosts), with errors as `IOError`s,
 * and the writes of downloads.
 */
import { readFileSync, statfs, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { IOError } from './errors';

/**
 * An fs error as Python's OSError would carry it: `code`, `errno` (positive, as Python's and
 * the SFTP errors': Node's is negated), the file, and what was tried.
 */
export function ioErrorFrom(e: unknown, action: string, filename: string): IOError {
  const err = e as NodeJS.ErrnoException;
  return new IOError(`${action} ${filename}: ${err?.message ?? String(e)}`, {
    code: err?.code,
    errno: typeof err?.errno === 'number' ? Math.abs(err.errno) : undefined,
    filename,
    cause: e,
  });
}

/** The file's bytes, or an IOError (ENOENT, EACCES, EISDIR...) naming it. */
export function readLocalFile(filename: string): Buffer;
export function readLocalFile(filename: string, encoding: 'utf8'): string;
export function readLocalFile(filename: string, encoding?: 'utf8'): Buffer | string {
  try {
    return encoding ? readFileSync(filename, encoding) : readFileSync(filename);
  } catch (e) {
    throw ioErrorFrom(e, 'cannot read', filename);
  }
}

/**
 * The most one system call writes of a file: writes of a get and of the SFTP server that go
 * through libuv's pool (FileWriter) are gathered up to this, and writeAllAt and writeAllSync
 * split anything larger. On Linux 6.16+ ext4 (and XFS earlier) cache
 * a write in folios as large as the write allows, 2 MiB ones for a 2 MiB write at an aligned
 * offset; on the 2-vCPU VMs we measure on, writing 1 GiB in 2 MiB calls cost the kernel twice
 * the time of 1 MiB calls (0.39-0.41 s against 0.21-0.22, right after freeing the memory), and
 * a get's runs of up to 16 MiB, or the server's of up to 8 MiB, 1-2 s of it per GiB.
 */
export const FILE_WRITE_CALL_BYTES = 1024 * 1024;

/**
 * Writes all of `chunks`, one after the other, at `position` (null: at the file's current offset,
 * for what cannot seek: a pipe, a FIFO, a terminal): one writev per FILE_WRITE_CALL_BYTES (each
 * takes everything, on a local file); a short one (a full disk, a signal) goes on from where it
 * stopped.
 */
export async function writeAllAt(fh: Pick<FileHandle, 'writev'>, chunks: Buffer[], position: number | null): Promise<void> {
  let total = 0;
  for (const c of chunks) total += c.length;
  let done = 0;
  let rest = chunks;
  while (done < total) {
    const { bytesWritten } = await fh.writev(leading(rest, FILE_WRITE_CALL_BYTES), position === null ? undefined : position + done);
    if (bytesWritten <= 0) throw new IOError(`short write: ${done} of ${total} bytes${position === null ? '' : ` at ${position}`}`);
    done += bytesWritten;
    if (done < total) rest = unwritten(rest, bytesWritten);
  }
}

/**
 * writeAllAt for a file descriptor, synchronously: all of `data`, at `position` (null: at the
 * file's current offset, which each call advances), in calls of at most FILE_WRITE_CALL_BYTES; a
 * short write goes on from where it stopped.
 */
export function writeAllSync(fd: number, data: Uint8Array, position: number | null = null): void {
  for (let done = 0; done < data.length; ) {
    const n = writeSync(fd, data, done, Math.min(data.length - done, FILE_WRITE_CALL_BYTES), position === null ? null : position + done);
    if (n <= 0) throw new IOError(`short write: ${done} of ${data.length} bytes`);
    done += n;
  }
}

/**
 * Writes this slow (throttled by the kernel's dirty-page limits, or a slow or remote file system)
 * make a FileWriter hand the rest of its writes to libuv's pool: the thread that would wait is the
 * worker's, which every connection of the process shares. It takes INLINE_SLOW_WRITES of them,
 * as one can be the thread's own preemption on a busy machine (a get here fell back to the pool
 * once in five 1 GiB runs after a single 10 ms write), or one of INLINE_WRITE_STALL_MS.
 */
export const INLINE_WRITE_SLOW_MS = 10;
export const INLINE_SLOW_WRITES = 3;
export const INLINE_WRITE_STALL_MS = 100;

/**
 * Linux's statfs f_type of the file systems whose writes wait for nothing but this machine's
 * memory and disks: ext2/3/4, XFS, Btrfs, F2FS, tmpfs, ramfs, overlayfs, ZFS. A write to NFS, SMB,
 * FUSE, 9p or Ceph may wait on a server indefinitely (a hard-mounted NFS share whose server is
 * gone), so FileWriter never makes it on the worker's thread.
 */
const LOCAL_FILE_SYSTEMS = new Set([0xef53, 0x58465342, 0x9123683e, 0xf2f52010, 0x01021994, 0x858458f6, 0x794c7630, 0x2fc12fc1]);

/** Whether `path` lies on one of LOCAL_FILE_SYSTEMS (false elsewhere than Linux, or when statfs fails). */
export function onLocalFileSystem(path: string): Promise<boolean> {
  if (process.platform !== 'linux') return Promise.resolve(false);
  return new Promise((resolve) => statfs(path, (err, st) => resolve(!err && LOCAL_FILE_SYSTEMS.has(st.type))));
}

/**
 * The writes of a transfer to a local file: a get's, or the WRITEs an SFTP server takes. Writes to
 * a regular file are made on the calling thread, one call per chunk as it came (a READ's reply, a
 * WRITE's data): a hand-off to libuv's pool and back costs tens of microseconds of latency per
 * write on these VMs, as much as the write itself, and while it is out the data behind it waits.
 * 1 GiB over loopback: a get 700-930 -> 840-1000 MB/s, an upload to SSHServer 600 -> 860
 * (docs/performance.md, session 24). Once writes were slow (INLINE_WRITE_SLOW_MS) the rest go
 * through the pool with writeAllAt, off the thread, and so does every write to anything else (a
 * pipe, a device, a FIFO whose reader may never come): at its current offset with `inOrder` (a
 * download, which delivers in order; what cannot seek fails otherwise), else where told. So does
 * a regular file told not `inline` (one on a network file system: onLocalFileSystem).
 */
export class FileWriter {
  private inline: boolean;
  private slowWrites = 0;
  private readonly fd: number;
  private readonly now: () => number;

  constructor(
    private readonly fh: FileHandle,
    private readonly regularFile: boolean,
    private readonly options: { inOrder?: boolean; inline?: boolean; now?: () => number } = {},
  ) {
    this.inline = regularFile && options.inline !== false;
    this.fd = fh.fd;
    this.now = options.now ?? (() => performance.now());
  }

  /** The writer for `fh`, opened at `path`: inline when it is a regular file on a local file system. */
  static async forFile(fh: FileHandle, path: string, options: { inOrder?: boolean } = {}): Promise<FileWriter> {
    const [st, inline] = await Promise.all([fh.stat(), onLocalFileSystem(path)]);
    return new FileWriter(fh, st.isFile(), { ...options, inline });
  }

  /** Whether the next write is made on the calling thread. */
  get writesInline(): boolean {
    return this.inline;
  }

  /** Writes all of `chunks`, one after the other, at `position`: done on return, or once the promise resolves. */
  write(chunks: Buffer[], position: number): void | Promise<void> {
    if (!this.inline) return writeAllAt(this.fh, chunks, this.regularFile || !this.options.inOrder ? position : null);
    const t0 = this.now();
    for (const c of chunks) {
      writeAllSync(this.fd, c, position);
      position += c.length;
    }
    const took = this.now() - t0;
    if (took >= INLINE_WRITE_STALL_MS || (took >= INLINE_WRITE_SLOW_MS && ++this.slowWrites >= INLINE_SLOW_WRITES)) this.inline = false;
  }
}

/** The first `max` bytes of `chunks` (the chunks themselves when they hold no more). */
function leading(chunks: Buffer[], max: number): Buffer[] {
  let n = 0;
  let bytes = 0;
  while (n < chunks.length && bytes + chunks[n].length <= max) bytes += chunks[n++].length;
  if (n === chunks.length) return chunks;
  return n === 0 ? [chunks[0].subarray(0, max)] : chunks.slice(0, n);
}

/** What is left of `chunks` once their first `n` bytes (fewer than they hold) are written. */
export function unwritten(chunks: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (n >= chunks[i].length) n -= chunks[i++].length;
  return [chunks[i].subarray(n), ...chunks.slice(i + 1)];
}
