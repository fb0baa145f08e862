import { SharedRing } from '../../bridge/ring';
import type { Doorbell } from '../../bridge/ring';
import type { ChannelCore, ChannelSink, ExitSignal } from '../../transport/channel';
import { SSHException } from '../../errors';
import type { Message } from '../../wire/message';
import { track } from '../live';

/**
 * Something to send after the data written to the stdin ring before it was queued (stderr data,
 * exit-status): `mark` is the ring's write count then.
 */
interface Ordered {
  mark: number;
  stderr?: Buffer;
  run?: () => void;
  done: (error: Error | null) => void;
}

/** What the main thread gets to drive a channel: its id and the shared rings. */
export interface ChannelHandleInfo {
  chanId: number;
  /** The peer's number for the channel, and the sizes each side announced at open. */
  remoteId: number;
  windowSize: number;
  maxPacket: number;
  remoteMaxPacket: number;
  /** Rings the worker writes and the main thread reads: stdout, stderr. */
  stdout: SharedArrayBuffer;
  stderr: SharedArrayBuffer;
  /** Ring the main thread writes and the worker reads (data to send). */
  stdin: SharedArrayBuffer;
  /** Shared status words (see STATUS_*). */
  status: SharedArrayBuffer;
}

/** Status words shared with the main thread (Int32 indexes). */
export const STATUS_FLAGS = 0;
export const STATUS_EXIT = 1;
export const FLAG_EXIT_STATUS = 1;
export const FLAG_EXIT_SIGNAL = 2;
export const FLAG_CLOSED = 4;
export const FLAG_EOF_SENT = 8;
export const FLAG_CLOSE_SENT = 16;
export const FLAG_CORE_DUMPED = 32;
/** Bytes of the status buffer: 4 Int32 words, then the exit signal's name and message. */
export const STATUS_BYTES = 256;
/** Byte offset and room of the signal name, then of the signal's message (both UTF-8). */
export const STATUS_SIGNAL_AT = 16;
export const STATUS_SIGNAL_ROOM = 48;
export const STATUS_MESSAGE_AT = 64;
export const STATUS_MESSAGE_ROOM = 192;
/** Int32 words holding the byte lengths of the name and the message. */
export const STATUS_SIGNAL_LEN = 2;
export const STATUS_MESSAGE_LEN = 3;

/** Smallest power of two that holds the window (rings need a power-of-two capacity). */
function ringSize(window: number): number {
  let n = 4096;
  while (n < window) n *= 2;
  return n;
}

/**
 * The worker's side of one channel: received data goes into rings the main thread reads,
 * and the window reopens as the main thread consumes it; data the main thread wrote into the
 * stdin ring is sent as the peer's window allows. In drain mode (a caller waits for the exit
 * status) data beyond the rings is kept here, so a command never stalls on a full window.
 */
export class WorkerChannel implements ChannelSink {
  readonly out: [SharedRing, SharedRing];
  readonly inRing: SharedRing;
  readonly status: Int32Array;
  private readonly statusSab: SharedArrayBuffer;
  private spill: [Buffer[], Buffer[]] = [[], []];
  private spillBytes = 0;
  private drain = false;
  private watchingConsumption = false;
  /** Makes the consumption watcher look at the rings again. */
  private watchKick: (() => void) | null = null;
  private pumping = false;
  private eofRequested = false;
  private closeRequested = false;
  private readonly exitWaiters: Array<() => void> = [];
  private readonly closeWaiters: Array<() => void> = [];
  closedError: Error | null = null;
  isClosed = false;
  /** Read counts of the out rings already acknowledged to the channel as consumed. */
  private acked: [number, number] = [0, 0];
  /** Bytes per stream whose window was returned on arrival (drain mode) and not yet read. */
  private credited: [number, number] = [0, 0];

  constructor(
    readonly core: ChannelCore,
    doorbell: Doorbell,
    private readonly onFinished: (ch: WorkerChannel) => void,
    /** Called when a ring holds data the main thread has not been woken for. */
    private readonly onDirty: (ch: WorkerChannel) => void = (ch) => ch.flushSignals(),
    /** The connection's debug log (a no-op unless NODE_DEBUG names its section). */
    private readonly log: (text: string) => void = () => undefined,
  ) {
    track('channel', this);
    const size = ringSize(core.windowSize);
    this.out = [new SharedRing(size, { doorbell }), new SharedRing(size, { doorbell })];
    this.inRing = new SharedRing(ringSize(Math.max(core.maxPacket * 8, 256 * 1024)), { doorbell });
    this.statusSab = new SharedArrayBuffer(STATUS_BYTES);
    this.status = new Int32Array(this.statusSab);
    core.sink = this;
    void this.pumpOutbound();
  }

