/**
 * The transport worker's half of the bridge: the service registry, the request loop, and
 * callbacks to the main thread. Only code running inside the transport worker imports this.
 *
 * A service is a named table of methods. A method receives the caller's `args` (a structured
 * clone) and a CallContext, and returns a value or a promise; a throw or a rejection reaches
 * the caller as the same error class (see errors-wire.ts). The worker is an event loop: a
 * method must never block it (no Atomics.wait, no sync I/O on sockets); long work is async.
 */
import { receiveMessageOnPort, type MessagePort, type Transferable } from 'node:worker_threads';
import { SSHException } from '../errors';
import { captureStack, deserializeError, serializeError, stackFrames, toBuffer, trimFramesFrom } from './errors-wire';
import { compact } from './compact';
import {
  HEARTBEAT,
  HEARTBEAT_MS,
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
  STATE_RUNNING,
  WORKER_SIGNAL,
  type CallbackMessage,
  type DeathMessage,
  type ReplyMessage,
  type RequestMessage,
  type ToWorker,
  type WorkerInit,
} from './protocol';
import type { Doorbell } from './ring';
import { WORKER_SPIN_MICROS, spinWhileEqual } from './spin';

export interface CallContext {
  /** The request id (unique per worker). */
  readonly id: number;
  /** The caller's timeout in seconds: null = wait forever, 0 = do not wait. */
  readonly timeout: number | null;
  /** When the caller's timeout runs out, in ms of this thread's `performance.now()`; null if never. */
  readonly deadline: number | null;
  /** Seconds left before the deadline (never negative); null without a timeout. */
  remaining(): number | null;
  /** Aborted when the caller gave up (the bridge's safety deadline passed) or the bridge closed. */
  readonly signal: AbortSignal;
  /** Asks the main thread (see `callback`). */
  callback(kind: string, payload?: unknown, transfer?: readonly Transferable[]): Promise<unknown>;
}

export type ServiceMethod = (args: any, ctx: CallContext) => unknown;
export type ServiceMethods = Record<string, ServiceMethod>;

/** A service module's export: the list in lib/worker/services/index.ts holds these. */
export interface Service {
  name: string;
  methods: ServiceMethods;
}

/** A method's result with the ArrayBuffers to move instead of copy (they become unusable here). */
export class Transfer<T = unknown> {
  constructor(readonly value: T, readonly list: readonly Transferable[]) {}
}

/** `return withTransfer(result, [result.buffer])` sends `result` without copying it. */
export function withTransfer<T>(value: T, list: readonly Transferable[]): Transfer<T> {
  return new Transfer(value, list);
}

/** A service's methods, or the function that loads them at its first request. */
type ServiceEntry = ServiceMethods | (() => ServiceMethods);
const services = new Map<string, ServiceEntry>();

/**
 * Registers `methods` under `name`, or a function that loads them when the service is first
 * called (a script that only runs commands never loads the SFTP engine or the server: each
 * module a worker loads adds to every script's first connect). A name can be registered once.
 */
export function registerService(name: string, methods: ServiceEntry): void {
  if (services.has(name)) throw new Error(`bridge service "${name}" is already registered`);
  services.set(name, methods);
}

/** The methods of service `name` (loaded now if registered as a loader); throws what loading threw. */
function methodsOf(name: string): ServiceMethods | undefined {
  const entry = services.get(name);
  if (typeof entry !== 'function') return entry;
  const methods = entry();
  services.set(name, methods);
  return methods;
}

export function serviceNames(): string[] {
  return [...services.keys()];
}

/** The services whose methods are loaded (called at least once, or registered loaded). */
export function loadedServiceNames(): string[] {
  return [...services].filter(([, entry]) => typeof entry !== 'function').map(([name]) => name);
}

// ---- state of this worker ----

let port: MessagePort | null = null;
let control: Int32Array | null = null;
let generation = 0;
let dead = false;
let nextCallbackId = 1;
const pendingCallbacks = new Map<
  number,
  { resolve(v: unknown): void; reject(e: unknown): void; stack: { stack?: string } }
>();
/** Requests whose method returned a promise, by id: cancellation aborts their signal. */
const inflight = new Map<number, Context>();

/** True inside the transport worker (getBridge refuses to run there: it would deadlock). */
export function isTransportWorker(): boolean {
  return port !== null;
}

/**
 * Which worker this is: 1 for the first one started in the process, 2 for its replacement
 * after a crash, and so on. Services that hand out ids to the main thread should make them
 * unique across generations (e.g. `${workerGeneration()}:${n}`) so a handle that outlived a
 * dead worker cannot name an object of its successor.
 */
