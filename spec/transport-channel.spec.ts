import { ChannelCore } from '../lib/transport/channel';
import { ConnectionCore } from '../lib/transport/connection';
import { MSG } from '../lib/transport/constants';
import { Message } from '../lib/wire/message';

function openChannel(): { ch: ChannelCore; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const ch = new ChannelCore(0, 'session', 1 << 20, 32768, (p) => sent.push(Buffer.from(p)));
  ch.opened(5, 1 << 20, 32768);
  ch.sink = { data: () => undefined, eof: () => undefined, closed: () => undefined, writable: () => undefined };
  return { ch, sent };
}

describe('ChannelCore request replies when the channel closes first', () => {
  it('an exit status before a clean close answers a pending exec request as accepted', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true, (m) => m.addString('true'));
    ch.onRequest('exit-status', false, new Message(new Message().addInt(0).asBytes()));
    ch.onClose();
    await expect(reply).resolves.toBe(true);
  });

  it('output before a clean close answers it as accepted too', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true);
    ch.onData(Buffer.from('x'), 0);
    ch.onClose();
    await expect(reply).resolves.toBe(true);
  });

  it('a close with nothing before it rejects the pending request', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true);
    ch.onClose();
    await expect(reply).rejects.toThrow(/channel closed/);
  });

  it('a connection that dies rejects it whatever came before', async () => {
    const { ch } = openChannel();
    const reply = ch.request('exec', true);
    ch.onData(Buffer.from('x'), 0);
    ch.finish(new Error('connection lost'));
    await expect(reply).rejects.toThrow(/connection lost/);
  });
});

describe("ChannelCore: the peer's requests", () => {
  const sinkLogging = (log: string[], decide: (type: string) => boolean | Promise<boolean>) => ({
    data: (d: Buffer) => void log.push(`data ${d.toString()}`),
    eof: () => undefined,
    closed: () => undefined,
    writable: () => undefined,
    request: (type: string) => {
      log.push(`request ${type}`);
      return decide(type);
    },
  });
  const replies = (sent: Buffer[]) => sent.filter((p) => p[0] === MSG.CHANNEL_SUCCESS || p[0] === MSG.CHANNEL_FAILURE).map((p) => (p[0] === MSG.CHANNEL_SUCCESS ? 'ok' : 'no'));
  const size = () => new Message(new Message().addInt(91).addInt(33).addInt(0).addInt(0).asBytes());

  it('reach the sink before data that follows them in the same read (a command typed after a window-change)', () => {
    const { ch, sent } = openChannel();
    const log: string[] = [];
    ch.sink = sinkLogging(log, () => true);
    ch.onRequest('window-change', true, size());
    ch.onData(Buffer.from('stty size'), 0);
    expect(log).toEqual(['request window-change', 'data stty size']);
    expect(replies(sent)).toEqual(['ok']);
  });

  it('behind an undecided one are decided after it, and the replies keep the order of the requests', async () => {
    const { ch, sent } = openChannel();
    const log: string[] = [];
    let allow!: (ok: boolean) => void;
    ch.sink = sinkLogging(log, (type) => (type === 'exec' ? new Promise<boolean>((r) => (allow = r)) : type === 'env'));
    ch.onRequest('exec', true, new Message(new Message().addString('x').asBytes()));
    ch.onRequest('env', true, new Message(new Message().addString('A').addString('b').asBytes()));
    ch.onRequest('signal', true, new Message(new Message().addString('INT').asBytes()));
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['request exec']);
    expect(replies(sent)).toEqual([]);
    allow(true);
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['request exec', 'request env', 'request signal']);
    expect(replies(sent)).toEqual(['ok', 'ok', 'no']);
    // Idle again: the next request is decided at once.
    ch.onRequest('window-change', true, size());
    expect(log[3]).toBe('request window-change');
  });

  it('a handler that throws or rejects refuses the request', async () => {
    const { ch, sent } = openChannel();
    ch.sink = sinkLogging([], (type) => {
      if (type === 'a') throw new Error('boom');
      return Promise.reject(new Error('later'));
    });
    ch.onRequest('a', true, size());
    ch.onRequest('b', true, size());
    await new Promise((r) => setImmediate(r));
    expect(replies(sent)).toEqual(['no', 'no']);
  });
});

