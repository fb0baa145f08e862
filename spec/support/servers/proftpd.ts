import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, KeyType } from './keys';
import { failStart, LOCALHOST, serverHandle, startDaemon, withPortRetry } from './ports';
import { isRoot, makeTempDir, removeTempDir } from './process';
import { HostKey, SshServer } from './types';
import { ensureTestUser } from './users';

export const PROFTPD = '/usr/sbin/proftpd';

export interface ProftpdOptions {
  /** Public key lines the test user may log in with from the start (more with `authorize`). */
  authorizedKeys?: string[];
  /** Host keys to generate (default ed25519, ecdsa, rsa). */
  hostKeyTypes?: KeyType[];
  /** More configuration lines. */
  extraConfig?: string[];
}

export interface ProftpdServer extends SshServer {
  kind: 'proftpd';
  /** mod_sftp's own log (SFTPLog): one line per exchange, auth, channel request. */
  sftpLog(): string;
}

/** A public key line in RFC 4716 form, the only one mod_sftp's SFTPAuthorizedUserKeys reads. */
function rfc4716(line: string): string {
  const [, b64] = line.trim().split(/\s+/);
  return ['---- BEGIN SSH2 PUBLIC KEY ----', ...(b64.match(/.{1,70}/g) ?? []), '---- END SSH2 PUBLIC KEY ----', ''].join('\n');
}

/**
 * Starts ProFTPD with mod_sftp (Debian's proftpd-core and proftpd-mod-crypto) in the foreground
 * on 127.0.0.1:<free port>: SFTP and SCP only (no shell, no exec), its own SSH implementation.
 * The test user logs in with its password (PAM/shadow) or a key of `authorize`. Needs root
 * (it switches to the user's uid).
 */
export async function startProftpd(options: ProftpdOptions = {}): Promise<ProftpdServer> {
  if (!isRoot()) throw new Error('startProftpd needs root (it logs users in by uid)');
  const user = ensureTestUser();
  const dir = makeTempDir('proftpd');
  try {
    const hostKeys: HostKey[] = [];
    for (const type of options.hostKeyTypes ?? ['ed25519', 'ecdsa', 'rsa']) {
      // mod_sftp reads RSA and ECDSA host keys in PEM, Ed25519 in OpenSSH's format.
      const k = generateKey(join(dir, `host_${type}`), type, type === 'ed25519' ? {} : { format: 'pem' });
      hostKeys.push(k);
    }
    const keysFile = join(dir, `${user.username}.keys`);
    const authorized: string[] = [];
    const authorize = (username: string, line: string) => {
      if (username !== user.username) throw new Error(`proftpd harness: can only authorize keys for ${user.username}`);
      authorized.push(rfc4716(line));
      writeFileSync(keysFile, authorized.join(''), { mode: 0o644 });
    };
    writeFileSync(keysFile, '', { mode: 0o644 });
    for (const k of options.authorizedKeys ?? []) authorize(user.username, k);
    const sftpLog = join(dir, 'sftp.log');

    return await withPortRetry(async (port) => {
      const config = [
        'ServerType standalone',
        'DefaultServer on',
        'LoadModule mod_sftp.c',
        `Port ${port}`,
        `DefaultAddress ${LOCALHOST}`,
        `PidFile ${join(dir, 'proftpd.pid')}`,
        `ScoreboardFile ${join(dir, 'scoreboard')}`,
        'DelayTable none',
        'WtmpLog off',
        'UseReverseDNS off',
        'User nobody',
        'Group nogroup',
        'RequireValidShell off',
        'SFTPEngine on',
        `SFTPLog ${sftpLog}`,
        ...hostKeys.map((k) => `SFTPHostKey ${k.path}`),
        'SFTPAuthMethods publickey password',
        `SFTPAuthorizedUserKeys file:${join(dir, '%u.keys')}`,
        'SFTPCompression delayed',
        '<Limit LOGIN>',
        '  AllowAll',
        '</Limit>',
        ...(options.extraConfig ?? []),
      ];
      const configPath = join(dir, 'proftpd.conf');
      writeFileSync(configPath, config.join('\n') + '\n', { mode: 0o644 });
      const { peer, banner } = await startDaemon('proftpd', PROFTPD, ['-n', '-c', configPath], join(dir, `proftpd-${port}.log`), port);
      const handle = serverHandle(peer, { kind: 'proftpd' as const, port, dir, banner, hostKeys, user }, authorize, () => removeTempDir(dir));
      return Object.assign(handle, { sftpLog: () => readLog(sftpLog) }) as ProftpdServer;
    });
  } catch (e) {
    return failStart(null, () => removeTempDir(dir), e);
  }
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // nothing logged yet
  }
}
