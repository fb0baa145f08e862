/**
 * Spinning before sleeping. Waking a thread parked in Atomics.wait (a futex) or in its event
 * loop costs 70-150 µs on the 2-vCPU KVM machines this project is measured on, while a thread
 * that is awake answers within a few µs: a short busy-wait on the shared word catches those
 * answers without a wake-up.
 *
 * Measured here (bench/bridge-roundtrip.js and A/B runs of the variants), a blocking call
 * after the main thread...
 * - made another one a moment ago (back to back): 4-5 µs when both sides spin, 20-30 µs when
 *   the worker goes back to its event loop, 50+ µs when the main thread sleeps at once;
 * - was busy computing for 300 µs: 55-60 µs spinning, 90-105 µs sleeping at once;
 * - was idle in its event loop for 2 ms: 105-135 µs sleeping at once, 165-225 µs spinning
 *   (a spinning main thread keeps the scheduler from running the woken worker on its vCPU).
 * Hence: the main thread spins only when it heard from the worker within WARM_WINDOW_MICROS.
 */

/** Microseconds the main thread spins for a reply before it sleeps, when the worker is warm. */
export const MAIN_SPIN_MICROS = 100;

/**
 * A worker heard from this recently (µs) is awake, or its vCPU still polls before halting
 * (KVM's halt polling lasts ~200 µs by default): spinning for its answer pays. Past that, the
 * main thread sleeps at once.
 */
export const WARM_WINDOW_MICROS = 400;

/** Microseconds the worker spins for the next blocking request after answering one. It blocks
 * the worker's event loop meanwhile, so it stays short. */
export const WORKER_SPIN_MICROS = 30;

/** Microseconds a ring endpoint spins before sleeping in waitReadable/waitWritable. */
export const RING_SPIN_MICROS = 50;

/**
 * Busy-waits while `array[index] === value`, for at most `micros`. Returns true if the word
 * changed, false if the time ran out.
 */
export function spinWhileEqual(array: Int32Array, index: number, value: number, micros: number): boolean {
  if (Atomics.load(array, index) !== value) return true;
  if (micros <= 0) return false;
  const end = performance.now() + micros / 1000;
  for (let i = 1; ; i++) {
    if (Atomics.load(array, index) !== value) return true;
    // Reading the clock costs ~50x an atomic load: look at it every 32 iterations.
    if ((i & 31) === 0 && performance.now() >= end) return false;
  }
}

type WaitAsyncResult = { async: false; value: string } | { async: true; value: Promise<string> };
/** Atomics.waitAsync (Node 16+; not yet in TypeScript's lib for ES2022). */
export const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
}).waitAsync;
