/** Posting small views of large buffers between the threads (see compact). */

/** Bytes a view may leave unused of its ArrayBuffer and still be posted as it is (see compact). */
const VIEW_SLACK = 4096;

const oversized = (v: unknown): v is ArrayBufferView => ArrayBuffer.isView(v) && v.buffer.byteLength > v.byteLength + VIEW_SLACK;
const ownCopy = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();

/**
 * `value` with its views of a few bytes of large ArrayBuffers replaced by copies of those bytes
 * (the value itself, an element of it or a property of a plain object, one level down), for a
 * postMessage between the threads: cloned, a view takes its whole ArrayBuffer with it. 1000
 * bytes read into a 256 KiB read-ahead cost 0.9 ms to post here, a 1000-byte view of 16 MiB 58 ms.
 * Not for values whose buffers go in a transfer list (those move, whatever their size).
 */
export function compact(value: unknown): unknown {
  if (oversized(value)) return ownCopy(value);
  if (Array.isArray(value)) return value.some(oversized) ? value.map((v) => (oversized(v) ? ownCopy(v) : v)) : value;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    let out: Record<string, unknown> | null = null;
    for (const [k, v] of Object.entries(value)) {
      if (oversized(v)) (out ??= { ...(value as Record<string, unknown>) })[k] = ownCopy(v);
    }
    return out ?? value;
  }
  return value;
}
