/**
 * SFTP's uint64 fields (sizes, offsets, statvfs counts) as plain numbers while they are exact
 * (up to 2^53 - 1, 8 PiB), as bigints beyond: a file of 5 GiB has an ordinary `number` size,
 * and nothing is ever rounded.
 */
import { SSHException } from '../errors';

export type Uint64 = number | bigint;

const TWO_32 = 2 ** 32;

/** A uint64 read at `off`, as a number when exact. */
export function readUint64(buf: Buffer, off: number): Uint64 {
  const hi = buf.readUInt32BE(off);
  const lo = buf.readUInt32BE(off + 4);
  // 2^53 - 1 has a high word of 0x1fffff.
  if (hi <= 0x1fffff) return hi * TWO_32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Writes a uint64 at `off`; numbers must be exact (safe) non-negative integers. */
export function writeUint64(buf: Buffer, value: Uint64, off: number): number {
  if (typeof value === 'bigint') {
    if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`uint64 out of range: ${value}`);
    buf.writeBigUInt64BE(value, off);
  } else {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`uint64 not an exact non-negative integer: ${value}`);
    buf.writeUInt32BE(Math.floor(value / TWO_32), off);
    buf.writeUInt32BE(value % TWO_32, off + 4);
  }
  return off + 8;
}

/** A uint64 as a number, or an error when it is not exact (an offset or length we must do arithmetic on). */
export function uint64ToNumber(value: Uint64, what: string): number {
  if (typeof value === 'number') return value;
  throw new SSHException(`${what} ${value} is beyond 2^53 and cannot be used as an offset`);
}

/** The sum of two uint64 values, exact. */
export function addUint64(a: Uint64, b: Uint64): Uint64 {
  if (typeof a === 'number' && typeof b === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s;
  }
  const big = BigInt(a) + BigInt(b);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}
