import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { AuthenticationException, BadHostKeyException, NoValidConnectionsError, ProcessError, SocketTimeout, SSHException } from '../errors';
import { Agent } from '../agent/agent';
import { HostKeys } from '../hostkeys';
import { PKey, isCertType } from '../keys';
import type { PasswordChangeHandler } from '../transport/auth-client';
import { keyTypeOfAlgorithm } from '../transport/algorithms';
import { Channel } from './channel';
import { ProxyCommand } from './proxy';
import { Socket } from './socket';
import type { ChannelFile, ChannelStderrFile, ChannelStdinFile } from './channel-file';
import { MissingHostKeyPolicy, RejectPolicy } from './policy';
import { answerWithPassword, Transport, unsupportedSock, type TransportOptions } from './transport';
import type { TerminalModes } from './terminal-modes';
import { isSocketLike, type SocketLike } from './sock-pump';
import { acceptNewHostKey, algorithmsFromOptions, rotateKnownHostKeys, configOf, configuredHost, optionsFromConfig, parseJumps, proxyOf, withCertificate, type ConfiguredHost, type KnownHostsConfig } from './client-config';
import type { SSHConfig } from '../config';
import type { PortForwarder } from './transport';
import { SFTPClient } from './sftp-client';
import { runAsync, runSync, until, type Op } from '../bridge';
import { debug } from '../debug';

/**
 * The Transport options connect passes on as they are (see TransportOptions): disabledAlgorithms,
 * and beyond Paramiko (AsyncSSH's) rekeyBytes, rekeySeconds, family, localAddr, tcpKeepalive
 * (under sshConfig on unless TCPKeepAlive no, as ssh).
 */
type PassedTransportOptions = Pick<TransportOptions, 'disabledAlgorithms' | 'rekeyBytes' | 'rekeySeconds' | 'family' | 'localAddr' | 'tcpKeepalive'>;

export interface ConnectOptions extends PassedTransportOptions {
  port?: number;
  username?: string;
  password?: string | null;
  pkey?: PKey | null;
  keyFilename?: string | string[] | null;
  /** TCP connect timeout, seconds. */
  timeout?: number | null;
  /** Try the keys of the SSH agent at SSH_AUTH_SOCK after the key files (default true). */
  allowAgent?: boolean;
  /** Beyond Paramiko (AsyncSSH's agent_path): the agent's socket, instead of SSH_AUTH_SOCK (it wins over an ssh_config's IdentityAgent). */
  agentPath?: string | null;
  /**
   * AsyncSSH's agent_forwarding (`ssh -A`): every execCommand, run and invokeShell session asks
   * the server to forward the agent (agentPath's, else SSH_AUTH_SOCK's), as ssh asks (a refusal
   * is only logged). It wins over an ssh_config's ForwardAgent. Default false.
   */
  agentForwarding?: boolean;
  lookForKeys?: boolean;
  compress?: boolean;
  /** A Socket, a Channel of another transport (jump host) or a ProxyCommand to run over. */
  sock?: Socket | Channel | ProxyCommand | SocketLike | null;
  bannerTimeout?: number | null;
  authTimeout?: number | null;
  channelTimeout?: number | null;
  /** Decrypts key files; defaults to `password`, as Paramiko. */
  passphrase?: string | null;
  /**
   * Beyond Paramiko (AsyncSSH's password_change_requested): when the server finds `password`
   * expired and asks for a new one, `passwordChange(prompt, lang)` answers `[oldPassword,
   * newPassword]` (null declines). Without it that request fails the login with an
   * AuthenticationException quoting the server's prompt.
   */
  passwordChange?: PasswordChangeHandler | null;
  /**
   * OpenSSH's UpdateHostKeys: the host keys the server proves after login (sshd announces them
   * all) are added to this client's host keys, and saved to the file loadHostKeys read, when the
   * proof arrives, at the latest at close (an ssh_config's UpdateHostKeys yes appends them to its
   * UserKnownHostsFile).
   */
  updateHostKeys?: boolean;
  /**
   * AsyncSSH's kex_algs, server_host_key_algs, encryption_algs, mac_algs, compression_algs: a
   * list replaces our defaults; a string takes OpenSSH's forms (`'+aes128-cbc'` adds a legacy
   * cipher an old device needs, `'-ssh-rsa'` removes, `'^name'` puts first). They win over an
   * ssh_config's lists.
   */
  kexAlgs?: string | string[] | null;
  serverHostKeyAlgs?: string | string[] | null;
  encryptionAlgs?: string | string[] | null;
  macAlgs?: string | string[] | null;
  compressionAlgs?: string | string[] | null;
  /**
   * Beyond Paramiko (whose connect reads no config): take what OpenSSH's `ssh hostname` would
   * from an ssh_config (AsyncSSH's `config`): HostName, Port, User, IdentityFile,
   * IdentitiesOnly, ConnectTimeout, Compression, HostKeyAlias (the name known_hosts is searched
   * under), ServerAliveInterval and ServerAliveCountMax (setKeepalive), and ProxyJump (connections through each jump host, themselves configured from the
   * file and closed with this client) or ProxyCommand; Ciphers, MACs, KexAlgorithms,
   * HostKeyAlgorithms (OpenSSH's +/-/^ forms), CertificateFile, SendEnv/SetEnv,
   * PubkeyAuthentication/PreferredAuthentications; the keys of UserKnownHostsFile and
   * GlobalKnownHostsFile, and StrictHostKeyChecking (accept-new/no record a new host's key in the
   * first UserKnownHostsFile) unless setMissingHostKeyPolicy chose a policy; IdentityAgent and
   * ForwardAgent, PasswordAuthentication/KbdInteractiveAuthentication, RequestTTY, RemoteCommand
   * (invokeShell runs it), AddressFamily, BindAddress, TCPKeepAlive, RekeyLimit and
   * PubkeyAcceptedAlgorithms, UpdateHostKeys, ConnectionAttempts. docs/api.md has the details.
   * `true` reads ~/.ssh/config (nothing when it is missing), a string names a file, or pass an
   * SSHConfig. The options given here win over the file's, as ssh's command line does.
   */
  sshConfig?: boolean | string | SSHConfig | null;
}

