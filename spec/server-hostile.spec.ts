/**
 * Hostile clients against the embedded SSHServer: each is dropped with a log line saying why,
 * and a well-behaved client connected at the same time is served as usual.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSHServer } from '../lib';
import { MSG } from '../lib/transport/constants';
import { Message } from '../lib/wire/message';
import { goodClientWorks as goodClient, RawClient } from './support/hostile/raw-client';

const PASSWORD = 'pw';
let server: SSHServer;
const raws: RawClient[] = [];

beforeAll(() => {
  server = SSHServer.start({ users: { alice: PASSWORD }, loginGraceTime: 1, maxSessions: 10 });
});

afterEach(() => {
  for (const r of raws.splice(0)) r.close();
});

afterAll(() => server?.close());

/** A normal client's round trip: the server is unaffected. */
const goodClientWorks = (): void => goodClient(server, 'alice', PASSWORD);

/** The server's log since `from` lines, joined. */
async function logAfter(from: number, pattern: RegExp, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = server.logSince(from).lines.join('\n');
    if (pattern.test(text) || Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SSHServer against hostile clients', () => {
  it('garbage instead of an identification line: dropped, logged', async () => {
    const from = server.logSince(0).next;
    const s = await RawClient.socket(server.port);
    const closed = new Promise((r) => s.on('close', r));
    s.on('error', () => undefined);
    s.resume(); // read (and drop) what the server says, so its close is seen
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(await logAfter(from, /before its identification: not an SSH client/)).toMatch(/before its identification: not an SSH client/);
    goodClientWorks();
  });

  it('a forged packet after the key exchange (bad MAC): dropped, logged', async () => {
    const from = server.logSince(0).next;
    const c = await RawClient.connect(server.port);
    raws.push(c);
    c.writeRaw(randomBytes(256));
    await c.closed;
    const log = await logAfter(from, /closed: .*(MAC|authentication tag|decrypt|packet)/i);
    expect(log).toMatch(/closed: .*(MAC|authentication tag|decrypt|packet)/i);
    goodClientWorks();
  });

  it('an oversize packet length: dropped before anything is allocated, logged', async () => {
    const from = server.logSince(0).next;
    const s = await RawClient.socket(server.port);
    const closed = new Promise((r) => s.on('close', r));
    s.on('error', () => undefined);
    s.resume(); // read (and drop) what the server says, so its close is seen
    // Identification, then a packet claiming 1 GiB.
    s.write('SSH-2.0-Hostile_1.0\r\n');
    s.write(Buffer.from([0x40, 0, 0, 0, 4, 0, 0, 0]));
    await closed;
    expect(await logAfter(from, /closed: .*(packet|length)/i)).toMatch(/closed: .*(packet|length)/i);
    goodClientWorks();
  });

  it('a thousand channel opens: MaxSessions accepted, the rest refused, the connection and the server go on', async () => {
    const c = await RawClient.connect(server.port);
    raws.push(c);
    await c.login('alice', PASSWORD);
    for (let i = 0; i < 1000; i++) c.openSession(i);
    const answered = () => c.received.filter(([t]) => t === MSG.CHANNEL_OPEN_CONFIRMATION || t === MSG.CHANNEL_OPEN_FAILURE).length;
    expect(await c.until(() => answered() === 1000, 20000)).toBe(true);
    expect(c.received.filter(([t]) => t === MSG.CHANNEL_OPEN_CONFIRMATION)).toHaveLength(10);
    expect(c.socket.destroyed).toBe(false);
    goodClientWorks();
    expect(server.logSince(0).lines.join('\n')).toMatch(/session refused \(10 open, the limit\)/);
  });

  it('what a client chose is escaped in the log: no forged lines, no terminal escapes', async () => {
    const from = server.logSince(0).next;
    const c = await RawClient.connect(server.port);
    raws.push(c);
    await c.login('alice', PASSWORD);
    c.send(new Message().addByte(MSG.CHANNEL_OPEN).addString('x\nFORGED: root logged in\x1b[31m').addInt(0).addInt(1000).addInt(1000).asBytes());
    c.send(new Message().addByte(MSG.GLOBAL_REQUEST).addString('evil\\\r\nFORGED2').addBoolean(true).asBytes());
    const text = await logAfter(from, /FORGED2/);
    expect(text).toContain('alice: x\\nFORGED: root logged in\\x1b[31m channel refused');
    expect(text).toContain('global request evil\\\\\\r\\nFORGED2 refused');
    for (const line of server.logSince(from).lines) expect(line).toMatch(/^\d{4}-\S+Z [^\n\r\x1b]*$/);
  });

  it('a remote forward asked for just before the server drops the connection: no listener outlives it (TCP port or unix socket)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pts-fwd-race-'));
    try {
      const ports: number[] = [];
      for (let i = 0; i < 20; i++) {
        const probe = createServer();
        await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
        const port = (probe.address() as AddressInfo).port;
        await new Promise<void>((r) => probe.close(() => r()));
        ports.push(port);
        const c = await RawClient.connect(server.port);
        await c.login('alice', PASSWORD);
        c.send(new Message().addByte(MSG.GLOBAL_REQUEST).addString('tcpip-forward').addBoolean(true).addString('127.0.0.1').addInt(port).asBytes());
        c.send(new Message().addByte(MSG.GLOBAL_REQUEST).addString('streamlocal-forward@openssh.com').addBoolean(true).addString(join(dir, `s${i}`)).asBytes());
        // In the same read: data for a channel that does not exist, and the server drops the
        // connection at once, while the listeners above are still starting.
        c.send(new Message().addByte(MSG.CHANNEL_DATA).addInt(4242).addString('x').asBytes());
        await c.until(() => false, 2000);
        c.close();
      }
      await new Promise((r) => setTimeout(r, 500));
      const listening = await Promise.all(
        ports.map(
          (port) =>
            new Promise<boolean>((resolve) => {
              const s = connect(port, '127.0.0.1');
              s.once('connect', () => {
                s.destroy();
                resolve(true);
              });
              s.once('error', () => resolve(false));
            }),
        ),
      );
      expect(ports.filter((_, i) => listening[i])).toEqual([]);
      expect(readdirSync(dir)).toEqual([]);
      goodClientWorks();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never authenticating: dropped after the login grace time, logged', async () => {
    const from = server.logSince(0).next;
    const c = await RawClient.connect(server.port);
    raws.push(c);
    await c.closed; // loginGraceTime is 1 s here
    expect(await logAfter(from, /did not authenticate within 1 s/)).toMatch(/did not authenticate within 1 s/);
    goodClientWorks();
  });

  it('too many failed passwords: dropped after MaxAuthTries, logged', async () => {
    const from = server.logSince(0).next;
    const c = await RawClient.connect(server.port);
    raws.push(c);
    let refused = 0;
    try {
      for (let i = 0; i < 10; i++) {
        const o = await c.auth.authPassword('alice', `wrong ${i}`);
        if (!o.success) refused++;
      }
    } catch {
      // the disconnect
    }
    await c.closed;
    expect(refused).toBe(5); // the sixth failure is answered with DISCONNECT
    expect(await logAfter(from, /too many authentication failures/)).toMatch(/too many authentication failures/);
    goodClientWorks();
  });

  it('a channel message before authentication: dropped, logged', async () => {
    const from = server.logSince(0).next;
    const c = await RawClient.connect(server.port);
    raws.push(c);
    c.openSession(0);
    await c.closed;
    expect(await logAfter(from, /before authentication/)).toMatch(/before authentication/);
  });
});
