import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoAddPolicy, IOError, MSG_PEEK, SSHClient, SSHException, SSHServer, Socket, SocketTimeout, Transport, createConnection, listen } from '../lib';
import type { SocketLike } from '../lib';
import { catchError } from './support/bridge-helpers';
import { startReadyProcess, type ReadyProcess } from './support/ready-process';

const PASSWORD = 'pr0xied';
let server: SSHServer;
let proxy: ReadyProcess | undefined;
let proxyPort: number;
const sockets: Socket[] = [];

function connectTo(port: number): Socket {
  const s = createConnection(['127.0.0.1', port], 10);
  sockets.push(s);
  s.settimeout(10);
  return s;
}

beforeAll(async () => {
  server = SSHServer.start({ users: { ada: PASSWORD }, shell: '/bin/sh' });
  proxy = await startReadyProcess('connect-proxy.js');
  proxyPort = proxy.port;
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

afterAll(async () => {
  server?.close();
  await proxy?.stop();
});

/** Logs `client` in as ada over `sock` (the test closes it); `timeout` bounds the connect. */
function loginOver(client: SSHClient, sock: Socket | SocketLike, timeout = 10): SSHClient {
  client.setMissingHostKeyPolicy(new AutoAddPolicy());
  client.connect('127.0.0.1', { port: server.port, username: 'ada', password: PASSWORD, sock, allowAgent: false, lookForKeys: false, timeout });
  return client;
}

/** A plain object forwarding the socket calls to our `inner` Socket, with `calls` in place of some. */
function wrapping(inner: Socket, calls: Partial<SocketLike> = {}): SocketLike {
  return {
    send: (data: Buffer) => inner.send(data),
    recv: (n: number) => inner.recv(n),
    settimeout: (t: number | null) => inner.settimeout(t),
    close: () => inner.close(),
    ...calls,
  };
}

/** Reads until `count` bytes came (recv may return fewer). */
function recvExactly(s: Socket, count: number): Buffer {
  const parts: Buffer[] = [];
  let got = 0;
  while (got < count) {
    const d = s.recv(count - got);
    if (d.length === 0) throw new Error(`EOF after ${got} of ${count} bytes`);
    parts.push(d);
    got += d.length;
  }
  return Buffer.concat(parts);
}

describe('Socket: Python socket calls before a Transport takes it', () => {
  it('send, recv, non-blocking and timed recv, shutdownWrite and EOF, between two of our sockets', () => {
    const listener = listen('127.0.0.1', 0);
    try {
      const a = connectTo(listener.getsockname()[1]);
      const [b] = listener.accept(10);
      sockets.push(b);
      b.settimeout(0);
      expect(catchError(() => b.recv(16))).toBeInstanceOf(SocketTimeout);
      b.settimeout(0.2);
      const t0 = performance.now();
      expect(catchError(() => b.recv(16))).toBeInstanceOf(SocketTimeout);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(150);

      expect(a.send('hello, ')).toBe(7);
      a.sendall(Buffer.from('world'));
      b.settimeout(10);
      expect(b.recv(0)).toEqual(Buffer.alloc(0));
      expect(recvExactly(b, 3).toString()).toBe('hel');
      expect(recvExactly(b, 9).toString()).toBe('lo, world');

      // A large send arrives whole and in order, whatever the sizes recv returns.
      const big = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
      b.sendall(big);
      expect(recvExactly(a, big.length).equals(big)).toBe(true);

      // A peer that does not read: non-blocking sends are taken whole until the buffers are
      // full, then raise SocketTimeout having taken nothing; every byte taken arrives.
      a.settimeout(0);
      let taken = 0;
      const chunk = Buffer.alloc(256 * 1024, 5);
      let refused: unknown = null;
      for (let i = 0; i < 400 && !refused; i++) {
        try {
          taken += a.send(chunk);
        } catch (e) {
          refused = e;
        }
      }
      expect(refused).toBeInstanceOf(SocketTimeout);
      expect(taken).toBeGreaterThan(0);
      expect(taken).toBeLessThan(400 * chunk.length);
      a.settimeout(10);
      const arrived = recvExactly(b, taken);
      expect(arrived.every((x) => x === 5)).toBe(true);
      b.settimeout(0);
      expect(catchError(() => b.recv(1))).toBeInstanceOf(SocketTimeout);
      b.settimeout(10);

      a.shutdownWrite();
      expect(b.recv(10)).toEqual(Buffer.alloc(0));
      b.send('still open the other way');
      expect(recvExactly(a, 24).toString()).toBe('still open the other way');

      a.close();
      const closed = catchError(() => a.recv(1)) as IOError;
      expect(closed).toBeInstanceOf(IOError);
      expect(closed.code).toBe('EBADF');
      expect(() => a.settimeout(-1)).toThrow(TypeError);
      expect(() => b.recv(1, 64)).toThrow(TypeError);
    } finally {
      listener.close();
    }
  });

  it('MSG_PEEK leaves the bytes for the Transport: peek at the identification line, then log in', () => {
    const s = connectTo(server.port);
    expect(s.recv(4, MSG_PEEK).toString()).toBe('SSH-');
    expect(s.recv(8, MSG_PEEK).toString()).toBe('SSH-2.0-');
    const t = new Transport(s);
    try {
      t.startClient({ timeout: 10 });
      t.authPassword('ada', PASSWORD);
      expect(t.isAuthenticated()).toBe(true);
      // The Transport owns it now.
      expect((catchError(() => s.recv(1)) as IOError).code).toBe('EBADF');
    } finally {
      t.close();
    }
  });

  it("through an HTTP proxy's CONNECT, as Paramiko scripts do with sock=: the server's first bytes behind the 200 are kept", () => {
    const s = connectTo(proxyPort);
    s.sendall(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
    // The proxy sends its answer and the server's identification in one write: read exactly
    // the answer (found by peeking) and leave the rest.
    let end = -1;
    while (end < 0) {
      const seen = s.recv(4096, MSG_PEEK);
      expect(seen.length).toBeGreaterThan(0);
      end = seen.indexOf('\r\n\r\n');
    }
    const answer = recvExactly(s, end + 4).toString();
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(s.recv(4, MSG_PEEK).toString()).toBe('SSH-');

    const client = new SSHClient();
    try {
      loginOver(client, s);
      const [, stdout] = client.execCommand('echo through the proxy');
      expect(stdout.read().toString()).toBe('through the proxy\n');
      expect(stdout.channel.recvExitStatus()).toBe(0);
    } finally {
      client.close();
    }
  });

  it('a proxy that refuses: the answer is readable, then EOF', () => {
    const s = connectTo(proxyPort);
    s.sendall('CONNECT example.invalid:22 HTTP/1.1\r\n\r\n');
    const parts: Buffer[] = [];
    for (let d = s.recv(1024); d.length; d = s.recv(1024)) parts.push(d);
    expect(Buffer.concat(parts).toString()).toBe('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
});

/** A socket-like object of this thread, as a Python port would write one: it wraps our Socket and counts. */
class TracingSocket {
  sent = 0;
  received = 0;
  closed = false;
  readonly timeouts: Array<number | null> = [];
  /** After this many bytes received, recv raises (a cable cut); null: never. */
  failAfter: number | null = null;
  constructor(private readonly inner: Socket) {}
  send(data: Buffer): number {
    const n = this.inner.send(data);
    this.sent += n;
    return n;
  }
  recv(n: number): Buffer {
    if (this.failAfter !== null && this.received >= this.failAfter) throw new Error('cable cut');
    const d = this.inner.recv(n);
    this.received += d.length;
    return d;
  }
  settimeout(t: number | null): void {
    this.timeouts.push(t);
    this.inner.settimeout(t);
  }
  close(): void {
    this.closed = true;
    this.inner.close();
  }
  getpeername(): [string, number] {
    return this.inner.getpeername();
  }
}

describe('a socket-like object of this thread as sock (Paramiko takes any object with socket calls)', () => {
  const login = (sock: TracingSocket): SSHClient => loginOver(new SSHClient(), sock);

  it('carries a whole session: exec, a large output, SFTP both ways; close() closes the object', () => {
    const sock = new TracingSocket(createConnection(['127.0.0.1', server.port], 10));
    const client = login(sock);
    try {
      expect(sock.timeouts).toEqual([0]); // put in non-blocking mode, polled from this thread
      const [, stdout] = client.execCommand('echo over a traced socket; head -c 3000000 /dev/zero | tr "\\0" y');
      const out = stdout.read().toString();
      expect(out.startsWith('over a traced socket\n')).toBe(true);
      expect(out.length).toBe(21 + 3_000_000);
      expect(stdout.channel.recvExitStatus()).toBe(0);
      const sftp = client.openSftp();
      const dir = mkdtempSync(join(tmpdir(), 'pts-socklike-'));
      try {
        const data = randomBytes(1_500_000);
        writeFileSync(join(dir, 'up'), data);
        sftp.put(join(dir, 'up'), join(dir, 'remote'));
        sftp.get(join(dir, 'remote'), join(dir, 'down'));
        expect(readFileSync(join(dir, 'down')).equals(data)).toBe(true);
      } finally {
        sftp.close();
        rmSync(dir, { recursive: true, force: true });
      }
      expect(sock.received).toBeGreaterThan(4_500_000);
      expect(sock.sent).toBeGreaterThan(1_500_000);
    } finally {
      client.close();
    }
    expect(sock.closed).toBe(true);
  });

  it('an object that takes little at a time and often has nothing (would-block on send and recv) still carries every byte', () => {
    const inner = createConnection(['127.0.0.1', server.port], 10);
    let calls = 0;
    const stingy = wrapping(inner, {
      send(data: Buffer): number {
        if (++calls % 3 === 0) throw new SocketTimeout('would block');
        return inner.send(data.subarray(0, 1000));
      },
      recv(n: number): Buffer {
        if (++calls % 2 === 0) throw new SocketTimeout('would block');
        return inner.recv(Math.min(n, 333));
      },
    });
    const client = new SSHClient();
    try {
      loginOver(client, stingy, 20);
      const [stdin, stdout] = client.execCommand('sha256sum', { timeout: 20 });
      const payload = randomBytes(300_000);
      stdin.write(payload);
      stdin.close();
      const want = require('node:crypto').createHash('sha256').update(payload).digest('hex');
      expect(stdout.read().toString()).toContain(want);
      const [, out] = client.execCommand('head -c 400000 /dev/zero | tr "\\0" z', { timeout: 20 });
      expect(out.read().toString()).toBe('z'.repeat(400_000));
    } finally {
      client.close();
    }
  });

  it('an object whose send returns nothing (a sendall) and whose recv gives more than asked still carries every byte', () => {
    const inner = createConnection(['127.0.0.1', server.port], 10);
    const careless = wrapping(inner, {
      send(data: Buffer): void {
        inner.sendall(data);
      },
      recv: (n: number) => inner.recv(n * 3),
    });
    const client = new SSHClient();
    try {
      loginOver(client, careless, 20);
      const [, out] = client.execCommand('head -c 2000000 /dev/zero | tr "\\0" q', { timeout: 20 });
      expect(out.read().toString()).toBe('q'.repeat(2_000_000));
    } finally {
      client.close();
    }
  });

  it('an object whose recv gives a string fails the connection with a TypeError naming it', () => {
    const inner = createConnection(['127.0.0.1', server.port], 10);
    const wrong = wrapping(inner, { recv: (n: number) => inner.recv(n).toString('latin1') as unknown as Buffer });
    const client = new SSHClient();
    try {
      const e = catchError(() => loginOver(client, wrong));
      expect(e).toBeInstanceOf(SSHException);
      expect(e.message).toContain('TypeError from Object: recv returned a string, not a Buffer');
    } finally {
      client.close();
    }
  });

  it("the object's error ends the connection with that error, and nothing hangs", () => {
    const sock = new TracingSocket(createConnection(['127.0.0.1', server.port], 10));
    const client = login(sock);
    try {
      const [, stdout] = client.execCommand('head -c 50000000 /dev/zero', { timeout: 10 });
      sock.failAfter = sock.received + 1_000_000; // a recv in the middle of the output raises
      // As when a TCP connection dies: what came, then EOF, and no exit status.
      const got = stdout.read().length;
      expect(got).toBeGreaterThan(0);
      expect(got).toBeLessThan(50_000_000);
      expect(stdout.channel.recvExitStatus()).toBe(-1);
      const t = client.getTransport()!;
      expect(t.isActive()).toBe(false);
      expect(sock.closed).toBe(true);
      // Why it ended: the object's error, by class and message (calls the worker answers say it).
      const e = catchError(() => t.sendIgnore());
      expect(e).toBeInstanceOf(SSHException);
      expect(e.message).toBe('socket error: Error from TracingSocket: cable cut');
    } finally {
      client.close();
    }
  });

  it('EOF from the object (recv gives nothing) is the connection closing', () => {
    const inner = createConnection(['127.0.0.1', server.port], 10);
    const sock = new TracingSocket(inner);
    const client = login(sock);
    try {
      const [, stdout] = client.execCommand('sleep 5', { timeout: 10 });
      // The server sees EOF and closes its side: that reaches the object's recv as EOF.
      inner.shutdownWrite();
      expect(stdout.read().length).toBe(0);
      expect(stdout.channel.recvExitStatus()).toBe(-1);
      const t = client.getTransport()!;
      expect(t.isActive()).toBe(false);
      expect(catchError(() => t.openSession())).toBeInstanceOf(SSHException);
      expect(sock.closed).toBe(true);
    } finally {
      client.close();
    }
  });
});
