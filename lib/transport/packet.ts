import { randomFillSync } from 'node:crypto';
import { SSHException } from '../errors';
import { PlainOpener, PlainSealer } from '../crypto/modes';
import type { Opener, Sealer } from '../crypto/protection';

/** Largest packet we accept or send: OpenSSH's PACKET_MAX_SIZE (256 KiB), above RFC 4253's 35000. */
export const MAX_PACKET_LENGTH = 256 * 1024;
/** RFC 4253 section 6: at least 4 bytes of padding. */
const MIN_PADDING = 4;
/** Random padding is taken from a pool refilled this often, not one syscall per packet. */
const PAD_POOL_SIZE = 64 * 1024;

/** A payload transform applied before sealing or after opening (compression). */
export type PayloadTransform = (payload: Buffer) => Buffer;

/** Counters that drive rekeying, per direction. */
export interface TrafficCounters {
  bytes: number;
  packets: number;
}

/**
 * `buf` when it holds at least `n` bytes, else a new buffer of `n` bytes or twice `buf`'s size
 * (at most `cap`), whichever is more: scratch memory that grows with the largest need and is then
 * reused (a fresh buffer per packet is memory the kernel maps on first touch and V8 collects).
 */
export function scratchOf(buf: Buffer | null, n: number, cap = Infinity): Buffer {
  return buf && buf.length >= n ? buf : Buffer.allocUnsafe(Math.max(n, Math.min(2 * (buf?.length ?? 0), cap)));
}

/** Smallest and largest buffer a WireArena takes at once. */
const ARENA_MIN = 16 * 1024;
const ARENA_MAX = 512 * 1024;
/** Full buffers of ARENA_MAX bytes a WireArena keeps for reuse. */
const ARENA_SPARES = 4;

/**
 * Memory for sealed packets on their way to a socket, reused once the socket has let go of them.
 * The connection that writes them calls `rewind` when the kernel has taken everything written
 * (nothing left in the socket's queue): every packet taken so far is then free. Until then
 * packets go on being taken from what is left, and a full buffer is set aside for a new one.
 * Buffers grow with the traffic (16 KiB to 512 KiB), so an idle connection keeps little; the full
 * 512 KiB ones set aside (up to ARENA_SPARES) serve again after a rewind. Fresh memory costs a
 * page fault per 4 KiB on first touch: sealing into new buffers took 2.5x the time of sealing
 * into reused ones here (an upload, whose socket queue is seldom empty at a flush).
 */
export class WireArena {
  private buf: Buffer | null = null;
  private used = 0;
  /** Full buffers set aside since the last rewind: their packets may still be queued. */
  private retired: Buffer[] = [];
  /** Full buffers nothing refers to any more. */
  private spares: Buffer[] = [];

  take(n: number): Buffer {
    if (!this.buf || this.used + n > this.buf.length) {
      const size = this.buf ? Math.min(2 * this.buf.length, ARENA_MAX) : ARENA_MIN;
      if (this.buf?.length === ARENA_MAX && this.retired.length < ARENA_SPARES) this.retired.push(this.buf);
      this.buf = size === ARENA_MAX && n <= ARENA_MAX ? (this.spares.pop() ?? Buffer.allocUnsafe(ARENA_MAX)) : Buffer.allocUnsafe(Math.max(size, n));
      this.used = 0;
    }
    const out = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }

  /** Nothing taken so far is referenced any more. */
  rewind(): void {
    this.used = 0;
    while (this.retired.length && this.spares.length < ARENA_SPARES) this.spares.push(this.retired.pop()!);
    this.retired.length = 0;
  }
}

/** The sending half: sequence number, protection and compression of one direction. */
export class PacketWriter {
  seq = 0;
  readonly sinceKex: TrafficCounters = { bytes: 0, packets: 0 };
  private sealer: Sealer = new PlainSealer();
  private compress: PayloadTransform | null = null;
  private pad = Buffer.allocUnsafe(PAD_POOL_SIZE);
  private padUsed = PAD_POOL_SIZE;
  /**
   * The plaintext packet is built here when the sealer's output never aliases it: one buffer
   * for every packet instead of a fresh one each (a 32 KiB allocation per packet is external
   * memory that drives V8 into a garbage collection every few megabytes).
   */
  private scratch: Buffer | null = null;
  /** Where sealers that can write into given memory put the wire bytes (see WireArena). */
  arena: WireArena | null = null;