/** What an ssh_config asks of each session channel: SendEnv/SetEnv, ForwardAgent, RequestTTY, RemoteCommand. */
type SessionConfig = Pick<ConfiguredHost, 'environment' | 'forwardAgent' | 'requestTty' | 'remoteCommand'>;
const NO_SESSION_CONFIG: SessionConfig = { environment: {}, forwardAgent: null, requestTty: 'auto', remoteCommand: null };

/** The TCP connection itself failed (refused, unreachable, timed out): what ssh's ConnectionAttempts retries. */
function tcpConnectFailed(e: unknown): boolean {
  return e instanceof NoValidConnectionsError || (e instanceof SocketTimeout && /^connect to /.test(e.message));
}

/** The caller's agentForwarding over the config's ForwardAgent: the login agent (agentPath, else SSH_AUTH_SOCK) or none. */
function withAgentForwarding(session: SessionConfig, o: ConnectOptions): SessionConfig {
  if (o.agentForwarding === undefined) return session;
  const socket = o.agentForwarding ? (o.agentPath ?? process.env.SSH_AUTH_SOCK ?? null) || null : null;
  return { ...session, forwardAgent: socket };
}

/** ProxyJump chains this deep are taken for a loop (a `Host *` ProxyJump that reaches the jump host itself). */
const MAX_JUMP_DEPTH = 8;

/** invokeShell's pty size and type (Paramiko's defaults: vt100, 80x24) and environment. */
export interface ShellOptions {
  term?: string;
  width?: number;
  height?: number;
  widthPixels?: number;
  heightPixels?: number;
  /** Beyond Paramiko (AsyncSSH's term_modes): the pty's modes, e.g. `{ ECHO: 0 }` (see Channel.getPty). */
  termModes?: TerminalModes | null;
  environment?: Record<string, string>;
}

export interface ExecOptions {
  bufsize?: number;
  timeout?: number | null;
  getPty?: boolean;
  environment?: Record<string, string> | null;
}

/** Options of SSHClient.run (AsyncSSH's run). */
export interface RunOptions {
  /** Written to the command's stdin, then EOF (none: EOF at once). */
  input?: string | Buffer | null;
  /** Seconds for the whole run (null: no limit). */
  timeout?: number | null;
  /** Raise ProcessError when the command does not exit 0. */
  check?: boolean;
  /** Variables to set (the server may refuse them silently, as for execCommand). */
  environment?: Record<string, string> | null;
  /** How to decode stdout and stderr (default utf8); null keeps Buffers. */
  encoding?: BufferEncoding | null;
}

/** What SSHClient.run returns (AsyncSSH's SSHCompletedProcess). */
export interface CompletedProcess {
  command: string;
  /** The exit status; -1 when the command died of a signal or sent none. */
  exitStatus: number;
  /** The signal's name (without SIG) when it died of one, else null. */
  exitSignal: string | null;
  stdout: string | Buffer;
  stderr: string | Buffer;
}

