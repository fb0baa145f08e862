/**
 * Go's SSH stack (golang.org/x/crypto/ssh with github.com/pkg/sftp, as in Gitea, Teleport and
 * many cloud SFTP services) both ways: our client against a Go server, and a Go client against
 * our SSHServer. The Go programs are ours, in spec/support/go, built from Debian's packages.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationException, SSHServer } from '../lib';
import { echoServer, roundTrip } from './support/echo';
import { loginKnowing } from './support/our-client';
import { hasPeer, itWithPeers } from './support/peers';
import { generateKey } from './support/servers';
import { goClient, GoServer, startGoServer } from './support/servers/go';

let dir: string;
let userKey: ReturnType<typeof generateKey>;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-go-'));
  userKey = generateKey(join(dir, 'id_ed25519'), 'ed25519');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SSHClient against a Go (x/crypto/ssh) server', () => {
  let server: GoServer;
  beforeAll(async () => {
    if (!hasPeer('go')) return;
    server = await startGoServer({ authorizedKeys: [userKey.publicKey] });
  }, 120_000);
  afterAll(async () => server?.stop());

  itWithPeers(['go'], 'exec: output, stderr, exit status, 5 MB through stdin, env, a 30 MB stream', () => {
    using c = loginKnowing(server, userKey.path);
    expect(c.getTransport()!.remoteVersion).toBe('SSH-2.0-Go');
    const r = c.run('echo out; echo err >&2; exit 3');
    expect([r.stdout, r.stderr, r.exitStatus]).toEqual(['out\n', 'err\n', 3]);
    const data = randomBytes(5_000_000);
    expect(c.run('sha256sum', { input: data }).stdout).toBe(`${sha256(data)}  -\n`);
    expect(c.run('echo $PTS_GO', { environment: { PTS_GO: 'set' } }).stdout).toBe('set\n');
    const [, out] = c.execCommand('head -c 30000000 /dev/zero');
    expect(out.read().length).toBe(30_000_000);
    expect(out.channel.recvExitStatus()).toBe(0);
  });

  itWithPeers(['go'], "SFTP with pkg/sftp's server: put and get 8 MB exactly, listdir, stat, its extensions", () => {
    using c = loginKnowing(server, userKey.path);
    const sftp = c.openSftp();
    expect(sftp.extensions).toEqual(expect.arrayContaining(['posix-rename@openssh.com', 'statvfs@openssh.com']));
    const data = randomBytes(8_000_000);
    writeFileSync(join(dir, 'up.bin'), data);
    const remote = join(dir, 'remote.bin');
    sftp.put(join(dir, 'up.bin'), remote);
    expect(sftp.stat(remote).st_size).toBe(data.length);
    expect(sftp.listdir(dir)).toContain('remote.bin');
    // Many READDIRs, sent several at a time: every name once.
    const names = Array.from({ length: 1500 }, (_, i) => `n${i}`);
    mkdirSync(join(dir, 'many'));
    for (const n of names) writeFileSync(join(dir, 'many', n), '');
    expect(sftp.listdir(join(dir, 'many')).sort()).toEqual(names.sort());
    sftp.get(remote, join(dir, 'down.bin'));
    expect(sha256(readFileSync(join(dir, 'down.bin')))).toBe(sha256(data));
    sftp.posixRename(remote, join(dir, 'renamed.bin'));
    sftp.remove(join(dir, 'renamed.bin'));
    sftp.close();
  });

  itWithPeers(['go'], 'key exchanges the Go server starts every 2 MB, and ours, in the middle of a 40 MB stream each way', async () => {
    // (Run with NODE_DEBUG=paramiko-ts, a stream like this one logs ~16 "kex agreed" lines.)
    const rekeying = await startGoServer({ authorizedKeys: [userKey.publicKey], rekeyBytes: 2_000_000 });
    try {
      using c = loginKnowing(rekeying, userKey.path);
      const t = c.getTransport()!;
      const data = randomBytes(40_000_000);
      const chan = t.openSession();
      chan.settimeout(60);
      chan.execCommand('sha256sum; head -c 40000000 /dev/zero');
      let sent = 0;
      while (sent < data.length) {
        sent += chan.send(data.subarray(sent, sent + (1 << 20)));
        if (sent >= 20_000_000 && sent < 21_000_000) t.renegotiateKeys(); // ours, once, half way
      }
      chan.shutdownWrite();
      const out = chan.makefile('rb').read();
      expect(out.subarray(0, 64).toString()).toBe(sha256(data));
      expect(out.length).toBe(64 + 4 + 40_000_000);
      expect(chan.recvExitStatus()).toBe(0);
      expect(t.isActive()).toBe(true);
    } finally {
      await rekeying.stop();
    }
  });

  itWithPeers(['go'], 'direct-tcpip through it: forwardLocalPort to an echo server, 1 MB each way', async () => {
    const echo = await echoServer();
    using c = loginKnowing(server, userKey.path);
    const fwd = c.forwardLocalPort('127.0.0.1', 0, '127.0.0.1', echo.port);
    try {
      const data = randomBytes(1_000_000);
      expect((await roundTrip(fwd.port, data)).equals(data)).toBe(true);
    } finally {
      fwd.close();
      await echo.close();
    }
  });

  itWithPeers(['go'], 'password login; a key it does not know is refused', () => {
    using p = loginKnowing(server, undefined, { password: server.user.password });
    expect(p.run('echo pw').stdout).toBe('pw\n');
    const stranger = generateKey(join(dir, 'stranger'), 'ed25519');
    expect(() => loginKnowing(server, stranger.path)).toThrow(AuthenticationException);
  });
});

describe('a Go (x/crypto/ssh) client against SSHServer', () => {
  let server: SSHServer;
  let root: string;
  let hostKeyLine: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'pts-go-root-'));
    server = SSHServer.start({ users: { u: { password: 'pw', authorizedKeys: [userKey.publicKey] } }, sftp: { root }, shell: '/bin/sh' });
    const key = server.hostKeys.find((k) => k.getName() === 'ssh-ed25519')!;
    hostKeyLine = `${key.getName()} ${key.getBase64()}`;
  });
  afterAll(() => {
    server?.close();
    rmSync(root, { recursive: true, force: true });
  });
  const to = (...auth: string[]) => ['-addr', `127.0.0.1:${server.port}`, '-user', 'u', '-hostkey', hostKeyLine, ...auth];

  itWithPeers(['go'], 'exec with a password and with a key: output, stderr, exit status, stdin', async () => {
    const r = await goClient([...to('-password', 'pw'), 'exec', 'echo out; echo err >&2; exit 5']);
    expect([r.code, r.stdout, r.stderr]).toEqual([5, 'out\n', 'err\n']);
    const k = await goClient([...to('-key', userKey.path), 'exec', 'tr a-z A-Z'], 'from go\n');
    expect([k.code, k.stdout]).toEqual([0, 'FROM GO\n']);
  });

  itWithPeers(['go'], "its direct-tcpip (client.Dial) through our server to an echo server", async () => {
    const echo = await echoServer();
    try {
      const r = await goClient([...to('-password', 'pw'), 'dial', `127.0.0.1:${echo.port}`], 'echoed through Go\n');
      expect([r.code, r.stdout]).toEqual([0, 'echoed through Go\n']);
    } finally {
      await echo.close();
    }
  });

  itWithPeers(['go'], "pkg/sftp's client: a 6 MB file written and read back exactly", async () => {
    const data = randomBytes(6_000_000);
    writeFileSync(join(dir, 'go-up.bin'), data);
    const r = await goClient([...to('-password', 'pw'), 'sftp-roundtrip', join(dir, 'go-up.bin'), '/go.bin']);
    expect([r.code, r.stdout]).toEqual([0, `${data.length} ${sha256(data)}\n`]);
    expect(readFileSync(join(root, 'go.bin')).equals(data)).toBe(true);
  });
});