  info(): ChannelHandleInfo {
    return {
      chanId: this.core.localId,
      remoteId: this.core.remoteId,
      windowSize: this.core.windowSize,
      maxPacket: this.core.maxPacket,
      remoteMaxPacket: this.core.remoteMaxPacket,
      stdout: this.out[0].sab,
      stderr: this.out[1].sab,
      stdin: this.inRing.sab,
      status: this.statusSab,
    };
  }

  /** Where the peer says the channel comes from (an accepted x11 channel: the X client's address and port, RFC 4254 6.3.2). */
  origin: [string, number] | null = null;
  /** A forwarded-tcpip channel: the server's address and port that were connected (RFC 4254 7.2). */
  forwardedTo: [string, number] | null = null;

  /** Server: decides the client's requests on this channel (exec, pty-req...). */
  requestHandler: ((type: string, wantReply: boolean, msg: Message) => boolean | Promise<boolean>) | null = null;

  request(type: string, wantReply: boolean, msg: Message): boolean | Promise<boolean> {
    return this.requestHandler ? this.requestHandler(type, wantReply, msg) : false;
  }

  // ---- ChannelSink ----

  /** Paramiko's combine_stderr: stderr data joins the stdout stream in arrival order. */
  combineStderr = false;

  /** Data goes into the ring (a copy) or, past it, into a spill copy: never kept as given. */
  readonly copiesData = true;

  data(chunk: Buffer, stream: 0 | 1): void {
    if (this.combineStderr) stream = 0;
    if (this.readShut) {
      this.core.consumed(chunk.length);
      return;
    }
    if (this.drain) {
      // Drain mode: the window reopens on arrival, whatever the main thread reads.
      this.core.consumed(chunk.length);
      this.credited[stream] += chunk.length;
    }
    // A ring going from empty to not empty changes what the watcher waits on.
    if (this.out[stream].available() === 0) this.watchKick?.();
    if (this.spill[stream].length === 0) {
      // Quiet: the connection wakes the main thread once per socket read (flushSignals).
      const n = this.out[stream].writeQuiet(chunk);
      this.onDirty(this);
      chunk = chunk.subarray(n);
    }
    if (chunk.length) {
      // Only in drain mode does data outrun a ring (each ring holds a whole window otherwise).
      this.spill[stream].push(Buffer.from(chunk));
      this.spillBytes += chunk.length;
    }
    this.watchConsumption();
    if (this.core.consumptionBeforeAdjust === 1) this.windowSpent();
  }

  /**
   * The peer's window is (nearly) spent: it may send nothing until we return some, and no data
   * will come to kick the watcher. What the main thread read already is returned now, and its
   * next read of either ring wakes the watcher.
   */
  private windowSpent(): void {
    this.ackConsumed();
    if (this.core.consumptionBeforeAdjust !== 1) return;
    // One byte past what was acknowledged, not past what the main thread has read by now: a
    // read it made since ackConsumed looked would otherwise never be counted (both asleep).
    for (const s of [0, 1] as const) if (this.consumedWaits[s]) this.out[s].retargetConsumed(this.acked[s] + 1);
  }

  eof(): void {
    this.log('EOF received');
    this.closeDrainedRings();
  }

  closed(error: Error | null): void {
    this.log(`${error ? `closed: ${error.message}` : 'closed'}${this.core.pacingNote}`);
    this.isClosed = true;
    for (const item of this.ordered.splice(0)) item.done(error ?? new SSHException('channel closed'));
    this.closedError = error;
    Atomics.or(this.status, STATUS_FLAGS, FLAG_CLOSED);
    this.closeDrainedRings();
    this.inRing.closeReader();
    for (const w of this.exitWaiters.splice(0)) w();
    for (const w of this.closeWaiters.splice(0)) w();
    this.onFinished(this);
  }

  writable(): void {
    this.flushNow();
  }

