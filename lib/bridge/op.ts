/**
 * One request path for a blocking method and its promise twin (DESIGN.md section 1).
 *
 * A method that talks to the worker is written once, as a generator of the steps it waits on:
 * a call to a worker service, or a condition on shared memory (data in a ring, a status word).
 * `runSync` performs each step by blocking the thread (Bridge.call, Bridge.waitUntil);
 * `runAsync` awaits the same steps (Bridge.callAsync, Bridge.waitUntilAsync) and leaves the
 * event loop free meanwhile. The body cannot tell which driver runs it, so `recv` and
 * `recvAsync` share their code, their errors and their timeouts:
 *
 *   private *recvOp(n: number): Op<Buffer> { ...; yield* until(() => ring.available() > 0, t); ... }
 *   recv(n: number): Buffer { return runSync(this.recvOp(n)); }
 *   recvAsync(n: number): Promise<Buffer> { return runAsync(this.recvOp(n)); }
 *
 * A composite method runs its parts with `yield*` (connect runs startClient's and the auth
 * methods' ops), so the twin of a composite is as complete as the blocking method.
 */
import type { Transferable } from 'node:worker_threads';
import { getBridge } from './client';

export type Step =
  | {
      readonly kind: 'call';
      readonly service: string;
      readonly method: string;
      readonly args: unknown;
      readonly timeout: number | null;
      readonly transfer?: readonly Transferable[];
    }
  | { readonly kind: 'wait'; readonly condition: () => boolean; readonly timeout: number | null };

/** The body of a blocking method and of its promise twin: yields steps, returns the result. */
export type Op<T> = Generator<Step, T, unknown>;

/** Calls `service.method(args)` in the worker (Bridge.call's meaning of `timeout`). */
export function* request<T = unknown>(
  service: string,
  method: string,
  args: unknown,
  timeout: number | null = null,
  transfer?: readonly Transferable[],
): Op<T> {
  return (yield { kind: 'call', service, method, args, timeout, transfer }) as T;
}

/** Waits until `condition()` holds (true) or `timeout` seconds pass (false; null: forever). */
export function* until(condition: () => boolean, timeout: number | null): Op<boolean> {
  if (condition()) return true;
  return (yield { kind: 'wait', condition, timeout }) as boolean;
}

/** Performs a step by blocking this thread. */
function performSync(step: Step): unknown {
  const bridge = getBridge();
  return step.kind === 'call'
    ? bridge.call(step.service, step.method, step.args, step.timeout, step.transfer)
    : bridge.waitUntil(step.condition, step.timeout);
}

/** Performs a step without blocking. */
function performAsync(step: Step): Promise<unknown> {
  const bridge = getBridge();
  return step.kind === 'call'
    ? bridge.callAsync(step.service, step.method, step.args, step.timeout, step.transfer)
    : bridge.waitUntilAsync(step.condition, step.timeout);
}

/*
 * The two drivers below are the same loop, one blocking and one awaiting: each step's outcome
 * goes back into the op (a failure as a throw at its yield), which answers with its next step
 * or its result. They stay two plain loops on purpose: a promise chain (`.then` returning the
 * next step's promise) would hold every step of a long op until its end.
 */

/** Runs an op on this thread, blocking at each step. */
export function runSync<T>(op: Op<T>): T {
  let next = op.next();
  while (!next.done) {
    let result: unknown;
    try {
      result = performSync(next.value);
    } catch (err) {
      next = op.throw(err);
      continue;
    }
    next = op.next(result);
  }
  return next.value;
}

/** Runs an op without blocking: each step is awaited, the event loop runs meanwhile. */
export async function runAsync<T>(op: Op<T>): Promise<T> {
  let next = op.next();
  while (!next.done) {
    let result: unknown;
    try {
      result = await performAsync(next.value);
    } catch (err) {
      next = op.throw(err);
      continue;
    }
    next = op.next(result);
  }
  return next.value;
}
