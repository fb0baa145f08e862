/**
 * WorkerChannel's flow control, on one thread: the rings the main thread reads, the wake-ups
 * that return the SSH window as it reads, and what the peer is told (WINDOW_ADJUST payloads).
 */
import { SharedRing } from '../lib/bridge/ring';
import { RING_HEADER_BYTES, RING_LAYOUT } from '../lib/bridge/ring';
import { MSG } from '../lib/transport/constants';
import { ChannelCore } from '../lib/transport/channel';
import { WorkerChannel } from '../lib/worker/ssh/channel';
import { EventEmitter } from 'node:events';
import { WorkerConnection } from '../lib/worker/ssh/connection';
import { defaultPreferences } from '../lib/transport/algorithms';

const WINDOW = 64 * 1024;
const PACKET = 8 * 1024;

/** A channel open to a peer that records what we send it, and the main thread's end of its rings. */
function openChannel() {
  const sent: Buffer[] = [];
  const core = new ChannelCore(0, 'session', WINDOW, PACKET, (p) => sent.push(Buffer.from(p)));
  core.opened(7, 1 << 20, PACKET);
  const bell = { array: new Int32Array(new SharedArrayBuffer(64)), index: 0 };
  const ch = new WorkerChannel(core, bell, () => undefined);
  const info = ch.info();
  const stdout = SharedRing.fromShared(info.stdout);
  const stderr = SharedRing.fromShared(info.stderr);
  /** Window returned to the peer so far. */
  const adjusted = () =>
    sent.filter((p) => p[0] === MSG.CHANNEL_WINDOW_ADJUST).reduce((n, p) => n + p.readUInt32BE(5), 0);
  return { core, ch, stdout, stderr, adjusted };
}

/** Lets posted tasks (Atomics.waitAsync wake-ups) and the microtasks after them run. */
const settle = () => new Promise((r) => setTimeout(r, 5));

/** How many Atomics waiters (sync or async) sit on a ring's read-sequence word; wakes them to count. */
function waitersOnReads(ring: SharedRing): number {
  return Atomics.notify(new Int32Array(ring.sab, 0, RING_HEADER_BYTES / 4), RING_LAYOUT.RSEQ);
}

