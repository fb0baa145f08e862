/** Small helpers of the bridge specs. */

/** The error `fn` throws; fails the test if it returns. */
export function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, but the call returned');
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Blocks this thread until `done()` or `seconds` pass, in short select() waits: worker callbacks
 * (handlers of channels the server opens) run meanwhile. Returns done().
 */
export function blockUntil(done: () => boolean, seconds: number): boolean {
  // Imported here, not at the top: the other helpers serve specs that load no library code.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { select } = require('../../lib') as typeof import('../../lib');
  const deadline = Date.now() + seconds * 1000;
  while (!done() && Date.now() < deadline) select([], [], [], 0.05);
  return done();
}