/** Key files SSHClient tries from ~/.ssh, in Paramiko's order. */
const DEFAULT_KEY_FILES = ['id_rsa', 'id_dsa', 'id_ecdsa', 'id_ed25519'];

function expandHome(p: string): string {
  return p.startsWith('~/') || p === '~' ? join(homedir(), p.slice(1)) : p;
}

/**
 * connect()'s last authentication error, as Paramiko raises it, with what was tried added to a
 * plain refusal: `Authentication failed. (password refused; the server accepts: publickey,
 * password) Tried for "u": 2 keys, then the password.` Other errors (a bad key file, a
 * passphrase missing) pass as they are.
 */
function explainedAuthFailure(saved: Error, username: string, keysTried: number, passwordTried: boolean): Error {
  if (Object.getPrototypeOf(saved) !== AuthenticationException.prototype || !saved.message.startsWith('Authentication failed.')) return saved;
  const tried = [keysTried ? `${keysTried} key${keysTried === 1 ? '' : 's'}` : '', passwordTried ? 'the password' : ''].filter(Boolean).join(', then ');
  if (!tried) return saved;
  const e = new AuthenticationException(`${saved.message} Tried for ${JSON.stringify(username)}: ${tried}.`);
  return Object.assign(e, { allowedTypes: (saved as { allowedTypes?: string[] }).allowedTypes });
}

/**
 * Paramiko's SSHClient: connect, authenticate in Paramiko's order, run commands. Host keys are
 * checked against known_hosts; unknown hosts go to the missing-host-key policy (RejectPolicy by
 * default).
 */
export class SSHClient {
  private systemHostKeys = new HostKeys();
  private hostKeys = new HostKeys();
  hostKeysFilename: string | null = null;
  private policy: MissingHostKeyPolicy = new RejectPolicy();
  /** Whether the caller chose the policy (an ssh_config's StrictHostKeyChecking yields to it). */
  private policyChosen = false;
  /** What the ssh_config the connection came from asks of every session channel (none without one). */
  private sessionConfig: SessionConfig = NO_SESSION_CONFIG;
  private transport: Transport | null = null;
  /** With updateHostKeys: the name the host's keys are recorded under, and the ssh_config's known_hosts when it asked. */
  private hostKeyUpdate: { name: string; known: KnownHostsConfig | null } | null = null;
  /** Clients of the jump hosts an ssh_config ProxyJump went through, closed after this one's transport. */
  private jumps: SSHClient[] = [];

  /** Loads known_hosts read-only (never saved back); the user's file when none is named. */
  loadSystemHostKeys(filename: string | null = null): void {
    if (filename === null) {
      const path = join(homedir(), '.ssh', 'known_hosts');
      if (existsSync(path)) this.systemHostKeys.load(path);
      return;
    }
    this.systemHostKeys.load(filename);
  }

  /** Loads known_hosts that `saveHostKeys` writes back (and AutoAddPolicy saves to). */
  loadHostKeys(filename: string): void {
    this.hostKeysFilename = filename;
    this.hostKeys.load(filename);
  }

  saveHostKeys(filename: string): void {
    this.hostKeys.save(filename);
  }

  getHostKeys(): HostKeys {
    return this.hostKeys;
  }

  /** Takes a policy instance or class. */
  setMissingHostKeyPolicy(policy: MissingHostKeyPolicy | (new () => MissingHostKeyPolicy)): void {
    this.policy = typeof policy === 'function' ? new policy() : policy;
    this.policyChosen = true;
  }

  getTransport(): Transport | null {
    return this.transport;
  }

  /** Transport.forwardLocalPort on this client's transport (AsyncSSH's forward_local_port). */
  forwardLocalPort(listenHost: string, listenPort: number, destHost: string, destPort: number): PortForwarder {
    if (!this.transport) throw new SSHException('SSH session not active');
    return this.transport.forwardLocalPort(listenHost, listenPort, destHost, destPort);
  }

  /** Transport.forwardRemotePort on this client's transport (AsyncSSH's forward_remote_port). */
  forwardRemotePort(listenHost: string, listenPort: number, destHost: string, destPort: number): PortForwarder {
    if (!this.transport) throw new SSHException('SSH session not active');
    return this.transport.forwardRemotePort(listenHost, listenPort, destHost, destPort);
  }

  /** Transport.forwardSocks on this client's transport (AsyncSSH's forward_socks, `ssh -D`). */
  forwardSocks(listenHost: string, listenPort: number): PortForwarder {
    if (!this.transport) throw new SSHException('SSH session not active');
    return this.transport.forwardSocks(listenHost, listenPort);
  }

