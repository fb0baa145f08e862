import { KeyPair } from './keys';
import { TestUser } from './users';

/** A host key of a started server. */
export interface HostKey extends Omit<KeyPair, 'publicKeyPath'> {
  /** Where the public line is written (OpenSSH format), or null when there is no such file. */
  publicKeyPath: string | null;
  /** The host certificate line, when the server was given a CA to sign its keys with. */
  certificate?: string;
  certificatePath?: string;
}

/** What every start function returns. */
export interface SshServer {
  kind: 'openssh' | 'dropbear' | 'paramiko' | 'asyncssh' | 'tinysshd' | 'proftpd' | 'go';
  /** Always '127.0.0.1'. */
  host: string;
  port: number;
  pid: number;
  /** The server's temp dir (keys, config, authorized keys); removed by stop(). */
  dir: string;
  /** The banner line it answered with, e.g. "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3". */
  banner: string;
  hostKeys: HostKey[];
  /** The account to log in as (see users.ts), with its password when there is one. */
  user: TestUser;
  /** Lets `publicKeyLine` log in as `username` (default: the test user). */
  authorize(publicKeyLine: string): void;
  authorize(username: string, publicKeyLine: string): void;
  /** known_hosts lines for every host key, e.g. "[127.0.0.1]:40022 ssh-ed25519 AAAA...". */
  knownHosts(): string;
  /** Everything the server logged so far. */
  log(): string;
  /**
   * Waits for a log line matching `pattern` (servers log a connection's end a moment after the
   * client has gone) and returns the match; rejects with the log after `timeoutMs` (default 5000).
   */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Stops the server (SIGTERM, SIGKILL after a grace), removes its temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Whether the server process is still running. */
  readonly running: boolean;
}

/** "[host]:port" as known_hosts writes a non-22 port. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function knownHostsText(host: string, port: number, keys: HostKey[]): string {
  return keys.map((k) => `${knownHostsName(host, port)} ${k.publicKey}\n`).join('');
}

/** Normalises the two `authorize` signatures. */
export function authorizeArgs(defaultUser: string, a: string, b?: string): [string, string] {
  return b === undefined ? [defaultUser, a] : [a, b];
}
