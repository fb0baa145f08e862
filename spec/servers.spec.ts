import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasPeer, itWithPeers, PeerName, runPeer } from './support/peers';
import {
  Agent,
  DropbearServer,
  generateKey,
  isRoot,
  KeyPair,
  opensshExec,
  paramikoExec,
  pidAlive,
  PythonServer,
  signCertificate,
  SshdServer,
  SshServer,
  startAgent,
  startAsyncsshServer,
  startDropbear,
  startParamikoServer,
  startSshd,
  TEST_USERNAME,
} from './support/servers';

// Tests of the peer harnesses themselves (spec/support/servers), with reference clients (OpenSSH's
// ssh and sftp, Paramiko's client) since this library's client is not what is tested here.

let dir: string;
let key: KeyPair;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-servers-spec-'));
  if (hasPeer('ssh-keygen')) key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const have = (...peers: PeerName[]) => peers.every((p) => hasPeer(p));

/** After stop(): the process is gone, its temp dir removed, and stop() can be called again. */
async function expectStopped(server: { pid: number; dir: string; stop(): Promise<void>; running: boolean }) {
  await server.stop();
  expect(server.running).toBe(false);
  expect(pidAlive(server.pid)).toBe(false);
  expect(existsSync(server.dir)).toBe(false);
  await server.stop(); // idempotent
}