  /** Transport.forwardLocalPath on this client's transport (AsyncSSH's forward_local_path). */
  forwardLocalPath(listenPath: string, destPath: string): PortForwarder {
    if (!this.transport) throw new SSHException('SSH session not active');
    return this.transport.forwardLocalPath(listenPath, destPath);
  }

  /** Transport.forwardRemotePath on this client's transport (AsyncSSH's forward_remote_path). */
  forwardRemotePath(listenPath: string, destPath: string): PortForwarder {
    if (!this.transport) throw new SSHException('SSH session not active');
    return this.transport.forwardRemotePath(listenPath, destPath);
  }

  private logChannel: string | null = null;

  /**
   * Paramiko's set_log_channel: the NODE_DEBUG section the client's transports log to (default
   * `paramiko-ts`); applies to the current transport and to those connect() makes later.
   */
  setLogChannel(name: string): void {
    if (typeof name !== 'string' || !name) throw new TypeError('the log channel is a non-empty NODE_DEBUG section name');
    this.logChannel = name;
    this.transport?.setLogChannel(name);
  }

  /** Known keys of a host from both sets (system first, as Paramiko), then an ssh_config's known_hosts files. */
  private knownKeys(name: string, fromConfig: HostKeys | null = null): Map<string, PKey> | null {
    for (const set of [this.systemHostKeys, this.hostKeys, fromConfig]) {
      const found = set?.lookup(name);
      if (found && found.size) return new Map(found.entries());
    }
    return null;
  }

  connect(hostname: string, options: ConnectOptions = {}): void {
    runSync(this.connectOp(hostname, options));
  }

  /**
   * The promise twin of connect: the same steps, the event loop free while the network is
   * awaited. The host key policy and keyboard-interactive handlers still run synchronously.
   */
  connectAsync(hostname: string, options: ConnectOptions = {}): Promise<void> {
    return runAsync(this.connectOp(hostname, options));
  }

  private *connectOp(hostname: string, options: ConnectOptions, depth = 0): Op<void> {
    this.sessionConfig = NO_SESSION_CONFIG;
    if (!options.sshConfig) {
      yield* this.connectDirectOp(hostname, options);
      this.sessionConfig = withAgentForwarding(NO_SESSION_CONFIG, options);
      return;
    }
    try {
      const [host, o, configured] = yield* this.fromSshConfigOp(hostname, options, depth);
      // ConnectionAttempts: a TCP connection that fails is tried again a second later, as ssh.
      for (let attempt = 1; ; attempt++) {
        try {
          yield* this.connectDirectOp(host, o, configured);
          break;
        } catch (e) {
          if (attempt >= configured.connectionAttempts || !tcpConnectFailed(e)) throw e;
          debug('connect to %s: attempt %d of %d failed (%s); again in 1 s', host, attempt, configured.connectionAttempts, (e as Error).message);
          yield* until(() => false, 1);
        }
      }
      const alive = configured.keepalive;
      if (alive) yield* this.transport!.setKeepaliveOp(alive.interval, { countMax: alive.countMax });
      this.sessionConfig = withAgentForwarding(configured, options);
    } catch (e) {
      // The jump hosts of a connection that did not come about go with it.
      yield* this.closeJumpsOp();
      throw e;
    }
  }

