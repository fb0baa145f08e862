/** Local files read for the user (keys, certificates, known_hosts), with errors as `IOError`s. */
import { readFileSync } from 'node:fs';
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