describe('ChannelCore data after the peer\'s EOF', () => {
  it('is dropped with its window counted, as OpenSSH does, instead of ending the connection', () => {
    const { ch } = openChannel();
    const got: Buffer[] = [];
    ch.sink = { data: (d) => void got.push(d), eof: () => undefined, closed: () => undefined, writable: () => undefined };
    ch.onData(Buffer.from('before'), 0);
    ch.onEof();
    const window = ch.localWindow;
    expect(() => ch.onData(Buffer.from('after'), 0)).not.toThrow();
    expect(Buffer.concat(got).toString()).toBe('before');
    expect(ch.localWindow).toBe(window - 5);
    // Far beyond the window it is still the peer ignoring flow control: an error.
    expect(() => ch.onData(Buffer.alloc(2 * window), 0)).toThrow(/the peer ignored the channel window/);
  });
});

describe('ChannelCore past its window', () => {
  it("keeps data up to a tenth of the window past it, as OpenSSH 9, and ends the connection beyond", () => {
    const { ch } = openChannel();
    const got: Buffer[] = [];
    ch.sink = { data: (d) => void got.push(d), eof: () => undefined, closed: () => undefined, writable: () => undefined };
    const tenth = (1 << 20) / 10;
    expect(ch.onData(Buffer.alloc((1 << 20) - 100), 0)).toBe(0);
    expect(ch.onData(Buffer.alloc(30000, 1), 0)).toBe(30000 - 100); // past the window: kept, reported
    expect(ch.localWindow).toBe(0);
    expect(ch.discard(20000)).toBe(20000); // extended data nobody reads counts the same
    expect(got.reduce((n, b) => n + b.length, 0)).toBe((1 << 20) - 100 + 30000);
    // Reading reopens the window (counting what came past it); a peer that then keeps to it starts afresh.
    ch.consumed(1 << 20);
    expect(ch.localWindow).toBeGreaterThan(0);
    expect(ch.onData(Buffer.alloc(10), 0)).toBe(0);
    ch.consumed(ch.localWindow);
    // Excess that adds up past a tenth of the window without the peer keeping to it in between: an error.
    const left = ch.localWindow;
    expect(ch.onData(Buffer.alloc(left + Math.floor(tenth) - 1), 0)).toBe(Math.floor(tenth) - 1);
    expect(() => ch.onData(Buffer.alloc(2), 0)).toThrow(/channel 0: the peer ignored the channel window \(\d+ bytes past it, 104857 allowed\)/);
  });
});

describe('ChannelCore.writeQueue', () => {
  /** The data of each CHANNEL_DATA payload sent. */
  const dataOf = (sent: Buffer[]) => sent.map((p) => new Message(p.subarray(5)).getString());

  it('fills each packet from as many queued buffers as it takes, in order', () => {
    const { ch, sent } = openChannel();
    const parts = [Buffer.alloc(20000, 1), Buffer.alloc(20000, 2), Buffer.alloc(30000, 3)];
    const whole = Buffer.concat(parts);
    const done: Buffer[] = [];
    const queue = [...parts];
    expect(ch.writeQueue(queue, whole.length, false, 0, (b) => done.push(b))).toBe(whole.length);
    expect(dataOf(sent).map((d) => d.length)).toEqual([32768, 32768, 70000 - 65536]);
    expect(Buffer.concat(dataOf(sent))).toEqual(whole);
    expect(queue).toEqual([]);
    // Each buffer is reported once its last byte is sent (the first two within packet 1-2).
    expect(done.map((b) => b.length)).toEqual([20000, 20000 - 12768, 30000 - (32768 - 7232)]);
  });

  it('with wholePackets, keeps the tail below a full packet queued for later', () => {
    const { ch, sent } = openChannel();
    const reply = () => Buffer.alloc(32768 + 13, 9);
    const queue = [reply(), reply(), reply()];
    const queued = 3 * (32768 + 13);
    const n = ch.writeQueue(queue, queued, true);
    expect(n).toBe(3 * 32768);
    expect(dataOf(sent).every((d) => d.length === 32768)).toBe(true);
    expect(queue.reduce((s, b) => s + b.length, 0)).toBe(39);
    expect(ch.writeQueue(queue, queued - n, false)).toBe(39);
    expect(queue).toEqual([]);
  });

  it('stops at the window and leaves the rest in the queue', () => {
    const sent: Buffer[] = [];
    const ch = new ChannelCore(0, 'session', 1 << 20, 32768, (p) => sent.push(Buffer.from(p)));
    ch.opened(5, 50000, 32768);
    const queue = [Buffer.alloc(40000, 1), Buffer.alloc(40000, 2)];
    expect(ch.writeQueue(queue, 80000)).toBe(50000);
    expect(queue.map((b) => b.length)).toEqual([30000]);
    expect(queue[0][0]).toBe(2);
    expect(ch.writeQueue(queue, 30000)).toBe(0);
  });
});