  /** `configured`: what an ssh_config decided beyond the options (see ConfiguredHost). */
  private *connectDirectOp(hostname: string, options: ConnectOptions, configured: ConfiguredHost | null = null): Op<void> {
    const port = options.port ?? 22;
    const hostKeyName = configured?.hostKeyAlias ?? (port === 22 ? hostname : `[${hostname}]:${port}`);
    const sock = options.sock ?? ([hostname, port] as [string, number]);
    const native = sock instanceof Channel || sock instanceof ProxyCommand || sock instanceof Socket || Array.isArray(sock);
    if (!native && !isSocketLike(sock)) {
      throw unsupportedSock('SSHClient.connect', sock);
    }
    // Checked before anything is opened: an unknown name raises here.
    const algorithms = { ...configured?.algorithms, ...algorithmsFromOptions(options) };
    const updateHostKeys = options.updateHostKeys ?? configured?.updateHostKeys;
    const t = new Transport(sock, {
      disabledAlgorithms: options.disabledAlgorithms,
      rekeyBytes: options.rekeyBytes,
      rekeySeconds: options.rekeySeconds,
      family: options.family,
      localAddr: options.localAddr,
      tcpKeepalive: options.tcpKeepalive,
      updateHostKeys,
    });
    if (this.logChannel) t.setLogChannel(this.logChannel);
    if (options.bannerTimeout != null) t.bannerTimeout = options.bannerTimeout;
    if (options.authTimeout != null) t.authTimeout = options.authTimeout;
    if (options.channelTimeout != null) t.channelTimeout = options.channelTimeout;
    t.useCompression(Boolean(options.compress));
    const sec = t.getSecurityOptions();
    if (algorithms.kex) sec.kex = algorithms.kex;
    if (algorithms.hostKeys) sec.keyTypes = algorithms.hostKeys;
    if (algorithms.ciphers) sec.ciphers = algorithms.ciphers;
    if (algorithms.macs) sec.digests = algorithms.macs;
    if (algorithms.compression) sec.compression = algorithms.compression;

    // As OpenSSH does: prefer host key algorithms for which a key is on record, so a known host
    // is checked against the key we have rather than refused for presenting another type
    // (unless the config orders them itself).
    const fromConfig = configured?.knownHosts.keys ?? null;
    const known = this.knownKeys(hostKeyName, fromConfig);
    if (known && !algorithms.hostKeys) {
      const types = new Set(known.keys());
      const first = sec.keyTypes.filter((a) => types.has(keyTypeOfAlgorithm(a)));
      if (first.length) sec.keyTypes = [...first, ...sec.keyTypes.filter((a) => !first.includes(a))];
    }
    this.transport = t;
    yield* t.startClientOp({ timeout: options.timeout ?? null });
    // Known before the login, after which sshd announces its keys (the proof may come before
    // connect returns).
    this.hostKeyUpdate = updateHostKeys ? { name: hostKeyName, known: options.updateHostKeys === undefined ? (configured?.knownHosts ?? null) : null } : null;
    if (updateHostKeys) {
      t.onHostKeysProven((keys, exchange) => {
        if (this.transport === t) this.recordProven(keys, exchange);
      });
    }

    const key = t.getRemoteServerKey();
    try {
      if ([this.systemHostKeys, this.hostKeys, fromConfig].some((set) => set?.isRevoked(key))) throw new BadHostKeyException(hostname, key, key);
      if (!known) {
        const checking = this.policyChosen ? null : configured?.knownHosts.checking;
        if (checking === 'accept') acceptNewHostKey(this, configured!.knownHosts, hostKeyName, key);
        else this.policy.missingHostKey(this, hostKeyName, key);
      } else {
        const ours = known.get(key.getName());
        if (!ours || !ours.equals(key)) throw new BadHostKeyException(hostname, key, ours ?? [...known.values()][0]);
      }
      const username = options.username ?? userInfo().username;
      const files = options.keyFilename == null ? [] : Array.isArray(options.keyFilename) ? options.keyFilename : [options.keyFilename];
      yield* this.authOp(t, username, options, files, configured);
    } catch (e) {
      this.hostKeyUpdate = null;
      yield* t.closeOp();
      throw e;
    }
  }

  /**
   * connect's `sshConfig`: the host's options from the config (see optionsFromConfig), and the
   * socket to run over: a ProxyCommand, or a channel through the last of the ProxyJump hosts,
   * each connected by a client of its own that shares this one's host keys and policy.
   */
  private *fromSshConfigOp(alias: string, options: ConnectOptions, depth: number): Op<[string, ConnectOptions, ConfiguredHost]> {
    const config = configOf(options.sshConfig!);
    const d = config.lookup(alias, { user: options.username, port: options.port });
    const o = optionsFromConfig(d, options);
    const configured = configuredHost(d);
    const proxy = o.sock ? null : proxyOf(d);
    if (proxy && 'command' in proxy) o.sock = new ProxyCommand(proxy.command);
    if (proxy && 'jump' in proxy) {
      if (depth >= MAX_JUMP_DEPTH) throw new SSHException(`ProxyJump for ${alias}: more than ${MAX_JUMP_DEPTH} jumps deep (a loop? a "Host *" ProxyJump that also matches the jump host)`);
      const hops = parseJumps(proxy.jump);
      let sock: Channel | undefined;
      for (let i = 0; i < hops.length; i++) {
        const jump = new SSHClient();
        jump.systemHostKeys = this.systemHostKeys;
        jump.hostKeys = this.hostKeys;
        jump.hostKeysFilename = this.hostKeysFilename;
        jump.policy = this.policy;
        jump.policyChosen = this.policyChosen;
        jump.logChannel = this.logChannel;
        this.jumps.push(jump);
        const hop = hops[i];
        // The first hop as the config says (its own ProxyJump too); later ones through the one before.
        yield* jump.connectOp(hop.host, { sshConfig: config, username: hop.user, port: hop.port, sock, timeout: o.timeout }, depth + 1);
        const next = i + 1 < hops.length ? config.lookup(hops[i + 1].host, { port: hops[i + 1].port }) : null;
        const dest: [string, number] = next ? [next.hostname!, Number(next.port ?? 22)] : [d.hostname!, o.port ?? 22];
        sock = yield* jump.getTransport()!.openChannelOp('direct-tcpip', dest, ['127.0.0.1', 0], {});
      }
      o.sock = sock;
    }
    return [d.hostname ?? alias, o, configured];
  }