/** The common checks: publickey login with ssh, exit status, stdout, stderr, stdin. */
function commonTests(peers: PeerName[], get: () => SshServer) {
  itWithPeers([...peers, 'ssh'], 'accepts an authorized key (ssh -i): stdin and EOF, stdout, stderr, exit status', async () => {
    const server = get();
    server.authorize(server.user.username, key.publicKey);
    const r = await opensshExec(server, 'tr a-z A-Z; echo oops >&2; id -un; exit 3', { identity: key.path, input: 'hi\n' });
    expect({ out: r.stdout, err: r.stderr, status: r.status }).toEqual({ out: `HI\n${server.user.username}\n`, err: 'oops\n', status: 3 });
  });

  itWithPeers([...peers, 'ssh'], 'rejects a key that is not authorized', async () => {
    const server = get();
    const other = generateKey(join(dir, `other_${server.kind}`), 'ecdsa');
    const r = await opensshExec(server, 'true', { identity: other.path });
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  itWithPeers([...peers, 'ssh'], 'presents the host keys it reports (known_hosts check)', async () => {
    const server = get();
    const kh = join(dir, `known_hosts_${server.kind}`);
    writeFileSync(kh, server.knownHosts());
    const r = await opensshExec(server, 'echo ok', { identity: key.path, knownHostsFile: kh });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    for (const k of server.hostKeys) expect(k.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    // And a wrong key is refused.
    const wrong = generateKey(join(dir, `wrong_${server.kind}`), 'ed25519');
    const algs = [...new Set(server.hostKeys.map((k) => k.algorithm))];
    writeFileSync(kh, `[${server.host}]:${server.port} ${wrong.publicKey}\n`);
    const bad = await opensshExec(server, 'echo ok', { identity: key.path, knownHostsFile: kh, options: [`HostKeyAlgorithms=ssh-ed25519`] });
    if (algs.includes('ssh-ed25519')) expect(bad.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    expect(bad.status).toBe(255);
  });
}

/** Password (and keyboard-interactive) logins through Paramiko's client. */
function passwordTests(peers: PeerName[], get: () => SshServer, interactive: boolean) {
  itWithPeers([...peers, 'paramiko'], 'accepts the test user password (Paramiko client)', async () => {
    const server = get();
    if (server.user.password === null) return console.warn('NOTICE: not root, no password for the test user');
    const r = await paramikoExec(server, 'echo pw; exit 4', { password: server.user.password });
    expect([r.stdout, r.status]).toEqual(['pw\n', 4]);
    // Not against sshd: pam_unix delays every failure by 2 to 4.5 s.
    if (server.kind !== 'openssh') {
      await expect(paramikoExec(server, 'true', { password: 'wrong' })).rejects.toThrow(/AuthenticationException/);
    }
  });
  if (interactive) {
    itWithPeers([...peers, 'paramiko'], 'accepts keyboard-interactive with the password (Paramiko client)', async () => {
      const server = get();
      if (server.user.password === null) return console.warn('NOTICE: not root, no password for the test user');
      const r = await paramikoExec(server, 'echo kbd', { password: server.user.password, interactive: true });
      expect([r.stdout, r.status]).toEqual(['kbd\n', 0]);
    });
  }
}

describe('startSshd', () => {
  let server: SshdServer;
  beforeAll(async () => {
    if (have('sshd', 'ssh-keygen')) server = await startSshd();
  });
  afterAll(() => server?.stop());

  itWithPeers(['sshd'], 'listens on 127.0.0.1 with an OpenSSH banner, ed25519/ecdsa/rsa host keys', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.banner).toMatch(/^SSH-2\.0-OpenSSH_/);
    expect(server.hostKeys.map((k) => k.algorithm)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
    expect(server.config).toMatch(/^AuthorizedKeysFile .*\/authorized_keys\/%u$/m);
    if (isRoot()) expect(server.user.username).toBe(TEST_USERNAME);
    // The fingerprints are ssh-keygen's.
    const k = server.hostKeys[0];
    expect(runPeer('/usr/bin/ssh-keygen', ['-l', '-f', k.publicKeyPath!])).toContain(k.fingerprint);
  });

  commonTests(['sshd'], () => server);
  passwordTests(['sshd'], () => server, true);

  itWithPeers(['sshd', 'ssh'], 'logs in DEBUG1 to log()', async () => {
    expect(server.log()).toMatch(/Server listening on 127\.0\.0\.1 port \d+/);
    await server.waitForLog(/Accepted publickey for/);
    await expect(server.waitForLog(/no such line/, 100)).rejects.toThrow(/no line matching/);
  });

  itWithPeers(['sshd', 'sftp'], 'serves sftp', async () => {
    const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
      const c = spawn('/usr/bin/sftp', ['-F', '/dev/null', '-b', '-', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-i', key.path, '-P', String(server.port), `${server.user.username}@127.0.0.1`]);
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (out += d));
      c.on('close', (status) => resolve({ status, out }));
      c.stdin.end('pwd\n');
    });
    expect(r.out).toContain(`Remote working directory: ${server.user.home}`);
    expect(r.status).toBe(0);
  });

  itWithPeers(['sshd', 'ssh', 'ssh-keygen'], 'applies options: algorithms, user CA, host certificate, extra config', async () => {
    const ca = generateKey(join(dir, 'ca'), 'ed25519');
    const s = await startSshd({
      hostKeyTypes: ['ed25519'],
      ciphers: ['aes128-ctr'],
      kex: 'curve25519-sha256',
      macs: ['hmac-sha2-256'],
      trustedUserCAKeys: ca.publicKey,
      hostCertificate: { caKeyPath: ca.path },
      extraConfig: ['MaxAuthTries 3'],
    });
    try {
      expect(s.config).toMatch(/^MaxAuthTries 3$/m);
      expect(s.hostKeys[0].certificate).toMatch(/^ssh-ed25519-cert-v01@openssh\.com /);
      // A user certificate signed by the CA logs in without any authorized key.
      const u = generateKey(join(dir, 'certuser'), 'ed25519');
      signCertificate(ca.path, u.publicKeyPath, false, { principals: [s.user.username] });
      const kh = join(dir, 'known_hosts_ca');
      writeFileSync(kh, `@cert-authority [127.0.0.1]:${s.port} ${ca.publicKey}\n`);
      const ok = await opensshExec(s, 'echo cert', { identity: u.path, knownHostsFile: kh });
      expect([ok.stdout, ok.status]).toEqual(['cert\n', 0]);
      await s.waitForLog(/Accepted publickey for .* ED25519-CERT/);
      // The cipher list is enforced.
      const bad = await opensshExec(s, 'true', { identity: u.path, options: ['Ciphers=aes256-ctr', 'LogLevel=INFO'] });
      expect(bad.status).toBe(255);
      expect(bad.stderr).toMatch(/no matching cipher/);
      await s.waitForLog(/no matching cipher found\. Their offer: aes256-ctr/);
    } finally {
      await expectStopped(s);
    }
  });

  itWithPeers(['sshd'], 'fails to start with the peer output when the config is bad', async () => {
    await expect(startSshd({ hostKeyTypes: ['ed25519'], extraConfig: ['NoSuchOption yes'] })).rejects.toThrow(/Bad configuration option|NoSuchOption/);
  });

  itWithPeers(['sshd'], 'stop() kills the process and removes the temp dir', () => expectStopped(server));
});

describe('startDropbear', () => {
  let server: DropbearServer;
  beforeAll(async () => {
    if (have('dropbear', 'ssh-keygen') && isRoot()) server = await startDropbear({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa2048'] });
  });
  afterAll(() => server?.stop());

  itWithPeers(['dropbear'], 'listens with a Dropbear banner and its host keys', () => {
    if (!isRoot()) return console.warn('NOTICE: not root, dropbear harness not run');
    expect(server.banner).toMatch(/^SSH-2\.0-dropbear/);
    expect(server.hostKeys.map((k) => k.algorithm)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
  });

  if (isRoot()) {
    commonTests(['dropbear'], () => server);
    passwordTests(['dropbear'], () => server, false);
  }

  itWithPeers(['dropbear', 'ssh'], 'stop() removes the keys it added to ~/.ssh/authorized_keys', async () => {
    if (!isRoot()) return console.warn('NOTICE: not root, dropbear harness not run');
    const s = await startDropbear({ hostKeyTypes: ['ed25519'] });
    const k = generateKey(join(dir, 'dropbear_only'), 'ed25519');
    s.authorize(k.publicKey);
    const file = join(s.user.home, '.ssh', 'authorized_keys');
    expect(readFileSync(file, 'utf8')).toContain(k.publicKey);
    expect((await opensshExec(s, 'echo x', { identity: k.path })).stdout).toBe('x\n');
    await expectStopped(s);
    expect(readFileSync(file, 'utf8')).not.toContain(k.publicKey);
  });

  itWithPeers(['dropbear'], 'stop() kills the process and removes the temp dir', async () => {
    if (isRoot()) await expectStopped(server);
  });
});

for (const [name, peer, start] of [
  ['startParamikoServer', 'paramiko', startParamikoServer],
  ['startAsyncsshServer', 'asyncssh', startAsyncsshServer],
] as const) {
  describe(name, () => {
    let server: PythonServer;
    beforeAll(async () => {
      if (have(peer, 'ssh-keygen')) server = await start();
    });
    afterAll(() => server?.stop());

    itWithPeers([peer], 'prints READY and answers with its banner', () => {
      expect(server.banner).toMatch(peer === 'paramiko' ? /^SSH-2\.0-paramiko_2\./ : /^SSH-2\.0-AsyncSSH_2\./);
      expect(server.log()).toMatch(new RegExp(`^READY ${server.port}$`, 'm'));
    });

    commonTests([peer], () => server);
    passwordTests([peer], () => server, true);

    itWithPeers([peer, 'ssh'], 'runs a shell on a pty (ssh -tt)', async () => {
      const r = await opensshExec(server, 'tty; echo "$TERM"', { identity: key.path, options: ['RequestTTY=force'] });
      expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n\S+\r\n$/);
      expect(r.status).toBe(0);
    });

    itWithPeers([peer, 'ssh'], 'passes env requests and reports exit signals', async () => {
      const env = await opensshExec(server, 'echo "$PTS_X"', { identity: key.path, options: ['SetEnv=PTS_X=42'] });
      expect(env.stdout).toBe('42\n');
      const sig = await opensshExec(server, 'kill -TERM $$', { identity: key.path });
      expect(sig.status).toBe(255); // ssh exits 255 when the remote command died of a signal
    });

    itWithPeers([peer, 'ssh'], 'opens direct-tcpip channels (ssh -W)', async () => {
      expect(await opensshExecW(server, key.path)).toMatch(/^SSH-2\.0-/);
    });

    itWithPeers([peer, 'sftp'], 'serves sftp', async () => {
      const remote = `pts-spec-${peer}-${process.pid}.txt`;
      writeFileSync(join(dir, 'up.txt'), 'uploaded\n');
      const out = await sftpBatch(server, key.path, `put ${join(dir, 'up.txt')} ${remote}\nls -l ${remote}\nget ${remote} ${join(dir, `down-${peer}.txt`)}\nrm ${remote}\n`);
      expect(out.status).toBe(0);
      expect(readFileSync(join(dir, `down-${peer}.txt`), 'utf8')).toBe('uploaded\n');
    });

    itWithPeers([peer, 'ssh'], 'stop() kills the process and the commands it runs, removes the temp dir', async () => {
      const ssh = spawn('/usr/bin/ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-o', 'LogLevel=ERROR', '-i', key.path, '-p', String(server.port), `${server.user.username}@127.0.0.1`, 'echo $$; exec sleep 300']);
      const pid = await new Promise<number>((resolve) => ssh.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
      expect(pidAlive(pid)).toBe(true);
      const closed = new Promise((resolve) => ssh.on('close', resolve));
      await expectStopped(server);
      expect(pidAlive(pid)).toBe(false);
      await closed; // the client sees the connection end
    });
  });
}

/** `ssh -W 127.0.0.1:<port>` through the server to itself: returns the first line (the banner). */
function opensshExecW(server: SshServer, identity: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('/usr/bin/ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-o', 'LogLevel=ERROR', '-i', identity, '-W', `127.0.0.1:${server.port}`, '-p', String(server.port), `${server.user.username}@127.0.0.1`]);
    let out = '';
    let err = '';
    const timer = setTimeout(() => c.kill(), 10_000);
    c.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        c.kill();
        resolve(out.split('\n')[0].trim());
      }
    });
    c.stderr.on('data', (d) => (err += d));
    c.on('close', () => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`ssh -W: no banner; ${err}`));
    });
  });
}

