import { constants } from 'node:buffer';

/** The largest reservation tried first, then the fallback (V8 refuses some maxByteLengths). */
const RESERVATIONS = [Math.min(constants.MAX_LENGTH, 2 ** 35), 2 ** 32];

/** Past this much, a read() to EOF gathers into a GrowingBuffer (a smaller one is joined once, without the reservation). */
export const GROW_IN_PLACE_FROM = 4 << 20;

/** Growth granule: one resize (and its zero-fill) per this many bytes. */
const GROW_STEP = 1 << 20;

/** ES2024's resizable ArrayBuffer (Node 20+; not in this project's TypeScript lib setting). */
type ResizableArrayBuffer = ArrayBuffer & { resize(byteLength: number): void; readonly maxByteLength: number; readonly resizable: boolean };
const Resizable = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;

/**
 * Bytes of unknown total length gathered into one Buffer (a `read()` to EOF). A resizable
 * ArrayBuffer reserves address space up front and commits pages as it grows in place, so each
 * byte is written once and each page faulted in once; chunks joined at the end touch every page
 * twice, and on the VMs we measure a fresh page costs more than copying it (1 GiB: 526k page
 * faults and ~560 MB/s that way). Where no reservation is granted (a tight `ulimit -v`) or the
 * data outgrows it, the rest is kept as chunks and joined once at the end.
 */
export class GrowingBuffer {
  /** Bytes gathered so far. */
  length = 0;
  private readonly ab: ResizableArrayBuffer | null;
  /** Bytes past the reservation (or all of them without one), oldest first. */
  private readonly overflow: Buffer[] = [];

  /** @param reservation the most bytes kept in place (the largest V8 grants when omitted; tests pass small ones, or null for none). */
  constructor(reservation?: number | null) {
    this.ab = reservation === undefined ? reserve(RESERVATIONS) : reservation === null ? null : reserve([reservation]);
  }

  /**
   * Up to `n` (> 0) bytes of room at the end, to write into and then `commit`; null when the
   * bytes must be given to `append` instead (no room in place).
   */
  room(n: number): Uint8Array | null {
    const ab = this.ab;
    if (!ab || this.overflow.length) return null;
    const want = Math.min(this.length + n, ab.maxByteLength);
    if (want <= this.length) return null;
    // V8 zero-fills what a resize adds, touching every page of it: grown by doubling, a 1 GiB
    // read faulted in 2 GiB. Steps of GROW_STEP keep the pages touched to the data plus a step.
    if (want > ab.byteLength) ab.resize(Math.min(ab.maxByteLength, Math.ceil(want / GROW_STEP) * GROW_STEP));
    return Buffer.from(ab, this.length, want - this.length);
  }

  /** Counts `n` bytes written into the view `room` gave. */
  commit(n: number): void {
    this.length += n;
  }

  /** Adds a copy of `chunk`. */
  append(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      const room = this.room(chunk.length - at);
      if (!room) {
        this.overflow.push(Buffer.from(chunk.subarray(at)));
        this.length += chunk.length - at;
        return;
      }
      room.set(chunk.subarray(at, at + room.length));
      at += room.length;
      this.commit(room.length);
    }
  }

  /** Everything gathered, as one Buffer. Call once. */
  finish(): Buffer {
    const inPlace = this.length - this.overflow.reduce((n, b) => n + b.length, 0);
    let head = Buffer.alloc(0);
    if (this.ab) {
      this.ab.resize(inPlace);
      head = Buffer.from(this.ab, 0, inPlace);
    }
    if (this.overflow.length === 0) return head;
    return Buffer.concat(inPlace ? [head, ...this.overflow] : this.overflow, this.length);
  }
}

function reserve(sizes: number[]): ResizableArrayBuffer | null {
  for (const maxByteLength of sizes) {
    try {
      const ab = new Resizable(0, { maxByteLength });
      if (ab.resizable) return ab;
    } catch {
      // Refused (too large for this V8, or no address space): try the next, then chunks.
    }
  }
  return null;
}
