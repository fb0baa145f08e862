import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { READY_TIMEOUT_MS } from './ports';
import { makeTempDir, once, PeerProcess, PeerStartError, removeTempDir, sleep } from './process';

export const SSH_AGENT = '/usr/bin/ssh-agent';
export const SSH_ADD = '/usr/bin/ssh-add';

export interface AgentOptions {
  /** -d: debug mode (logs every request to log()). */
  debug?: boolean;
  /** -t: default lifetime of added keys, in seconds. */
  lifetime?: number;
}

export interface AddOptions {
  /** -t: lifetime in seconds. */
  lifetime?: number;
  /** The passphrase of an encrypted key (given to ssh-add through SSH_ASKPASS). */
  passphrase?: string;
}

export interface Agent {
  /** The agent's socket: SSH_AUTH_SOCK for clients. */
  socketPath: string;
  pid: number;
  dir: string;
  /** { SSH_AUTH_SOCK } to merge into a child's environment. */
  env: { SSH_AUTH_SOCK: string };
  /** `ssh-add <keyPath>`. */
  add(keyPath: string, options?: AddOptions): void;
  /** `ssh-add -L`: the public key lines the agent holds (empty when none). */
  list(): string[];
  /** `ssh-add -d <keyPath>`. */
  remove(keyPath: string): void;
  /** `ssh-add -D`. */
  removeAll(): void;
  log(): string;
  stop(): Promise<void>;
  readonly running: boolean;
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Starts OpenSSH's ssh-agent in the foreground (`ssh-agent -D -a <dir>/agent.sock`) and waits until
 * its socket accepts connections. ssh-agent accepts clients of its own uid (and root) only.
 */
export async function startAgent(options: AgentOptions = {}): Promise<Agent> {
  const dir = makeTempDir('agent');
  const socketPath = join(dir, 'agent.sock');
  const askpass = join(dir, 'askpass');
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$PTS_ASKPASS_PASSPHRASE"\n', { mode: 0o700 });
  const args = [options.debug ? '-d' : '-D', '-a', socketPath];
  if (options.lifetime !== undefined) args.push('-t', String(options.lifetime));
  const peer = new PeerProcess('ssh-agent', SSH_AGENT, args, join(dir, 'ssh-agent.log'), { env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } });
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (!peer.running) throw new PeerStartError(peer, 'exited before its socket accepted connections');
      if (await canConnect(socketPath)) break;
      if (Date.now() > deadline) throw new PeerStartError(peer, `socket ${socketPath} not ready within ${READY_TIMEOUT_MS} ms`);
      await sleep(25);
    }
  } catch (e) {
    await peer.stop(500);
    removeTempDir(dir);
    throw e;
  }

  const sshAdd = (args: string[], extraEnv: Record<string, string> = {}, okStatuses = [0]) => {
    const r = spawnSync(SSH_ADD, args, {
      env: { PATH: '/usr/bin:/bin', SSH_AUTH_SOCK: socketPath, ...extraEnv },
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.error) throw r.error;
    if (!okStatuses.includes(r.status ?? -1)) {
      throw new Error(`ssh-add ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
    }
    return r;
  };

  return {
    socketPath,
    pid: peer.pid,
    dir,
    env: { SSH_AUTH_SOCK: socketPath },
    add(keyPath, addOptions = {}) {
      const a = ['-q'];
      if (addOptions.lifetime !== undefined) a.push('-t', String(addOptions.lifetime));
      a.push(keyPath);
      const env: Record<string, string> =
        addOptions.passphrase !== undefined
          ? { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', PTS_ASKPASS_PASSPHRASE: addOptions.passphrase }
          : { SSH_ASKPASS_REQUIRE: 'never' };
      sshAdd(a, env);
    },
    list() {
      // Exit status 1 and "The agent has no identities." when empty.
      const r = sshAdd(['-L'], {}, [0, 1]);
      if (r.status === 1) return [];
      return r.stdout
        .toString()
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '');
    },
    remove(keyPath) {
      sshAdd(['-q', '-d', keyPath]);
    },
    removeAll() {
      sshAdd(['-q', '-D']);
    },
    log: () => peer.log(),
    stop: once(async () => {
      await peer.stop();
      removeTempDir(dir);
    }),
    get running() {
      return peer.running;
    },
  };
}
