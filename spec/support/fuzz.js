'use strict';
/**
 * What the fuzzing tests share (spec/fuzz.spec.ts, and spec/support/hostile/fake-server.js,
 * which runs as plain JavaScript): a seeded xorshift32, and the channel traffic both sides of a
 * connection may send (data, extended data, window adjusts) built on the library's Message.
 */

/** A repeatable stream of numbers from `seed` (never 0: xorshift would stay there). */
function seeded(seed) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (items) => items[int(items.length)];
  /** A 32-bit field: mostly the edges (0, 1, 2^31-1, 2^32-1...), sometimes anything. */
  const u32 = () => pick([0, 1, 2, 0x7fffffff, 0xffffffff, 32768, int(2 ** 32)]);
  return { next, int, pick, u32 };
}

/** Appends one of CHANNEL_DATA (up to `maxData` bytes), EXTENDED_DATA or WINDOW_ADJUST for `channel` to `m`. */
function channelTraffic(r, m, channel, maxData) {
  switch (r.int(3)) {
    case 0:
      return m.addByte(94).addInt(channel).addString(Buffer.alloc(r.int(maxData), 0x61));
    case 1:
      return m.addByte(95).addInt(channel).addInt(r.pick([1, 2, 0xffffffff])).addString(Buffer.alloc(r.int(3000), 0x62));
    default:
      return m.addByte(93).addInt(channel).addInt(r.u32());
  }
}

module.exports = { seeded, channelTraffic };
