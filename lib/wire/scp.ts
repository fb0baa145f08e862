/**
 * The control lines and replies of the SCP (rcp) protocol, shared by SCPClient (lib/api/scp.ts)
 * and the embedded server's SCP (lib/worker/server/scp.ts):
 *
 *   C<mode> <size> <name>\n   a file follows: `size` bytes, then a \0
 *   D<mode> 0 <name>\n         enter a directory; E\n leaves it
 *   T<mtime> 0 <atime> 0\n     times for the next C or D
 *
 * Each line and each file is answered with one byte: \0 (OK), \1 and a message line (that file
 * failed), \2 and a message line (the transfer ends).
 */
export const SCP_OK = 0;
export const SCP_WARNING = 1;
export const SCP_FATAL = 2;
/** The OK byte, ready to send. */
export const SCP_ACK = Buffer.from([SCP_OK]);
/** Longest control line accepted from the other side. */
export const SCP_MAX_LINE = 64 * 1024;

/** An error reply: \x01 (warning: the transfer goes on) or \x02 (fatal), then "scp: message\n". */
export function scpErrorReply(kind: typeof SCP_WARNING | typeof SCP_FATAL, message: string): Buffer {
  return Buffer.concat([Buffer.from([kind]), Buffer.from(`scp: ${message}\n`, 'utf8')]);
}

/** `C...` or `D...`: the entry line for a file or a directory. */
export function scpEntryLine(type: 'C' | 'D', mode: number, size: number, name: string): string {
  return `${type}${(mode & 0o7777).toString(8).padStart(4, '0')} ${size} ${name}\n`;
}

/** `T...`: the times line, from milliseconds. */
export function scpTimesLine(mtimeMs: number, atimeMs: number): string {
  return `T${Math.floor(mtimeMs / 1000)} 0 ${Math.floor(atimeMs / 1000)} 0\n`;
}

/** A C or D line (without its \n); null when the line is not one. */
export function parseScpEntry(line: string): { type: 'C' | 'D'; mode: number; size: number | null; name: string } | null {
  const m = /^([CD])([0-7]{4}) (\d+) (.+)$/s.exec(line);
  if (!m) return null;
  // `size` null: beyond what a file can be here (2^53 - 1), OpenSSH's "size out of range".
  const size = Number(m[3]);
  return { type: m[1] as 'C' | 'D', mode: parseInt(m[2], 8), size: Number.isSafeInteger(size) ? size : null, name: m[4] };
}

/** A T line (without its \n) as seconds; null when the line is not one. */
export function parseScpTimes(line: string): { mtime: number; atime: number } | null {
  const m = /^T(\d+) \d+ (\d+) \d+$/.exec(line);
  return m ? { mtime: Number(m[1]), atime: Number(m[2]) } : null;
}

/** A shell glob (`*`, `?`) over one path component as a RegExp. */
export function scpGlob(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`, 's');
}