describe('WorkerChannel flow control', () => {
  test('data arriving into a drained ring, again and again, leaves one wait per ring, not one per arrival', async () => {
    const { core, stdout, stderr } = openChannel();
    const chunk = Buffer.alloc(1024, 7);
    core.onData(chunk, 0);
    core.onData(chunk, 1);
    for (let i = 0; i < 40; i++) {
      // The main thread drains both rings, and more arrives before the worker looks at them.
      stdout.read();
      stderr.read();
      core.onData(chunk, 0);
      core.onData(chunk, 1);
      await settle();
    }
    expect(waitersOnReads(stdout)).toBeLessThanOrEqual(1);
    expect(waitersOnReads(stderr)).toBeLessThanOrEqual(1);
  });

  test('wake-ups of the sending side (window adjustments) leave one wait for the stdin ring', async () => {
    const { core, ch } = openChannel();
    const stdin = SharedRing.fromShared(ch.info().stdin);
    for (let i = 0; i < 40; i++) {
      core.onWindowAdjust(1024);
      ch.writable();
      await settle();
    }
    const words = new Int32Array(stdin.sab, 0, RING_HEADER_BYTES / 4);
    expect(Atomics.notify(words, RING_LAYOUT.WSEQ)).toBeLessThanOrEqual(1);
    // And it still sends what the main thread writes.
    stdin.write(Buffer.from('hello'));
    await settle();
    expect(core.remoteWindow).toBe((1 << 20) + 40 * 1024 - 5);
  });

  test('what the main thread reads while the worker sets up its next wait is counted (no stall)', async () => {
    const { core, stdout, adjusted } = openChannel();
    const packet = Buffer.alloc(PACKET, 1);
    for (let i = 0; i < WINDOW / PACKET; i++) core.onData(packet, 0);
    expect(core.localWindow).toBe(0);
    await settle();
    // The other thread's timing, made to happen at the worst moment: once the worker has
    // acknowledged the next read, it drains the ring just before the worker picks its next
    // target (the window is still spent, so that target is "any further read").
    const own = Object.getOwnPropertyDescriptor(ChannelCore.prototype, 'consumptionBeforeAdjust')!;
    let armed = false;
    let read = 0;
    Object.defineProperty(core, 'consumptionBeforeAdjust', {
      get() {
        if (armed) {
          armed = false;
          read += stdout.read().length;
        }
        return own.get!.call(core);
      },
    });
    read += stdout.read(1).length;
    armed = true;
    await settle();
    expect(read).toBe(WINDOW);
    expect(adjusted()).toBe(WINDOW);
  });

  test('a closed channel leaves no wait behind on its rings (a pending wait would hold the channel)', async () => {
    const { core, ch, stdout, stderr } = openChannel();
    const stdin = SharedRing.fromShared(ch.info().stdin);
    core.onData(Buffer.alloc(1000, 1), 0);
    core.onData(Buffer.alloc(1000, 2), 1);
    await settle();
    // The peer closes with data unread: the main thread may still read it, nobody waits for it.
    core.onEof();
    core.onClose();
    await settle();
    const words = (ring: SharedRing) => new Int32Array(ring.sab, 0, RING_HEADER_BYTES / 4);
    for (const ring of [stdout, stderr, stdin]) {
      expect([Atomics.notify(words(ring), RING_LAYOUT.RSEQ), Atomics.notify(words(ring), RING_LAYOUT.WSEQ)]).toEqual([0, 0]);
    }
    expect(stdout.read().length).toBe(1000);
    expect(stderr.read().length).toBe(1000);
  });

  test('a quarter of the window read goes back to the peer at once, less waits', async () => {
    const { core, stdout, adjusted } = openChannel();
    for (let i = 0; i < 4; i++) core.onData(Buffer.alloc(PACKET, 1), 0);
    stdout.read(WINDOW / 4 - 1);
    await settle();
    expect(adjusted()).toBe(0);
    stdout.read(1);
    await settle();
    expect(adjusted()).toBe(WINDOW / 4);
  });

  test('the window comes back in quarters while the peer has window, and at the next read once it has none', async () => {
    const { core, stdout, stderr, adjusted } = openChannel();
    const packet = Buffer.alloc(PACKET, 1);
    let read = 0;
    const take = (ring: SharedRing, n?: number) => (read += ring.read(n).length);
    // 8 KiB read of 32 KiB sent: under a quarter of the window, nothing to tell the peer yet.
    for (let i = 0; i < 4; i++) core.onData(packet, 0);
    take(stdout, PACKET);
    await settle();
    expect(adjusted()).toBe(0);
    // The rest of the window, on both streams, while the main thread reads nothing: once the
    // window is short of a packet, what had been read goes back at once.
    for (let i = 0; i < 2; i++) core.onData(packet, 0);
    expect(adjusted()).toBe(0);
    core.onData(packet, 1);
    expect(adjusted()).toBe(read);
    core.onData(Buffer.alloc(core.localWindow, 2), 1);
    expect(core.localWindow).toBe(0);
    await settle();
    expect(adjusted()).toBe(read);
    // The peer can send nothing now: any read wakes the worker, which returns it.
    take(stderr, 100);
    await settle();
    expect(adjusted()).toBe(read);
    // 100 bytes are not a packet: the next read goes back at once too.
    take(stdout, PACKET);
    await settle();
    expect(adjusted()).toBe(read);
    // With a packet's worth of window, reads go back in quarters again, whichever ring.
    take(stderr, 1000);
    await settle();
    expect(adjusted()).toBe(read - 1000);
    take(stderr);
    await settle();
    expect(adjusted()).toBe(read);
    expect(core.localWindow).toBe(WINDOW - stdout.available());
  });
});

describe('WorkerConnection forwarders', () => {
  it('a forward whose listener finished starting after the connection ended is stopped at once, not kept', () => {
    const sock = Object.assign(new EventEmitter(), { write: () => true, end: () => undefined, destroy: () => undefined, destroyed: false });
    const c = new WorkerConnection(sock as never, { role: 'client', preferences: defaultPreferences() });
    let stopped = 0;
    c.addForwarder(() => stopped++);
    c.die(new Error('connection lost'));
    expect(stopped).toBe(1); // the one registered before: stopped with the connection
    expect(() => c.addForwarder(() => stopped++)).toThrow(/the connection ended before the forward was listening/);
    expect(stopped).toBe(2);
  });
});
