import { SSHException } from '../errors';
import { decodeMpint, encodeMpint } from './bigint';

const INITIAL_CAPACITY = 64;
/** Largest number add/getAdaptiveInt write as a plain uint32 (Paramiko's threshold). */
const ADAPTIVE_INT_LIMIT = 0xff000000;

/**
 * SSH binary encoding (RFC 4251 section 5): bytes, booleans, uint32, uint64, strings, mpints and
 * name-lists, written to and read from one buffer.
 *
 * Mirrors paramiko.Message in camelCase. Unlike Paramiko, reading past the end throws an
 * SSHException naming what was being read; it never pads with zeros, because protocol parsing
 * must not accept truncated input.
 */
export class Message {
  /**
   * The bytes are a view the packet codec reuses once the message is handled (channel data
   * only, see PacketReader.transient): whoever keeps a part of them copies it.
   */
  transient = false;
  private buf: Buffer;
  /** Bytes written (write side) or total bytes (read side). */
  private length: number;
  /** Read position. */
  private pos = 0;

  constructor(content?: Buffer | Uint8Array | null) {
    if (content) {
      this.buf = Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
      this.length = this.buf.length;
    } else {
      this.buf = Buffer.allocUnsafe(INITIAL_CAPACITY);
      this.length = 0;
    }
  }

  // ---- whole-message views ----

  /** The bytes of the message (a view, not a copy). */
  asBytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  toString(): string {
    return this.asBytes().toString('hex');
  }

  /** Moves the read position back to the start. */
  rewind(): void {
    this.pos = 0;
  }

  /** The bytes not yet read. */
  getRemainder(): Buffer {
    return this.buf.subarray(this.pos, this.length);
  }

  /** The bytes read so far. */
  getSoFar(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** Number of bytes not yet read. */
  get remaining(): number {
    return this.length - this.pos;
  }

  /** Current read position. */
  get position(): number {
    return this.pos;
  }

  // ---- decoders ----

  private need(n: number, what: string): void {
    if (n > this.length - this.pos) {
      throw new SSHException(
        `truncated message: ${what} needs ${n} bytes at offset ${this.pos}, only ${this.length - this.pos} left`,
      );
    }
  }

  /** Reads `n` raw bytes (a view). */
  getBytes(n: number): Buffer {
    if (!Number.isInteger(n) || n < 0) throw new SSHException(`invalid byte count ${n}`);
    this.need(n, `${n} bytes`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  getByte(): number {
    this.need(1, 'a byte');
    return this.buf[this.pos++];
  }

  getBoolean(): boolean {
    this.need(1, 'a boolean');
    return this.buf[this.pos++] !== 0;
  }

  /** uint32. */
  getInt(): number {
    this.need(4, 'a uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** uint64, as a bigint. */
  getInt64(): bigint {
    this.need(8, 'a uint64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Paramiko's adaptive int: a uint32, or 0xff followed by a longer mpint-like value. */
  getAdaptiveInt(): bigint {
    this.need(1, 'an adaptive int');
    if (this.buf[this.pos] === 0xff) {
      this.pos++;
      return decodeMpint(this.getString('an adaptive int'));
    }
    return BigInt(this.getInt());
  }

  /** Multiple-precision integer (two's complement), as a bigint. */
  getMpint(): bigint {
    return decodeMpint(this.getString('an mpint'));
  }

  /** A length-prefixed byte string (a view). */
  getString(what = 'a string'): Buffer {
    this.need(4, `the length of ${what}`);
    const n = this.buf.readUInt32BE(this.pos);
    if (n > this.length - this.pos - 4) {
      throw new SSHException(
        `truncated message: ${what} of length ${n} at offset ${this.pos}, only ${this.length - this.pos - 4} bytes left`,
      );
    }
    this.pos += 4;
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Paramiko's name for getString. */
  getBinary(): Buffer {
    return this.getString();
  }

  /** A string decoded as UTF-8. */
  getText(): string {
    return this.getString().toString('utf8');
  }

  /** A name-list (comma-separated); empty string gives []. */
  getList(): string[] {
    const s = this.getString('a name-list').toString('utf8');
    return s.length ? s.split(',') : [];
  }

  // ---- encoders ----

  private reserve(n: number): void {
    const want = this.length + n;
    if (want <= this.buf.length) return;
    let cap = Math.max(this.buf.length * 2, INITIAL_CAPACITY);
    while (cap < want) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Appends raw bytes. */
  addBytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  addByte(b: number): this {
    this.reserve(1);
    this.buf[this.length++] = b & 0xff;
    return this;
  }

  addBoolean(b: boolean): this {
    return this.addByte(b ? 1 : 0);
  }

  /** uint32. */
  addInt(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`uint32 out of range: ${n}`);
    this.reserve(4);
    this.buf.writeUInt32BE(n, this.length);
    this.length += 4;
    return this;
  }

  /** uint64 (number or bigint). */
  addInt64(n: number | bigint): this {
    const v = BigInt(n);
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`uint64 out of range: ${n}`);
    this.reserve(8);
    this.buf.writeBigUInt64BE(v, this.length);
    this.length += 8;
    return this;
  }

  /** Paramiko's adaptive int: a uint32 when small, else 0xff-prefixed mpint bytes. */
  addAdaptiveInt(n: number | bigint): this {
    const v = BigInt(n);
    if (v >= 0n && v < BigInt(ADAPTIVE_INT_LIMIT)) return this.addInt(Number(v));
    return this.addByte(0xff).addString(encodeMpint(v));
  }

  /** Multiple-precision integer (any sign). */
  addMpint(n: number | bigint): this {
    return this.addString(encodeMpint(BigInt(n)));
  }

  /** A length-prefixed string; text is encoded as UTF-8. */
  addString(s: string | Uint8Array): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.addInt(b.length);
    return this.addBytes(b);
  }

  /** A name-list. */
  addList(items: readonly string[]): this {
    return this.addString(items.join(','));
  }

  /**
   * Type-dispatched add, as Paramiko's `add(*seq)`: boolean, integer number (uint32), bigint
   * (mpint), string and Buffer (string), string array (name-list).
   */
  add(...items: Array<boolean | number | bigint | string | Uint8Array | readonly string[]>): this {
    for (const item of items) {
      if (typeof item === 'boolean') this.addBoolean(item);
      else if (typeof item === 'number') this.addInt(item);
      else if (typeof item === 'bigint') this.addMpint(item);
      else if (typeof item === 'string' || item instanceof Uint8Array) this.addString(item);
      else if (Array.isArray(item)) this.addList(item);
      else throw new TypeError(`Message.add: cannot encode ${typeof item}`);
    }
    return this;
  }
}