  exit(): void {
    const signal = this.core.exitSignal;
    this.log(signal ? `exit signal ${signal.signal}${signal.coreDumped ? ' (core dumped)' : ''}` : `exit status ${this.core.exitStatus}`);
    if (this.core.exitStatus !== null) {
      Atomics.store(this.status, STATUS_EXIT, this.core.exitStatus);
      Atomics.or(this.status, STATUS_FLAGS, FLAG_EXIT_STATUS);
    }
    const sig = this.core.exitSignal;
    if (sig) {
      const bytes = new Uint8Array(this.statusSab);
      const name = Buffer.from(sig.signal).subarray(0, STATUS_SIGNAL_ROOM);
      const text = Buffer.from(sig.message).subarray(0, STATUS_MESSAGE_ROOM);
      bytes.set(name, STATUS_SIGNAL_AT);
      bytes.set(text, STATUS_MESSAGE_AT);
      Atomics.store(this.status, STATUS_SIGNAL_LEN, name.length);
      Atomics.store(this.status, STATUS_MESSAGE_LEN, text.length);
      Atomics.or(this.status, STATUS_FLAGS, FLAG_EXIT_SIGNAL | (sig.coreDumped ? FLAG_CORE_DUMPED : 0));
    }
    for (const w of this.exitWaiters.splice(0)) w();
  }

  get exitSignal(): ExitSignal | null {
    return this.core.exitSignal;
  }

  /** Wakes the main thread for data stored with writeQuiet. */
  flushSignals(): void {
    this.out[0].flushSignal();
    this.out[1].flushSignal();
  }

  // ---- inbound flow control ----

  /** After EOF, each stream's ring closes once its spilled data is in it. */
  private closeDrainedRings(): void {
    if (!this.core.eofReceived && !this.isClosed) return;
    for (const s of [0, 1] as const) if (this.spill[s].length === 0) this.out[s].close();
  }

  /** Gives the peer back the window for what the main thread read, less what was credited already. */
  private ackConsumed(): void {
    for (const s of [0, 1] as const) {
      const read = this.out[s].readCount;
      const delta = (read - this.acked[s]) >>> 0;
      if (!delta) continue;
      this.acked[s] = read;
      const already = Math.min(delta, this.credited[s]);
      this.credited[s] -= already;
      if (delta > already) this.core.consumed(delta - already);
    }
  }

  /**
   * Returns the window for what the main thread reads, and moves spilled data into the rings,
   * without blocking the event loop: wakes when the main thread has read enough of a ring (see
   * consumptionTarget) or when data arrives into an empty ring (the kick; every read since
   * counts then), until nothing is left unread.
   */
  private watchConsumption(): void {
    if (this.watchingConsumption || this.isClosedForData()) return;
    this.watchingConsumption = true;
    void (async () => {
      try {
        while (!this.isClosedForData()) {
          this.moveSpill();
          // A ring whose writer end is closed has nothing more coming, and its wait would
          // return at once: only open rings with unread data are worth waiting on.
          const busy = ([0, 1] as const).filter((s) => this.out[s].available() > 0 && !this.out[s].closed && !this.out[s].readerClosed);
          if (busy.length === 0) break;
          const kicked = new Promise<void>((resolve) => (this.watchKick = resolve));
          await Promise.race([kicked, ...busy.map((s) => this.consumed(s))]);
          this.watchKick = null;
          this.ackConsumed();
        }
        this.ackConsumed();
      } finally {
        this.watchingConsumption = false;
      }
    })();
  }

  /**
   * The pending wait for the main thread's reads of ring `s` to reach their target, started if
   * there is none. An Atomics.waitAsync cannot be cancelled: one that loses the race against a
   * kick stays registered, and the main thread's reads keep waking it (a task posted to this
   * thread each time) until its condition holds. Starting one per kick piled up hundreds during
   * a stream, every read waking them all; so a ring has at most one, raced until it settles.
   */
  private consumed(s: 0 | 1): Promise<void> {
    let wait = this.consumedWaits[s];
    if (!wait) {
      wait = this.out[s].waitConsumedAsync(this.consumptionTarget(s)).finally(() => {
        this.consumedWaits[s] = null;
      });
      this.consumedWaits[s] = wait;
    }
    return wait;
  }
  private readonly consumedWaits: [Promise<void> | null, Promise<void> | null] = [null, null];