describe('ConnectionCore: replies nobody asked for, and messages for closed channels', () => {
  const payload = (fill: (m: Message) => void = () => undefined): Message => {
    const m = new Message();
    fill(m);
    return new Message(m.asBytes());
  };
  /** Opens a session channel and has the peer confirm it (our id `id`). */
  const openConfirmed = (conn: ConnectionCore, id: number): Promise<ChannelCore> => {
    const opening = conn.open('session');
    conn.handle(MSG.CHANNEL_OPEN_CONFIRMATION, payload((m) => m.addInt(id).addInt(5).addInt(1 << 20).addInt(32768)));
    return opening;
  };

  it('a global or channel SUCCESS/FAILURE with no request pending is logged and ignored (as OpenSSH), later replies still pair up', async () => {
    const logged: string[] = [];
    const conn = new ConnectionCore(() => undefined, { log: (t) => logged.push(t) });
    const ch = await openConfirmed(conn, 0);
    // Some servers answer requests sent without want-reply: not a reason to end the connection.
    expect(conn.handle(MSG.REQUEST_SUCCESS, payload())).toBe(true);
    expect(conn.handle(MSG.CHANNEL_FAILURE, payload((m) => m.addInt(ch.localId)))).toBe(true);
    expect(logged).toEqual([
      'a global request success with no request pending: ignored',
      '[chan 0] a channel failure with no request pending: ignored',
    ]);
    const global = conn.globalRequest('keepalive@openssh.com', true);
    const request = ch.request('env', true, (m) => m.addString('A').addString('b'));
    conn.handle(MSG.REQUEST_FAILURE, payload());
    conn.handle(MSG.CHANNEL_SUCCESS, payload((m) => m.addInt(ch.localId)));
    await expect(global).resolves.toBeNull();
    await expect(request).resolves.toBe(true);
  });

  it("a message for a channel closed both ways is logged and dropped (Paramiko's server can reply to exec after its CLOSE); one for an id never used ends the connection", async () => {
    const logged: string[] = [];
    const conn = new ConnectionCore(() => undefined, { log: (t) => logged.push(t) });
    const ch = await openConfirmed(conn, 0);
    const exec = ch.request('exec', true, (m) => m.addString('echo x; exit 7'));
    // Paramiko's session thread: output, EOF, exit-status, CLOSE; its reply to exec comes after.
    conn.handle(MSG.CHANNEL_DATA, payload((m) => m.addInt(0).addString('x\n')));
    conn.handle(MSG.CHANNEL_EOF, payload((m) => m.addInt(0)));
    conn.handle(MSG.CHANNEL_REQUEST, payload((m) => m.addInt(0).addString('exit-status').addBoolean(false).addInt(7)));
    conn.handle(MSG.CHANNEL_CLOSE, payload((m) => m.addInt(0)));
    await expect(exec).resolves.toBe(true);
    expect(conn.channels.has(0)).toBe(false);
    for (const [type, fill] of [
      [MSG.CHANNEL_SUCCESS, (m: Message) => m.addInt(0)],
      [MSG.CHANNEL_WINDOW_ADJUST, (m: Message) => m.addInt(0).addInt(1000)],
      [MSG.CHANNEL_DATA, (m: Message) => m.addInt(0).addString('late')],
      [MSG.CHANNEL_EOF, (m: Message) => m.addInt(0)],
      [MSG.CHANNEL_CLOSE, (m: Message) => m.addInt(0)],
    ] as const) {
      expect(conn.handle(type, payload(fill))).toBe(true);
    }
    expect(logged).toEqual([
      '[chan 0] CHANNEL_SUCCESS after the channel closed: ignored',
      '[chan 0] CHANNEL_WINDOW_ADJUST after the channel closed: ignored',
      '[chan 0] CHANNEL_DATA after the channel closed: ignored',
      '[chan 0] CHANNEL_EOF after the channel closed: ignored',
      '[chan 0] CHANNEL_CLOSE after the channel closed: ignored',
    ]);
    expect(() => conn.handle(MSG.CHANNEL_SUCCESS, payload((m) => m.addInt(1)))).toThrow('CHANNEL_SUCCESS for unknown channel 1');
  });

  it('remembers the last 256 closed ids only', async () => {
    const conn = new ConnectionCore(() => undefined);
    for (let id = 0; id < 257; id++) {
      (await openConfirmed(conn, id)).close();
      conn.handle(MSG.CHANNEL_CLOSE, payload((m) => m.addInt(id)));
    }
    expect(conn.handle(MSG.CHANNEL_SUCCESS, payload((m) => m.addInt(1)))).toBe(true);
    expect(() => conn.handle(MSG.CHANNEL_SUCCESS, payload((m) => m.addInt(0)))).toThrow('CHANNEL_SUCCESS for unknown channel 0');
  });
});
