/**
 * X11 forwarding (RFC 4254 section 6.3), both sides as Paramiko has them: the client's
 * Channel.requestX11 and Transport.accept() for the server's "x11" channels; the server's
 * ServerInterface.checkChannelX11Request and Transport.openX11Channel. Against each other in one
 * thread, against Paramiko's client, and our client against OpenSSH's sshd.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUTH_FAILED,
  AUTH_SUCCESSFUL,
  AutoAddPolicy,
  Channel,
  ChannelException,
  Event,
  OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
  OPEN_SUCCEEDED,
  ServerInterface,
  SSHClient,
  SSHException,
  Transport,
} from '../lib';
import { Loopback } from './support/loopback';
import { blockUntil } from './support/bridge-helpers';
import { hasPeer, itWithPeers } from './support/peers';
import { exitCleanup } from './support/servers/process';
import { generateKey, startSshd } from './support/servers';
import type { SshdServer } from './support/servers';
import type { X11Handler } from '../lib';

const USER = 'xuser';
const PASSWORD = 'x11 please';
/** A screen number our test server refuses. */
const REFUSED_SCREEN = 9;
const HEX128 = /^[0-9a-f]{32}$/;

interface X11Request {
  chanid: number;
  singleConnection: boolean;
  authProtocol: string;
  authCookie: string;
  screenNumber: number;
}

/** Accepts sessions and every x11-req except screen REFUSED_SCREEN, recording what arrived. */
class X11Server extends ServerInterface {
  readonly requests: X11Request[] = [];
  /** Set by the client's "ready@pts-test" global request (paramiko_x11.py, after its requests). */
  readonly ready = new Event();

  override checkChannelRequest(kind: string): number {
    return kind === 'session' ? OPEN_SUCCEEDED : OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
  }
  override getAllowedAuths(): string {
    return 'password';
  }
  override checkAuthPassword(username: string, password: string): number {
    return username === USER && password === PASSWORD ? AUTH_SUCCESSFUL : AUTH_FAILED;
  }
  override checkChannelX11Request(channel: Channel, singleConnection: boolean, authProtocol: string, authCookie: string, screenNumber: number): boolean {
    this.requests.push({ chanid: channel.getId(), singleConnection, authProtocol, authCookie, screenNumber });
    return screenNumber !== REFUSED_SCREEN;
  }
  override checkGlobalRequest(kind: string): boolean {
    if (kind !== 'ready@pts-test') return false;
    this.ready.set();
    return true;
  }
}

let dir: string;
let loop: Loopback;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-x11-'));
  loop = new Loopback();
});

afterEach(() => loop.closeTransports());

afterAll(() => {
  loop?.close();
  rmSync(dir, { recursive: true, force: true });
});

const serve = (server: ServerInterface) => loop.serve(server);

/** Our client and our server on one connection, both driven by this thread; the client logged in. */
function pair(server: X11Server): { st: Transport; ct: Transport } {
  const { st, ct } = loop.pair(server);
  expect(ct.authPassword(USER, PASSWORD)).toEqual([]);
  return { st, ct };
}

/** Reads until EOF (the channel's timeout must be set). */
function readAll(ch: Channel): string {
  const parts: Buffer[] = [];
  for (;;) {
    const b = ch.recv(65536);
    if (!b.length) return Buffer.concat(parts).toString();
    parts.push(b);
  }
}

/** Data both ways between the server's end of an x11 channel and the client's. */
function exchange(server: Channel, client: Channel): void {
  server.sendall('from the X client');
  client.settimeout(10);
  expect(client.recv(100).toString()).toBe('from the X client');
  client.sendall('from the X server');
  server.settimeout(10);
  expect(server.recv(100).toString()).toBe('from the X server');
}

