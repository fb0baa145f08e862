/**
 * Large transfer buffers handed out again once their consumer says nothing reads them any more:
 * the SFTP server's DATA replies (returned once sent), the SFTP client's READ replies (once the
 * local file has their bytes), an upload's chunks (once the server acknowledged them) and a
 * forwarded socket's gathered writes (once written). A fresh 32-255
 * KiB buffer per request is memory the kernel maps on first touch and V8 collects every few
 * megabytes; a download ran ~20% slower for it here.
 *
 * Only buffers this pool made come back, each once per time it was handed out (a WeakSet: a
 * buffer never released is simply collected), kept by exact size (a transfer's requests have
 * one), at most `maxBytes` of them idle.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  /** Handed out and not released: only these may come back. */
  private readonly out = new WeakSet<ArrayBufferLike>();
  private idleBytes = 0;

  /** Requests under `minSize` bytes are allocated as usual and never pooled. */
  constructor(
    private readonly maxBytes: number,
    private readonly minSize = 0,
  ) {}

  /** A buffer of exactly `n` bytes, of memory of its own (never a slice of Node's shared pool). */
  take(n: number): Buffer {
    if (n < this.minSize) return Buffer.allocUnsafe(n);
    let buf = this.free.get(n)?.pop();
    if (buf) this.idleBytes -= n;
    else buf = Buffer.allocUnsafeSlow(n);
    this.out.add(buf.buffer);
    return buf;
  }

  /** Takes back the buffer behind `view` (any view of one from `take`); ignores other memory. */
  release(view: Uint8Array): void {
    const ab = view.buffer;
    if (!this.out.has(ab)) return;
    this.out.delete(ab);
    if (this.idleBytes + ab.byteLength > this.maxBytes) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(Buffer.from(ab, 0, ab.byteLength));
    this.idleBytes += ab.byteLength;
  }

  /** Bytes kept for reuse. */
  get idle(): number {
    return this.idleBytes;
  }

  /** Drops the idle buffers (a transfer ended: an idle session keeps none). */
  clear(): void {
    this.free.clear();
    this.idleBytes = 0;
  }
}
