import { writeSync } from 'node:fs';
import { debuglog, format } from 'node:util';
import { printable } from './printable';

/** The NODE_DEBUG section paramiko-ts logs to unless a transport is given another (setLogChannel). */
export const DEFAULT_LOG_CHANNEL = 'paramiko-ts';

/**
 * A writer for NODE_DEBUG section `section` (util.debuglog's format: `SECTION pid: text`), or
 * null when NODE_DEBUG does not name it. Lines go straight to stderr: a worker's
 * `process.stderr` is a stream the main thread forwards, and the main thread sits in
 * Atomics.wait during every blocking call; through it, the worker's lines came late, after the
 * main thread's, or not at all when the process exited.
 */
export function logTo(section: string): ((text: string) => void) | null {
  if (!debuglog(section).enabled) return null;
  const prefix = `${section.toUpperCase()} ${process.pid}: `;
  return (text) => {
    try {
      writeSync(2, prefix + printable(text) + '\n');
    } catch {
      // stderr closed: nothing to log to
    }
  };
}

const defaultLog = logTo(DEFAULT_LOG_CHANNEL);

/** Logs to the default section (NODE_DEBUG=paramiko-ts), printf-style. */
export function debug(fmt: string, ...args: unknown[]): void {
  defaultLog?.(format(fmt, ...args));
}
