/**
 * The main thread's half of the bridge: blocking calls into the transport worker, their
 * promise twins, and the callbacks the worker makes into user code.
 *
 * A blocking call posts a request on a MessagePort and sleeps on a word of shared memory that
 * the worker bumps and notifies after each message it posts; the main thread then takes the
 * messages from its port with receiveMessageOnPort (the technique of the `synckit` package).
 * Everything that arrives while it waits is dispatched: replies to other calls (nested or
 * async), callback requests (run here, on the spot), the worker's last words. When the main
 * thread is idle, the same messages arrive through the port's 'message' event.
 *
 * Liveness. A blocked main thread cannot receive the Worker's 'exit' or 'error' events, so
 * the worker reports its own death in shared memory (its 'uncaughtException' and 'exit'
 * handlers set a state word and notify), and it bumps a heartbeat word every 100 ms. The wait
 * loop wakes at least every POLL_MS to look at both: a dead worker wakes every waiter with
 * SSHException('transport worker died: ...') at once; a worker whose heartbeat stood still
 * for `wedgeTimeout` seconds of observation is terminated, with the same effect. After a
 * death, the next call starts a new worker (a new `generation`); the transports of the dead
 * one are gone, and calls naming them fail in the services.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort, type Transferable } from 'node:worker_threads';
import { SSHException, SocketTimeout } from '../errors';
import { captureStack, deserializeError, serializeError, stackFrames, toBuffer, trimFramesFrom, type WireError } from './errors-wire';
import {
  CONTROL_BYTES,
  HEARTBEAT,
  isThenable,
  MAIN_SIGNAL,
  MSG_CALLBACK,
  MSG_CALLBACK_REPLY,
  MSG_CANCEL,
  MSG_DEATH,
  MSG_REPLY,
  MSG_REQUEST,
  STATE,
  STATE_DEAD,
  WORKER_SIGNAL,
  type CallbackMessage,
  type ReplyMessage,
  type RequestMessage,
  type ToMain,
  type ToWorker,
  type WorkerInit,
} from './protocol';
import type { Doorbell } from './ring';
import { MAIN_SPIN_MICROS, WARM_WINDOW_MICROS, spinWhileEqual, waitAsync } from './spin';
import { isTransportWorker } from './worker-side';
import { compact } from './compact';

/** A main-thread handler of worker callbacks. It may return a promise, but see `onCallback`. */
export type CallbackHandler = (payload: any) => unknown;

export interface BridgeOptions {
  /** The worker script; defaults to dist/worker/main.js of this package. */
  workerPath?: string;
  /** Seconds without a heartbeat, watched continuously, before the worker counts as wedged
   * and is terminated; null never gives up on a silent worker. Default DEFAULT_WEDGE_TIMEOUT. */
  wedgeTimeout?: number | null;
  /** Seconds the bridge waits beyond a call's timeout (plus 10% of it) before it stops
   * waiting for the service's answer itself. Default DEFAULT_DEADLINE_MARGIN. */
  deadlineMargin?: number;
  /** Microseconds to spin for a reply before sleeping, when the worker is warm (see
   * WARM_WINDOW_MICROS); 0 always sleeps at once. Default MAIN_SPIN_MICROS. */
  spinMicros?: number;
}

/**
 * 15 s. The worker's event loop should never be busy for long; its longest legitimate
 * synchronous stretches (an 8192-bit DH or RSA operation, loading its modules on a loaded
 * machine) last well under a second, so this only catches a loop that is really stuck.
 */
export const DEFAULT_WEDGE_TIMEOUT = 15;
/**
 * 2 s. Services answer at their caller's deadline themselves (with SocketTimeout); the
 * bridge's deadline is a safety net for a service that never answers, and it must not fire
 * before a late but legitimate answer from a busy worker, which would then be lost.
 */