export function workerGeneration(): number {
  return generation;
}

/** The doorbell of the main thread: give it to the worker's end of a ring the main thread reads. */
export function mainDoorbell(): Doorbell {
  if (!control) throw new Error('mainDoorbell() outside the transport worker');
  return { array: control, index: MAIN_SIGNAL };
}

function ctl(): Int32Array {
  return control!;
}

function signalMain(): void {
  const c = ctl();
  Atomics.add(c, MAIN_SIGNAL, 1);
  Atomics.notify(c, MAIN_SIGNAL);
}

function postToMain(message: unknown, transfer?: readonly Transferable[]): void {
  port!.postMessage(message, transfer);
  signalMain();
}

/**
 * Asks the main thread: runs the handler registered there with `bridge.onCallback(kind, ...)`
 * and resolves with its result (or rejects with its error, as the same class). Usable outside
 * any request too (a server's incoming connection). While the main thread is blocked in a
 * call, its wait loop runs the handler; when idle, its event loop does, if it is alive (a
 * script that has ended does not answer: nothing keeps an idle process alive for callbacks
 * unless the application called `bridge.ref()`).
 */
export function callback(kind: string, payload?: unknown, transfer?: readonly Transferable[]): Promise<unknown> {
  if (!port) return Promise.reject(new Error('callback() outside the transport worker'));
  const id = nextCallbackId++;
  const message: CallbackMessage = { t: MSG_CALLBACK, id, k: kind, p: payload };
  const stack = captureStack(callback);
  return new Promise((resolve, reject) => {
    pendingCallbacks.set(id, { resolve, reject, stack });
    try {
      postToMain(message, transfer);
    } catch (err) {
      pendingCallbacks.delete(id);
      reject(err);
    }
  });
}

class Context implements CallContext {
  readonly deadline: number | null;
  private controller: AbortController | null = null;

  constructor(readonly id: number, readonly timeout: number | null) {
    this.deadline = timeout === null ? null : performance.now() + timeout * 1000;
  }

  remaining(): number | null {
    return this.deadline === null ? null : Math.max(0, (this.deadline - performance.now()) / 1000);
  }

  get signal(): AbortSignal {
    // Created on demand: most calls never look at it.
    return (this.controller ??= new AbortController()).signal;
  }

  abort(reason: unknown): void {
    (this.controller ??= new AbortController()).abort(reason);
  }

  callback(kind: string, payload?: unknown, transfer?: readonly Transferable[]): Promise<unknown> {
    return callback(kind, payload, transfer);
  }
}

function reply(id: number, ok: boolean, value: unknown): void {
  if (dead) return;
  let message: ReplyMessage;
  let transfer: readonly Transferable[] | undefined;
  if (ok) {
    if (value instanceof Transfer) {
      transfer = value.list;
      value = value.value;
    } else {
      value = compact(value);
    }
    message = { t: MSG_REPLY, id, ok: true, v: value };
  } else {
    // The frames below the service method are the bridge's request loop.
    const wire = trimFramesFrom(serializeError(value), 'handleRequest');
    message = { t: MSG_REPLY, id, ok: false, e: wire };
  }
  try {
    port!.postMessage(message, transfer);
  } catch (err) {
    // The result could not be cloned (a function, a class instance holding one...): a bug in
    // the service, reported to the caller rather than left unanswered.
    const wrapped = new TypeError(`bridge: the reply to request ${id} cannot be sent: ${(err as Error).message}`);
    port!.postMessage({ t: MSG_REPLY, id, ok: false, e: serializeError(wrapped) } satisfies ReplyMessage);
  }
  signalMain();
}

/** Runs one request. Returns true if it was answered synchronously. */
function handleRequest(msg: RequestMessage): boolean {
  let methods: ServiceMethods | undefined;
  try {
    methods = methodsOf(msg.s);
  } catch (err) {
    // The service's module failed to load: the call gets the cause; other services go on.
    reply(msg.id, false, err);
    return true;
  }
  const method = methods !== undefined && Object.prototype.hasOwnProperty.call(methods, msg.m) ? methods[msg.m] : undefined;
  if (typeof method !== 'function') {
    reply(msg.id, false, new SSHException(`bridge: no method ${msg.s}.${msg.m} in the transport worker`));
    return true;
  }
  const ctx = new Context(msg.id, msg.to);
  let result: unknown;
  try {
    result = method(toBuffer(msg.a), ctx);
  } catch (err) {
    reply(msg.id, false, err);
    return true;
  }
  if (!isThenable(result)) {
    reply(msg.id, true, result);
    return true;
  }
  inflight.set(msg.id, ctx);
  result.then(
    (value) => {
      inflight.delete(msg.id);
      reply(msg.id, true, value);
    },
    (err) => {
      inflight.delete(msg.id);
      reply(msg.id, false, err);
    },
  );
  return false;
}

