/**
 * Incremental SFTP packet framing (draft-02 section 3: uint32 length, then that many bytes).
 * Chunks of any size go in; whole packets (type byte + payload, without the length) come out.
 * A packet inside one chunk is a view of it; only a packet split across chunks is copied, once.
 */
import { DEFAULT_MAX_PACKET } from './constants';
import { SFTPError } from './errors';

export class PacketFramer {
  private parts: Buffer[] = [];
  private have = 0;
  /** Total bytes (length word included) of the packet being assembled, -1 until its length is known. */
  private need = -1;
  private failed: Error | null = null;

  /** `maxPacket`: the largest length word accepted; beyond it the stream is refused for good. */
  constructor(readonly maxPacket: number = DEFAULT_MAX_PACKET) {}

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

  private checkLength(n: number): number {
    if (n > this.maxPacket) {
      this.failed = new SFTPError(`SFTP packet of ${n} bytes exceeds the limit of ${this.maxPacket} bytes`);
      throw this.failed;
    }
    return n;
  }
}
