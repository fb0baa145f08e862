/** Conversions between bigint and big-endian byte strings, as SSH's mpint and DER need. */

/** Unsigned big-endian magnitude of a non-negative bigint, no leading zeros ([] for 0). */
export function bigintToBytes(n: bigint): Buffer {
  if (n < 0n) throw new RangeError('bigintToBytes takes a non-negative value');
  if (n === 0n) return Buffer.alloc(0);
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}

/** Unsigned big-endian bytes to bigint. */
export function bytesToBigint(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));
}

/** Unsigned value left-padded with zeros to `length` bytes (throws if it does not fit). */
export function bigintToFixed(n: bigint, length: number): Buffer {
  const raw = bigintToBytes(n);
  if (raw.length > length) throw new RangeError(`value needs ${raw.length} bytes, more than ${length}`);
  if (raw.length === length) return raw;
  const out = Buffer.alloc(length);
  raw.copy(out, length - raw.length);
  return out;
}

/**
 * Two's-complement big-endian encoding with the fewest bytes (RFC 4251 section 5, mpint):
 * a positive value whose top bit is set gets a leading zero byte, zero is empty.
 */
export function encodeMpint(n: bigint): Buffer {
  if (n === 0n) return Buffer.alloc(0);
  if (n > 0n) {
    const raw = bigintToBytes(n);
    return raw[0] & 0x80 ? Buffer.concat([Buffer.from([0]), raw]) : raw;
  }
  // Negative: find the smallest byte length whose range holds n, then take 2^(8*len) + n.
  let len = 1;
  while (n < -(1n << BigInt(8 * len - 1))) len++;
  return bigintToFixed((1n << BigInt(8 * len)) + n, len);
}

/** Decodes a two's-complement mpint body. */
export function decodeMpint(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  const v = bytesToBigint(b);
  return b[0] & 0x80 ? v - (1n << BigInt(8 * b.length)) : v;
}

/** Strips leading zero bytes from an unsigned big-endian value. */
export function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  return b.subarray(i);
}

/** Unsigned big-endian bytes as an mpint body (strips zeros, adds one if the top bit is set). */
export function unsignedToMpint(b: Buffer): Buffer {
  const s = stripLeadingZeros(b);
  return s.length && s[0] & 0x80 ? Buffer.concat([Buffer.from([0]), s]) : s;
}