function handleCallbackReply(msg: ReplyMessage): void {
  const pending = pendingCallbacks.get(msg.id);
  if (!pending) return;
  pendingCallbacks.delete(msg.id);
  if (msg.ok) {
    pending.resolve(toBuffer(msg.v));
  } else {
    pending.reject(deserializeError(msg.e!, 'in the main thread (callback)', stackFrames(pending.stack.stack)));
  }
}

/** Dispatches one message. Returns true if the caller may keep spinning for the next one. */
function handleMessage(msg: ToWorker): boolean {
  switch (msg.t) {
    case MSG_REQUEST:
      return handleRequest(msg) && msg.sync;
    case MSG_CALLBACK_REPLY:
      // The callback's continuation runs in a microtask: return to the event loop for it.
      handleCallbackReply(msg);
      return false;
    case MSG_CANCEL:
      inflight.get(msg.id)?.abort(new SSHException(`request ${msg.id} cancelled by the caller`));
      return true;
    default:
      return true;
  }
}

/**
 * After answering a blocking call, the main thread is likely to send the next one within
 * microseconds (a loop of recvReady(), a sequence of small calls): spin briefly and take it
 * from the port directly, skipping the event loop's wake-up (~100 µs on these VMs).
 *
 * So the next request may run before the microtasks the previous one queued: a synchronous
 * method's effects must be complete when it returns (README: "Adding a service"). Deferring
 * the spin to setImmediate instead cost 2-10x on back-to-back calls (p90 2.5 -> 16-32 µs).
 */
function spinForMore(): void {
  const c = ctl();
  let budgetEnd = performance.now() + WORKER_SPIN_MICROS / 1000;
  for (;;) {
    const seen = Atomics.load(c, WORKER_SIGNAL);
    const received = receiveMessageOnPort(port!);
    if (received) {
      if (!handleMessage(received.message as ToWorker)) return;
      budgetEnd = performance.now() + WORKER_SPIN_MICROS / 1000;
      continue;
    }
    const left = (budgetEnd - performance.now()) * 1000;
    if (left <= 0 || !spinWhileEqual(c, WORKER_SIGNAL, seen, left)) return;
  }
}

/** Marks this worker dead in shared memory and tells the main thread why. Idempotent. */
function die(reason: string, err?: unknown): void {
  if (dead || !port) return;
  dead = true;
  const message: DeathMessage = { t: MSG_DEATH, reason };
  if (err !== undefined) message.e = serializeError(err);
  try {
    port.postMessage(message);
  } catch {
    // The port may already be gone; the state word below is enough.
  }
  Atomics.store(ctl(), STATE, STATE_DEAD);
  signalMain();
}

/** Exit code of a worker that died of an uncaught exception (EX_SOFTWARE). */
const EXIT_UNCAUGHT = 70;

/**
 * Installs the crash handlers, the heartbeat and the request loop. Called first thing by the
 * worker entry point, before the service modules load, so that even a failure to load them
 * wakes the main thread with its cause instead of leaving it to the wedge detector.
 */
export function startWorkerSide(init: WorkerInit): void {
  if (port) throw new Error('startWorkerSide called twice');
  port = init.port;
  control = new Int32Array(init.control);
  generation = init.generation;

  // An exception nobody caught leaves transport state unknown: the worker dies, and every
  // waiter on the main thread wakes with it (a blocked main thread cannot see the worker's
  // 'error' event, hence the flag in shared memory).
  process.on('uncaughtException', (err) => {
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    die(`uncaught exception: ${what}`, err);
    process.exit(EXIT_UNCAUGHT);
  });
  process.on('exit', (code) => die(`exited with code ${code}`));

  setInterval(() => Atomics.add(ctl(), HEARTBEAT, 1), HEARTBEAT_MS).unref();

  port.on('message', (msg: ToWorker) => {
    if (handleMessage(msg) && msg.t === MSG_REQUEST) spinForMore();
  });
}

/** Called by the entry point once the services are registered. */
export function markRunning(): void {
  Atomics.store(ctl(), STATE, STATE_RUNNING);
}
