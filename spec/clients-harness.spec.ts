import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasPeer, itWithPeers, PeerName } from './support/peers';
import {
  asyncsshClient,
  dbclientExec,
  freePort,
  generateKey,
  KeyPair,
  opensshExec,
  paramikoClient,
  paramikoExec,
  pidAlive,
  plinkExec,
  PtyStep,
  PythonServer,
  sshAudit,
  SshdServer,
  startAsyncsshServer,
  startSshd,
  terrapinCheck,
} from './support/servers';
import { sleepSync } from './support/servers/process';

// Tests of the reference-client harness (spec/support/servers/clients.ts) against OpenSSH's sshd:
// each client logs in by password and by key, runs a command, reports output and exit status; the
// pty modes show the terminal size asked for and, after a resize, the new one; ssh-audit's report
// is parsed.

let dir: string;
let key: KeyPair;
let ecdsaKey: KeyPair;
let sshd: SshdServer;
/** AuthenticationMethods publickey,password. */
let twoFactor: SshdServer;

const have = (...peers: PeerName[]) => peers.every((p) => hasPeer(p));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pts-clients-spec-'));
  if (!have('sshd', 'ssh-keygen')) return;
  key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
  ecdsaKey = generateKey(join(dir, 'id_ecdsa'), 'ecdsa');
  // The tests pick diffie-hellman-group14-sha256, which sshd 10 no longer offers by default
  // (PARAMIKO_TS_OPENSSH=10 runs them against it).
  const kex = '+diffie-hellman-group14-sha256';
  [sshd, twoFactor] = await Promise.all([
    startSshd({ kex, authorizedKeys: [key.publicKey, ecdsaKey.publicKey] }),
    startSshd({ kex, authenticationMethods: 'publickey,password', authorizedKeys: [key.publicKey] }),
  ]);
});
afterAll(async () => {
  await Promise.all([sshd?.stop(), twoFactor?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** The test user's password (null when not root: no password logins then). */
function password(): string | null {
  const p = sshd.user.password;
  if (p === null) console.warn('NOTICE: not root, no password for the test user: password logins not tested');
  return p;
}

/** Live processes whose command line contains `token` (Linux /proc). */
function livePidsWith(token: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(token) && pidAlive(Number(e));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The interactive script every pty test runs: size, TERM, resize, size again, exit 3. */
const RESIZE_SCRIPT: PtyStep[] = [
  'stty size; echo "T=$TERM"; echo D$((1+1))',
  { expect: 'D2' },
  { resize: { cols: 132, rows: 43 } },
  'stty size; exit 3',
];

/** The output of RESIZE_SCRIPT: the first size, then the second (the echo of the input contains neither). */
function expectResized(out: string, term: string | null) {
  // A line may start with the shell's prompt ("$ 30 100"): the input arrived before it was printed.
  const lines = out.split(/\r?\n/).map((l) => l.trim());
  const first = lines.findIndex((l) => /(^|\s)30 100$/.test(l));
  const second = lines.findIndex((l) => /(^|\s)43 132$/.test(l));
  expect({ first: first >= 0, second: second > first }).toEqual({ first: true, second: true });
  if (term) expect(lines).toContain(`T=${term}`);
}

describe('opensshExec', () => {
  itWithPeers(['sshd', 'ssh'], 'password, keyboard-interactive and publickey logins: stdin, stdout, stderr, exit status', async () => {
    const pw = password();
    const [byKey, byPassword, byKbdint, wrong] = await Promise.all([
      opensshExec(sshd, 'id -un; exit 3', { identity: key.path }),
      pw === null ? null : opensshExec(sshd, 'cat; echo err >&2; exit 4', { password: pw, input: 'from stdin\n' }),
      pw === null ? null : opensshExec(sshd, 'echo kbd', { password: pw, kbdint: true }),
      pw === null ? null : opensshExec(sshd, 'true', { password: 'wrong' }),
    ]);
    expect([byKey.stdout, byKey.stderr, byKey.status, byKey.timedOut]).toEqual([`${sshd.user.username}\n`, '', 3, false]);
    expect(existsSync(byKey.tempDir)).toBe(false);
    if (pw === null) return;
    expect([byPassword!.stdout, byPassword!.stderr, byPassword!.status]).toEqual(['from stdin\n', 'err\n', 4]);
    expect(byPassword!.prompts).toEqual([expect.stringMatching(/password:$/)]);
    expect([byKbdint!.stdout, byKbdint!.status]).toEqual(['kbd\n', 0]);
    // PAM's prompt, through keyboard-interactive.
    expect(byKbdint!.prompts).toEqual([expect.stringMatching(/Password:$/)]);
    expect(wrong!.status).toBe(255);
    expect(wrong!.stderr).toMatch(/Permission denied/);
    await sshd.waitForLog(/Accepted password for/);
    await sshd.waitForLog(/Accepted keyboard-interactive\/pam for/);
  });

  itWithPeers(['sshd', 'ssh'], 'explicit algorithms, as the verbose log reports them', async () => {
    const rsa = sshd.hostKeys.find((k) => k.algorithm === 'ssh-rsa')!;
    const ecdsa = sshd.hostKeys.find((k) => k.algorithm === 'ecdsa-sha2-nistp256')!;
    const [a, b] = await Promise.all([
      opensshExec(sshd, 'echo a', { identity: key.path, verbose: true, kex: 'curve25519-sha256', cipher: 'aes256-gcm@openssh.com', hostKeyAlgorithm: 'rsa-sha2-512' }),
      opensshExec(sshd, 'echo b', {
        identity: ecdsaKey.path,
        verbose: true,
        kex: ['diffie-hellman-group14-sha256'],
        cipher: ['aes128-ctr'],
        mac: ['hmac-sha2-256-etm@openssh.com'],
        hostKeyAlgorithm: ['ecdsa-sha2-nistp256'],
      }),
    ]);
    expect([a.stdout, a.stderr, b.stdout, b.stderr]).toEqual(['a\n', '', 'b\n', '']);
    expect(a.negotiated).toMatchObject({
      kex: 'curve25519-sha256',
      cipher: 'aes256-gcm@openssh.com',
      mac: '<implicit>',
      hostKeyAlgorithm: 'rsa-sha2-512',
      hostKeyType: 'ssh-rsa',
      hostKeyFingerprint: rsa.fingerprint,
      authMethod: 'publickey',
    });
    expect(b.negotiated).toMatchObject({
      kex: 'diffie-hellman-group14-sha256',
      cipher: 'aes128-ctr',
      mac: 'hmac-sha2-256-etm@openssh.com',
      hostKeyAlgorithm: 'ecdsa-sha2-nistp256',
      hostKeyFingerprint: ecdsa.fingerprint,
    });
    expect(a.log).toMatch(/^debug1: /m);
  });

  itWithPeers(['sshd', 'ssh'], 'partial success: publickey, then password (AuthenticationMethods publickey,password)', async () => {
    const pw = password();
    const keyOnly = opensshExec(twoFactor, 'true', { identity: key.path });
    if (pw !== null) {
      const both = await opensshExec(twoFactor, 'echo both', { identity: key.path, password: pw, verbose: true });
      expect([both.stdout, both.status]).toEqual(['both\n', 0]);
      expect(both.negotiated).toMatchObject({ partialSuccess: true, authMethod: 'password' });
      expect(both.prompts).toHaveLength(1);
    }
    const r = await keyOnly;
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  itWithPeers(['sshd', 'ssh'], 'checks the host key against knownHostsFile', async () => {
    const good = join(dir, 'known_hosts_good');
    const bad = join(dir, 'known_hosts_bad');
    writeFileSync(good, sshd.knownHosts());
    writeFileSync(bad, `[${sshd.host}]:${sshd.port} ${generateKey(join(dir, 'wrong_host'), 'ed25519').publicKey}\n`);
    const [ok, refused] = await Promise.all([
      opensshExec(sshd, 'echo ok', { identity: key.path, knownHostsFile: good }),
      opensshExec(sshd, 'echo ok', { identity: key.path, knownHostsFile: bad, hostKeyAlgorithm: 'ssh-ed25519' }),
    ]);
    expect([ok.stdout, ok.status]).toEqual(['ok\n', 0]);
    expect(refused.status).toBe(255);
    expect(refused.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  itWithPeers(['sshd', 'ssh', 'paramiko'], 'ptyScript: ssh -tt on a terminal of the given size, resized, exit status (key and password)', async () => {
    const pw = password();
    const [byKey, byPassword] = await Promise.all([
      opensshExec(sshd, '', { identity: key.path, ptyScript: RESIZE_SCRIPT, pty: { cols: 100, rows: 30, term: 'vt100' } }),
      pw === null ? null : opensshExec(sshd, '', { password: pw, ptyScript: ['stty size; exit 5'], pty: { cols: 100, rows: 30 } }),
    ]);
    expect(byKey.error).toBeNull();
    expectResized(byKey.stdout, 'vt100');
    expect(byKey.stdout).toContain('\r\n'); // a remote terminal: CRLF
    expect(byKey.status).toBe(3);
    if (byPassword) {
      expect(byPassword.stdout).toMatch(/(^|\s)30 100\r$/m);
      expect(byPassword.status).toBe(5);
      expect(byPassword.prompts).toHaveLength(1);
    }
  });

  itWithPeers(['sshd', 'ssh'], 'a client that outlives timeoutMs is killed; the promise resolves with what it wrote', async () => {
    const r = await opensshExec(sshd, 'echo started; exec sleep 9', { identity: key.path, timeoutMs: 1000 });
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGKILL', stdout: 'started\n' });
    expect(r.durationMs).toBeLessThan(5000);
    expect(pidAlive(r.pid)).toBe(false);
    expect(existsSync(r.tempDir)).toBe(false);
  });

  itWithPeers(['sshd', 'ssh'], 'the client starts before the call returns and runs while the main thread is blocked', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared, { recursive: true });
    chmodSync(dir, 0o755);
    chmodSync(shared, 0o777); // the remote command runs as the test user
    const marker = join(shared, 'marker');
    const p = opensshExec(sshd, `touch ${marker}`, { identity: key.path });
    // Block the main thread (as the library's server calls do) until the remote command ran.
    const deadline = Date.now() + 10_000;
    while (!existsSync(marker) && Date.now() < deadline) sleepSync(25);
    expect(existsSync(marker)).toBe(true);
    expect((await p).status).toBe(0);

    // The timeout holds while the main thread is blocked: coreutils timeout kills the client.
    const token = `pts-token-${process.pid}-${Date.now()}`;
    const q = opensshExec(sshd, `exec sleep 9 # ${token}`, { identity: key.path, timeoutMs: 500 });
    expect(livePidsWith(token).length).toBeGreaterThan(0);
    sleepSync(2500);
    expect(livePidsWith(token)).toEqual([]);
    const r = await q;
    expect(r.timedOut).toBe(true);
  });
});

describe('plinkExec', () => {
  itWithPeers(['sshd', 'plink', 'puttygen'], 'password (keyboard-interactive or password auth) and keys converted with puttygen; exit status', async () => {
    const pw = password();
    const [ed, ec, byPw, byPwNoKi] = await Promise.all([
      plinkExec(sshd, 'id -un; echo err >&2; exit 3', { identityOpenssh: key.path }),
      plinkExec(sshd, 'cat', { identityOpenssh: ecdsaKey.path, input: 'piped\n' }),
      pw === null ? null : plinkExec(sshd, 'echo pw; exit 4', { password: pw }),
      pw === null ? null : plinkExec(sshd, 'echo pw2', { password: pw, kbdint: false }),
    ]);
    expect([ed.stdout, ed.stderr, ed.status]).toEqual([`${sshd.user.username}\n`, 'err\n', 3]);
    expect([ec.stdout, ec.status]).toEqual(['piped\n', 0]);
    if (byPw && byPwNoKi) {
      expect([byPw.stdout, byPw.status]).toEqual(['pw\n', 4]);
      // plink prefers keyboard-interactive when the server offers it, and says so on stderr.
      expect(byPw.stderr).toMatch(/Keyboard-interactive authentication prompts from server/);
      expect([byPwNoKi.stdout, byPwNoKi.status, byPwNoKi.stderr]).toEqual(['pw2\n', 0, '']);
      await sshd.waitForLog(/Accepted password for/);
    }
  });

  itWithPeers(['sshd', 'plink', 'puttygen'], 'refuses a host key that is not the one given (-hostkey) without prompting', async () => {
    const other = generateKey(join(dir, 'plink_wrong_host'), 'ed25519');
    const r = await plinkExec(sshd, 'true', { identityOpenssh: key.path, hostKeyFingerprint: other.fingerprint, timeoutMs: 10_000 });
    expect(r.timedOut).toBe(false);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/host key/i);
  });

  itWithPeers(['sshd', 'plink', 'puttygen', 'paramiko'], 'a pty: -t, and a resized interactive session', async () => {
    const [tty, shell] = await Promise.all([
      plinkExec(sshd, 'tty', { identityOpenssh: key.path, pty: true }),
      plinkExec(sshd, '', { identityOpenssh: key.path, ptyScript: RESIZE_SCRIPT, pty: { cols: 100, rows: 30, term: 'vt220' } }),
    ]);
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
    expect(shell.error).toBeNull();
    // TERM comes from plink's TerminalType setting (a saved session), not from $TERM.
    expectResized(shell.stdout, 'vt220');
    expect(shell.status).toBe(3);
  });
});

describe('dbclientExec', () => {
  itWithPeers(['sshd', 'dbclient'], 'password (DROPBEAR_PASSWORD) and a key converted with dropbearconvert; exit status', async () => {
    const pw = password();
    const ed25519 = sshd.hostKeys.find((k) => k.algorithm === 'ssh-ed25519')!;
    const [byKey, strict, byPw] = await Promise.all([
      dbclientExec(sshd, 'id -un; echo err >&2; exit 3', { identityOpenssh: key.path }),
      dbclientExec(sshd, 'cat', { identityOpenssh: ecdsaKey.path, knownHostKeys: [ed25519.publicKey], input: 'piped\n' }),
      pw === null ? null : dbclientExec(sshd, 'echo pw; exit 4', { password: pw }),
    ]);
    expect([byKey.stdout, byKey.status]).toEqual([`${sshd.user.username}\n`, 3]);
    // dbclient's own notices share stderr with the remote's.
    expect(byKey.stderr).toMatch(/key accepted unconditionally/);
    expect(byKey.stderr).toMatch(/^err$/m);
    expect([strict.stdout, strict.status]).toEqual(['piped\n', 0]);
    expect(strict.stderr).not.toMatch(/accepted unconditionally/);
    if (byPw) expect([byPw.stdout, byPw.status]).toEqual(['pw\n', 4]);
  });

  itWithPeers(['sshd', 'dbclient'], 'strict checking refuses a different key of the same type', async () => {
    const other = generateKey(join(dir, 'db_wrong_host'), 'ed25519');
    const r = await dbclientExec(sshd, 'true', { identityOpenssh: key.path, knownHostKeys: [other.publicKey], timeoutMs: 10_000 });
    expect(r.timedOut).toBe(false);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/host key mismatch/);
  });

  itWithPeers(['sshd', 'dbclient', 'paramiko'], 'a pty: -t (on a terminal of its own), and a resized interactive session', async () => {
    const [tty, shell] = await Promise.all([
      dbclientExec(sshd, 'tty', { identityOpenssh: key.path, pty: true }),
      dbclientExec(sshd, '', { identityOpenssh: key.path, ptyScript: RESIZE_SCRIPT, pty: { cols: 100, rows: 30, term: 'vt100' } }),
    ]);
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
    expect(shell.error).toBeNull();
    expectResized(shell.stdout, 'vt100');
    expect(shell.status).toBe(3);
  });
});

for (const [peer, client] of [
  ['paramiko', paramikoClient],
  ['asyncssh', asyncsshClient],
] as const) {
  describe(`${peer}Client`, () => {
    itWithPeers(['sshd', peer], 'exec with password, keyboard-interactive and key: output, exit status, host key', async () => {
      const pw = password();
      const other = generateKey(join(dir, `unauthorized_${peer}`), 'ed25519');
      const [byKey, refused, byPw, byKbd] = await Promise.all([
        client(sshd, { keyFile: key.path, command: 'cat; echo err >&2; exit 3', input: 'in\n' }),
        client(sshd, { keyFile: other.path, command: 'true' }),
        pw === null ? null : client(sshd, { password: pw, command: 'echo pw; exit 4' }),
        pw === null ? null : client(sshd, { password: pw, kbdint: true, command: 'echo kbd' }),
      ]);
      expect([byKey.error, byKey.stdout, byKey.stderr, byKey.status]).toEqual([null, 'in\n', 'err\n', 3]);
      const hostKey = sshd.hostKeys.find((k) => k.fingerprint === byKey.hostKeyFingerprint);
      expect(hostKey).toBeDefined();
      expect(byKey.hostKeyType).toBe(hostKey!.algorithm);
      expect(refused.error).toMatch(/Authentication|PermissionDenied/);
      expect(refused.status).toBeNull();
      if (byPw && byKbd) {
        expect([byPw.error, byPw.stdout, byPw.status]).toEqual([null, 'pw\n', 4]);
        expect([byKbd.error, byKbd.stdout, byKbd.status]).toEqual([null, 'kbd\n', 0]);
      }
    });

    itWithPeers(['sshd', peer], 'algorithm choice, a pty for an exec, publickey then password (partial success)', async () => {
      const pw = password();
      const [algs, tty, both] = await Promise.all([
        client(sshd, { keyFile: key.path, command: 'true', kex: ['diffie-hellman-group14-sha256'], ciphers: ['aes256-ctr'], macs: ['hmac-sha2-512'] }),
        client(sshd, { keyFile: ecdsaKey.path, command: 'tty; stty size', pty: { cols: 90, rows: 20 } }),
        pw === null ? null : client(twoFactor, { keyFile: key.path, password: pw, command: 'echo both' }),
      ]);
      expect(algs.error).toBeNull();
      expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r\n20 90\r\n$/);
      expect([algs.kex, algs.cipher, algs.mac]).toEqual(['diffie-hellman-group14-sha256', 'aes256-ctr', 'hmac-sha2-512']);
      if (both) expect([both.error, both.stdout, both.status]).toEqual([null, 'both\n', 0]);
    });

    itWithPeers(['sshd', peer], 'shell on a pty of the given size, resized mid-session, exit status', async () => {
      const r = await client(sshd, { keyFile: key.path, ptyScript: RESIZE_SCRIPT, pty: { cols: 100, rows: 30, term: 'vt100' } });
      expect(r.error).toBeNull();
      expectResized(r.stdout, 'vt100');
      expect(r.status).toBe(3);
    });
  });
}

describe('paramikoExec', () => {
  itWithPeers(['sshd', 'paramiko'], 'keeps rejecting on failure, resolving with the output on success', async () => {
    const other = generateKey(join(dir, 'unauthorized_exec'), 'ed25519');
    await expect(paramikoExec(sshd, 'true', { keyFilename: other.path })).rejects.toThrow(/paramiko client: AuthenticationException/);
    const r = await paramikoExec(sshd, 'echo ok; exit 2', { keyFilename: key.path });
    expect([r.stdout, r.status]).toEqual(['ok\n', 2]);
  });
});

describe('sshAudit', () => {
  it('terrapinCheck follows ssh-audit 3.x', () => {
    expect(terrapinCheck(['curve25519-sha256'], ['chacha20-poly1305@openssh.com'], ['hmac-sha2-256'])).toEqual({ vulnerable: true, strictKex: false, chacha20: true, cbcEtm: false });
    expect(terrapinCheck(['curve25519-sha256', 'kex-strict-s-v00@openssh.com'], ['chacha20-poly1305@openssh.com'], [])).toMatchObject({ vulnerable: false, strictKex: true });
    expect(terrapinCheck([], ['aes128-cbc'], ['hmac-sha1-etm@openssh.com'])).toMatchObject({ vulnerable: true, cbcEtm: true });
    expect(terrapinCheck([], ['aes128-ctr', 'aes128-gcm@openssh.com'], ['hmac-sha2-256-etm@openssh.com'])).toMatchObject({ vulnerable: false });
  });

  itWithPeers(['sshd', 'ssh-audit'], "audits Debian's sshd: algorithm lists, fingerprints, findings, Terrapin", async () => {
    const r = await sshAudit(sshd.host, sshd.port);
    expect(r.timedOut).toBe(false);
    expect(r.json).not.toBeNull();
    expect(r.banner).toBe(sshd.banner);
    expect(r.software).toMatch(/^OpenSSH_/);
    expect(r.kex).toContain('curve25519-sha256');
    expect(r.hostKeyAlgorithms).toEqual(expect.arrayContaining(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512']));
    expect(r.ciphers).toContain('aes256-gcm@openssh.com');
    expect(r.macs).toContain('hmac-sha2-256-etm@openssh.com');
    // ssh-audit 2.5 fetches the ed25519 and RSA keys only (no ECDSA), RSA under 'ssh-rsa'.
    expect(r.fingerprints.map((f) => f.hostKeyType)).toEqual(expect.arrayContaining(['ssh-ed25519', 'ssh-rsa']));
    for (const f of r.fingerprints) expect(sshd.hostKeys).toContainEqual(expect.objectContaining({ algorithm: f.hostKeyType, fingerprint: f.sha256 }));
    // Every finding names an offered algorithm; failures are the fail-level ones.
    const offered = new Set([...r.kex, ...r.hostKeyAlgorithms, ...r.ciphers, ...r.macs]);
    expect(r.findings.length).toBeGreaterThan(0);
    for (const f of r.findings) expect(offered.has(f.algorithm)).toBe(true);
    expect(r.failures).toEqual(r.findings.filter((f) => f.level === 'fail'));
    expect([0, 2, 3]).toContain(r.exitCode);
    expect(r.verdict).toBe(r.exitCode === 3 ? 'failure' : r.exitCode === 2 ? 'warning' : 'good');
    if (r.failures.length) expect(r.exitCode).toBe(3);
    // OpenSSH offers chacha20-poly1305; strict kex (9.6, and Debian's security updates) protects it.
    expect(r.terrapin.chacha20).toBe(true);
    expect(r.terrapin.strictKex).toBe(r.kex.includes('kex-strict-s-v00@openssh.com'));
    expect(r.terrapin.vulnerable).toBe(!r.terrapin.strictKex);
  });

  itWithPeers(['asyncssh', 'ssh-audit'], 'flags Terrapin on a server offering chacha20-poly1305 without strict kex (AsyncSSH)', async () => {
    let server: PythonServer | null = null;
    try {
      server = await startAsyncsshServer();
      const r = await sshAudit(server.host, server.port);
      expect(r.ciphers).toContain('chacha20-poly1305@openssh.com');
      expect(r.terrapin).toMatchObject(terrapinCheck(r.kex, r.ciphers, r.macs));
      // AsyncSSH added strict kex in 2.14.2.
      if (!r.terrapin.strictKex) expect(r.terrapin.vulnerable).toBe(true);
    } finally {
      await server?.stop();
    }
  });

  itWithPeers(['ssh-audit'], 'reports a connection error', async () => {
    const r = await sshAudit('127.0.0.1', await freePort(), { timeoutMs: 15_000 });
    expect(r.exitCode).toBe(1);
    expect(r.verdict).toBe('connection-error');
    expect(r.json).toBeNull();
  });
});
