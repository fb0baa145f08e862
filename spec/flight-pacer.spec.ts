import * as net from 'node:net';
import * as os from 'node:os';
import { PassThrough } from 'node:stream';
import { ChannelCore, ChannelSink } from '../lib/transport/channel';
import { peerIsThisMachine } from '../lib/worker/ssh/connection';
import { CLEARLY_REMOTE_RTT_MS, CLEARLY_REMOTE_SAMPLES, FlightPacer, LOCAL_RTT_MS, LOOPBACK_CAP, MIN_FLOOR, REMOTE_SAMPLES, SAFETY_HOLD_MS, SAMPLES_BEFORE_PACING, START_HOLD_MS } from '../lib/transport/flight-pacer';

const PACKET = 32768;
const WINDOW = 2 * 1024 * 1024;

/** A pacer on a hand-moved clock. */
function pacerAt(window = WINDOW, loopback = false, smallStepPeer = false): { p: FlightPacer; clock: { t: number } } {
  const clock = { t: 1000 };
  return { p: new FlightPacer(PACKET, window, () => clock.t, { loopback, smallStepPeer }), clock };
}

/** Sends `packets` packets and has each acknowledged `rtt` ms later, one adjust per packet. */
function roundTrips(p: FlightPacer, clock: { t: number }, packets: number, rtt: number, window = WINDOW): void {
  for (let i = 0; i < packets; i++) {
    p.onSent(PACKET);
    clock.t += rtt;
    p.onAdjust(PACKET, window);
  }
}