export const DEFAULT_DEADLINE_MARGIN = 2;
const DEADLINE_MARGIN_FRACTION = 0.1;
/** A blocked main thread wakes this often (ms) to check the worker's state and heartbeat. */
const POLL_MS = 200;
/**
 * Pollers (socket-like objects of this thread carrying a connection) run this often (ms) while
 * a blocking call waits, and every IDLE_PUMP_MS while the thread is idle: their data cannot
 * wake this thread, so it looks.
 */
const PUMP_MS = 1;
const IDLE_PUMP_MS = 5;
/** While promise calls are pending, the worker's liveness is checked this often (ms). */
const MONITOR_MS = 1000;
/** A heartbeat gap longer than this (ms) between two checks is not counted against the
 * worker: the main thread was not watching (busy in user code, or the process was stopped). */
const WATCH_GAP_MS = 3000;

const WORKER_LABEL = 'in the transport worker';
const MAX_TIMER_MS = 2 ** 31 - 1;

interface WorkerHandle {
  readonly generation: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly control: Int32Array;
  dead: boolean;
  reason: string;
  cause?: Error;
  terminated?: Promise<unknown>;
  lastBeat: number;
  lastBeatAt: number;
  lastCheckAt: number;
  /** When the main thread last received a message from this worker (performance.now()). */
  lastHeard: number;
}

interface AsyncSettle {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  stack: { stack?: string };
  timer: NodeJS.Timeout | null;
}

interface Pending {
  readonly id: number;
  readonly w: WorkerHandle;
  readonly label: string;
  done: boolean;
  died: boolean;
  ok: boolean;
  value?: unknown;
  error?: WireError;
  async?: AsyncSettle;
}

/** Where the compiled worker lives, from dist/ (users) or from lib/ loaded by ts-jest (tests). */
function defaultWorkerPath(): string {
  // Compiled, this file is dist/bridge/client.js, next to dist/worker/main.js. Under ts-jest
  // it is lib/bridge/client.ts, and the worker still runs the build: <repo>/dist/worker/.
  return path.extname(__filename) === '.ts'
    ? path.resolve(__dirname, '..', '..', 'dist', 'worker', 'main.js')
    : path.resolve(__dirname, '..', 'worker', 'main.js');
}

function validateTimeout(timeout: number | null): void {
  if (timeout === null) return;
  if (typeof timeout !== 'number' || !(timeout >= 0)) {
    throw new RangeError(`timeout must be null or a number of seconds >= 0, got ${String(timeout)}`);
  }
}

export class Bridge {
  private current: WorkerHandle | null = null;
  private generations = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, CallbackHandler>();
  private readonly deathListeners = new Set<(err: SSHException) => void>();
  private asyncCount = 0;
  private refCount = 0;
  /** How many wait loops are on the stack (nested calls from callback handlers). */
  private blockedDepth = 0;
  private readonly pollers = new Set<() => void>();
  private polling = false;
  private idlePoll: NodeJS.Timeout | null = null;
  private monitor: NodeJS.Timeout | null = null;
  private readonly workerPath: string;
  private readonly wedgeTimeoutMs: number | null;
  private readonly deadlineMargin: number;
  private readonly spinMicros: number;

  constructor(options: BridgeOptions = {}) {
    this.workerPath = options.workerPath ?? defaultWorkerPath();
    const wedge = options.wedgeTimeout === undefined ? DEFAULT_WEDGE_TIMEOUT : options.wedgeTimeout;
    this.wedgeTimeoutMs = wedge === null ? null : wedge * 1000;
    this.deadlineMargin = options.deadlineMargin ?? DEFAULT_DEADLINE_MARGIN;
    this.spinMicros = options.spinMicros ?? MAIN_SPIN_MICROS;
  }

  /** The generation of the newest worker started (1, 2... after restarts); 0 before the first. */
  get generation(): number {
    return this.generations;
  }

  /** A worker is running (started and not known to be dead). */
  get running(): boolean {
    return this.current !== null && !this.current.dead;
  }

  /** Starts the worker now instead of at the first call. */
  start(): void {
    this.ensureWorker();
  }

