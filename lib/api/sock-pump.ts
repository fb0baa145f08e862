import { getBridge } from '../bridge';
import { SharedRing } from '../bridge/ring';
import { SocketTimeout } from '../errors';

/**
 * Paramiko's socket-like `sock`: any object with Python's socket calls. `recv` returns an empty
 * buffer at EOF and, after `settimeout(0)`, throws SocketTimeout (or an error with code EAGAIN or
 * EWOULDBLOCK, or named "timeout") when nothing is there; `send` returns how many bytes it took,
 * or throws the same when it can take none now.
 */
export interface SocketLike {
  /** How many bytes it took (a partial send is fine); returning nothing means all of them. */
  send(data: Buffer): number | void;
  recv(size: number): Buffer | Uint8Array;
  settimeout(timeout: number | null): void;
  close(): void;
}

/** The calls an object needs to be a SocketLike. */
export const SOCKET_LIKE_CALLS = ['send', 'recv', 'settimeout', 'close'] as const;

/**
 * Whether `sock` has the calls of a SocketLike (a duck-typed check, as Python's). A Node stream
 * never is, whatever methods it has: its events need this thread (see unsupportedSock).
 */
export function isSocketLike(sock: unknown): sock is SocketLike {
  const s = sock as Partial<Record<keyof SocketLike | 'pipe', unknown>> | null;
  if (typeof s !== 'object' || s === null || typeof s.pipe === 'function') return false;
  return SOCKET_LIKE_CALLS.every((m) => typeof s[m] === 'function');
}

/** Bytes each ring holds: the most a pump moves per look in each direction. */
const RING_BYTES = 256 * 1024;
/** Bytes asked of one recv. */
const RECV_BYTES = 64 * 1024;

let nextPumpId = 1;

/** A recv that found nothing in non-blocking mode, in any of the forms socket-likes use. */
function isWouldBlock(e: unknown): boolean {
  if (e instanceof SocketTimeout) return true;
  const err = e as { name?: string; code?: string } | null;
  return err?.name === 'SocketTimeout' || err?.name === 'timeout' || err?.code === 'EAGAIN' || err?.code === 'EWOULDBLOCK';
}

/**
 * Carries a connection over a SocketLike. Only this thread may call the object, so the bridge
 * runs `pump` whenever a blocking call waits (about every millisecond) and every few
 * milliseconds while the thread is idle: it sends what the worker wrote and passes on what a
 * non-blocking recv finds. The object is put in non-blocking mode (`settimeout(0)`) for good.
 * Slower than a socket the worker owns, by a millisecond a hop: for the objects that only
 * exist on this thread (wrappers that trace or filter bytes; a Python port's own classes).
 */
export class SockPump {
  readonly id = nextPumpId++;
  /** The worker writes what the connection sends; this thread sends it. */
  private readonly toMain = new SharedRing(RING_BYTES);
  /** This thread writes what recv gives; the worker reads it. */
  private readonly fromMain = new SharedRing(RING_BYTES);
  private outgoing: Buffer | null = null;
  private incoming: Buffer | null = null;
  private done = false;
  private readonly stops: Array<() => void>;

  constructor(private readonly sock: SocketLike) {
    sock.settimeout(0);
    const bridge = getBridge();
    // A worker that died takes the connection with it: stop looking and close the object.
    this.stops = [bridge.addPoller(() => this.pump()), bridge.onDeath(() => this.finish())];
  }

  /** What the worker's transport service takes (its SockRings). */
  rings(label: string): { id: number; toMain: SharedArrayBuffer; fromMain: SharedArrayBuffer; label: string } {
    return { id: this.id, toMain: this.toMain.sab, fromMain: this.fromMain.sab, label };
  }

  private pump(): void {
    if (this.done) return;
    try {
      this.sendPending();
      this.receive();
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    // The worker's connection is gone (closed, or it failed): close the object.
    if (this.toMain.eof && this.fromMain.readerClosed) this.finish();
  }

  private sendPending(): void {
    for (;;) {
      if (!this.outgoing || this.outgoing.length === 0) {
        this.outgoing = this.toMain.available() ? this.toMain.read() : null;
        if (!this.outgoing) return;
      }
      let n: number | undefined;
      try {
        n = this.sock.send(this.outgoing) as number | undefined;
      } catch (e) {
        if (isWouldBlock(e)) return; // nothing taken (Python's non-blocking send): next look
        throw e;
      }
      // A send that returns nothing took everything, as a sendall (resending would duplicate).
      if (n === undefined || n === null) n = this.outgoing.length;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > this.outgoing.length) {
        throw new TypeError(`send returned ${String(n)}, not a byte count from 0 to ${this.outgoing.length}`);
      }
      if (n === 0) return; // nothing taken: try again at the next look
      this.outgoing = this.outgoing.subarray(n);
    }
  }

  private receive(): void {
    if (this.fromMain.closed || this.fromMain.readerClosed) return;
    // What a recv gave beyond the ring's room (an object may return more than asked) goes first.
    if (this.incoming) {
      const n = this.fromMain.write(this.incoming);
      this.incoming = n < this.incoming.length ? this.incoming.subarray(n) : null;
      if (this.incoming) return;
    }
    while (this.fromMain.free() > 0) {
      let data: Buffer | Uint8Array;
      try {
        data = this.sock.recv(Math.min(RECV_BYTES, this.fromMain.free()));
      } catch (e) {
        if (isWouldBlock(e)) return;
        throw e;
      }
      if (!(data instanceof Uint8Array)) throw new TypeError(`recv returned ${typeof data === 'string' ? 'a string' : String(data)}, not a Buffer`);
      if (data.length === 0) {
        this.fromMain.close(); // EOF: the connection sees the peer close
        return;
      }
      const n = this.fromMain.write(data);
      if (n < data.length) {
        this.incoming = Buffer.from(data.subarray(n));
        return;
      }
    }
  }

  private fail(e: Error): void {
    const message = `${e.name ?? 'Error'} from ${this.sock.constructor?.name ?? 'sock'}: ${e.message}`;
    // The reason first: closing the rings first would end the connection as a plain EOF.
    try {
      getBridge().call('transport', 'sockFailed', { id: this.id, message }, 10);
    } catch {
      // the worker is gone: nothing left to tell
    }
    this.finish();
  }

  /** Stops pumping and closes the object (idempotent). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    for (const stop of this.stops) stop();
    this.toMain.closeReader();
    this.fromMain.close();
    try {
      this.sock.close();
    } catch {
      // closing is best effort, as Paramiko's
    }
  }
}
