/**
 * OpenSSH 10 (bookworm-backports, unpacked by .ci/install-openssh10 beside the system's 9.2):
 * what current servers and clients run. Its default key exchange is mlkem768x25519-sha256
 * (ML-KEM-768 + X25519); it has no DSA. Our client against its sshd, and its ssh and sftp
 * against our server.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoAddPolicy, Ed25519Key, ECDSAKey, PKey, RSAKey, SSHClient, SSHServer, Transport } from '../lib';
import { hasPeer, itWithPeers, OPENSSH10_ROOT } from './support/peers';
import { generateKey, opensshExec, startSshd } from './support/servers';
import type { ClientTarget, PtyStep, SshdServer } from './support/servers';

const SSH10 = `${OPENSSH10_ROOT}/usr/bin/ssh`;
const SFTP10 = `${OPENSSH10_ROOT}/usr/bin/sftp`;
const HYBRIDS = ['mlkem768x25519-sha256', 'sntrup761x25519-sha512', 'sntrup761x25519-sha512@openssh.com'];

let dir: string;
let sshd: SshdServer;
let userKey: string;
let server: SSHServer;
let target: ClientTarget;
const USER = 'tester';
const PASSWORD = 'ten pass';
const clientKey = Ed25519Key.generate();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pts-openssh10-'));
  clientKey.writePrivateKeyFile(join(dir, 'id_ours'));
  server = SSHServer.start({
    users: { [USER]: { password: PASSWORD, authorizedKeys: [clientKey] } },
    hostKeys: [Ed25519Key.generate(), ECDSAKey.generate({ curve: 'nistp256' }), RSAKey.generate(2048)],
    sftp: { root: dir },
    shell: '/bin/sh',
    env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', PS1: 'pts$ ' },
  });
  target = { host: server.host, port: server.port, user: { username: USER, password: PASSWORD } };
  if (!hasPeer('openssh10')) return;
  const key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
  userKey = key.path;
  sshd = await startSshd({ openssh10: true, authorizedKeys: [key.publicKey], hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] });
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function client(options: Record<string, unknown> = {}): SSHClient {
  const c = new SSHClient();
  c.setMissingHostKeyPolicy(new AutoAddPolicy());
  c.connect(sshd.host, { port: sshd.port, username: sshd.user.username, keyFilename: userKey, lookForKeys: false, allowAgent: false, ...options });
  return c;
}

function output(c: SSHClient, cmd: string): string {
  const [, stdout] = c.execCommand(cmd);
  return stdout.read().toString();
}

describe('our client against OpenSSH 10 sshd', () => {
  itWithPeers(['openssh10'], 'agrees on mlkem768x25519-sha256 by default and runs a command', () => {
    using c = client();
    expect(c.getTransport()!.remoteVersion).toMatch(/^SSH-2\.0-OpenSSH_10\./);
    expect(c.getTransport()!.getNegotiated()!.kex).toBe('mlkem768x25519-sha256');
    expect(output(c, 'echo ten; uname -s')).toBe('ten\nLinux\n');
  });

  /** A transport to sshd restricted by `restrict` and started; `use` runs on it, then it closes. */
  function onTransport(restrict: (sec: ReturnType<Transport['getSecurityOptions']>) => void, use: (t: Transport) => void): void {
    const t = new Transport([sshd.host, sshd.port]);
    try {
      restrict(t.getSecurityOptions());
      t.startClient();
      use(t);
    } finally {
      t.close();
    }
  }

  function runOn(t: Transport, cmd: string): string {
    const chan = t.openSession();
    chan.execCommand(cmd);
    return chan.makefile().read().toString();
  }

  itWithPeers(['openssh10'], 'each hybrid and curve25519, with a rekey in the session', () => {
    for (const kex of [...HYBRIDS, 'curve25519-sha256']) {
      onTransport(
        (sec) => (sec.kex = [kex]),
        (t) => {
          t.authPublickey(sshd.user.username, PKey.fromPrivateKeyFile(userKey));
          expect(t.getNegotiated()!.kex).toBe(kex);
          t.renegotiateKeys();
          expect(runOn(t, `echo ${kex}`)).toBe(`${kex}\n`);
        },
      );
    }
  });

  itWithPeers(['openssh10'], 'password login through PAM, under every host key algorithm it serves', () => {
    for (const hostKey of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256']) {
      onTransport(
        (sec) => (sec.keyTypes = [hostKey]),
        (t) => {
          expect(t.getNegotiated()!.hostKey).toBe(hostKey);
          t.authPassword(sshd.user.username, sshd.user.password!);
          expect(runOn(t, 'echo pw')).toBe('pw\n');
        },
      );
    }
  });

  itWithPeers(['openssh10'], 'SFTP: a file goes up and comes back whole; listdir and stat agree with the disk', () => {
    using c = client();
    const sftp = c.openSftp();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const local = join(dir, 'up.bin');
    writeFileSync(local, data);
    const remote = `pts-ten-${randomBytes(6).toString('hex')}.bin`; // in the test user's home
    sftp.put(local, remote);
    expect(sftp.stat(remote).st_size).toBe(data.length);
    expect(sftp.listdir('.')).toContain(remote);
    const back = join(dir, 'back.bin');
    sftp.get(remote, back);
    expect(createHash('sha256').update(readFileSync(back)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    sftp.remove(remote);
    sftp.close();
  });
});

