import { timingSafeEqual, createHash } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { appendFileSync, statSync } from 'node:fs';
import { debug } from '../../debug';
import { printable } from '../../printable';
import { SSHException } from '../../errors';
import { PKey, parseAuthorizedKeys } from '../../keys';
import type { AuthorizedKey } from '../../keys';
import { applyDisabled, SERVER_SIG_ALGS, serverDefaultPreferences, validatePreferences } from '../../transport/algorithms';
import type { AlgorithmPreferences, DisabledAlgorithms } from '../../transport/algorithms';
import type { AuthDecision, PasswordDecision } from '../../transport/auth-server';
import {
  AUTH_FAILED,
  AUTH_PARTIALLY_SUCCESSFUL,
  AUTH_SUCCESSFUL,
  OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
  OPEN_FAILED_RESOURCE_SHORTAGE,
  OPEN_SUCCEEDED,
} from '../../transport/constants';
import type { IncomingOpen } from '../../transport/connection';
import { moduliChooser } from '../../transport/kex/moduli';
import { listenTcp } from '../services/sockets';
import { WorkerConnection } from '../ssh/connection';
import type { ServerPolicy } from '../ssh/connection';
import type { ChannelCore, ChannelSink } from '../../transport/channel';
import { DEFAULT_MAX_PACKET_SIZE, DEFAULT_WINDOW_SIZE, SFTP_WINDOW_SIZE } from '../../transport/channel';
import type { Message } from '../../wire/message';
import { ServerForwarding } from './forwarding';
import { agentProxyListener } from '../ssh/listeners';
import { SftpServerChannel } from '../sftp/server-channel';
import { SessionChannel } from './session';
import type { SessionSettings } from './session';


/** One account of the embedded server. */
export interface EmbeddedUser {
  password?: string | null;
  /** The password logs in only by changing it (RFC 4252 section 8); the new one replaces it. */
  passwordExpired?: boolean;
  /** authorized_keys text (public key lines, options allowed). */
  authorizedKeys?: string | null;
}

/** The SFTP subsystem's settings (SftpServerCore's). */
export interface EmbeddedSftp {
  root: string;
  readOnly: boolean;
  /** Applied exactly to created files and directories; null: the process umask. */
  umask: number | null;
}

/** The embedded server's settings, as the main thread sends them (see api/ssh-server.ts). */
export interface EmbeddedOptions {
  host: string;
  port: number;
  backlog: number;
  /** Private host keys, OpenSSH format. */
  hostKeys: string[];
  users: Record<string, EmbeddedUser>;
  /** Methods a login must pass in turn (OpenSSH's AuthenticationMethods), e.g. ['publickey', 'password']. */
  authMethods: string[] | null;
  /** Offer keyboard-interactive (a "Password:" prompt) to users with a password. */
  keyboardInteractive: boolean;
  banner: string | null;
  shell: string;
  cwd: string | null;
  env: Record<string, string>;
  acceptEnv: string[];
  allowPty: boolean;
  allowExec: boolean;
  /** exec goes to the main thread's callback (kind 'embedded-exec') instead of the shell. */
  execCallback: boolean;
  /** The 'sftp' subsystem, jailed in `root` (an absolute path); null: refused. */
  sftp: EmbeddedSftp | null;
  /** scp -t / -f exec requests served in the sftp jail (needs `sftp`). */
  scp: boolean;
  /** direct-tcpip channels and tcpip-forward requests (sshd's AllowTcpForwarding, GatewayPorts no). */
  forwarding: boolean;
  /** auth-agent-req@openssh.com accepted: sessions get SSH_AUTH_SOCK (sshd's AllowAgentForwarding). */
  agentForwarding: boolean;
  maxAuthTries: number;
  loginGraceTime: number | null;
  /** sshd's RekeyLimit: bytes either way, and seconds, after which keys are exchanged anew. */
  rekeyBytes?: number;
  rekeySeconds?: number;
  /** Sessions one connection may hold open (OpenSSH's MaxSessions). */
  maxSessions: number;
  /** Connections at once (further ones are refused at once). */
  maxConnections: number;
  preferences?: Partial<AlgorithmPreferences>;
  disabledAlgorithms?: DisabledAlgorithms;
  compress: boolean;
  moduli: string | null;
  localVersion?: string;
  logFile: string | null;
}

