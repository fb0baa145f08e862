/**
 * A channel joined to a local socket, in the worker: what forwarding does with the connections
 * it carries (a forwarded agent connection, a local or remote port forward). Bytes go both
 * ways as they come, with flow control both ways: the channel's window is given back only as
 * the socket takes the data, and the socket is paused while the peer's window is used up. A
 * half-close goes across as EOF and back; either side closing closes the other once what was
 * in flight is delivered.
 *
 * Toward the socket, the channel's packets (32 KiB each from OpenSSH) are gathered into one
 * buffer per turn of the event loop and written together: a socket write per packet cost more
 * than the decryption (a 1 GiB tunnel from sshd: 1.3 s of the worker's 2.6 in writes, and a
 * fresh Buffer per packet besides). The buffers come from a small pool and go back to it once
 * the socket has taken them, which is also when the window goes back to the peer.
 */
import { createConnection, type NetConnectOpts, type Socket } from 'node:net';
import { BufferPool } from '../../buffer-pool';
import type { ChannelCore, ChannelSink } from '../../transport/channel';
import { track } from '../live';
import { endWithCutOff } from './streams';

/** Bytes from the socket waiting for the peer's window beyond which the socket is paused. */
const PAUSE_AT = 256 * 1024;
/** Size of the buffers packets are gathered in toward the socket; a larger packet goes alone. */
const GATHER_BYTES = 256 * 1024;
/**
 * Gathering buffers kept idle, shared by every bridge of the worker: what one busy tunnel keeps
 * in the socket at once. A window's worth (2 MiB) can be written and not yet taken.
 */
const gatherPool = new BufferPool(4 * GATHER_BYTES);

/**
 * What the sockets this worker connects for a channel (`connectForBridge`) read into: one buffer
 * for all of them, since a read's bytes are taken (sent, or copied when the window is short)
 * before the next read. 256 KiB a read where Node's own reads are 64 KiB into fresh memory: a
 * tunnel from a fast source to OpenSSH's `ssh -L` through our server went from 0.66x to 0.92x of
 * sshd's rate, the machine's CPU per GiB from 5.3 s to sshd's 3.9.
 */
const READ_BYTES = 256 * 1024;
let readBuffer: Buffer | null = null;
/** The bridge of each socket made by connectForBridge, once there is one. */
const readers = new WeakMap<Socket, (chunk: Buffer) => void>();

/**
 * A connection for a channel (a forward's destination, a forwarded agent): as net's
 * createConnection, reading into the shared buffer above. Bytes read before its bridge exists
 * are emitted as 'data' copies.
 */
export function connectForBridge(options: NetConnectOpts): Socket {
  const socket: Socket = createConnection({
    ...options,
    onread: {
      buffer: () => (readBuffer ??= Buffer.allocUnsafe(READ_BYTES)),
      callback: (n: number, buf: Uint8Array): boolean => {
        const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
        const reader = readers.get(socket);
        if (reader) reader(chunk);
        else socket.emit('data', Buffer.from(chunk));
        return true;
      },
    },
  });
  return socket;
}

export class SocketBridge implements ChannelSink {
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The socket ended or closed: the channel closes once `pending` is sent. */
  private socketDone = false;
  private closed_ = false;
  /** Packets for the socket gathered in this turn: `gathered[0, gatheredBytes)`. */
  private gathered: Buffer | null = null;
  private gatheredBytes = 0;
  private gatherScheduled = false;

  /** `initial`: bytes already read from the socket that belong to the channel (after a SOCKS request). */
  constructor(
    private readonly ch: ChannelCore,
    private readonly socket: Socket,
    private readonly log: (text: string) => void,
    initial?: Buffer,
  ) {
    track('forward', this);
    if (initial?.length) {
      this.pending.push(initial);
      this.pendingBytes = initial.length;
    }
    socket.on('data', (d: Buffer) => this.fromSocket(d, false));
    readers.set(socket, (d) => this.fromSocket(d, true));
    socket.on('end', () => {
      this.eofFromSocket = true;
      this.flush();
    });
    socket.on('error', (e: Error) => this.log(`socket: ${e.message}`));
    socket.on('close', () => {
      this.socketDone = true;
      this.flush();
    });
    ch.sink = this;
    // A client that half-closed while its channel was opening (SOCKS pipelines its request,
    // data and FIN): 'end' came before we listened.
    if (socket.readableEnded) this.eofFromSocket = true;
    // Or went away altogether ('close' came before we listened): the channel closes.
    if (socket.destroyed) this.socketDone = true;
    if (this.pendingBytes || this.eofFromSocket || this.socketDone) this.flush();
  }