  /**
   * The word a blocked main thread sleeps on, as a ring doorbell (the worker's side gets the
   * same word from `mainDoorbell()`). Starts the worker; changes when a new worker starts.
   */
  get doorbell(): Doorbell {
    return { array: this.ensureWorker().control, index: MAIN_SIGNAL };
  }

  /**
   * Calls `service.method(args)` in the worker and blocks until it answers. `timeout` is in
   * seconds (null: forever; 0: the service should not wait), passed to the service, which is
   * expected to fail with SocketTimeout itself; the bridge stops waiting at timeout + 10% +
   * `deadlineMargin` and raises SocketTimeout. A service's error is rethrown as the same class
   * with the worker's stack appended. Worker callbacks are serviced while it waits, and their
   * handlers may make blocking calls themselves. A result that is a Uint8Array arrives as a
   * Buffer; nested Buffers arrive as Uint8Array (wrap them with `toBuffer`).
   */
  call<T = unknown>(
    service: string,
    method: string,
    args?: unknown,
    timeout: number | null = null,
    transfer?: readonly Transferable[],
  ): T {
    validateTimeout(timeout);
    const w = this.ensureWorker();
    const id = this.nextId++;
    const rec: Pending = { id, w, label: `${service}.${method}`, done: false, died: false, ok: false };
    const request: RequestMessage = { t: MSG_REQUEST, id, s: service, m: method, a: args, to: timeout, sync: true };
    this.post(w, request, transfer);
    this.pending.set(id, rec);
    try {
      if (!this.waitLoop(w, () => rec.done, this.hardDeadline(timeout))) {
        this.cancel(rec);
        throw new SocketTimeout(`${rec.label}: no answer from the transport worker within ${timeout} s`);
      }
    } finally {
      this.pending.delete(id);
    }
    if (rec.died) throw this.deathError(w);
    if (!rec.ok) throw deserializeError(rec.error!, WORKER_LABEL, stackFrames(captureStack(this.call).stack));
    return toBuffer(rec.value) as T;
  }

  /**
   * The promise twin of `call`: the same request, the same service method. The process is
   * kept alive while it is pending. Rejections carry the stack of the `callAsync` caller.
   */
  callAsync<T = unknown>(
    service: string,
    method: string,
    args?: unknown,
    timeout: number | null = null,
    transfer?: readonly Transferable[],
  ): Promise<T> {
    let w: WorkerHandle;
    try {
      validateTimeout(timeout);
      w = this.ensureWorker();
    } catch (err) {
      return Promise.reject(err);
    }
    const stack = captureStack(this.callAsync);
    const id = this.nextId++;
    const label = `${service}.${method}`;
    return new Promise<T>((resolve, reject) => {
      const request: RequestMessage = { t: MSG_REQUEST, id, s: service, m: method, a: args, to: timeout, sync: false };
      try {
        this.post(w, request, transfer);
      } catch (err) {
        reject(err);
        return;
      }
      const settle: AsyncSettle = { resolve: resolve as (v: unknown) => void, reject, stack, timer: null };
      const rec: Pending = { id, w, label, done: false, died: false, ok: false, async: settle };
      this.pending.set(id, rec);
      this.asyncCount++;
      this.updateRefs();
      const deadline = this.hardDeadline(timeout);
      // Node fires a timer longer than 2^31-1 ms (24.8 days) at once: such a deadline is never.
      if (deadline - performance.now() <= MAX_TIMER_MS) {
        settle.timer = setTimeout(() => {
          if (rec.done) return;
          rec.done = true;
          this.finishAsync(rec);
          this.cancel(rec);
          reject(new SocketTimeout(`${label}: no answer from the transport worker within ${timeout} s`));
        }, deadline - performance.now());
        settle.timer.unref();
      }
    });
  }

