import { SSHException } from '../errors';
import { Message } from '../wire/message';
import { ChannelCore, DEFAULT_MAX_PACKET_SIZE, DEFAULT_WINDOW_SIZE } from './channel';
import type { PacingHints } from './flight-pacer';
import type { SendFilled } from './channel';
import { MSG, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_FAILED_RESOURCE_SHORTAGE, OPEN_SUCCEEDED, messageName } from './constants';

/** A channel the peer opened: what it asked for, and how to accept it. */
export interface IncomingOpen {
  kind: string;
  /** The request's type-specific fields (e.g. direct-tcpip's addresses). */
  msg: Message;
  /** Creates the local channel; the decision returns OPEN_SUCCEEDED to confirm it. */
  channel: ChannelCore;
  /**
   * Set by a handler that refuses, for the peer's CHANNEL_OPEN_FAILURE (the text its user sees,
   * as `ChannelException(code, text)`); the code's RFC 4254 name otherwise.
   */
  reason?: string;
}

export interface ConnectionHandlers {
  /** A channel open from the peer; returns an OPEN_* code (OPEN_SUCCEEDED to accept). */
  channelOpen?(open: IncomingOpen): number | Promise<number>;
  /** A global request; returns false to refuse, true or reply data to accept. */
  globalRequest?(name: string, wantReply: boolean, msg: Message): boolean | Buffer | Promise<boolean | Buffer>;
  /** Diagnostics: what the peer sent that is ignored. */
  log?(text: string): void;
}

/** RFC 4254's names of the CHANNEL_OPEN_FAILURE reason codes: the text sent when a handler gives none. */
const OPEN_FAILURE_TEXT: Record<number, string> = {
  1: 'administratively prohibited',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
};

/** Channels a peer may hold open at once before we refuse more (resource shortage). */
const MAX_CHANNELS = 1024;

/** Closed channel ids remembered for late messages (see ConnectionCore.closedIds). */
const CLOSED_IDS_KEPT = 256;

/**
 * The connection protocol (RFC 4254) without I/O: the channel table, channel opens both ways,
 * global requests with in-order replies, and dispatch of messages 80-100.
 */
export class ConnectionCore {
  readonly channels = new Map<number, ChannelCore>();
  private nextId = 0;
  private readonly opening = new Map<number, { resolve(c: ChannelCore): void; reject(e: Error): void }>();
  private readonly globalReplies: Array<{ resolve(m: Message | null): void; reject(e: Error): void }> = [];
  private globalChain: Promise<void> = Promise.resolve();
  private dead: Error | null = null;
  /**
   * Ids of channels lately closed both ways (ids are not reused until they wrap). A message for
   * one is logged and dropped, as Paramiko does: its server sends an exec's SUCCESS from one
   * thread while another may already have sent the command's output, exit status and CLOSE, so
   * the reply can come after the channel is gone. Anything for an id never used still ends the
   * connection.
   */
  private readonly closedIds = new Set<number>();

  /** What is known of the peer when a channel is made (see FlightPacer): set by the owner. */
  pacingHints: () => PacingHints = () => ({});

  /** `sendFilled`, when given, lets channels write their data straight into the packet. */
  constructor(
    private readonly send: (payload: Buffer) => void,
    readonly handlers: ConnectionHandlers = {},
    private readonly sendFilled?: SendFilled,
  ) {}

  private allocate(kind: string, window: number, maxPacket: number): ChannelCore {
    while (this.channels.has(this.nextId)) this.nextId = (this.nextId + 1) >>> 0;
    const ch = new ChannelCore(this.nextId, kind, window, maxPacket, this.send, this.sendFilled);
    ch.pacingHints = this.pacingHints();
    this.nextId = (this.nextId + 1) >>> 0;
    this.channels.set(ch.localId, ch);
    return ch;
  }

  /** Opens a channel; resolves when the peer confirms, rejects with ChannelException if refused. */
  open(kind: string, extra?: (m: Message) => void, window = DEFAULT_WINDOW_SIZE, maxPacket = DEFAULT_MAX_PACKET_SIZE): Promise<ChannelCore> {
    if (this.dead) return Promise.reject(this.dead);
    const ch = this.allocate(kind, window, maxPacket);
    const m = new Message().addByte(MSG.CHANNEL_OPEN).addString(kind).addInt(ch.localId).addInt(window).addInt(maxPacket);
    extra?.(m);
    this.send(m.asBytes());
    return new Promise((resolve, reject) => this.opening.set(ch.localId, { resolve, reject }));
  }

