import { ChannelException, SSHException } from '../errors';
import { Message } from '../wire/message';
import { MSG } from './constants';
import { FlightPacer } from './flight-pacer';
import type { PacingHints } from './flight-pacer';

/** Paramiko's and OpenSSH's session defaults: a 2 MiB window, 32 KiB packets. */
export const DEFAULT_WINDOW_SIZE = 2 * 1024 * 1024;
/**
 * The window the receiving end of an SFTP session announces, client or server: a pipeline of
 * large READs or WRITEs needs more than a shell, and a quarter of it is used before we adjust.
 */
export const SFTP_WINDOW_SIZE = 8 * DEFAULT_WINDOW_SIZE;
export const DEFAULT_MAX_PACKET_SIZE = 32 * 1024;
/**
 * Our window goes back to the peer in this many steps: a WINDOW_ADJUST once a quarter of it is
 * used. At half (as AsyncSSH) a peer far away had 1-2 MiB of a 2 MiB window in flight: an exec
 * stream through a 20 ms round trip ran at 52-54 MB/s against OpenSSH's client's 78 (which
 * adjusts every three packets); at a quarter 74-75, and on loopback no change past the noise.
 * Still large steps to a pacer (flight-pacer.ts takes under an eighth as small).
 */
const ADJUST_STEPS = 4;
/** Bytes of packet overhead beyond the data, so a full-size data packet stays under the limit. */
const DATA_HEADER = 9;
/** OpenSSH accepts packets up to 256 KiB; we never send data packets larger than this. */
export const MAX_DATA_PACKET = 256 * 1024 - 1024;
/**
 * What a Transport announces for the channels it opens unless told otherwise (its
 * defaultWindowSize and defaultMaxPacketSize): a 4 MiB window, and packets as large as
 * OpenSSH's transport takes, where Paramiko and OpenSSH announce 2 MiB and 32 KiB. A 1 GiB
 * stream from sshd (`head -c`, read with recv(1 MiB)) ran at 827-894 MB/s with theirs, 979-1046
 * with these: sshd sends fewer, larger packets and runs ahead further while our worker waits for
 * a vCPU (docs/performance.md, session 24). The rings holding a window are sized by it.
 */
export const CLIENT_WINDOW_SIZE = 2 * DEFAULT_WINDOW_SIZE;
export const CLIENT_MAX_PACKET_SIZE = MAX_DATA_PACKET;

/** Sends a payload of `length` bytes that `fill` writes in place (see Session.sendFilled). */
export type SendFilled = (length: number, fill: (into: Buffer) => void) => void;

/** How a channel hands data and events to its owner (the worker's buffers, or a test). */
export interface ChannelSink {
  /** Data from the peer; `stream` 1 is stderr (extended data type 1). */
  data(chunk: Buffer, stream: 0 | 1): void;
  eof(): void;
  /**
   * True when `data` copies what it keeps before returning: the channel may then hand it a view
   * of a buffer the packet codec reuses (otherwise it hands a copy).
   */
  readonly copiesData?: boolean;
  /** The channel is closed both ways (or the connection died: `error`). */
  closed(error: Error | null): void;
  /** The peer's window grew: more can be written. */
  writable(): void;
  /** A request from the peer not handled by the channel itself (exec, pty-req... on a server). */
  request?(type: string, wantReply: boolean, msg: Message): boolean | Promise<boolean>;
  /** exit-status or exit-signal arrived. */
  exit?(): void;
}

export interface ExitSignal {
  signal: string;
  coreDumped: boolean;
  message: string;
}

/**
 * One channel (RFC 4254 section 5) without I/O: flow control both ways, in-order request
 * replies, EOF and close. Writing returns how much the peer's window allowed; reading is
 * acknowledged with `consumed`, which reopens our window.
 */