describe('our client against our server', () => {
  it('an x11 open before any x11-req is refused (administratively prohibited), and after a refused x11-req too', () => {
    const server = new X11Server();
    const { st, ct } = pair(server);
    const refusal = (() => {
      try {
        st.openX11Channel(['127.0.0.1', 6010]);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(refusal).toBeInstanceOf(ChannelException);
    expect((refusal as ChannelException).code).toBe(OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED);
    const cc = ct.openSession();
    expect(() => cc.requestX11(REFUSED_SCREEN)).toThrow(SSHException);
    expect(server.requests.map((r) => r.screenNumber)).toEqual([REFUSED_SCREEN]);
    expect(() => st.openX11Channel(['127.0.0.1', 6010])).toThrow(ChannelException);
    expect(ct.accept(0)).toBeNull();
  });

  it('requestX11 sends the defaults and explicit values decoded by checkChannelX11Request; a refusal raises SSHException', () => {
    const server = new X11Server();
    const { ct } = pair(server);
    const a = ct.openSession();
    const cookieA = a.requestX11();
    expect(cookieA).toMatch(HEX128);
    const b = ct.openSession();
    expect(b.requestX11(2, 'XDM-AUTHORIZATION-1', 'c0ffee', true)).toBe('c0ffee');
    const c = ct.openSession();
    const cookieC = c.requestX11({ screenNumber: 5, singleConnection: true });
    expect(cookieC).toMatch(HEX128);
    expect(cookieC).not.toBe(cookieA);
    // Positional values, then the options object: its keys win where both are given.
    expect(c.requestX11(3, 'MIT-MAGIC-COOKIE-1', { authCookie: 'beef', screenNumber: 4 })).toBe('beef');
    expect(server.requests).toEqual([
      { chanid: a.getId(), singleConnection: false, authProtocol: 'MIT-MAGIC-COOKIE-1', authCookie: cookieA, screenNumber: 0 },
      { chanid: b.getId(), singleConnection: true, authProtocol: 'XDM-AUTHORIZATION-1', authCookie: 'c0ffee', screenNumber: 2 },
      { chanid: c.getId(), singleConnection: true, authProtocol: 'MIT-MAGIC-COOKIE-1', authCookie: cookieC, screenNumber: 5 },
      { chanid: c.getId(), singleConnection: false, authProtocol: 'MIT-MAGIC-COOKIE-1', authCookie: 'beef', screenNumber: 4 },
    ]);
    expect(() => a.requestX11(REFUSED_SCREEN, null, 'abcd')).toThrow(/refused the x11-req/);
    expect(server.requests[4]).toMatchObject({ screenNumber: REFUSED_SCREEN, authCookie: 'abcd' });
    // A handler that is not a function is refused before anything is sent.
    expect(() => a.requestX11({ handler: 'nope' as unknown as X11Handler })).toThrow(TypeError);
    expect(server.requests).toHaveLength(5);
  });

  it("with a handler (Paramiko's form), each x11 channel goes to it on this thread, with its origin; without one again, to accept()", () => {
    const server = new X11Server();
    const { st, ct } = pair(server);
    const session = ct.openSession();
    const got: Array<[Channel, [string, number]]> = [];
    session.requestX11({ handler: (ch, origin) => got.push([ch, origin]) });
    // openX11Channel blocks until the client confirms: the handler runs meanwhile.
    const sx = st.openX11Channel(['192.0.2.9', 6001]);
    expect(got).toHaveLength(1);
    const [cx, origin] = got[0];
    expect(origin).toEqual(['192.0.2.9', 6001]);
    expect([cx.kind, cx.origin]).toEqual(['x11', ['192.0.2.9', 6001]]);
    expect(ct.accept(0)).toBeNull();
    exchange(sx, cx);
    // A later request without a handler (Paramiko: the default handler) queues for accept().
    session.requestX11();
    const sx2 = st.openX11Channel(['192.0.2.9', 6002]);
    expect(got).toHaveLength(1);
    expect(ct.accept(10)!.origin).toEqual(['192.0.2.9', 6002]);
    for (const c of [cx, sx, sx2]) c.close();
  });

  it('openX11Channel reaches the client through accept(), with its origin, and data flows both ways', () => {
    const server = new X11Server();
    const { st, ct } = pair(server);
    const session = ct.openSession();
    session.requestX11();
    const sx = st.openX11Channel(['127.0.0.1', 6010]);
    const cx = ct.accept(10)!;
    expect(cx).not.toBeNull();
    expect(cx.kind).toBe('x11');
    expect(cx.origin).toEqual(['127.0.0.1', 6010]);
    expect(sx.kind).toBe('x11');
    exchange(sx, cx);
    // A second X client: another channel, with the default source address.
    const sx2 = st.openX11Channel();
    const cx2 = ct.accept(10)!;
    expect(cx2.origin).toEqual(['', 0]);
    expect(cx2.getId()).not.toBe(cx.getId());
    sx2.close();
    cx2.settimeout(10);
    expect(readAll(cx2)).toBe('');
    sx.shutdownWrite();
    expect(readAll(cx)).toBe('');
    cx.close();
    expect(readAll(sx)).toBe('');
    expect(ct.accept(0)).toBeNull();
  });
});

// ---- Paramiko's client ------------------------------------------------------------------------

interface ParamikoX11Result {
  requests: Array<{ cookie: string | null; error: string | null }>;
  x11: string | null;
  origin: [string, number] | null;
  error: string | null;
}

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(__dirname, 'support', 'clients', 'paramiko_x11.py');

/**
 * Starts spec/support/clients/paramiko_x11.py now (stdin, stdout and stderr are files: this
 * thread blocks in server calls meanwhile); resolves with its JSON result. Killed (with its
 * process group) after `timeoutMs`; `timeout -s KILL` backs that up while this thread is blocked.
 */
function paramikoX11(spec: Record<string, unknown>, timeoutMs = 25_000): Promise<ParamikoX11Result> {
  const work = mkdtempSync(join(dir, 'paramiko-'));
  const paths = ['stdin', 'stdout', 'stderr'].map((n) => join(work, n));
  writeFileSync(paths[0], JSON.stringify({ host: '127.0.0.1', port: loop.port, username: USER, password: PASSWORD, timeoutMs: timeoutMs - 5000, ...spec }));
  const fds = [openSync(paths[0], 'r'), openSync(paths[1], 'w'), openSync(paths[2], 'w')];
  let child;
  try {
    child = spawn('/usr/bin/timeout', ['-s', 'KILL', `${timeoutMs / 1000 + 1}s`, PYTHON, '-B', SCRIPT], {
      stdio: fds,
      detached: true,
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: work },
    });
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const pid = child.pid!;
  const kill = () => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const unregister = exitCleanup(kill);
  const timer = setTimeout(kill, timeoutMs);
  return new Promise<ParamikoX11Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      unregister();
      kill();
      const out = readFileSync(paths[1], 'utf8');
      const err = readFileSync(paths[2], 'utf8');
      rmSync(work, { recursive: true, force: true });
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ParamikoX11Result);
      } catch {
        reject(new Error(`paramiko_x11.py printed no result: ${out.slice(-2000)}${err.slice(-2000)}`));
      }
    });
  });
}

