import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationException, AutoAddPolicy, PKey, SSHClient, Transport } from '../lib';
import type { Channel } from '../lib';
import { decodeKexInit, DEFAULT_HOST_KEY_ALGORITHMS, defaultPreferences, keyTypeOfAlgorithm } from '../lib/transport/algorithms';
import type { KexInit } from '../lib/transport/algorithms';
import { INSECURE_KEX } from '../lib/transport/kex';
import { DEFAULT_MACS } from '../lib/crypto/macs';
import { DEFAULT_CIPHERS } from '../lib/crypto/ciphers';
import { hasPeer, itWithPeers, itWithRootPeers } from './support/peers';
import type { PeerName } from './support/peers';
import { generateKey, isRoot, startAsyncsshServer, startDropbear, startParamikoServer } from './support/servers';
import type { KeyType, SshServer } from './support/servers';
import { CONNECT, loginTo } from './support/our-client';

// Our SSHClient against the servers that are not OpenSSH: Dropbear, Paramiko's and AsyncSSH's.
// Each server is asked for its own KEXINIT first, so the algorithm checks cover exactly what
// both sides support, whatever version of the peer is installed.

/** Every client timeout is bounded: a blocked main thread cannot be interrupted by Jest. */
/** Seconds a channel may stay silent before a test fails instead of hanging. */
const CHANNEL_TIMEOUT = 20;

const pause = new Int32Array(new SharedArrayBuffer(4));
/**
 * Waits (at most 5 s) for the server to close a channel whose command ended. Dropbear 2022.83
 * closes a session channel opened while the previous session's close is under way (Paramiko's
 * client gets "Unable to open channel" there too, 1 time in 4): the next command waits for it.
 */
function settle(chan: Channel): void {
  const deadline = Date.now() + 5000;
  while (!chan.closed && Date.now() < deadline) Atomics.wait(pause, 0, 0, 5);
}

/**
 * The server's KEXINIT, read over a plain socket: identification lines, then the first binary
 * packet (unencrypted, RFC 4253 section 6).
 */
