import { randomBytes } from 'node:crypto';
import { SocketTimeouts } from './timeout';
import { NotImplementedError, SocketTimeout, SSHException } from '../errors';
import { request, runAsync, runSync, until, type Op } from '../bridge';
import { SharedRing } from '../bridge/ring';
import type { ChannelHandleInfo } from '../worker/ssh/channel';
import {
  FLAG_CLOSED,
  FLAG_CORE_DUMPED,
  FLAG_EOF_SENT,
  FLAG_EXIT_SIGNAL,
  FLAG_EXIT_STATUS,
  STATUS_EXIT,
  STATUS_FLAGS,
  STATUS_MESSAGE_AT,
  STATUS_MESSAGE_LEN,
  STATUS_SIGNAL_AT,
  STATUS_SIGNAL_LEN,
} from '../worker/ssh/channel';
import type { ExitSignal } from '../transport/channel';
import { ChannelFile, ChannelStderrFile, ChannelStdinFile } from './channel-file';
import { encodeTerminalModes, type TerminalModes } from './terminal-modes';
import type { AgentChannelHandler, Transport } from './transport';

/**
 * getPty's arguments as one object; `termModes` beyond Paramiko (AsyncSSH's term_modes): e.g.
 * `{ ECHO: 0 }` for a terminal that does not echo input back.
 */
export type PtyArgs = { term?: string; width?: number; height?: number; widthPixels?: number; heightPixels?: number; termModes?: TerminalModes | null };

/** Paramiko's x11 handler: `handler(channel, [originAddr, originPort])`. */
export type X11Handler = (channel: Channel, origin: [string, number]) => void;

export interface X11RequestOptions {
  screenNumber?: number;
  authProtocol?: string | null;
  authCookie?: string | null;
  singleConnection?: boolean;
  handler?: X11Handler | null;
}

/** The X11 auth protocol Paramiko and OpenSSH send by default. */
const X11_DEFAULT_PROTOCOL = 'MIT-MAGIC-COOKIE-1';
/** MIT-MAGIC-COOKIE-1 cookies are 128 bits, sent as hex (RFC 4254 6.3.1 says hex). */
const X11_COOKIE_BYTES = 16;

const isOptionsObject = (v: unknown): v is X11RequestOptions =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

function toBuf(data: string | Buffer | Uint8Array): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/**
 * Paramiko's Channel: a socket-like stream over SSH. Data moves through shared rings with the
 * transport worker, so `recv` of data that has arrived makes no thread hop; timeouts follow
 * Python sockets (`null` blocks, `0` never waits, else seconds, then SocketTimeout).
 */
export class Channel extends SocketTimeouts {
  readonly chanid: number;
  private readonly rings: { stdout: SharedRing; stderr: SharedRing; stdin: SharedRing };
  private readonly status: Int32Array;
  private name: string;
  combineStderr = false;
  /** Data taken out of the rings ahead of the ring contents (combine_stderr switch-over). */
  private front: Buffer[] = [];
  private writeShut = false;
  private readShut = false;
  private closedByUs = false;

  constructor(
    readonly transport: Transport,
    private readonly info: ChannelHandleInfo,
    readonly kind = 'session',
    /** Where a direct-tcpip channel leads (used when it carries a nested Transport). */
    readonly destination: [string, number] | null = null,
    /** Beyond Paramiko (its x11 handler gets it): the X client's [address, port] of an x11 channel. */
    readonly origin: [string, number] | null = null,
  ) {
    super();
    this.chanid = info.chanId;
    this.name = String(info.chanId);
    this.rings = {
      stdout: SharedRing.fromShared(info.stdout),
      stderr: SharedRing.fromShared(info.stderr),
      stdin: SharedRing.fromShared(info.stdin),
    };
    this.status = new Int32Array(info.status);
  }

  private call<T>(method: string, args: Record<string, unknown> = {}, timeout: number | null = this.transport.channelTimeout): T {
    return runSync(this.callOp<T>(method, args, timeout));
  }

  private *callOp<T>(method: string, args: Record<string, unknown> = {}, timeout: number | null = this.transport.channelTimeout): Op<T> {
    return yield* request<T>('transport', method, { id: this.transport.id, chan: this.chanid, ...args }, timeout);
  }