describe("Paramiko's client against our server", () => {
  itWithPeers(['paramiko'], 'request_x11 arrives decoded; its transport.accept() gets the channel of openX11Channel', async () => {
    const server = new X11Server();
    const explicit = { screen: 3, protocol: 'MIT-MAGIC-COOKIE-1', cookie: '00112233445566778899aabbccddeeff', single: true };
    const run = paramikoX11({ requests: [{}, explicit, { screen: REFUSED_SCREEN }], accept: true });
    const st = serve(server);
    // Paramiko takes x11 channels only once request_x11 has returned (it sets its handler after
    // the reply): the script says when with a global request.
    expect(server.ready.wait(20)).toBe(true);
    const sx = st.openX11Channel(['127.0.0.1', 6010]);
    sx.settimeout(20);
    sx.sendall('hello from the X client\n');
    const answer = readAll(sx);
    sx.close();
    const r = await run;
    expect(r.error).toBeNull();
    expect(answer).toBe('reply:hello from the X client\n');
    expect(Buffer.from(r.x11!, 'base64').toString()).toBe('hello from the X client\n');
    const [dflt, given, refused] = r.requests;
    expect(dflt.cookie).toMatch(HEX128);
    expect(given).toEqual({ cookie: explicit.cookie, error: null });
    expect(refused.cookie).toBeNull();
    expect(refused.error).toMatch(/^SSHException/);
    expect(server.requests.map(({ chanid: _c, ...rest }) => rest)).toEqual([
      { singleConnection: false, authProtocol: 'MIT-MAGIC-COOKIE-1', authCookie: dflt.cookie, screenNumber: 0 },
      { singleConnection: true, authProtocol: explicit.protocol, authCookie: explicit.cookie, screenNumber: 3 },
      { singleConnection: false, authProtocol: 'MIT-MAGIC-COOKIE-1', authCookie: expect.stringMatching(HEX128), screenNumber: REFUSED_SCREEN },
    ]);
  });

  itWithPeers(['paramiko'], "openX11Channel's source address reaches the handler of Paramiko's request_x11", async () => {
    const server = new X11Server();
    const run = paramikoX11({ requests: [{}], accept: true, handler: true });
    const st = serve(server);
    expect(server.ready.wait(20)).toBe(true);
    const sx = st.openX11Channel(['192.0.2.7', 4711]);
    sx.settimeout(20);
    sx.sendall('ping\n');
    expect(readAll(sx)).toBe('reply:ping\n');
    sx.close();
    const r = await run;
    expect(r.error).toBeNull();
    expect(r.origin).toEqual(['192.0.2.7', 4711]);
  });
});

