/**
 * Buffers for large SFTP replies (a READ's DATA, 255 KiB from OpenSSH), handed out again once
 * their consumer says it is done with them. A download allocated a fresh quarter-megabyte buffer
 * per reply: memory the kernel maps on first touch and V8 collects, ~20% of a download's speed
 * here. Only buffers this pool made are taken back, each once (a WeakSet: one never released is
 * simply collected), and at most `keep` of them wait for reuse.
 */
export class ReplyPool {
  private readonly free: Buffer[] = [];
  /** Buffers handed out and not released: only these may come back. */
  private readonly out = new WeakSet<ArrayBufferLike>();

  /** Replies smaller than `minSize` are allocated as usual. */
  constructor(
    readonly minSize = 64 * 1024,
    readonly keep = 48,
  ) {}

  /** `n` bytes of memory of their own (a view of a pooled buffer when `n` is large). */
  take(n: number): Buffer {
    if (n < this.minSize) return Buffer.allocUnsafe(n);
    let buf = this.free.pop();
    // Replies of one transfer have one size; a buffer too small for this one is dropped. Slow:
    // memory of its own, never a slice of Node's shared pool, so all of it may be reused.
    if (!buf || buf.length < n) buf = Buffer.allocUnsafeSlow(n);
    this.out.add(buf.buffer);
    return buf.subarray(0, n);
  }

  /**
   * Nobody reads or keeps `view` (or anything else in its buffer) any more: its buffer may be
   * handed out again. Views of memory the pool did not hand out, or already released, are
   * ignored.
   */
  release(view: Uint8Array): void {
    const ab = view.buffer;
    if (!this.out.has(ab)) return;
    this.out.delete(ab);
    if (this.free.length < this.keep) this.free.push(Buffer.from(ab, 0, ab.byteLength));
  }

  /** Drops the buffers waiting for reuse (a transfer ended: an idle session keeps none). */
  clear(): void {
    this.free.length = 0;
  }
}
