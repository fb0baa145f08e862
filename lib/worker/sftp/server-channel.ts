/**
 * The SFTP subsystem of the embedded server: a session channel joined to a SftpServerCore
 * (lib/sftp/server-core.ts) with flow control both ways, in the worker.
 *
 * - Requests: the channel's data is framed here into packets, each copied into a buffer of its
 *   own from a pool (the channel's buffer is reused; the core keeps views of a WRITE's data
 *   until it is written) and handed back to the pool once the core is done with it; the
 *   packets go to the core one by one, and the window goes back to the client as it takes them.
 * - Backpressure: while the core has too many requests in progress, or too many reply bytes
 *   wait for the client's window, incoming bytes are held here and not acknowledged, so a
 *   client that sends requests faster than it reads replies runs out of window instead of
 *   making the server buffer without bound. What is held is at most one channel window.
 * - Replies go out as the client's window allows, in whole channel packets (the tail at the end
 *   of the event loop's turn); the rest waits for `writable` or the tail.
 * - End: after the client's EOF, the requests already received are answered, then
 *   exit-status 0, EOF and CLOSE, as sshd does when sftp-server exits at the end of its input.
 *   A protocol error ends the core: exit-status 1 (sftp-server's status for a fatal error),
 *   EOF and CLOSE, with a log line. A closed channel ends the core (its handles are closed).
 */
import type { ChannelCore, ChannelSink } from '../../transport/channel';
import { SftpServerCore } from '../../sftp/server-core';
import { BufferPool } from '../../buffer-pool';
import { DEFAULT_MAX_PACKET } from '../../sftp/constants';
import { PacketFramer } from '../../sftp/framing';
import { track } from '../live';

export interface SftpChannelOptions {
  /** The directory the session is jailed in. */
  root: string;
  readOnly?: boolean;
  /** Applied exactly to created files and directories; default: the process umask. */
  umask?: number;
  /** One line per event, prefixed by the caller (user, peer). */
  log(line: string): void;
}

/**
 * Reply bytes waiting for the client's window beyond which no new request is started: four
 * full-size READ replies (255 KiB each), enough to keep the window full while the client
 * acknowledges. The core's requests in progress add at most REQUESTS_HIGH of those on top.
 */
const OUTPUT_HIGH = 1 << 20;
/**
 * Requests in progress in the core before it is fed no more: OpenSSH's sftp client keeps 64
 * in flight, while a client pipelining thousands of READs (Paramiko's prefetch asks for a
 * whole file at once) makes the server hold at most 64 replies (64 x 255 KiB) being read.
 */
const REQUESTS_HIGH = 64;
/** Idle READ reply buffers kept for reuse, per session: what a 64-deep pipeline of 32 KiB uses. */
const POOL_BYTES = 2 << 20;
/**
 * Idle request packets kept for reuse, per session, while a file is open: an upload's WRITEs in
 * progress (REQUESTS_HIGH) and the next ones arriving. Fresh 32 KiB buffers per WRITE cost an
 * upload more in garbage collection and page faults than its decryption. Packets under
 * REQUEST_POOL_MIN are allocated as usual.
 */
const REQUEST_POOL_BYTES = 8 << 20;
const REQUEST_POOL_MIN = 16 << 10;

export class SftpServerChannel implements ChannelSink {
  private readonly core: SftpServerCore;
  private readonly pool = new BufferPool(POOL_BYTES);
  private readonly recycle = (b: Buffer): void => this.pool.release(b);
  /** Replies waiting for window. */
  private readonly out: Buffer[] = [];
  private outBytes = 0;
  private readonly requestPool = new BufferPool(REQUEST_POOL_BYTES, REQUEST_POOL_MIN);
  /** Frames the channel's data into packets of their own memory (from requestPool). */
  private readonly framer = new PacketFramer(DEFAULT_MAX_PACKET, true, this.requestPool);
  /**
   * Packets received but not given to the core (backpressure), not acknowledged yet; neither
   * are the bytes of a packet not complete yet (in the framer).
   */
  private readonly held: Buffer[] = [];
  private readonly takeHeld = (packet: Buffer): void => void this.held.push(packet);
  private corePaused = false;
  private eofReceived = false;
  private finished = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly started = Date.now();

  constructor(
    private readonly ch: ChannelCore,
    private readonly options: SftpChannelOptions,
  ) {
    track('sftp-server', this);
    this.core = new SftpServerCore(options.root, (bytes) => this.reply(bytes), {
      readOnly: options.readOnly,
      umask: options.umask,
      log: (line) => {
        // The start and end lines say these already.
        if (/^client version \d+$/.test(line) || line.startsWith('sftp session ends: ')) return;
        options.log(line);
      },
      highWaterMark: REQUESTS_HIGH,
      replyPool: this.pool,
      onBackpressure: (paused) => {
        this.corePaused = paused;
        // The core says so just before it sends the reply that freed it: feed after that.
        if (!paused) queueMicrotask(() => this.feed());
      },
      onEnd: (err) => this.fail(err),
    });
    options.log(`session started (root ${options.root}${options.readOnly ? ', read-only' : ''})`);
  }

  /** Whether new requests must wait: the core is busy or the client is not reading replies. */
  private get paused(): boolean {
    return this.corePaused || this.outBytes > OUTPUT_HIGH;
  }