  /**
   * Blocks until `condition()` is true (returns true) or `timeout` seconds pass (false; null
   * waits forever), servicing worker callbacks meanwhile. The condition is tested whenever
   * anything wakes the main thread: a message from the worker or a ring doorbell (rings
   * written by the worker with `mainDoorbell()`). Throws SSHException if the worker dies.
   */
  waitUntil(condition: () => boolean, timeout: number | null = null): boolean {
    validateTimeout(timeout);
    const w = this.ensureWorker();
    const deadline = timeout === null ? Infinity : performance.now() + timeout * 1000;
    return this.waitLoop(w, condition, deadline);
  }

  /**
   * The promise twin of `waitUntil`: the same condition and wake-ups, awaited with
   * Atomics.waitAsync on the word a blocked main thread sleeps on, so the event loop runs
   * meanwhile (worker callbacks arrive through the port's events). The process is kept alive
   * while it is pending. Rejects with SSHException if the worker dies.
   */
  async waitUntilAsync(condition: () => boolean, timeout: number | null = null): Promise<boolean> {
    validateTimeout(timeout);
    const w = this.ensureWorker();
    const deadline = timeout === null ? Infinity : performance.now() + timeout * 1000;
    this.asyncCount++;
    this.updateRefs();
    try {
      for (;;) {
        const seen = this.look(w, condition);
        if (seen === null) return true;
        const now = performance.now();
        if (now >= deadline) return false;
        const r = waitAsync(w.control, MAIN_SIGNAL, seen, Math.min(deadline - now, POLL_MS));
        if (r.async) await r.value;
      }
    } finally {
      this.asyncCount--;
      this.updateRefs();
    }
  }

  /**
   * Handles the worker's `callback(kind, payload)` requests; replaces any previous handler of
   * that kind and returns a function that removes it. The handler's return value (or thrown
   * error, as its class) goes back to the worker. A handler may return a promise only while
   * the main thread is idle (the answer is sent when it settles); while the main thread is
   * blocked in a call, a promise could not settle before that call returns, so the worker
   * gets an SSHException saying so instead of a deadlock: handlers that run during blocking
   * calls (host-key policies, ServerInterface methods) must be synchronous.
   */
  onCallback(kind: string, handler: CallbackHandler): () => void {
    this.handlers.set(kind, handler);
    return () => {
      if (this.handlers.get(kind) === handler) this.handlers.delete(kind);
    };
  }

  /**
   * Runs `poll` on this thread whenever a blocking call's wait loop looks (at least every
   * PUMP_MS) and every IDLE_PUMP_MS while the thread is idle, until the returned function is
   * called: for work only this thread can do that nothing can wake it for (the send and recv of
   * a socket-like object carrying a connection). Pollers never run inside another poller (one
   * may make blocking calls) and must not throw.
   */
  addPoller(poll: () => void): () => void {
    this.pollers.add(poll);
    if (!this.idlePoll) {
      this.idlePoll = setInterval(() => this.runPollers(), IDLE_PUMP_MS);
      this.idlePoll.unref();
    }
    return () => {
      this.pollers.delete(poll);
      if (this.pollers.size === 0 && this.idlePoll) {
        clearInterval(this.idlePoll);
        this.idlePoll = null;
      }
    };
  }

  private runPollers(): boolean {
    if (this.polling || this.pollers.size === 0) return false;
    this.polling = true;
    try {
      for (const poll of [...this.pollers]) poll();
    } finally {
      this.polling = false;
    }
    return true;
  }

  /**
   * Calls `listener` with the error every waiter gets when a worker dies (crash, wedge,
   * close()), after the pending calls were failed. Returns a function that removes it.
   */
  onDeath(listener: (err: SSHException) => void): () => void {
    this.deathListeners.add(listener);
    return () => {
      this.deathListeners.delete(listener);
    };
  }

  /**
   * Keeps the process alive for callbacks arriving while the main thread is idle (a running
   * server), until the matching `unref()`. Counted; pending `callAsync`s count by themselves.
   */
  ref(): void {
    this.refCount++;
    this.updateRefs();
  }

