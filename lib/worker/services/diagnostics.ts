/**
 * The 'bridge' service: diagnostics of the bridge itself (ping, echo, info) and the fault
 * injection its tests and benchmarks use (sleep, hang, throw, crash, callbacks, ring
 * streaming). Not part of the public API; `crash` really kills the transport worker.
 */
import { createHash, randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { SocketTimeout } from '../../errors';
import { lookupErrorClass } from '../../bridge/errors-wire';
import { SharedRing } from '../../bridge/ring';
import { liveCounts } from '../live';
import { callback, loadedServiceNames, mainDoorbell, serviceNames, workerGeneration, type CallContext, type Service } from '../../bridge/worker-side';

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** xorshift32: deterministic chunk sizes from a seed. */
function prng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Yield to the event loop after this many bytes, so the heartbeat and other requests run. */
const YIELD_BYTES = 8 << 20;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Bytes of the pattern the producer streams from (odd length: chunks land at every offset). */
const PATTERN_BYTES = (1 << 20) + 7;

export const diagnostics: Service = {
  name: 'bridge',
  methods: {
    ping: () => 'pong',

    echo: (args: unknown) => args,

    info: () => ({ generation: workerGeneration(), threadId, services: serviceNames(), loaded: loadedServiceNames() }),

    /**
     * The worker's connections, channels and forwards not yet garbage-collected, by kind (see
     * lib/worker/live.ts), after collecting when the process runs with --expose-gc (workers
     * inherit it): what finished work left alive.
     */
    async live(): Promise<Record<string, number>> {
      const gc = (globalThis as { gc?: () => void }).gc;
      for (let i = 0; i < 3; i++) {
        gc?.();
        // Finalization callbacks run in a later task.
        await new Promise((resolve) => setImmediate(resolve));
      }
      return liveCounts();
    },

    /** Resolves after `ms`; as a well-behaved service, fails with SocketTimeout at the caller's deadline. */
    async sleep({ ms }: { ms: number }, ctx: CallContext): Promise<number> {
      const left = ctx.remaining();
      if (left !== null && left * 1000 < ms) {
        await delay(left * 1000, ctx.signal);
        throw new SocketTimeout(`bridge.sleep: timed out after ${ctx.timeout} s`);
      }
      await delay(ms, ctx.signal);
      return ms;
    },

    /**
     * `length` bytes (each its offset mod 251) at `at` of a fresh `size`-byte buffer, as a view:
     * alone, in an array, or as a property (how a reply's views are posted, see compact).
     */
    view({ size, at, length, shape }: { size: number; at: number; length: number; shape: 'bare' | 'array' | 'object' }): unknown {
      const big = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i++) big[i] = i % 251;
      const v = big.subarray(at, at + length);
      return shape === 'array' ? [v, 'x'] : shape === 'object' ? { data: v, eof: true } : v;
    },

    /** The size of the ArrayBuffer behind `data` as it arrived here (how a request's views are posted). */
    bufferBehind({ data }: { data: Uint8Array }): number {
      return data.buffer.byteLength;
    },

    /** Returns something structured clone refuses (a function). */
    unclonable: () => ({ f: () => 1 }),

    /** Never answers: the bridge's own deadline must end the call. */
    hang: () => new Promise(() => {}),

    /** Throws `new <className>(...args)` with `props` assigned. */
    throw({ className, args = [], props = {} }: { className: string; args?: unknown[]; props?: Record<string, unknown> }): never {
      const cls = lookupErrorClass(className);
      if (!cls) throw new TypeError(`bridge.throw: unknown error class ${className}`);
      const err = new (cls as new (...a: unknown[]) => Error)(...args);
      Object.assign(err, props);
      throw err;
    },

    /** Kills the worker after `delayMs`, the way `mode` says; never answers. */
    crash({ mode, delayMs = 0 }: { mode: 'throw' | 'reject' | 'exit' | 'wedge'; delayMs?: number }): Promise<never> {
      setTimeout(() => {
        switch (mode) {
          case 'throw':
            throw new RangeError('diagnostic crash');
          case 'reject':
            void Promise.reject(new RangeError('diagnostic rejection'));
            break;
          case 'exit':
            process.exit(3);
          // falls through (process.exit does not return)
          case 'wedge':
            for (;;) {
              // A service that blocks the event loop forever: only the heartbeat notices.
            }
        }
      }, delayMs);
      return new Promise(() => {});
    },

    /** Asks the main thread and returns its answer (or fails with its error). */
    callbackRoundtrip({ kind, payload }: { kind: string; payload?: unknown }, ctx: CallContext): Promise<unknown> {
      return ctx.callback(kind, payload);
    },

    /** Returns at once; after `delayMs`, asks the main thread (whose answer goes to `${kind}:answer`). */
    callbackLater({ kind, payload, delayMs = 0 }: { kind: string; payload?: unknown; delayMs?: number }): null {
      setTimeout(() => {
        callback(kind, payload).then(
          (answer) => callback(`${kind}:answer`, { ok: true, answer }),
          (err: Error) => callback(`${kind}:answer`, { ok: false, name: err.name, message: err.message }),
        ).catch(() => {});
      }, delayMs);
      return null;
    },

    /**
     * Writes `total` bytes into the ring in chunks of 1..maxChunk bytes, then closes it.
     * Returns the SHA-256 of what was written.
     */
    async ringProduce(
      { sab, total, maxChunk = 65536, seed = 1, doorbell = false, hash: hashing = true }:
      { sab: SharedArrayBuffer; total: number; maxChunk?: number; seed?: number; doorbell?: boolean; hash?: boolean },
    ): Promise<{ bytes: number; sha256: string | null }> {
      const ring = SharedRing.fromShared(sab, doorbell ? { doorbell: mainDoorbell() } : {});
      const pattern = randomBytes(PATTERN_BYTES);
      const random = prng(seed);
      const hash = createHash('sha256');
      let written = 0;
      let sinceYield = 0;
      while (written < total && !ring.readerClosed) {
        if (sinceYield >= YIELD_BYTES) {
          sinceYield = 0;
          await yieldToLoop();
        }
        const offset = written % PATTERN_BYTES;
        const want = Math.min(total - written, 1 + Math.floor(random() * maxChunk), PATTERN_BYTES - offset);
        let n: number;
        try {
          n = ring.write(pattern, offset, want);
        } catch (err) {
          if ((err as { code?: string }).code === 'EPIPE' && ring.readerClosed) break; // the reader left
          throw err;
        }
        if (n === 0) {
          await ring.waitWritableAsync(null);
          continue;
        }
        if (hashing) hash.update(pattern.subarray(offset, offset + n));
        written += n;
        sinceYield += n;
      }
      if (!ring.readerClosed) ring.close();
      return { bytes: written, sha256: hashing ? hash.digest('hex') : null };
    },

    /** Reads the ring to EOF in reads of 1..maxRead bytes; returns the count and SHA-256. */
    async ringConsume(
      { sab, maxRead = 65536, seed = 2 }: { sab: SharedArrayBuffer; maxRead?: number; seed?: number },
    ): Promise<{ bytes: number; sha256: string }> {
      const ring = SharedRing.fromShared(sab);
      const random = prng(seed);
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(maxRead);
      let bytes = 0;
      let sinceYield = 0;
      for (;;) {
        if (sinceYield >= YIELD_BYTES) {
          sinceYield = 0;
          await yieldToLoop();
        }
        const n = ring.readInto(buffer, 0, 1 + Math.floor(random() * maxRead));
        if (n > 0) {
          hash.update(buffer.subarray(0, n));
          bytes += n;
          sinceYield += n;
          continue;
        }
        if (ring.eof) break;
        await ring.waitReadableAsync(null);
      }
      return { bytes, sha256: hash.digest('hex') };
    },
  },
};
