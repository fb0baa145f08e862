import { writeSync } from 'node:fs';
import { debuglog, format } from 'node:util';

const enabled = debuglog('paramiko-ts').enabled;

/**
 * `NODE_DEBUG=paramiko-ts` logging in util.debuglog's format, written straight to stderr. A
 * worker's `process.stderr` is a stream the main thread forwards, and the main thread sits in
 * Atomics.wait during every blocking call: through it, the worker's lines came late, after the
 * main thread's, or not at all when the process exited.
 */
export function debug(fmt: string, ...args: unknown[]): void {
  if (!enabled) return;
  try {
    writeSync(2, `PARAMIKO-TS ${process.pid}: ${format(fmt, ...args)}\n`);
  } catch {
    // stderr closed: nothing to log to
  }
}