function sftpBatch(server: SshServer, identity: string, batch: string): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('/usr/bin/sftp', ['-F', '/dev/null', '-b', '-', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-i', identity, '-P', String(server.port), `${server.user.username}@127.0.0.1`]);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', (status) => resolve({ status, out }));
    c.stdin.end(batch);
  });
}

describe('startAgent', () => {
  itWithPeers(['ssh-agent', 'sshd', 'ssh'], 'holds keys added with ssh-add, serves ssh, stops', async () => {
    const agent: Agent = await startAgent();
    const sshd = await startSshd({ hostKeyTypes: ['ed25519'] });
    try {
      expect(agent.list()).toEqual([]);
      const k = generateKey(join(dir, 'agent_key'), 'ecdsa', { passphrase: 'secret' });
      agent.add(k.path, { passphrase: 'secret' });
      expect(agent.list().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([k.publicKey]);
      sshd.authorize(k.publicKey);
      const r = await opensshExec(sshd, 'echo via-agent', { agentSocket: agent.socketPath });
      expect([r.stdout, r.status]).toEqual(['via-agent\n', 0]);
      agent.removeAll();
      expect(agent.list()).toEqual([]);
    } finally {
      await sshd.stop();
      await agent.stop();
    }
    expect(pidAlive(agent.pid)).toBe(false);
    expect(existsSync(agent.socketPath)).toBe(false);
  });
});

describe('leftover processes', () => {
  /** Runs a Node child that starts sshd through the harness (TypeScript compiled on the fly), then ends as told. */
  function childStartingSshd(ending: 'exit' | 'sigkill'): Promise<{ pid: number; dir: string }> {
    const runner = `
      const fs = require('fs'); const ts = require('typescript');
      require.extensions['.ts'] = (m, f) => m._compile(ts.transpileModule(fs.readFileSync(f, 'utf8'),
        { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, f);
      require(${JSON.stringify(join(__dirname, 'support', 'servers', 'sshd.ts'))})
        .startSshd({ hostKeyTypes: ['ed25519'] })
        .then((s) => {
          console.log(JSON.stringify({ pid: s.pid, dir: s.dir }));
          if (${JSON.stringify(ending)} === 'exit') process.exit(0); else process.kill(process.pid, 'SIGKILL');
        });`;
    return new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['-e', runner], { cwd: join(__dirname, '..') });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('close', () => {
        try {
          resolve(JSON.parse(out.trim()));
        } catch {
          reject(new Error(`child failed: ${out}${err}`));
        }
      });
    });
  }

  async function waitGone(pid: number, ms = 3000) {
    const deadline = Date.now() + ms;
    while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return !pidAlive(pid);
  }

  itWithPeers(['sshd'], "the 'exit' hook kills a server nobody stopped and removes its dir", async () => {
    const { pid, dir: d } = await childStartingSshd('exit');
    expect(await waitGone(pid)).toBe(true);
    expect(existsSync(d)).toBe(false);
  });

  itWithPeers(['sshd'], 'the parent-death signal kills the server when the test process is SIGKILLed', async () => {
    const { pid, dir: d } = await childStartingSshd('sigkill');
    try {
      expect(await waitGone(pid)).toBe(true);
    } finally {
      rmSync(d, { recursive: true, force: true }); // no hook ran to remove it
    }
  });
});