  private eofFromSocket = false;

  /** `transient`: `d` is the shared read buffer, valid only now: what flush leaves of it is copied. */
  private fromSocket(d: Buffer, transient: boolean): void {
    this.pending.push(d);
    this.pendingBytes += d.length;
    this.flush();
    const last = this.pending.length - 1;
    if (transient && last >= 0 && this.pending[last].buffer === d.buffer) this.pending[last] = Buffer.from(this.pending[last]);
    if (this.pendingBytes > PAUSE_AT) this.socket.pause();
  }

  /** Sends what the window allows; then EOF and close as the socket's end asks. */
  private flush(): void {
    const ch = this.ch;
    while (this.pending.length && ch.state === 'open' && ch.writableBytes > 0) {
      const head = this.pending[0];
      const n = ch.write(head);
      this.pendingBytes -= n;
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        break;
      }
      this.pending.shift();
    }
    if (this.pendingBytes <= PAUSE_AT && !this.socketDone) this.socket.resume();
    if (this.pending.length || ch.state !== 'open') return;
    if (this.eofFromSocket && !ch.eofSent && !ch.closeSent) ch.sendEof();
    if (this.socketDone && !ch.closeSent) ch.close();
  }

  /** Writes what was gathered; its window goes back once the socket has taken it. */
  private readonly writeGathered = (): void => {
    this.gatherScheduled = false;
    const buf = this.gathered;
    const n = this.gatheredBytes;
    this.gathered = null;
    this.gatheredBytes = 0;
    if (!buf || n === 0) return;
    if (this.socket.destroyed || this.socket.writableEnded) {
      gatherPool.release(buf);
      this.ch.consumed(n);
      return;
    }
    this.socket.write(buf.subarray(0, n), () => {
      gatherPool.release(buf);
      this.ch.consumed(n);
    });
  };

  // ---- ChannelSink ----

  /** Packets are copied (into the gathering buffer) during `data`. */
  readonly copiesData = true;

  data(chunk: Buffer, stream: 0 | 1): void {
    if (stream !== 0 || this.socket.destroyed || this.socket.writableEnded) {
      this.ch.consumed(chunk.length);
      return;
    }
    if (chunk.length > GATHER_BYTES) {
      // The window reopens once the socket has taken the bytes: a slow reader slows the peer.
      this.writeGathered();
      const n = chunk.length;
      this.socket.write(Buffer.from(chunk), () => this.ch.consumed(n));
      return;
    }
    if (this.gathered && this.gatheredBytes + chunk.length > GATHER_BYTES) this.writeGathered();
    if (!this.gathered) this.gathered = gatherPool.take(GATHER_BYTES);
    chunk.copy(this.gathered, this.gatheredBytes);
    this.gatheredBytes += chunk.length;
    if (!this.gatherScheduled) {
      this.gatherScheduled = true;
      // After the I/O callbacks of this turn: every packet of the reads it made goes in one write.
      setImmediate(this.writeGathered);
    }
  }

  eof(): void {
    // What was gathered goes before the end.
    this.writeGathered();
    if (!this.socket.destroyed) this.socket.end();
  }

  closed(error: Error | null): void {
    if (this.closed_) return;
    this.closed_ = true;
    if (error) this.log(`channel closed: ${error.message}`);
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.writeGathered();
    // What the peer sent before closing is in the socket's buffer: end() delivers it. A socket
    // whose far end never closes is cut off after 5 s.
    endWithCutOff(this.socket, 5000);
  }

  writable(): void {
    this.flush();
  }
}
