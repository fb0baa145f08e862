import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { getBridge } from '../bridge';
import { SSHException } from '../errors';
import { Ed25519Key, PKey, RSAKey } from '../keys';
import type { DisabledAlgorithms } from '../transport/algorithms';
import type { EmbeddedOptions, EmbeddedSftp, EmbeddedUser } from '../worker/server/embedded';
import { rekeyLimits } from './transport';

/** An account of SSHServer: a password, or a user entry with a password and/or keys. */
export type SSHServerUser =
  | string
  | {
      password?: string | null;
      /**
       * The password has expired (RFC 4252 section 8): it logs in only by changing it. Clients are
       * asked for a new one (OpenSSH's `ssh` prompts for it; our client's `passwordChange` gives
       * it), which replaces it for as long as this server runs (`server.log()` says so);
       * keyboard-interactive refuses the user meanwhile. Default false.
       */
      passwordExpired?: boolean;
      /** Keys that may log in: authorized_keys text, lines, or PKey objects (public part used). */
      authorizedKeys?: string | Array<string | PKey> | null;
      /** An authorized_keys file to read (at start). */
      authorizedKeysFile?: string | null;
    };

/** What an exec callback returns (missing fields: empty output, status 0). */
export interface ExecResult {
  stdout?: string | Buffer;
  stderr?: string | Buffer;
  status?: number;
}

/** A main-thread exec handler: `(command, { username, env })`. */
export type ExecCallback = (command: string, context: { username: string; env: Record<string, string> }) => ExecResult | Promise<ExecResult>;

/** The SFTP subsystem's settings (see `SSHServerOptions.sftp`). */
export interface SSHServerSftpOptions {
  /** The directory clients see as `/`; default '/'. */
  root?: string;
  /** Refuse every change (writes, renames, removals, attributes); default false. */
  readOnly?: boolean;
  /** Bits cleared from the modes of created files and directories; default: the process umask. */
  umask?: number;
}

/** `SSHServerOptions.sftp` resolved: null when the subsystem is refused. */
function sftpSettings(option: SSHServerOptions['sftp'], exec: boolean | ExecCallback): EmbeddedSftp | null {
  const o = option ?? exec === true;
  if (o === false) return null;
  const s = o === true ? {} : o;
  if (s.umask !== undefined && (!Number.isInteger(s.umask) || s.umask < 0 || s.umask > 0o777)) {
    throw new TypeError(`sftp.umask must be an integer from 0 to 0o777, not ${s.umask}`);
  }
  return { root: resolvePath(s.root ?? '/'), readOnly: Boolean(s.readOnly), umask: s.umask ?? null };
}

export interface SSHServerOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: a free port (read it from `server.port`). */
  port?: number;
  backlog?: number;
  /** Accounts: `{ alice: 'password', bob: { authorizedKeys: [key] } }`. */
  users?: Record<string, SSHServerUser>;
  /** Host keys (PKey objects or private key files); default: an Ed25519 and an RSA key generated once per process. */
  hostKeys?: Array<PKey | string>;
  /** Methods a login must pass in turn (OpenSSH's AuthenticationMethods), e.g. ['publickey', 'password']. */
  authMethods?: string[] | null;
  /** Offer keyboard-interactive (one "Password:" prompt) to users with a password; default true. */
  keyboardInteractive?: boolean;
  /** Text sent before authentication (USERAUTH_BANNER). */
  banner?: string | null;
  /**
   * exec and shell requests: true (the default) runs them through the local shell as the user
   * running Node (whatever the SSH user name), false refuses them, a function answers exec
   * requests on the main thread (shells are then refused).
   */
  exec?: boolean | ExecCallback;
  /**
   * The 'sftp' subsystem (SFTP v3 with OpenSSH's extensions), served in the worker as the user
   * running Node, whatever the SSH user name:
   * - `true`: the whole filesystem (root `/`), like sshd's sftp-server;
   * - `{ root, readOnly, umask }`: jailed in `root` (the client's `/`, where its relative paths
   *   start; `..` and symlinks cannot lead out), `readOnly` refuses every change with
   *   "Permission denied", `umask` is applied exactly to created files (default: the process's);
   * - `false`: refused (sftp clients fail to start).
   * Default: `true` while `exec` is `true` (the local shell already reaches every file);
   * with `exec: false` or an exec callback, off unless given, so a server that runs no local
   * command does not expose the filesystem unasked.
   */
  sftp?: boolean | SSHServerSftpOptions;
  /**
   * Serve SCP (exec requests running `scp -t` / `scp -f`, what `scp -O`, Python's `scp`
   * package and SCPClient send) in the worker, inside the `sftp` jail with its `readOnly` and
   * `umask`, instead of through the local shell; needs `sftp`. Default false (as AsyncSSH's
   * allow_scp): with `exec: true` the local scp serves them, unjailed.
   */
  scp?: boolean;
  /**
   * TCP forwarding, as sshd's AllowTcpForwarding with GatewayPorts no: direct-tcpip channels
   * (`ssh -L`, `ssh -D`, `ssh -J` through this server, forwardLocalPort) connect from here to
   * what they name, and tcpip-forward requests (`ssh -R`, forwardRemotePort) listen on the
   * loopback address. Default: `true` while `exec` is `true` (a shell reaches as far), else off.
   */
  forwarding?: boolean;
  /**
   * Agent forwarding (`ssh -A`), as sshd's AllowAgentForwarding: after a session's
   * auth-agent-req, that session and those started after it on the connection get
   * SSH_AUTH_SOCK, a socket whose connections reach the client's agent. Default: `true` while
   * `exec` is `true`, else off.
   */
  agentForwarding?: boolean;
  /**
   * The shell for sessions; default $SHELL or /bin/sh. Commands run as `shell -c command`: bash
   * reads ~/.bashrc for them, as under sshd (docs/server.md: '/bin/sh' skips a slow one).
   */
  shell?: string;
  cwd?: string | null;
  /** The sessions' environment; default HOME, PATH, LANG, SHELL of this process (plus USER, LOGNAME). */
  env?: Record<string, string>;
  /** Client env requests accepted (names, or prefixes ending in '*'); default ['LANG', 'LC_*']. */
  acceptEnv?: string[];
  /** pty-req accepted (shells with a terminal, window-change); default true. */
  allowPty?: boolean;
  /** Failed auth attempts before a client is dropped; default 6. */
  maxAuthTries?: number;
  /** Seconds a client has to authenticate; default 120, null for no limit. */
  loginGraceTime?: number | null;
  /** sshd's RekeyLimit: keys are exchanged anew after this many bytes either way (default 1 GiB, at least 16)... */
  rekeyBytes?: number;
  /** ...and this many seconds after the last exchange (default none, as sshd). */
  rekeySeconds?: number | null;
  /** Sessions one connection may open at once; default 10 (OpenSSH's MaxSessions). */
  maxSessions?: number;
  /** Connections at once; default 1000. */
  maxConnections?: number;
  /** Algorithm lists in preference order (the server defaults otherwise). */
  preferences?: { kex?: string[]; keys?: string[]; ciphers?: string[]; macs?: string[]; compression?: string[] };
  disabledAlgorithms?: DisabledAlgorithms;
  /** Offer zlib compression (after none); default true, as sshd. */
  compress?: boolean;
  /** An OpenSSH moduli file for group exchange (true: /etc/ssh/moduli); default: built-in groups. */
  moduli?: string | boolean | null;
  /** Append log lines here (they are also kept in memory: `server.log()`). */
  logFile?: string | null;
}

