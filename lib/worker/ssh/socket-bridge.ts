/**
 * A channel joined to a local socket, in the worker: what forwarding does with the connections
 * it carries (a forwarded agent connection, a local or remote port forward). Bytes go both
 * ways as they come, with flow control both ways: the channel's window is given back only as
 * the socket takes the data, and the socket is paused while the peer's window is used up. A
 * half-close goes across as EOF and back; either side closing closes the other once what was
 * in flight is delivered.
 */
import type { Socket } from 'node:net';
import type { ChannelCore, ChannelSink } from '../../transport/channel';
import { track } from '../live';
import { endWithCutOff } from './streams';

/** Bytes from the socket waiting for the peer's window beyond which the socket is paused. */
const PAUSE_AT = 256 * 1024;

export class SocketBridge implements ChannelSink {
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The socket ended or closed: the channel closes once `pending` is sent. */
  private socketDone = false;
  private closed_ = false;

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
    socket.on('data', (d: Buffer) => this.fromSocket(d));
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

  private fromSocket(d: Buffer): void {
    this.pending.push(d);
    this.pendingBytes += d.length;
    this.flush();
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

  // ---- ChannelSink ----

  data(chunk: Buffer, stream: 0 | 1): void {
    if (stream !== 0 || this.socket.destroyed || this.socket.writableEnded) {
      this.ch.consumed(chunk.length);
      return;
    }
    // The window reopens once the socket has taken the bytes: a slow reader slows the peer.
    this.socket.write(chunk, () => this.ch.consumed(chunk.length));
  }

  eof(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  closed(error: Error | null): void {
    if (this.closed_) return;
    this.closed_ = true;
    if (error) this.log(`channel closed: ${error.message}`);
    this.pending.length = 0;
    this.pendingBytes = 0;
    // What the peer sent before closing is in the socket's buffer: end() delivers it. A socket
    // whose far end never closes is cut off after 5 s.
    endWithCutOff(this.socket, 5000);
  }

  writable(): void {
    this.flush();
  }
}
