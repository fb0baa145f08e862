/**
 * Agent forwarding, client side: an "auth-agent@openssh.com" channel the server opened (a
 * program on it talks to SSH_AUTH_SOCK there) joined to the local agent's socket, in the
 * worker. Bytes go both ways as they come; the channel's window is given back as the agent
 * takes them, and the agent's socket is paused while the server's window is used up.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { ChannelCore, ChannelSink } from '../../transport/channel';

/** Agent replies waiting for the server's window beyond which the agent's socket is paused. */
const PAUSE_AT = 256 * 1024;

export class AgentForward implements ChannelSink {
  private readonly socket: Socket;
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;

  constructor(
    private readonly ch: ChannelCore,
    socketPath: string,
    private readonly log: (text: string) => void,
  ) {
    this.socket = connect(socketPath);
    this.socket.on('data', (d: Buffer) => this.fromAgent(d));
    this.socket.on('end', () => {
      this.flush();
      if (this.ch.state === 'open' && !this.ch.eofSent) this.ch.sendEof();
    });
    this.socket.on('error', (e: Error) => {
      this.log(`agent socket ${socketPath}: ${e.message}`);
      this.finish();
    });
    this.socket.on('close', () => this.finish());
    ch.sink = this;
  }

  private fromAgent(d: Buffer): void {
    this.pending.push(d);
    this.pendingBytes += d.length;
    this.flush();
    if (this.pendingBytes > PAUSE_AT) this.socket.pause();
  }

  private flush(): void {
    while (this.pending.length && this.ch.state === 'open' && this.ch.writableBytes > 0) {
      const head = this.pending[0];
      const n = this.ch.write(head);
      this.pendingBytes -= n;
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
    if (this.pendingBytes <= PAUSE_AT) this.socket.resume();
  }

  /** The agent is gone (or the channel): close the channel once what the agent said is sent. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.flush();
    if (this.ch.state === 'open' && !this.ch.closeSent) this.ch.close();
  }

  // ---- ChannelSink ----

  data(chunk: Buffer, stream: 0 | 1): void {
    this.ch.consumed(chunk.length);
    if (stream !== 0 || this.done) return;
    this.socket.write(chunk);
  }

  eof(): void {
    this.socket.end();
  }

  closed(): void {
    this.done = true;
    this.pending.length = 0;
    this.socket.destroy();
  }

  writable(): void {
    this.flush();
  }
}
