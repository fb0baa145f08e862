/** Reading and atomically replacing a known_hosts file, with errors as `IOError`s. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ioErrorFrom as ioError } from '../files';

/** known_hosts holds no secret, but OpenSSH and Paramiko users expect it private to its owner. */
const FILE_MODE = 0o600;

/** The lines of a text file, without their line endings (CRLF is accepted). */
export function readLines(filename: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(filename, 'utf8');
  } catch (e) {
    throw ioError(e, 'cannot read', filename);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/**
 * Writes `data` to `filename` with mode 0600 so that the file is either the old one or the new
 * one whole, never a truncated mix: the data goes to `<name>.tmp-<random>` in the same
 * directory (rename is atomic only within a file system), is fsync'd, then renamed over the
 * target. On failure the temporary file is removed and the old file is untouched. A symlink is
 * followed, so a known_hosts kept elsewhere (dotfiles) stays a link.
 */
export function writeFileAtomic(filename: string, data: string): void {
  let target = filename;
  try {
    target = fs.realpathSync(filename);
  } catch {
    // Does not exist yet (or a dangling link): create it where it was asked for.
  }
  const tmp = path.join(path.dirname(target), `${path.basename(target)}.tmp-${randomBytes(8).toString('hex')}`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx', FILE_MODE);
    fs.fchmodSync(fd, FILE_MODE); // the umask may have taken bits away; set exactly 0600
    const buf = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the first error is the one to report
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw ioError(e, 'cannot write', filename);
  }
}