function serverKexInit(host: string, port: number): Promise<KexInit> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let versionSeen = false;
    const timer = setTimeout(() => fail(new Error(`no KEXINIT from ${host}:${port} within 5 s`)), 5000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.on('error', fail);
    sock.on('connect', () => sock.write('SSH-2.0-pts_interop_probe\r\n'));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (!versionSeen) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 1);
        if (line.startsWith('SSH-')) versionSeen = true;
      }
      if (buf.length < 5) return;
      const length = buf.readUInt32BE(0);
      if (buf.length < 4 + length) return;
      const payload = buf.subarray(5, 4 + length - buf[4]);
      clearTimeout(timer);
      sock.destroy();
      try {
        resolve(decodeKexInit(payload));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

/** Names both lists hold, in the order of `ours`. */
const both = (ours: readonly string[], theirs: readonly string[]) => ours.filter((a) => theirs.includes(a));
/** RFC 4253 section 7.1: the first of the client's algorithms that the server also offers. */
const firstCommon = (ours: readonly string[], theirs: readonly string[]) => ours.find((a) => theirs.includes(a));

interface PeerCase {
  title: string;
  peer: PeerName;
  /** The server's identification line. */
  version: RegExp;
  /** Host key types of the main server. */
  hostKeyTypes: KeyType[];
  /** More host key types, each set on a server of its own (Dropbear takes at most 4 keys). */
  moreHostKeyTypes?: KeyType[][];
  /**
   * Key exchanges the server announces but cannot run. Paramiko 2.12's server announces
   * diffie-hellman-group-exchange-* without a moduli file, then refuses them: its
   * Transport._send_kex_init filters the list it negotiates with, not the list it sends.
   */
  brokenKex?: string[];
  /** Dropbear logs users in by uid and checks /etc/shadow: only as root. */
  needsRoot?: boolean;
  start(hostKeyTypes: KeyType[]): Promise<SshServer>;
}

const PEERS: PeerCase[] = [
  {
    title: 'Dropbear',
    peer: 'dropbear',
    version: /^SSH-2\.0-dropbear/,
    hostKeyTypes: ['ed25519', 'ecdsa', 'ecdsa384', 'rsa'],
    moreHostKeyTypes: [['ecdsa521']],
    needsRoot: true,
    start: (hostKeyTypes) => startDropbear({ hostKeyTypes }),
  },
  {
    title: "Paramiko's server",
    peer: 'paramiko',
    version: /^SSH-2\.0-paramiko_/,
    hostKeyTypes: ['ed25519', 'ecdsa', 'ecdsa384', 'ecdsa521', 'rsa'],
    brokenKex: ['diffie-hellman-group-exchange-sha256', 'diffie-hellman-group-exchange-sha1'],
    start: (hostKeyTypes) => startParamikoServer({ hostKeyTypes }),
  },
  {
    title: "AsyncSSH's server",
    peer: 'asyncssh',
    version: /^SSH-2\.0-AsyncSSH_/,
    hostKeyTypes: ['ed25519', 'ecdsa', 'ecdsa384', 'ecdsa521', 'rsa'],
    start: (hostKeyTypes) => startAsyncsshServer({ hostKeyTypes }),
  },
];

for (const pc of PEERS) {
  describe(`SSHClient against ${pc.title}`, () => {
    let server: SshServer;
    let dir: string;
    let userKey: string;
    let offered: KexInit;
    const rootMissing = Boolean(pc.needsRoot) && !isRoot();

    /** itWithPeers, and a peer that needs root counts as missing when we are not root. */
    function itPeer(name: string, fn: jest.ProvidesCallback, timeout?: number): void {
      (pc.needsRoot ? itWithRootPeers : itWithPeers)([pc.peer], name, fn, timeout);
    }

    beforeAll(async () => {
      if (!hasPeer(pc.peer) || rootMissing) return;
      dir = mkdtempSync(join(tmpdir(), `pts-interop-${pc.peer}-`));
      const key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
      userKey = key.path;
      server = await pc.start(pc.hostKeyTypes);
      server.authorize(key.publicKey);
      offered = await serverKexInit(server.host, server.port);
    }, 60_000);

    afterAll(async () => {
      await server?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    function connect(options: Record<string, unknown> = {}): SSHClient {
      return loginTo(server, userKey, options);
    }

    function run(c: SSHClient, cmd: string, options: { getPty?: boolean } = {}): { out: string; err: string; status: number } {
      const [, stdout, stderr] = c.execCommand(cmd, { timeout: CHANNEL_TIMEOUT, ...options });
      const out = stdout.read().toString();
      const err = stderr.read().toString();
      const status = stdout.channel.recvExitStatus();
      settle(stdout.channel);
      return { out, err, status };
    }

    /** A bare transport restricted by `set`, authenticated with the user key. */
    function restricted(set: (sec: ReturnType<Transport['getSecurityOptions']>) => void): Transport {
      const t = new Transport([server.host, server.port]);
      t.bannerTimeout = t.handshakeTimeout = 15;
      t.authTimeout = CHANNEL_TIMEOUT;
      t.channelTimeout = CHANNEL_TIMEOUT;
      set(t.getSecurityOptions());
      t.startClient({ timeout: 10 });
      t.authPublickey(server.user.username, PKey.fromPath(userKey));
      return t;
    }

    function runOn(t: Transport, cmd: string): string {
      const chan = t.openSession({ timeout: CHANNEL_TIMEOUT });
      chan.settimeout(CHANNEL_TIMEOUT);
      chan.execCommand(cmd);
      const out = chan.makefile().read().toString();
      chan.close();
      return out;
    }

    itPeer('key authentication; stdout, stderr and the exit status of a command', () => {
      using c = connect();
      expect(run(c, 'echo hi; echo err >&2; exit 3')).toEqual({ out: 'hi\n', err: 'err\n', status: 3 });
      const t = c.getTransport()!;
      expect(t.isActive()).toBe(true);
      expect(t.isAuthenticated()).toBe(true);
      expect(t.getUsername()).toBe(server.user.username);
      expect(t.remoteVersion).toMatch(pc.version);
      expect(t.remoteVersion).toBe(server.banner);
    });

    itPeer('password authentication', () => {
      using c = connect({ keyFilename: null, password: server.user.password });
      expect(run(c, 'echo "$(id -un)"; exit 0')).toEqual({ out: `${server.user.username}\n`, err: '', status: 0 });
      expect(c.getTransport()!.isAuthenticated()).toBe(true);
    });

    itPeer('a wrong password raises AuthenticationException and closes the transport', () => {
      const c = new SSHClient();
      c.setMissingHostKeyPolicy(AutoAddPolicy);
      const started = Date.now();
      expect(() =>
        c.connect(server.host, {
          port: server.port,
          username: server.user.username,
          password: 'not-the-password',
          lookForKeys: false,
          allowAgent: false,
          ...CONNECT,
        }),
      ).toThrow(AuthenticationException);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(c.getTransport()?.isActive() ?? false).toBe(false);
      // a key the server does not know fails the same way
      const stranger = generateKey(join(dir, `stranger-${Date.now()}`), 'ed25519');
      expect(() => connect({ keyFilename: stranger.path })).toThrow(AuthenticationException);
    });

    itPeer('the exit status is never lost, however close it comes to the channel close (40 commands)', () => {
      using c = connect();
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) {
        // Under load Paramiko's server sent exec's SUCCESS after the command's CLOSE, and we ended
        // the connection for it (CI, sessions 8 and 16; fixed in 17: late messages for a closed
        // channel are dropped). Should the connection go again, say when and why, both sides.
        const t = c.getTransport();
        if (!t?.isActive()) {
          // Our side's reason: the worker's closing error (internal).
          const ours = (t as unknown as { info?: { error?: string | null } } | null)?.info?.error ?? 'none recorded';
          throw new Error(`the connection closed after ${i} of 40 commands (our side: ${ours}); the ${pc.peer} server's log:\n${server.log().slice(-4000)}`);
        }
        const [, stdout, stderr] = c.execCommand('echo x; exit 7', { timeout: CHANNEL_TIMEOUT });
        stdout.read();
        stderr.read();
        statuses.push(stdout.channel.recvExitStatus());
        settle(stdout.channel);
      }
      expect(statuses.filter((s) => s !== 7)).toEqual([]);
    }, 60_000);

    itPeer('stdin is piped through cat and sha256sum; stdin.close() is EOF', () => {
      using c = connect();
      const data = randomBytes(3 << 20);
      {
        // Small enough for cat's echo to fit in our window while nothing reads it: a larger
        // write would deadlock any client that writes everything before reading (cat stops
        // reading its stdin once its stdout is blocked).
        const small = data.subarray(0, 256 << 10);
        const [stdin, stdout] = c.execCommand('cat', { timeout: CHANNEL_TIMEOUT });
        stdin.write(small);
        stdin.close();
        const echoed = stdout.read();
        expect(echoed.length).toBe(small.length);
        expect(echoed.equals(small)).toBe(true);
        settle(stdout.channel);
      }
      {
        const [stdin, stdout] = c.execCommand('sha256sum', { timeout: CHANNEL_TIMEOUT });
        stdin.write(data);
        stdin.close();
        expect(stdout.read().toString().split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      }
    });

    itPeer('a pty: the command sees a terminal', () => {
      using c = connect();
      const r = run(c, 'tty; exit 5', { getPty: true });
      expect(r.out).toMatch(/^\/dev\/pts\/\d+\r?\n$/);
      expect(r.status).toBe(5);
      // without a pty, no terminal
      expect(run(c, 'tty').out).toMatch(/not a tty/);
    });

    itPeer('the negotiated algorithms are the first of ours the server offers', () => {
      using c = connect();
      const n = c.getTransport()!.getNegotiated()!;
      const ours = defaultPreferences();
      // What the server offered, as read from its KEXINIT; never an algorithm of the insecure lists.
      const expected = {
        kex: firstCommon(ours.kex, offered.kex),
        hostKey: firstCommon(DEFAULT_HOST_KEY_ALGORITHMS, offered.hostKeys),
        cipherC2S: firstCommon(ours.ciphers, offered.ciphersC2S),
        cipherS2C: firstCommon(ours.ciphers, offered.ciphersS2C),
        compressionC2S: 'none',
        compressionS2C: 'none',
      };
      expect(n).toMatchObject(expected);
      expect(INSECURE_KEX).not.toContain(n.kex);
      const aead = (cipher: string) => /gcm|poly1305/.test(cipher);
      expect(n.macC2S).toBe(aead(n.cipherC2S) ? '' : firstCommon(ours.macs, offered.macsC2S));
      expect(n.macS2C).toBe(aead(n.cipherS2C) ? '' : firstCommon(ours.macs, offered.macsS2C));
      // the host key is one of the server's, and the one we verified
      const key = c.getTransport()!.getRemoteServerKey();
      expect(server.hostKeys.map((h) => h.fingerprint)).toContain(key.fingerprint);
      expect(keyTypeOfAlgorithm(n.hostKey)).toBe(key.getName());
    });

    itPeer('compression, when the server offers it, carries data end to end', () => {
      const common = both(['zlib@openssh.com', 'zlib'], offered.compressionS2C);
      using c = connect({ compress: true });
      const n = c.getTransport()!.getNegotiated()!;
      expect([n.compressionC2S, n.compressionS2C]).toEqual(common.length ? [common[0], common[0]] : ['none', 'none']);
      const [stdin, stdout] = c.execCommand('sha256sum; head -c 3000000 /dev/zero', { timeout: CHANNEL_TIMEOUT });
      const data = Buffer.alloc(2 << 20, 'compressible text ');
      stdin.write(data);
      stdin.close();
      const out = stdout.read();
      expect(out.subarray(0, 64).toString()).toBe(createHash('sha256').update(data).digest('hex'));
      expect(out.length).toBe(64 + '  -\n'.length + 3_000_000);
    });

    /** Checks every host key algorithm `target` announces that we support, through a bare Transport. */
    function checkHostKeys(target: SshServer, announced: string[]): string[] {
      const types = new Set(target.hostKeys.map((h) => h.algorithm));
      // Dropbear 2022.83 announces ssh-rsa and rsa-sha2-256 even without an RSA host key (and
      // dies on "Failed assertion (rsa.c:164): key != NULL" when a client picks them): only the
      // algorithms of keys the server holds are checked.
      const algs = both(DEFAULT_HOST_KEY_ALGORITHMS, announced).filter((a) => types.has(keyTypeOfAlgorithm(a)));
      // Each host key type the server was given is reachable through at least one algorithm.
      expect([...new Set(algs.map(keyTypeOfAlgorithm))].sort()).toEqual([...types].sort());
      for (const alg of algs) {
        const t = new Transport([target.host, target.port]);
        t.getSecurityOptions().keyTypes = [alg];
        try {
          t.startClient({ timeout: 10 });
          expect([alg, t.getNegotiated()!.hostKey]).toEqual([alg, alg]);
          const key = t.getRemoteServerKey();
          expect([alg, target.hostKeys.map((h) => h.fingerprint).includes(key.fingerprint)]).toEqual([alg, true]);
        } finally {
          t.close();
        }
      }
      return algs;
    }

    itPeer('every host key algorithm both sides support is verified', async () => {
      const seen = checkHostKeys(server, offered.hostKeys);
      for (const types of pc.moreHostKeyTypes ?? []) {
        const more = await pc.start(types);
        try {
          seen.push(...checkHostKeys(more, (await serverKexInit(more.host, more.port)).hostKeys));
        } finally {
          await more.stop();
        }
      }
      // all of ssh-ed25519, ecdsa-sha2-nistp256/384/521 and at least one RSA signature
      for (const alg of ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']) expect(seen).toContain(alg);
      expect(seen.some((a) => a.startsWith('rsa-sha2-') || a === 'ssh-rsa')).toBe(true);
    }, 120_000);

    itPeer('every key exchange x every cipher both sides support runs a command', () => {
      const kexes = both([...defaultPreferences().kex, ...INSECURE_KEX], offered.kex).filter((k) => !(pc.brokenKex ?? []).includes(k));
      const ciphers = both(DEFAULT_CIPHERS, offered.ciphersC2S);
      expect(kexes.length).toBeGreaterThan(0);
      expect(ciphers.length).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const kex of kexes) {
        for (const cipher of ciphers) {
          let t: Transport | null = null;
          try {
            t = restricted((sec) => {
              sec.kex = [kex];
              sec.ciphers = [cipher];
            });
            expect(t.getNegotiated()).toMatchObject({ kex, cipherC2S: cipher, cipherS2C: cipher });
            const out = runOn(t, 'echo $((6*7))');
            if (out !== '42\n') failures.push(`${kex} ${cipher}: output ${JSON.stringify(out)}`);
          } catch (e) {
            failures.push(`${kex} ${cipher}: ${(e as Error).name}: ${(e as Error).message}`);
          } finally {
            t?.close();
          }
        }
      }
      expect(failures).toEqual([]);
    }, 240_000);

    itPeer('every MAC both sides support, with each non-AEAD cipher, carries 1 MB', () => {
      const macs = both(DEFAULT_MACS, offered.macsC2S);
      const ctr = both(DEFAULT_CIPHERS, offered.ciphersC2S).filter((c) => !/gcm|poly1305/.test(c));
      expect(macs.length).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const mac of macs) {
        for (const cipher of ctr) {
          let t: Transport | null = null;
          try {
            t = restricted((sec) => {
              sec.ciphers = [cipher];
              sec.digests = [mac];
            });
            expect(t.getNegotiated()).toMatchObject({ macC2S: mac, macS2C: mac, cipherC2S: cipher });
            const chan = t.openSession({ timeout: CHANNEL_TIMEOUT });
            chan.settimeout(CHANNEL_TIMEOUT);
            chan.execCommand('sha256sum');
            const data = randomBytes(1 << 20);
            chan.sendall(data);
            chan.shutdownWrite();
            const out = chan.makefile().read().toString().split(' ')[0];
            if (out !== createHash('sha256').update(data).digest('hex')) failures.push(`${mac} ${cipher}: wrong digest ${out}`);
          } catch (e) {
            failures.push(`${mac} ${cipher}: ${(e as Error).name}: ${(e as Error).message}`);
          } finally {
            t?.close();
          }
        }
      }
      expect(failures).toEqual([]);
    }, 240_000);
  });
}

describe("an expired password against AsyncSSH's server (RFC 4252 section 8)", () => {
  const EXPIRED = 'expired-secret';
  let server: SshServer;

  beforeAll(async () => {
    if (!hasPeer('asyncssh')) return;
    server = await startAsyncsshServer({ password: 'not-used-yet', expiredPassword: EXPIRED });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  function passwordLogin(password: string, options: Record<string, unknown> = {}): SSHClient {
    const c = new SSHClient();
    c.setMissingHostKeyPolicy(new AutoAddPolicy());
    c.connect(server.host, { port: server.port, username: server.user.username, password, lookForKeys: false, allowAgent: false, ...CONNECT, ...options });
    return c;
  }

  itWithPeers(['asyncssh'], 'is changed through passwordChange, which sees each prompt; without it, or declined, the login fails quoting the prompt', () => {
    // No handler: the server's request fails the login, and says what it asked.
    expect(() => passwordLogin(EXPIRED)).toThrow(AuthenticationException);
    expect(() => passwordLogin(EXPIRED)).toThrow(/requires a new password \("Password expired: choose a new one"\): pass passwordChange/);
    // Declined.
    expect(() => passwordLogin(EXPIRED, { passwordChange: () => null })).toThrow(/passwordChange gave none/);
    // A handler that answers with something else is the caller's error, named.
    expect(() => passwordLogin(EXPIRED, { passwordChange: () => 'a-longer-secret' })).toThrow(/passwordChange must return \[oldPassword, newPassword\] or null/);
    // A server that refuses every new password is not asked forever.
    let asked = 0;
    const stubborn = (): [string, string] => (asked++, [EXPIRED, 'short']);
    expect(() => passwordLogin(EXPIRED, { passwordChange: stubborn })).toThrow(/refused 3 new passwords \("Too short: at least 8 characters"\)/);
    expect(asked).toBe(3);

    // A transport asked twice: the first new password is too short for this server.
    const t = new Transport([server.host, server.port]);
    try {
      t.startClient({ timeout: 10 });
      const prompts: string[] = [];
      const answers: Array<[string, string]> = [[EXPIRED, 'short'], [EXPIRED, 'a-longer-secret']];
      const left = t.authPassword(server.user.username, EXPIRED, {
        passwordChange: (prompt, lang) => {
          prompts.push(`${prompt}|${lang}`);
          return answers[prompts.length - 1];
        },
      });
      expect(left).toEqual([]);
      expect(t.isAuthenticated()).toBe(true);
      expect(prompts).toEqual(['Password expired: choose a new one|en-US', 'Too short: at least 8 characters|en-US']);
      const chan = t.openSession({ timeout: CHANNEL_TIMEOUT });
      chan.execCommand('echo changed');
      expect(chan.makefile().read().toString()).toBe('changed\n');
      chan.close();
    } finally {
      t.close();
    }

    // The new password logs in plainly; the expired one no longer does.
    using c = passwordLogin('a-longer-secret');
    expect(c.getTransport()!.isAuthenticated()).toBe(true);
    expect(() => passwordLogin(EXPIRED)).toThrow(AuthenticationException);
  }, 60_000);
});
