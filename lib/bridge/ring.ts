/**
 * A single-producer, single-consumer byte ring over a SharedArrayBuffer: how channel data
 * crosses between the transport worker and the main thread without a message per chunk.
 *
 * One thread writes, one thread reads; either thread may hold either end, and both ends are
 * the same class (the roles are a convention of the caller). Data is copied in by `write` and
 * copied out by `read`/`readInto`; nothing is shared with the caller's buffers.
 *
 * Waiting: `waitReadable`/`waitWritable` block in Atomics.wait (after a short spin) and are
 * for a thread that may block (the main thread). The transport worker is an event loop and
 * must never block: it uses `waitReadableAsync`/`waitWritableAsync`, built on
 * Atomics.waitAsync, to learn that the main thread wrote data or consumed some (the moment to
 * send an SSH WINDOW_ADJUST). A pending waitAsync does not keep an event loop alive.
 *
 * On the main thread, API code should wait through `Bridge.waitUntil(() => ring.available() > 0
 * || ring.closed, timeout)` instead, so that worker callbacks are serviced while it waits: for
 * that, the worker's end of a ring the main thread reads is opened with the bridge's doorbell
 * (`mainDoorbell()` in the worker), which every write and close of that end also rings.
 */
import { IOError } from '../errors';
import { RING_SPIN_MICROS, spinWhileEqual, waitAsync } from './spin';

/** An extra Int32 word to bump and notify on every state change made through one end. */
export interface Doorbell {
  array: Int32Array;
  index: number;
}

export interface RingOptions {
  /** Rung after every write, read and close made through this end. */
  doorbell?: Doorbell;
}

/*
 * Layout (Int32 word indexes). `head` and `tail` count bytes written and read since creation,
 * modulo 2^32: each is written by one side only, `head - tail` (as uint32) is the fill level,
 * and `counter & (capacity - 1)` the position. Wrap-safe 32-bit arithmetic needs the capacity
 * to stay below 2^31, hence MAX_RING_CAPACITY; it never overflows however much data passes.
 * The writer's words, the reader's words and the flags sit on separate 64-byte cache lines.
 */
const HEAD = 0;
const WSEQ = 1; // bumped on every write and writer close: readers sleep on it
const TAIL = 16;
const RSEQ = 17; // bumped on every read and reader close: writers sleep on it
const FLAGS = 32;
const CAPACITY = 33;
const MAGIC = 34;
// Writers waiting for space: how many, and the smallest read count (tail) one of them needs.
// A read notifies (wakes a sleeping writer, or posts a task to a waitAsync writer's event loop)
// only when it reaches that count: the worker waiting for a quarter of a ring to free up is not
// woken by every read of the main thread (thousands per GiB, each a cross-thread wake).
const WANTERS = 48;
const WANT_TAIL = 49;
/** Bytes before the data area. */
export const RING_HEADER_BYTES = 256;
/** Word indexes of the header, for tests that poke at the counters. */
export const RING_LAYOUT = Object.freeze({ HEAD, WSEQ, TAIL, RSEQ, FLAGS, CAPACITY, MAGIC, WANTERS, WANT_TAIL });
const MAGIC_VALUE = 0x52494e47; // "RING"
const WRITER_CLOSED = 1;
const READER_CLOSED = 2;
/** 1 GiB: the largest power of two for which uint32 counter differences stay unambiguous. */
export const MAX_RING_CAPACITY = 2 ** 30;


/**
 * Copies `length` (> 0) bytes, as memcpy. V8 copies into or out of a SharedArrayBuffer with
 * `TypedArray.prototype.set` through a relaxed-atomic byte loop (10% of all CPU time of a
 * 1 GiB channel stream, twice the AES-GCM decryption); Node's `Buffer.fill` with a buffer as
 * the pattern is a plain memcpy when the range is the pattern's length. The ring's counters
 * (Atomics, sequentially consistent) still order these bytes against the other thread.
 */
function copyBytes(target: Uint8Array, targetOffset: number, source: Uint8Array, sourceOffset: number, length: number): void {
  const pattern = source.subarray(sourceOffset, sourceOffset + length);
  if (target instanceof Buffer) target.fill(pattern, targetOffset, targetOffset + length);
  else Buffer.from(target.buffer, target.byteOffset + targetOffset, length).fill(pattern);
}

/**
 * `bytes` of zeroed shared memory, as a growable SharedArrayBuffer that never grows: V8 maps
 * those page by page from the system (untouched pages use no memory, and a collected one is
 * unmapped at once). A plain SharedArrayBuffer comes from calloc, and once malloc reuses freed
 * memory for it (after the first collection of rings), calloc zero-fills, so touches, every
 * page: a script opening channel after channel grew to gigabytes resident (each channel has
 * 4.25 MiB of rings, mostly never written; the worker's GC runs rarely, as rings are not on its
 * heap). Plain where growable ones are missing.
 */
