/**
 * Real clients against this library's server (the embedded SSHServer, which is Transport's
 * server mode with a policy in the worker): OpenSSH's ssh with every algorithm and auth method,
 * PuTTY's plink, Dropbear's dbclient, Paramiko's and AsyncSSH's clients, and ssh-audit.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECDSAKey, Ed25519Key, PKey, RSAKey, SSHServer } from '../lib';
import { LEGACY_CIPHERS } from '../lib/crypto/ciphers';
import { LEGACY_MACS } from '../lib/crypto/macs';
import { itWithPeers, OPENSSH_ROOT } from './support/peers';
import { echoServer, roundTrip } from './support/echo';
import { CLEAN_ENV, runProcess } from './support/run-process';
import { asyncsshClient, dbclientExec, freePort, opensshExec, paramikoClient, plinkExec, sshAudit, startAgent } from './support/servers';
import type { ClientTarget, PtyStep } from './support/servers';

const PASSWORD = 'interop pass';
const USER = 'tester';
let dir: string;
/** Client keys by type, with their files. */
const keys: Array<{ name: string; key: PKey; path: string }> = [];
let server: SSHServer;
let target: ClientTarget;
/** Every key exchange the server runs, the NIST curves included (its defaults leave them out). */
const KEX = ['sntrup761x25519-sha512', 'sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group-exchange-sha256', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-interop-'));
  const made: Array<[string, PKey]> = [
    ['ed25519', Ed25519Key.generate()],
    ['ecdsa-256', ECDSAKey.generate({ curve: 'nistp256' })],
    ['ecdsa-384', ECDSAKey.generate({ curve: 'nistp384' })],
    ['ecdsa-521', ECDSAKey.generate({ curve: 'nistp521' })],
    ['rsa', RSAKey.generate(2048)],
  ];
  for (const [name, key] of made) {
    const path = join(dir, `id_${name}`);
    key.comment = `${name}@interop`; // as ssh-keygen gives: Paramiko misreads some key files without one
    key.writePrivateKeyFile(path);
    keys.push({ name, key, path });
  }
  // Every host key type, and every algorithm the client side supports (the server defaults
  // leave out NIST kex, SHA-1 MACs and ssh-rsa; this server enables them for the matrix).
  server = SSHServer.start({
    users: { [USER]: { password: PASSWORD, authorizedKeys: keys.map((k) => k.key) } },
    hostKeys: [Ed25519Key.generate(), ECDSAKey.generate({ curve: 'nistp256' }), ECDSAKey.generate({ curve: 'nistp384' }), ECDSAKey.generate({ curve: 'nistp521' }), RSAKey.generate(2048)],
    preferences: {
      kex: KEX,
      keys: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
      macs: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1-etm@openssh.com', 'hmac-sha1'],
    },
    // dash, with a prompt the pty scripts wait for.
    shell: '/bin/sh',
    env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', PS1: 'pts$ ' },
  });
  target = {
    host: server.host,
    port: server.port,
    user: { username: USER, password: PASSWORD },
    hostKeys: server.hostKeys.map((k) => ({ fingerprint: k.fingerprint })),
  };
});

afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ed25519 = () => keys[0].path;
const CMD = 'echo "out $((6*7))"; echo err >&2; exit 3';

/** A pty session: size, a resize, size again, exit 4. */
const RESIZE_SCRIPT: PtyStep[] = [
  { expect: 'pts$ ' },
  'stty size; echo S$((1+1))',
  { expect: 'S2' },
  { resize: { cols: 91, rows: 33 } },
  'stty size; echo S$((2+1))',
  { expect: 'S3' },
  'exit 4',
];