export class ChannelCore {
  remoteId = -1;
  remoteWindow = 0;
  remoteMaxPacket = 0;
  /** Bytes the peer may still send us. */
  localWindow: number;
  /** The window we announce (the most the peer may have in flight); grown by growWindow. */
  windowSize: number;
  state: 'opening' | 'open' | 'closed' = 'opening';
  eofReceived = false;
  eofSent = false;
  closeSent = false;
  closeReceived = false;
  exitStatus: number | null = null;
  exitSignal: ExitSignal | null = null;
  /** Any data arrived (see finish). */
  private receivedData = false;
  private sinkRef: ChannelSink | null = null;
  /** Events that came before a sink was attached: data can follow OPEN_CONFIRMATION in the
   * same read, before the opener's continuation attaches its sink. */
  private early: Array<(s: ChannelSink) => void> | null = [];
  /** Consumed bytes not yet returned to the peer as window. */
  private unacked = 0;
  /** Bytes the peer sent past our window since it last kept to it (see spend). */
  private windowExcess = 0;
  private readonly replies: Array<{ resolve(ok: boolean): void; reject(e: Error): void }> = [];
  /** Replies to the peer's requests go out in order even when a handler is async. */
  private replyChain: Promise<void> = Promise.resolve();
  /** The peer's requests whose handlers have not finished. */
  private requestsPending = 0;
  /** How much of the peer's window is used on a local link (see flight-pacer.ts). */
  private pacer: FlightPacer | null = null;
  /** What the connection knows of its peer (set before the channel opens): see FlightPacer. */
  pacingHints: PacingHints = {};
  /** Armed while the pacer holds data back; lifts the limit if no adjust comes in time. */
  private holdTimer: NodeJS.Timeout | null = null;
  /** When the pacer began holding data back with window left (-1: it is not). */
  private heldSince = -1;

  /** With `sendFilled`, data is written straight into the packet; without, into a payload for `send`. */
  constructor(
    readonly localId: number,
    readonly kind: string,
    windowSize: number,
    readonly maxPacket: number,
    private readonly send: (payload: Buffer) => void,
    private readonly sendFilled?: SendFilled,
  ) {
    this.windowSize = windowSize;
    this.localWindow = windowSize;
  }

  /**
   * Widens our window to `size` (never narrows it), telling the peer at once: for a channel
   * whose use is known only once it is open (a session that starts the sftp subsystem, say).
   * Not for a channel whose data goes through the main thread's rings: their size bounds the
   * window (lib/worker/ssh/channel.ts sizes them from it when the channel opens).
   */
  growWindow(size: number): void {
    const more = Math.min(size, 0xffffffff) - this.windowSize;
    if (more <= 0 || this.state !== 'open' || this.closeSent || this.eofReceived) return;
    this.send(new Message().addByte(MSG.CHANNEL_WINDOW_ADJUST).addInt(this.remoteId).addInt(more).asBytes());
    this.windowSize += more;
    this.localWindow += more;
  }

  get sink(): ChannelSink | null {
    return this.sinkRef;
  }

  /** Attaches the owner of the channel's events, replaying what arrived before. */
  set sink(sink: ChannelSink | null) {
    this.sinkRef = sink;
    const early = this.early;
    if (sink && early) {
      this.early = null;
      for (const replay of early) replay(sink);
    }
  }

