/**
 * Local files read for the user (keys, certificates, known_hosts), with errors as `IOError`s,
 * and the writes of downloads.
 */
import { readFileSync, writeSync } from 'node:fs';
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
 * The most one system call writes of a file: writes of a get and of the SFTP server are gathered
 * up to this, and writeAllAt splits anything larger. On Linux 6.16+ ext4 (and XFS earlier) cache
 * a write in folios as large as the write allows, 2 MiB ones for a 2 MiB write at an aligned
 * offset; on the 2-vCPU VMs we measure on, writing 1 GiB in 2 MiB calls cost the kernel twice
 * the time of 1 MiB calls (0.39-0.41 s against 0.21-0.22, right after freeing the memory), and
 * a get's runs of up to 16 MiB, or the server's of up to 8 MiB, 1-2 s of it per GiB.
 */
export const FILE_WRITE_CALL_BYTES = 1024 * 1024;

/**
 * Writes all of `chunks`, one after the other, at `position`: one writev per FILE_WRITE_CALL_BYTES
 * (each takes everything, on a local file); a short one (a full disk, a signal) goes on from
 * where it stopped.
 */
export async function writeAllAt(fh: Pick<FileHandle, 'writev'>, chunks: Buffer[], position: number): Promise<void> {
  let total = 0;
  for (const c of chunks) total += c.length;
  let done = 0;
  let rest = chunks;
  while (done < total) {
    const { bytesWritten } = await fh.writev(leading(rest, FILE_WRITE_CALL_BYTES), position + done);
    if (bytesWritten <= 0) throw new IOError(`short write: ${done} of ${total} bytes at ${position}`);
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