  /**
   * The read count of ring `s` at which the main thread's reads wake this thread: once they make
   * the channel send a WINDOW_ADJUST (half the window; any read once the peer's window is spent),
   * or free a quarter of the ring for spilled data. A read short of it wakes nothing (a
   * cross-thread wake costs both threads; the main thread reads thousands of times per GiB):
   * whatever it read is counted at the next wake or kick. With the peer's window open, data
   * keeps coming and kicks; once it is spent, windowSpent makes the next read wake.
   */
  private consumptionTarget(s: 0 | 1): number {
    const ring = this.out[s];
    let amount = this.core.consumptionBeforeAdjust;
    if (this.spill[s].length) amount = Math.min(amount, ring.capacity / 4);
    // No adjustment will be sent (EOF came): wake once the ring is drained, to close it.
    if (!Number.isFinite(amount)) return ring.writeCount;
    // Counted from what ackConsumed last saw, not from the read count now: the main thread
    // reads concurrently, and what it read in between is part of the amount (and may reach it).
    return (this.acked[s] + amount) | 0;
  }

  private isClosedForData(): boolean {
    return this.out[0].readerClosed && this.out[1].readerClosed;
  }

  private moveSpill(): void {
    for (const s of [0, 1] as const) {
      const queue = this.spill[s];
      while (queue.length) {
        const head = queue[0];
        const n = this.out[s].write(head);
        this.spillBytes -= n;
        if (n < head.length) {
          queue[0] = head.subarray(n);
          break;
        }
        queue.shift();
      }
    }
    this.closeDrainedRings();
  }

  /**
   * The main thread reads no more (Channel.shutdownRead): what the rings hold and whatever
   * arrives later is dropped, and its window goes back to the peer at once, so a command that
   * keeps writing is not stalled and nothing piles up (as a TCP socket shut for reading).
   */
  shutdownRead(): void {
    if (this.readShut) return;
    this.readShut = true;
    for (const s of [0, 1] as const) {
      const spilled = this.spill[s].reduce((n, b) => n + b.length, 0);
      // Bytes credited on arrival (drain mode) are among those held: the rest is owed.
      const owed = this.out[s].available() + spilled - this.credited[s];
      this.spill[s] = [];
      this.spillBytes -= spilled;
      this.credited[s] = 0;
      this.out[s].closeReader();
      if (owed > 0) this.core.consumed(owed);
    }
  }
  private readShut = false;

  /** Drain mode: from now on data is accepted whatever the main thread reads (no deadlock). */
  startDrain(): void {
    // After shutdownRead everything is dropped and its window returned already.
    if (this.drain || this.readShut) return;
    this.drain = true;
    // Give back the window the rings are holding, so the peer can finish writing.
    for (const s of [0, 1] as const) {
      const unread = this.out[s].available() - this.credited[s];
      if (unread > 0) {
        this.credited[s] += unread;
        this.core.consumed(unread);
      }
    }
  }

  // ---- outbound ----

  /**
   * Sends, now, what the main thread wrote (as the window allows), the ordered items that are
   * due, then EOF and CLOSE once everything before them is out. A request that asks for any of
   * these (close, shutdown, stderr after data) calls it before it returns, and so does the
   * connection before it disconnects: nothing written before a call may come after its effect.
   */
  flushNow(): void {
    if (this.flushOutbound()) void this.pumpOutbound();
    this.kick(); // a pump waiting for ring data looks again (the window or the flags changed)
  }

