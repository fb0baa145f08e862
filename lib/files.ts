/**
 * Local files read for the user (keys, certificates, known_hosts), with errors as `IOError`s,
 * and the writes of downloads.
 */
import { readFileSync } from 'node:fs';
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
 * Writes all of `chunks`, one after the other, at `position`: one writev while it takes
 * everything, as it does on a local file; a short one (a full disk, a signal) goes on from
 * where it stopped.
 */
export async function writeAllAt(fh: Pick<FileHandle, 'writev'>, chunks: Buffer[], position: number): Promise<void> {
  let total = 0;
  for (const c of chunks) total += c.length;
  let done = 0;
  let rest = chunks;
  while (done < total) {
    const { bytesWritten } = await fh.writev(rest, position + done);
    if (bytesWritten <= 0) throw new IOError(`short write: ${done} of ${total} bytes at ${position}`);
    done += bytesWritten;
    if (done < total) rest = unwritten(rest, bytesWritten);
  }
}

/** What is left of `chunks` once their first `n` bytes are written. */
export function unwritten(chunks: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (n >= chunks[i].length) n -= chunks[i++].length;
  return [chunks[i].subarray(n), ...chunks.slice(i + 1)];
}
