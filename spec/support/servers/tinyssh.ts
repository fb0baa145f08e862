import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { failStart, LOCALHOST, serverHandle, startDaemon, withPortRetry } from './ports';
import { exitCleanup, isRoot, makeTempDir, removeTempDir } from './process';
import { fingerprintOf } from './keys';
import { HostKey, SshServer } from './types';
import { addHomeAuthorizedKey, ensureTestUser, removeHomeAuthorizedKeys } from './users';

export const TINYSSHD = '/usr/sbin/tinysshd';
/** Runs a stdin/stdout server per TCP connection, as inetd or tcpserver would. */
const TCP_EXEC = join(__dirname, 'tcp-exec.js');

export interface TinysshdOptions {
  /** Ed25519 keys the test user may log in with from the start (more with `authorize`). */
  authorizedKeys?: string[];
}

export interface TinysshdServer extends SshServer {
  kind: 'tinysshd';
}

/**
 * Starts TinySSH (`tinysshd`, Debian's tinysshd) on 127.0.0.1:<free port>: a minimal server with
 * only ssh-ed25519 host and user keys, curve25519-sha256 and sntrup761x25519-sha512@openssh.com,
 * chacha20-poly1305@openssh.com, and no passwords. It speaks on stdin and stdout, so
 * spec/support/servers/tcp-exec.js runs one per connection; its sftp subsystem is OpenSSH's
 * sftp-server. Needs root: it logs users in by switching to their uid. Like Dropbear it reads
 * the user's real `~/.ssh/authorized_keys` (/home/pts-test): `authorize` appends there and stop()
 * removes the lines it added.
 */
export async function startTinysshd(options: TinysshdOptions = {}): Promise<TinysshdServer> {
  if (!isRoot()) throw new Error('startTinysshd needs root (it logs users in by uid)');
  const user = ensureTestUser();
  const dir = makeTempDir('tinysshd');
  const added: string[] = [];
  const removeKeys = exitCleanup(() => removeHomeAuthorizedKeys(user, added.splice(0)));
  try {
    const keyDir = join(dir, 'sshkeydir');
    execFileSync('/usr/sbin/tinysshd-makekey', [keyDir], { stdio: 'ignore' });
    const publicKey = execFileSync('/usr/sbin/tinysshd-printkey', [keyDir]).toString().trim();
    const hostKeys: HostKey[] = [
      { type: 'ed25519', path: join(keyDir, '.ed25519.sk'), publicKeyPath: null, publicKey, algorithm: 'ssh-ed25519', fingerprint: fingerprintOf(publicKey) },
    ];
    const authorize = (username: string, line: string) => {
      if (username !== user.username) throw new Error(`tinysshd harness: can only authorize keys for ${user.username}`);
      addHomeAuthorizedKey(user, line);
      added.push(line.trim());
    };
    for (const k of options.authorizedKeys ?? []) authorize(user.username, k);

    return await withPortRetry(async (port) => {
      const args = [TCP_EXEC, LOCALHOST, String(port), TINYSSHD, '-v', '-x', 'sftp=/usr/lib/openssh/sftp-server', keyDir];
      // TinySSH sends its identification only after the client's.
      const { peer, banner } = await startDaemon('tinysshd', process.execPath, args, join(dir, `tinysshd-${port}.log`), port, { stdinPipe: true, banner: { speakFirst: true } });
      return serverHandle(peer, { kind: 'tinysshd' as const, port, dir, banner, hostKeys, user }, authorize, () => {
        removeKeys();
        removeTempDir(dir);
      }) as TinysshdServer;
    });
  } catch (e) {
    return failStart(null, () => {
      removeKeys();
      removeTempDir(dir);
    }, e);
  }
}
