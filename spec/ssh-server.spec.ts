import { randomBytes } from 'node:crypto';
/**
 * The embedded SSHServer: it runs entirely in the transport worker, so this library's own
 * client (blocking calls on this thread) and external clients run by execFileSync (this thread
 * blocked outside the library) are both served.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { chooseModuliGroup, parseModuli } from '../lib/transport/kex/moduli';
import { tmpdir } from 'node:os';
import { connect as netConnect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  AuthenticationException,
  AutoAddPolicy,
  BadAuthenticationType,
  ChannelException,
  Ed25519Key,
  RSAKey,
  SCPClient,
  SSHClient,
  OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
  OPEN_FAILED_CONNECT_FAILED,
  OPEN_FAILED_RESOURCE_SHORTAGE,
  SSHException,
  SSHServer,
  SocketTimeout,
  Transport,
} from '../lib';
import { catchError } from './support/bridge-helpers';
import { echoServer, greetingThrough, refusedWithin, roundTrip } from './support/echo';
import { itWithPeers, OPENSSH_ROOT } from './support/peers';

const PASSWORD = 'sw0rdfish';
let dir: string;
let userKey: Ed25519Key;
let userKeyPath: string;
let server: SSHServer;
const clients: SSHClient[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-sshserver-'));
  userKey = Ed25519Key.generate();
  userKeyPath = join(dir, 'id_ed25519');
  userKey.writePrivateKeyFile(userKeyPath);
  server = SSHServer.start({
    users: { alice: PASSWORD, bob: { authorizedKeys: [userKey] }, carol: { password: PASSWORD, authorizedKeys: [userKey] } },
    env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8' },
    banner: 'welcome to the test server\n',
  });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function client(username: string, options: Record<string, unknown> = {}): SSHClient {
  const c = new SSHClient();
  clients.push(c);
  c.setMissingHostKeyPolicy(new AutoAddPolicy());
  c.connect(server.host, { port: server.port, username, allowAgent: false, lookForKeys: false, timeout: 10, ...options });
  return c;
}

/** Runs `command`, returns [stdout, stderr, status]. */
function run(c: SSHClient, command: string, options: Record<string, unknown> = {}): [string, string, number] {
  const [, stdout, stderr] = c.execCommand(command, { timeout: 20, ...options });
  const out = stdout.read().toString();
  const err = stderr.read().toString();
  return [out, err, stdout.channel.recvExitStatus()];
}