  /** Paramiko's _auth order: given key, key files, agent, ~/.ssh keys, then password. */
  private *authOp(t: Transport, username: string, o: ConnectOptions, keyFiles: string[], configured: ConfiguredHost | null): Op<void> {
    const passphrase = o.passphrase ?? o.password ?? null;
    const certificates = configured?.certificates ?? [];
    // An ssh_config's PasswordAuthentication / KbdInteractiveAuthentication no keep the password from the server.
    const passwordBy = configured?.password ?? { password: true, keyboardInteractive: true };
    const password = passwordBy.password || passwordBy.keyboardInteractive ? o.password : null;
    let saved: Error | null = null;
    let twoFactor = false;
    const twoFactorTypes = ['keyboard-interactive', 'password'];
    let keysTried = 0;
    /** True when the key completed authentication; a partial success may ask for a password. */
    const tryKey = function* (key: PKey): Op<boolean> {
      keysTried++;
      try {
        const next = yield* t.authPublickeyOp(username, key);
        if (next.length === 0) return true;
        twoFactor = next.some((m) => twoFactorTypes.includes(m));
        return false;
      } catch (e) {
        saved = e as Error;
        return false;
      }
    };
    if (o.pkey && (yield* tryKey(o.pkey))) return;
    if (!twoFactor) {
      for (const f of keyFiles) {
        try {
          if (yield* tryKey(withCertificate(PKey.fromPath(expandHome(f).replace(/-cert\.pub$/, ''), passphrase), certificates))) return;
        } catch (e) {
          saved = e as Error;
        }
      }
    }
    if (!twoFactor && o.allowAgent !== false) {
      // SSH_AUTH_SOCK's agent, key by key in its order; no agent means no keys, not an error.
      let agent: Agent | null = null;
      try {
        // The caller's agentPath, else an ssh_config's IdentityAgent (unless the caller asked for the agent it had turned off).
        const socketPath = o.agentPath ?? configured?.identityAgent ?? undefined;
        agent = yield* Agent.openOp(socketPath === undefined ? {} : { socketPath });
        for (const key of agent.getKeys()) {
          if (yield* tryKey(key)) return;
          if (twoFactor) break;
        }
      } catch (e) {
        saved = e as Error;
      } finally {
        agent?.close();
      }
    }
    if (!twoFactor && o.lookForKeys !== false) {
      for (const name of DEFAULT_KEY_FILES) {
        const path = join(homedir(), '.ssh', name);
        if (!existsSync(path)) continue;
        try {
          if (yield* tryKey(PKey.fromPath(path, passphrase))) return;
        } catch (e) {
          saved = e as Error;
        }
      }
    }
    if (password !== undefined && password !== null) {
      try {
        if (passwordBy.password) yield* t.authPasswordOp(username, password, { fallback: passwordBy.keyboardInteractive, passwordChange: o.passwordChange ?? null });
        else yield* t.authInteractiveOp(username, answerWithPassword(password));
        if (t.isAuthenticated()) return;
      } catch (e) {
        saved = e as Error;
      }
    }
    if (t.isAuthenticated()) return;
    if (saved) throw explainedAuthFailure(saved, username, keysTried, password !== undefined && password !== null);
    throw new AuthenticationException('No authentication methods available');
  }

  /** Runs a command on a new channel: [stdin, stdout, stderr] file objects, as Paramiko. */
  execCommand(command: string, options: ExecOptions = {}): [ChannelStdinFile, ChannelFile, ChannelStderrFile] {
    return runSync(this.execCommandOp(command, options));
  }