  /** This channel now carries a nested Transport (jump host): it is no longer usable itself. */
  adopted(): void {
    this.closedByUs = true;
    this.writeShut = true;
    this.readShut = true;
  }

  // ---- identity ----

  getId(): number {
    return this.chanid;
  }
  getName(): string {
    return this.name;
  }
  setName(name: string): void {
    this.name = name;
  }
  getTransport(): Transport {
    return this.transport;
  }
  getpeername(): [string, number] {
    return this.transport.getpeername();
  }

  // ---- Paramiko's public attributes ----

  /** The peer's number for this channel (Paramiko's remote_chanid). */
  get remoteChanid(): number {
    return this.info.remoteId;
  }
  /** The window we announced (Paramiko's in_window_size). */
  get inWindowSize(): number {
    return this.info.windowSize;
  }
  /** The largest data packet we accept (in_max_packet_size). */
  get inMaxPacketSize(): number {
    return this.info.maxPacket;
  }
  /** The largest data packet the peer accepts (out_max_packet_size). */
  get outMaxPacketSize(): number {
    return this.info.remoteMaxPacket;
  }
  /** The peer's window left for our data now (out_window_size): asks the worker. */
  get outWindowSize(): number {
    return this.transport.isActive() && !this.closed ? this.call<number>('channelOutWindow') : 0;
  }
  /** True once our EOF went out (shutdownWrite, stdin.close(), close). */
  get eofSent(): boolean {
    return (Atomics.load(this.status, STATUS_FLAGS) & FLAG_EOF_SENT) !== 0;
  }

