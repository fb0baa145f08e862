import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateDropbearKey, KeyType } from './keys';
import { failStart, LOCALHOST, startDaemon, withPortRetry } from './ports';
import { exitCleanup, isRoot, makeTempDir, once, removeTempDir } from './process';
import { authorizeArgs, HostKey, knownHostsText, SshServer } from './types';
import { addHomeAuthorizedKey, ensureTestUser, removeHomeAuthorizedKeys, TestUser } from './users';

export const DROPBEAR = '/usr/sbin/dropbear';

export interface DropbearOptions {
  /** Host keys to generate with dropbearkey (default ed25519, ecdsa (nistp256), rsa (3072)). */
  hostKeyTypes?: KeyType[];
  /** false: -s (no password logins). */
  passwordAuthentication?: boolean;
  /** -K: keepalive interval in seconds. */
  keepalive?: number;
  /** -I: idle timeout in seconds. */
  idleTimeout?: number;
  /** -W: receive window in bytes. */
  receiveWindow?: number;
  /** -b: pre-authentication banner text. */
  banner?: string;
  /** Keys the test user may log in with from the start (more with `authorize`). */
  authorizedKeys?: string[];
  /** More command-line arguments. */
  extraArgs?: string[];
}

export interface DropbearServer extends SshServer {
  kind: 'dropbear';
  args: string[];
}

/**
 * Starts Dropbear in the foreground on 127.0.0.1:<free port> (`dropbear -F -E -m -p ... -r ...`)
 * with fresh host keys (dropbear format, made by dropbearkey). Needs root: dropbear logs users in
 * by switching to their uid, and checks passwords against /etc/shadow.
 *
 * Dropbear has no AuthorizedKeysFile option: `authorize` appends to `~/.ssh/authorized_keys` in the
 * user's real home (/home/pts-test), shared by every dropbear started anywhere on the machine;
 * stop() removes the lines it added. Dropbear's sftp subsystem runs /usr/lib/sftp-server, which
 * Debian's openssh-sftp-server provides (a link to /usr/lib/openssh/sftp-server).
 */
export async function startDropbear(options: DropbearOptions = {}): Promise<DropbearServer> {
  if (!isRoot()) throw new Error('startDropbear needs root (it logs users in by uid and reads /etc/shadow)');
  const user = ensureTestUser();
  const dir = makeTempDir('dropbear');
  const added: Array<{ user: TestUser; key: string }> = [];
  // Also at process exit, should a test never call stop().
  const removeKeys = exitCleanup(() => {
    for (const { user: u, key } of added.splice(0)) removeHomeAuthorizedKeys(u, [key]);
  });
  try {
    const hostKeys: HostKey[] = [];
    for (const type of options.hostKeyTypes ?? ['ed25519', 'ecdsa', 'rsa']) {
      const k: HostKey = generateDropbearKey(join(dir, `dropbear_${type}_host_key`), type);
      k.publicKeyPath = `${k.path}.pub`;
      writeFileSync(k.publicKeyPath, `${k.publicKey} pts-test host key\n`, { mode: 0o644 });
      hostKeys.push(k);
    }
    const authorize = (username: string, line: string) => {
      const u = username === user.username ? user : null;
      if (!u) throw new Error(`dropbear harness: can only authorize keys for ${user.username}`);
      addHomeAuthorizedKey(u, line);
      added.push({ user: u, key: line.trim() });
    };
    for (const k of options.authorizedKeys ?? []) authorize(user.username, k);

    return await withPortRetry(async (port) => {
      const args = ['-F', '-E', '-m', '-p', `${LOCALHOST}:${port}`, '-P', join(dir, 'dropbear.pid')];
      for (const k of hostKeys) args.push('-r', k.path);
      if (options.passwordAuthentication === false) args.push('-s');
      if (options.keepalive !== undefined) args.push('-K', String(options.keepalive));
      if (options.idleTimeout !== undefined) args.push('-I', String(options.idleTimeout));
      if (options.receiveWindow !== undefined) args.push('-W', String(options.receiveWindow));
      if (options.banner !== undefined) {
        const f = join(dir, 'banner');
        writeFileSync(f, options.banner);
        args.push('-b', f);
      }
      args.push(...(options.extraArgs ?? []));
      const { peer, banner } = await startDaemon('dropbear', DROPBEAR, args, join(dir, `dropbear-${port}.log`), port);
      const server: DropbearServer = {
        kind: 'dropbear',
        host: LOCALHOST,
        port,
        pid: peer.pid,
        dir,
        banner,
        hostKeys,
        user,
        args,
        authorize: (a: string, b?: string) => authorize(...authorizeArgs(user.username, a, b)),
        knownHosts: () => knownHostsText(LOCALHOST, port, hostKeys),
        log: () => peer.log(),
        waitForLog: (pattern: RegExp, timeoutMs = 5000) => peer.waitForLine(pattern, timeoutMs),
        stop: once(async () => {
          await peer.stop();
          removeKeys();
          removeTempDir(dir);
        }),
        get running() {
          return peer.running;
        },
      };
      return server;
    });
  } catch (e) {
    return failStart(null, () => {
      removeKeys();
      removeTempDir(dir);
    }, e);
  }
}
