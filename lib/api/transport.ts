import { AuthenticationException, BadAuthenticationType, EOFError, NotImplementedError, PasswordChangeRequired, SSHException } from '../errors';
import { getBridge, isThenable, request, runAsync, runSync, toBuffer, type Op } from '../bridge';
import { AgentKey, agentSocketOf } from '../agent/agent-key';
import { PKey } from '../keys';
import type { DisabledAlgorithms } from '../transport/algorithms';
import { CERT_HOST_KEY_ALGORITHMS, DEFAULT_HOST_KEY_ALGORITHMS, defaultPreferences, keyTypeOfAlgorithm, serverDefaultPreferences, supported } from '../transport/algorithms';
import { readFileSync, readSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import type { DialOptions } from '../worker/ssh/connection';
import { Message } from '../wire/message';
import { Event, InteractiveQuery, ServerInterface, SubsystemHandler } from './server';
import type { GlobalReplyItem } from './server';
import { parseModuli } from '../transport/kex/moduli';
import type { AuthOutcome, InteractiveHandler, PasswordChangeHandler } from '../transport/auth-client';
import { paramikoAuthResult } from '../transport/auth-client';
import { CLIENT_MAX_PACKET_SIZE, CLIENT_WINDOW_SIZE } from '../transport/channel';
import { isSocketLike, SOCKET_LIKE_CALLS, SockPump, type SocketLike } from './sock-pump';
import type { Negotiated } from '../transport/session';
import { DEFAULT_LOCAL_VERSION } from '../transport/version';
import { DEFAULT_LOG_CHANNEL } from '../debug';
import type { ChannelHandleInfo } from '../worker/ssh/channel';
import { Channel } from './channel';
import type { X11Handler } from './channel';
import { SFTPClient } from './sftp-client';
import { SecurityOptions } from './security-options';
import { ProxyCommand } from './proxy';
import { Socket } from './socket';

/** A channel the peer opened, as acceptChannel describes it. */
type AcceptedChannelInfo = ChannelHandleInfo & { kind: string; origin: [string, number] | null; forwardedTo?: [string, number] | null };

/**
 * Paramiko's request_port_forward handler: `(channel, [originAddress, originPort],
 * [serverAddress, serverPort])` for each connection to the remote forward, run on the main
 * thread (while it waits in any blocking call, or from its event loop when idle).
 */
export type PortForwardHandler = (channel: Channel, origin: [string, number], server: [string, number]) => void;
/** Channel.requestForwardAgent's handler function: gets each agent channel the server opens. */
export type AgentChannelHandler = (channel: Channel) => void;

function checkListenArgs(listenHost: string, listenPort: number): void {
  if (typeof listenHost !== 'string') throw new TypeError('listenHost must be a string');
  if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) throw new TypeError(`listenPort must be 0 to 65535, not ${listenPort}`);
}

function checkForwardArgs(listenHost: string, listenPort: number, destHost: string, destPort: number): void {
  checkListenArgs(listenHost, listenPort);
  if (typeof destHost !== 'string' || !destHost) throw new TypeError('destHost must be a string, not empty');
  if (!Number.isInteger(destPort) || destPort < 1 || destPort > 65535) throw new TypeError(`destPort must be 1 to 65535, not ${destPort}`);
}

/** One line from stdin (fd 0), read synchronously, without its line ending; null at end of input. */
function readStdinLine(): string | null {
  const bytes: number[] = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, one, 0, 1, null);
    } catch (e) {
      // A non-blocking stdin (a pipe Node set up that way) has nothing yet: wait a little.
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      if ((e as NodeJS.ErrnoException).code === 'EOF') n = 0;
      else throw e;
    }
    if (n === 0) return bytes.length ? Buffer.from(bytes).toString('utf8') : null;
    if (one[0] === 0x0a) return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
    bytes.push(one[0]);
  }
}

/** authInteractiveDumb's handler: prompts on stdout, answers from stdin, as Paramiko's. */
function promptOnTerminal(title: string, instructions: string, prompts: Array<[string, boolean]>): string[] {
  const say = (text: string): void => void writeSync(1, text);
  if (title.trim()) say(`${title.trim()}\n`);
  if (instructions.trim()) say(`${instructions.trim()}\n`);
  return prompts.map(([prompt]) => {
    say(`${prompt.trim()} `);
    const line = readStdinLine();
    if (line === null) throw new EOFError(`end of input before an answer to ${JSON.stringify(prompt.trim())}`);
    return line;
  });
}

/**
 * A running port forward of forwardLocalPort, forwardRemotePort, forwardSocks or a path forward
 * (AsyncSSH's SSHListener), or the listener of an AgentServerProxy: `port` is the port listened
 * on (the one picked when 0 was asked; 0 for unix sockets); `close()` stops new connections
 * (those open go on until they end). The transport's close stops it too.
 */
