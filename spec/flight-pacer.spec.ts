import { ChannelCore, ChannelSink } from '../lib/transport/channel';
import { FlightPacer, HOLD_TIMEOUT_MS, LOCAL_RTT_MS, MIN_FLOOR } from '../lib/transport/flight-pacer';

const PACKET = 32768;
const WINDOW = 2 * 1024 * 1024;

/** A pacer on a hand-moved clock. */
function pacerAt(window = WINDOW): { p: FlightPacer; clock: { t: number } } {
  const clock = { t: 1000 };
  return { p: new FlightPacer(PACKET, window, () => clock.t), clock };
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
  it('limits nothing before it has measured the path', () => {
    const { p } = pacerAt();
    expect(p.pacing).toBe(false);
    p.onSent(WINDOW - 1);
    expect(p.allowance(1)).toBe(1);
    expect(p.cap).toBe(Infinity);
    expect(p.pacedPeak).toBe(0);
    expect(p.summary).toBe('not paced: 0 round trips measured');
    expect(pacerAt().p.summary).toBeNull();
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
    const { p, clock } = pacerAt(256 * 1024);
    roundTrips(p, clock, 8, 0.2, 256 * 1024);
    expect(p.cap).toBe(MIN_FLOOR);
    expect(p.allowance(100)).toBe(100);
  });

  it('does not limit a remote path', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, 50, LOCAL_RTT_MS + 1);
    expect(p.pacing).toBe(false);
    p.onSent(WINDOW);
    expect(p.allowance(WINDOW)).toBe(WINDOW);
    expect(p.summary).toBe(`not paced: quickest round trip ${(LOCAL_RTT_MS + 1).toFixed(2)} ms`);
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

  it('lets the twice-the-link estimate raise the cap for a fast local peer', () => {
    const { p, clock } = pacerAt();
    // 1 ms round trips at 4 packets per 0.1 ms: about 1.3 GB/s, 2.6 MB for two round trips.
    for (let i = 0; i < 40; i++) {
      for (let k = 0; k < 4; k++) p.onSent(PACKET);
      clock.t += 0.1;
      if (i >= 10) p.onAdjust(4 * PACKET, WINDOW);
    }
    // The first adjusts acknowledge sends of 1 ms before: that is the shortest round trip.
    expect(p.pacing).toBe(true);
    expect(p.cap).toBeGreaterThan(2 * 1024 * 1024);
  });

  it('lifts the limit after release until the next adjust', () => {
    const { p, clock } = pacerAt();
    roundTrips(p, clock, 8, 0.2);
    const cap = p.cap;
    p.onSent(cap);
    expect(p.allowance(WINDOW - cap)).toBe(0);
    p.release();
    expect(p.allowance(WINDOW - cap)).toBe(WINDOW - cap);
    p.onSent(WINDOW - cap);
    p.onAdjust(PACKET, PACKET);
    expect(p.cap).toBe(cap);
    expect(p.allowance(PACKET)).toBe(0);
  });
});

describe('FlightPacer.summary', () => {
  it('names a release as why pacing never applied when every send came after one', () => {
    const { p, clock } = pacerAt();
    for (let i = 0; i < 8; i++) p.onSent(PACKET);
    for (let i = 0; i < 8; i++) {
      clock.t += 0.2;
      p.onAdjust(PACKET, WINDOW);
    }
    expect(p.pacing).toBe(true);
    p.release();
    p.onSent(PACKET);
    expect(p.summary).toBe(`not paced: released 1 times (no adjust within ${HOLD_TIMEOUT_MS} ms)`);
    clock.t += 0.2;
    p.onAdjust(PACKET, WINDOW);
    p.onSent(PACKET);
    expect(p.summary).toBe(`paced: at most ${PACKET} in flight`);
  });
});

describe('ChannelCore pacing a local peer', () => {
  afterEach(() => jest.useRealTimers());

  /** An open channel whose peer acknowledged 8 packets within 0.2 ms each (a local path). */
  function localChannel(): { ch: ChannelCore; writable: jest.Mock; sentBytes: () => number } {
    jest.useFakeTimers();
    let bytes = 0;
    const ch = new ChannelCore(0, 'session', WINDOW, PACKET, (payload) => void (bytes += payload.length - 9));
    ch.opened(1, WINDOW, PACKET);
    const writable = jest.fn();
    const sink: ChannelSink = { data: () => undefined, eof: () => undefined, closed: () => undefined, writable };
    ch.sink = sink;
    for (let i = 0; i < 8; i++) {
      ch.write(Buffer.alloc(PACKET));
      jest.advanceTimersByTime(0.2);
      ch.onWindowAdjust(PACKET);
    }
    return { ch, writable, sentBytes: () => bytes };
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

  it('a held peer that sends no adjust gets the whole window after the hold timeout', () => {
    const { ch, writable } = localChannel();
    ch.write(Buffer.alloc(WINDOW));
    expect(ch.writableBytes).toBe(0);
    writable.mockClear();
    jest.advanceTimersByTime(HOLD_TIMEOUT_MS - 1);
    expect(writable).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(writable).toHaveBeenCalledTimes(1);
    expect(ch.writableBytes).toBe(ch.remoteWindow);
    expect(ch.write(Buffer.alloc(WINDOW))).toBe(WINDOW - (WINDOW / 2 + PACKET));
  });

  it('a closed channel leaves no timer behind', () => {
    const { ch } = localChannel();
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
});