/** Answers the password without telling its length or where it differs by timing. */
function samePassword(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * What the server offers any user: publickey when some user has keys, password (and
 * keyboard-interactive when enabled) when some user has a password. A table where nobody can
 * log in still names publickey and password, as a server with nothing configured would.
 */
function offeredMethods(options: EmbeddedOptions, anyKeys: boolean): string[] {
  const anyPassword = Object.values(options.users).some((u) => u.password !== undefined && u.password !== null);
  if (!anyKeys && !anyPassword) return ['publickey', 'password'];
  const out: string[] = [];
  if (anyKeys) out.push('publickey');
  if (anyPassword) out.push(...(options.keyboardInteractive ? ['password', 'keyboard-interactive'] : ['password']));
  return out;
}

/**
 * Round trips at or above this (ms) make an SFTP session's path far enough for a wider window
 * (see widenWhenFar). 2 MiB a round trip of 5 ms is ~420 MB/s, a loopback upload's rate here.
 */
const FAR_ROUND_TRIP_MS = 5;
/** Round trips measured before a path is taken as far: each under FAR_ROUND_TRIP_MS says it is near. */
const FAR_PROBES = 3;

/**
 * An upload through a far path needs more window than a shell: the 2 MiB a session opens with
 * held OpenSSH's sftp, 20 ms away, to 43 MB/s (sshd 64; 102-130 with 16 MiB). On a near path
 * the wide window costs instead: OpenSSH's client reads from sftp as far ahead as the window
 * lets it, and with megabytes waiting in its channel buffer it reallocates and copies that
 * buffer for each packet it sends (a put to our server on loopback: 40-490 MB/s, most runs near
 * 100, its ssh at a full core; 340-580 with 2 MiB). So the window grows only once three round
 * trips (keepalive@openssh.com requests, which every client answers) took FAR_ROUND_TRIP_MS or
 * more; one quicker says the path is near, and the window stays.
 */
async function widenWhenFar(ch: ChannelCore, roundTrip: () => Promise<number>, log: (l: string) => void): Promise<void> {
  try {
    let quickest = Infinity;
    for (let i = 0; i < FAR_PROBES; i++) {
      quickest = Math.min(quickest, await roundTrip());
      if (quickest < FAR_ROUND_TRIP_MS || ch.state !== 'open') return;
    }
    ch.growWindow(SFTP_WINDOW_SIZE);
    log(`round trips of ${quickest.toFixed(1)} ms or more: window widened to ${SFTP_WINDOW_SIZE >> 20} MiB`);
  } catch {
    // The connection ended while measuring: nothing to widen.
  }
}

/**
 * The SSH server of `SSHServer`: listens, authenticates from its user table, and runs
 * sessions as local processes, all inside the worker (nothing waits for the main thread).
 */
export class EmbeddedServer {
  readonly connections = new Set<WorkerConnection>();
  private readonly logLines: string[] = [];
  /** Lines logged since start (the memory keeps the last 1000). */
  private logCount = 0;
  private readonly hostKeys: PKey[];
  private readonly prefs: AlgorithmPreferences;
  private readonly keysByUser = new Map<string, AuthorizedKey[]>();
  /**
   * The methods every USERAUTH_FAILURE lists, whoever asks: as sshd, the same for every user
   * name, so the list does not tell a client which users exist or how each logs in.
   */
  readonly methods: readonly string[];
  private readonly chooseGroup: ((min: number, n: number, max: number) => { p: bigint; g: bigint }) | undefined;
  private closed = false;
  stats = { accepted: 0, authenticated: 0, refused: 0 };

  private constructor(
    readonly options: EmbeddedOptions,
    private readonly server: Server,
    readonly address: [string, number],
    private readonly execCallback: ((command: string, username: string, env: Record<string, string>) => Promise<{ stdout: Buffer; stderr: Buffer; status: number }>) | null,
  ) {
    this.hostKeys = options.hostKeys.map((k) => PKey.fromPrivateKey(k));
    let prefs = { ...serverDefaultPreferences(options.compress), ...(options.preferences ?? {}) };
    prefs = applyDisabled(prefs, options.disabledAlgorithms);
    validatePreferences(prefs);
    this.prefs = prefs;
    this.chooseGroup = moduliChooser(options.moduli);
    for (const [name, user] of Object.entries(options.users)) {
      const { keys, errors } = parseAuthorizedKeys(user.authorizedKeys ?? '');
      for (const e of errors) this.log(`authorized keys of ${name}: ${e.message}`);
      this.keysByUser.set(name, keys);
    }
    this.methods = offeredMethods(options, [...this.keysByUser.values()].some((keys) => keys.length > 0));
    server.on('connection', (s: Socket) => this.onConnection(s));
  }

  static async start(
    options: EmbeddedOptions,
    execCallback: EmbeddedServer['execCallback'],
  ): Promise<EmbeddedServer> {
    if (!options.hostKeys.length) throw new SSHException('the server needs at least one host key');
    if (options.sftp) {
      const root = options.sftp.root;
      let isDir = false;
      try {
        isDir = statSync(root).isDirectory();
      } catch (e) {
        throw new SSHException(`the SFTP root ${root}: ${(e as Error).message}`);
      }
      if (!isDir) throw new SSHException(`the SFTP root ${root} is not a directory`);
    }
    const { server, address } = await listenTcp(options.host, options.port, options.backlog);
    try {
      return new EmbeddedServer(options, server, address, execCallback);
    } catch (e) {
      server.close();
      throw e;
    }
  }

  /** One line of the server's log; what a client chose (user names, channel types, paths) is escaped here, so it cannot forge lines or send terminal escapes. */
  log(line: string): void {
    const text = `${new Date().toISOString()} ${printable(line)}`;
    this.logLines.push(text);
    this.logCount++;
    if (this.logLines.length > 1000) this.logLines.splice(0, this.logLines.length - 1000);
    debug(`server ${this.address[1]}: ${line}`);
    if (this.options.logFile) {
      try {
        appendFileSync(this.options.logFile, text + '\n');
      } catch {
        // a log that cannot be written must not stop the server
      }
    }
  }

  /** Lines numbered `since` and later that are still kept, and the number of the next line. */
  recentLog(since = 0): { lines: string[]; next: number } {
    const first = this.logCount - this.logLines.length;
    return { lines: this.logLines.slice(Math.max(0, since - first)), next: this.logCount };
  }

  private onConnection(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.closed || this.connections.size >= this.options.maxConnections) {
      this.stats.refused++;
      this.log(`${peer}: refused (${this.closed ? 'closing' : `${this.connections.size} connections already`})`);
      socket.destroy();
      return;
    }
    this.stats.accepted++;
    socket.on('error', () => undefined);
    const o = this.options;
    let conn: WorkerConnection;
    const policy = new EmbeddedPolicy(this, peer, () => conn);
    try {
      conn = new WorkerConnection(
        socket,
        {
          role: 'server',
          preferences: this.prefs,
          hostKeys: this.hostKeys,
          serverSigAlgs: SERVER_SIG_ALGS,
          chooseGroup: this.chooseGroup,
          localVersion: o.localVersion,
          rekeyBytes: o.rekeyBytes,
          rekeySeconds: o.rekeySeconds,
        },
        {},
        { policy, maxAuthTries: o.maxAuthTries, loginGraceTime: o.loginGraceTime },
      );
    } catch (e) {
      this.log(`${peer}: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    this.connections.add(conn);
    conn.session.start();
    // A client that never finishes the handshake is dropped like one that never authenticates.
    conn.waitKex(o.loginGraceTime).catch(() => undefined);
  }

  userKeys(username: string): AuthorizedKey[] {
    return this.keysByUser.get(username) ?? [];
  }

  sessionSettings(username: string, log: (l: string) => void, agent: SessionSettings['agent'], roundTrip: () => Promise<number>): SessionSettings {
    const o = this.options;
    const exec = this.execCallback;
    return {
      username,
      baseEnv: { ...o.env, USER: username, LOGNAME: username },
      shell: o.shell,
      cwd: o.cwd ?? undefined,
      allowPty: o.allowPty,
      acceptEnv: o.acceptEnv,
      allowExec: o.allowExec,
      execHandler: exec ? (command, env) => exec(command, username, env) : null,
      subsystems: this.subsystems(username, log, roundTrip),
      scp: o.scp && o.sftp ? { root: o.sftp.root, readOnly: o.sftp.readOnly, umask: o.sftp.umask ?? process.umask(), log } : null,
      agent: o.agentForwarding ? agent : null,
      log,
    };
  }

  /** The subsystems a session of `username` may start: 'sftp' unless disabled. */
  private subsystems(username: string, log: (l: string) => void, roundTrip: () => Promise<number>): Map<string, (ch: ChannelCore) => ChannelSink> {
    const map = new Map<string, (ch: ChannelCore) => ChannelSink>();
    const sftp = this.options.sftp;
    if (sftp) {
      map.set('sftp', (ch) => {
        const sftpLog = (l: string) => log(`${username}: sftp: ${l}`);
        try {
          const sink = new SftpServerChannel(ch, { root: sftp.root, readOnly: sftp.readOnly, umask: sftp.umask ?? undefined, log: sftpLog });
          void widenWhenFar(ch, roundTrip, sftpLog);
          return sink;
        } catch (e) {
          // The root went away since start: the request is refused, the session stays usable.
          sftpLog(`refused: ${(e as Error).message}`);
          throw e;
        }
      });
    }
    return map;
  }

  /** Stops listening and ends every connection (DISCONNECT, then the sockets close). */
  close(): Promise<void> {
    this.closed = true;
    for (const c of this.connections) c.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // Sockets that do not close after DISCONNECT are destroyed by their connection's timer.
    });
  }
}

/** The decisions of one embedded-server connection. */
class EmbeddedPolicy implements ServerPolicy {
  private passed = new Set<string>();
  private sessions = 0;
  /** The client sent no-more-sessions@openssh.com: session channels are refused from now on. */
  private noMoreSessions = false;
  private username = '';

  /** The agent proxy of this connection once a session asked for agent forwarding. */
  private agentPath: string | null = null;
  private agentSetup: Promise<boolean> | null = null;
  private readonly agent = {
    request: (): Promise<boolean> =>
      (this.agentSetup ??= agentProxyListener(this.conn()).then(
        ({ path, stop }) => {
          this.conn().addForwarder(stop);
          this.agentPath = path;
          this.log(`${this.username}: agent forwarding on ${path}`);
          return true;
        },
        (e: Error) => {
          this.log(`${this.username}: agent forwarding failed: ${e.message}`);
          this.agentSetup = null;
          return false;
        },
      )),
    path: (): string | null => this.agentPath,
  };

  /** TCP forwarding (the `forwarding` option); null: direct-tcpip and tcpip-forward refused. */
  private readonly forwarding: ServerForwarding | null;

  constructor(
    private readonly server: EmbeddedServer,
    private readonly peer: string,
    private readonly conn: () => WorkerConnection,
  ) {
    this.forwarding = server.options.forwarding
      ? new ServerForwarding({
          openToClient: (kind, fill) => this.conn().conn.open(kind, fill, DEFAULT_WINDOW_SIZE, DEFAULT_MAX_PACKET_SIZE),
          log: (line) => this.log(`${this.username}: ${line}`),
        })
      : null;
  }

  private log(line: string): void {
    this.server.log(`${this.peer}: ${line}`);
  }

  allowedAuths(_username: string): string[] {
    const chain = this.server.options.authMethods;
    const methods = [...this.server.methods];
    if (!chain) return methods;
    const next = chain.find((m) => !this.passed.has(m));
    if (!next) return methods;
    // keyboard-interactive stands in for password in a chain, as in OpenSSH's PAM setups.
    return next === 'password' ? methods.filter((m) => m === 'password' || m === 'keyboard-interactive') : [next];
  }

  /** Success, or partial success while the AuthenticationMethods chain is not complete. */
  private succeed(username: string, method: string): number {
    const chain = this.server.options.authMethods;
    this.passed.add(method === 'keyboard-interactive' ? 'password' : method);
    if (chain && chain.some((m) => !this.passed.has(m))) {
      this.log(`${username}: ${method} accepted, more needed`);
      return AUTH_PARTIALLY_SUCCESSFUL;
    }
    this.username = username;
    this.server.stats.authenticated++;
    this.log(`${username}: logged in (${method})`);
    return AUTH_SUCCESSFUL;
  }

  private fail(username: string, method: string): number {
    this.log(`${username}: ${method} refused`);
    return AUTH_FAILED;
  }

  authNone(): number {
    return AUTH_FAILED;
  }

  authPassword(username: string, password: string): PasswordDecision {
    const u = this.server.options.users[username];
    const expected = u?.password;
    if (expected === undefined || expected === null || !samePassword(password, expected)) return this.fail(username, 'password');
    if (u.passwordExpired) {
      this.log(`${username}: password expired, a new one asked for`);
      return { passwordChange: { prompt: 'Your password has expired: choose a new one', lang: '' } };
    }
    return this.succeed(username, 'password');
  }

  /** An expired password's replacement: any other non-empty one, kept for the server's life. */
  authPasswordChange(username: string, oldPassword: string, newPassword: string): PasswordDecision {
    const u = this.server.options.users[username];
    if (!u?.passwordExpired || u.password === undefined || u.password === null || !samePassword(oldPassword, u.password)) {
      return this.fail(username, 'password change');
    }
    if (!newPassword || samePassword(newPassword, oldPassword)) {
      this.log(`${username}: new password refused (empty or the old one)`);
      return { passwordChange: { prompt: 'The new password must not be empty or the old one', lang: '' } };
    }
    u.password = newPassword;
    u.passwordExpired = false;
    this.log(`${username}: password changed`);
    return this.succeed(username, 'password');
  }

  authPublickey(username: string, key: PKey, signed: boolean): number {
    const ok = this.server.userKeys(username).some((k) => k.key.equals(key));
    if (!signed) return ok ? AUTH_SUCCESSFUL : AUTH_FAILED;
    if (!ok) return this.fail(username, 'publickey');
    return this.succeed(username, 'publickey');
  }

  private interactiveUser = '';

  authInteractive(username: string): AuthDecision {
    const u = this.server.options.users[username];
    // An expired password changes only through the password method (its change request).
    if (!this.server.options.keyboardInteractive || !u || u.password === undefined || u.password === null || u.passwordExpired) return AUTH_FAILED;
    this.interactiveUser = username;
    return { name: '', instructions: '', prompts: [['Password: ', false]] };
  }

  authInteractiveResponse(responses: string[]): AuthDecision {
    const username = this.interactiveUser;
    const expected = this.server.options.users[username]?.password;
    if (responses.length !== 1 || expected === undefined || expected === null || !samePassword(responses[0], expected)) {
      return this.fail(username, 'keyboard-interactive');
    }
    return this.succeed(username, 'keyboard-interactive');
  }

  banner(): string | null {
    return this.server.options.banner;
  }

  channelOpen(open: IncomingOpen): number | Promise<number> {
    if (open.kind === 'direct-tcpip' && this.forwarding) return this.forwarding.directTcpip(open);
    if (open.kind === 'direct-streamlocal@openssh.com' && this.forwarding) return this.forwarding.directStreamlocal(open);
    if (open.kind !== 'session') {
      this.log(`${this.username}: ${open.kind} channel refused`);
      open.reason = `${open.kind} channels are not served here`;
      return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
    }
    if (this.noMoreSessions) {
      // OpenSSH's ssh says so once its session is open: another would come from a hijacker.
      this.log(`${this.username}: session refused (the client sent no-more-sessions@openssh.com)`);
      open.reason = 'no more sessions: this connection sent no-more-sessions@openssh.com';
      return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
    }
    if (this.sessions >= this.server.options.maxSessions) {
      this.log(`${this.username}: session refused (${this.sessions} open, the limit)`);
      open.reason = `too many sessions on this connection (${this.sessions} open, the server's maxSessions)`;
      return OPEN_FAILED_RESOURCE_SHORTAGE;
    }
    this.sessions++;
    const settings = this.server.sessionSettings(this.username, (l) => this.log(l), this.agent, this.roundTrip);
    const session = new SessionChannel(open.channel, settings);
    const sink = open.channel.sink!;
    // Count the session down when it ends.
    const closed = sink.closed.bind(session);
    session.closed = (e) => {
      this.sessions--;
      closed(e);
    };
    return OPEN_SUCCEEDED;
  }

  /** One round trip to the client, in ms: a keepalive@openssh.com request and its answer (a refusal is one). */
  private readonly roundTrip = async (): Promise<number> => {
    const start = performance.now();
    await this.conn().conn.globalRequest('keepalive@openssh.com', true);
    return performance.now() - start;
  };

  globalRequest(name: string, _wantReply: boolean, msg: Message): boolean | Promise<boolean | Buffer> {
    const forward = this.forwarding?.globalRequest(name, msg);
    if (forward) return forward;
    if (name === 'no-more-sessions@openssh.com') {
      this.noMoreSessions = true;
      return true;
    }
    // keepalive@openssh.com and friends: a refusal is an answer, which is all a keepalive needs.
    if (name !== 'keepalive@openssh.com') this.log(`global request ${name} refused`);
    return false;
  }

  channelRequest(): boolean {
    return false; // sessions answer their own requests
  }

  /** The channels are ours: the connection does not queue them for Transport.accept. */
  readonly ownsChannels = true;

  closed(error: Error): void {
    this.forwarding?.close();
    const conn = this.conn();
    this.server.connections.delete(conn);
    this.log(`${this.username || 'connection'} closed: ${error.message}`);
  }
}