  unref(): void {
    if (this.refCount > 0) this.refCount--;
    this.updateRefs();
  }

  /**
   * Terminates the worker: pending calls fail with SSHException, and a later call starts a
   * new worker. Resolves when the thread has stopped.
   */
  async close(): Promise<void> {
    const w = this.current;
    if (!w) return;
    this.onWorkerDeath(w, 'the bridge was closed');
    await w.terminated;
  }

  // ---- internals ----

  private hardDeadline(timeout: number | null): number {
    if (timeout === null) return Infinity;
    return performance.now() + (timeout * (1 + DEADLINE_MARGIN_FRACTION) + this.deadlineMargin) * 1000;
  }

  private ensureWorker(): WorkerHandle {
    if (this.current) return this.current;
    if (isTransportWorker()) throw new Error('the bridge cannot be used inside the transport worker (it would wait on itself)');
    const file = this.workerPath;
    if (!existsSync(file)) throw new SSHException(`the transport worker script is missing: ${file} (is the package built?)`);
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const { port1, port2 } = new MessageChannel();
    const generation = ++this.generations;
    const init: WorkerInit = { port: port2, control, generation };
    const worker = new Worker(file, { workerData: init, transferList: [port2], name: `paramiko-ts transport ${generation}` });
    // Like Paramiko's daemon threads: the worker never keeps the process alive by itself.
    worker.unref();
    const now = performance.now();
    const w: WorkerHandle = {
      generation,
      worker,
      port: port1,
      control: new Int32Array(control),
      dead: false,
      reason: '',
      lastBeat: 0,
      lastBeatAt: now,
      lastCheckAt: now,
      lastHeard: 0,
    };
    port1.on('message', (msg: ToMain) => {
      w.lastHeard = performance.now();
      this.dispatch(w, msg);
    });
    // These events arrive only while the main thread is idle; a blocked one learns from the
    // state word. Drain first: the worker's last words carry a better reason than its exit code.
    worker.on('error', (err) => {
      this.drain(w);
      this.onWorkerDeath(w, `uncaught ${err.name}: ${err.message}`, err);
    });
    worker.on('exit', (code) => {
      this.drain(w);
      this.onWorkerDeath(w, `exited with code ${code}`);
    });
    this.current = w;
    this.updateRefs();
    return w;
  }

  private post(w: WorkerHandle, message: ToWorker, transfer?: readonly Transferable[]): void {
    // A request's small views of large buffers (a write of a slice of the caller's buffer) go
    // as their bytes, unless its buffers are to move.
    if (message.t === MSG_REQUEST && !transfer?.length) {
      const a = compact(message.a);
      if (a !== message.a) message = { ...message, a };
    }
    w.port.postMessage(message, transfer);
    Atomics.add(w.control, WORKER_SIGNAL, 1);
  }

  /**
   * The wait loop of every blocking call, re-entrant: a callback handler run from here may
   * make blocking calls, which run their own loop on the same port and leave the replies
   * they find for others in the pending table. Returns true once `done()`, false at the
   * deadline; throws if the worker dies.
   */
  private waitLoop(w: WorkerHandle, done: () => boolean, deadline: number): boolean {
    this.blockedDepth++;
    try {
      return this.waitLoopInner(w, done, deadline);
    } finally {
      this.blockedDepth--;
    }
  }

  private waitLoopInner(w: WorkerHandle, done: () => boolean, deadline: number): boolean {
    const control = w.control;
    for (;;) {
      const seen = this.look(w, done);
      if (seen === null) return true;
      const pumping = this.runPollers();
      if (pumping && Atomics.load(control, MAIN_SIGNAL) !== seen) continue;
      const now = performance.now();
      if (now >= deadline) return false;
      // Spin only if the worker was heard from a moment ago (see WARM_WINDOW_MICROS).
      const micros = now - w.lastHeard < WARM_WINDOW_MICROS / 1000 ? this.spinMicros : 0;
      if (micros > 0 && spinWhileEqual(control, MAIN_SIGNAL, seen, micros)) continue;
      Atomics.wait(control, MAIN_SIGNAL, seen, Math.min(deadline - now, pumping ? PUMP_MS : POLL_MS));
    }
  }