  /** A global request; resolves with the REQUEST_SUCCESS message, or null when refused. */
  globalRequest(name: string, wantReply: boolean, fill?: (m: Message) => void): Promise<Message | null> {
    if (this.dead) return Promise.reject(this.dead);
    const m = new Message().addByte(MSG.GLOBAL_REQUEST).addString(name).addBoolean(wantReply);
    fill?.(m);
    this.send(m.asBytes());
    if (!wantReply) return Promise.resolve(new Message(Buffer.alloc(0)));
    return new Promise((resolve, reject) => this.globalReplies.push({ resolve, reject }));
  }

  /** A peer's packet went past the channel's window, within the grace ChannelCore allows. */
  private overrun(ch: ChannelCore, over: number): void {
    this.handlers.log?.(`[chan ${ch.localId}] the peer sent ${over} bytes past its window: kept (OpenSSH's grace of a tenth of the window)`);
  }

  /** The channel a message is for; null (the message dropped) when it closed lately. */
  private channel(msg: Message, type: number): ChannelCore | null {
    const id = msg.getInt();
    const ch = this.channels.get(id);
    if (ch) return ch;
    if (this.closedIds.has(id)) {
      this.handlers.log?.(`[chan ${id}] ${messageName(type)} after the channel closed: ignored`);
      return null;
    }
    throw new SSHException(`${messageName(type)} for unknown channel ${id}`);
  }

  /** The channel is closed both ways: its id goes to closedIds (the last CLOSED_IDS_KEPT). */
  private forget(ch: ChannelCore): void {
    this.channels.delete(ch.localId);
    this.closedIds.add(ch.localId);
    if (this.closedIds.size > CLOSED_IDS_KEPT) this.closedIds.delete(this.closedIds.values().next().value as number);
  }

