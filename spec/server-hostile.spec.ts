/**
 * Hostile clients against the embedded SSHServer: each is dropped with a log line saying why,
 * and a well-behaved client connected at the same time is served as usual.
 */
import { randomBytes } from 'node:crypto';
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