function sharedMemory(bytes: number): SharedArrayBuffer {
  try {
    return new (SharedArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer)(bytes, { maxByteLength: bytes });
  } catch {
    return new SharedArrayBuffer(bytes);
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}

export class SharedRing {
  /** The shared memory: send it to the other thread, which opens it with `fromShared`. */
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  private readonly ctl: Int32Array;
  private readonly data: Buffer;
  private readonly mask: number;
  private readonly doorbell: Doorbell | undefined;

  /** A new, empty ring of `capacity` bytes (a power of two, at most MAX_RING_CAPACITY). */
  constructor(capacity: number, options?: RingOptions);
  /** @internal use `SharedRing.fromShared`. */
  constructor(shared: SharedArrayBuffer, options?: RingOptions);
  constructor(capacityOrShared: number | SharedArrayBuffer, options: RingOptions = {}) {
    let sab: SharedArrayBuffer;
    if (typeof capacityOrShared === 'number') {
      const capacity = capacityOrShared;
      if (!isPowerOfTwo(capacity) || capacity > MAX_RING_CAPACITY) {
        throw new RangeError(`ring capacity must be a power of two between 1 and ${MAX_RING_CAPACITY}, got ${capacity}`);
      }
      sab = sharedMemory(RING_HEADER_BYTES + capacity);
      const ctl = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
      ctl[CAPACITY] = capacity;
      ctl[MAGIC] = MAGIC_VALUE;
    } else {
      sab = capacityOrShared;
    }
    const ctl = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
    const capacity = ctl[CAPACITY];
    if (ctl[MAGIC] !== MAGIC_VALUE || !isPowerOfTwo(capacity) || sab.byteLength !== RING_HEADER_BYTES + capacity) {
      throw new TypeError('not a SharedRing buffer');
    }
    this.sab = sab;
    this.capacity = capacity;
    this.ctl = ctl;
    this.data = Buffer.from(sab, RING_HEADER_BYTES, capacity);
    this.mask = capacity - 1;
    this.doorbell = options.doorbell;
  }

  /** The other end of a ring created on another thread (or the same one). */
  static fromShared(sab: SharedArrayBuffer, options?: RingOptions): SharedRing {
    if (!(sab instanceof SharedArrayBuffer) && Object.prototype.toString.call(sab) !== '[object SharedArrayBuffer]') {
      throw new TypeError('SharedRing.fromShared expects a SharedArrayBuffer');
    }
    return new SharedRing(sab, options);
  }

  /** Bytes ready to read. */
  available(): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) >>> 0;
  }

  /** Bytes that can be written now. */
  free(): number {
    return this.capacity - this.available();
  }

  /** Total bytes written, modulo 2^32: subtract two readings with `>>> 0` to get a delta. */
  get writeCount(): number {
    return Atomics.load(this.ctl, HEAD) >>> 0;
  }

  /** Total bytes read, modulo 2^32 (a channel's consumed count, for window adjustments). */
  get readCount(): number {
    return Atomics.load(this.ctl, TAIL) >>> 0;
  }

  /** The writer closed its end (EOF once the data is drained). */
  get closed(): boolean {
    return (Atomics.load(this.ctl, FLAGS) & WRITER_CLOSED) !== 0;
  }

  /** The reader closed its end: writes fail with EPIPE. */
  get readerClosed(): boolean {
    return (Atomics.load(this.ctl, FLAGS) & READER_CLOSED) !== 0;
  }

  /** Closed by the writer and fully drained. */
  get eof(): boolean {
    // Flags first: once the writer closed, `head` no longer moves.
    return this.closed && this.available() === 0;
  }

  /**
   * Copies as much of `src[offset, offset + length)` as fits and returns the number of bytes
   * written (0 when full). Throws IOError EPIPE after either end was closed.
   */
  write(src: Uint8Array, offset = 0, length = src.length - offset): number {
    return this.put(src, offset, length, true);
  }

  /**
   * `write` without waking the reader: a writer that stores many chunks in one turn (one TCP
   * read holds several packets) wakes it once with `flushSignal()`, saving a futex wake per chunk.
   */
  writeQuiet(src: Uint8Array, offset = 0, length = src.length - offset): number {
    const n = this.put(src, offset, length, false);
    if (n) this.signalPending = true;
    return n;
  }

  /** Wakes the reader if `writeQuiet` stored anything since the last wake. */
  flushSignal(): void {
    if (!this.signalPending) return;
    this.signalPending = false;
    this.signal(WSEQ);
  }

  private signalPending = false;

  private put(src: Uint8Array, offset: number, length: number, wake: boolean): number {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > src.length) {
      throw new RangeError(`write range [${offset}, ${offset}+${length}) outside a buffer of ${src.length} bytes`);
    }
    const flags = Atomics.load(this.ctl, FLAGS);
    if (flags & WRITER_CLOSED) throw new IOError('write to a ring after close()', { code: 'EPIPE' });
    if (flags & READER_CLOSED) throw new IOError('write to a ring whose reader is closed', { code: 'EPIPE' });
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    const used = (head - Atomics.load(this.ctl, TAIL)) >>> 0;
    const n = Math.min(length, this.capacity - used);
    if (n === 0) return 0;
    const pos = head & this.mask;
    const first = Math.min(n, this.capacity - pos);
    copyBytes(this.data, pos, src, offset, first);
    if (n > first) copyBytes(this.data, 0, src, offset + first, n - first);
    // The store publishes the bytes: Atomics are sequentially consistent, so a reader that
    // sees the new head sees the data copied before it.
    Atomics.store(this.ctl, HEAD, (head + n) | 0);
    if (wake) this.signal(WSEQ);
    return n;
  }

  /** Copies out and consumes up to `maxBytes` (an empty Buffer when nothing is there). */
  read(maxBytes: number = this.capacity): Buffer {
    const n = Math.min(Math.max(0, Math.floor(maxBytes)), this.available());
    if (n === 0) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(n);
    this.consume(out, 0, n);
    return out;
  }

  /** Copies up to `max` bytes into `target` at `offset`; returns how many. */
  readInto(target: Uint8Array, offset = 0, max: number = target.length - offset): number {
    if (!Number.isInteger(offset) || offset < 0 || offset > target.length) {
      throw new RangeError(`readInto offset ${offset} outside a buffer of ${target.length} bytes`);
    }
    const n = Math.min(Math.max(0, Math.floor(max)), target.length - offset, this.available());
    if (n > 0) this.consume(target, offset, n);
    return n;
  }

  private consume(target: Uint8Array, offset: number, n: number): void {
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const pos = tail & this.mask;
    const first = Math.min(n, this.capacity - pos);
    copyBytes(target, offset, this.data, pos, first);
    if (n > first) copyBytes(target, offset + first, this.data, 0, n - first);
    const newTail = (tail + n) | 0;
    Atomics.store(this.ctl, TAIL, newTail);
    // Sequentially consistent: a writer that registers its want after this load sees the new
    // tail when it tests its condition, so no wake is lost.
    const wanted = Atomics.load(this.ctl, WANTERS) !== 0 && ((newTail - Atomics.load(this.ctl, WANT_TAIL)) | 0) >= 0;
    if (wanted) {
      this.signal(RSEQ);
    } else {
      Atomics.add(this.ctl, RSEQ, 1);
      this.ringDoorbell();
    }
  }

  /** The writer's end-of-file. Idempotent. The reader drains what is left, then sees `eof`. */
  close(): void {
    this.signalPending = false;
    if (Atomics.or(this.ctl, FLAGS, WRITER_CLOSED) & WRITER_CLOSED) return;
    this.wakeAll();
  }

  /** The reader gives up: pending data is dropped and further writes fail. Idempotent. */
  closeReader(): void {
    if (Atomics.or(this.ctl, FLAGS, READER_CLOSED) & READER_CLOSED) return;
    this.wakeAll();
  }

  /**
   * After a close, every wait on the ring ends, on either word and on either side: the writer's
   * own async wait for reads ends when it closes, too. A wait left pending would keep its
   * promise, whatever that promise's callbacks hold (a whole channel) and the shared memory
   * alive for as long as the thread lives.
   */
  private wakeAll(): void {
    Atomics.add(this.ctl, RSEQ, 1);
    Atomics.notify(this.ctl, RSEQ);
    this.signal(WSEQ);
  }

  /**
   * Blocks until at least `minBytes` (capped at the capacity) can be read or the writer closed;
   * false on timeout. `timeoutMs` null waits forever. Not for the transport worker.
   */
  waitReadable(timeoutMs: number | null = null, minBytes = 1): boolean {
    return this.waitSync(WSEQ, () => this.readable(minBytes), timeoutMs);
  }

  /** Blocks until `minFree` bytes (capped at the capacity) are free or an end closed. */
  waitWritable(timeoutMs: number | null = null, minFree = 1): boolean {
    const release = this.want(minFree);
    try {
      return this.waitSync(RSEQ, () => this.writable(minFree), timeoutMs);
    } finally {
      release();
    }
  }

  /*
   * The async waits below cannot be cancelled: until its condition holds, each call keeps a
   * waiter registered that the other thread's reads or writes wake (a task posted to this
   * thread each time). Raced against another event and abandoned, it lives on; reuse the
   * pending promise rather than starting another (WorkerChannel.consumed).
   */

  /** waitReadable without blocking the thread (Atomics.waitAsync): for the worker. */
  waitReadableAsync(timeoutMs: number | null = null, minBytes = 1): Promise<boolean> {
    return this.waitAsync(WSEQ, () => this.readable(minBytes), timeoutMs);
  }

  /** waitWritable without blocking the thread (Atomics.waitAsync): for the worker. */
  async waitWritableAsync(timeoutMs: number | null = null, minFree = 1): Promise<boolean> {
    const release = this.want(minFree);
    try {
      return await this.waitAsync(RSEQ, () => this.writable(minFree), timeoutMs);
    } finally {
      release();
    }
  }

  /**
   * For a writer that keeps writing while it waits (the worker, returning an SSH window as the
   * main thread reads): resolves once the reader's count (`readCount`) reaches `target`, or
   * either end closed. Free space is no target for such a writer, since its own writes move it;
   * the read count does not. `retargetConsumed` moves the target of the pending wait (the reads
   * notify this thread only once they reach it). One such wait per ring at a time, from the
   * writer's thread, and not mixed with waitWritable on the same ring: they share the words.
   */
  async waitConsumedAsync(target: number): Promise<void> {
    Atomics.store(this.ctl, WANT_TAIL, target | 0);
    Atomics.add(this.ctl, WANTERS, 1);
    try {
      await this.waitAsync(RSEQ, () => this.consumedReached(), null);
    } finally {
      Atomics.sub(this.ctl, WANTERS, 1);
    }
  }

  /** Moves the target of the pending waitConsumedAsync, which resolves at once if the reader is there already. */
  retargetConsumed(target: number): void {
    Atomics.store(this.ctl, WANT_TAIL, target | 0);
    // Sequentially consistent against consume(): either the reader sees the new target (and
    // notifies when it reaches it) or this load sees the reader's new count.
    if (this.consumedReached()) Atomics.notify(this.ctl, RSEQ);
  }

  private consumedReached(): boolean {
    return Atomics.load(this.ctl, FLAGS) !== 0 || ((Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, WANT_TAIL)) | 0) >= 0;
  }

  /**
   * Registers a writer waiting for `minFree` bytes of space, so that reads notify once it is
   * there (and not before); returns the function that unregisters it. Called by the writer's
   * thread only: `head` cannot move meanwhile, so the read count needed is fixed.
   */
  private want(minFree: number): () => void {
    const need = Math.min(Math.max(1, minFree), this.capacity);
    const target = (Atomics.load(this.ctl, HEAD) - this.capacity + need) | 0;
    // Several waiters (rare): keep the earliest target; a stale earlier one only adds wakes.
    if (Atomics.add(this.ctl, WANTERS, 1) === 0 || ((target - Atomics.load(this.ctl, WANT_TAIL)) | 0) < 0) {
      Atomics.store(this.ctl, WANT_TAIL, target);
    }
    return () => void Atomics.sub(this.ctl, WANTERS, 1);
  }

  private readable(minBytes: number): boolean {
    return Atomics.load(this.ctl, FLAGS) !== 0 || this.available() >= Math.min(Math.max(1, minBytes), this.capacity);
  }

  private writable(minFree: number): boolean {
    return Atomics.load(this.ctl, FLAGS) !== 0 || this.free() >= Math.min(Math.max(1, minFree), this.capacity);
  }

  private signal(seq: number): void {
    Atomics.add(this.ctl, seq, 1);
    Atomics.notify(this.ctl, seq);
    this.ringDoorbell();
  }

  private ringDoorbell(): void {
    const bell = this.doorbell;
    if (bell) {
      Atomics.add(bell.array, bell.index, 1);
      Atomics.notify(bell.array, bell.index);
    }
  }

  private waitSync(seq: number, ready: () => boolean, timeoutMs: number | null): boolean {
    const deadline = timeoutMs === null ? Infinity : performance.now() + Math.max(0, timeoutMs);
    let spin = true;
    for (;;) {
      // Read the sequence word before testing: a change after the test makes the wait return.
      const seen = Atomics.load(this.ctl, seq);
      if (ready()) return true;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return false;
      if (spin && spinWhileEqual(this.ctl, seq, seen, RING_SPIN_MICROS)) continue;
      const result = Atomics.wait(this.ctl, seq, seen, remaining === Infinity ? undefined : remaining);
      spin = result !== 'timed-out';
    }
  }

  private async waitAsync(seq: number, ready: () => boolean, timeoutMs: number | null): Promise<boolean> {
    const deadline = timeoutMs === null ? Infinity : performance.now() + Math.max(0, timeoutMs);
    for (;;) {
      const seen = Atomics.load(this.ctl, seq);
      if (ready()) return true;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return false;
      const result = waitAsync(this.ctl, seq, seen, remaining === Infinity ? undefined : remaining);
      if (result.async) await result.value;
    }
  }
}
