import { appendFileSync, chmodSync, chownSync, copyFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { generateKey, KeyType } from './keys';
import { failStart, LOCALHOST, READY_TIMEOUT_MS, waitForBanner, withPortRetry } from './ports';
import { isRoot, makeTempDir, once, PeerProcess, removeTempDir } from './process';
import { authorizeArgs, HostKey, knownHostsText, SshServer } from './types';
import { ensureTestUser, TEST_PASSWORD } from './users';

/** Debian's paramiko and asyncssh import only under the system interpreter. */
export const PYTHON = '/usr/bin/python3';
export const PARAMIKO_SERVER_SCRIPT = join(__dirname, 'paramiko_server.py');
export const ASYNCSSH_SERVER_SCRIPT = join(__dirname, 'asyncssh_server.py');

export interface PythonServerOptions {
  /** Host keys to generate (Paramiko default: ecdsa, rsa; AsyncSSH default: ed25519). */
  hostKeyTypes?: KeyType[];
  /** The user name the server accepts (default: the test user's). */
  username?: string;
  /** Its password (default TEST_PASSWORD, whatever the system account's; null: no password auth for AsyncSSH, always failing for Paramiko). */
  password?: string | null;
  /** AsyncSSH only: a password that logs in only by changing it (RFC 4252 section 8; a new one of 8+ characters). */
  expiredPassword?: string;
  /** Keys the user may log in with from the start (more with `authorize`). */
  authorizedKeys?: string[];
  /** Verbose library logging into log() (Paramiko DEBUG, AsyncSSH debug level 2). */
  debug?: boolean;
}

export interface PythonServer extends SshServer {
  kind: 'paramiko' | 'asyncssh';
  /** The password the server accepts for `user.username`. */
  password: string | null;
}

/**
 * Starts spec/support/servers/paramiko_server.py: Paramiko's server side on
 * 127.0.0.1:<free port>, one thread per connection; password, keyboard-interactive and publickey
 * auth; exec/shell (pty optional), env, sftp (Paramiko's SFTPServer over the local filesystem),
 * local and remote forwarding. As root it runs as the test user, so commands run as that user.
 */
export function startParamikoServer(options: PythonServerOptions = {}): Promise<PythonServer> {
  return startPythonServer('paramiko', PARAMIKO_SERVER_SCRIPT, ['ecdsa', 'rsa'], options);
}

/**
 * Starts spec/support/servers/asyncssh_server.py: AsyncSSH's server on 127.0.0.1:<free port>;
 * password (and keyboard-interactive via AsyncSSH's emulation) and publickey auth; exec/shell (pty
 * optional), env, signals, sftp (AsyncSSH's SFTP server), local and remote forwarding. As root it
 * runs as the test user.
 */
export function startAsyncsshServer(options: PythonServerOptions = {}): Promise<PythonServer> {
  return startPythonServer('asyncssh', ASYNCSSH_SERVER_SCRIPT, ['ed25519'], options);
}

async function startPythonServer(
  kind: 'paramiko' | 'asyncssh',
  script: string,
  defaultKeyTypes: KeyType[],
  options: PythonServerOptions,
): Promise<PythonServer> {
  const user = ensureTestUser();
  const username = options.username ?? user.username;
  const password = options.password === undefined ? TEST_PASSWORD : options.password;
  // As root, the server drops to the test user: the commands it runs are not root's.
  const runAs = isRoot() ? { uid: user.uid, gid: user.gid } : {};
  const dir = makeTempDir(kind);
  const own = (path: string) => {
    if (isRoot()) chownSync(path, user.uid, user.gid);
  };
  try {
    const hostKeys: HostKey[] = [];
    for (const type of options.hostKeyTypes ?? defaultKeyTypes) {
      const k = generateKey(join(dir, `${kind}_host_${type}_key`), type, { comment: 'pts-test host key' });
      own(k.path);
      hostKeys.push(k);
    }
    // A copy in the temp dir: the checkout may not be readable by the test user.
    const scriptCopy = join(dir, basename(script));
    copyFileSync(script, scriptCopy);
    chmodSync(scriptCopy, 0o644);
    const akDir = join(dir, 'authorized_keys');
    mkdirSync(akDir, { mode: 0o755 });
    chmodSync(akDir, 0o755);
    const authorize = (name: string, line: string) => {
      const key = line.trim();
      if (!key || key.includes('\n')) throw new Error('authorize: expected one public key line');
      const file = join(akDir, name);
      appendFileSync(file, key + '\n', { mode: 0o644 });
      chmodSync(file, 0o644);
    };
    for (const k of options.authorizedKeys ?? []) authorize(username, k);

    return await withPortRetry(async (port) => {
      const args = ['-W', 'ignore', scriptCopy, '--port', String(port), '--user', username];
      for (const k of hostKeys) args.push('--host-key', k.path);
      if (password !== null) args.push('--password', password);
      if (options.expiredPassword !== undefined) {
        if (kind !== 'asyncssh') throw new Error('expiredPassword: only the AsyncSSH server asks for password changes');
        args.push('--expired-password', options.expiredPassword);
      }
      args.push('--authorized-keys', join(akDir, '%u'), '--home', user.home, '--watch-stdin');
      if (options.debug) args.push('--debug');
      const peer = new PeerProcess(kind, PYTHON, args, join(dir, `${kind}-${port}.log`), {
        ...runAs,
        cwd: user.home,
        stdinPipe: true,
        env: {
          PATH: '/usr/local/bin:/usr/bin:/bin',
          HOME: user.home,
          USER: username,
          LOGNAME: username,
          LANG: 'C.UTF-8',
          PYTHONUNBUFFERED: '1',
          PYTHONDONTWRITEBYTECODE: '1',
        },
      });
      let banner: string;
      try {
        await peer.waitForLine(/^READY (\d+)$/, READY_TIMEOUT_MS);
        banner = await waitForBanner(peer, LOCALHOST, port);
      } catch (e) {
        await peer.stop(500);
        throw e;
      }
      const server: PythonServer = {
        kind,
        host: LOCALHOST,
        port,
        pid: peer.pid,
        dir,
        banner,
        hostKeys,
        user: { ...user, username, password },
        password,
        authorize: (a: string, b?: string) => authorize(...authorizeArgs(username, a, b)),
        knownHosts: () => knownHostsText(LOCALHOST, port, hostKeys),
        log: () => peer.log(),
        waitForLog: (pattern: RegExp, timeoutMs = 5000) => peer.waitForLine(pattern, timeoutMs),
        stop: once(async () => {
          await peer.stop();
          removeTempDir(dir);
        }),
        get running() {
          return peer.running;
        },
      };
      return server;
    });
  } catch (e) {
    return failStart(null, () => removeTempDir(dir), e);
  }
}
