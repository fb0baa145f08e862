/**
 * SFTP errors. A failed request surfaces as Paramiko does (IOError with an errno, EOFError at
 * end of file), shaped like a Node fs error: `ENOENT: no such file, open '/x'` with `code`,
 * `errno`, `syscall`, `path` (and `dest` for two-path calls), plus the SFTP `status` and the
 * server's own text. Protocol violations are SFTPError, as in Paramiko.
 */
import { registerErrorClass } from '../bridge/errors-wire';
import { EOFError, IOError, SSHException } from '../errors';
import { errnoOf, errnoOfStatus, FX, FX_MESSAGES, messageFromErrnoCode } from './constants';
import { printable } from '../printable';

/** The peer broke the protocol (Paramiko's SFTPError); the session cannot go on. */
export class SFTPError extends SSHException {}
registerErrorClass(SFTPError);

/** What a request was about, for its error message. */
export interface RequestContext {
  syscall: string;
  path?: string;
  dest?: string;
}

/** Node's style: the first letter of the server's text lower-cased unless it looks like an acronym. */
function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s[0].toLowerCase() + s.slice(1) : s;
}

function where(ctx: RequestContext): string {
  if (ctx.path === undefined) return ctx.syscall;
  return ctx.dest === undefined ? `${ctx.syscall} '${ctx.path}'` : `${ctx.syscall} '${ctx.path}' -> '${ctx.dest}'`;
}

/** The error for a STATUS reply other than OK. */
export function statusError(status: number, serverMessage: string, ctx: RequestContext): Error {
  // The server's words, without control characters: the message may reach a terminal.
  const text = printable(serverMessage, { backslashes: false }) || FX_MESSAGES[status] || `status ${status}`;
  if (status === FX.EOF) {
    const e = new EOFError(`${lowerFirst(text)}, ${where(ctx)}`);
    return Object.assign(e, { status, syscall: ctx.syscall, ...(ctx.path !== undefined && { path: ctx.path }) });
  }
  const mapped = errnoOfStatus(status, serverMessage);
  const message = mapped ? `${mapped.code}: ${lowerFirst(text)}, ${where(ctx)}` : `${text}, ${where(ctx)}`;
  const e = new IOError(message, { code: mapped?.code, errno: mapped?.errno, filename: ctx.path });
  return Object.assign(e, {
    status,
    serverMessage,
    syscall: ctx.syscall,
    ...(ctx.path !== undefined && { path: ctx.path }),
    ...(ctx.dest !== undefined && { dest: ctx.dest }),
  });
}

/**
 * Gives a bare FAILURE (OpenSSH's "Failure": SFTP v3 has no status for EEXIST, ENOTEMPTY,
 * EISDIR) the errno a look at the filesystem found, keeping the server's own text in the
 * message: `EEXIST: file exists (the server said "Failure"), mkdir '/d'`.
 */
export function diagnosedError(err: IOError & { serverMessage?: string; syscall?: string; path?: string; dest?: string }, code: 'EEXIST' | 'ENOTEMPTY' | 'EISDIR' | 'ENOTDIR'): IOError {
  const ctx = { syscall: err.syscall ?? 'request', path: err.path, dest: err.dest };
  err.code = code;
  err.errno = errnoOf(code);
  err.message = `${code}: ${lowerFirst(messageFromErrnoCode(code, FX.FAILURE))} (the server said ${JSON.stringify(err.serverMessage ?? '')}), ${where(ctx)}`;
  return err;
}

/** The SFTP status a server should answer with for an error thrown while serving. */
export interface StatusCarrier {
  status?: number;
}
