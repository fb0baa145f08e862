/**
 * SharedRing: the single-producer single-consumer byte ring that carries channel data between
 * the transport worker and the main thread. First on one thread against a model, then across
 * threads through the worker's diagnostics service (256 MiB each way, checked by SHA-256).
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { getBridge, MAX_RING_CAPACITY, SharedRing, shutdownBridge } from '../lib/bridge';
import { RING_HEADER_BYTES, RING_LAYOUT } from '../lib/bridge/ring';
import { IOError } from '../lib/errors';
import { catchError } from './support/bridge-helpers';

afterAll(() => shutdownBridge());

/** Atomics.waitAsync (ES2024, in Node 20; not in this project's TypeScript lib setting). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeout?: number): { async: true; value: Promise<string> };
}).waitAsync;

/** Deterministic sizes for the model tests (xorshift32). */
function prng(seed: number): (limit: number) => number {
  let x = seed;
  return (limit) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % limit;
  };
}

describe('a ring on one thread', () => {
  test('capacity must be a power of two between 1 and 1 GiB', () => {
    for (const bad of [0, 3, 100, -8, 1.5, MAX_RING_CAPACITY * 2]) {
      expect(catchError(() => new SharedRing(bad))).toBeInstanceOf(RangeError);
    }
    expect(new SharedRing(1).capacity).toBe(1);
    expect(new SharedRing(4096).sab.byteLength).toBe(RING_HEADER_BYTES + 4096);
  });

  test('fromShared opens the same ring and refuses other buffers', () => {
    const ring = new SharedRing(16);
    const other = SharedRing.fromShared(ring.sab);
    expect(ring.write(Buffer.from('abc'))).toBe(3);
    expect(other.read(10).toString()).toBe('abc');
    expect(catchError(() => SharedRing.fromShared(new SharedArrayBuffer(RING_HEADER_BYTES + 16)))).toBeInstanceOf(TypeError);
    expect(catchError(() => SharedRing.fromShared(new ArrayBuffer(64) as unknown as SharedArrayBuffer))).toBeInstanceOf(TypeError);
  });

  test('write copies in, read copies out, available and free add up to the capacity', () => {
    const ring = new SharedRing(8);
    const src = Buffer.from('hello');
    expect(ring.write(src)).toBe(5);
    src.fill(0); // the ring holds its own copy
    expect([ring.available(), ring.free()]).toEqual([5, 3]);
    const out = ring.read(2);
    expect(out.toString()).toBe('he');
    expect([ring.available(), ring.free()]).toEqual([3, 5]);
    expect(ring.read().toString()).toBe('llo');
    expect(ring.read(4)).toEqual(Buffer.alloc(0));
  });

  test('a write into a full ring is partial, then returns 0', () => {
    const ring = new SharedRing(8);
    expect(ring.write(Buffer.from('0123456789'))).toBe(8);
    expect(ring.write(Buffer.from('x'))).toBe(0);
    expect(ring.read(3).toString()).toBe('012');
    expect(ring.write(Buffer.from('abcdef'), 1, 4)).toBe(3);
    expect(ring.read().toString()).toBe('34567bcd');
  });

  test('write and readInto honour offset and length', () => {
    const ring = new SharedRing(16);
    expect(ring.write(Buffer.from('..payload..'), 2, 7)).toBe(7);
    const target = Buffer.from('############');
    expect(ring.readInto(target, 3, 4)).toBe(4);
    expect(ring.readInto(target, 8)).toBe(3);
    expect(target.toString()).toBe('###payl#oad#');
    expect(catchError(() => ring.write(Buffer.alloc(4), 2, 3))).toBeInstanceOf(RangeError);
    expect(catchError(() => ring.readInto(Buffer.alloc(4), 5))).toBeInstanceOf(RangeError);
  });

  test.each([1, 2, 8, 64, 4096])('random writes and reads wrap around correctly (capacity %i)', (capacity) => {
    const ring = new SharedRing(capacity);
    const random = prng(capacity * 7919 + 1);
    const model: number[] = [];
    let next = 0;
    for (let step = 0; step < 4000; step++) {
      if (random(2) === 0) {
        const len = random(capacity * 2 + 1);
        const chunk = Buffer.alloc(len);
        for (let i = 0; i < len; i++) chunk[i] = (next + i) & 0xff;
        const n = ring.write(chunk);
        expect(n).toBe(Math.min(len, capacity - model.length));
        for (let i = 0; i < n; i++) model.push((next + i) & 0xff);
        next += n;
      } else {
        const max = random(capacity * 2 + 1);
        const out = random(2) === 0 ? ring.read(max) : (() => {
          const target = Buffer.alloc(max + 3);
          return target.subarray(3, 3 + ring.readInto(target, 3, max));
        })();
        expect([...out]).toEqual(model.splice(0, Math.min(max, model.length)));
      }
      expect(ring.available()).toBe(model.length);
    }
  });

  test('the byte counters wrap past 2^32 without losing data', () => {
    const ring = new SharedRing(64);
    const words = new Int32Array(ring.sab, 0, RING_HEADER_BYTES / 4);
    const start = 0xffffffc0 | 0; // 64 bytes before the counters wrap
    words[RING_LAYOUT.HEAD] = start;
    words[RING_LAYOUT.TAIL] = start;
    const random = prng(99);
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let total = 0;
    for (let i = 0; i < 500; i++) {
      const chunk = randomBytes(1 + random(100));
      const n = ring.write(chunk);
      sent.update(chunk.subarray(0, n));
      received.update(ring.read(1 + random(100)));
      total += n;
    }
    received.update(ring.read());
    expect(total).toBeGreaterThan(1000);
    expect(ring.writeCount).toBe((start + total) >>> 0);
    expect(ring.readCount).toBe(ring.writeCount);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
  });

  test('close is EOF once drained; a write after it fails with EPIPE', () => {
    const ring = new SharedRing(8);
    ring.write(Buffer.from('end'));
    ring.close();
    ring.close(); // idempotent
    expect(ring.closed).toBe(true);
    expect(ring.eof).toBe(false);
    expect(ring.waitReadable(0)).toBe(true);
    expect(ring.read().toString()).toBe('end');
    expect(ring.eof).toBe(true);
    expect(ring.waitReadable(null)).toBe(true); // EOF never blocks
    const err = catchError(() => ring.write(Buffer.from('x'))) as IOError;
    expect(err).toBeInstanceOf(IOError);
    expect(err.code).toBe('EPIPE');
  });

  test('a closed reader makes writes fail with EPIPE and wakes a waiting writer', async () => {
    const ring = new SharedRing(4);
    ring.write(Buffer.from('full'));
    const waiting = ring.waitWritableAsync(null);
    ring.closeReader();
    expect(await waiting).toBe(true);
    expect(ring.readerClosed).toBe(true);
    expect(ring.waitWritable(null)).toBe(true);
    expect((catchError(() => ring.write(Buffer.from('x'))) as IOError).code).toBe('EPIPE');
  });

  test('waits time out with false, and honour minimum amounts', async () => {
    const ring = new SharedRing(8);
    expect(ring.waitReadable(5)).toBe(false);
    expect(await ring.waitReadableAsync(5)).toBe(false);
    ring.write(Buffer.from('ab'));
    expect(ring.waitReadable(0)).toBe(true);
    expect(ring.waitReadable(5, 3)).toBe(false);
    expect(ring.waitReadable(0, 100)).toBe(false); // capped at the capacity, still short
    ring.write(Buffer.from('cdefgh'));
    expect(ring.waitReadable(0, 100)).toBe(true);
    expect(ring.waitWritable(5)).toBe(false);
    expect(await ring.waitWritableAsync(5)).toBe(false);
    ring.read(4);
    expect(ring.waitWritable(0, 4)).toBe(true);
    expect(ring.waitWritable(0, 5)).toBe(false);
  });

  test('waitReadableAsync resolves when data arrives later', async () => {
    const ring = new SharedRing(8);
    const waiting = ring.waitReadableAsync(null, 2);
    setTimeout(() => ring.write(Buffer.from('a')), 5);
    setTimeout(() => ring.write(Buffer.from('b')), 10);
    expect(await waiting).toBe(true);
    expect(ring.read().toString()).toBe('ab');
  });

  test('reads wake a writer waiting for space only once the space it asked for is there', async () => {
    const writer = new SharedRing(64);
    const reader = SharedRing.fromShared(writer.sab);
    const ctl = new Int32Array(writer.sab, 0, RING_HEADER_BYTES / 4);
    writer.write(Buffer.alloc(64, 1));
    let woke = false;
    const waiting = writer.waitWritableAsync(null, 32).then((ok) => ((woke = true), ok));
    // A bystander waiting on the writers' word sees only the notifications that reads send.
    const bystander = waitAsync(ctl, RING_LAYOUT.RSEQ, Atomics.load(ctl, RING_LAYOUT.RSEQ));
    let notified = false;
    void bystander.value.then(() => (notified = true));
    const tick = () => new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 31; i++) reader.read(1);
    await tick();
    expect([woke, notified, ctl[RING_LAYOUT.WANTERS]]).toEqual([false, false, 1]);
    reader.read(1); // 32 free now
    expect(await waiting).toBe(true);
    expect([notified, ctl[RING_LAYOUT.WANTERS]]).toEqual([true, 0]);
    // Nobody waiting: reads bump the word but notify no one.
    const quiet = waitAsync(ctl, RING_LAYOUT.RSEQ, Atomics.load(ctl, RING_LAYOUT.RSEQ), 30);
    reader.read(8);
    expect(await quiet.value).toBe('timed-out');
    // A closed reader always wakes the writer.
    const closing = writer.waitWritableAsync(null, 64);
    reader.closeReader();
    expect(await closing).toBe(true);
  });

  test('waitConsumedAsync: reads wake the writer once they reach the target, which the writer may move', async () => {
    const writer = new SharedRing(64);
    const reader = SharedRing.fromShared(writer.sab);
    const ctl = new Int32Array(writer.sab, 0, RING_HEADER_BYTES / 4);
    const tick = () => new Promise((r) => setTimeout(r, 5));
    writer.write(Buffer.alloc(40, 1));
    let woke = false;
    const waiting = writer.waitConsumedAsync(writer.readCount + 30).then(() => (woke = true));
    // The writer goes on writing: its target is a read count, not free space.
    reader.read(20);
    writer.write(Buffer.alloc(20, 2));
    const bystander = waitAsync(ctl, RING_LAYOUT.RSEQ, Atomics.load(ctl, RING_LAYOUT.RSEQ));
    let notified = false;
    void bystander.value.then(() => (notified = true));
    reader.read(9);
    await tick();
    expect([woke, notified]).toEqual([false, false]);
    reader.read(1);
    await waiting;
    expect([notified, ctl[RING_LAYOUT.WANTERS]]).toEqual([true, 0]);

    // Moved back to a count the reader has passed: resolves at once.
    const later = writer.waitConsumedAsync(writer.readCount + 10);
    reader.read(5);
    await tick();
    writer.retargetConsumed(writer.readCount);
    await later;
    // Moved forward: the reads short of the new target wake nothing.
    let done = false;
    const moved = writer.waitConsumedAsync(writer.readCount + 1).then(() => (done = true));
    writer.retargetConsumed(writer.readCount + 10);
    reader.read(9);
    await tick();
    expect(done).toBe(false);
    reader.closeReader(); // a closed end always wakes it
    await moved;
    expect(ctl[RING_LAYOUT.WANTERS]).toBe(0);
  });

  test('rings that come and go do not pile up resident memory (channel after channel)', () => {
    // In a child with --expose-gc, as the built package: 600 rings of 1 MiB, each barely
    // written, collected every 100. Taken from calloc, every ring after the first collection
    // was zero-filled page by page (~100 MiB resident here, gigabytes over thousands of
    // channels); mapped from the system, only the pages written count.
    const script = `
      const { SharedRing } = require('./dist/bridge/ring.js');
      const before = process.memoryUsage().rss;
      let peak = 0;
      for (let i = 1; i <= 600; i++) {
        new SharedRing(1 << 20).write(Buffer.alloc(100, 1));
        if (i % 100 === 0) { gc(); peak = Math.max(peak, process.memoryUsage().rss - before); }
      }
      console.log(JSON.stringify({ growthMiB: peak / 2 ** 20 }));
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 60000 });
    expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
    expect(JSON.parse(r.stdout).growthMiB).toBeLessThan(40);
  });

  test('the doorbell rings on every write, read and close of its end', () => {
    const array = new Int32Array(new SharedArrayBuffer(64));
    const writer = new SharedRing(8, { doorbell: { array, index: 3 } });
    const reader = SharedRing.fromShared(writer.sab);
    writer.write(Buffer.from('x'));
    expect(array[3]).toBe(1);
    reader.read(); // the reader's end has no doorbell
    expect(array[3]).toBe(1);
    writer.close();
    expect(array[3]).toBe(2);
  });
});

describe('a ring between the main thread and the transport worker', () => {
  const bridge = getBridge();
  const MiB = 1 << 20;

  /** Reads the ring to EOF, blocking, in reads of random sizes; returns count and SHA-256. */
  function drain(ring: SharedRing, maxRead: number, wait: (ring: SharedRing) => void): { bytes: number; sha256: string } {
    const hash = createHash('sha256');
    const target = Buffer.allocUnsafe(maxRead);
    const random = prng(5);
    let bytes = 0;
    for (;;) {
      const n = ring.readInto(target, 0, 1 + random(maxRead));
      if (n > 0) {
        hash.update(target.subarray(0, n));
        bytes += n;
      } else if (ring.eof) {
        return { bytes, sha256: hash.digest('hex') };
      } else {
        wait(ring);
      }
    }
  }

  /** Writes `total` bytes of random data in writes of random sizes, blocking, then closes. */
  function fill(ring: SharedRing, total: number, maxWrite: number): { bytes: number; sha256: string } {
    const pattern = randomBytes(MiB + 3);
    const hash = createHash('sha256');
    const random = prng(11);
    let written = 0;
    while (written < total) {
      const offset = written % pattern.length;
      const want = Math.min(total - written, 1 + random(maxWrite), pattern.length - offset);
      const n = ring.write(pattern, offset, want);
      if (n === 0) {
        ring.waitWritable(null);
        continue;
      }
      hash.update(pattern.subarray(offset, offset + n));
      written += n;
    }
    ring.close();
    return { bytes: written, sha256: hash.digest('hex') };
  }

  test('256 MiB from the worker to the main thread arrive intact', async () => {
    const ring = new SharedRing(MiB);
    const produced = bridge.callAsync('bridge', 'ringProduce', { sab: ring.sab, total: 256 * MiB, maxChunk: 300_000 });
    const received = drain(ring, 256 * 1024, (r) => r.waitReadable(null));
    expect(received).toEqual(await produced);
    expect(received.bytes).toBe(256 * MiB);
  });

  test('256 MiB from the main thread to the worker arrive intact', async () => {
    const ring = new SharedRing(MiB);
    const consumed = bridge.callAsync('bridge', 'ringConsume', { sab: ring.sab, maxRead: 200_000 });
    const sent = fill(ring, 256 * MiB, 300_000);
    expect(await consumed).toEqual(sent);
  });

  test('a small ring wraps thousands of times in both directions', async () => {
    const there = new SharedRing(4096);
    const consumed = bridge.callAsync('bridge', 'ringConsume', { sab: there.sab, maxRead: 5000 });
    const sent = fill(there, 8 * MiB, 6000);
    expect(await consumed).toEqual(sent);
    const back = new SharedRing(4096);
    const produced = bridge.callAsync('bridge', 'ringProduce', { sab: back.sab, total: 8 * MiB, maxChunk: 6000 });
    expect(drain(back, 5000, (r) => r.waitReadable(null))).toEqual(await produced);
  });

  test('the main thread waits on the doorbell through the bridge, servicing callbacks', async () => {
    const ring = new SharedRing(64 * 1024);
    let callbacks = 0;
    const off = bridge.onCallback('ring-progress', () => ++callbacks);
    try {
      bridge.call('bridge', 'callbackLater', { kind: 'ring-progress', delayMs: 1 });
      const produced = bridge.callAsync('bridge', 'ringProduce', { sab: ring.sab, total: 32 * MiB, maxChunk: 50_000, doorbell: true });
      const received = drain(ring, 100_000, (r) => bridge.waitUntil(() => r.available() > 0 || r.closed, null));
      expect(received).toEqual(await produced);
      expect(bridge.waitUntil(() => callbacks === 1, null)).toBe(true);
    } finally {
      off();
    }
  });

  test('a producer stops when the reader closes its end', async () => {
    const ring = new SharedRing(4096);
    const produced = bridge.callAsync<{ bytes: number }>('bridge', 'ringProduce', { sab: ring.sab, total: 64 * MiB, maxChunk: 1000 });
    ring.waitReadable(null, 4096);
    ring.closeReader();
    const { bytes } = await produced;
    expect(bytes).toBeLessThan(64 * MiB);
  });
});