/** Host keys generated once per process for servers not given any (generation costs ~100 ms). */
let generatedKeys: PKey[] | null = null;
function defaultHostKeys(): PKey[] {
  generatedKeys ??= [Ed25519Key.generate(), RSAKey.generate(3072)];
  return generatedKeys;
}

function keyLines(entry: Exclude<SSHServerUser, string>): string {
  const lines: string[] = [];
  const keys = entry.authorizedKeys;
  if (typeof keys === 'string') lines.push(keys);
  else if (Array.isArray(keys)) for (const k of keys) lines.push(typeof k === 'string' ? k : `${k.getName()} ${k.getBase64()}`);
  if (entry.authorizedKeysFile) lines.push(readFileSync(entry.authorizedKeysFile, 'utf8'));
  return lines.join('\n');
}

const execCallbacks = new Map<number, ExecCallback>();
let execRegistered = false;
let nextKey = 1;
function registerExec(): void {
  if (execRegistered) return;
  execRegistered = true;
  const toBuf = (x: string | Buffer | undefined) => (x === undefined ? Buffer.alloc(0) : Buffer.isBuffer(x) ? x : Buffer.from(String(x)));
  const answer = (r: ExecResult) => ({ stdout: toBuf(r?.stdout), stderr: toBuf(r?.stderr), status: r?.status ?? 0 });
  getBridge().onCallback('embedded-exec', (p: { key: number; command: string; username: string; env: Record<string, string> }) => {
    const cb = execCallbacks.get(p.key);
    if (!cb) throw new SSHException('the server that asked is closed');
    const r = cb(p.command, { username: p.username, env: p.env });
    return r instanceof Promise ? r.then(answer) : answer(r);
  });
}

/**
 * A ready SSH server for tests and tools, running entirely in the transport worker: it keeps
 * serving while this thread is blocked in anything else (`execSync` of a client under test, a
 * blocking call of this library). Logins come from its own user table; sessions run through the
 * local shell as the user running Node, and its 'sftp' subsystem serves files (option `sftp`).
 *
 * ```ts
 * using server = SSHServer.start({ users: { alice: 'secret' } });
 * execSync(`sshpass -p secret ssh -p ${server.port} alice@127.0.0.1 true`);
 * ```
 */
export class SSHServer {
  readonly host: string;
  readonly port: number;
  /** The host keys' public halves. */
  readonly hostKeys: PKey[];
  private id: number | null;
  private readonly key: number;

  private constructor(id: number, address: [string, number], hostKeys: PKey[], key: number) {
    this.id = id;
    this.host = address[0];
    this.port = address[1];
    this.hostKeys = hostKeys.map((k) => PKey.fromBlob(k.asBytes()));
    this.key = key;
  }

