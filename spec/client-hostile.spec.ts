import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AutoAddPolicy, SocketTimeout, SSHClient, SSHException, Transport } from '../lib';

// Hostile server input (STYLE.md "Tests read like specifications"; issue 3's last check): a fake
// server (spec/support/hostile/fake-server.js, a child process: our calls block this thread)
// does the key exchange with the library's own Session, then misbehaves at a chosen point.
// Each case expects a specific error, promptly, and a transport that is closed afterwards.

const FAKE_SERVER = join(__dirname, 'support', 'hostile', 'fake-server.js');
/** A blocking call that fails must fail within this many ms (the timeouts set below are 1-3 s). */
const PROMPT_MS = 5000;

interface Fake {
  port: number;
  child: ChildProcess;
  /** Lines the server printed after READY. */
  lines: string[];
  /** Waits (asynchronously: the main thread must be free) for a line matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

let fake: Fake | null = null;

function startFake(mode: string, ...args: string[]): Promise<Fake> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FAKE_SERVER, mode, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    const listeners = new Set<() => void>();
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const timer = setTimeout(() => fail(new Error(`fake server (${mode}) printed no READY within 10 s: ${stderr}`)), 10_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code, signal) => {
      if (!started) fail(new Error(`fake server (${mode}) exited (${signal ?? code}): ${stderr}`));
    });
    let started = false;
    child.stdout!.on('data', (d: Buffer) => {
      partial += d.toString();
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        const ready = /^READY (\d+)$/.exec(line);
        if (ready && !started) {
          started = true;
          clearTimeout(timer);
          const f: Fake = {
            port: Number(ready[1]),
            child,
            lines,
            waitFor: (re, timeoutMs = 3000) =>
              new Promise((res, rej) => {
                const check = () => {
                  for (const l of lines) {
                    const m = re.exec(l);
                    if (m) {
                      listeners.delete(check);
                      clearTimeout(t);
                      res(m);
                      return;
                    }
                  }
                };
                const t = setTimeout(() => {
                  listeners.delete(check);
                  rej(new Error(`fake server never printed ${re}; it printed ${JSON.stringify(lines)}`));
                }, timeoutMs);
                listeners.add(check);
                check();
              }),
            stop: async () => {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
              await exited;
            },
          };
          resolve(f);
        } else {
          lines.push(line);
          for (const l of [...listeners]) l();
        }
      }
    });
  });
}

afterEach(async () => {
  await fake?.stop();
  fake = null;
});

/** A transport to the fake server with every wait bounded by a short timeout. */
function transport(port: number): Transport {
  const t = new Transport(['127.0.0.1', port]);
  t.bannerTimeout = 1;
  t.handshakeTimeout = 1;
  t.authTimeout = 3;
  t.channelTimeout = 3;
  return t;
}

/** Runs `fn`, which must throw; returns the error and how long it took. */
function failure(fn: () => unknown): { error: Error; ms: number } {
  const started = Date.now();
  try {
    fn();
  } catch (e) {
    return { error: e as Error, ms: Date.now() - started };
  }
  throw new Error(`expected an exception, the call returned after ${Date.now() - started} ms`);
}

/** The error is an SSHException whose message matches, it came promptly, and `t` is closed. */
function expectClosedWith(r: { error: Error; ms: number }, message: RegExp, t: Transport | null): void {
  expect(r.error).toBeInstanceOf(SSHException);
  expect(r.error.message).toMatch(message);
  expect(r.ms).toBeLessThan(PROMPT_MS);
  if (t) {
    expect(t.isActive()).toBe(false);
    expect(t.isAuthenticated()).toBe(false);
    // every later call fails at once, naming the same cause or a closed session
    const next = failure(() => t.openSession({ timeout: 2 }));
    expect(next.error).toBeInstanceOf(SSHException);
    expect(next.ms).toBeLessThan(PROMPT_MS);
    t.close();
  }
}

/**
 * Thirty connections to a seeded fuzzing fake server, each through `session`, which says how it
 * went or throws: a throw must be one of `allowed` (then `Class: message`, numbers as N, is the
 * outcome), each round ends within `limitMs`, and its transport is closed after. Returns how often
 * each outcome came.
 */
function tally(port: number, limitMs: number, allowed: Array<abstract new (...args: never[]) => Error>, session: (t: Transport) => string): Map<string, number> {
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const t = transport(port);
    const started = Date.now();
    let outcome: string;
    try {
      outcome = session(t);
    } catch (e) {
      expect(allowed.some((cls) => e instanceof cls)).toBe(true);
      outcome = `${(e as Error).constructor.name}: ${(e as Error).message.replace(/\d+/g, 'N').slice(0, 60)}`;
    } finally {
      t.close();
    }
    expect(Date.now() - started).toBeLessThan(limitMs);
    expect(t.isActive()).toBe(false);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  return outcomes;
}

/** Connects, does the key exchange and starts password auth, where the fake server misbehaves. */
function authAgainst(port: number): { t: Transport; r: { error: Error; ms: number } } {
  const t = transport(port);
  t.startClient({ timeout: 3 });
  return { t, r: failure(() => t.authPassword('user', 'secret')) };
}

describe('hostile server: the identification exchange', () => {
  it('a web server (HTTP/1.1 400, then close) is reported as not an SSH server', async () => {
    fake = await startFake('http');
    const c = new SSHClient();
    c.setMissingHostKeyPolicy(AutoAddPolicy);
    const r = failure(() => c.connect('127.0.0.1', { port: fake!.port, username: 'u', password: 'p', timeout: 3, bannerTimeout: 1, lookForKeys: false, allowAgent: false }));
    expectClosedWith(r, /is this an SSH server/, c.getTransport());
  });

  it('binary garbage without a line end: the peer does not speak SSH', async () => {
    fake = await startFake('garbage');
    const t = transport(fake.port);
    expectClosedWith(failure(() => t.startClient({ timeout: 3 })), /identification line too long: the peer does not speak SSH/, t);
  });

  it('SSH-1.5 identification: incompatible SSH version', async () => {
    fake = await startFake('ssh1');
    const t = transport(fake.port);
    expectClosedWith(failure(() => t.startClient({ timeout: 3 })), /incompatible SSH version: "SSH-1\.5-old"/, t);
  });

  it('identification then silence: startClient fails after the handshake timeout', async () => {
    fake = await startFake('silent');
    const t = transport(fake.port);
    const r = failure(() => t.startClient({ timeout: 3 }));
    expectClosedWith(r, /key exchange did not complete within 1 s/, t);
    expect(r.ms).toBeGreaterThanOrEqual(900);
  });

  it('no identification at all: startClient fails after the banner timeout', async () => {
    fake = await startFake('mute');
    const t = transport(fake.port);
    const r = failure(() => t.startClient({ timeout: 3 }));
    expectClosedWith(r, /within 1 s/, t);
    expect(r.ms).toBeGreaterThanOrEqual(900);
  });

  it('SSHClient.connect honours bannerTimeout when the server says nothing', async () => {
    fake = await startFake('mute');
    const c = new SSHClient();
    c.setMissingHostKeyPolicy(AutoAddPolicy);
    const r = failure(() => c.connect('127.0.0.1', { port: fake!.port, username: 'u', password: 'p', timeout: 3, bannerTimeout: 1, lookForKeys: false, allowAgent: false }));
    expect(r.error.message).toMatch(/within 1 s|timed out/);
    expect(r.ms).toBeLessThan(3000);
  }, 30_000);
});

describe('hostile server: a corrupted key exchange', () => {
  it('bytes flipped in its KEXINIT and reply (seeded): startClient connects or raises an SSHException promptly, every time', async () => {
    fake = await startFake('kex-fuzz', '--seed', process.env.FUZZ_SEED ?? '20261201');
    const outcomes = tally(fake.port, PROMPT_MS, [SSHException], (t) => {
      t.startClient({ timeout: 3 });
      t.authPassword('user', 'secret');
      return 'connected';
    });
    // Most exchanges break (a flipped byte in a signed reply cannot verify); they break in many ways.
    expect(outcomes.size).toBeGreaterThan(3);
    const unverified = [...outcomes].filter(([k]) => k.startsWith('SSHException: server host key signature does not verify')).reduce((n, [, c]) => n + c, 0);
    expect(unverified).toBeGreaterThan(5);
    await fake.waitFor(/^KEX-FUZZED 29 /);
  });
});

describe('hostile server: corrupt packets after the key exchange', () => {
  const suites: Array<[string, string[]]> = [
    ['aes128-gcm@openssh.com', ['--cipher', 'aes128-gcm@openssh.com']],
    ['aes256-gcm@openssh.com', ['--cipher', 'aes256-gcm@openssh.com']],
    ['chacha20-poly1305@openssh.com', ['--cipher', 'chacha20-poly1305@openssh.com']],
    ['aes128-ctr + hmac-sha2-256', ['--cipher', 'aes128-ctr', '--mac', 'hmac-sha2-256']],
    ['aes256-ctr + hmac-sha2-512-etm@openssh.com', ['--cipher', 'aes256-ctr', '--mac', 'hmac-sha2-512-etm@openssh.com']],
    ['aes192-ctr + hmac-sha1', ['--cipher', 'aes192-ctr', '--mac', 'hmac-sha1']],
  ];
  for (const [name, args] of suites) {
    it(`a packet with one bit of its MAC flipped (${name}): bad MAC`, async () => {
      fake = await startFake('badmac', ...args);
      const { t, r } = authAgainst(fake.port);
      await fake.waitFor(/^SENT badmac$/);
      expectClosedWith(r, /packet authentication failed: bad (MAC|Poly1305 tag)/, t);
    });
  }

  for (const [name, args] of [suites[0], suites[4]]) {
    it(`a packet length of 0x7fffffff (${name}, length in clear): bad packet length`, async () => {
      fake = await startFake('oversize', ...args);
      const { t, r } = authAgainst(fake.port);
      expectClosedWith(r, /bad packet length 2147483647/, t);
    });
  }

  it('half a packet, then the TCP connection closes: connection closed', async () => {
    fake = await startFake('truncated');
    const { t, r } = authAgainst(fake.port);
    await fake.waitFor(/^SENT truncated$/);
    expectClosedWith(r, /connection closed by the peer|EOF/, t);
  });
});

describe('hostile server: unexpected messages', () => {
  it('DISCONNECT during auth: the server\'s reason is in the error', async () => {
    fake = await startFake('disconnect');
    const { t, r } = authAgainst(fake.port);
    // The server's words, its terminal escape written out (a screen clear, here) rather than sent on.
    expectClosedWith(r, /the server disconnected: fake server says go away\\x1b\[2J \(code 2\)$/, t);
  });

  it('a CHANNEL_DATA in the middle of auth (no channel is open): protocol error', async () => {
    fake = await startFake('unexpected');
    const { t, r } = authAgainst(fake.port);
    expectClosedWith(r, /unknown channel 0|unexpected/, t);
  });

  for (const type of [200, 10]) {
    it(`an unknown message number (${type}) is answered with UNIMPLEMENTED and the session carries on (RFC 4253 11.4)`, async () => {
      fake = await startFake('unknown', '--type', String(type));
      const t = transport(fake.port);
      t.startClient({ timeout: 3 });
      try {
        expect(t.authPassword('user', 'secret')).toEqual([]);
        expect(t.isAuthenticated()).toBe(true);
        const [, sentSeq] = await fake.waitFor(new RegExp(`^SENT ${type} (\\d+)$`));
        const [, answeredSeq] = await fake.waitFor(/^UNIMPLEMENTED (\d+)$/);
        expect(answeredSeq).toBe(sentSeq);
        // and the connection still works
        const chan = t.openSession({ timeout: 3 });
        chan.settimeout(3);
        chan.execCommand('anything');
        expect(chan.makefile().read().toString()).toBe('hello\n');
        expect(chan.recvExitStatus()).toBe(0);
      } finally {
        t.close();
      }
    });
  }
});

describe('hostile server: delayed compression (zlib@openssh.com)', () => {
  it('nothing is sent between USERAUTH_REQUEST and its answer: a packet crossing USERAUTH_SUCCESS would be read as compressed', async () => {
    fake = await startFake('zlib-cross', '--compression', 'zlib@openssh.com');
    const t = transport(fake.port);
    t.useCompression(true);
    t.startClient({ timeout: 3 });
    try {
      // The server sends an IGNORE, then waits: a client that answers it (or sends anything)
      // before the auth answer has its packet decompressed by a server that already switched.
      expect(t.authPassword('user', 'secret')).toEqual([]);
      const [, why] = await fake.waitFor(/^SUCCESS (.*)$/);
      expect(why).toBe('after silence');
      expect(t.getNegotiated()).toMatchObject({ compressionC2S: 'zlib@openssh.com', compressionS2C: 'zlib@openssh.com' });
      const chan = t.openSession({ timeout: 3 });
      chan.settimeout(3);
      chan.execCommand('anything');
      expect(chan.makefile().read().toString()).toBe('hello\n');
      expect(t.isActive()).toBe(true);
    } finally {
      t.close();
    }
  });

  it('compressed packets in the same read as USERAUTH_SUCCESS are decompressed', async () => {
    fake = await startFake('zlib-same-read', '--compression', 'zlib@openssh.com');
    const t = transport(fake.port);
    t.useCompression(true);
    t.startClient({ timeout: 3 });
    try {
      expect(t.authPassword('user', 'secret')).toEqual([]);
      await fake.waitFor(/^SENT success\+compressed$/);
      const chan = t.openSession({ timeout: 3 });
      chan.settimeout(3);
      chan.execCommand('anything');
      expect(chan.makefile().read().toString()).toBe('hello\n');
      expect(t.isActive()).toBe(true);
    } finally {
      t.close();
    }
  });
});

describe('hostile server: channels', () => {
  it('the TCP connection dies in the middle of an exec: recv gives what came, then EOF; recvExitStatus is -1', async () => {
    fake = await startFake('close-mid-exec');
    const t = transport(fake.port);
    t.startClient({ timeout: 3 });
    t.authPassword('user', 'secret');
    const chan = t.openSession({ timeout: 3 });
    chan.settimeout(3);
    chan.execCommand('long-running');
    const started = Date.now();
    let got = '';
    let raised: Error | null = null;
    try {
      for (let b = chan.recv(1024); b.length; b = chan.recv(1024)) got += b.toString();
    } catch (e) {
      raised = e as Error;
    }
    expect(got).toBe('partial output\n');
    if (raised) expect(raised).toBeInstanceOf(SSHException);
    expect(chan.recvExitStatus()).toBe(-1);
    expect(Date.now() - started).toBeLessThan(PROMPT_MS);
    expect(chan.closed).toBe(true);
    expect(t.isActive()).toBe(false);
    t.close();
  });

  it('up to forty fuzzed connection-layer messages per command (seeded): each call returns or raises promptly, and the client goes on', async () => {
    // Data beyond the window and for other channels, window adjusts past 2^32, exit-status and
    // exit-signal with garbage, opens and global requests from the server, stray replies, auth
    // messages after auth, unknown numbers; one in ten cut or with bytes flipped.
    fake = await startFake('fuzz', '--seed', process.env.FUZZ_SEED ?? '20261201');
    const outcomes = tally(fake.port, PROMPT_MS * 2, [SSHException, SocketTimeout], (t) => {
      t.startClient({ timeout: 3 });
      t.authPassword('user', 'secret');
      const chan = t.openSession({ timeout: 3 });
      chan.settimeout(3);
      chan.execCommand('fuzz');
      while (chan.recv(1 << 20).length) {
        // drained to EOF
      }
      // exit-status 0 when the connection survived what came; -1 when the client ended it (a
      // protocol error): either way recv gave what came, then EOF, as the TCP test above.
      return chan.recvExitStatus() === 0 && t.isActive() ? 'survived' : 'ended by the client';
    });
    // Both happened: commands that survived what came, and connections it ended.
    expect(outcomes.get('survived')).toBeGreaterThan(0);
    expect(outcomes.get('ended by the client')).toBeGreaterThan(0);
    await fake.waitFor(/^FUZZED 29$/);
  });

  it("data past the channel's window: up to a tenth of it is kept (OpenSSH 9's grace), beyond that the connection ends", async () => {
    const server = (fake = await startFake('window-overrun'));
    const window = 256 * 1024;
    const run = (over: number): { got: number; status: number; active: boolean; error: unknown } => {
      const t = transport(server.port);
      try {
        t.startClient({ timeout: 3 });
        t.authPassword('user', 'secret');
        const chan = t.openSession({ windowSize: window, timeout: 3 });
        chan.settimeout(3);
        chan.execCommand(`over ${over}`);
        // Nothing read (so no window returned) until all of it has come.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
        let got = 0;
        let error: unknown = null;
        try {
          for (let b = chan.recv(1 << 20); b.length; b = chan.recv(1 << 20)) got += b.length;
        } catch (e) {
          error = e;
        }
        return { got, status: chan.recvExitStatus(), active: t.isActive(), error };
      } finally {
        t.close();
      }
    };
    // 20 000 bytes past a 256 KiB window (the grace is 26 214): every byte, the status, the connection.
    expect(run(20_000)).toEqual({ got: window + 20_000, status: 0, active: true, error: null });
    // A whole window past it: the client ends the connection, naming why; what came within the window was delivered.
    const far = run(window);
    expect(far.active).toBe(false);
    expect(far.status).toBe(-1);
    expect(far.got).toBeGreaterThanOrEqual(window);
    expect(far.got).toBeLessThan(2 * window);
    if (far.error) expect(far.error).toBeInstanceOf(SSHException);
    await server.waitFor(/^OVERRUN sent$/);
  });

  it('a channel open that is never answered: openSession({timeout: 1}) raises SocketTimeout', async () => {
    fake = await startFake('no-open-reply');
    const t = transport(fake.port);
    t.startClient({ timeout: 3 });
    t.authPassword('user', 'secret');
    const r = failure(() => t.openSession({ timeout: 1 }));
    expect(r.error).toBeInstanceOf(SocketTimeout);
    expect(r.ms).toBeGreaterThanOrEqual(900);
    expect(r.ms).toBeLessThan(3000);
    await fake.waitFor(/^IGNORED open$/);
    // Not a transport failure: the connection stays up (as in Paramiko) until closed.
    expect(t.isActive()).toBe(true);
    t.close();
    expect(t.isActive()).toBe(false);
  });

  it('exit-status and CLOSE right after EOF: recvExitStatus never loses the status (300 commands)', async () => {
    fake = await startFake('exit-race');
    const t = transport(fake.port);
    t.startClient({ timeout: 3 });
    t.authPassword('user', 'secret');
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const chan = t.openSession({ timeout: 3 });
        chan.settimeout(3);
        chan.execCommand('x');
        expect(chan.makefile().read().toString()).toBe('x');
        statuses.push(chan.recvExitStatus());
      }
    } finally {
      t.close();
    }
    const lost = statuses.map((s, i) => [i, s]).filter(([, s]) => s !== 7);
    expect({ lost: lost.length, of: statuses.length, first: lost.slice(0, 5) }).toEqual({ lost: 0, of: 300, first: [] });
  }, 30_000);
});