describe('SSHServer', () => {
  it('listens on 127.0.0.1 with a free port and runs exec through the shell (password)', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    const c = client('alice', { password: PASSWORD });
    expect(run(c, 'echo out; echo err >&2; exit 4')).toEqual(['out\n', 'err\n', 4]);
    expect(c.getTransport()!.getBanner()).toBe('welcome to the test server\n');
  });

  it('publickey auth from authorizedKeys; other keys and wrong passwords are refused', () => {
    const c = client('bob', { pkey: userKey });
    expect(run(c, 'echo $USER')[0]).toBe('bob\n');
    expect(() => client('bob', { pkey: Ed25519Key.generate() })).toThrow(AuthenticationException);
    expect(() => client('alice', { password: 'nope' })).toThrow(AuthenticationException);
    expect(() => client('nobody', { password: PASSWORD })).toThrow(AuthenticationException);
    // Paramiko's text, then what was refused, what the server accepts and what connect() tried.
    const refused = catchError(() => client('alice', { pkey: Ed25519Key.generate(), password: 'nope' })) as AuthenticationException & { allowedTypes?: string[] };
    expect(refused.constructor).toBe(AuthenticationException);
    expect(refused.message).toMatch(/^Authentication failed\. \((password|keyboard-interactive) refused; the server accepts: [a-z-]+(, [a-z-]+)*\) Tried for "alice": 1 key, then the password\.$/);
    expect(refused.allowedTypes).toContain('password');
  });

  it('a refusal lists the same methods for every user name (no user enumeration, as sshd)', () => {
    const offered = (username: string): string[] => {
      const t = new Transport([server.host, server.port]);
      try {
        t.startClient({ timeout: 10 });
        return (catchError(() => t.authNone(username)) as BadAuthenticationType).allowedTypes;
      } finally {
        t.close();
      }
    };
    // alice has only a password, bob only a key, carol both, nobody does not exist.
    const lists = ['alice', 'bob', 'carol', 'nobody'].map(offered);
    expect(lists[0]).toEqual(['publickey', 'password', 'keyboard-interactive']);
    for (const l of lists) expect(l).toEqual(lists[0]);
  });

  it('keyboard-interactive: one Password prompt', () => {
    const t = new Transport([server.host, server.port]);
    try {
      t.startClient({ timeout: 10 });
      const prompts: string[] = [];
      t.authInteractive('alice', (_title, _instr, ps) => {
        prompts.push(...ps.map(([p]) => p));
        return [PASSWORD];
      });
      expect(prompts).toEqual(['Password: ']);
      expect(t.isAuthenticated()).toBe(true);
    } finally {
      t.close();
    }
  });

  it('passwordExpired: the password logs in only by changing it (RFC 4252 section 8), and the new one replaces it', () => {
    const expiring = SSHServer.start({ users: { dave: { password: 'old pw', passwordExpired: true } }, env: { PATH: '/usr/bin:/bin', HOME: dir } });
    const at = (password: string, options: Record<string, unknown> = {}): SSHClient => {
      const c = new SSHClient();
      clients.push(c);
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      c.connect(expiring.host, { port: expiring.port, username: 'dave', password, allowAgent: false, lookForKeys: false, timeout: 10, ...options });
      return c;
    };
    try {
      // Keyboard-interactive cannot go round the expiry.
      const t = new Transport([expiring.host, expiring.port]);
      try {
        t.startClient({ timeout: 10 });
        expect(() => t.authInteractive('dave', () => ['old pw'])).toThrow(AuthenticationException);
      } finally {
        t.close();
      }
      expect(() => at('old pw')).toThrow(/requires a new password \("Your password has expired: choose a new one"\)/);
      const prompts: string[] = [];
      const c = at('old pw', {
        passwordChange: (prompt: string) => {
          prompts.push(prompt);
          return prompts.length === 1 ? ['old pw', 'old pw'] : ['old pw', 'new pw'];
        },
      });
      expect(prompts).toEqual(['Your password has expired: choose a new one', 'The new password must not be empty or the old one']);
      const [, out] = c.execCommand('echo in', { timeout: 20 });
      expect(out.read().toString()).toBe('in\n');
      expect(at('new pw').getTransport()!.isAuthenticated()).toBe(true);
      expect(() => at('old pw')).toThrow(AuthenticationException);
      expect(expiring.log().join('\n')).toMatch(/dave: password changed/);
    } finally {
      expiring.close();
    }
  });

  it('streams a large output with flow control, stdin to the process, and EOF', () => {
    const c = client('alice', { password: PASSWORD });
    const [out, , status] = run(c, 'head -c 8388608 /dev/zero | tr "\\0" x');
    expect(out.length).toBe(8 * 1024 * 1024);
    expect(status).toBe(0);
    const [stdin, stdout] = c.execCommand('sha256sum', { timeout: 20 });
    const payload = Buffer.alloc(3 * 1024 * 1024, 'abc');
    stdin.write(payload);
    stdin.close();
    const want = require('node:crypto').createHash('sha256').update(payload).digest('hex');
    expect(stdout.read().toString()).toContain(want);
  });

  it('read() to EOF of a large output: every byte in order, and a late tail times out as a recv would', () => {
    // Past 4 MiB a read to EOF fills one growing buffer straight from the ring. The timeout
    // counts from the last data, as each of Paramiko's recv() calls: a byte after a pause must
    // be seen as it comes, not when some later wake happens to find it (a reader woken per
    // megabyte to save wake-ups would let it sit; docs/performance.md, session 11).
    const c = client('alice', { password: PASSWORD });
    const [out, , status] = run(c, 'seq 1 3000000');
    expect(status).toBe(0);
    const lines = out.split('\n');
    expect(lines.length).toBe(3000001);
    expect(lines.every((line, i) => line === (i < 3000000 ? String(i + 1) : ''))).toBe(true);
    const [, stdout] = c.execCommand('head -c 6000000 /dev/zero; printf a; sleep 3; printf b', { timeout: 1.5 });
    const started = Date.now();
    expect(catchError(() => stdout.read())).toBeInstanceOf(SocketTimeout);
    // 'a' came within a few ms: 1.5 s after it, not 1.5 s after a wake that saw nothing, then 1.5 more.
    expect(Date.now() - started).toBeLessThan(2600);
    stdout.channel.settimeout(null);
    const all = stdout.read();
    expect([all.length, all.subarray(-2).toString()]).toEqual([6000002, 'ab']);
  });

  it('exit signals: a command killed by a signal reports it', () => {
    const c = client('alice', { password: PASSWORD });
    const [, stdout] = c.execCommand('kill -TERM $$', { timeout: 20 });
    stdout.read();
    expect(stdout.channel.recvExitStatus()).toBe(-1);
    expect(stdout.channel.exitSignal?.signal).toBe('TERM');
  });

  it('a signal request reaches the process', () => {
    const c = client('alice', { password: PASSWORD });
    const ch = c.getTransport()!.openSession();
    ch.execCommand('sleep 30');
    ch.sendSignal('INT');
    expect(ch.recvExitStatus()).toBe(-1);
    expect(ch.exitSignal?.signal).toBe('INT');
  });

  it('a shell with a pty: size, resize and TERM', () => {
    const c = client('alice', { password: PASSWORD });
    const ch = c.getTransport()!.openSession();
    ch.getPty({ term: 'xterm-256color', width: 120, height: 40 });
    ch.invokeShell();
    ch.settimeout(20);
    const readUntil = (marker: string): string => {
      let text = '';
      while (!text.includes(marker)) {
        const d = ch.recv(4096);
        if (!d.length) break;
        text += d.toString();
      }
      return text;
    };
    ch.sendall('stty size; echo "T=$TERM"; echo MARK1\n');
    // The echo of the typed line also contains MARK1: wait for the output line.
    let text = readUntil('\nMARK1');
    expect(text).toContain('40 120');
    expect(text).toContain('T=xterm-256color');
    ch.resizePty({ width: 100, height: 30 });
    ch.sendall('stty size; echo MARK2\n');
    text = readUntil('\nMARK2');
    expect(text).toContain('30 100');
    ch.sendall('exit 6\n');
    expect(ch.recvExitStatus()).toBe(6);
  });

  it('a break (RFC 4335) is taken on a pty session, as sshd, and refused without one', () => {
    const c = client('alice', { password: PASSWORD });
    const from = server.logSince(0).next;
    const ch = c.getTransport()!.openSession();
    ch.getPty();
    ch.invokeShell();
    expect(ch.sendBreak(150)).toBe(true);
    ch.sendall('exit 4\n');
    expect(ch.recvExitStatus()).toBe(4);
    expect(server.logSince(from).lines.join('\n')).toMatch(/alice: break \(150 ms asked\)/);
    const plain = c.getTransport()!.openSession();
    plain.execCommand('sleep 5');
    expect(plain.sendBreak()).toBe(false);
    plain.close();
  });

  itWithPeers(['ssh'], "OpenSSH's ssh -tt sends a break with its ~B escape; the server takes it", () => {
    const kh = join(dir, 'known_hosts-break');
    writeFileSync(kh, server.knownHosts());
    const from = server.logSince(0).next;
    const res = spawnSync(
      `${OPENSSH_ROOT}/usr/bin/ssh`,
      ['-tt', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none', '-o', 'IdentitiesOnly=yes', '-i', userKeyPath,
        '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${kh}`, '-p', String(server.port), 'bob@127.0.0.1'],
      // The escape is read at the start of a line: ~B first, then a command for the shell.
      { timeout: 20000, input: '~Bexit 5\n' },
    );
    expect(res.status).toBe(5);
    expect(server.logSince(from).lines.join('\n')).toMatch(/bob: break \(\d+ ms asked\)/);
  });

  it('accepts only the env variables it is told to (LANG, LC_*)', () => {
    const c = client('alice', { password: PASSWORD });
    const [out] = run(c, 'echo "$LC_PAPER/$SECRET"', { environment: { LC_PAPER: 'a4', SECRET: 'x' } });
    expect(out).toBe('a4/\n');
  });

  it('limits sessions per connection (MaxSessions)', () => {
    const small = SSHServer.start({ users: { alice: PASSWORD }, maxSessions: 2 });
    try {
      const c = new SSHClient();
      clients.push(c);
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      c.connect(small.host, { port: small.port, username: 'alice', password: PASSWORD, allowAgent: false, lookForKeys: false });
      const t = c.getTransport()!;
      t.openSession();
      t.openSession();
      // The text says why, not only the code (4, resource shortage).
      expect(() => t.openSession()).toThrow(new ChannelException(OPEN_FAILED_RESOURCE_SHORTAGE, "too many sessions on this connection (2 open, the server's maxSessions)"));
    } finally {
      small.close();
    }
  });

  it('no-more-sessions@openssh.com: the sessions open stay, later ones are refused (as sshd)', () => {
    const c = client('alice', { password: PASSWORD });
    const t = c.getTransport()!;
    const first = t.openSession();
    expect(t.globalRequest('no-more-sessions@openssh.com', null, true)).not.toBeNull();
    const e = catchError(() => t.openSession());
    expect(e).toBeInstanceOf(ChannelException);
    expect((e as ChannelException).code).toBe(OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED);
    expect((e as ChannelException).text).toMatch(/no-more-sessions@openssh.com/);
    first.execCommand('echo still');
    expect(first.makefile().read().toString()).toBe('still\n');
  });

  it('forwarding: forwardLocalPort, forwardRemotePort and the unix socket forwards through it, cancel; a destination nobody listens on is refused; off with exec: false', async () => {
    const echo = await echoServer();
    try {
      const c = client('alice', { password: PASSWORD });
      const data = randomBytes(2 << 20);
      using local = c.forwardLocalPort('127.0.0.1', 0, '127.0.0.1', echo.port);
      expect((await roundTrip(local.port, data)).equals(data)).toBe(true);
      const remote = c.forwardRemotePort('', 0, '127.0.0.1', echo.port);
      expect((await roundTrip(remote.port, data)).equals(data)).toBe(true);
      remote.close();
      expect(await refusedWithin(remote.port)).toBe(true);
      // A client that hangs up at once (its FIN comes while the channel is still opening): the
      // connection to the destination is closed too, not left open.
      const destClosed = await new Promise<boolean>((resolve) => {
        const dest = createServer((s) => s.on('close', () => dest.close(() => resolve(true))));
        dest.listen(0, '127.0.0.1', () => {
          const fwd = c.forwardLocalPort('127.0.0.1', 0, '127.0.0.1', (dest.address() as AddressInfo).port);
          const quitter = netConnect(fwd.port, '127.0.0.1', () => quitter.destroy());
          setTimeout(() => resolve(false), 5000);
        });
      });
      expect(destClosed).toBe(true);
      // A destination that speaks first: its greeting comes through before we send anything.
      expect(await greetingThrough((port) => c.forwardLocalPort('127.0.0.1', 0, '127.0.0.1', port))).toBe('220 hello first\n');
      // Unix sockets both ways (streamlocal), to an echo server on a socket here.
      const sockets = mkdtempSync(join(tmpdir(), 'pts-sl-'));
      const unixEcho = await echoServer(join(sockets, 'echo.sock'));
      try {
        using _toPath = c.forwardLocalPath(join(sockets, 'local.sock'), join(sockets, 'echo.sock'));
        expect((await roundTrip(join(sockets, 'local.sock'), data)).equals(data)).toBe(true);
        const fromPath = c.forwardRemotePath(join(sockets, 'remote.sock'), join(sockets, 'echo.sock'));
        expect((await roundTrip(join(sockets, 'remote.sock'), data)).equals(data)).toBe(true);
        expect(() => c.forwardRemotePath(join(sockets, 'remote.sock'), join(sockets, 'echo.sock'))).toThrow(SSHException); // taken
        fromPath.close();
        expect(await refusedWithin(join(sockets, 'remote.sock'))).toBe(true);
        expect(existsSync(join(sockets, 'remote.sock'))).toBe(false); // the server removed its socket
      } finally {
        await unixEcho.close();
        rmSync(sockets, { recursive: true, force: true });
      }
      const e = catchError(() => c.getTransport()!.openChannel('direct-tcpip', ['127.0.0.1', 1], ['127.0.0.1', 4242]));
      expect(e).toBeInstanceOf(ChannelException);
      expect((e as ChannelException).code).toBe(OPEN_FAILED_CONNECT_FAILED);
      expect((e as ChannelException).text).toBe('connect failed: ECONNREFUSED'); // as sshd's "connect failed: ..."
      // Off: refused administratively.
      const closed = SSHServer.start({ users: { alice: PASSWORD }, exec: false });
      try {
        const c2 = new SSHClient();
        clients.push(c2);
        c2.setMissingHostKeyPolicy(new AutoAddPolicy());
        c2.connect(closed.host, { port: closed.port, username: 'alice', password: PASSWORD, allowAgent: false, lookForKeys: false });
        const off = catchError(() => c2.getTransport()!.openChannel('direct-tcpip', ['127.0.0.1', echo.port], ['127.0.0.1', 4242]));
        expect((off as ChannelException).code).toBe(OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED);
        expect((off as ChannelException).text).toBe('direct-tcpip channels are not served here');
        expect(() => c2.forwardRemotePort('', 0, '127.0.0.1', echo.port)).toThrow(SSHException);
      } finally {
        closed.close();
      }
    } finally {
      await echo.close();
    }
  });

  it('authMethods: publickey then password, as AuthenticationMethods', () => {
    const strict = SSHServer.start({ users: { carol: { password: PASSWORD, authorizedKeys: [userKey] } }, authMethods: ['publickey', 'password'] });
    try {
      const t = new Transport([strict.host, strict.port]);
      try {
        t.startClient({ timeout: 10 });
        expect(() => t.authPassword('carol', PASSWORD)).toThrow(BadAuthenticationType);
        // keyboard-interactive stands in for password in the chain.
        expect(t.authPublickey('carol', userKey)).toEqual(['password', 'keyboard-interactive']);
        expect(t.isAuthenticated()).toBe(false);
        expect(t.authPassword('carol', PASSWORD)).toEqual([]);
        expect(t.isAuthenticated()).toBe(true);
      } finally {
        t.close();
      }
    } finally {
      strict.close();
    }
  });

  it('connections, channels, forwards, listeners and SFTP sessions that come and go are not kept alive in the worker', () => {
    // Pending timers of finished work held it and its buffers (a connection's banner timeout for
    // 15 s and its socket cut-off for 1 s, a forward's cut-off for 5 s), and so did an SFTP
    // session left open when its client closed (as Paramiko scripts often do): a loop of short
    // connections or forwards kept thousands alive. In a child with --expose-gc, which the
    // worker inherits; the forwards go to the SSH server's own port (it speaks first), the port
    // forwards' listeners to an echo server of the child. Half of those listeners are closed by
    // hand, the rest by the client's close (as a script that forgets them); SFTP files are left
    // open; every fourth connection runs over a socket-like object of the child's main thread.
    // Nothing may stay: no object, no listening port, no file descriptor, no socket pump.
    const script = `
      const { AutoAddPolicy, SSHClient, SSHServer, createConnection } = require('./dist/index.js');
      // A socket-like object of this thread (every fourth connection): its pump must go too.
      const wrap = (s) => ({ send: (d) => s.send(d), recv: (n) => s.recv(n), settimeout: (t) => s.settimeout(t), close: () => s.close() });
      const { getBridge } = require('./dist/bridge');
      const net = require('node:net');
      const fs = require('node:fs');
      const roundTrip = (port, data) => new Promise((resolve, reject) => {
        const chunks = [];
        const s = net.connect(port, '127.0.0.1', () => s.end(data));
        s.on('data', (d) => chunks.push(d)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
      });
      const listening = (port) => new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); }).on('error', () => resolve(false));
      });
      const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      (async () => {
        const echo = net.createServer((s) => s.pipe(s));
        await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));
        const server = SSHServer.start({ users: { u: 'p' }, exec: () => ({ stdout: 'x' }), sftp: { root: ${JSON.stringify(dir)} }, forwarding: true });
        const fds = fs.readdirSync('/proc/self/fd').length;
        const ports = [];
        try {
          for (let i = 0; i < 30; i++) {
            const c = new SSHClient();
            c.setMissingHostKeyPolicy(new AutoAddPolicy());
            const sock = i % 4 === 3 ? wrap(createConnection([server.host, server.port], 10)) : undefined;
            c.connect(server.host, { port: server.port, username: 'u', password: 'p', allowAgent: false, lookForKeys: false, bannerTimeout: 15, sock });
            const [, out] = c.execCommand('anything');
            out.read();
            if (i % 3 === 0) {
              const sftp = c.openSftp();
              sftp.listdir('.');
              const f = sftp.open('come-and-go', 'w');
              f.write('data');
              if (i % 2) f.close();
            }
            if (i % 3 === 1) {
              for (let j = 0; j < 5; j++) {
                const ch = c.getTransport().openChannel('direct-tcpip', [server.host, server.port], ['127.0.0.1', 1]);
                ch.settimeout(10);
                if (!ch.recv(4).toString().startsWith('SSH-')) throw new Error('no SSH banner through the forward');
                ch.close();
              }
            }
            if (i % 3 === 2) {
              const data = Buffer.alloc(200000, i);
              const local = c.forwardLocalPort('127.0.0.1', 0, '127.0.0.1', echo.address().port);
              const remote = c.forwardRemotePort('127.0.0.1', 0, '127.0.0.1', echo.address().port);
              for (const f of [local, remote]) {
                if (!(await roundTrip(f.port, data)).equals(data)) throw new Error('data changed through a port forward');
                ports.push(f.port);
                if (i % 2) f.close();
              }
            }
            c.close();
          }
          const live = () => getBridge().call('bridge', 'live', {}, 10);
          // Closing ends within a moment; nothing of it may take seconds.
          let n = live();
          for (let waited = 0; Object.keys(n).length > 0 && waited < 1000; waited += 50) {
            await pause(50);
            n = live();
          }
          const open = [];
          for (const port of ports) if (await listening(port)) open.push(port);
          const pollers = getBridge().pollers.size;
          console.log(JSON.stringify({ live: n, listening: open, fds: fs.readdirSync('/proc/self/fd').length - fds, pollers }));
        } finally {
          server.close();
          echo.close();
        }
      })().catch((e) => { console.error(e); process.exitCode = 1; });
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 60000 });
    expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ live: {}, listening: [], fds: 0, pollers: 0 });
  });

  it('exec through a main-thread callback', () => {
    const seen: string[] = [];
    const cb = SSHServer.start({
      users: { alice: PASSWORD },
      exec: (command, ctx) => {
        seen.push(`${ctx.username}: ${command}`);
        return command === 'fail' ? { stderr: 'no\n', status: 2 } : { stdout: command.toUpperCase() };
      },
    });
    try {
      const c = new SSHClient();
      clients.push(c);
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      c.connect(cb.host, { port: cb.port, username: 'alice', password: PASSWORD, allowAgent: false, lookForKeys: false });
      expect(run(c, 'hello')).toEqual(['HELLO', '', 0]);
      expect(run(c, 'fail')).toEqual(['', 'no\n', 2]);
      expect(seen).toEqual(['alice: hello', 'alice: fail']);
      // Shells are refused when exec is a callback.
      expect(() => c.invokeShell()).toThrow();
    } finally {
      cb.close();
    }
  });

  it('close() ends every session and the clients see the connection go', () => {
    const s = SSHServer.start({ users: { alice: PASSWORD } });
    const c = new SSHClient();
    clients.push(c);
    c.setMissingHostKeyPolicy(new AutoAddPolicy());
    c.connect(s.host, { port: s.port, username: 'alice', password: PASSWORD, allowAgent: false, lookForKeys: false });
    const [, stdout] = c.execCommand('sleep 30', { timeout: 20 });
    s.close();
    expect(stdout.read().toString()).toBe('');
    expect(stdout.channel.recvExitStatus()).toBe(-1);
    expect(c.getTransport()!.isActive()).toBe(false);
    expect(() => s.status()).toThrow(/closed/);
  });

  it("a pty session's Python helper is started ahead by the previous one, and none is left once the last server closes", () => {
    // In a child: the helpers are that process's children, and its only server is closed.
    const script = `
      const fs = require('node:fs');
      const { SSHServer, SSHClient, AutoAddPolicy } = require('./dist');
      /** Our pty helpers still running: children of this process running python -I -S -c. */
      const helpers = () => fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).filter((n) => {
        try {
          const stat = fs.readFileSync('/proc/' + n + '/stat', 'latin1');
          const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return Number(ppid) === process.pid && state !== 'Z' && fs.readFileSync('/proc/' + n + '/cmdline', 'latin1').includes('-I\\0-S\\0-c');
        } catch { return false; }
      }).length;
      const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      const server = SSHServer.start({ users: { u: 'p' }, shell: '/bin/sh', env: { PATH: '/usr/bin:/bin' } });
      const c = new SSHClient();
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      const counts = [helpers()];
      try {
        c.connect(server.host, { port: server.port, username: 'u', password: 'p', lookForKeys: false, allowAgent: false });
        for (let i = 0; i < 2; i++) {
          const [, out] = c.execCommand('echo hi', { getPty: true });
          if (out.read().toString() !== 'hi\\r\\n') throw new Error('no output');
          sleep(300);
          counts.push(helpers());
        }
      } finally {
        c.close();
        server.close();
      }
      for (let i = 0; i < 100 && helpers() > 0; i++) sleep(20);
      counts.push(helpers());
      process.stdout.write(JSON.stringify(counts));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).toBe('');
    // None before; after each session, the one started ahead for the next (the session's own
    // has ended); none after the close.
    expect(JSON.parse(r.stdout)).toEqual([0, 1, 1, 0]);
  });

  it("rekeyBytes and rekeySeconds (sshd's RekeyLimit): the server starts key exchanges by traffic and by time; bad values are TypeErrors", () => {
    // In a child with NODE_DEBUG: the connections' log is where a key exchange shows.
    const script = `
      const { SSHServer, SSHClient, AutoAddPolicy } = require('./dist');
      const server = SSHServer.start({ users: { u: 'p' }, rekeyBytes: 1 << 20, rekeySeconds: 0.5, env: { PATH: '/usr/bin:/bin' } });
      const c = new SSHClient();
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      try {
        c.connect(server.host, { port: server.port, username: 'u', password: 'p', lookForKeys: false, allowAgent: false });
        const [, out] = c.execCommand('head -c 5000000 /dev/zero');
        if (out.read().length !== 5000000) throw new Error('short output');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200);
        process.stdout.write(c.run('echo still here').stdout);
      } finally {
        c.close();
        server.close();
      }
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 60000, env: { ...process.env, NODE_DEBUG: 'paramiko-ts' } });
    expect(r.stdout).toBe('still here\n');
    expect((r.stderr.match(/rekeying: traffic limit reached/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(r.stderr).toMatch(/rekeying: time limit reached/);
    expect(() => SSHServer.start({ users: { u: 'p' }, rekeyBytes: 8 })).toThrow(/rekeyBytes must be an integer of at least 16/);
    expect(() => SSHServer.start({ users: { u: 'p' }, rekeySeconds: Number.NaN })).toThrow(TypeError);
  });

  it('UpdateHostKeys against our own server: the client proves and records the host key it did not know', () => {
    const file = join(dir, 'known_hosts_update');
    const name = `[${server.host}]:${server.port}`;
    const [first, ...others] = server.hostKeys;
    writeFileSync(file, `${name} ${first.getName()} ${first.getBase64()}\n`);
    const c = new SSHClient();
    clients.push(c);
    c.loadHostKeys(file);
    c.connect(server.host, { port: server.port, username: 'alice', password: PASSWORD, allowAgent: false, lookForKeys: false, timeout: 10, updateHostKeys: true });
    expect(run(c, 'true')[2]).toBe(0);
    for (let i = 0; i < 100 && c.getTransport()!.getProvenHostKeys().length === 0; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    expect(c.getTransport()!.getProvenHostKeys().map((k) => k.fingerprint)).toEqual(others.map((k) => k.fingerprint));
    c.close();
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ')[1]).sort()).toEqual(server.hostKeys.map((k) => k.getName()).sort());
  });

  it('logs connections, logins, commands and refusals', () => {
    const c = client('alice', { password: PASSWORD });
    run(c, 'true');
    expect(() => client('alice', { password: 'bad' })).toThrow(AuthenticationException);
    const log = server.log().join('\n');
    expect(log).toMatch(/alice: logged in \(password\)/);
    expect(log).toMatch(/alice: exec "true"/);
    expect(log).toMatch(/alice: password refused/);
    expect(server.status().authenticated).toBeGreaterThan(0);
  });

  it('serves host keys given as files and publishes them for known_hosts', () => {
    const rsaPath = join(dir, 'host_rsa');
    const rsa = RSAKey.generate(2048);
    rsa.writePrivateKeyFile(rsaPath);
    const s = SSHServer.start({ users: { alice: PASSWORD }, hostKeys: [rsaPath] });
    try {
      expect(s.hostKeys.map((k) => k.getName())).toEqual(['ssh-rsa']);
      expect(s.knownHosts()).toBe(`[127.0.0.1]:${s.port} ssh-rsa ${rsa.getBase64()}\n`);
      const t = new Transport([s.host, s.port]);
      try {
        t.startClient({ timeout: 10 });
        expect(t.getRemoteServerKey().equals(rsa)).toBe(true);
        expect(t.getNegotiated()!.hostKey).toBe('rsa-sha2-512');
      } finally {
        t.close();
      }
    } finally {
      s.close();
    }
  });

  itWithPeers(['ssh'], 'keeps serving while this thread is blocked in execFileSync of OpenSSH ssh', () => {
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, server.knownHosts());
    const out = execFileSync(
      `${OPENSSH_ROOT}/usr/bin/ssh`,
      ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none', '-o', 'IdentitiesOnly=yes', '-i', userKeyPath,
        '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${kh}`, '-p', String(server.port), 'bob@127.0.0.1', 'echo from ssh; exit 0'],
      { timeout: 20000, input: '' },
    ).toString();
    expect(out).toBe('from ssh\n');
  });

  it('npx paramiko-ts serve: the command line starts the same server (with --scp and --no-forwarding)', async () => {
    const cli = join(__dirname, '..', 'dist', 'cli.js');
    const keys = join(dir, 'cli_keys');
    writeFileSync(keys, `${userKey.getName()} ${userKey.getBase64()}\n`);
    const jail = join(dir, 'cli-jail');
    mkdirSync(jail, { recursive: true });
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--user', `dave:${PASSWORD}`, '--user-key', `erin:${keys}`, '--sftp-root', jail, '--scp', '--no-forwarding'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let text = '';
        child.stderr.on('data', (d: Buffer) => {
          text += d.toString();
          const m = /port (\d+)/.exec(text);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${text}`)));
      });
      const c = new SSHClient();
      clients.push(c);
      c.setMissingHostKeyPolicy(new AutoAddPolicy());
      c.connect('127.0.0.1', { port, username: 'erin', pkey: userKey, allowAgent: false, lookForKeys: false });
      expect(run(c, 'echo cli')[0]).toBe('cli\n');
      new SCPClient(c.getTransport()!).putfo('over scp\n', '/from-cli-scp');
      expect(readFileSync(join(jail, 'from-cli-scp'), 'utf8')).toBe('over scp\n');
      // --no-forwarding: exec is on, forwarding off.
      const refused = catchError(() => c.getTransport()!.openChannel('direct-tcpip', ['127.0.0.1', port], ['127.0.0.1', 0]));
      expect((refused as ChannelException).code).toBe(OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED);
      c.close();
    } finally {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  // /etc/ssh/moduli comes with openssh-server.
  itWithPeers(['sshd'], 'group exchange from an OpenSSH moduli file (moduli: true, and Transport.loadServerModuli)', () => {
    expect(Transport.loadServerModuli('/nonexistent/moduli')).toBe(false);
    expect(existsSync('/etc/ssh/moduli')).toBe(true);
    expect(Transport.loadServerModuli()).toBe(true);
    const s = SSHServer.start({ users: { alice: PASSWORD }, moduli: true });
    try {
      const t = new Transport([s.host, s.port]);
      try {
        t.getSecurityOptions().kex = ['diffie-hellman-group-exchange-sha256'];
        t.startClient({ timeout: 10 });
        expect(t.getNegotiated()!.kex).toBe('diffie-hellman-group-exchange-sha256');
      } finally {
        t.close();
      }
    } finally {
      s.close();
    }
  });

  it('moduli parsing keeps tested safe primes and picks the size asked for', () => {
    const p2048 = 'F'.repeat(512);
    const p3072 = 'E'.repeat(768);
    const text = [
      '# comment',
      `20220714110736 2 6 100 2047 5 ${p2048}`,
      `20220714110736 2 6 100 3071 2 ${p3072}`,
      `20220714110736 1 6 100 3071 2 ${p3072}`, // not a safe prime: skipped
      `20220714110736 2 1 100 3071 2 ${p3072}`, // only sieved: skipped
      'garbage line',
    ].join('\n');
    const groups = parseModuli(text);
    expect(groups.map((g) => [g.bits, Number(g.g)])).toEqual([[2048, 5], [3072, 2]]);
    expect(chooseModuliGroup(groups, 2048, 3072, 8192).p).toBe(BigInt('0x' + p3072));
    expect(chooseModuliGroup(groups, 2048, 2048, 2048).p).toBe(BigInt('0x' + p2048));
    expect(() => chooseModuliGroup(groups, 4096, 4096, 8192)).toThrow(/no Diffie-Hellman group/);
  });

  it('samples/jump-host.js reaches a target through an SSHServer bastion (a channel as the sock)', () => {
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'samples', 'jump-host.js')], { cwd: join(__dirname, '..'), timeout: 60000 }).toString();
    expect(out).toBe('hello from the target, through the bastion\nexit status 0\n');
  });

  it("samples/http-proxy.js logs in through an HTTP proxy's CONNECT on a socket the script opened", () => {
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'samples', 'http-proxy.js')], { cwd: join(__dirname, '..'), timeout: 60000 }).toString();
    expect(out).toBe('hello through the proxy\nexit status 0\n');
  });

  it("samples/device-cli.js drives a legacy-only device's shell by its prompt", () => {
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'samples', 'device-cli.js')], { cwd: join(__dirname, '..'), timeout: 60000 }).toString();
    expect(out).toBe(
      [
        'negotiated diffie-hellman-group14-sha1, aes128-cbc, hmac-sha1',
        'echo "uptime is 42 days" -> uptime is 42 days',
        'echo "3 interfaces up" | tr a-z A-Z -> 3 INTERFACES UP',
        'exit status 0',
        '',
      ].join('\n'),
    );
  });

  it('the README demo (samples/demo.js) runs its server and client and exits 0', () => {
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'samples', 'demo.js')], { cwd: join(__dirname, '..'), timeout: 60000 }).toString();
    expect(out).toContain('client: exit status: 3');
    expect(out).toContain('the server counted 1048576 bytes');
    expect(out).toContain('rows cols): 30 100');
    expect(out).toContain('16 MiB round trip identical');
    expect(out).toContain('demo: done');
  });
});
