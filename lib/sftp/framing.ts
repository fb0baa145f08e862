/**
 * Incremental SFTP packet framing (draft-02 section 3: uint32 length, then that many bytes).
 * Chunks of any size go in; whole packets (type byte + payload, without the length) come out.
 * A packet inside one chunk is a view of it; only a packet split across chunks is copied, once.
 * With `copy`, every packet is memory of its own and no chunk is kept past `push`.
 */
import { DEFAULT_MAX_PACKET } from './constants';
import { SFTPError } from './errors';
import type { BufferPool } from '../buffer-pool';

export class PacketFramer {
  private parts: Buffer[] = [];
  private have = 0;
  /** Total bytes (length word included) of the packet being assembled, -1 until its length is known. */
  private need = -1;
  private failed: Error | null = null;
  /** Copying mode: the packet being assembled (its length word first), once its length is known. */
  private assembly: Buffer | null = null;
  /** Copying mode: the length word while fewer than 4 of its bytes have come. */
  private readonly lengthWord = Buffer.alloc(4);

  /**
   * `maxPacket`: the largest length word accepted; beyond it the stream is refused for good.
   * `copy`: chunks are only valid during `push` (channel data decrypted into a reused buffer):
   * each packet is copied out as it completes into a buffer of its own (its length word first,
   * the packet a view after it), taken from `pool` when there is one.
   */
  constructor(
    readonly maxPacket: number = DEFAULT_MAX_PACKET,
    private readonly copy = false,
    private readonly pool: BufferPool | null = null,
  ) {}

  private assemble(n: number): Buffer {
    return this.pool ? this.pool.take(n) : Buffer.allocUnsafe(n);
  }

  /** Bytes held that do not make a whole packet yet. */
  get buffered(): number {
    return this.have;
  }

  /**
   * Feeds a chunk and calls `onPacket` for each packet it completes, in order. The chunk must
   * not be modified afterwards: packets may be views of it. Throws SFTPError on an oversize length.
   */
  push(chunk: Buffer, onPacket: (packet: Buffer) => void): void {
    if (this.failed) throw this.failed;
    if (this.copy) {
      this.pushCopying(chunk, onPacket);
      return;
    }
    if (this.have > 0) {
      if (this.need < 0) {
        if (this.have + chunk.length < 4) {
          this.parts.push(chunk);
          this.have += chunk.length;
          return;
        }
        const head = Buffer.concat([...this.parts, chunk.subarray(0, 4)], 4);
        this.need = 4 + this.checkLength(head.readUInt32BE(0));
      }
      if (this.have + chunk.length < this.need) {
        this.parts.push(chunk);
        this.have += chunk.length;
        return;
      }
      const take = this.need - this.have;
      this.parts.push(chunk.subarray(0, take));
      const whole = Buffer.concat(this.parts, this.need);
      chunk = chunk.subarray(take);
      this.parts = [];
      this.have = 0;
      this.need = -1;
      onPacket(whole.subarray(4));
    }
    let off = 0;
    while (chunk.length - off >= 4) {
      const end = off + 4 + this.checkLength(chunk.readUInt32BE(off));
      if (end > chunk.length) break;
      onPacket(chunk.subarray(off + 4, end));
      off = end;
    }
    if (off < chunk.length) {
      const rest = chunk.subarray(off);
      this.parts.push(rest);
      this.have = rest.length;
      if (rest.length >= 4) this.need = 4 + rest.readUInt32BE(0);
    }
  }

  private pushCopying(chunk: Buffer, onPacket: (packet: Buffer) => void): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.need < 0) {
        if (this.have === 0 && chunk.length - off >= 4) {
          const end = off + 4 + this.checkLength(chunk.readUInt32BE(off));
          if (end <= chunk.length) {
            const whole = this.assemble(end - off);
            chunk.copy(whole, 0, off, end);
            onPacket(whole.subarray(4));
            off = end;
            continue;
          }
          this.need = end - off;
          this.assembly = this.assemble(this.need);
        } else {
          const take = Math.min(4 - this.have, chunk.length - off);
          chunk.copy(this.lengthWord, this.have, off, off + take);
          this.have += take;
          off += take;
          if (this.have < 4) return;
          this.need = 4 + this.checkLength(this.lengthWord.readUInt32BE(0));
          this.assembly = this.assemble(this.need);
          this.lengthWord.copy(this.assembly, 0);
        }
      }
      const whole = this.assembly!;
      const take = Math.min(this.need - this.have, chunk.length - off);
      chunk.copy(whole, this.have, off, off + take);
      this.have += take;
      off += take;
      if (this.have < this.need) return;
      this.assembly = null;
      this.have = 0;
      this.need = -1;
      onPacket(whole.subarray(4));
    }
  }

  private checkLength(n: number): number {
    if (n > this.maxPacket) {
      this.failed = new SFTPError(`SFTP packet of ${n} bytes exceeds the limit of ${this.maxPacket} bytes`);
      throw this.failed;
    }
    return n;
  }
}