export class PortForwarder {
  private closed = false;
  constructor(
    private readonly transport: Transport,
    private readonly forwarder: number,
    /** The port listened on: locally for forwardLocalPort and forwardSocks, on the server for forwardRemotePort. */
    readonly port: number,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.transport.id !== null && this.transport.isActive()) {
      getBridge().call('transport', 'closeForward', { id: this.transport.id, forwarder: this.forwarder }, 10);
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Transports with a handler for channels the server opens (remote forwards, x11, agent) or for
 * host keys it proves (updateHostKeys): the worker hands each to the main thread by callback,
 * and the handler runs there.
 */
const handlingTransports = new Map<number, Transport>();
let handlersRegistered = false;
function registerHandlerCallbacks(): void {
  if (handlersRegistered) return;
  handlersRegistered = true;
  const transport = (id: number, what: string): Transport => {
    const t = handlingTransports.get(id);
    if (!t) throw new SSHException(`no ${what} handler for this transport`);
    return t;
  };
  const bridge = getBridge();
  bridge.onCallback('portForward', (p: { id: number; chan: ChannelHandleInfo; origin: [string, number]; server: [string, number]; forward: string }) => {
    transport(p.id, 'port forward').forwarded(p.forward, p.chan, p.origin, p.server);
    return true;
  });
  bridge.onCallback('x11Channel', (p: { id: number; chan: ChannelHandleInfo; origin: [string, number] }) => {
    transport(p.id, 'x11').x11Opened(p.chan, p.origin);
    return true;
  });
  bridge.onCallback('agentChannel', (p: { id: number; chan: ChannelHandleInfo }) => {
    transport(p.id, 'agent forwarding').agentOpened(p.chan);
    return true;
  });
  bridge.onCallback('hostKeysProven', (p: { id: number; keys: Uint8Array[]; exchange: Uint8Array }) => {
    transport(p.id, 'host key update').hostKeysProven(p.keys, p.exchange);
    return true;
  });
}

/** What the worker reports about a connection. */
interface TransportInfo {
  id?: number;
  active: boolean;
  authenticated?: boolean;
  username?: string | null;
  banner?: string | null;
  remoteVersion?: string | null;
  localVersion?: string;
  sessionId?: Uint8Array | null;
  negotiated?: Negotiated | null;
  strictKex?: boolean;
  hostKey?: Buffer | null;
  peer?: [string, number];
  error?: string | null;
}

export interface TransportOptions {
  defaultWindowSize?: number;
  defaultMaxPacketSize?: number;
  disabledAlgorithms?: DisabledAlgorithms;
  /** Beyond Paramiko (AsyncSSH's rekey_bytes): keys are exchanged anew after this many bytes either way (default 1 GiB). */
  rekeyBytes?: number;
  /** AsyncSSH's rekey_seconds: and after this many seconds (default none, as OpenSSH). */
  rekeySeconds?: number | null;
  /** When `sock` is a host and port (AsyncSSH's family): connect over IPv4 (4) or IPv6 (6) only; 0 or absent: either. */
  family?: 0 | 4 | 6;
  /** AsyncSSH's local_addr: the local address, or address and port, to connect from. */
  localAddr?: string | [string, number] | null;
  /** AsyncSSH's tcp_keepalive: SO_KEEPALIVE on the connection's socket (default false, as Paramiko). */
  tcpKeepalive?: boolean;
  /**
   * OpenSSH's UpdateHostKeys (client): when the server announces its host keys after login
   * (hostkeys-00@openssh.com, as sshd does), ask it to prove them; `getProvenHostKeys()` then
   * gives those that verified. Default false.
   */
  updateHostKeys?: boolean;
}

/** `rekeyBytes` and `rekeySeconds` checked (a TypeError names a bad one), as the worker takes them. */
export function rekeyLimits(o: { rekeyBytes?: number | null; rekeySeconds?: number | null }): { rekeyBytes?: number; rekeySeconds?: number } {
  if (o.rekeyBytes != null && !(Number.isSafeInteger(o.rekeyBytes) && o.rekeyBytes >= 16)) throw new TypeError(`rekeyBytes must be an integer of at least 16, not ${o.rekeyBytes}`);
  if (o.rekeySeconds != null && !(typeof o.rekeySeconds === 'number' && o.rekeySeconds >= 0 && Number.isFinite(o.rekeySeconds))) throw new TypeError(`rekeySeconds must be a number of seconds (0: none), not ${o.rekeySeconds}`);
  return { rekeyBytes: o.rekeyBytes ?? undefined, rekeySeconds: o.rekeySeconds || undefined };
}

/** The dial and rekey options of `o`, checked (a TypeError names a bad one). */
function connectionOptions(o: TransportOptions): { rekeyBytes?: number; rekeySeconds?: number; dial: DialOptions } {
  const limits = rekeyLimits(o);
  if (o.family != null && ![0, 4, 6].includes(o.family)) throw new TypeError(`family must be 4, 6 or 0 (either), not ${o.family}`);
  const [localAddress, localPort] = o.localAddr == null ? [undefined, undefined] : typeof o.localAddr === 'string' ? [o.localAddr, undefined] : o.localAddr;
  if (localAddress !== undefined && (typeof localAddress !== 'string' || !isIP(localAddress))) throw new TypeError(`localAddr must be an IP address (or [address, port]), not ${JSON.stringify(o.localAddr)}`);
  if (localPort !== undefined && !(Number.isInteger(localPort) && localPort >= 0 && localPort <= 65535)) throw new TypeError(`localAddr's port must be 0-65535, not ${localPort}`);
  return {
    ...limits,
    dial: { family: o.family || undefined, localAddress, localPort: localPort || undefined, keepAlive: o.tcpKeepalive || undefined },
  };
}

/** authPassword's options. */
export interface PasswordAuthOptions {
  /** A server allowing only keyboard-interactive gets the password as its answer (default true). */
  fallback?: boolean;
  /** Answers an expired-password request: `[oldPassword, newPassword]`, or null to decline. */
  passwordChange?: PasswordChangeHandler | null;
}

/** openChannel's options. */
export interface OpenChannelOptions {
  windowSize?: number;
  maxPacketSize?: number;
  /** Seconds to wait for the server's answer (default: the transport's channelTimeout). */
  timeout?: number | null;
}

/** Paramiko's Transport.connect keywords. */
export interface TransportConnectOptions {
  hostkey?: PKey | null;
  username?: string;
  password?: string | null;
  pkey?: PKey | null;
}

/** An InteractiveQuery as the worker takes it; AUTH_* numbers pass through. */
function interactive(r: number | InteractiveQuery): unknown {
  if (r instanceof InteractiveQuery) return { name: r.name, instructions: r.instructions, prompts: r.prompts };
  return r;
}

/**
 * Keyboard-interactive answered with a password, as Paramiko's fallback: one prompt gets it, no
 * prompt nothing, more than one fails.
 */
export function answerWithPassword(password: string): InteractiveHandler {
  return (_title, _instructions, prompts) => {
    if (prompts.length > 1) throw new SSHException('Fallback authentication failed.');
    return prompts.length ? [password] : [];
  };
}

/**
 * The main-thread handlers one worker callback is answered by, by transport id: each is set for
 * the auth call that needs it (`during`), and the callback is registered with the bridge once.
 */
class AuthCallbacks<H, P extends { id: number }> {
  private readonly byId = new Map<number, H>();
  private registered = false;

  /** `name`: the worker's callback; `what`: the handler, for the error when none is set. */
  constructor(
    private readonly name: string,
    private readonly what: string,
    private readonly answer: (handler: H, p: P) => unknown,
  ) {}

  /** Runs `op` with `handler` answering transport `id`'s callbacks. */
  *during<T>(id: number, handler: H, op: Op<T>): Op<T> {
    if (!this.registered) {
      this.registered = true;
      getBridge().onCallback(this.name, (p: P) => {
        const h = this.byId.get(p.id);
        if (!h) throw new AuthenticationException(`no ${this.what} handler`);
        return this.answer(h, p);
      });
    }
    this.byId.set(id, handler);
    try {
      return yield* op;
    } finally {
      this.byId.delete(id);
    }
  }
}

/** Keyboard-interactive prompts, answered by the handler of authInteractive. */
const interactiveHandlers = new AuthCallbacks<InteractiveHandler, { id: number; title: string; instructions: string; prompts: Array<[string, boolean]> }>(
  'interactive',
  'keyboard-interactive',
  (h, p) => h(p.title, p.instructions, p.prompts),
);

/** An expired password's change requests, answered by authPassword's passwordChange. */
const passwordChangeHandlers = new AuthCallbacks<PasswordChangeHandler, { id: number; prompt: string; lang: string }>('passwordChange', 'passwordChange', (h, p) => {
  const checked = (answer: unknown): [string, string] | null => {
    if (answer === null || answer === undefined) return null;
    if (Array.isArray(answer) && answer.length === 2 && answer.every((x) => typeof x === 'string')) return answer as [string, string];
    throw new TypeError('passwordChange must return [oldPassword, newPassword] or null');
  };
  const answer = h(p.prompt, p.lang);
  // A promise (authPasswordAsync's handler may await) is checked once it settles.
  return isThenable(answer) ? Promise.resolve(answer).then(checked) : checked(answer);
});

/** A password check's answer for the worker: its AUTH_* value, or PasswordChangeRequired as a change request. */
function passwordDecision(check: () => number): number | { passwordChange: { prompt: string; lang: string } } {
  try {
    return check();
  } catch (e) {
    if (e instanceof PasswordChangeRequired) return { passwordChange: { prompt: e.prompt, lang: e.lang } };
    throw e;
  }
}

/** Server transports by worker id: the 'server' callbacks find their ServerInterface here. */
const serverTransports = new Map<number, Transport>();
let nextServerKey = 1;
let serverRegistered = false;
function registerServerCallbacks(): void {
  if (serverRegistered) return;
  serverRegistered = true;
  getBridge().onCallback('server', (p: { id: number; m: string; a: Record<string, unknown> }) => {
    const t = serverTransports.get(p.id);
    if (!t) throw new SSHException(`no server transport ${p.id} on the main thread`);
    return t.serverCallback(p.m, p.a);
  });
}

/** The moduli text loaded by Transport.loadServerModuli (sent with every later startServer). */
let serverModuli: string | null = null;

/** Paramiko's reply tuple of an accepted global request, encoded as its Message would be. */
function encodeReply(items: GlobalReplyItem[]): Buffer {
  const m = new Message();
  for (const item of items) {
    if (typeof item === 'boolean') m.addBoolean(item);
    else if (typeof item === 'number') m.addInt(item);
    else if (typeof item === 'bigint') m.addInt64(item);
    else m.addString(item);
  }
  return m.asBytes();
}

/** A SubsystemHandler class and the extra arguments it is constructed with. */
type SubsystemEntry = { cls: new (channel: Channel, name: string, server: ServerInterface, ...args: any[]) => SubsystemHandler; args: unknown[] };

function parseSock(sock: string | [string, number]): [string, number] {
  if (Array.isArray(sock)) return [sock[0], Number(sock[1])];
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(sock);
  if (!m) throw new TypeError(`cannot read ${JSON.stringify(sock)} as "host:port"`);
  return [m[1], m[2] ? Number(m[2]) : 22];
}

/** What a `sock` that is none of the accepted kinds is, for the error. */
function describe(sock: unknown): string {
  if (sock === null || typeof sock !== 'object') return sock === null ? 'null' : `a ${typeof sock}`;
  const missing = SOCKET_LIKE_CALLS.filter((m) => typeof (sock as Record<string, unknown>)[m] !== 'function');
  return `an object (${sock.constructor?.name ?? 'no class'}) lacking ${missing.join(', ')}`;
}

/**
 * The error for a `sock` of a kind the worker cannot take over. A Node stream (a net.Socket, a
 * proxy library's Duplex) is named as such (NotImplementedError): its events need this thread,
 * which every blocking call holds, so it cannot carry a connection whose calls block. Anything
 * else is a TypeError saying what it lacks.
 * @internal also for SSHClient.connect.
 */
export function unsupportedSock(what: string, sock: unknown): NotImplementedError | TypeError {
  const accepted = "'host:port', [host, port], a paramiko-ts Socket (createConnection), a Channel (a jump host), a ProxyCommand, or an object with Python's socket calls (send, recv, settimeout, close)";
  if (typeof (sock as { pipe?: unknown } | null)?.pipe === 'function') {
    return new NotImplementedError(
      `${what} over a Node stream (${(sock as object).constructor?.name ?? 'Duplex'}): its events run on this thread, which blocks in every call; pass ${accepted}`,
    );
  }
  return new TypeError(`${what} over ${describe(sock)}: pass ${accepted}`);
}

/**
 * Paramiko's Transport: one SSH connection, run by the transport worker. Calls block until the
 * worker answers; timeouts are in seconds as in Paramiko.
 */
export class Transport {
  /** The worker's id for this connection (null before startClient). */
  id: number | null = null;
  bannerTimeout = 15;
  handshakeTimeout = 15;
  authTimeout = 30;
  channelTimeout = 3600;
  readonly defaultWindowSize: number;
  readonly defaultMaxPacketSize: number;
  readonly disabledAlgorithms: DisabledAlgorithms;
  private readonly host: string;
  private readonly port: number;
  private readonly via: { id: number; chan: number } | null = null;
  private readonly proxyCommand: string | null = null;
  private readonly socketId: number | null = null;
  /** A socket-like object of this thread (Paramiko's any-object `sock`), and its pump once started. */
  private readonly sockLike: SocketLike | null = null;
  private pump: SockPump | null = null;
  private readonly securityOptions: SecurityOptions;
  private compress = false;
  /** rekeyBytes, rekeySeconds and how to dial, from the options. */
  private readonly connection: ReturnType<typeof connectionOptions>;
  private readonly updateHostKeys: boolean;
  private info: TransportInfo = { active: false };
  private serverKey: PKey | null = null;
  private closedByUser = false;
  /** Server mode: host keys by type, the user's ServerInterface, channels by id, subsystems. */
  private readonly serverKeys = new Map<string, PKey>();
  private server: ServerInterface | null = null;
  private readonly channelsById = new Map<number, Channel>();
  private readonly subsystems = new Map<string, SubsystemEntry>();
  private lastException: Error | null = null;
  /** Server mode: seconds a client has to authenticate (OpenSSH's LoginGraceTime 120). */
  loginGraceTime: number | null = 120;
  /** Server mode: failed auth attempts before the connection is dropped (OpenSSH's MaxAuthTries). */
  maxAuthTries = 6;

  constructor(sock: string | [string, number] | Socket | Channel | ProxyCommand | SocketLike, options: TransportOptions = {}) {
    if (sock instanceof Channel) {
      // A jump host: this connection runs inside `sock` (usually a direct-tcpip channel).
      this.via = { id: sock.transport.id!, chan: sock.chanid };
      [this.host, this.port] = sock.destination ?? ['unknown', 0];
      sock.adopted();
    } else if (sock instanceof ProxyCommand) {
      this.proxyCommand = sock.commandLine;
      [this.host, this.port] = [`proxy: ${sock.commandLine}`, 0];
    } else if (sock instanceof Socket) {
      this.socketId = sock.take();
      [this.host, this.port] = sock.getpeername();
    } else if (typeof sock === 'string' || Array.isArray(sock)) {
      [this.host, this.port] = parseSock(sock as string | [string, number]);
    } else if (isSocketLike(sock)) {
      // Any object with Python's socket calls, driven from this thread (see SockPump).
      this.sockLike = sock;
      const peer = typeof (sock as { getpeername?: unknown }).getpeername === 'function' ? (sock as unknown as { getpeername(): unknown }).getpeername() : null;
      [this.host, this.port] = Array.isArray(peer) ? [String(peer[0]), Number(peer[1])] : [`sock: ${sock.constructor?.name ?? 'object'}`, 0];
    } else {
      throw unsupportedSock('Transport', sock);
    }
    this.connection = connectionOptions(options);
    this.updateHostKeys = Boolean(options.updateHostKeys);
    this.defaultWindowSize = options.defaultWindowSize ?? CLIENT_WINDOW_SIZE;
    this.defaultMaxPacketSize = options.defaultMaxPacketSize ?? CLIENT_MAX_PACKET_SIZE;
    this.disabledAlgorithms = options.disabledAlgorithms ?? {};
    this.securityOptions = new SecurityOptions(defaultPreferences(), () => this.id !== null, this.disabledAlgorithms);
  }

  private need(): number {
    if (this.id === null) throw new SSHException('No existing session');
    return this.id;
  }

  private call<T>(method: string, args: Record<string, unknown> = {}, timeout: number | null = null): T {
    return runSync(this.callOp<T>(method, args, timeout));
  }

  private *callOp<T>(method: string, args: Record<string, unknown> = {}, timeout: number | null = null): Op<T> {
    return yield* request<T>('transport', method, { id: this.need(), ...args }, timeout);
  }

  // ---- logging ----

  private logChannel = DEFAULT_LOG_CHANNEL;
  private hexdump = false;

  /**
   * Paramiko's set_log_channel: the NODE_DEBUG section this transport logs to (default
   * `paramiko-ts`): run with `NODE_DEBUG=<name>` to see its connection, key exchange,
   * authentication and channel events on stderr.
   */
  setLogChannel(name: string): void {
    if (typeof name !== 'string' || !name) throw new TypeError('the log channel is a non-empty NODE_DEBUG section name');
    this.logChannel = name;
    if (this.id !== null && this.isActive()) this.call('setLogging', { logChannel: name });
  }

  getLogChannel(): string {
    return this.logChannel;
  }

  /** Paramiko's set_hexdump: also log every packet's payload in hex (when the log channel is on). */
  setHexdump(hexdump: boolean): void {
    this.hexdump = Boolean(hexdump);
    if (this.id !== null && this.isActive()) this.call('setLogging', { hexdump: this.hexdump });
  }

  getHexdump(): boolean {
    return this.hexdump;
  }

  /** Only before start: turns on zlib compression (offered as zlib@openssh.com, zlib). */
  useCompression(compress = true): void {
    this.compress = compress;
    this.securityOptions.setCompression(compress);
  }

  getSecurityOptions(): SecurityOptions {
    return this.securityOptions;
  }

  /**
   * Connects, exchanges identification and keys, and verifies the server's host key
   * signature. `timeout` bounds the TCP connect; the handshake has `handshakeTimeout`.
   */
  startClient(options: { timeout?: number | null } = {}): void {
    runSync(this.startClientOp(options));
  }

  /** The promise twin of startClient. */
  startClientAsync(options: { timeout?: number | null } = {}): Promise<void> {
    return runAsync(this.startClientOp(options));
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  /** The rings of a socket-like object's pump, started now (once: a Transport starts once). */
  private sockRings(): ReturnType<SockPump['rings']> | undefined {
    if (!this.sockLike) return undefined;
    this.pump ??= new SockPump(this.sockLike);
    return this.pump.rings(this.host);
  }

  *startClientOp(options: { timeout?: number | null }): Op<void> {
    if (this.id !== null) throw new SSHException('the transport was already started');
    const prefs = this.securityOptions.preferences();
    const handshake = this.handshakeTimeout;
    let info: TransportInfo & { id: number };
    try {
      info = yield* request<TransportInfo & { id: number }>(
        'transport',
        'connect',
        {
          host: this.host,
          port: this.port,
          via: this.via ?? undefined,
          proxyCommand: this.proxyCommand ?? undefined,
          socketId: this.socketId ?? undefined,
          sockRings: this.sockRings(),
          timeout: options.timeout ?? null,
          handshakeTimeout: handshake,
          bannerTimeout: this.bannerTimeout,
          preferences: prefs,
          disabledAlgorithms: this.disabledAlgorithms,
          compress: this.compress,
          rekeyBytes: this.connection.rekeyBytes,
          rekeySeconds: this.connection.rekeySeconds,
          dial: this.connection.dial,
          updateHostKeys: this.updateHostKeys,
          logChannel: this.logChannel,
          hexdump: this.hexdump,
        },
        options.timeout === undefined || options.timeout === null ? null : options.timeout + handshake,
      );
    } catch (e) {
      // A socket-like object's pump goes with a connection that did not come about.
      this.pump?.finish();
      throw e;
    }
    this.id = info.id;
    this.info = info;
    this.serverKey = info.hostKey ? PKey.fromBlob(Buffer.from(info.hostKey)) : null;
  }

  private refresh(): TransportInfo {
    if (this.id === null) return this.info;
    this.info = getBridge().call<TransportInfo>('transport', 'info', { id: this.id }, null);
    return this.info;
  }

  /**
   * Paramiko's connect(): starts the client, checks `hostkey` if given, then authenticates
   * with the password or key. With neither, it succeeds unauthenticated, as Paramiko's does.
   */
  connect(options: TransportConnectOptions = {}): void {
    runSync(this.connectOp(options));
  }

  /** The promise twin of connect. */
  connectAsync(options: TransportConnectOptions = {}): Promise<void> {
    return runAsync(this.connectOp(options));
  }

  private *connectOp(options: TransportConnectOptions): Op<void> {
    if (this.id === null) yield* this.startClientOp({});
    const key = this.getRemoteServerKey();
    if (options.hostkey && (options.hostkey.getName() !== key.getName() || !options.hostkey.equals(key))) {
      throw new SSHException('Bad host key from server');
    }
    const username = options.username ?? '';
    if (options.pkey) yield* this.authPublickeyOp(username, options.pkey);
    else if (options.password !== undefined && options.password !== null) yield* this.authPasswordOp(username, options.password, true);
  }

  isActive(): boolean {
    if (this.id === null || this.closedByUser) return false;
    return this.refresh().active;
  }

  isAuthenticated(): boolean {
    return this.id !== null && !this.closedByUser && Boolean(this.refresh().authenticated) && this.info.active;
  }

  getUsername(): string | null {
    return this.id === null ? null : (this.refresh().username ?? null);
  }

  /** The server's USERAUTH_BANNER, if it sent one. */
  getBanner(): string | null {
    return this.id === null ? null : (this.refresh().banner ?? null);
  }

  getRemoteServerKey(): PKey {
    if (!this.serverKey) throw new SSHException('No existing session');
    return this.serverKey;
  }

  /** What was negotiated (beyond Paramiko): kex, host key, ciphers, MACs, compression. */
  getNegotiated(): Negotiated | null {
    return this.refresh().negotiated ?? null;
  }

  get remoteVersion(): string | null {
    return this.info.remoteVersion ?? null;
  }

  /** Our identification line (Paramiko's local_version). */
  get localVersion(): string {
    return this.info.localVersion ?? DEFAULT_LOCAL_VERSION;
  }

  /** The exchange hash of the first key exchange (Paramiko's session_id); null before it. */
  get sessionId(): Buffer | null {
    const id = this.refresh().sessionId;
    return id ? Buffer.from(id) : null;
  }

  /** Paramiko's `active` attribute: isActive(). */
  get active(): boolean {
    return this.isActive();
  }

  // Paramiko's preferred_* views: what the transport offers, disabledAlgorithms left out.
  get preferredCiphers(): readonly string[] {
    return this.securityOptions.ciphers;
  }
  get preferredMacs(): readonly string[] {
    return this.securityOptions.digests;
  }
  get preferredKeys(): readonly string[] {
    return this.securityOptions.keyTypes;
  }
  get preferredKex(): readonly string[] {
    return this.securityOptions.kex;
  }
  get preferredCompression(): readonly string[] {
    return this.securityOptions.compression;
  }
  /** Signature algorithms user keys may sign with, strongest first (less disabledAlgorithms.pubkeys). */
  get preferredPubkeys(): readonly string[] {
    const off = new Set(this.disabledAlgorithms.pubkeys ?? []);
    return [...DEFAULT_HOST_KEY_ALGORITHMS, ...CERT_HOST_KEY_ALGORITHMS].filter((a) => !off.has(a));
  }

  /**
   * Beyond Paramiko (OpenSSH's UpdateHostKeys): the host keys the server announced after login
   * and proved it holds, besides the one the key exchange verified; [] until they came (sshd
   * sends them right after authentication), without `updateHostKeys`, or when a proof failed.
   */
  getProvenHostKeys(): PKey[] {
    if (this.id === null || !this.isActive()) return [];
    const blobs = getBridge().call<Uint8Array[]>('transport', 'provenHostKeys', { id: this.id }, 10);
    return blobs.map((b) => PKey.fromBlob(Buffer.from(b)));
  }

  /**
   * @internal With updateHostKeys: `listener` gets the keys the server proves, and the
   * exchange's (together: every key it offers), as soon as the proof arrives (on this thread,
   * during any blocking call, or from the event loop when idle), so an SSHClient records them
   * then and not only at close.
   */
  onHostKeysProven(listener: (keys: PKey[], exchange: PKey) => void): void {
    this.provenListener = listener;
    this.handleChannels();
  }

  private provenListener: ((keys: PKey[], exchange: PKey) => void) | null = null;

  /** @internal The worker's 'hostKeysProven' callback. */
  hostKeysProven(keys: Uint8Array[], exchange: Uint8Array): void {
    if (!this.provenListener) throw new SSHException('no host key update handler for this transport');
    this.provenListener(
      keys.map((b) => PKey.fromBlob(Buffer.from(b))),
      PKey.fromBlob(Buffer.from(exchange)),
    );
  }

  getpeername(): [string, number] {
    return this.info.peer ?? ['unknown', 0];
  }

  // ---- server mode ----

  /** A private host key for server mode; one per key type (a later one replaces it). */
  addServerKey(key: PKey): void {
    if (!key.canSign()) throw new SSHException('a server host key must be a private key');
    this.serverKeys.set(key.getName(), key);
  }

  /** The host key the negotiation chose (server mode), or null before it. */
  getServerKey(): PKey | null {
    const n = this.id === null ? null : (this.info.negotiated ?? null);
    if (!n) return this.serverKeys.values().next().value ?? null;
    return this.serverKeys.get(keyTypeOfAlgorithm(n.hostKey)) ?? null;
  }

  /**
   * Loads an OpenSSH moduli file (default /etc/ssh/moduli) for group exchange in server mode;
   * false when it cannot be read or holds no usable group (the built-in groups serve then).
   */
  static loadServerModuli(filename: string | null = null): boolean {
    try {
      const text = readFileSync(filename ?? '/etc/ssh/moduli', 'utf8');
      if (!parseModuli(text).length) return false;
      serverModuli = text;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Paramiko's start_server: negotiates as the server on the accepted socket, with `server`
   * (a ServerInterface) deciding auth and channels on this thread. Blocks until the key
   * exchange is done (SSHException if it fails); with `event`, returns at once and sets it then.
   */
  startServer(
    eventOrOptions: Event | null | { server?: ServerInterface; event?: Event | null } = null,
    server: ServerInterface | null = null,
  ): void {
    runSync(this.startServerOp(eventOrOptions, server));
  }

  /**
   * The promise twin of startServer: the event loop runs while the client negotiates, and the
   * ServerInterface callbacks (synchronous, as always) run from it.
   */
  startServerAsync(
    eventOrOptions: Event | null | { server?: ServerInterface; event?: Event | null } = null,
    server: ServerInterface | null = null,
  ): Promise<void> {
    return runAsync(this.startServerOp(eventOrOptions, server));
  }

  private *startServerOp(eventOrOptions: Event | null | { server?: ServerInterface; event?: Event | null }, server: ServerInterface | null): Op<void> {
    let event: Event | null = null;
    if (eventOrOptions instanceof Event) event = eventOrOptions;
    else if (eventOrOptions instanceof ServerInterface) server = eventOrOptions;
    else if (eventOrOptions) {
      event = eventOrOptions.event ?? null;
      server = eventOrOptions.server ?? server;
    }
    if (this.id !== null) throw new SSHException('the transport was already started');
    if (this.socketId === null && !this.sockLike) throw new SSHException('server mode needs an accepted socket (listen(...).accept()) or a socket-like object');
    if (!this.serverKeys.size) throw new SSHException('no host key: call addServerKey first');
    this.server = server ?? new ServerInterface();
    registerServerCallbacks();
    // Callbacks can come before startServer returns (with an event): they find us by this key.
    this.serverKey_ = nextServerKey++;
    serverTransports.set(this.serverKey_, this);
    this.securityOptions.useDefaults(serverDefaultPreferences(this.compress));
    const args = {
      socketId: this.socketId ?? undefined,
      sockRings: this.sockRings(),
      hostKeys: [...this.serverKeys.values()].map((k) => k.exportPrivateKey(null, 'openssh')),
      preferences: this.securityOptions.preferences(),
      disabledAlgorithms: this.disabledAlgorithms,
      compress: this.compress,
      moduli: serverModuli,
      maxAuthTries: this.maxAuthTries,
      loginGraceTime: this.loginGraceTime,
      handshakeTimeout: this.handshakeTimeout,
      bannerTimeout: this.bannerTimeout,
      event: event ? event.sab : null,
      rekeyBytes: this.connection.rekeyBytes,
      rekeySeconds: this.connection.rekeySeconds,
      callbackKey: this.serverKey_,
      logChannel: this.logChannel,
      hexdump: this.hexdump,
    };
    // The worker's id is known before the handshake: callbacks during it must find us.
    const info = yield* request<TransportInfo & { id: number }>('transport', 'startServer', args, event ? 30 : this.handshakeTimeout + 5);
    this.id = info.id;
    this.info = info;
  }
  private serverKey_ = 0;

  /**
   * The next channel the peer opened: in server mode the client's, in client mode the x11
   * channels the server opens after `Channel.requestX11` (their `origin` is the X client's
   * address and port). Null after `timeout` seconds or when the transport ends.
   */
  accept(timeout: number | null | { timeout?: number | null } = null): Channel | null {
    return runSync(this.acceptOp(timeout));
  }

  /** The promise twin of accept: a server can wait for channels without blocking its event loop. */
  acceptAsync(timeout: number | null | { timeout?: number | null } = null): Promise<Channel | null> {
    return runAsync(this.acceptOp(timeout));
  }

  private *acceptOp(timeout: number | null | { timeout?: number | null }): Op<Channel | null> {
    const t = timeout !== null && typeof timeout === 'object' ? (timeout.timeout ?? null) : timeout;
    if (this.id === null) throw new SSHException('No existing session');
    const info = yield* request<AcceptedChannelInfo | null>('transport', 'acceptChannel', { id: this.id, timeout: t }, t === null ? null : t + 5);
    return info ? this.channelFor(info, info.kind, info.origin, info.forwardedTo ?? null) : null;
  }

  // ---- remote port forwarding (client) ----

  private readonly forwardHandlers = new Map<string, PortForwardHandler>();

  /**
   * Paramiko's request_port_forward: asks the server to listen on `address`:`port` (`port` 0:
   * the server picks one) and forward each connection back over this transport. Returns the port
   * bound. Without a `handler`, the connections come from `accept()` as "forwarded-tcpip"
   * channels (`channel.origin`: who connected; `channel.destination`: the server's address and
   * port); with one, it is called for each. SSHException if the server refuses.
   */
  requestPortForward(address: string, port: number, handler: PortForwardHandler | null = null): number {
    return runSync(this.requestPortForwardOp(address, port, handler));
  }

  /** The promise twin of requestPortForward (the handler is still called synchronously). */
  requestPortForwardAsync(address: string, port: number, handler: PortForwardHandler | null = null): Promise<number> {
    return runAsync(this.requestPortForwardOp(address, port, handler));
  }

  private *requestPortForwardOp(address: string, port: number, handler: PortForwardHandler | null): Op<number> {
    if (typeof address !== 'string') throw new TypeError('address must be a string ("" for every address of the server)');
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`port must be 0 to 65535, not ${port}`);
    if (handler !== null && typeof handler !== 'function') throw new TypeError('handler must be a function or null');
    if (handler) this.handleChannels();
    const bound = yield* this.callOp<number>('requestPortForward', { address, port, handler: handler !== null }, this.channelTimeout);
    if (handler) this.forwardHandlers.set(`${address}:${bound}`, handler);
    return bound;
  }

  /**
   * Beyond Paramiko (AsyncSSH's forward_local_port): listens on `listenHost`:`listenPort` here
   * (0: a free port) and carries each connection to `destHost`:`destPort` as seen from the
   * server (a direct-tcpip channel). Runs in the worker: the connections flow while this
   * thread blocks in anything else or sits idle. IOError if the port cannot be listened on; a
   * connection the server refuses to forward is closed.
   */
  forwardLocalPort(listenHost: string, listenPort: number, destHost: string, destPort: number): PortForwarder {
    return runSync(this.forwarderOp('forwardLocalPort', listenHost, listenPort, destHost, destPort));
  }

  /** The promise twin of forwardLocalPort. */
  forwardLocalPortAsync(listenHost: string, listenPort: number, destHost: string, destPort: number): Promise<PortForwarder> {
    return runAsync(this.forwarderOp('forwardLocalPort', listenHost, listenPort, destHost, destPort));
  }

  private *forwarderOp(method: 'forwardLocalPort' | 'forwardRemotePort', listenHost: string, listenPort: number, destHost: string, destPort: number): Op<PortForwarder> {
    checkForwardArgs(listenHost, listenPort, destHost, destPort);
    return yield* this.startForwarderOp(method, { listenHost, listenPort, destHost, destPort });
  }

  /** Starts a forwarder of the worker (port, SOCKS or path forward): the PortForwarder that stops it. */
  private *startForwarderOp(method: string, args: Record<string, unknown>): Op<PortForwarder> {
    const r = yield* this.callOp<{ forwarder: number; port: number }>(method, args, this.channelTimeout);
    return new PortForwarder(this, r.forwarder, r.port);
  }

  /**
   * Beyond Paramiko (AsyncSSH's forward_remote_port): the server listens on
   * `listenHost`:`listenPort` (0: it picks) and each connection is carried back and on to
   * `destHost`:`destPort` as seen from here, in the worker. SSHException if the server refuses.
   */
  forwardRemotePort(listenHost: string, listenPort: number, destHost: string, destPort: number): PortForwarder {
    return runSync(this.forwarderOp('forwardRemotePort', listenHost, listenPort, destHost, destPort));
  }

  /** The promise twin of forwardRemotePort. */
  forwardRemotePortAsync(listenHost: string, listenPort: number, destHost: string, destPort: number): Promise<PortForwarder> {
    return runAsync(this.forwarderOp('forwardRemotePort', listenHost, listenPort, destHost, destPort));
  }

  /**
   * Beyond Paramiko (AsyncSSH's forward_socks, OpenSSH's `ssh -D`): a SOCKS proxy on
   * `listenHost`:`listenPort` here (0: a free port). Each CONNECT (SOCKS4, 4a or 5 without
   * authentication) is carried to the host and port it names, as seen from the server, over a
   * direct-tcpip channel, in the worker. IOError if the port cannot be listened on; a destination
   * the server refuses gets the SOCKS refusal.
   */
  forwardSocks(listenHost: string, listenPort: number): PortForwarder {
    return runSync(this.forwardSocksOp(listenHost, listenPort));
  }

  /** The promise twin of forwardSocks. */
  forwardSocksAsync(listenHost: string, listenPort: number): Promise<PortForwarder> {
    return runAsync(this.forwardSocksOp(listenHost, listenPort));
  }

  private *forwardSocksOp(listenHost: string, listenPort: number): Op<PortForwarder> {
    checkListenArgs(listenHost, listenPort);
    return yield* this.startForwarderOp('forwardSocks', { listenHost, listenPort });
  }

  /**
   * Beyond Paramiko (AsyncSSH's forward_local_path, `ssh -L path:path`): listens on the unix
   * socket `listenPath` here and carries each connection to the server's unix socket `destPath`
   * (a direct-streamlocal@openssh.com channel; OpenSSH's AllowStreamLocalForwarding), in the
   * worker. IOError if the path cannot be listened on (it exists, or its folder does not).
   */
  forwardLocalPath(listenPath: string, destPath: string): PortForwarder {
    return runSync(this.pathForwarderOp('forwardLocalPath', listenPath, destPath));
  }

  /** The promise twin of forwardLocalPath. */
  forwardLocalPathAsync(listenPath: string, destPath: string): Promise<PortForwarder> {
    return runAsync(this.pathForwarderOp('forwardLocalPath', listenPath, destPath));
  }

  /**
   * Beyond Paramiko (AsyncSSH's forward_remote_path, `ssh -R path:path`): the server listens on
   * its unix socket `listenPath` (streamlocal-forward@openssh.com) and each connection is
   * carried back to the unix socket `destPath` here, in the worker. SSHException if the server
   * refuses; `close()` cancels it.
   */
  forwardRemotePath(listenPath: string, destPath: string): PortForwarder {
    return runSync(this.pathForwarderOp('forwardRemotePath', listenPath, destPath));
  }

  /** The promise twin of forwardRemotePath. */
  forwardRemotePathAsync(listenPath: string, destPath: string): Promise<PortForwarder> {
    return runAsync(this.pathForwarderOp('forwardRemotePath', listenPath, destPath));
  }

  private *pathForwarderOp(method: 'forwardLocalPath' | 'forwardRemotePath', listenPath: string, destPath: string): Op<PortForwarder> {
    if (typeof listenPath !== 'string' || !listenPath || typeof destPath !== 'string' || !destPath) throw new TypeError('listenPath and destPath must be socket paths');
    return yield* this.startForwarderOp(method, { listenPath, destPath });
  }

  /** Paramiko's cancel_port_forward: the server stops listening on `address`:`port`. */
  cancelPortForward(address: string, port: number): void {
    runSync(this.cancelPortForwardOp(address, port));
  }

  /** The promise twin of cancelPortForward. */
  cancelPortForwardAsync(address: string, port: number): Promise<void> {
    return runAsync(this.cancelPortForwardOp(address, port));
  }

  private *cancelPortForwardOp(address: string, port: number): Op<void> {
    this.forwardHandlers.delete(`${address}:${port}`);
    yield* this.callOp('cancelPortForward', { address, port }, this.channelTimeout);
  }

  /** @internal A connection to a remote forward with a handler (the worker's 'portForward' callback). */
  forwarded(forward: string, info: ChannelHandleInfo, origin: [string, number], server: [string, number]): void {
    const ch = this.channelFor(info, 'forwarded-tcpip', origin, server);
    this.handOver(ch, this.forwardHandlers.get(forward), `no handler for the remote forward ${server[0]}:${server[1]}`, (h) => h(ch, origin, server));
  }

  /** A channel the worker handed over for `handler`: given to it, or closed when there is none (SSHException `missing`). */
  private handOver<H>(ch: Channel, handler: H | null | undefined, missing: string, give: (handler: H) => void): void {
    if (!handler) {
      ch.close();
      throw new SSHException(missing);
    }
    give(handler);
  }

  /** Routes the channels the server opens (and the keys it proves) for a handler of ours to this transport. */
  private handleChannels(): void {
    registerHandlerCallbacks();
    handlingTransports.set(this.need(), this);
  }

  // ---- x11 and agent channels with a handler (client; set by Channel.requestX11 and requestForwardAgent) ----

  private x11Handler: X11Handler | null = null;
  private agentHandler: AgentChannelHandler | null = null;

  /** @internal Channel.requestX11's handler (Paramiko's transport-wide _set_x11_handler); null: accept(). */
  setX11Handler(handler: X11Handler | null): void {
    if (handler) this.handleChannels();
    this.x11Handler = handler;
  }

  /** @internal Channel.requestForwardAgent's handler function (Paramiko's _set_forward_agent_handler). */
  setAgentHandler(handler: AgentChannelHandler): void {
    this.handleChannels();
    this.agentHandler = handler;
  }

  /** @internal An x11 channel for the handler (the worker's 'x11Channel' callback). */
  x11Opened(info: ChannelHandleInfo, origin: [string, number]): void {
    const ch = this.channelFor(info, 'x11', origin);
    this.handOver(ch, this.x11Handler, 'no x11 handler on this transport', (h) => h(ch, origin));
  }

  /** @internal An agent channel for the handler (the worker's 'agentChannel' callback). */
  agentOpened(info: ChannelHandleInfo): void {
    const ch = this.channelFor(info, 'auth-agent@openssh.com');
    this.handOver(ch, this.agentHandler, 'no agent forwarding handler on this transport', (h) => h(ch));
  }

  /** Registers a SubsystemHandler class for `name`: constructed as `new cls(channel, name, server, ...args)`. */
  setSubsystemHandler(name: string, cls: SubsystemEntry['cls'], ...args: unknown[]): void {
    this.subsystems.set(name, { cls, args });
  }

  /** Whether a handler is registered for subsystem `name`. */
  hasSubsystemHandler(name: string): boolean {
    return this.subsystems.has(name);
  }

  /** The last error a ServerInterface method threw (then cleared), as Paramiko's get_exception. */
  getException(): Error | null {
    const e = this.lastException;
    this.lastException = null;
    return e;
  }

  /** Server mode: a forwarded-tcpip channel to the client (for a port it asked us to forward). */
  openForwardedTcpipChannel(srcAddr: [string, number], destAddr: [string, number]): Channel {
    return this.openChannel('forwarded-tcpip', destAddr, srcAddr);
  }

  /**
   * Server mode, Paramiko's open_forward_agent_channel: a channel to the client's agent (after
   * its auth-agent-req@openssh.com, which checkChannelForwardAgentRequest accepted): agent
   * protocol messages written to it are answered by the client's agent. ChannelException if
   * the client refuses (it did not ask for agent forwarding).
   */
  openForwardAgentChannel(): Channel {
    return this.openChannel('auth-agent@openssh.com');
  }

  /**
   * Server mode: an x11 channel to the client (after its x11-req), from the X client at
   * `srcAddr` (RFC 4254 6.3.2). ChannelException if the client refuses it.
   */
  openX11Channel(srcAddr: [string, number] = ['', 0]): Channel {
    return this.openChannel('x11', null, srcAddr);
  }

  /** The Channel object of a channel the worker describes (one per id). */
  private channelFor(info: ChannelHandleInfo, kind = 'session', origin: [string, number] | null = null, destination: [string, number] | null = null): Channel {
    let ch = this.channelsById.get(info.chanId);
    if (!ch) {
      // A connection never reuses an id, and no event comes for a finished channel: those go,
      // or a long-lived server connection would keep every channel it ever had (and its rings).
      for (const [id, old] of this.channelsById) if (old.finished) this.channelsById.delete(id);
      ch = new Channel(this, info, kind, destination, origin);
      this.channelsById.set(info.chanId, ch);
    }
    return ch;
  }

  /** @internal a ServerInterface decision the worker asks for. */
  serverCallback(method: string, a: Record<string, unknown>): unknown {
    const server = this.server!;
    try {
      return this.dispatchServer(server, method, a);
    } catch (e) {
      this.lastException = e as Error;
      const name = method === 'channelRequest' ? `channel request ${String(a.type)}` : method;
      console.error(`paramiko-ts: the ServerInterface failed on ${name} (refused):`, e);
      throw e;
    }
  }

  private dispatchServer(server: ServerInterface, method: string, a: Record<string, unknown>): unknown {
    switch (method) {
      case 'getAllowedAuths':
        return String(server.getAllowedAuths(a.username as string)).split(',').map((x) => x.trim()).filter(Boolean);
      case 'checkAuthNone':
        return server.checkAuthNone(a.username as string);
      case 'checkAuthPassword':
        return passwordDecision(() => server.checkAuthPassword(a.username as string, a.password as string));
      case 'checkAuthPasswordChange':
        return passwordDecision(() => server.checkAuthPasswordChange(a.username as string, a.oldPassword as string, a.newPassword as string));
      case 'checkAuthPublickey': {
        const key = PKey.fromBlob(Buffer.from(a.key as Uint8Array));
        if (a.cert) key.publicBlob = PKey.fromBlob(Buffer.from(a.cert as Uint8Array)).publicBlob;
        return server.checkAuthPublickey(a.username as string, key);
      }
      case 'checkAuthInteractive':
        return interactive(server.checkAuthInteractive(a.username as string, a.submethods as string));
      case 'checkAuthInteractiveResponse':
        return interactive(server.checkAuthInteractiveResponse(a.responses as string[]));
      case 'getBanner': {
        const b = server.getBanner();
        return Array.isArray(b) ? (b[0] ?? null) : null;
      }
      case 'channelOpen':
        if (a.kind === 'direct-tcpip') {
          return server.checkChannelDirectTcpipRequest(a.chanid as number, a.origin as [string, number], a.dest as [string, number]);
        }
        return server.checkChannelRequest(a.kind as string, a.chanid as number);
      case 'globalRequest': {
        if (a.name === 'tcpip-forward') {
          const port = server.checkPortForwardRequest(a.address as string, a.port as number);
          if (port === false || port === null || port === undefined) return false;
          // RFC 4254 section 7.1: the reply carries the port only when the client asked for 0.
          return a.port === 0 ? new Message().addInt(Number(port)).asBytes() : true;
        }
        if (a.name === 'cancel-tcpip-forward') {
          server.cancelPortForwardRequest(a.address as string, a.port as number);
          return true;
        }
        const r = server.checkGlobalRequest(a.name as string, new Message(Buffer.from(a.data as Uint8Array)));
        return Array.isArray(r) ? encodeReply(r) : Boolean(r);
      }
      case 'channelRequest':
        return this.channelRequest(server, a);
      case 'startSubsystem':
        this.runSubsystem(server, a.chan as number, a.name as string);
        return null;
      case 'closed':
        serverTransports.delete(this.serverKey_);
        this.info = { ...this.info, active: false };
        return null;
    }
    throw new SSHException(`unknown server callback ${method}`);
  }

  private channelRequest(server: ServerInterface, a: Record<string, unknown>): boolean | 'start' {
    const ch = this.channelFor(a.chan as ChannelHandleInfo);
    switch (a.type) {
      case 'pty-req':
        return server.checkChannelPtyRequest(ch, a.term as string, a.width as number, a.height as number, a.widthPixels as number, a.heightPixels as number, Buffer.from(a.modes as Uint8Array)) === true;
      case 'shell':
        return server.checkChannelShellRequest(ch) === true;
      case 'exec':
        return server.checkChannelExecRequest(ch, Buffer.from(a.command as Uint8Array)) === true;
      case 'subsystem': {
        const ok = server.checkChannelSubsystemRequest(ch, a.name as string) === true;
        return ok && this.subsystems.has(a.name as string) ? 'start' : ok;
      }
      case 'window-change':
        return server.checkChannelWindowChangeRequest(ch, a.width as number, a.height as number, a.widthPixels as number, a.heightPixels as number) === true;
      case 'env':
        return server.checkChannelEnvRequest(ch, a.name as string, a.value as string) === true;
      case 'signal':
        return server.checkChannelSignalRequest(ch, a.signal as string) === true;
      case 'x11-req':
        return server.checkChannelX11Request(ch, a.singleConnection as boolean, a.protocol as string, a.cookie as string, a.screen as number) === true;
      case 'auth-agent-req@openssh.com':
        return server.checkChannelForwardAgentRequest(ch) === true;
    }
    return false;
  }

  /** Runs a registered SubsystemHandler on `chan` (the channel closes when it returns). */
  private runSubsystem(server: ServerInterface, chan: number, name: string): void {
    const entry = this.subsystems.get(name);
    const ch = this.channelsById.get(chan);
    if (!entry || !ch) return;
    const handler = new entry.cls(ch, name, server, ...entry.args);
    try {
      handler.startSubsystem(name, this, ch);
    } finally {
      handler.finishSubsystem();
    }
  }

  // ---- authentication ----

  private *authOp(method: string, args: Record<string, unknown>): Op<AuthOutcome> {
    return yield* this.callOp<AuthOutcome>(method, args, this.authTimeout);
  }

  /** Returns the server's allowed methods: Paramiko raises BadAuthenticationType carrying them. */
  authNone(username: string): string[] {
    return runSync(this.authNoneOp(username));
  }

  /** The promise twin of authNone. */
  authNoneAsync(username: string): Promise<string[]> {
    return runAsync(this.authNoneOp(username));
  }

  private *authNoneOp(username: string): Op<string[]> {
    return paramikoAuthResult('none', yield* this.authOp('authNone', { username }));
  }

  /**
   * Password auth; [] on success, the next methods on partial success. With `fallback`, a
   * server that allows only keyboard-interactive gets the password as the answer to its prompt.
   * Beyond Paramiko (AsyncSSH's password_change_requested): a server that finds the password
   * expired asks for a new one (RFC 4252 section 8); `passwordChange(prompt, lang)` answers with
   * `[oldPassword, newPassword]` (or null to decline: AuthenticationException). Without it, such a
   * server's request is an AuthenticationException quoting its prompt.
   */
  authPassword(username: string, password: string, options: PasswordAuthOptions | boolean = true): string[] {
    return runSync(this.authPasswordOp(username, password, options));
  }

  /** The promise twin of authPassword (there passwordChange may return a promise). */
  authPasswordAsync(username: string, password: string, options: PasswordAuthOptions | boolean = true): Promise<string[]> {
    return runAsync(this.authPasswordOp(username, password, options));
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  *authPasswordOp(username: string, password: string, options: PasswordAuthOptions | boolean): Op<string[]> {
    const fallback = typeof options === 'boolean' ? options : options.fallback !== false;
    const change = typeof options === 'boolean' ? null : (options.passwordChange ?? null);
    if (change !== null && typeof change !== 'function') throw new TypeError('passwordChange must be a function');
    const o = change
      ? yield* passwordChangeHandlers.during(this.need(), change, this.authOp('authPassword', { username, password, change: true }))
      : yield* this.authOp('authPassword', { username, password });
    try {
      return paramikoAuthResult('password', o);
    } catch (e) {
      if (!(e instanceof BadAuthenticationType) || !fallback || !e.allowedTypes.includes('keyboard-interactive')) throw e;
      return yield* this.authInteractiveOp(username, answerWithPassword(password));
    }
  }

  /**
   * Publickey auth with a private key (and its certificate, if loaded), or with an AgentKey:
   * then the worker has the agent sign, with no thread hop per signature.
   */
  authPublickey(username: string, key: PKey): string[] {
    return runSync(this.authPublickeyOp(username, key));
  }

  /** The promise twin of authPublickey. */
  authPublickeyAsync(username: string, key: PKey): Promise<string[]> {
    return runAsync(this.authPublickeyOp(username, key));
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  *authPublickeyOp(username: string, key: PKey): Op<string[]> {
    if (key instanceof AgentKey) {
      const o = yield* this.authOp('authAgent', {
        username,
        blob: key.blob,
        cert: key.publicBlob ? key.publicBlob.keyBlob : null,
        socketPath: agentSocketOf(key),
        disabled: this.disabledAlgorithms.pubkeys ?? [],
      });
      return paramikoAuthResult('publickey', o);
    }
    if (!key.canSign()) throw new SSHException('authPublickey needs a key that can sign (a private key)');
    const o = yield* this.authOp('authPublickey', {
      username,
      key: key.privateKeyObject!.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: key.publicBlob ? key.publicBlob.keyBlob : null,
      disabled: this.disabledAlgorithms.pubkeys ?? [],
    });
    return paramikoAuthResult('publickey', o);
  }

  /**
   * Paramiko's auth_interactive_dumb: keyboard-interactive where, without a handler, the title,
   * instructions and each prompt are printed to stdout and each answer is a line read from stdin
   * (typed input is echoed, as Paramiko's `input()` does). EOFError if stdin ends first.
   */
  authInteractiveDumb(username: string, handler: InteractiveHandler | null = null, submethods = ''): string[] {
    return this.authInteractive(username, handler ?? promptOnTerminal, submethods);
  }

  /** Not implemented: GSS-API (Kerberos) authentication and key exchange (REFERENCE P2). */
  setGssHost(_gssHost: string): never {
    throw new NotImplementedError('GSS-API (Transport.setGssHost)');
  }
  authGssapiWithMic(_username: string, _gssHost?: string, _gssDelegCreds?: boolean): never {
    throw new NotImplementedError('GSS-API authentication (Transport.authGssapiWithMic)');
  }
  authGssapiKeyex(_username: string): never {
    throw new NotImplementedError('GSS-API key exchange authentication (Transport.authGssapiKeyex)');
  }
  /** Python's fork shares the process with the transport thread; Node has no fork of a running process. */
  atfork(): never {
    throw new NotImplementedError('Transport.atfork (Node cannot fork a running process: a child_process starts afresh)');
  }

  /** Keyboard-interactive: `handler(title, instructions, [[prompt, echo], ...])` returns answers. */
  authInteractive(username: string, handler: InteractiveHandler, submethods = ''): string[] {
    return runSync(this.authInteractiveOp(username, handler, submethods));
  }

  /**
   * The promise twin of authInteractive. The handler runs on this thread when the server's
   * prompts arrive; it must answer synchronously.
   */
  authInteractiveAsync(username: string, handler: InteractiveHandler, submethods = ''): Promise<string[]> {
    return runAsync(this.authInteractiveOp(username, handler, submethods));
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  *authInteractiveOp(username: string, handler: InteractiveHandler, submethods = ''): Op<string[]> {
    const o = yield* interactiveHandlers.during(this.need(), handler, this.authOp('authInteractive', { username, submethods }));
    return paramikoAuthResult('keyboard-interactive', o);
  }

  // ---- channels ----

  openSession(options: OpenChannelOptions = {}): Channel {
    return runSync(this.openSessionOp(options));
  }

  /** The promise twin of openSession. */
  openSessionAsync(options: OpenChannelOptions = {}): Promise<Channel> {
    return runAsync(this.openSessionOp(options));
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  *openSessionOp(options: OpenChannelOptions = {}): Op<Channel> {
    return yield* this.openChannelOp('session', null, null, options);
  }

  /** Opens a channel; the default timeout is Paramiko's 3600 s. ChannelException if refused. */
  openChannel(kind: string, destAddr: [string, number] | null = null, srcAddr: [string, number] | null = null, options: OpenChannelOptions = {}): Channel {
    return runSync(this.openChannelOp(kind, destAddr, srcAddr, options));
  }

  /** The promise twin of openChannel. */
  openChannelAsync(kind: string, destAddr: [string, number] | null = null, srcAddr: [string, number] | null = null, options: OpenChannelOptions = {}): Promise<Channel> {
    return runAsync(this.openChannelOp(kind, destAddr, srcAddr, options));
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  *openChannelOp(kind: string, destAddr: [string, number] | null, srcAddr: [string, number] | null, options: OpenChannelOptions): Op<Channel> {
    if (!this.isAuthenticated() && kind === 'session' && !this.info.active) throw new SSHException('SSH session not active');
    // As Paramiko's open_channel: an x11 open carries only the source address (its origin).
    const origin: [string, number] | null = kind === 'x11' ? (srcAddr ?? ['', 0]) : null;
    const info = yield* this.callOp<ChannelHandleInfo>(
      'openChannel',
      {
        kind,
        window: options.windowSize ?? this.defaultWindowSize,
        maxPacket: options.maxPacketSize ?? this.defaultMaxPacketSize,
        dest: origin ? undefined : (destAddr ?? undefined),
        src: !origin && destAddr ? (srcAddr ?? ['', 0]) : undefined,
        origin: origin ?? undefined,
      },
      options.timeout === undefined ? this.channelTimeout : options.timeout,
    );
    return new Channel(this, info, kind, destAddr, origin);
  }

  /** An SFTP session on this transport (Paramiko's open_sftp_client). */
  openSftpClient(): SFTPClient {
    return SFTPClient.fromTransport(this);
  }

  // ---- misc ----

  /**
   * Sends keepalives after `interval` seconds without traffic; 0 turns them off. Beyond
   * Paramiko, `countMax` unanswered keepalives in a row (3 by default, as OpenSSH's
   * ServerAliveCountMax; 0 never) close the transport: a dead peer is detected.
   */
  setKeepalive(interval: number, options: { countMax?: number } = {}): void {
    runSync(this.setKeepaliveOp(interval, options));
  }

  /** @internal setKeepalive as an op (SSHClient's sshConfig applies ServerAliveInterval with it). */
  *setKeepaliveOp(interval: number, options: { countMax?: number } = {}): Op<void> {
    yield* this.callOp('setKeepalive', { interval, countMax: options.countMax ?? 3 });
  }

  /** SSH_MSG_IGNORE with `byteCount` bytes (10-41 random count when omitted, as Paramiko). */
  sendIgnore(byteCount?: number | null): void {
    this.call('sendIgnore', { bytes: byteCount ?? 10 + Math.floor(Math.random() * 32) });
  }

  /** Rekeys now and waits until the new keys are in use. */
  renegotiateKeys(): void {
    this.call('renegotiate', {}, this.handshakeTimeout);
  }

  /** The promise twin of renegotiateKeys. */
  renegotiateKeysAsync(): Promise<void> {
    return runAsync(this.callOp<void>('renegotiate', {}, this.handshakeTimeout));
  }

  /** A global request: the reply data (success), an empty Buffer when not waiting, or null if refused. */
  globalRequest(kind: string, data: Buffer | null = null, wait = true): Buffer | null {
    return runSync(this.globalRequestOp(kind, data, wait));
  }

  /** The promise twin of globalRequest. */
  globalRequestAsync(kind: string, data: Buffer | null = null, wait = true): Promise<Buffer | null> {
    return runAsync(this.globalRequestOp(kind, data, wait));
  }

  private *globalRequestOp(kind: string, data: Buffer | null, wait: boolean): Op<Buffer | null> {
    const r = yield* this.callOp<{ ok: boolean; data: Buffer | null }>('globalRequest', { name: kind, wantReply: wait, data }, this.channelTimeout);
    return r.ok ? (r.data ? toBuffer(r.data) as Buffer : Buffer.alloc(0)) : null;
  }

  close(): void {
    runSync(this.closeOp());
  }

  /** The promise twin of close. */
  closeAsync(): Promise<void> {
    return runAsync(this.closeOp());
  }

  /** @internal the body of the method and of its twin, for the composite calls of SSHClient. */
  *closeOp(): Op<void> {
    if (this.id === null || this.closedByUser) return;
    this.closedByUser = true;
    serverTransports.delete(this.serverKey_);
    handlingTransports.delete(this.id);
    try {
      yield* request('transport', 'close', { id: this.id }, 10);
    } finally {
      this.pump?.finish();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Names of the algorithms this library supports, by kind. */
  static supportedAlgorithms(): Record<string, string[]> {
    return {
      kex: supported('kex'),
      keys: supported('hostKeys'),
      ciphers: supported('ciphers'),
      macs: supported('macs'),
      compression: supported('compression'),
    };
  }
}
