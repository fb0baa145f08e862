/**
 * Errors across threads. Structured clone turns an `AuthenticationException` into a plain
 * `Error` and drops its stack, so the bridge sends errors in its own form and rebuilds them on
 * the other side as the same class (looked up by name in a registry), with the message, the
 * own enumerable properties (`code`, `errno`, `allowedTypes`...), the cause, and the stack of
 * the thread that threw appended to the stack of the thread that receives.
 */
import { types } from 'node:util';
import * as paramikoErrors from '../errors';

type ErrorClass = abstract new (...args: any[]) => Error;

/** An error on the wire. `c` is the registered class to rebuild, `n` the error's own name. */
export interface WireError {
  c: string;
  n: string;
  m: string;
  /** Stack frames only (no "Name: message" header), possibly with nested thread sections. */
  s: string;
  /** Own enumerable properties that survive structured clone. */
  p?: Record<string, unknown>;
  /** Own enumerable properties holding errors. */
  pe?: Record<string, WireError>;
  cause?: { e: WireError } | { v: unknown };
}

const registry = new Map<string, ErrorClass>();

/**
 * Makes `cls` travel as itself. Every class exported by lib/errors.ts and the standard error
 * classes are registered already; other layers register theirs (an SFTP error class, say) on
 * both threads, e.g. at the bottom of the module that defines it.
 */
export function registerErrorClass(cls: ErrorClass, name: string = cls.name): void {
  registry.set(name, cls);
}

export function lookupErrorClass(name: string): ErrorClass | undefined {
  return registry.get(name);
}

for (const cls of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError]) {
  registerErrorClass(cls);
}
for (const value of Object.values(paramikoErrors)) {
  if (typeof value === 'function' && value.prototype instanceof Error) registerErrorClass(value as ErrorClass);
}

/** Nested causes and error-valued properties deeper than this are sent as plain messages. */
const MAX_DEPTH = 4;

/** The frames of a V8 stack, without the "Name: message" header (which may span lines). */
export function stackFrames(stack: unknown): string {
  if (typeof stack !== 'string') return '';
  const at = stack.indexOf('\n    at ');
  if (at >= 0) return stack.slice(at + 1);
  const section = stack.indexOf('\n    --- ');
  return section >= 0 ? stack.slice(section + 1) : '';
}

function isErrorLike(value: unknown): value is Error {
  return types.isNativeError(value) || value instanceof Error;
}

/** The nearest registered class on the prototype chain of `err`. */
function registeredClassName(err: Error): string {
  for (let proto = Object.getPrototypeOf(err); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const name = proto.constructor?.name;
    if (typeof name === 'string' && registry.has(name)) return name;
  }
  return 'Error';
}

function cloneable(value: unknown): { ok: true; value: unknown } | { ok: false } {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? { ok: false } : { ok: true, value };
  }
  try {
    structuredClone(value);
    return { ok: true, value };
  } catch {
    return { ok: false };
  }
}

/** Anything thrown, as a WireError. Properties that cannot be cloned are left out. */
export function serializeError(thrown: unknown, depth = 0): WireError {
  if (!isErrorLike(thrown)) {
    const message =
      thrown !== null && typeof thrown === 'object' && typeof (thrown as { message?: unknown }).message === 'string'
        ? (thrown as { message: string }).message
        : String(thrown);
    return { c: 'Error', n: 'Error', m: message, s: '' };
  }
  const err = thrown;
  const wire: WireError = {
    c: registeredClassName(err),
    n: typeof err.name === 'string' ? err.name : 'Error',
    m: typeof err.message === 'string' ? err.message : String(err.message),
    s: stackFrames(err.stack),
  };
  for (const key of Object.keys(err)) {
    if (key === 'stack' || key === 'message' || key === 'cause') continue;
    const value = (err as unknown as Record<string, unknown>)[key];
    if (isErrorLike(value)) {
      if (depth < MAX_DEPTH) (wire.pe ??= {})[key] = serializeError(value, depth + 1);
      continue;
    }
    const c = cloneable(value);
    if (c.ok) (wire.p ??= {})[key] = c.value;
  }
  if ('cause' in err && err.cause !== undefined) {
    if (isErrorLike(err.cause)) {
      if (depth < MAX_DEPTH) wire.cause = { e: serializeError(err.cause, depth + 1) };
    } else {
      const c = cloneable(err.cause);
      if (c.ok) wire.cause = { v: c.value };
    }
  }
  return wire;
}

/**
 * Drops the frames from the first one of function `fn` (the bridge's own dispatch loop, noise
 * to a reader) down to the next thread's section, if any.
 */
export function trimFramesFrom(wire: WireError, fn: string): WireError {
  const start = wire.s.indexOf(`\n    at ${fn} (`);
  if (start >= 0) {
    const section = wire.s.indexOf('\n    --- ', start);
    wire.s = wire.s.slice(0, start) + (section >= 0 ? wire.s.slice(section) : '');
  }
  return wire;
}

/** Structured clone delivers a Buffer as a plain Uint8Array: give it back its Buffer methods. */
export function toBuffer<T>(value: T): T | Buffer {
  if (types.isUint8Array(value) && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}

/**
 * Rebuilds a WireError as an instance of its registered class (a native Error object with the
 * class's prototype: the class constructor is not run, so its signature does not matter).
 * `localFrames` are the receiving thread's frames; the sender's frames follow under `label`.
 */
export function deserializeError(wire: WireError, label: string, localFrames: string): Error {
  const cls = registry.get(wire.c) ?? Error;
  const err = Reflect.construct(Error, [wire.m], cls) as Error;
  if (wire.p) {
    for (const [key, value] of Object.entries(wire.p)) (err as unknown as Record<string, unknown>)[key] = toBuffer(value);
  }
  if (wire.pe) {
    for (const [key, value] of Object.entries(wire.pe)) {
      (err as unknown as Record<string, unknown>)[key] = deserializeError(value, label, '');
    }
  }
  if (err.name !== wire.n) {
    Object.defineProperty(err, 'name', { value: wire.n, writable: true, configurable: true, enumerable: false });
  }
  if (wire.cause) {
    const cause = 'e' in wire.cause ? deserializeError(wire.cause.e, label, '') : toBuffer(wire.cause.v);
    Object.defineProperty(err, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  }
  let stack = `${wire.n}: ${wire.m}`;
  if (localFrames) stack += `\n${localFrames}`;
  if (wire.s) stack += `\n    --- ${label} ---\n${wire.s}`;
  Object.defineProperty(err, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
  return err;
}

/**
 * Captures the calling thread's stack below `above` (which hides the bridge's own frames).
 * V8 formats it only when `.stack` is read, so capturing on every call is cheap.
 */
export function captureStack(above: Function): { stack?: string } {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, above);
  return holder;
}