// ---- OpenSSH's sshd ---------------------------------------------------------------------------

/** An X client on the server's side: connects to $DISPLAY's port, says hello, prints the answer. */
const X_CLIENT = `
import os, socket
display = int(os.environ["DISPLAY"].split(":")[1].split(".")[0])
s = socket.create_connection(("127.0.0.1", 6000 + display), 10)
print("L=%d" % s.getsockname()[1], flush=True)
s.sendall(b"hello from xclient\\n")
got = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
print("R=" + got.decode(), flush=True)
`;

describe("our client against OpenSSH's sshd", () => {
  let sshd: SshdServer | null = null;
  let userKey: string;

  beforeAll(async () => {
    if (!hasPeer('sshd') || !hasPeer('xauth')) return;
    const key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
    userKey = key.path;
    sshd = await startSshd({ authorizedKeys: [key.publicKey], x11Forwarding: true });
  });
  afterAll(() => sshd?.stop());

  for (const via of ['accept()', 'the handler'] as const) {
    itWithPeers(['sshd', 'xauth'], `requestX11: sshd stores the cookie, and a connection to its display arrives as an x11 channel via ${via}`, () => {
      const s = sshd!;
      const c = new SSHClient();
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      try {
        c.connect(s.host, { port: s.port, username: s.user.username, keyFilename: userKey, lookForKeys: false, allowAgent: false, timeout: 10 });
        const t = c.getTransport()!;
        const ch = t.openSession();
        const handled: Channel[] = [];
        const cookie = via === 'accept()' ? ch.requestX11() : ch.requestX11({ handler: (x) => handled.push(x) });
        expect(cookie).toMatch(HEX128);
        // xauth entries live in the test user's home: the command removes its own again.
        ch.execCommand('printf "D=%s\\n" "$DISPLAY"; xauth list; python3 -; s=$?; xauth remove "unix:${DISPLAY#*:}" >/dev/null 2>&1; exit $s');
        ch.sendall(X_CLIENT);
        ch.shutdownWrite();
        let x: Channel | null = null;
        if (via === 'accept()') x = t.accept(20);
        else {
          blockUntil(() => handled.length > 0, 20); // the handler runs while this thread waits
          x = handled[0] ?? null;
          expect(t.accept(0)).toBeNull();
        }
        expect(x).not.toBeNull();
        expect(x!.kind).toBe('x11');
        x!.settimeout(20);
        let hello = '';
        while (!hello.endsWith('\n')) {
          const b = x!.recv(100);
          if (!b.length) break;
          hello += b.toString();
        }
        expect(hello).toBe('hello from xclient\n');
        x!.sendall('hello from the X server\n');
        x!.close();
        ch.settimeout(20);
        const out = readAll(ch);
        expect(ch.recvExitStatus()).toBe(0);
        expect(out).toMatch(/^D=localhost:1\d\.0$/m);
        expect(out).toContain(`MIT-MAGIC-COOKIE-1  ${cookie}`);
        expect(out).toContain('R=hello from the X server\n');
        // sshd gives the X client's address and port as the channel's origin (RFC 4254 6.3.2).
        const localPort = Number(/^L=(\d+)$/m.exec(out)?.[1]);
        expect(x!.origin).toEqual(['127.0.0.1', localPort]);
      } finally {
        c.close();
      }
    });
  }
});