  /**
   * Paramiko's status_event: set once the exit status (or signal, or the close) arrived.
   * `wait(timeout)` (seconds; null: forever) returns whether it is set; like recvExitStatus,
   * it lets the worker accept all output meanwhile, so it cannot deadlock on a full window.
   */
  get statusEvent(): { isSet(): boolean; wait(timeout?: number | null): boolean; waitAsync(timeout?: number | null): Promise<boolean> } {
    return {
      isSet: () => this.exitStatusReady(),
      wait: (timeout: number | null = null) => runSync(this.statusWaitOp(timeout)),
      waitAsync: (timeout: number | null = null) => runAsync(this.statusWaitOp(timeout)),
    };
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *statusWaitOp(timeout: number | null): Op<boolean> {
    if (this.exitStatusReady()) return true;
    if (!this.transport.isActive()) return this.exitStatusReady();
    try {
      yield* this.callOp('recvExitStatus', {}, timeout);
    } catch (e) {
      if (!(e instanceof SocketTimeout)) throw e;
    }
    return this.exitStatusReady();
  }

  /** @internal the worker is done with the channel (closed both ways): no event can come for it. */
  get finished(): boolean {
    return (Atomics.load(this.status, STATUS_FLAGS) & FLAG_CLOSED) !== 0;
  }

  /** True once the channel is closed (by either side). */
  get closed(): boolean {
    return this.closedByUs || (Atomics.load(this.status, STATUS_FLAGS) & FLAG_CLOSED) !== 0;
  }
  get active(): boolean {
    return !this.closed;
  }
  get eofReceived(): boolean {
    return this.rings.stdout.closed;
  }

  // ---- requests ----

  private request(type: string, args: Record<string, unknown> = {}, wantReply = true): void {
    runSync(this.requestOp(type, args, wantReply));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *requestOp(type: string, args: Record<string, unknown> = {}, wantReply = true): Op<void> {
    if (this.closed) throw new SSHException('Channel is not open');
    const ok = yield* this.callOp<boolean>('channelRequest', { type, wantReply, args });
    if (!ok) throw new SSHException(`the server refused the ${type} request on channel ${this.chanid}`);
  }

  /** Requests a pseudo-terminal (Paramiko's defaults: vt100, 80x24). */
  getPty(term: string | PtyArgs = 'vt100', width = 80, height = 24, widthPixels = 0, heightPixels = 0): void {
    runSync(this.getPtyOp(term, width, height, widthPixels, heightPixels));
  }

  /** The promise twin of getPty. */
  getPtyAsync(term: string | PtyArgs = 'vt100', width = 80, height = 24, widthPixels = 0, heightPixels = 0): Promise<void> {
    return runAsync(this.getPtyOp(term, width, height, widthPixels, heightPixels));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *getPtyOp(term: string | PtyArgs = 'vt100', width = 80, height = 24, widthPixels = 0, heightPixels = 0): Op<void> {
    const o: PtyArgs = typeof term === 'object' ? term : { term, width, height, widthPixels, heightPixels };
    yield* this.requestOp('pty-req', {
      term: o.term ?? 'vt100',
      width: o.width ?? 80,
      height: o.height ?? 24,
      widthPixels: o.widthPixels ?? 0,
      heightPixels: o.heightPixels ?? 0,
      // Without termModes only TTY_OP_END, as Paramiko.
      modes: encodeTerminalModes(o.termModes),
    });
  }

  /**
   * Beyond Paramiko (RFC 4335, AsyncSSH's send_break): asks the server to send a break of
   * `msec` milliseconds to the session's terminal (a serial console's attention signal, sshd's
   * tcsendbreak on the pty). True when the server did; false when it would not (no pty, or it
   * does not support breaks).
   */
  sendBreak(msec = 500): boolean {
    return runSync(this.sendBreakOp(msec));
  }

  /** The promise twin of sendBreak. */
  sendBreakAsync(msec = 500): Promise<boolean> {
    return runAsync(this.sendBreakOp(msec));
  }

  private *sendBreakOp(msec: number): Op<boolean> {
    if (!Number.isInteger(msec) || msec < 0 || msec > 0xffffffff) throw new TypeError(`a break lasts a whole number of milliseconds, not ${msec}`);
    if (this.closed) throw new SSHException('Channel is not open');
    return yield* this.callOp<boolean>('channelRequest', { type: 'break', wantReply: true, args: { msec } });
  }

  invokeShell(): void {
    this.request('shell');
  }

  /** The promise twin of invokeShell. */
  invokeShellAsync(): Promise<void> {
    return runAsync(this.requestOp('shell'));
  }

  /** Runs one command (one per channel; the channel closes when it ends). */
  execCommand(command: string | Buffer): void {
    this.request('exec', { command });
  }

  /** The promise twin of execCommand. */
  execCommandAsync(command: string | Buffer): Promise<void> {
    return runAsync(this.requestOp('exec', { command }));
  }

  invokeSubsystem(subsystem: string): void {
    this.request('subsystem', { name: subsystem });
  }

  /** The promise twin of invokeSubsystem. */
  invokeSubsystemAsync(subsystem: string): Promise<void> {
    return runAsync(this.requestOp('subsystem', { name: subsystem }));
  }

  resizePty(width: number | PtyArgs = 80, height = 24, widthPixels = 0, heightPixels = 0): void {
    runSync(this.resizePtyOp(width, height, widthPixels, heightPixels));
  }

  /** The promise twin of resizePty. */
  resizePtyAsync(width: number | PtyArgs = 80, height = 24, widthPixels = 0, heightPixels = 0): Promise<void> {
    return runAsync(this.resizePtyOp(width, height, widthPixels, heightPixels));
  }

  private *resizePtyOp(width: number | PtyArgs, height: number, widthPixels: number, heightPixels: number): Op<void> {
    const o = typeof width === 'object' ? width : { width, height, widthPixels, heightPixels };
    yield* this.requestOp('window-change', { width: o.width ?? 80, height: o.height ?? 24, widthPixels: o.widthPixels ?? 0, heightPixels: o.heightPixels ?? 0 }, false);
  }

  /**
   * Sets several variables. As in Paramiko (and OpenSSH's SendEnv), no reply is asked for: a
   * server that does not accept a name (sshd's AcceptEnv) ignores it silently.
   */
  updateEnvironment(environment: Record<string, string>): void {
    runSync(this.updateEnvironmentOp(environment));
  }

  /** The promise twin of updateEnvironment. */
  updateEnvironmentAsync(environment: Record<string, string>): Promise<void> {
    return runAsync(this.updateEnvironmentOp(environment));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *updateEnvironmentOp(environment: Record<string, string>): Op<void> {
    for (const [name, value] of Object.entries(environment)) yield* this.requestOp('env', { name, value }, false);
  }

  setEnvironmentVariable(name: string, value: string): void {
    this.request('env', { name, value }, false);
  }

  /** The promise twin of setEnvironmentVariable. */
  setEnvironmentVariableAsync(name: string, value: string): Promise<void> {
    return runAsync(this.requestOp('env', { name, value }, false));
  }

  /** Sends a signal to the remote process (RFC 4254 6.9), e.g. 'TERM', 'INT'. Beyond Paramiko. */
  sendSignal(signal: string): void {
    this.request('signal', { signal: signal.replace(/^SIG/, '') }, false);
  }

  /** The promise twin of sendSignal. */
  sendSignalAsync(signal: string): Promise<void> {
    return runAsync(this.requestOp('signal', { signal: signal.replace(/^SIG/, '') }, false));
  }

  /**
   * Asks the server to forward X11 connections to this client (RFC 4254 6.3.1); returns the
   * cookie sent (random 128-bit hex when none is given). Paramiko's positional parameters, and/or
   * a trailing options object. The server's "x11" channels then go to `Transport.accept()`,
   * with the X client's address in `Channel.origin`, or with a `handler` to
   * `handler(channel, [address, port])`, called on this thread (while it blocks in any call, or
   * from the event loop when idle): keep it short, as Paramiko's must not block. SSHException
   * when the server refuses.
   */
  requestX11(
    screenNumber: number | X11RequestOptions = 0,
    authProtocol: string | null | X11RequestOptions = null,
    authCookie: string | null | X11RequestOptions = null,
    singleConnection: boolean | X11RequestOptions = false,
    handler: X11Handler | null | X11RequestOptions = null,
  ): string {
    const given = [screenNumber, authProtocol, authCookie, singleConnection, handler];
    const at = given.findIndex(isOptionsObject);
    const o: X11RequestOptions = at < 0 ? {} : (given[at] as X11RequestOptions);
    const positional = at < 0 ? given : given.slice(0, at);
    const pick = <T>(i: number, key: keyof X11RequestOptions, fallback: T): T => {
      if (o[key] !== undefined) return o[key] as T;
      const v = positional[i];
      return (i < positional.length && v !== undefined ? v : fallback) as T;
    };
    const screen = pick<number>(0, 'screenNumber', 0);
    const protocol = pick<string | null>(1, 'authProtocol', null) ?? X11_DEFAULT_PROTOCOL;
    const cookie = pick<string | null>(2, 'authCookie', null) ?? randomBytes(X11_COOKIE_BYTES).toString('hex');
    const single = pick<boolean>(3, 'singleConnection', false);
    const h = pick<X11Handler | null>(4, 'handler', null);
    if (h !== null && typeof h !== 'function') throw new TypeError('handler must be a function or null');
    if (!Number.isInteger(screen) || screen < 0 || screen > 0xffffffff) throw new TypeError(`screenNumber must be a uint32, not ${screen}`);
    if (typeof protocol !== 'string' || typeof cookie !== 'string') throw new TypeError('authProtocol and authCookie must be strings');
    // As Paramiko: the transport's handler is set before the request (the server may open x11
    // channels as soon as it replies), and the last request's handler (or none) is the one used.
    this.transport.setX11Handler(h);
    this.request('x11-req', { singleConnection: Boolean(single), protocol, cookie, screen, handler: h !== null });
    return cookie;
  }

  /**
   * Paramiko's request_forward_agent: asks the server to forward agent connections made on this
   * session (its SSH_AUTH_SOCK) back to us; each is joined, in the worker, to the local agent at
   * SSH_AUTH_SOCK as it is now. Returns true; SSHException if there is no local agent or the
   * server refuses (Paramiko does not ask for a reply). `handler` may be an AgentRequestHandler
   * (as `new AgentRequestHandler(channel)` passes itself) or omitted; or, as in Paramiko, a
   * function that gets each agent channel the server opens (no local agent needed), called on
   * this thread like requestX11's handler: the handler speaks the agent protocol on it itself.
   */
  requestForwardAgent(handler: AgentChannelHandler | object | null = null): boolean {
    if (this.closed) throw new SSHException('Channel is not open');
    if (typeof handler === 'function') {
      // Paramiko's own form: the handler gets each agent channel, on this thread.
      this.transport.setAgentHandler(handler as AgentChannelHandler);
      if (!this.call<boolean>('channelForwardAgent', { socketPath: null })) throw new SSHException(`the server refused agent forwarding on channel ${this.chanid}`);
      return true;
    }
    const socketPath = process.env.SSH_AUTH_SOCK;
    if (!socketPath) throw new SSHException('agent forwarding needs a local agent: SSH_AUTH_SOCK is not set');
    if (!this.call<boolean>('channelForwardAgent', { socketPath })) throw new SSHException(`the server refused agent forwarding on channel ${this.chanid}`);
    return true;
  }


  /**
   * @internal an ssh_config's ForwardAgent: agent forwarding to the agent at `socketPath`, asked as
   * ssh asks it (no reply wanted, so a server that refuses is seen only in the log).
   */
  *forwardAgentOp(socketPath: string): Op<void> {
    if (this.closed) throw new SSHException('Channel is not open');
    yield* this.callOp<boolean>('channelForwardAgent', { socketPath, wantReply: false });
  }

  // ---- reading ----

  /** Combines stderr into stdout from now on; returns the previous setting. */
  setCombineStderr(combine: boolean): boolean {
    const old = this.combineStderr;
    if (combine && !old) {
      this.call('channelCombineStderr', { combine: true });
      // As Paramiko: what stderr holds now follows what stdout holds now.
      const out = this.rings.stdout.read();
      const err = this.rings.stderr.read();
      this.front.push(out, err);
    } else if (!combine && old) {
      this.call('channelCombineStderr', { combine: false });
    }
    this.combineStderr = combine;
    return old;
  }

  private *waitDataOp(ring: SharedRing): Op<void> {
    if (ring.available() > 0 || ring.closed) return;
    if (this.timeout === 0) throw new SocketTimeout('no data ready (non-blocking channel)');
    if (!(yield* until(() => ring.available() > 0 || ring.closed, this.timeout))) {
      throw new SocketTimeout(`no data within ${this.timeout} s`);
    }
  }

  /** Up to `nbytes` of data; an empty Buffer means EOF. Raises SocketTimeout on timeout. */
  recv(nbytes: number): Buffer {
    return runSync(this.recvOp(nbytes));
  }

  /** The promise twin of recv. */
  recvAsync(nbytes: number): Promise<Buffer> {
    return runAsync(this.recvOp(nbytes));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *recvOp(nbytes: number): Op<Buffer> {
    if (this.front.length) {
      // Join once; small recv()s then take from the head without copying the rest again.
      const head = this.front.length === 1 ? this.front[0] : Buffer.concat(this.front);
      const out = head.subarray(0, nbytes);
      this.front = head.length > nbytes ? [head.subarray(nbytes)] : [];
      if (out.length) return Buffer.from(out);
    }
    if (this.readShut) return Buffer.alloc(0);
    yield* this.waitDataOp(this.rings.stdout);
    return this.rings.stdout.read(nbytes);
  }

  /**
   * @internal recv or recvStderr into `target` (up to its length) without a Buffer of its own;
   * 0 at EOF. For ChannelFile's read() to EOF.
   */
  *recvIntoOp(target: Uint8Array, stream: 0 | 1): Op<number> {
    if (stream === 0 && this.front.length) {
      const head = yield* this.recvOp(target.length);
      target.set(head);
      return head.length;
    }
    if (this.readShut) return 0;
    const ring = stream === 0 ? this.rings.stdout : this.rings.stderr;
    yield* this.waitDataOp(ring);
    return ring.readInto(target);
  }

  recvStderr(nbytes: number): Buffer {
    return runSync(this.recvStderrOp(nbytes));
  }

  /** The promise twin of recvStderr. */
  recvStderrAsync(nbytes: number): Promise<Buffer> {
    return runAsync(this.recvStderrOp(nbytes));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *recvStderrOp(nbytes: number): Op<Buffer> {
    if (this.readShut) return Buffer.alloc(0);
    yield* this.waitDataOp(this.rings.stderr);
    return this.rings.stderr.read(nbytes);
  }

  /** True when `recv` would return at once with data (false does not mean closed). */
  recvReady(): boolean {
    return !this.readShut && (this.front.some((b) => b.length > 0) || this.rings.stdout.available() > 0);
  }

  recvStderrReady(): boolean {
    return !this.readShut && this.rings.stderr.available() > 0;
  }

  // ---- writing ----

  /** Sends what fits now (at least one byte unless the timeout expires); returns the count. */
  send(data: string | Buffer | Uint8Array): number {
    return runSync(this.sendOp(toBuf(data)));
  }

  /** The promise twin of send. */
  sendAsync(data: string | Buffer | Uint8Array): Promise<number> {
    return runAsync(this.sendOp(toBuf(data)));
  }

  private *sendOp(buf: Buffer): Op<number> {
    if (buf.length === 0) return 0;
    const ring = this.rings.stdin;
    if (this.writeShut || this.closed) throw new SSHException('Socket is closed');
    if (ring.free() === 0) {
      if (this.timeout === 0) throw new SocketTimeout('channel send buffer full (non-blocking channel)');
      if (!(yield* until(() => ring.free() > 0 || this.closed || ring.readerClosed, this.timeout))) {
        throw new SocketTimeout(`could not send within ${this.timeout} s`);
      }
      if (this.closed || ring.readerClosed) throw new SSHException('Socket is closed');
    }
    return ring.write(buf);
  }

  /** Sends everything, waiting for window as needed. */
  sendall(data: string | Buffer | Uint8Array): void {
    runSync(this.sendallOp(data));
  }

  /** The promise twin of sendall. */
  sendallAsync(data: string | Buffer | Uint8Array): Promise<void> {
    return runAsync(this.sendallOp(data));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *sendallOp(data: string | Buffer | Uint8Array): Op<void> {
    const buf = toBuf(data);
    let off = 0;
    while (off < buf.length) off += yield* this.sendOp(buf.subarray(off));
  }

  /**
   * Server mode: sends `data` as stderr (extended data), after everything sent before it;
   * returns once it is on the wire (waiting for window), with the count, which is all of it.
   */
  sendStderr(data: string | Buffer | Uint8Array): number {
    return runSync(this.sendStderrOp(toBuf(data)));
  }

  /** The promise twin of sendStderr. */
  sendStderrAsync(data: string | Buffer | Uint8Array): Promise<number> {
    return runAsync(this.sendStderrOp(toBuf(data)));
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *sendStderrOp(buf: Buffer): Op<number> {
    if (buf.length === 0) return 0;
    if (this.writeShut || this.closed) throw new SSHException('Socket is closed');
    return yield* this.callOp<number>('channelSendStderr', { data: buf }, this.timeout);
  }

  sendallStderr(data: string | Buffer | Uint8Array): void {
    this.sendStderr(data);
  }

  /** The promise twin of sendallStderr. */
  async sendallStderrAsync(data: string | Buffer | Uint8Array): Promise<void> {
    await this.sendStderrAsync(data);
  }

  /**
   * Server mode: the command's exit status (RFC 4254 section 6.10), sent after the data written
   * before it. Then `close()` ends the channel, as Paramiko's servers do.
   */
  sendExitStatus(status: number): void {
    if (this.closed) throw new SSHException('Channel is not open');
    this.call('channelSendAfterData', { type: 'exit-status', args: { status: status >>> 0 } });
  }

  /** Server mode, beyond Paramiko: the command died of `signal` (name without SIG, e.g. 'TERM'). */
  sendExitSignal(signal: string, coreDumped = false, message = ''): void {
    if (this.closed) throw new SSHException('Channel is not open');
    this.call('channelSendAfterData', { type: 'exit-signal', args: { signal: signal.replace(/^SIG/, ''), coreDumped, message } });
  }

  /** True when `send` would not block (also when closed, as Paramiko). */
  sendReady(): boolean {
    return this.closed || this.rings.stdin.free() > 0;
  }

  // ---- exit status ----

  exitStatusReady(): boolean {
    return (Atomics.load(this.status, STATUS_FLAGS) & (FLAG_EXIT_STATUS | FLAG_EXIT_SIGNAL | FLAG_CLOSED)) !== 0;
  }

  /**
   * The command's exit status, waiting for it; -1 when the channel closed without one. Beyond
   * Paramiko, it cannot deadlock on unread output: the worker accepts all output meanwhile,
   * and it stays readable afterwards.
   */
  recvExitStatus(): number {
    return runSync(this.recvExitStatusOp());
  }

  /** The promise twin of recvExitStatus. */
  recvExitStatusAsync(): Promise<number> {
    return runAsync(this.recvExitStatusOp());
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *recvExitStatusOp(): Op<number> {
    const flags = Atomics.load(this.status, STATUS_FLAGS);
    if (flags & FLAG_EXIT_STATUS) return Atomics.load(this.status, STATUS_EXIT);
    if (flags & (FLAG_EXIT_SIGNAL | FLAG_CLOSED)) return -1;
    // The worker waits for exit-status/exit-signal/close. The shared status words are the answer:
    // they outlive the worker's channel, which may have closed before this request arrived.
    if (this.transport.isActive()) yield* this.callOp('recvExitStatus', {}, null);
    const after = Atomics.load(this.status, STATUS_FLAGS);
    return after & FLAG_EXIT_STATUS ? Atomics.load(this.status, STATUS_EXIT) : -1;
  }

  /** exit-signal details (beyond Paramiko): signal name without 'SIG', core dump, message; or null. */
  get exitSignal(): ExitSignal | null {
    const flags = Atomics.load(this.status, STATUS_FLAGS);
    if (!(flags & FLAG_EXIT_SIGNAL)) return null;
    const bytes = Buffer.from(this.status.buffer);
    const text = (at: number, lenWord: number) => bytes.toString('utf8', at, at + Atomics.load(this.status, lenWord));
    return {
      signal: text(STATUS_SIGNAL_AT, STATUS_SIGNAL_LEN),
      coreDumped: (flags & FLAG_CORE_DUMPED) !== 0,
      message: text(STATUS_MESSAGE_AT, STATUS_MESSAGE_LEN),
    };
  }

  get exitStatus(): number {
    const flags = Atomics.load(this.status, STATUS_FLAGS);
    return flags & FLAG_EXIT_STATUS ? Atomics.load(this.status, STATUS_EXIT) : -1;
  }

  // ---- shutting down ----

  /** 0: stop reading, 1: send EOF, 2: both. */
  shutdown(how: number): void {
    if (how === 0 || how === 2) this.shutdownRead();
    if (how === 1 || how === 2) this.shutdownWrite();
  }

  /**
   * No more reading: recv and recvStderr give empty Buffers from now on, and the worker drops
   * what arrives while keeping the window open, so the command is never stalled by unread output.
   */
  shutdownRead(): void {
    if (this.readShut) return;
    this.readShut = true;
    this.front = [];
    if (this.transport.isActive()) this.call('channelShutdownRead');
  }

  /** Sends EOF after the data already sent. */
  shutdownWrite(): void {
    runSync(this.shutdownWriteOp());
  }

  /** The promise twin of shutdownWrite (it waits until the data sent before it is on the wire). */
  shutdownWriteAsync(): Promise<void> {
    return runAsync(this.shutdownWriteOp());
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *shutdownWriteOp(): Op<void> {
    if (this.writeShut) return;
    this.writeShut = true;
    this.rings.stdin.close();
    if (!this.transport.isActive()) return;
    yield* this.callOp('channelShutdownWrite');
  }

  /** Flushes what was sent, then closes the channel. */
  close(): void {
    runSync(this.closeOp());
  }

  /** The promise twin of close. */
  closeAsync(): Promise<void> {
    return runAsync(this.closeOp());
  }

  /** @internal the body of the method and of its twin, for the calls outside this class that run it. */
  *closeOp(): Op<void> {
    if (this.closedByUs) return;
    this.closedByUs = true;
    if (!this.writeShut) this.rings.stdin.close();
    if (this.transport.isActive()) yield* this.callOp('channelClose');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- files ----

  makefile(mode = 'r', bufsize = -1): ChannelFile {
    return new ChannelFile(this, mode, bufsize);
  }
  makefileStderr(mode = 'r', bufsize = -1): ChannelStderrFile {
    return new ChannelStderrFile(this, mode, bufsize);
  }
  makefileStdin(mode = 'wb', bufsize = -1): ChannelStdinFile {
    return new ChannelStdinFile(this, mode, bufsize);
  }

  fileno(): never {
    throw new NotImplementedError('Channel.fileno (there is no OS descriptor: select([channels], [], [], timeout) from paramiko-ts replaces select.select on channels)');
  }
}