  // ---- replies ----

  /**
   * Replies are queued and sent in full-size channel packets: a 32 KiB READ reply is 13 bytes
   * over the client's usual 32 KiB maximum packet, and sent one by one every reply would cost
   * two packets (a second one of 13 bytes), twice the sealing and the client's opening. The tail
   * that does not fill a packet goes out once the replies ready in this turn of the event loop
   * are queued (setImmediate runs after the I/O callbacks of the turn).
   */
  private reply(bytes: Buffer): void {
    const ch = this.ch;
    if (this.finished || ch.state !== 'open' || ch.eofSent || ch.closeSent) return;
    this.bytesOut += bytes.length;
    this.out.push(bytes);
    this.outBytes += bytes.length;
    // Nothing open and nothing in progress: a transfer ended, and an idle session keeps no buffers.
    if (this.core.pending === 0 && this.core.openHandles === 0) {
      this.requestPool.clear();
      this.pool.clear();
    }
    this.flush(false);
  }

  /** Sends what the window allows: whole packets only unless `tail`; the tail is scheduled. */
  private flush(tail: boolean): void {
    const ch = this.ch;
    const wasPaused = this.paused;
    if (this.outBytes > 0 && ch.writableBytes > 0) this.outBytes -= ch.writeQueue(this.out, this.outBytes, !tail, 0, this.recycle);
    // Requests held while the replies piled up are fed again here, whatever sent them: a window
    // adjust that arrives while some window is left (unused below a whole packet) calls no
    // writable(), and the replies then leave from here or from the tail.
    if (wasPaused && !this.paused && this.held.length) queueMicrotask(() => this.feed());
    if (this.outBytes === 0) this.maybeFinish();
    else if (!tail && !this.tailScheduled) {
      this.tailScheduled = true;
      setImmediate(this.sendTail);
    }
  }

  private tailScheduled = false;
  private readonly sendTail = (): void => {
    this.tailScheduled = false;
    if (this.finished || this.ch.state !== 'open' || this.ch.eofSent || this.ch.closeSent) return;
    this.flush(true);
  };

  // ---- requests ----

  /**
   * Gives held packets to the core one at a time while it is not paused, acknowledging each
   * (its length word included). One at a time: one 32 KiB channel message can carry a thousand
   * READs, which the core would start at once if given them all.
   */
  private feed(): void {
    while (this.held.length && !this.paused && !this.finished) {
      const packet = this.held.shift()!;
      this.core.receivePacket(packet, () => this.requestPool.release(packet));
      this.ch.consumed(packet.length + 4);
    }
    this.maybeFinish();
  }

  // ---- the end ----

  /** After the client's EOF: every request answered and sent, then the exit status. */
  private maybeFinish(): void {
    if (!this.eofReceived || this.finished || this.held.length || this.core.pending > 0 || this.outBytes > 0) return;
    this.finish(0, 'client EOF');
  }

  private finish(status: number, why: string): void {
    if (this.finished) return;
    this.finished = true;
    this.logEnd(why);
    void this.core.end();
    const ch = this.ch;
    if (ch.state === 'open' && !ch.closeSent) {
      if (!ch.eofSent) void ch.request('exit-status', false, (m) => m.addInt(status)).catch(() => undefined);
      ch.sendEof();
      ch.close();
    }
  }

  /** The core ended itself (a malformed or oversize packet): the channel goes too. */
  private fail(err: Error): void {
    this.held.length = 0;
    // What fits of the replies already queued (a BAD_MESSAGE status) goes before the close.
    const ch = this.ch;
    if (ch.state === 'open' && !ch.eofSent && !ch.closeSent && ch.writableBytes > 0) ch.writeQueue(this.out, this.outBytes);
    this.out.length = 0;
    this.outBytes = 0;
    this.finish(1, `protocol error: ${err.message}`);
  }

  private logEnd(why: string): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    const left = this.core.openHandles;
    this.options.log(`session ended (${why}): ${this.bytesIn} bytes in, ${this.bytesOut} bytes out${this.ch.pacingNote}, ${secs} s${left ? `, ${left} handles left open` : ''}`);
  }

  // ---- ChannelSink ----

  /** Data is copied into `held` on arrival. */
  readonly copiesData = true;

  data(chunk: Buffer, stream: 0 | 1): void {
    if (stream !== 0 || this.finished) {
      // Stderr from a client means nothing to SFTP; its window is given back.
      this.ch.consumed(chunk.length);
      return;
    }
    this.bytesIn += chunk.length;
    try {
      this.framer.push(chunk, this.takeHeld);
    } catch (err) {
      // An oversize length: the stream cannot be framed past it. What came before it is answered first.
      this.feed();
      this.core.protocolError(err as Error);
      return;
    }
    this.feed();
  }

  eof(): void {
    this.eofReceived = true;
    this.maybeFinish();
  }

  closed(error: Error | null): void {
    this.held.length = 0;
    this.out.length = 0;
    this.outBytes = 0;
    if (!this.finished) this.finish(0, error ? `connection closed: ${error.message}` : 'channel closed');
  }

  writable(): void {
    this.flush(false);
    this.feed();
  }
}