  /** Handles messages 80-100; returns false for others. */
  handle(type: number, msg: Message): boolean {
    switch (type) {
      case MSG.GLOBAL_REQUEST:
        this.onGlobalRequest(msg);
        return true;
      case MSG.REQUEST_SUCCESS:
      case MSG.REQUEST_FAILURE: {
        // A reply nobody asked for is ignored, as OpenSSH does on both sides: some servers answer
        // requests sent without want-reply, and ending the connection for it helps nobody.
        const r = this.globalReplies.shift();
        if (r) r.resolve(type === MSG.REQUEST_SUCCESS ? msg : null);
        else this.handlers.log?.(`a global request ${type === MSG.REQUEST_SUCCESS ? 'success' : 'failure'} with no request pending: ignored`);
        return true;
      }
      case MSG.CHANNEL_OPEN:
        this.onChannelOpen(msg);
        return true;
      case MSG.CHANNEL_OPEN_CONFIRMATION: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        const waiter = this.opening.get(ch.localId);
        if (!waiter || ch.state !== 'opening') throw new SSHException(`unexpected open confirmation for channel ${ch.localId}`);
        this.opening.delete(ch.localId);
        const remoteId = msg.getInt();
        const window = msg.getInt();
        const maxPacket = msg.getInt();
        ch.opened(remoteId, window, maxPacket);
        waiter.resolve(ch);
        return true;
      }
      case MSG.CHANNEL_OPEN_FAILURE: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        const waiter = this.opening.get(ch.localId);
        if (!waiter) throw new SSHException(`unexpected open failure for channel ${ch.localId}`);
        this.opening.delete(ch.localId);
        this.channels.delete(ch.localId);
        ch.state = 'closed';
        waiter.reject(ChannelCore.openFailure(msg));
        return true;
      }
      case MSG.CHANNEL_WINDOW_ADJUST: {
        const ch = this.channel(msg, type);
        if (ch) ch.onWindowAdjust(msg.getInt());
        return true;
      }
      case MSG.CHANNEL_DATA: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        const over = ch.onData(msg.getString(), 0, msg.transient);
        if (over) this.overrun(ch, over);
        return true;
      }
      case MSG.CHANNEL_EXTENDED_DATA: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        const code = msg.getInt();
        const data = msg.getString();
        // Only stderr (1) is defined (RFC 4254 section 5.2); other codes still use window.
        const over = code === 1 ? ch.onData(data, 1, msg.transient) : ch.discard(data.length);
        if (over) this.overrun(ch, over);
        return true;
      }
      case MSG.CHANNEL_EOF:
        this.channel(msg, type)?.onEof();
        return true;
      case MSG.CHANNEL_CLOSE: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        ch.onClose();
        this.forget(ch);
        return true;
      }
      case MSG.CHANNEL_REQUEST: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        const name = msg.getText();
        const wantReply = msg.getBoolean();
        ch.onRequest(name, wantReply, msg);
        return true;
      }
      case MSG.CHANNEL_SUCCESS:
      case MSG.CHANNEL_FAILURE: {
        const ch = this.channel(msg, type);
        if (!ch) return true;
        // Unasked-for, as a global reply above: ignored (OpenSSH's channel_input_status_confirm).
        if (!ch.onReply(type === MSG.CHANNEL_SUCCESS)) this.handlers.log?.(`[chan ${ch.localId}] a channel ${type === MSG.CHANNEL_SUCCESS ? 'success' : 'failure'} with no request pending: ignored`);
        return true;
      }
    }
    return false;
  }

  private onGlobalRequest(msg: Message): void {
    const name = msg.getText();
    const wantReply = msg.getBoolean();
    const handler = this.handlers.globalRequest;
    // Replies must follow the order of the requests even when a handler is async.
    this.globalChain = this.globalChain.then(async () => {
      let result: boolean | Buffer = false;
      try {
        result = handler ? await handler(name, wantReply, msg) : false;
      } catch {
        result = false;
      }
      if (!wantReply || this.dead) return;
      if (result === false) this.send(Buffer.from([MSG.REQUEST_FAILURE]));
      else this.send(Buffer.concat([Buffer.from([MSG.REQUEST_SUCCESS]), Buffer.isBuffer(result) ? result : Buffer.alloc(0)]));
    });
  }

  private onChannelOpen(msg: Message): void {
    const kind = msg.getText();
    const remoteId = msg.getInt();
    const window = msg.getInt();
    const maxPacket = msg.getInt();
    const refuse = (code: number, text: string) =>
      this.send(new Message().addByte(MSG.CHANNEL_OPEN_FAILURE).addInt(remoteId).addInt(code).addString(text).addString('').asBytes());
    if (this.channels.size >= MAX_CHANNELS) {
      refuse(OPEN_FAILED_RESOURCE_SHORTAGE, 'too many channels');
      return;
    }
    const handler = this.handlers.channelOpen;
    if (!handler) {
      refuse(OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, `${kind} channels are not accepted`);
      return;
    }
    const ch = this.allocate(kind, DEFAULT_WINDOW_SIZE, DEFAULT_MAX_PACKET_SIZE);
    ch.remoteId = remoteId;
    const open: IncomingOpen = { kind, msg, channel: ch };
    void (async () => {
      let code: number;
      try {
        code = await handler(open);
      } catch {
        code = OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
      }
      if (this.dead) return;
      if (code !== OPEN_SUCCEEDED) {
        this.channels.delete(ch.localId);
        ch.state = 'closed';
        refuse(code, open.reason ?? OPEN_FAILURE_TEXT[code] ?? 'refused');
        return;
      }
      ch.opened(remoteId, window, maxPacket);
      this.send(
        new Message().addByte(MSG.CHANNEL_OPEN_CONFIRMATION).addInt(remoteId).addInt(ch.localId).addInt(ch.windowSize).addInt(ch.maxPacket).asBytes(),
      );
      ch.confirmed();
    })();
  }

  /** Whether we wait for the peer to answer something (an open, a global or channel request). */
  get awaitingReply(): boolean {
    if (this.opening.size || this.globalReplies.length) return true;
    for (const ch of this.channels.values()) if (ch.awaitingReply) return true;
    return false;
  }

  /** The transport died: every waiter and channel learns why. */
  abort(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    for (const w of this.opening.values()) w.reject(error);
    this.opening.clear();
    for (const r of this.globalReplies.splice(0)) r.reject(error);
    for (const ch of this.channels.values()) ch.finish(error);
    this.channels.clear();
  }
}