describe('OpenSSH 10 ssh and sftp against our server', () => {
  itWithPeers(['openssh10'], 'ssh agrees on mlkem768x25519-sha256 by default', async () => {
    const r = await opensshExec(target, 'echo from-ten', { binary: SSH10, identity: join(dir, 'id_ours'), verbose: true });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('from-ten\n');
    expect(r.status).toBe(0);
    expect(r.negotiated!.kex).toBe('mlkem768x25519-sha256');
    // OpenSSH 10.1 and later warn when the exchange is not post-quantum: nothing to warn about here.
    expect(r.log).not.toMatch(/post-quantum/i);
  });

  itWithPeers(['openssh10'], 'ssh with each hybrid forced, and with each host key type', async () => {
    for (const kex of HYBRIDS) {
      const r = await opensshExec(target, `echo ${kex}`, { binary: SSH10, identity: join(dir, 'id_ours'), kex, verbose: true });
      expect({ kex, out: r.stdout, negotiated: r.negotiated!.kex }).toEqual({ kex, out: `${kex}\n`, negotiated: kex });
    }
    for (const hostKey of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512']) {
      const r = await opensshExec(target, 'echo hk', { binary: SSH10, password: PASSWORD, hostKeyAlgorithm: hostKey, verbose: true });
      expect({ hostKey, out: r.stdout, negotiated: r.negotiated!.hostKeyAlgorithm }).toEqual({ hostKey, out: 'hk\n', negotiated: hostKey });
    }
  });

  itWithPeers(['openssh10'], "ssh's keystroke timing obfuscation is on: our server offers ping@openssh.com and answers the chaff", async () => {
    // OpenSSH 9.5+ sends SSH2_MSG_PING chaff while the user types, only to servers that offer
    // the extension (without it, ssh logs "0 chaff packets sent").
    const typing: PtyStep[] = [{ expect: 'pts$ ' }, { send: 'e' }, { sleep: 60 }, { send: 'c' }, { sleep: 60 }, { send: 'ho T$((3+4))\n' }, { expect: 'T7' }, { sleep: 200 }, 'exit 5'];
    const r = await opensshExec(target, '', { binary: SSH10, identity: join(dir, 'id_ours'), verbose: 3, ptyScript: typing });
    expect(r.error ?? null).toBeNull();
    expect(r.stdout).toContain('T7');
    expect(r.status).toBe(5);
    expect(r.log).toMatch(/kex_ext_info_check_ver: ping@openssh\.com=<0>/);
    const chaff = /obfuscate_keystroke_timing: stopping: .*\((\d+) chaff packets sent\)/.exec(r.log!);
    expect(Number(chaff?.[1])).toBeGreaterThan(0);
  });

  itWithPeers(['openssh10'], 'sftp puts and gets a file through our server', () => {
    const data = randomBytes(2 * 1024 * 1024 + 5);
    writeFileSync(join(dir, 'src.bin'), data);
    const batch = join(dir, 'batch');
    writeFileSync(batch, `put ${join(dir, 'src.bin')} /copied.bin\nget /copied.bin ${join(dir, 'fetched.bin')}\nls -l /copied.bin\n`);
    const r = spawnSync(
      SFTP10,
      ['-F', '/dev/null', '-b', batch, '-o', 'LogLevel=ERROR', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes', '-i', join(dir, 'id_ours'), '-P', String(server.port), `${USER}@${server.host}`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, 'copied.bin')).equals(data)).toBe(true);
    expect(readFileSync(join(dir, 'fetched.bin')).equals(data)).toBe(true);
  });
});