  /** Starts listening; returns once the port is bound. */
  static start(options: SSHServerOptions = {}): SSHServer {
    const hostKeys = (options.hostKeys ?? defaultHostKeys()).map((k) => (typeof k === 'string' ? PKey.fromPath(k) : k));
    for (const k of hostKeys) if (!k.canSign()) throw new SSHException(`host key ${k.getName()} is not a private key`);
    const users: Record<string, EmbeddedUser> = {};
    for (const [name, u] of Object.entries(options.users ?? {})) {
      users[name] = typeof u === 'string' ? { password: u } : { password: u.password ?? null, passwordExpired: Boolean(u.passwordExpired), authorizedKeys: keyLines(u) };
    }
    const p = options.preferences ?? {};
    const preferences = {
      ...(p.kex ? { kex: p.kex } : {}),
      ...(p.keys ? { hostKeys: p.keys } : {}),
      ...(p.ciphers ? { ciphers: p.ciphers } : {}),
      ...(p.macs ? { macs: p.macs } : {}),
      ...(p.compression ? { compression: p.compression } : {}),
    };
    const moduli = options.moduli === true ? '/etc/ssh/moduli' : typeof options.moduli === 'string' ? options.moduli : null;
    const env = options.env ?? {
      HOME: process.env.HOME ?? '/',
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: process.env.LANG ?? 'C.UTF-8',
      SHELL: options.shell ?? process.env.SHELL ?? '/bin/sh',
    };
    const exec = options.exec ?? true;
    const sftp = sftpSettings(options.sftp, exec);
    if (options.scp && !sftp) throw new TypeError('scp needs the sftp option: its root, readOnly and umask jail the transfers');
    const key = nextKey++;
    if (typeof exec === 'function') {
      registerExec();
      execCallbacks.set(key, exec);
    }
    const args: EmbeddedOptions & { callbackKey: number } = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      backlog: options.backlog ?? 511,
      hostKeys: hostKeys.map((k) => k.exportPrivateKey(null, 'openssh')),
      users,
      authMethods: options.authMethods ?? null,
      keyboardInteractive: options.keyboardInteractive ?? true,
      banner: options.banner ?? null,
      shell: options.shell ?? process.env.SHELL ?? '/bin/sh',
      cwd: options.cwd ?? null,
      env,
      acceptEnv: options.acceptEnv ?? ['LANG', 'LC_*'],
      allowPty: options.allowPty ?? true,
      allowExec: exec !== false,
      execCallback: typeof exec === 'function',
      sftp,
      scp: Boolean(options.scp),
      forwarding: options.forwarding ?? exec === true,
      agentForwarding: options.agentForwarding ?? exec === true,
      maxAuthTries: options.maxAuthTries ?? 6,
      loginGraceTime: options.loginGraceTime === undefined ? 120 : options.loginGraceTime,
      ...rekeyLimits(options),
      maxSessions: options.maxSessions ?? 10,
      maxConnections: options.maxConnections ?? 1000,
      preferences,
      disabledAlgorithms: options.disabledAlgorithms,
      compress: options.compress ?? true,
      moduli: moduli ? readFileSync(moduli, 'utf8') : null,
      logFile: options.logFile ?? null,
      callbackKey: key,
    };
    try {
      const r = getBridge().call<{ id: number; address: [string, number] }>('embedded', 'start', args, 30);
      return new SSHServer(r.id, r.address, hostKeys, key);
    } catch (e) {
      execCallbacks.delete(key);
      throw e;
    }
  }

  /** `[host, port]` it listens on. */
  get address(): [string, number] {
    return [this.host, this.port];
  }

  /** known_hosts lines for its host keys (`[127.0.0.1]:port type base64`). */
  knownHosts(): string {
    const name = this.port === 22 ? this.host : `[${this.host}]:${this.port}`;
    return this.hostKeys.map((k) => `${name} ${k.getName()} ${k.getBase64()}\n`).join('');
  }

  /**
   * Connections now, totals since start, and the memory the worker holds: its JavaScript heap
   * (`workerHeapUsed`) and the process's ArrayBuffers (`arrayBuffers`), in bytes.
   */
  status(): { connections: number; accepted: number; authenticated: number; refused: number; workerHeapUsed: number; arrayBuffers: number } {
    return getBridge().call('embedded', 'status', { id: this.need() }, 10);
  }

  /** The last log lines (at most 1000): connections, logins, commands, drops and why. */
  log(): string[] {
    return this.logSince(0).lines;
  }

  /** Log lines from number `since` on, and the number to ask for next time (to follow the log). */
  logSince(since: number): { lines: string[]; next: number } {
    return getBridge().call('embedded', 'log', { id: this.need(), since }, 10);
  }

  private need(): number {
    if (this.id === null) throw new SSHException('the server is closed');
    return this.id;
  }

  /** Stops listening and ends every session (their processes get SIGHUP). Idempotent. */
  close(): void {
    if (this.id === null) return;
    const id = this.id;
    this.id = null;
    execCallbacks.delete(this.key);
    getBridge().call('embedded', 'close', { id }, 30);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
