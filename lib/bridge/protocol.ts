/**
 * What the main thread and the transport worker agree on: the layout of the shared control
 * block and the messages on their MessagePort. Internal to the bridge.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from './errors-wire';

/**
 * The control block: one SharedArrayBuffer of Int32 words per worker. Words written by
 * different threads sit on different 64-byte cache lines so the spinning side does not steal
 * the line the other side is writing.
 */
export const CONTROL_BYTES = 256;
/** Bumped (and notified) by the worker after every message it posts to the main thread, and by
 * the doorbell of every ring the main thread reads: the one word the main thread sleeps on. */
export const MAIN_SIGNAL = 0;
/** Bumped by the main thread after every message it posts to the worker; the worker spins on it
 * for a few microseconds after a blocking call so that back-to-back calls skip its event loop. */
export const WORKER_SIGNAL = 16;
/** One of the STATE_* values, written by the worker. */
export const STATE = 32;
/** Incremented by the worker every HEARTBEAT_MS; a word that stops moving means a wedged loop. */
export const HEARTBEAT = 48;

export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_DEAD = 2;

/** 100 ms: frequent enough to detect a wedge in seconds, rare enough to cost nothing. */
export const HEARTBEAT_MS = 100;

// Message tags (small integers: cheaper to clone and compare than strings).
export const MSG_REQUEST = 1; // main -> worker
export const MSG_REPLY = 2; // worker -> main
export const MSG_CALLBACK = 3; // worker -> main
export const MSG_CALLBACK_REPLY = 4; // main -> worker
export const MSG_CANCEL = 5; // main -> worker: the caller gave up on a request
export const MSG_DEATH = 6; // worker -> main: last words before the worker exits

export interface RequestMessage {
  t: typeof MSG_REQUEST;
  id: number;
  s: string; // service
  m: string; // method
  a: unknown; // args
  to: number | null; // timeout, seconds
  sync: boolean; // a blocked caller spins for the reply: the worker spins for its next request
}

export interface ReplyMessage {
  t: typeof MSG_REPLY | typeof MSG_CALLBACK_REPLY;
  id: number;
  ok: boolean;
  v?: unknown;
  e?: WireError;
}

export interface CallbackMessage {
  t: typeof MSG_CALLBACK;
  id: number;
  k: string; // kind
  p: unknown; // payload
}

export interface CancelMessage {
  t: typeof MSG_CANCEL;
  id: number;
}

export interface DeathMessage {
  t: typeof MSG_DEATH;
  reason: string;
  e?: WireError;
}

export type ToWorker = RequestMessage | ReplyMessage | CancelMessage;
export type ToMain = ReplyMessage | CallbackMessage | DeathMessage;

/** `workerData` of the transport worker. */
export interface WorkerInit {
  port: MessagePort;
  control: SharedArrayBuffer;
  generation: number;
}

/** A promise or any object with a `then` method (what a handler may return to answer later). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