describe('FlightPacer', () => {
  it('holds the first burst to half the window plus a packet until the path is measured', () => {
    const { p } = pacerAt();
    expect(p.pacing).toBe(false);
    expect(p.starting).toBe(true);
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
    p.onSent(WINDOW / 2);
    expect(p.allowance(WINDOW / 2)).toBe(PACKET);
    // Not the measured limit: nothing is reported as paced.
    p.onSent(PACKET);
    expect(p.pacedPeak).toBe(0);
    expect(p.summary).toBe('not paced: 0 round trips measured');
    expect(pacerAt().p.summary).toBeNull();
  });

  it('takes the path as remote only after REMOTE_SAMPLES slow round trips', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, REMOTE_SAMPLES - 1, LOCAL_RTT_MS + 5);
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
    roundTrips(p, clock, 1, LOCAL_RTT_MS + 5);
    expect(p.starting).toBe(false);
    expect(p.cap).toBe(Infinity);
  });

  it('takes a clearly distant path as remote after CLEARLY_REMOTE_SAMPLES round trips', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, CLEARLY_REMOTE_SAMPLES - 1, CLEARLY_REMOTE_RTT_MS);
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
    roundTrips(p, clock, 1, CLEARLY_REMOTE_RTT_MS);
    expect([p.starting, p.cap]).toEqual([false, Infinity]);
  });

  it('lets a peer that adjusts in large steps have its whole window after its first adjust', () => {
    const { p, clock } = pacerAt();
    p.onSent(WINDOW / 2 + PACKET);
    clock.t += 0.2;
    p.onAdjust(WINDOW / 2, WINDOW / 2 - PACKET + WINDOW / 2);
    expect(p.starting).toBe(false);
    expect(p.cap).toBe(Infinity);
  });

  it('on a loopback socket holds a small-step peer to LOOPBACK_CAP, however slow its round trips, once one was quick', () => {
    const { p, clock } = pacerAt(WINDOW, true);
    // Before any adjust, nothing says how the peer adjusts: the first burst is the floor.
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
    // A loaded peer's queue: slow round trips, and one quick among them (sshd's came by the 30th).
    roundTrips(p, clock, REMOTE_SAMPLES - 2, 25);
    roundTrips(p, clock, 1, LOCAL_RTT_MS / 2);
    roundTrips(p, clock, 2 * REMOTE_SAMPLES, 25);
    expect(p.pacing).toBe(true);
    expect(p.cap).toBe(LOOPBACK_CAP);
    p.onSent(LOOPBACK_CAP);
    expect(p.summary).toBe(`paced: at most ${LOOPBACK_CAP} in flight`);
  });

  it('lifts the loopback cap once CLEARLY_REMOTE_SAMPLES round trips, none within CLEARLY_REMOTE_RTT_MS, show a tunnel to a distant end', () => {
    // ssh -L or a SOCKS proxy: the socket's peer is this machine, the server is 20 ms away.
    const { p, clock } = pacerAt(WINDOW, true, true);
    expect(p.cap).toBe(LOOPBACK_CAP);
    roundTrips(p, clock, CLEARLY_REMOTE_SAMPLES - 1, CLEARLY_REMOTE_RTT_MS * 2);
    expect([p.pacing, p.cap]).toEqual([true, LOOPBACK_CAP]);
    roundTrips(p, clock, 1, CLEARLY_REMOTE_RTT_MS * 2);
    expect([p.pacing, p.starting, p.cap]).toEqual([false, false, Infinity]);
    expect(p.allowance(WINDOW)).toBe(WINDOW);
    expect(p.summary).toBe(`paced: at most ${PACKET} in flight until round trips showed a remote path (quickest 20.00 ms of 16)`);
    // A quick round trip later after all (the far end was this machine): held again.
    roundTrips(p, clock, 1, LOCAL_RTT_MS / 2);
    expect([p.pacing, p.cap]).toEqual([true, LOOPBACK_CAP]);
  });

  it('takes a loopback path with round trips between LOCAL_RTT_MS and CLEARLY_REMOTE_RTT_MS as remote after REMOTE_SAMPLES', () => {
    const { p, clock } = pacerAt(WINDOW, true, true);
    const rtt = (LOCAL_RTT_MS + CLEARLY_REMOTE_RTT_MS) / 2;
    roundTrips(p, clock, REMOTE_SAMPLES - 1, rtt);
    expect([p.pacing, p.cap]).toEqual([true, LOOPBACK_CAP]);
    roundTrips(p, clock, 1, rtt);
    expect([p.pacing, p.cap]).toEqual([false, Infinity]);
  });

  it('on loopback keeps twice the largest adjust in flight, at most the floor', () => {
    const { p, clock } = pacerAt(WINDOW, true);
    p.onSent(WINDOW / 2 + PACKET);
    clock.t += 0.2;
    // 192 KiB back at once (under a quarter of the window: still small steps).
    p.onAdjust(6 * PACKET, WINDOW - (WINDOW / 2 + PACKET) + 6 * PACKET);
    expect(p.cap).toBe(12 * PACKET);
    // A larger one later (the smallest still says small steps): twice it passes the floor.
    clock.t += 0.2;
    p.onAdjust(600000, WINDOW - (p.inFlight - 600000));
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
  });

  it('takes OpenSSH (the hint) as a small-step peer from its first byte, but releases it if it never adjusts', () => {
    const { p, clock } = pacerAt(WINDOW, true, true);
    expect(p.pacing).toBe(true);
    expect(p.cap).toBe(LOOPBACK_CAP);
    p.onSent(LOOPBACK_CAP);
    expect(p.allowance(WINDOW - LOOPBACK_CAP)).toBe(0);
    // A hint is not proof: no adjust at all within START_HOLD_MS, and the window is its own.
    expect(p.holdTimeout).toBe(START_HOLD_MS);
    expect(p.release()).toBe(true);
    expect(p.allowance(WINDOW - LOOPBACK_CAP)).toBe(WINDOW - LOOPBACK_CAP);
    p.onSent(WINDOW - LOOPBACK_CAP);
    // Its adjust returns half the window: large steps, never limited again.
    clock.t += 0.2;
    p.onAdjust(WINDOW / 2, WINDOW / 2);
    expect(p.cap).toBe(Infinity);
  });

  it('does not apply the loopback cap to a path that is only measured local', () => {
    const { p, clock } = pacerAt(WINDOW, false, true);
    roundTrips(p, clock, 8, 0.2);
    expect(p.pacing).toBe(true);
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
  });

  it('on a local path holds what is in flight to half the peak window plus a packet', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, 8, 0.2);
    expect(p.pacing).toBe(true);
    const cap = WINDOW / 2 + PACKET;
    expect(p.cap).toBe(cap);
    p.onSent(cap - 1000);
    // The peer still allows its whole window; the pacer allows what is left under the cap.
    expect(p.allowance(WINDOW)).toBe(1000);
    p.onSent(1000);
    expect(p.allowance(WINDOW)).toBe(0);
    expect(p.pacedPeak).toBe(cap);
    expect(p.summary).toBe(`paced: at most ${cap} in flight`);
    clock.t += 0.2;
    p.onAdjust(PACKET, WINDOW - cap + PACKET);
    expect(p.allowance(WINDOW)).toBe(PACKET);
  });

  it('never goes below the floor for a small window, nor above the window the peer gives', () => {
    // Adjusts of a packet, a sixteenth of the window: small steps.
    const { p, clock } = pacerAt(512 * 1024);
    roundTrips(p, clock, 8, 0.2, 512 * 1024);
    expect(p.pacing).toBe(true);
    expect(p.cap).toBe(MIN_FLOOR);
    expect(p.allowance(100)).toBe(100);
  });

  it('does not limit a remote path', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, REMOTE_SAMPLES, LOCAL_RTT_MS + 1);
    expect(p.pacing).toBe(false);
    p.onSent(WINDOW);
    expect(p.allowance(WINDOW)).toBe(WINDOW);
    expect(p.summary).toBe(`not paced: quickest round trip ${(LOCAL_RTT_MS + 1).toFixed(2)} ms`);
  });

  it('a quick round trip after SAMPLES_BEFORE_PACING makes the path local', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, SAMPLES_BEFORE_PACING - 1, 0.2);
    expect(p.pacing).toBe(false);
    roundTrips(p, clock, 1, 0.2);
    expect(p.pacing).toBe(true);
  });

  it('follows a window the peer grows: half of the largest one plus a packet', () => {
    const { p, clock } = pacerAt(64 * 1024);
    // OpenSSH's client opens small and grows the window at once: past what is in flight, an
    // adjust is growth, not an acknowledgement.
    p.onSent(PACKET);
    p.onAdjust(8 * 1024 * 1024, 8 * 1024 * 1024);
    expect(p.inFlight).toBe(0);
    roundTrips(p, clock, 8, 0.1, 8 * 1024 * 1024);
    expect(p.cap).toBe(4 * 1024 * 1024 + PACKET);
  });

  it('keeps a fast local peer at the floor: a deeper queue only slows it', () => {
    const { p, clock } = pacerAt();
    // 1 ms round trips at 4 packets per 0.1 ms: about 1.3 GB/s.
    for (let i = 0; i < 40; i++) {
      for (let k = 0; k < 4; k++) p.onSent(PACKET);
      clock.t += 0.1;
      // The window left once these four are back: the peer's, less what is still in flight.
      if (i >= 10) p.onAdjust(4 * PACKET, WINDOW - (p.inFlight - 4 * PACKET));
    }
    expect(p.pacing).toBe(true);
    expect(p.cap).toBe(WINDOW / 2 + PACKET);
  });

  it('holds a peer that adjusts in small steps until SAFETY_HOLD_MS pass with no adjust, then never again', () => {
    const { p, clock } = pacerAt(WINDOW, true);
    roundTrips(p, clock, 8, 0.2);
    const cap = p.cap;
    expect(cap).toBe(LOOPBACK_CAP);
    p.onSent(cap);
    expect(p.allowance(WINDOW - cap)).toBe(0);
    expect(p.holdTimeout).toBe(SAFETY_HOLD_MS);
    expect(p.release()).toBe(true);
    expect(p.allowance(WINDOW - cap)).toBe(WINDOW - cap);
    // Its adjusts, small as before, do not bring the limit back: the pacer misjudged this peer.
    clock.t += 0.2;
    p.onAdjust(PACKET, WINDOW - cap + PACKET);
    roundTrips(p, clock, 8, 0.2);
    expect(p.cap).toBe(Infinity);
    expect(p.pacing).toBe(false);
    expect(p.summary).toBe(`paced until the peer left ${cap} bytes in flight ${SAFETY_HOLD_MS} ms unacknowledged with window left; not paced after that`);
    // Nothing left to lift.
    expect(p.release()).toBe(false);
  });

  it('releases a peer that has not adjusted yet (after START_HOLD_MS) until its first adjust', () => {
    const { p, clock } = pacerAt();
    const cap = p.cap;
    p.onSent(cap);
    expect(p.holdTimeout).toBe(START_HOLD_MS);
    expect(p.release()).toBe(true);
    expect(p.allowance(WINDOW - cap)).toBe(WINDOW - cap);
    p.onSent(WINDOW - cap);
    // Its first adjust returns the whole window at once: large steps, never limited again.
    clock.t += 0.2;
    p.onAdjust(WINDOW, WINDOW);
    expect(p.cap).toBe(Infinity);
  });
});