  /**
   * One look of a wait loop (blocking or awaited): null once `done()`, else the signal word as
   * read before draining the port, to wait on. A message posted after the drain changes that
   * word, so the wait then returns at once instead of sleeping through it. Throws if the
   * worker died.
   */
  private look(w: WorkerHandle, done: () => boolean): number | null {
    const seen = Atomics.load(w.control, MAIN_SIGNAL);
    this.drain(w);
    if (done()) return null;
    this.checkAlive(w);
    return seen;
  }

  private drain(w: WorkerHandle): void {
    while (!w.dead) {
      let received: { message: unknown } | undefined;
      try {
        received = receiveMessageOnPort(w.port);
      } catch {
        return; // closed port
      }
      if (!received) return;
      w.lastHeard = performance.now();
      this.dispatch(w, received.message as ToMain);
    }
  }

  private dispatch(w: WorkerHandle, msg: ToMain): void {
    switch (msg.t) {
      case MSG_REPLY:
        this.settle(w, msg);
        return;
      case MSG_CALLBACK:
        this.runCallback(w, msg);
        return;
      case MSG_DEATH:
        this.onWorkerDeath(w, msg.reason, msg.e ? deserializeError(msg.e, WORKER_LABEL, '') : undefined);
        return;
    }
  }

  private settle(w: WorkerHandle, msg: ReplyMessage): void {
    const rec = this.pending.get(msg.id);
    if (!rec || rec.w !== w || rec.done) return; // the caller gave up: drop the late answer
    rec.done = true;
    const settle = rec.async;
    if (!settle) {
      rec.ok = msg.ok;
      rec.value = msg.v;
      rec.error = msg.e;
      return;
    }
    this.finishAsync(rec);
    if (msg.ok) settle.resolve(toBuffer(msg.v));
    else settle.reject(deserializeError(msg.e!, WORKER_LABEL, stackFrames(settle.stack.stack)));
  }

  private finishAsync(rec: Pending): void {
    this.pending.delete(rec.id);
    if (rec.async?.timer) clearTimeout(rec.async.timer);
    this.asyncCount--;
    this.updateRefs();
  }

  private cancel(rec: Pending): void {
    if (rec.w.dead) return;
    try {
      this.post(rec.w, { t: MSG_CANCEL, id: rec.id });
    } catch {
      // Nothing to cancel on a closed port.
    }
  }

  private runCallback(w: WorkerHandle, msg: CallbackMessage): void {
    const handler = this.handlers.get(msg.k);
    let result: unknown;
    try {
      if (!handler) throw new SSHException(`no handler on the main thread for the worker's callback "${msg.k}"`);
      result = handler(toBuffer(msg.p));
    } catch (err) {
      this.answerCallback(w, msg.id, false, err);
      return;
    }
    if (isThenable(result) && this.blockedDepth > 0) {
      // Its promise cannot settle before the blocked call returns, and that call may be the
      // one waiting for this answer: fail now rather than deadlock until a timeout.
      result.then(undefined, () => undefined);
      const err = new SSHException(
        `the main-thread handler of callback "${msg.k}" returned a promise while the main thread was blocked ` +
          'in a call; it could not settle before that call returned: make the handler synchronous',
      );
      this.answerCallback(w, msg.id, false, err);
    } else if (isThenable(result)) {
      result.then(
        (value) => this.answerCallback(w, msg.id, true, value),
        (err) => this.answerCallback(w, msg.id, false, err),
      );
    } else {
      this.answerCallback(w, msg.id, true, result);
    }
  }