  /** Delivers an event to the sink, or holds it until one is attached. */
  private deliver(event: (s: ChannelSink) => void): void {
    if (this.sinkRef) event(this.sinkRef);
    else if (this.early) this.early.push(event);
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Paramiko's send_ready: there is window to write into (or the channel is closed). */
  get writableBytes(): number {
    if (this.state !== 'open' || this.eofSent || this.closeSent) return 0;
    // Callers ask when they have data to write.
    const n = this.room();
    if (n === 0) this.holdIfPaced();
    return n;
  }

  /** Of the peer's window, what the pacer lets go now (all of it without a pacer). */
  private room(): number {
    return this.pacer ? this.pacer.allowance(this.remoteWindow) : this.remoteWindow;
  }

  /**
   * Called when data waits and room() is 0: if the pacer, not the peer, holds it (window is
   * left), a timer lifts the limit should no adjust come within the pacer's holdTimeout. The
   * timer outlives the holds it does not end: an adjust only marks the hold over, and a timer
   * that finds a later hold re-arms for what that one has left, so a paced stream (a hold every
   * few packets) costs no timer per hold.
   */
  private holdIfPaced(): void {
    const pacer = this.pacer;
    if (!pacer || this.remoteWindow === 0 || this.state !== 'open') return;
    if (this.heldSince < 0) this.heldSince = performance.now();
    if (!this.holdTimer) this.armHold(pacer, pacer.holdTimeout);
  }

  private armHold(pacer: FlightPacer, ms: number): void {
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      if (this.state !== 'open' || this.heldSince < 0) return;
      const left = this.heldSince + pacer.holdTimeout - performance.now();
      if (left > 0) return this.armHold(pacer, left);
      this.heldSince = -1;
      if (this.room() === 0 && this.remoteWindow > 0 && pacer.release()) this.deliver((s) => s.writable());
    }, ms);
    this.holdTimer.unref?.();
  }

  /**
   * For a log line: ` (how much pacing held in flight, or why it never applied)`, or '' when no
   * data was sent.
   */
  get pacingNote(): string {
    const summary = this.pacer?.summary;
    return summary ? ` (${summary})` : '';
  }

  private clearHold(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.heldSince = -1;
  }

  /**
   * Sends as much of `data` as the peer's window allows, in packets of at most its maximum
   * packet size; returns the number of bytes sent (0 when the window is closed).
   */
  write(data: Buffer, stream: 0 | 1 = 0): number {
    return this.writeQueue([data], data.length, false, stream);
  }

  /**
   * Sends bytes from the front of `queue` (`queued` bytes in all) as the peer's window allows,
   * each packet filled from as many of its buffers as it takes: a buffer sent whole leaves the
   * queue, one sent in part is replaced by its rest. With `wholePackets`, stops before a packet
   * smaller than the peer's maximum (the caller has more coming and sends the tail later), so a
   * stream of messages a little over the maximum does not cost two packets each. `sent` is
   * called with each buffer once the last of it is sent. Returns the bytes sent.
   */
  writeQueue(queue: Buffer[], queued: number, wholePackets = false, stream: 0 | 1 = 0, sent?: (b: Buffer) => void): number {
    if (this.state !== 'open') throw new SSHException('channel is not open');
    if (this.eofSent || this.closeSent) throw new SSHException('cannot write after EOF or close (socket is closed)');
    const limit = Math.min(this.remoteMaxPacket, MAX_DATA_PACKET);
    const head = stream ? 13 : 9;
    let total = 0;
    while (total < queued) {
      const room = this.room();
      if (room === 0) {
        this.holdIfPaced();
        break;
      }
      const n = Math.min(queued - total, room, limit);
      if (wholePackets && n < limit) break;
      // Type, channel, [data type,] length, data.
      const fill = (payload: Buffer): void => {
        payload[0] = stream ? MSG.CHANNEL_EXTENDED_DATA : MSG.CHANNEL_DATA;
        payload.writeUInt32BE(this.remoteId >>> 0, 1);
        if (stream) payload.writeUInt32BE(1, 5);
        payload.writeUInt32BE(n, head - 4);
        for (let at = head; at < payload.length; ) {
          const b = queue[0];
          const take = Math.min(b.length, payload.length - at);
          b.copy(payload, at, 0, take);
          at += take;
          if (take === b.length) {
            queue.shift();
            sent?.(b);
          } else queue[0] = b.subarray(take);
        }
      };
      if (this.sendFilled) this.sendFilled(head + n, fill);
      else {
        const payload = Buffer.allocUnsafe(head + n);
        fill(payload);
        this.send(payload);
      }
      this.remoteWindow -= n;
      total += n;
      // Counted per packet: room() reads it for the next one.
      this.pacer?.onSent(n);
    }
    return total;
  }

  /**
   * How many more consumed bytes make `consumed` send a WINDOW_ADJUST: 1 once the peer's window
   * is nearly spent (it may be waiting for any), Infinity when no adjustment will be sent.
   */
  get consumptionBeforeAdjust(): number {
    if (this.state !== 'open' || this.closeSent || this.eofReceived) return Infinity;
    if (this.localWindow < this.maxPacket + DATA_HEADER) return 1;
    return Math.max(1, this.windowSize / ADJUST_STEPS - this.unacked);
  }

  /** The owner handed `n` received bytes to the user: reopen our window when a quarter is used. */
  consumed(n: number): void {
    this.unacked += n;
    if (this.state !== 'open' || this.closeSent || this.eofReceived) return;
    if (this.unacked >= this.windowSize / ADJUST_STEPS || this.localWindow < this.maxPacket + DATA_HEADER) {
      this.send(new Message().addByte(MSG.CHANNEL_WINDOW_ADJUST).addInt(this.remoteId).addInt(this.unacked).asBytes());
      this.localWindow += this.unacked;
      this.unacked = 0;
    }
  }

  /** A channel request; resolves with the peer's answer (true when no reply is wanted). */
  request(type: string, wantReply: boolean, fill?: (m: Message) => void): Promise<boolean> {
    if (this.state !== 'open' || this.closeSent) return Promise.reject(new SSHException('channel is not open'));
    const m = new Message().addByte(MSG.CHANNEL_REQUEST).addInt(this.remoteId).addString(type).addBoolean(wantReply);
    fill?.(m);
    this.send(m.asBytes());
    if (!wantReply) return Promise.resolve(true);
    return new Promise((resolve, reject) => this.replies.push({ resolve, reject }));
  }

  sendEof(): void {
    if (this.state !== 'open' || this.eofSent || this.closeSent) return;
    this.eofSent = true;
    this.send(new Message().addByte(MSG.CHANNEL_EOF).addInt(this.remoteId).asBytes());
  }

  /** Whether a request of ours waits for its reply. */
  get awaitingReply(): boolean {
    return this.replies.length > 0;
  }

  /** Sends CLOSE once; the channel is gone when the peer's CLOSE arrives too. */
  close(): void {
    if (this.closeSent || this.state === 'closed') return;
    if (this.state === 'opening') return;
    this.closeSent = true;
    this.send(new Message().addByte(MSG.CHANNEL_CLOSE).addInt(this.remoteId).asBytes());
    if (this.closeReceived) this.finish(null);
  }

  // ---- from the connection ----

  opened(remoteId: number, window: number, maxPacket: number): void {
    this.remoteId = remoteId;
    this.remoteWindow = window;
    this.remoteMaxPacket = Math.max(1, maxPacket);
    this.pacer = new FlightPacer(Math.min(this.remoteMaxPacket, MAX_DATA_PACKET), window, undefined, this.pacingHints);
    this.state = 'open';
  }

  /**
   * A channel the peer opened is confirmed (the confirmation is sent): a sink that had data
   * before (a forwarded connection whose far end spoke first) may send it now.
   */
  confirmed(): void {
    if (this.remoteWindow > 0) this.deliver((s) => s.writable());
  }

  /**
   * With `transient`, `data` is valid only during the call (see ChannelSink.copiesData). Returns
   * how many bytes came past our window (see spend): 0 from a peer that keeps to it.
   */
  onData(data: Buffer, stream: 0 | 1, transient = false): number {
    const over = this.spend(data.length);
    // Data after the peer's own EOF breaks RFC 4254 5.3; OpenSSH drops it (counting its window)
    // and keeps the connection, and so does this: only that data is lost, not every channel.
    if (this.eofReceived || this.closeReceived) return over;
    this.receivedData = true;
    const copy = this.sinkRef && (!transient || this.sinkRef.copiesData) ? data : Buffer.from(data);
    this.deliver((s) => s.data(copy, stream));
    return over;
  }

  /** Data of a kind nobody reads (extended data other than stderr): window used and returned. */
  discard(n: number): number {
    const over = this.spend(n);
    this.consumed(n);
    return over;
  }

  /**
   * Takes `n` received bytes off our window. Past it, as OpenSSH 9: the data is kept and the
   * window taken as spent, up to a tenth of the window in excess since the peer last kept to
   * it (some implementations count their window a packet late); beyond that the peer ignores
   * flow control and the connection ends. Returns the bytes past the window.
   */
  private spend(n: number): number {
    if (n <= this.localWindow) {
      this.localWindow -= n;
      this.windowExcess = 0;
      return 0;
    }
    const over = n - this.localWindow;
    this.windowExcess += over;
    this.localWindow = 0;
    if (this.windowExcess > this.windowSize / 10) {
      throw new SSHException(`channel ${this.localId}: the peer ignored the channel window (${this.windowExcess} bytes past it, ${Math.floor(this.windowSize / 10)} allowed)`);
    }
    return over;
  }

  onWindowAdjust(n: number): void {
    const could = this.state === 'open' ? this.room() : 0;
    this.remoteWindow = Math.min(this.remoteWindow + n, 0xffffffff);
    this.pacer?.onAdjust(n, this.remoteWindow);
    // The hold is over; its timer, if any, finds that (or a later hold) when it fires.
    this.heldSince = -1;
    // Still held (the adjust only grew the window): the timer runs again from here.
    if (this.room() === 0) this.holdIfPaced();
    else if (could === 0) this.deliver((s) => s.writable());
  }

  onEof(): void {
    this.eofReceived = true;
    this.deliver((s) => s.eof());
  }

  onClose(): void {
    this.closeReceived = true;
    if (!this.eofReceived) this.onEof();
    if (!this.closeSent && this.state === 'open') {
      this.closeSent = true;
      this.send(new Message().addByte(MSG.CHANNEL_CLOSE).addInt(this.remoteId).asBytes());
    }
    this.finish(null);
  }

  /** Settles the oldest request waiting for its reply; false when none was waiting. */
  onReply(ok: boolean): boolean {
    const r = this.replies.shift();
    r?.resolve(ok);
    return r !== undefined;
  }

  onRequest(type: string, wantReply: boolean, msg: Message): void {
    if (type === 'exit-status') {
      this.exitStatus = msg.getInt();
      this.deliver((s) => s.exit?.());
      return;
    }
    if (type === 'exit-signal') {
      const signal = msg.getText();
      const coreDumped = msg.getBoolean();
      const message = msg.getText();
      this.exitSignal = { signal, coreDumped, message };
      this.deliver((s) => s.exit?.());
      return;
    }
    const handler = this.sink?.request;
    const answer = (ok: boolean) => {
      if (!wantReply || this.closeSent || this.state !== 'open') return;
      this.send(new Message().addByte(ok ? MSG.CHANNEL_SUCCESS : MSG.CHANNEL_FAILURE).addInt(this.remoteId).asBytes());
    };
    const decide = (): boolean | Promise<boolean> => {
      try {
        return handler ? handler.call(this.sink, type, wantReply, msg) : false;
      } catch {
        return false;
      }
    };
    if (this.requestsPending === 0) {
      // Nothing undecided before it: decided now, before any data that came in the same read
      // reaches the sink (input typed after a window-change must find the new size applied).
      const now = decide();
      if (typeof (now as Promise<boolean> | null)?.then !== 'function') {
        answer(Boolean(now));
        return;
      }
      this.chainReply(Promise.resolve(now), answer);
      return;
    }
    // Behind an undecided one: decided after it, so that requests apply in order.
    this.chainReply(this.replyChain.then(decide), answer);
  }

  /** Replies go out in the order of the requests, whenever their handlers finish (a rejection refuses). */
  private chainReply(decision: Promise<boolean>, answer: (ok: boolean) => void): void {
    this.requestsPending++;
    const decided = decision.then(Boolean, () => false);
    this.replyChain = this.replyChain
      .then(() => decided)
      .then((ok) => {
        this.requestsPending--;
        // A reply that cannot go out (the connection just died) must not stall the chain.
        try {
          answer(ok);
        } catch {
          // the connection's own error reaches the caller
        }
      });
  }

  /** Ends the channel: settles waiters and tells the sink. */
  finish(error: Error | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearHold();
    const err = error ?? new SSHException('channel closed');
    // A server that ran the command may close before its reply goes out (Paramiko's server
    // replies from one thread while another sends exit-status and CLOSE): an exit status or
    // output on a cleanly closed channel means the request was accepted.
    const ran = error === null && (this.exitStatus !== null || this.exitSignal !== null || this.receivedData);
    for (const r of this.replies.splice(0)) ran ? r.resolve(true) : r.reject(err);
    this.deliver((s) => s.closed(error));
  }

  /** An open that failed. */
  static openFailure(msg: Message): ChannelException {
    const code = msg.getInt();
    const text = msg.getText();
    return new ChannelException(code, text);
  }
}