describe('ChannelCore pacing a local peer', () => {
  afterEach(() => jest.useRealTimers());

  /** An open channel (on fake timers) whose peer has not adjusted yet. */
  function openChannel(): { ch: ChannelCore; writable: jest.Mock } {
    jest.useFakeTimers();
    const ch = new ChannelCore(0, 'session', WINDOW, PACKET, () => undefined);
    ch.opened(1, WINDOW, PACKET);
    const writable = jest.fn();
    const sink: ChannelSink = { data: () => undefined, eof: () => undefined, closed: () => undefined, writable };
    ch.sink = sink;
    return { ch, writable };
  }

  /** An open channel whose peer acknowledged 8 packets within 0.2 ms each (a local path). */
  function localChannel(): { ch: ChannelCore; writable: jest.Mock } {
    const opened = openChannel();
    for (let i = 0; i < 8; i++) {
      opened.ch.write(Buffer.alloc(PACKET));
      jest.advanceTimersByTime(0.2);
      opened.ch.onWindowAdjust(PACKET);
    }
    return opened;
  }

  it('stops at the cap with window left, and an adjust makes it writable again', () => {
    const { ch, writable } = localChannel();
    const cap = WINDOW / 2 + PACKET;
    expect(ch.write(Buffer.alloc(WINDOW))).toBe(cap);
    expect(ch.remoteWindow).toBe(WINDOW - cap);
    expect(ch.writableBytes).toBe(0);
    writable.mockClear();
    ch.onWindowAdjust(PACKET);
    expect(writable).toHaveBeenCalledTimes(1);
    expect(ch.writableBytes).toBe(PACKET);
  });

  it('a held peer that adjusts in small steps stays held while it adjusts, and one timer serves every hold', () => {
    const { ch, writable } = localChannel();
    ch.write(Buffer.alloc(WINDOW));
    expect(ch.writableBytes).toBe(0);
    // 100 holds, each ended by an adjust after 0.9 SAFETY_HOLD_MS: 90 seconds of a slow reader.
    for (let i = 0; i < 100; i++) {
      jest.advanceTimersByTime(0.9 * SAFETY_HOLD_MS);
      writable.mockClear();
      ch.onWindowAdjust(PACKET);
      expect(writable).toHaveBeenCalledTimes(1);
      expect(ch.write(Buffer.alloc(WINDOW))).toBe(PACKET);
      expect(ch.writableBytes).toBe(0);
      expect(jest.getTimerCount()).toBe(1);
    }
  });

  it('a held peer that adjusted before gets the rest of its window, for good, after SAFETY_HOLD_MS with no adjust', () => {
    const { ch, writable } = localChannel();
    const cap = WINDOW / 2 + PACKET;
    expect(ch.write(Buffer.alloc(WINDOW))).toBe(cap);
    writable.mockClear();
    jest.advanceTimersByTime(SAFETY_HOLD_MS - 1);
    expect(writable).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(writable).toHaveBeenCalledTimes(1);
    expect(ch.writableBytes).toBe(WINDOW - cap);
    expect(ch.write(Buffer.alloc(WINDOW))).toBe(WINDOW - cap);
    // Adjusts come back, and each is used in full: the pacing has ended.
    for (let i = 0; i < 8; i++) {
      ch.onWindowAdjust(4 * PACKET);
      expect(ch.write(Buffer.alloc(WINDOW))).toBe(4 * PACKET);
    }
    expect(ch.pacingNote).toMatch(/not paced after that/);
  });

  it('a peer that has not adjusted yet gets the whole window after START_HOLD_MS', () => {
    const { ch, writable } = openChannel();
    const cap = WINDOW / 2 + PACKET;
    expect(ch.write(Buffer.alloc(WINDOW))).toBe(cap);
    jest.advanceTimersByTime(START_HOLD_MS - 1);
    expect(writable).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(writable).toHaveBeenCalledTimes(1);
    expect(ch.writableBytes).toBe(WINDOW - cap);
    expect(ch.write(Buffer.alloc(WINDOW))).toBe(WINDOW - cap);
  });

  it('a closed channel leaves no timer behind', () => {
    // A peer not adjusted yet: the one kind a hold timer is armed for.
    const { ch } = openChannel();
    ch.write(Buffer.alloc(WINDOW));
    expect(ch.writableBytes).toBe(0);
    expect(jest.getTimerCount()).toBe(1);
    ch.finish(null);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('FlightPacer and a peer that returns window in large steps', () => {
  it('leaves alone a peer that adjusts half its window at a time (it keeps its own buffer)', () => {
    const { p, clock } = pacerAt();
    for (let i = 0; i < 8; i++) {
      p.onSent(WINDOW / 2);
      clock.t += 0.2;
      p.onAdjust(WINDOW / 2, WINDOW);
    }
    expect(p.pacing).toBe(false);
    p.onSent(WINDOW);
    expect(p.allowance(WINDOW)).toBe(WINDOW);
    expect(p.summary).toBe('not paced: the peer returns window in large steps');
  });

  it('does not take a window grown while a few bytes were in flight for a small step (it held a 16 MiB put at 256 KiB for good)', () => {
    // Our SFTP server grows a session's window to 16 MiB as the subsystem starts; the client's
    // INIT (9 bytes) may be in flight then. Its real steps are a quarter of 16 MiB.
    const { p, clock } = pacerAt(WINDOW, true, false);
    p.onSent(9);
    clock.t += 0.2;
    p.onAdjust(7 * WINDOW, 8 * WINDOW - 9 + 9);
    expect(p.pacing).toBe(false);
    expect(p.inFlight).toBe(0);
    for (let i = 0; i < 4; i++) {
      p.onSent(2 * WINDOW);
      clock.t += 0.2;
      p.onAdjust(2 * WINDOW, 8 * WINDOW);
    }
    expect([p.pacing, p.cap]).toEqual([false, Infinity]);
  });

  it('takes a quarter of the window per adjust (paramiko-ts itself) as large steps, under an eighth (Paramiko, OpenSSH) as small', () => {
    for (const [step, small] of [[WINDOW / 4, false], [WINDOW / 8, false], [WINDOW / 10, true]] as const) {
      const { p, clock } = pacerAt(WINDOW, true);
      for (let i = 0; i < 8; i++) {
        p.onSent(step);
        clock.t += 0.2;
        p.onAdjust(step, WINDOW);
      }
      expect([step, p.pacing]).toEqual([step, small]);
    }
  });
});

describe('peerIsThisMachine (which connections pace from the start)', () => {
  it('is true for a loopback peer and for one of our own interfaces, false for anything else', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as net.AddressInfo).port;
    const connect = (host: string) =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, host, () => resolve(s));
        s.on('error', reject);
      });
    try {
      const own = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
      for (const host of ['127.0.0.1', ...(own ? [own.address] : [])]) {
        const s = await connect(host);
        expect([host, peerIsThisMachine(s)]).toEqual([host, true]);
        s.destroy();
      }
      // Not connected (no peer address), or not a socket at all (a proxy's stream).
      expect(peerIsThisMachine(new net.Socket())).toBe(false);
      expect(peerIsThisMachine(new PassThrough())).toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