describe('OpenSSH ssh against SSHServer', () => {
  const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'];
  const MACS = ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1-etm@openssh.com', 'hmac-sha1'];
  const HOST_KEYS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

  const check = async (what: 'kex' | 'cipher' | 'mac' | 'hostKeyAlgorithm', alg: string, extra: Record<string, string> = {}) => {
    const r = await opensshExec(target, CMD, { identity: ed25519(), verbose: true, [what]: alg, ...extra });
    expect({ alg, status: r.status, stdout: r.stdout }).toEqual({ alg, status: 3, stdout: 'out 42\n' });
    expect(r.negotiated?.[what]).toBe(alg);
  };

  itWithPeers(['ssh'], 'every key exchange', async () => {
    for (const kex of KEX) await check('kex', kex);
  });
  itWithPeers(['ssh'], 'every cipher', async () => {
    for (const cipher of CIPHERS) await check('cipher', cipher);
  });
  itWithPeers(['ssh'], 'every MAC (with aes128-ctr)', async () => {
    for (const mac of MACS) await check('mac', mac, { cipher: 'aes128-ctr' });
  });
  itWithPeers(['ssh'], 'every host key algorithm', async () => {
    for (const alg of HOST_KEYS) await check('hostKeyAlgorithm', alg);
  });
  itWithPeers(['ssh'], 'the legacy CBC ciphers and truncated/MD5 MACs, on a server that names them (as an old device offers them)', async () => {
    const legacy = SSHServer.start({
      users: { [USER]: { password: PASSWORD, authorizedKeys: keys.map((k) => k.key) } },
      preferences: { ciphers: [...LEGACY_CIPHERS], macs: [...LEGACY_MACS] },
    });
    try {
      const old: ClientTarget = { ...target, host: legacy.host, port: legacy.port, hostKeys: legacy.hostKeys.map((k) => ({ fingerprint: k.fingerprint })) };
      const pairs = [...LEGACY_CIPHERS.map((c) => [c, 'hmac-sha1-96']), ...LEGACY_MACS.map((m) => ['aes128-cbc', m])];
      for (const [cipher, mac] of pairs) {
        const r = await opensshExec(old, CMD, { identity: ed25519(), verbose: true, cipher, mac });
        expect({ cipher, mac, status: r.status, stdout: r.stdout }).toEqual({ cipher, mac, status: 3, stdout: 'out 42\n' });
        expect(r.negotiated).toMatchObject({ cipher, mac });
      }
    } finally {
      legacy.close();
    }
  });

  itWithPeers(['ssh'], 'compression (zlib@openssh.com) and a rekey every MiB of a 16 MiB transfer', async () => {
    const data = randomBytes(16 << 20);
    const r = await opensshExec(target, 'sha256sum', { identity: ed25519(), input: data, options: ['Compression=yes', 'RekeyLimit=1M'], verbose: true, timeoutMs: 60000 });
    expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
    expect(r.log).toMatch(/compression: zlib@openssh.com/);
    expect((r.log!.match(/SSH2_MSG_NEWKEYS received/g) ?? []).length).toBeGreaterThan(3);
  });

  itWithPeers(['ssh'], 'key exchanges the server starts (rekeyBytes, as sshd\'s RekeyLimit) in the middle of an 8 MB output', async () => {
    const rekeying = SSHServer.start({ users: { [USER]: { password: PASSWORD, authorizedKeys: keys.map((k) => k.key) } }, rekeyBytes: 1 << 20, env: { PATH: '/usr/bin:/bin' } });
    try {
      const t: ClientTarget = { ...target, host: rekeying.host, port: rekeying.port, hostKeys: rekeying.hostKeys.map((k) => ({ fingerprint: k.fingerprint })) };
      const r = await opensshExec(t, 'head -c 8000000 /dev/zero', { identity: ed25519(), verbose: true, timeoutMs: 60000 });
      expect([r.status, r.stdout.length]).toEqual([0, 8_000_000]);
      // ssh starts none of its own (its limit is far off): each KEXINIT it receives after the first is ours.
      expect((r.log!.match(/SSH2_MSG_KEXINIT received/g) ?? []).length).toBeGreaterThan(3);
    } finally {
      rekeying.close();
    }
  });

  itWithPeers(['ssh'], 'password, keyboard-interactive, and every user key type', async () => {
    expect((await opensshExec(target, CMD, { password: PASSWORD })).status).toBe(3);
    const kbd = await opensshExec(target, CMD, { password: PASSWORD, kbdint: true });
    expect(kbd.status).toBe(3);
    expect(kbd.prompts.join()).toMatch(/Password/);
    for (const k of keys) {
      const r = await opensshExec(target, 'echo key-ok', { identity: k.path });
      expect({ key: k.name, out: r.stdout }).toEqual({ key: k.name, out: 'key-ok\n' });
    }
    expect((await opensshExec(target, CMD, { password: 'wrong' })).status).toBe(255);
  });

  itWithPeers(['ssh'], "an expired password (passwordExpired): ssh's old/new/retype prompts change it, and the new one logs in", async () => {
    const expiring = SSHServer.start({ users: { [USER]: { password: 'old pw', passwordExpired: true } }, env: { PATH: '/usr/bin:/bin', HOME: dir } });
    try {
      const at = { ...target, port: expiring.port, hostKeys: expiring.hostKeys.map((k) => ({ fingerprint: k.fingerprint })) };
      const changed = await opensshExec(at, 'echo changed', { password: 'old pw', newPassword: 'new pw' });
      expect(changed.stdout).toBe('changed\n');
      expect(changed.prompts.some((p) => /old password/.test(p))).toBe(true);
      expect((await opensshExec(at, 'echo again', { password: 'new pw' })).stdout).toBe('again\n');
      expect((await opensshExec(at, 'true', { password: 'old pw' })).status).toBe(255);
    } finally {
      expiring.close();
    }
  });

  itWithPeers(['ssh'], 'UpdateHostKeys: ssh learns every host key of ours from a known_hosts that holds one (hostkeys-00, proved by hostkeys-prove-00)', async () => {
    const lines = server.knownHosts().trim().split('\n');
    const ed = lines.filter((l) => l.includes(' ssh-ed25519 '));
    expect(ed).toHaveLength(1);
    const knownHostsFile = join(dir, 'known_hosts-update');
    writeFileSync(knownHostsFile, ed[0] + '\n');
    // ssh verifies with the ed25519 key it knows, then asks us to prove the four others (the RSA
    // one signed with rsa-sha2-512, as the exchange's host key is not RSA).
    const r = await opensshExec(target, 'echo updated', { identity: ed25519(), knownHostsFile, options: ['UpdateHostKeys=yes'], verbose: 3 });
    expect([r.status, r.stdout]).toEqual([0, 'updated\n']);
    expect(r.log).toMatch(/client_input_hostkeys: 5 server keys: 4 new/);
    expect(r.log).not.toMatch(/bad signature|failed to confirm|disregarding/);
    const learnt = readFileSync(knownHostsFile, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(1, 3).join(' '));
    expect(learnt.sort()).toEqual(lines.map((l) => l.split(' ').slice(1, 3).join(' ')).sort());
    // Next time nothing is new.
    const again = await opensshExec(target, 'true', { identity: ed25519(), knownHostsFile, options: ['UpdateHostKeys=yes'], verbose: 3 });
    expect(again.log).toMatch(/no new or deprecated keys from server/);
  });

  itWithPeers(['ssh'], 'TCP forwarding: ssh through our server as a jump host (-W, what -J runs), and -R back to a port here', async () => {
    const echo = await echoServer();
    try {
      // The jump: a ProxyCommand `ssh -W` through our server to our server itself (direct-tcpip),
      // then the real login over that channel.
      const hop = [
        `${OPENSSH_ROOT}/usr/bin/ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null`,
        `-o IdentityAgent=none -o IdentitiesOnly=yes -o LogLevel=ERROR -i ${ed25519()} -p ${server.port} -W %h:%p ${USER}@127.0.0.1`,
      ].join(' ');
      const jumped = await opensshExec(target, 'echo via the jump host', { identity: ed25519(), options: [`ProxyCommand=${hop}`] });
      expect([jumped.status, jumped.stdout, jumped.stderr]).toEqual([0, 'via the jump host\n', '']);
      // -W straight to the echo server here: 1 MiB through and back.
      const data = randomBytes(512 << 10).toString('hex');
      const w = await runProcess('/bin/sh', ['-c', hop.replace('%h:%p', `127.0.0.1:${echo.port}`)], { input: data, env: CLEAN_ENV, timeoutMs: 30000 });
      expect([w.code, w.stderr, w.stdout.length]).toEqual([0, '', data.length]);
      expect(w.stdout === data).toBe(true);
      // -R: the server listens on a port of ours; the command there connects to it and reaches
      // the echo server here through the client.
      const port = await freePort();
      const probe = `python3 -c "import socket; s = socket.create_connection(('127.0.0.1', ${port})); s.sendall(b'ping'); s.shutdown(1); print(s.recv(100).decode())"`;
      const back = await opensshExec(target, probe, { identity: ed25519(), options: [`RemoteForward=127.0.0.1:${port} 127.0.0.1:${echo.port}`, 'ExitOnForwardFailure=yes'] });
      expect([back.status, back.stdout, back.stderr]).toEqual([0, 'ping\n', '']);
      // -R for unix sockets: a socket on the server reaching one here.
      const sockets = mkdtempSync(join(tmpdir(), 'pts-sl-'));
      const unixEcho = await echoServer(join(sockets, 'echo.sock'));
      try {
        const remoteSock = join(sockets, 'remote.sock');
        const unixProbe = `python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.connect('${remoteSock}'); s.sendall(b'pong'); s.shutdown(1); print(s.recv(100).decode())"`;
        const viaPath = await opensshExec(target, unixProbe, { identity: ed25519(), options: [`RemoteForward=${remoteSock} ${join(sockets, 'echo.sock')}`, 'ExitOnForwardFailure=yes'] });
        expect([viaPath.status, viaPath.stdout, viaPath.stderr]).toEqual([0, 'pong\n', '']);
      } finally {
        await unixEcho.close();
        rmSync(sockets, { recursive: true, force: true });
      }
      // With forwarding off, both are refused.
      const closed = SSHServer.start({ users: { [USER]: { authorizedKeys: [keys[0].key] } }, forwarding: false });
      try {
        const t = { ...target, port: closed.port };
        const refused = await opensshExec(t, 'true', { identity: ed25519(), options: [`RemoteForward=127.0.0.1:${port} 127.0.0.1:${echo.port}`, 'ExitOnForwardFailure=yes'] });
        expect(refused.status).toBe(255);
        expect(refused.stderr).toMatch(/remote port forwarding failed/);
      } finally {
        closed.close();
      }
    } finally {
      await echo.close();
    }
  });

  itWithPeers(['ssh', 'ssh-agent'], 'agent forwarding (ssh -A): ssh-add -l in a session lists the client agent\'s keys; off, no SSH_AUTH_SOCK', async () => {
    const agent = await startAgent();
    try {
      agent.add(keys[1].path);
      const listed = await opensshExec(target, 'ssh-add -l; echo "sock=${SSH_AUTH_SOCK:+set}"', { identity: ed25519(), agentSocket: agent.socketPath, options: ['ForwardAgent=yes'] });
      expect(listed.stderr).toBe('');
      expect(listed.stdout).toContain(keys[1].key.fingerprint);
      expect(listed.stdout).toMatch(/sock=set\n$/);
      // Without -A the session has no agent.
      const plain = await opensshExec(target, 'echo "sock=${SSH_AUTH_SOCK:-none}"', { identity: ed25519(), agentSocket: agent.socketPath });
      expect(plain.stdout).toBe('sock=none\n');
      // With the option off, the request (ssh wants no reply to it) is refused: no agent either.
      const off = SSHServer.start({ users: { [USER]: { authorizedKeys: [keys[0].key] } }, agentForwarding: false, env: { PATH: '/usr/bin:/bin' } });
      try {
        const r = await opensshExec({ ...target, port: off.port }, 'echo "sock=${SSH_AUTH_SOCK:-none}"', { identity: ed25519(), agentSocket: agent.socketPath, options: ['ForwardAgent=yes'], verbose: true });
        expect(r.stdout).toBe('sock=none\n');
        expect(r.log).toMatch(/Requesting authentication agent forwarding/);
      } finally {
        off.close();
      }
    } finally {
      await agent.stop();
    }
  });

  itWithPeers(['ssh'], 'partial authentication: publickey, then password', async () => {
    const strict = SSHServer.start({
      users: { [USER]: { password: PASSWORD, authorizedKeys: [keys[0].key] } },
      authMethods: ['publickey', 'password'],
    });
    try {
      const t = { ...target, port: strict.port };
      const r = await opensshExec(t, 'echo both', { identity: ed25519(), password: PASSWORD, verbose: true });
      expect(r.stdout).toBe('both\n');
      expect(r.log).toMatch(/partial success/);
      // The key alone is not enough.
      expect((await opensshExec(t, 'echo one', { identity: ed25519() })).status).toBe(255);
    } finally {
      strict.close();
    }
  });

  itWithPeers(['ssh'], 'a pty shell: size, window-change, exit status', async () => {
    const r = await opensshExec(target, '', { identity: ed25519(), ptyScript: RESIZE_SCRIPT, pty: { cols: 120, rows: 40 } });
    expect(r.error ?? null).toBeNull();
    expect(r.stdout).toContain('40 120');
    expect(r.stdout).toContain('33 91');
    expect(r.status).toBe(4);
  });
});

