import { SSHException } from '../errors';
import { bigintToBytes } from '../wire/bigint';

/**
 * The little DER (X.690) that the keys layer needs: enough to build and read DSA keys, which
 * Node cannot import from JWK, and to inspect PKCS#8 / SPKI wrappers. Not a general ASN.1 codec.
 */

export const TAG_INTEGER = 0x02;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_BIT_STRING = 0x03;
export const TAG_SEQUENCE = 0x30;

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derTLV(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

/** A non-negative INTEGER. */
export function derInteger(n: bigint): Buffer {
  let b = bigintToBytes(n);
  if (b.length === 0 || b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return derTLV(TAG_INTEGER, b);
}

export function derSequence(...items: Buffer[]): Buffer {
  return derTLV(TAG_SEQUENCE, Buffer.concat(items));
}

export function derOid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      chunk.unshift(0x80 | (v & 0x7f));
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return derTLV(TAG_OID, Buffer.from(out));
}

export interface DerNode {
  tag: number;
  body: Buffer;
}

/** Reads consecutive TLVs from a buffer. Throws SSHException on malformed input. */
export class DerReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  next(expectTag?: number): DerNode {
    if (this.pos + 2 > this.buf.length) throw new SSHException('malformed DER: truncated element');
    const tag = this.buf[this.pos++];
    let len = this.buf[this.pos++];
    if (len & 0x80) {
      const count = len & 0x7f;
      if (count === 0 || count > 4 || this.pos + count > this.buf.length) {
        throw new SSHException('malformed DER: bad length');
      }
      len = 0;
      for (let i = 0; i < count; i++) len = len * 256 + this.buf[this.pos++];
    }
    if (this.pos + len > this.buf.length) throw new SSHException('malformed DER: element longer than its data');
    if (expectTag !== undefined && tag !== expectTag) {
      throw new SSHException(`malformed DER: expected tag 0x${expectTag.toString(16)}, got 0x${tag.toString(16)}`);
    }
    const body = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return { tag, body };
  }

  integer(): bigint {
    const { body } = this.next(TAG_INTEGER);
    if (body.length === 0) throw new SSHException('malformed DER: empty INTEGER');
    return BigInt('0x' + body.toString('hex'));
  }

  sequence(): DerReader {
    return new DerReader(this.next(TAG_SEQUENCE).body);
  }
}
