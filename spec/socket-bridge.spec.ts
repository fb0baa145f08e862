/**
 * SocketBridge (lib/worker/ssh/socket-bridge.ts): a forwarded channel joined to a local socket.
 * Toward the socket, the packets of one turn of the event loop go in one write, out of a
 * buffer that is the bridge's own (the transport's packets are valid only during the call),
 * and the window goes back once the socket took them.
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { ChannelCore } from '../lib/transport/channel';
import { connectForBridge, SocketBridge } from '../lib/worker/ssh/socket-bridge';

const CHANNEL_WINDOW_ADJUST = 93;
const CHANNEL_DATA = 94;
const CHANNEL_EOF = 96;
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
  jest.restoreAllMocks();
});

/** Two ends of a loopback TCP connection. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => a.once('connect', r));
  const b = await accepted;
  cleanup.push(() => {
    a.destroy();
    b.destroy();
    server.close();
  });
  return [a, b];
}

/** A confirmed channel whose payloads are kept, with a bridge to `socket`. */
function bridged(socket: net.Socket) {
  const sent: Buffer[] = [];
  const ch = new ChannelCore(0, 'direct-tcpip', 2 << 20, 32768, (p) => sent.push(Buffer.from(p)));
  ch.opened(7, 2 << 20, 32768);
  const bridge = new SocketBridge(ch, socket, () => undefined);
  cleanup.push(() => bridge.closed(null));
  const adjusted = () => sent.filter((p) => p[0] === CHANNEL_WINDOW_ADJUST).reduce((n, p) => n + p.readUInt32BE(5), 0);
  return { ch, adjusted };
}

function readBytes(socket: net.Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  return new Promise((resolve) => {
    const onData = (d: Buffer): void => {
      parts.push(d);
      have += d.length;
      if (have >= n) {
        socket.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    socket.on('data', onData);
  });
}

describe('SocketBridge toward the socket', () => {
  it('writes the packets of one turn together, from its own copy, and returns the window once the socket took them', async () => {
    const [near, far] = await socketPair();
    const write = jest.spyOn(near, 'write');
    const { ch, adjusted } = bridged(near);
    // 16 packets of 32 KiB in one turn, each in the same reused buffer (as the transport's are).
    const packet = Buffer.alloc(32768);
    for (let i = 0; i < 16; i++) ch.onData(packet.fill(i), 0, true);
    // The first 256 KiB went when the ninth packet did not fit; the rest waits for the turn's end.
    expect(write).toHaveBeenCalledTimes(1);
    expect(adjusted()).toBe(0);
    const got = await readBytes(far, 16 * 32768);
    expect(got.length).toBe(16 * 32768);
    for (let i = 0; i < 16; i++) expect(got.subarray(i * 32768, (i + 1) * 32768).every((b) => b === i)).toBe(true);
    // 512 KiB in buffers of 256 KiB: two writes where there were sixteen.
    expect(write).toHaveBeenCalledTimes(2);
    // A quarter of the 2 MiB window read and taken by the socket goes back to the peer.
    for (let i = 0; i < 50 && adjusted() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(adjusted()).toBe(16 * 32768);
  });

  it('delivers what it gathered before the end of the stream', async () => {
    const [near, far] = await socketPair();
    const { ch } = bridged(near);
    const ended = new Promise<void>((r) => far.once('end', r));
    const got = readBytes(far, 3);
    ch.onData(Buffer.from('abc'), 0, true);
    ch.onEof();
    expect((await got).toString()).toBe('abc');
    await ended;
  });
});

describe('SocketBridge from a socket of connectForBridge (reads into one shared buffer)', () => {
  it('sends everything in order, copying what a short window leaves before the next read reuses the buffer, then EOF', async () => {
    // Two connections read at once through the one shared buffer, each with a window far
    // shorter than what its source sends, opened a little at a time.
    const sources = [randomBytes(1500 * 1024), randomBytes(1100 * 1024)];
    const server = net.createServer((s) => {
      s.once('data', (d) => s.end(sources[d[0]]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const runs = sources.map(async (_, i) => {
      const sock = connectForBridge({ host: '127.0.0.1', port, allowHalfOpen: true });
      cleanup.push(() => sock.destroy());
      await new Promise((r) => sock.once('connect', r));
      const sent: Buffer[] = [];
      const ch = new ChannelCore(0, 'direct-tcpip', 2 << 20, 32768, (p) => sent.push(Buffer.from(p)));
      ch.opened(7, 48 * 1024, 32768);
      const bridge = new SocketBridge(ch, sock, () => undefined);
      cleanup.push(() => bridge.closed(null));
      sock.write(Buffer.from([i]));
      const eof = () => sent.some((p) => p[0] === CHANNEL_EOF);
      for (let k = 0; k < 2000 && !eof(); k++) {
        await new Promise((r) => setTimeout(r, 2));
        ch.onWindowAdjust(40 * 1024);
      }
      const data = sent.filter((p) => p[0] === CHANNEL_DATA).map((p) => p.subarray(9, 9 + p.readUInt32BE(5)));
      return { data: Buffer.concat(data), eofLast: sent[sent.length - 1][0] === CHANNEL_EOF };
    });
    const got = await Promise.all(runs);
    for (let i = 0; i < sources.length; i++) {
      expect(got[i].data.length).toBe(sources[i].length);
      expect(got[i].data.equals(sources[i])).toBe(true);
      expect(got[i].eofLast).toBe(true);
    }
  });
});