  /** Waits for the main thread's writes and sends them, until the channel is done sending. */
  private async pumpOutbound(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.flushOutbound()) {
        await Promise.race([this.stdinArrived(), new Promise<void>((r) => (this.wake = r))]);
        this.wake = null;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The pending wait for the main thread's next write to the stdin ring: one at a time (see consumed). */
  private stdinArrived(): Promise<unknown> {
    if (!this.stdinWait) {
      this.stdinWait = this.inRing.waitReadableAsync(null).finally(() => {
        this.stdinWait = null;
      });
    }
    return this.stdinWait;
  }
  private stdinWait: Promise<unknown> | null = null;

  /**
   * One synchronous pass of sending (see flushNow). True when more may come from the ring (wait
   * for it); false when nothing more will go out until writable() (window) or never (closed).
   */
  private flushOutbound(): boolean {
    if (this.core.state === 'closed') return false;
    if (this.core.state !== 'open') return true;
    while (this.inRing.available() > 0 && this.core.writableBytes > 0) {
      // Not past the mark of an ordered item: it goes out between the two.
      const due = this.ordered.length ? (this.ordered[0].mark - this.inRing.readCount) | 0 : Infinity;
      if (due <= 0) break;
      const chunk = this.inRing.read(Math.min(this.inRing.available(), this.core.writableBytes, 1 << 20, due));
      const sent = this.core.write(chunk);
      // write() sends what the window allows; the rest goes back to the front.
      if (sent < chunk.length) {
        this.pendingChunk = chunk.subarray(sent);
        break;
      }
    }
    if (this.pendingChunk && this.core.writableBytes > 0) {
      const sent = this.core.write(this.pendingChunk);
      this.pendingChunk = sent < this.pendingChunk.length ? this.pendingChunk.subarray(sent) : null;
    }
    if (!this.pendingChunk && !this.sendOrdered()) return false; // writable() resumes
    if (!this.pendingChunk && this.inRing.available() === 0 && this.ordered.length === 0) {
      if (this.eofRequested || this.inRing.closed) {
        this.core.sendEof();
        if (!(Atomics.or(this.status, STATUS_FLAGS, FLAG_EOF_SENT) & FLAG_EOF_SENT)) this.log('EOF sent');
      }
      if (this.closeRequested) {
        this.core.close();
        Atomics.or(this.status, STATUS_FLAGS, FLAG_CLOSE_SENT);
        return false;
      }
      if (this.inRing.closed) return false;
    }
    // Window exhausted: writable() resumes.
    return !(this.pendingChunk || (this.inRing.available() > 0 && this.core.writableBytes === 0));
  }
  private pendingChunk: Buffer | null = null;
  private readonly ordered: Ordered[] = [];

  /**
   * Sends the ordered items whose preceding ring data has gone out; false when a stderr item
   * waits for window. The ring is read in order, so an item is due once the ring's read count
   * has reached its mark and nothing read is still pending.
   */
  private sendOrdered(): boolean {
    while (this.ordered.length) {
      const item = this.ordered[0];
      if (((this.inRing.readCount - item.mark) | 0) < 0) return true; // its data is still in the ring
      if (item.stderr) {
        if (this.core.writableBytes === 0) return false;
        const sent = this.core.write(item.stderr, 1);
        item.stderr = item.stderr.subarray(sent);
        if (item.stderr.length) return false;
      }
      this.ordered.shift();
      try {
        item.run?.();
        item.done(null);
      } catch (e) {
        item.done(e as Error);
      }
    }
    return true;
  }

  /**
   * Server: stderr data, or a request such as exit-status, sent after everything the main
   * thread wrote before it; resolves once it is on the wire.
   */
  sendAfterData(item: { stderr?: Buffer; run?: () => void }): Promise<void> {
    if (this.core.state === 'closed' || this.closeRequested || this.core.closeSent) {
      return Promise.reject(new SSHException('channel is closed'));
    }
    if (this.eofRequested && item.stderr) return Promise.reject(new SSHException('cannot write after EOF (socket is closed)'));
    return new Promise((resolve, reject) => {
      this.ordered.push({ mark: this.inRing.writeCount, ...item, done: (e) => (e ? reject(e) : resolve()) });
      this.flushNow();
    });
  }

  /**
   * Hands the channel to another owner (a nested connection): returns the received data that
   * the main thread did not read, and stops feeding the rings. The main thread gave the
   * channel up, so reading its ring here keeps one consumer.
   */
  takeOver(): Buffer[] {
    const out: Buffer[] = [];
    for (const s of [0] as const) {
      // Window for these bytes is returned by the new owner as it consumes them.
      const unread = this.out[s].read();
      if (unread.length) out.push(unread);
      out.push(...this.spill[s]);
    }
    this.spill = [[], []];
    this.spillBytes = 0;
    this.onFinished(this);
    return out;
  }

  /** shutdown_write: EOF once everything written so far is sent. */
  shutdownWrite(): void {
    this.eofRequested = true;
    this.flushNow();
  }

  /** close: flush, then CLOSE. */
  close(): void {
    this.closeRequested = true;
    if (this.core.state !== 'open') {
      this.core.close();
      return;
    }
    this.flushNow();
  }

  /** Wakes a pump waiting on the stdin ring (after a flag change the ring does not show). */
  private kick(): void {
    this.wake?.();
  }
  private wake: (() => void) | null = null;

  waitExit(): Promise<void> {
    if (this.core.exitStatus !== null || this.core.exitSignal || this.isClosed) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  waitClosed(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }
}