  private answerCallback(w: WorkerHandle, id: number, ok: boolean, value: unknown): void {
    if (w.dead) return;
    const answer: ReplyMessage = ok
      ? { t: MSG_CALLBACK_REPLY, id, ok: true, v: value }
      : { t: MSG_CALLBACK_REPLY, id, ok: false, e: trimFramesFrom(serializeError(value), 'Bridge.runCallback') };
    try {
      this.post(w, answer);
    } catch (err) {
      const wrapped = new TypeError(`the answer of a callback handler cannot be sent to the worker: ${(err as Error).message}`);
      this.post(w, { t: MSG_CALLBACK_REPLY, id, ok: false, e: serializeError(wrapped) });
    }
  }

  /** Throws (after waking everyone) if the worker is dead or wedged. */
  private checkAlive(w: WorkerHandle): void {
    if (w.dead) throw this.deathError(w);
    const control = w.control;
    if (Atomics.load(control, STATE) === STATE_DEAD) {
      this.drain(w); // its last words, with the reason
      this.onWorkerDeath(w, 'stopped');
      throw this.deathError(w);
    }
    const now = performance.now();
    const beat = Atomics.load(control, HEARTBEAT);
    if (beat !== w.lastBeat || now - w.lastCheckAt > WATCH_GAP_MS) {
      w.lastBeat = beat;
      w.lastBeatAt = now;
    } else if (this.wedgeTimeoutMs !== null && now - w.lastBeatAt > this.wedgeTimeoutMs) {
      const seconds = Math.round((now - w.lastBeatAt) / 100) / 10;
      this.onWorkerDeath(w, `no heartbeat for ${seconds} s (its event loop is stuck); it was terminated`);
      throw this.deathError(w);
    }
    w.lastCheckAt = now;
  }

  private deathError(w: WorkerHandle): SSHException {
    return new SSHException(`transport worker died: ${w.reason}`, w.cause ? { cause: w.cause } : undefined);
  }

  /** Marks `w` dead, fails everything that waits on it, and stops its thread. Idempotent. */
  private onWorkerDeath(w: WorkerHandle, reason: string, cause?: Error): void {
    if (w.dead) return;
    w.dead = true;
    w.reason = reason;
    w.cause = cause;
    if (this.current === w) this.current = null;
    for (const rec of [...this.pending.values()]) {
      if (rec.w !== w || rec.done) continue;
      rec.done = true;
      rec.died = true;
      if (rec.async) {
        this.finishAsync(rec);
        rec.async.reject(this.deathError(w));
      }
    }
    try {
      w.port.close();
    } catch {
      // Already closed.
    }
    // Stops a wedged thread too: termination interrupts running JavaScript.
    w.terminated = w.worker.terminate().catch(() => undefined);
    this.updateRefs();
    for (const listener of [...this.deathListeners]) {
      try {
        listener(this.deathError(w));
      } catch (err) {
        process.emitWarning(`a bridge death listener threw: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
  }

  /** The port (and the liveness monitor) run while promise calls are pending or the app holds a ref. */
  private updateRefs(): void {
    const w = this.current;
    const wanted = w !== null && (this.asyncCount > 0 || this.refCount > 0);
    if (w) {
      if (wanted) w.port.ref();
      else w.port.unref();
    }
    if (wanted) this.startMonitor();
    else if (this.monitor) {
      clearInterval(this.monitor);
      this.monitor = null;
    }
  }

  private startMonitor(): void {
    if (this.monitor) return;
    // An idle main thread hears of a crash through the Worker's events, but not of a wedge.
    this.monitor = setInterval(() => {
      const w = this.current;
      if (!w) return;
      try {
        this.checkAlive(w);
      } catch {
        // checkAlive has failed the pending calls.
      }
    }, MONITOR_MS);
    this.monitor.unref();
  }
}

let defaultBridge: Bridge | null = null;

/** The process's bridge. Its worker starts at the first call that needs it. */
export function getBridge(): Bridge {
  return (defaultBridge ??= new Bridge());
}

/** Stops the process's transport worker, if one runs (tests; an orderly shutdown). */
export async function shutdownBridge(): Promise<void> {
  if (defaultBridge) await defaultBridge.close();
}
