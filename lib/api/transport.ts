import { AuthenticationException, BadAuthenticationType, NotImplementedError, SSHException } from '../errors';
import { getBridge, toBuffer } from '../bridge';
import { AgentKey, agentSocketOf } from '../agent/agent-key';
import { PKey } from '../keys';
import type { DisabledAlgorithms } from '../transport/algorithms';
import { defaultPreferences, supported } from '../transport/algorithms';
import type { AuthOutcome, InteractiveHandler } from '../transport/auth-client';
import { paramikoAuthResult } from '../transport/auth-client';
import { DEFAULT_MAX_PACKET_SIZE, DEFAULT_WINDOW_SIZE } from '../transport/channel';
import type { Negotiated } from '../transport/session';
import type { ChannelHandleInfo } from '../worker/ssh/channel';
import { Channel } from './channel';
import { SecurityOptions } from './security-options';
import { ProxyCommand } from './proxy';
import { Socket } from './socket';

/** What the worker reports about a connection. */
interface TransportInfo {
  id?: number;
  active: boolean;
  authenticated?: boolean;
  username?: string | null;
  banner?: string | null;
  remoteVersion?: string | null;
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
}

/** Handlers of keyboard-interactive prompts, by transport id (the worker calls back). */
const interactiveHandlers = new Map<number, InteractiveHandler>();
let interactiveRegistered = false;
function registerInteractive(): void {
  if (interactiveRegistered) return;
  interactiveRegistered = true;
  getBridge().onCallback('interactive', (p: { id: number; title: string; instructions: string; prompts: Array<[string, boolean]> }) => {
    const h = interactiveHandlers.get(p.id);
    if (!h) throw new AuthenticationException('no keyboard-interactive handler');
    return h(p.title, p.instructions, p.prompts);
  });
}