  /** Switches to new keys (after NEWKEYS); strict kex also resets the sequence number. */
  setProtection(sealer: Sealer, resetSequence: boolean): void {
    this.sealer = sealer;
    if (resetSequence) this.seq = 0;
    this.sinceKex.bytes = 0;
    this.sinceKex.packets = 0;
  }

  setCompression(compress: PayloadTransform | null): void {
    this.compress = compress;
  }

  private padding(n: number): Buffer {
    if (this.padUsed + n > PAD_POOL_SIZE) {
      randomFillSync(this.pad);
      this.padUsed = 0;
    }
    const out = this.pad.subarray(this.padUsed, this.padUsed + n);
    this.padUsed += n;
    return out;
  }

  private packetBuffer(size: number): Buffer {
    if (!this.sealer.freshOutput) return Buffer.allocUnsafe(size);
    // Grown by doubling (an idle connection's packets are small), up to the largest packet.
    this.scratch = scratchOf(this.scratch, size, 4 + MAX_PACKET_LENGTH);
    return this.scratch.subarray(0, size);
  }

  /** The wire bytes for one payload. */
  encode(payload: Buffer): Buffer {
    const parts = this.encodeParts(payload);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** The wire bytes for one payload, as pieces to write in order (no concatenation copy). */
  encodeParts(payload: Buffer): Buffer[] {
    const body = this.compress ? this.compress(payload) : payload;
    return this.frame(body.length, (into) => body.copy(into));
  }

  /**
   * The wire bytes for a payload of `length` bytes that `fill` writes straight into the packet
   * (channel data: no payload buffer, no copy of it). `fill` gets exactly `length` bytes.
   */
  encodeFilled(length: number, fill: (into: Buffer) => void): Buffer[] {
    if (this.compress) {
      const payload = Buffer.allocUnsafe(length);
      fill(payload);
      return this.encodeParts(payload);
    }
    return this.frame(length, fill);
  }

  private frame(bodyLength: number, fill: (into: Buffer) => void): Buffer[] {
    const bs = this.sealer.blockSize;
    const unaligned = (this.sealer.lengthExcluded ? 0 : 4) + 1 + bodyLength;
    let padLength = bs - (unaligned % bs);
    if (padLength < MIN_PADDING) padLength += bs;
    const length = 1 + bodyLength + padLength;
    if (length > MAX_PACKET_LENGTH) throw new SSHException(`payload of ${bodyLength} bytes exceeds the packet size limit`);
    const packet = this.packetBuffer(4 + length);
    packet.writeUInt32BE(length, 0);
    packet[4] = padLength;
    fill(packet.subarray(5, 5 + bodyLength));
    this.padding(padLength).copy(packet, 5 + bodyLength);
    const parts = this.seal(packet);
    this.seq = (this.seq + 1) >>> 0;
    this.sinceKex.packets++;
    for (const p of parts) this.sinceKex.bytes += p.length;
    return parts;
  }

  private seal(packet: Buffer): Buffer[] {
    const s = this.sealer;
    if (this.arena && s.sealInto) {
      const wire = this.arena.take(packet.length + s.macLength);
      s.sealInto(this.seq, packet, wire);
      return [wire];
    }
    return s.sealParts ? s.sealParts(this.seq, packet) : [s.seal(this.seq, packet)];
  }
}

/** The receiving half: buffers wire bytes and yields whole payloads. */
export class PacketReader {
  seq = 0;
  readonly sinceKex: TrafficCounters = { bytes: 0, packets: 0 };
  private opener: Opener = new PlainOpener();
  private decompress: PayloadTransform | null = null;
  /**
   * Received chunks, consumed from the front. A packet inside one chunk is read in place; only
   * a packet that spans chunks is copied, and only its own bytes.
   */
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;
  private avail = 0;
  /** Length field of the packet being read, once known (-1 before). */
  private length = -1;
  /** Where a packet split across chunks is joined (openers copy what they return). */
  private joined: Buffer | null = null;
  /** Two buffers that take turns holding the unread tail of a transient chunk (see detach). */
  private carry: [Buffer | null, Buffer | null] = [null, null];
  private carryTurn = 0;
  /**
   * The payload `next` returned last lives in memory the opener reuses (openTransient): valid
   * until the next call. Only the session's dispatch of channel data takes it so; anything else
   * it copies first.
   */
  transient = false;