describe('other clients against SSHServer', () => {
  itWithPeers(['plink', 'puttygen'], 'PuTTY plink: password, a converted key, a pty shell with resize', async () => {
    const pw = await plinkExec(target, CMD, { password: PASSWORD });
    expect([pw.status, pw.stdout.trim()]).toEqual([3, 'out 42']);
    const key = await plinkExec(target, 'echo key-ok', { identityOpenssh: keys[4].path });
    expect(key.stdout.trim()).toBe('key-ok');
    const pty = await plinkExec(target, '', { password: PASSWORD, ptyScript: RESIZE_SCRIPT, pty: { cols: 100, rows: 30 } });
    expect(pty.stdout).toContain('30 100');
    expect(pty.stdout).toContain('33 91');
    expect(pty.status).toBe(4);
  });

  itWithPeers(['dbclient'], 'Dropbear dbclient: password, a converted key, a pty shell with resize', async () => {
    const pw = await dbclientExec(target, CMD, { password: PASSWORD });
    expect([pw.status, pw.stdout.trim()]).toEqual([3, 'out 42']);
    const key = await dbclientExec(target, 'echo key-ok', { identityOpenssh: keys[0].path });
    expect(key.stdout.trim()).toBe('key-ok');
    const pty = await dbclientExec(target, '', { password: PASSWORD, ptyScript: RESIZE_SCRIPT, pty: { cols: 100, rows: 30 } });
    expect(pty.stdout).toContain('30 100');
    expect(pty.stdout).toContain('33 91');
    expect(pty.status).toBe(4);
  });

  itWithPeers(['dbclient'], 'Dropbear dbclient: -R to a port here reached from a command on the server, and -L through the server', async () => {
    const echo = await echoServer();
    try {
      const port = await freePort();
      const probe = `python3 -c "import socket; s = socket.create_connection(('127.0.0.1', ${port})); s.sendall(b'db'); s.shutdown(1); print(s.recv(100).decode())"`;
      const back = await dbclientExec(target, probe, { password: PASSWORD, extraArgs: ['-R', `${port}:127.0.0.1:${echo.port}`] });
      expect([back.status, back.stdout.trim()]).toEqual([0, 'db']);
      // -L: dbclient listens here and the server connects to the echo server (the same
      // direct-tcpip channel ssh -L opens); the command keeps the session up meanwhile.
      const localPort = await freePort();
      const session = dbclientExec(target, 'sleep 3', { password: PASSWORD, extraArgs: ['-L', `${localPort}:127.0.0.1:${echo.port}`] });
      let answer: Buffer | null = null;
      for (let i = 0; i < 40 && !answer; i++) {
        answer = await roundTrip(localPort, Buffer.from('through -L')).catch(() => null);
        if (!answer) await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer?.toString()).toBe('through -L');
      expect((await session).status).toBe(0);
    } finally {
      await echo.close();
    }
  });

  itWithPeers(['dbclient'], "Dropbear's guessed KEXDH_INIT: used when both sides list its kex first, ignored when not", async () => {
    // dbclient guesses curve25519-sha256 and sends its KEXDH_INIT before our KEXINIT arrives.
    // `target` lists sntrup761 first: a wrong guess, which must be dropped (the agreed kex is
    // still curve25519, and dbclient sends KEXDH_INIT again). Here the guess is right.
    const guessRight = SSHServer.start({
      users: { [USER]: { password: PASSWORD } },
      preferences: { kex: ['curve25519-sha256', 'diffie-hellman-group14-sha256'] },
      exec: (command) => ({ stdout: `ran ${command}\n`, status: 0 }),
    });
    try {
      const t = { ...target, host: guessRight.host, port: guessRight.port, hostKeys: guessRight.hostKeys.map((k) => ({ fingerprint: k.fingerprint })) };
      const r = await dbclientExec(t, 'x', { password: PASSWORD });
      expect([r.status, r.stdout]).toEqual([0, 'ran x\n']);
    } finally {
      guessRight.close();
    }
    const wrong = await dbclientExec(target, 'echo guessed', { password: PASSWORD });
    expect([wrong.status, wrong.stdout.trim()]).toEqual([0, 'guessed']);
  });

  for (const [name, run] of [['paramiko', paramikoClient], ['asyncssh', asyncsshClient]] as const) {
    itWithPeers([name], `${name}: password, keyboard-interactive, key, exit status, pty shell with resize`, async () => {
      const pw = await run(target, { password: PASSWORD, command: CMD });
      expect(pw.error).toBeNull();
      expect([pw.status, pw.stdout, pw.stderr]).toEqual([3, 'out 42\n', 'err\n']);
      expect(pw.hostKeyFingerprint).toBe(server.hostKeys.find((k) => k.getName() === pw.hostKeyType)?.fingerprint);
      const kbd = await run(target, { password: PASSWORD, kbdint: true, command: 'echo kbd' });
      expect([kbd.error, kbd.stdout]).toEqual([null, 'kbd\n']);
      const key = await run(target, { keyFile: keys[1].path, command: 'echo key' });
      expect([key.error, key.stdout]).toEqual([null, 'key\n']);
      const input = randomBytes(1 << 20);
      const cat = await run(target, { password: PASSWORD, command: 'sha256sum', input });
      expect(cat.stdout.split(' ')[0]).toBe(createHash('sha256').update(input).digest('hex'));
      const shell = await run(target, { password: PASSWORD, ptyScript: RESIZE_SCRIPT, pty: { cols: 110, rows: 35 } });
      expect(shell.error).toBeNull();
      expect(shell.stdout).toContain('35 110');
      expect(shell.stdout).toContain('33 91');
      expect(shell.status).toBe(4);
    });
  }
});

describe('ssh-audit against SSHServer with default settings', () => {
  itWithPeers(['ssh-audit'], 'reports no failure-level algorithm, and strict kex keeps Terrapin out', async () => {
    const plain = SSHServer.start({ users: { [USER]: PASSWORD } });
    try {
      const r = await sshAudit(plain.host, plain.port);
      expect(r.banner).toMatch(/^SSH-2.0-paramiko_ts/);
      expect(r.kex).toContain('curve25519-sha256');
      expect(r.failures).toEqual([]);
      expect(r.verdict === 'good' || r.verdict === 'warning').toBe(true);
      expect(r.terrapin.strictKex).toBe(true);
      expect(r.terrapin.vulnerable).toBe(false);
    } finally {
      plain.close();
    }
  });
});