  /**
   * The promise twin of execCommand. The files it gives have promise twins too (`readAsync`,
   * `readlineAsync`, `for await` over lines, `writeAsync`, stdin's `closeAsync`).
   */
  execCommandAsync(command: string, options: ExecOptions = {}): Promise<[ChannelStdinFile, ChannelFile, ChannelStderrFile]> {
    return runAsync(this.execCommandOp(command, options));
  }

  private *execCommandOp(command: string, options: ExecOptions): Op<[ChannelStdinFile, ChannelFile, ChannelStderrFile]> {
    const t = this.need();
    const chan = yield* t.openSessionOp({ timeout: options.timeout ?? null });
    if (options.getPty ?? this.configWantsPty(false)) yield* chan.getPtyOp();
    chan.settimeout(options.timeout ?? null);
    yield* this.sessionSetupOp(chan, options.environment);
    yield* chan.requestOp('exec', { command });
    const bufsize = options.bufsize ?? -1;
    return [chan.makefileStdin('wb', bufsize), chan.makefile('r', bufsize), chan.makefileStderr('r', bufsize)];
  }

  /**
   * Beyond Paramiko (AsyncSSH's run): runs `command` to its end and returns what it printed and
   * how it ended, with no deadlock whatever the amount of output (the worker takes both streams
   * in full while the command runs). `input` is written to its stdin, then EOF. `timeout`
   * (seconds) bounds the whole run: SocketTimeout, and the channel is closed. `check` raises
   * ProcessError for a non-zero exit status or a signal. Output is text (`encoding`, default
   * utf8), or Buffers with `encoding: null`.
   */
  run(command: string, options: RunOptions = {}): CompletedProcess {
    return runSync(this.runOp(command, options));
  }

  /** The promise twin of run (AsyncSSH's `await conn.run(...)`). */
  runAsync(command: string, options: RunOptions = {}): Promise<CompletedProcess> {
    return runAsync(this.runOp(command, options));
  }

  private *runOp(command: string, options: RunOptions): Op<CompletedProcess> {
    const t = this.need();
    const timeout = options.timeout ?? null;
    const deadline = timeout === null ? null : Date.now() + timeout * 1000;
    const left = (): number | null => (deadline === null ? null : Math.max(0, (deadline - Date.now()) / 1000));
    const chan = yield* t.openSessionOp({ timeout });
    try {
      chan.settimeout(timeout);
      if (this.configWantsPty(false)) yield* chan.getPtyOp();
      yield* this.sessionSetupOp(chan, options.environment);
      yield* chan.requestOp('exec', { command });
      if (options.input !== undefined && options.input !== null) yield* chan.sendallOp(options.input);
      yield* chan.shutdownWriteOp();
      // Waits for the end with the worker taking all output meanwhile (no window deadlock).
      if (!(yield* chan.statusWaitOp(left()))) throw new SocketTimeout(`the command did not finish within ${timeout} s: ${command}`);
      chan.settimeout(left());
      const out = yield* chan.makefile('rb').readOp();
      const err = yield* chan.makefileStderr('rb').readOp();
      const encoding = options.encoding === undefined ? 'utf8' : options.encoding;
      const text = (b: Buffer): string | Buffer => (encoding === null ? b : b.toString(encoding));
      const exitStatus = yield* chan.recvExitStatusOp();
      const exitSignal = chan.exitSignal?.signal ?? null;
      const result: CompletedProcess = { command, exitStatus, exitSignal, stdout: text(out), stderr: text(err) };
      if (options.check && (exitStatus !== 0 || exitSignal !== null)) {
        throw new ProcessError(command, exitStatus, exitSignal, result.stdout, result.stderr);
      }
      return result;
    } finally {
      yield* chan.closeOp();
    }
  }

  /**
   * What an ssh_config asks of a session channel before its command, in ssh's order: agent
   * forwarding (ForwardAgent; a refusal is logged, not raised, as ssh), then SendEnv/SetEnv with
   * the caller's `environment` over them.
   */
  private *sessionSetupOp(chan: Channel, environment: Record<string, string> | null | undefined): Op<void> {
    const agent = this.sessionConfig.forwardAgent;
    if (agent) yield* chan.forwardAgentOp(agent);
    const env = { ...this.sessionConfig.environment, ...environment };
    if (Object.keys(env).length) yield* chan.updateEnvironmentOp(env);
  }

  /**
   * RequestTTY: whether a session gets a pty when the caller did not say; `login` for
   * invokeShell (auto gives it one, as ssh's login session).
   */
  private configWantsPty(login: boolean): boolean {
    switch (this.sessionConfig.requestTty) {
      case 'force':
        return true;
      case 'yes':
        return Boolean(process.stdin.isTTY);
      case 'no':
        return false;
      default:
        return login;
    }
  }