  setProtection(opener: Opener, resetSequence: boolean): void {
    this.opener = opener;
    if (resetSequence) this.seq = 0;
    this.sinceKex.bytes = 0;
    this.sinceKex.packets = 0;
  }

  setCompression(decompress: PayloadTransform | null): void {
    this.decompress = decompress;
  }

  /** Bytes received and not yet consumed as packets. */
  get buffered(): number {
    return this.avail;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.avail += chunk.length;
  }

  /** The next `n` bytes as one Buffer (a view when they sit in one chunk), not consumed. */
  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    this.joined = scratchOf(this.joined, n);
    const out = this.joined.subarray(0, n);
    let copied = 0;
    let offset = this.head;
    for (const c of this.chunks) {
      copied += c.copy(out, copied, offset, Math.min(c.length, offset + n - copied));
      offset = 0;
      if (copied === n) break;
    }
    return out;
  }

  private consume(n: number): void {
    this.avail -= n;
    while (n > 0) {
      const left = this.chunks[0].length - this.head;
      if (n < left) {
        this.head += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /**
   * Copies the bytes not consumed yet into memory of the reader's own, so the chunks pushed so
   * far may be reused by their owner (a socket reading into one buffer). At most one packet is
   * left over; two carry buffers take turns, so the bytes copied never overlap the ones read.
   */
  detach(): void {
    if (this.avail === 0) {
      this.chunks = [];
      this.head = 0;
      return;
    }
    this.carryTurn ^= 1;
    const c = (this.carry[this.carryTurn] = scratchOf(this.carry[this.carryTurn], this.avail));
    let copied = 0;
    let offset = this.head;
    for (const chunk of this.chunks) {
      copied += chunk.copy(c, copied, offset);
      offset = 0;
    }
    this.chunks = [c.subarray(0, copied)];
    this.head = 0;
  }

  /** Takes the raw bytes buffered (the identification line is read before packets): a copy. */
  takeRaw(): Buffer {
    const out = this.avail ? Buffer.from(this.peek(this.avail)) : Buffer.alloc(0);
    this.chunks = [];
    this.head = 0;
    this.avail = 0;
    return out;
  }

  /**
   * The next payload, or null when more bytes are needed. Throws SSHException for a bad
   * length, padding or MAC; the connection cannot continue after that.
   */
  next(): Buffer | null {
    const o = this.opener;
    if (this.length < 0) {
      if (this.avail < o.headerLength) return null;
      const length = o.peekLength(this.seq, this.peek(o.headerLength));
      // Checked before buffering: a forged length cannot make us wait for or hold more.
      if (length < 1 + MIN_PADDING || length > MAX_PACKET_LENGTH) {
        throw new SSHException(`bad packet length ${length} (corrupt stream, wrong keys, or not SSH)`);
      }
      if (((o.lengthExcluded ? 0 : 4) + length) % o.blockSize !== 0) {
        throw new SSHException(`bad packet length ${length}: not a multiple of the cipher block size ${o.blockSize}`);
      }
      this.length = length;
    }
    const total = 4 + this.length + o.macLength;
    if (this.avail < total) return null;
    const wire = this.peek(total);
    this.consume(total);
    const plain = o.openTransient ? o.openTransient(this.seq, wire) : o.open(this.seq, wire);
    // Inflating copies (the inflater consumes its input before returning).
    this.transient = o.openTransient !== undefined && this.decompress === null;
    const padLength = plain[0];
    if (padLength < MIN_PADDING || padLength >= this.length) {
      throw new SSHException(`bad padding length ${padLength} in a packet of ${this.length} bytes`);
    }
    const payload = plain.subarray(1, this.length - padLength);
    this.length = -1;
    this.seq = (this.seq + 1) >>> 0;
    this.sinceKex.packets++;
    this.sinceKex.bytes += total;
    if (payload.length === 0) throw new SSHException('empty packet payload');
    return this.decompress ? this.decompress(payload) : payload;
  }
}