function parseSock(sock: string | [string, number]): [string, number] {
  if (Array.isArray(sock)) return [sock[0], Number(sock[1])];
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(sock);
  if (!m) throw new TypeError(`cannot read ${JSON.stringify(sock)} as "host:port"`);
  return [m[1], m[2] ? Number(m[2]) : 22];
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
  private readonly securityOptions: SecurityOptions;
  private compress = false;
  private info: TransportInfo = { active: false };
  private serverKey: PKey | null = null;
  private closedByUser = false;

  constructor(sock: string | [string, number] | Socket | Channel | ProxyCommand, options: TransportOptions = {}) {
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
    } else {
      throw new NotImplementedError('Transport over a socket-like object other than a Socket, Channel or ProxyCommand');
    }
    this.defaultWindowSize = options.defaultWindowSize ?? DEFAULT_WINDOW_SIZE;
    this.defaultMaxPacketSize = options.defaultMaxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    this.disabledAlgorithms = options.disabledAlgorithms ?? {};
    this.securityOptions = new SecurityOptions(defaultPreferences(), () => this.id !== null);
  }

  private need(): number {
    if (this.id === null) throw new SSHException('No existing session');
    return this.id;
  }

  private call<T>(method: string, args: Record<string, unknown> = {}, timeout: number | null = null): T {
    return getBridge().call<T>('transport', method, { id: this.need(), ...args }, timeout);
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
    if (this.id !== null) throw new SSHException('the transport was already started');
    const prefs = this.securityOptions.preferences();
    const handshake = this.handshakeTimeout;
    const info = getBridge().call<TransportInfo & { id: number }>(
      'transport',
      'connect',
      {
        host: this.host,
        port: this.port,
        via: this.via ?? undefined,
        proxyCommand: this.proxyCommand ?? undefined,
        socketId: this.socketId ?? undefined,
        timeout: options.timeout ?? null,
        handshakeTimeout: handshake,
        bannerTimeout: this.bannerTimeout,
        preferences: prefs,
        disabledAlgorithms: this.disabledAlgorithms,
        compress: this.compress,
      },
      options.timeout === undefined || options.timeout === null ? null : options.timeout + handshake,
    );
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
  connect(options: { hostkey?: PKey | null; username?: string; password?: string | null; pkey?: PKey | null } = {}): void {
    if (this.id === null) this.startClient();
    const key = this.getRemoteServerKey();
    if (options.hostkey && (options.hostkey.getName() !== key.getName() || !options.hostkey.equals(key))) {
      throw new SSHException('Bad host key from server');
    }
    const username = options.username ?? '';
    if (options.pkey) this.authPublickey(username, options.pkey);
    else if (options.password !== undefined && options.password !== null) this.authPassword(username, options.password);
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

  getpeername(): [string, number] {
    return this.info.peer ?? ['unknown', 0];
  }

  // ---- authentication ----

  private auth(method: string, args: Record<string, unknown>): AuthOutcome {
    return this.call<AuthOutcome>(method, args, this.authTimeout);
  }

  /** Returns the server's allowed methods: Paramiko raises BadAuthenticationType carrying them. */
  authNone(username: string): string[] {
    return paramikoAuthResult('none', this.auth('authNone', { username }));
  }

  /**
   * Password auth; [] on success, the next methods on partial success. With `fallback`, a
   * server that allows only keyboard-interactive gets the password as the answer to its prompt.
   */
  authPassword(username: string, password: string, options: { fallback?: boolean } | boolean = true): string[] {
    const fallback = typeof options === 'boolean' ? options : options.fallback !== false;
    const o = this.auth('authPassword', { username, password });
    try {
      return paramikoAuthResult('password', o);
    } catch (e) {
      if (!(e instanceof BadAuthenticationType) || !fallback || !e.allowedTypes.includes('keyboard-interactive')) throw e;
      return this.authInteractive(username, (_t, _i, prompts) => {
        if (prompts.length > 1) throw new SSHException('Fallback authentication failed.');
        return prompts.length ? [password] : [];
      });
    }
  }

  /**
   * Publickey auth with a private key (and its certificate, if loaded), or with an AgentKey:
   * then the worker has the agent sign, with no thread hop per signature.
   */
  authPublickey(username: string, key: PKey): string[] {
    if (key instanceof AgentKey) {
      const o = this.auth('authAgent', {
        username,
        blob: key.blob,
        cert: key.publicBlob ? key.publicBlob.keyBlob : null,
        socketPath: agentSocketOf(key),
        disabled: this.disabledAlgorithms.pubkeys ?? [],
      });
      return paramikoAuthResult('publickey', o);
    }
    if (!key.canSign()) throw new SSHException('authPublickey needs a key that can sign (a private key)');
    const o = this.auth('authPublickey', {
      username,
      key: key.privateKeyObject!.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: key.publicBlob ? key.publicBlob.keyBlob : null,
      disabled: this.disabledAlgorithms.pubkeys ?? [],
    });
    return paramikoAuthResult('publickey', o);
  }

  /** Keyboard-interactive: `handler(title, instructions, [[prompt, echo], ...])` returns answers. */
  authInteractive(username: string, handler: InteractiveHandler, submethods = ''): string[] {
    registerInteractive();
    const id = this.need();
    interactiveHandlers.set(id, handler);
    try {
      return paramikoAuthResult('keyboard-interactive', this.auth('authInteractive', { username, submethods }));
    } finally {
      interactiveHandlers.delete(id);
    }
  }

  // ---- channels ----

  openSession(options: { windowSize?: number; maxPacketSize?: number; timeout?: number | null } = {}): Channel {
    return this.openChannel('session', null, null, options);
  }

  /** Opens a channel; the default timeout is Paramiko's 3600 s. ChannelException if refused. */
  openChannel(
    kind: string,
    destAddr: [string, number] | null = null,
    srcAddr: [string, number] | null = null,
    options: { windowSize?: number; maxPacketSize?: number; timeout?: number | null } = {},
  ): Channel {
    if (!this.isAuthenticated() && kind === 'session' && !this.info.active) throw new SSHException('SSH session not active');
    const info = this.call<ChannelHandleInfo>(
      'openChannel',
      {
        kind,
        window: options.windowSize ?? this.defaultWindowSize,
        maxPacket: options.maxPacketSize ?? this.defaultMaxPacketSize,
        dest: destAddr ?? undefined,
        src: destAddr ? (srcAddr ?? ['', 0]) : undefined,
      },
      options.timeout === undefined ? this.channelTimeout : options.timeout,
    );
    return new Channel(this, info, kind, destAddr);
  }

  openSftpClient(): never {
    throw new NotImplementedError('SFTP (issue 5)');
  }

  // ---- misc ----

  /**
   * Sends keepalives after `interval` seconds without traffic; 0 turns them off. Beyond
   * Paramiko, `countMax` unanswered keepalives in a row (3 by default, as OpenSSH's
   * ServerAliveCountMax; 0 never) close the transport: a dead peer is detected.
   */
  setKeepalive(interval: number, options: { countMax?: number } = {}): void {
    this.call('setKeepalive', { interval, countMax: options.countMax ?? 3 });
  }

  /** SSH_MSG_IGNORE with `byteCount` bytes (10-41 random count when omitted, as Paramiko). */
  sendIgnore(byteCount?: number | null): void {
    this.call('sendIgnore', { bytes: byteCount ?? 10 + Math.floor(Math.random() * 32) });
  }

  /** Rekeys now and waits until the new keys are in use. */
  renegotiateKeys(): void {
    this.call('renegotiate', {}, this.handshakeTimeout);
  }

  /** A global request: the reply data (success), an empty Buffer when not waiting, or null if refused. */
  globalRequest(kind: string, data: Buffer | null = null, wait = true): Buffer | null {
    const r = this.call<{ ok: boolean; data: Buffer | null }>('globalRequest', { name: kind, wantReply: wait, data }, this.channelTimeout);
    return r.ok ? (r.data ? toBuffer(r.data) as Buffer : Buffer.alloc(0)) : null;
  }

  close(): void {
    if (this.id === null || this.closedByUser) return;
    this.closedByUser = true;
    getBridge().call('transport', 'close', { id: this.id }, 10);
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