  /** An interactive shell with a pty (Paramiko's defaults: vt100, 80x24). */
  invokeShell(options: ShellOptions = {}): Channel {
    return runSync(this.invokeShellOp(options));
  }

  /** The promise twin of invokeShell. */
  invokeShellAsync(options: ShellOptions = {}): Promise<Channel> {
    return runAsync(this.invokeShellOp(options));
  }

  private *invokeShellOp(options: ShellOptions): Op<Channel> {
    const chan = yield* this.need().openSessionOp();
    if (this.configWantsPty(true)) yield* chan.getPtyOp(options);
    yield* this.sessionSetupOp(chan, options.environment);
    // An ssh_config's RemoteCommand runs instead of the login shell, as `ssh alias` with no command.
    const command = this.sessionConfig.remoteCommand;
    if (command) yield* chan.requestOp('exec', { command });
    else yield* chan.requestOp('shell');
    return chan;
  }

  /** An SFTP session on the connection (Paramiko's open_sftp). */
  openSftp(): SFTPClient {
    return SFTPClient.fromTransport(this.need());
  }

  /** The promise twin of openSftp. */
  openSftpAsync(): Promise<SFTPClient> {
    return SFTPClient.fromTransportAsync(this.need());
  }

  private need(): Transport {
    if (!this.transport || !this.transport.isActive()) throw new SSHException('SSH session not active');
    return this.transport;
  }

  close(): void {
    runSync(this.closeOp());
  }

  /** The promise twin of close. */
  closeAsync(): Promise<void> {
    return runAsync(this.closeOp());
  }

  private *closeOp(): Op<void> {
    const t = this.transport;
    this.transport = null;
    if (t) this.recordProvenHostKeys(t);
    if (t) yield* t.closeOp();
    yield* this.closeJumpsOp();
  }

  /** At close: what the server proved, if the proof's callback has not recorded it already. */
  private recordProvenHostKeys(t: Transport): void {
    if (this.hostKeyUpdate && t.isActive()) {
      const keys = t.getProvenHostKeys();
      if (keys.length) this.recordProven(keys, null);
    }
    this.hostKeyUpdate = null;
  }

  /**
   * updateHostKeys, once per connection, as OpenSSH's UpdateHostKeys: the keys the server proved
   * that are not on record for it yet go into this client's host keys and the file they came
   * from (an ssh_config's UserKnownHostsFile, else the file loadHostKeys read). With `exchange`
   * (the proof's callback: `keys` and it are all the server offers), keys on record for the host
   * that it no longer offers are taken off: only lines that name the host itself (or its hash),
   * never wildcard, @cert-authority or @revoked lines, nor the system's known_hosts. A host
   * verified through a certificate is left as it is.
   */
  private recordProven(keys: PKey[], exchange: PKey | null): void {
    const update = this.hostKeyUpdate;
    this.hostKeyUpdate = null;
    if (!update) return;
    if (exchange?.publicBlob && isCertType(exchange.publicBlob.keyType)) return;
    let changed = false;
    const file = update.known?.saveTo;
    // The offered keys, with an existing file whose lines for the host are to be brought in line.
    let rotate: ((k: PKey) => boolean) | null = null;
    if (exchange) {
      const offered = [exchange, ...keys];
      const keep = (k: PKey): boolean => offered.some((o) => o.equals(k));
      changed = this.hostKeys.removeKeysNotOffered(update.name, keep).length > 0;
      if (update.known && file && existsSync(file)) {
        update.known.keys.removeKeysNotOffered(update.name, keep);
        rotate = keep;
      }
    }
    const known = this.knownKeys(update.name, update.known?.keys ?? null);
    const fresh = keys.filter((k) => !known?.has(k.getName()));
    if (update.known && rotate) {
      // Keys taken off and keys added: one rewrite of the file.
      for (const key of fresh) this.hostKeys.add(update.name, key.getName(), key);
      rotateKnownHostKeys(update.known, update.name, rotate, fresh);
    } else {
      for (const key of fresh) {
        if (update.known) acceptNewHostKey(this, update.known, update.name, key);
        else this.hostKeys.add(update.name, key.getName(), key);
      }
    }
    if (!update.known && this.hostKeysFilename && (changed || fresh.length)) this.saveHostKeys(this.hostKeysFilename);
  }

  /** The jump hosts, after the connection that ran through them: the last hop first. */
  private *closeJumpsOp(): Op<void> {
    for (const jump of this.jumps.splice(0).reverse()) yield* jump.closeOp();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

