import type { ChannelCore, ChannelSink } from '../../transport/channel';
import { SSHException } from '../../errors';
import { SftpClientCore } from '../../sftp/client-core';
import { track } from '../live';

/**
 * Joins an SFTP client engine to a session channel in the worker: replies go straight into the
 * engine (no rings, no thread hop), requests go out as the peer's window allows. The window we
 * give back follows what the engine has parsed, which is everything at once: the engine's own
 * in-flight limit is the flow control of a download.
 */
export class SftpClientChannel implements ChannelSink {
  readonly core: SftpClientCore;
  private readonly queue: Buffer[] = [];
  closedError: Error | null = null;

  /** `onClosed`: the channel is gone (closed by either side, or with its connection). */
  constructor(
    readonly channel: ChannelCore,
    private readonly onClosed: () => void = () => undefined,
  ) {
    track('sftp', this);
    this.core = new SftpClientCore((bytes) => this.send(bytes), { copyInput: true });
    channel.sink = this;
  }

  private send(bytes: Buffer): void {
    if (this.closedError) return;
    if (this.queue.length === 0 && this.channel.state === 'open') {
      const n = this.channel.write(bytes);
      if (n === bytes.length) return;
      bytes = bytes.subarray(n);
    }
    this.queue.push(bytes);
  }

  // ---- ChannelSink ----

  /**
   * The engine's framer copies each reply out as it completes (a reply split over packets into
   * one buffer of its size), so channel data may come from the decrypter's reused buffer.
   */
  readonly copiesData = true;

  data(chunk: Buffer, stream: 0 | 1): void {
    if (stream === 0) this.core.receive(chunk);
    this.channel.consumed(chunk.length);
  }

  eof(): void {
    this.core.end(new SSHException('the server ended the SFTP session'));
  }

  closed(error: Error | null): void {
    this.closedError = error ?? new SSHException('the SFTP channel closed');
    this.queue.length = 0;
    this.core.end(this.closedError);
    this.onClosed();
  }

  writable(): void {
    while (this.queue.length && this.channel.writableBytes > 0) {
      const head = this.queue[0];
      const n = this.channel.write(head);
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }

  close(): void {
    this.core.end(new SSHException('the SFTP session is closed'));
    if (this.channel.state === 'open') {
      this.channel.sendEof();
      this.channel.close();
    }
  }
}
