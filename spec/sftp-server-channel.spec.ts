import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FILE_WRITE_CALL_BYTES, onLocalFileSystem } from '../lib/files';
import { ChannelCore } from '../lib/transport/channel';
import { Message } from '../lib/wire/message';
import { SftpServerChannel } from '../lib/worker/sftp/server-channel';
import { encodeRequest } from '../lib/sftp/requests';
import { decodeReply, DATA_HEADER, SftpReply } from '../lib/sftp/replies';
import { BufferPool } from '../lib/buffer-pool';
import { PacketFramer } from '../lib/sftp/framing';
import { FX, FXF } from '../lib/sftp/constants';

const serving: SftpServerChannel[] = [];
afterEach(() => {
  // The channel closing ends the session, which closes the files it opened.
  for (const s of serving.splice(0)) s.closed(null);
});

/** The embedded server's SFTP subsystem on an in-memory channel whose peer takes 32 KiB packets. */
function serve(root: string, window = 64 << 20) {
  const payloads: Buffer[] = [];
  const ch = new ChannelCore(0, 'session', 2 << 20, 32768, (p) => payloads.push(Buffer.from(p)));
  ch.opened(7, window, 32768);
  const sftp = new SftpServerChannel(ch, { root, log: () => undefined });
  ch.sink = sftp;
  serving.push(sftp);
  const replies: SftpReply[] = [];
  const framer = new PacketFramer(1 << 20);
  let taken = 0;
  /** Replies decoded from the CHANNEL_DATA payloads sent so far. */
  const poll = () => {
    for (; taken < payloads.length; taken++) {
      if (payloads[taken][0] !== 94) continue; // CHANNEL_DATA only: uploads also make window adjusts
      const data = new Message(payloads[taken].subarray(5)).getString();
      framer.push(data, (packet) => replies.push(decodeReply(packet)));
    }
    return replies;
  };
  const until = async (n: number) => {
    for (let i = 0; i < 500 && poll().length < n; i++) await new Promise((r) => setTimeout(r, 5));
    return poll();
  };
  return { ch, sftp, payloads, until };
}

describe('SFTP server channel output', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-sftp-chan-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('sends 32 KiB READ replies in full-size channel packets, not two packets each', async () => {
    // The replies wait for window (none at first) until all are ready, so that how the reads
    // finish across turns of the event loop (a loaded machine) does not change the packets:
    // once the window opens they go out as whole packets and one tail, not a full packet and
    // one of 13 bytes per reply. 24 replies stay under the 1 MiB at which requests are held.
    const count = 24;
    const content = randomBytes(count * 32768);
    fs.writeFileSync(path.join(root, 'f'), content);
    const { ch, sftp, payloads, until } = serve(root, 0);
    ch.onWindowAdjust(4096);
    sftp.data(Buffer.concat([encodeRequest.init(3), encodeRequest.open(1, '/f', FXF.READ)]), 0);
    const [, opened] = await until(2);
    if (opened.kind !== 'handle') throw new Error(`OPEN failed: ${JSON.stringify(opened)}`);
    const before = payloads.length;
    expect(ch.remoteWindow).toBeLessThan(4096);
    const reads: Buffer[] = [];
    for (let i = 0; i < count; i++) reads.push(encodeRequest.read(10 + i, opened.handle, i * 32768, 32768));
    sftp.data(Buffer.concat(reads), 0);
    const total = count * (32768 + DATA_HEADER);
    const queued = () => (sftp as unknown as { outBytes: number }).outBytes;
    for (let i = 0; i < 1000 && queued() < total - 4096; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
    ch.onWindowAdjust(64 << 20);
    const replies = (await until(2 + count)).slice(2);
    expect(replies.map((r) => r.kind === 'data' && r.id)).toEqual(reads.map((_, i) => 10 + i));
    expect(Buffer.concat(replies.map((r) => (r.kind === 'data' ? r.data : Buffer.alloc(0)))).equals(content)).toBe(true);
    const sizes = payloads.slice(before).map((p) => p.readUInt32BE(5));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    // At most one packet from the window left after OPEN, then whole packets and one tail.
    expect(sizes.slice(1, -1).every((n) => n === 32768)).toBe(true);
    expect(sizes.length).toBeLessThanOrEqual(Math.ceil(total / 32768) + 2);
  });

  it('requests held while replies piled up are answered when a window adjust comes before the window ran out', async () => {
    fs.writeFileSync(path.join(root, 'g'), randomBytes(128 * 32768));
    const { ch, sftp, until } = serve(root, 50000);
    sftp.data(Buffer.concat([encodeRequest.init(3), encodeRequest.open(1, '/g', FXF.READ)]), 0);
    const [, opened] = await until(2);
    if (opened.kind !== 'handle') throw new Error(`OPEN failed: ${JSON.stringify(opened)}`);
    // 128 READs: 64 start, 64 are held; the replies fill the window, then pile up past 1 MiB.
    const reads: Buffer[] = [];
    for (let i = 0; i < 128; i++) reads.push(encodeRequest.read(100 + i, opened.handle, i * 32768, 32768));
    sftp.data(Buffer.concat(reads), 0);
    for (let i = 0; i < 400 && (sftp as unknown as { core: { pending: number } }).core.pending > 0; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
    expect(ch.remoteWindow).toBe(0);
    // One adjust leaves 7232 bytes of window below a whole packet; the next comes before the
    // tail is sent, so the window never reaches 0 again and no writable() follows.
    ch.onWindowAdjust(40000);
    expect(ch.remoteWindow).toBe(40000 - 32768);
    ch.onWindowAdjust(64 << 20);
    const replies = (await until(2 + 128)).slice(2);
    expect(replies.map((r) => r.kind === 'data' && r.id)).toEqual(reads.map((_, i) => 100 + i));
  });

  it('a lone small reply is not held back waiting for a packet to fill', async () => {
    const { sftp, until } = serve(root);
    sftp.data(encodeRequest.init(3), 0);
    const [version] = await until(1);
    expect(version.kind).toBe('version');
  });
});

describe('SFTP server channel uploads', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-sftp-up-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  afterEach(() => jest.restoreAllMocks());

  /** The prototype of fs.promises' FileHandle, whose writev the server's writes go through. */
  async function fileHandleProto(): Promise<{ writev: (...a: unknown[]) => Promise<unknown> }> {
    const fh = await fs.promises.open(path.join(root, 'proto'), 'w');
    await fh.close();
    return Object.getPrototypeOf(fh);
  }

  async function openForWrite(name: string) {
    const served = serve(root);
    served.sftp.data(Buffer.concat([encodeRequest.init(3), encodeRequest.open(1, `/${name}`, FXF.WRITE | FXF.CREAT | FXF.TRUNC)]), 0);
    const [, opened] = await served.until(2);
    if (opened.kind !== 'handle') throw new Error(`OPEN failed: ${JSON.stringify(opened)}`);
    return { ...served, handle: opened.handle };
  }

  /** WRITE packets for `data` in `size` pieces from `offset`, ids from `firstId`. */
  const writes = (handle: Buffer, data: Buffer, size: number, firstId: number, offset = 0): Buffer[] => {
    const out: Buffer[] = [];
    for (let at = 0; at < data.length; at += size) out.push(Buffer.concat(encodeRequest.write(firstId + at / size, handle, offset + at, data.subarray(at, at + size))));
    return out;
  };

  /** The prototype of fs.promises' FileHandle with stat() saying no file is a regular one (as for a FIFO): its WRITEs go through the pool. */
  async function asIfNotRegular(): Promise<{ writev: jest.SpyInstance }> {
    const proto = (await fileHandleProto()) as unknown as { stat: (...a: unknown[]) => Promise<fs.Stats>; writev: (...a: unknown[]) => Promise<unknown> };
    const stat = proto.stat;
    jest.spyOn(proto, 'stat').mockImplementation(async function (this: unknown, ...a: unknown[]) {
      return Object.assign(await stat.apply(this, a), { isFile: () => false });
    });
    return { writev: jest.spyOn(proto, 'writev') };
  }

  /** `count` WRITEs of 32 KiB to a new file `name`, sent at once: each answered OK, in order, and the file holds them all. */
  async function writeInOrder(name: string, count: number): Promise<void> {
    const { sftp, until, handle } = await openForWrite(name);
    const data = randomBytes(count * 32768);
    sftp.data(Buffer.concat(writes(handle, data, 32768, 10)), 0);
    const replies = (await until(2 + count)).slice(2);
    expect(replies.map((r) => (r.kind === 'status' ? [r.id, r.code] : r.kind))).toEqual(Array.from({ length: count }, (_, i) => [10 + i, 0]));
    expect(fs.readFileSync(path.join(root, name)).equals(data)).toBe(true);
  }

  it('WRITEs to a regular file go on the thread, a call each, answered in order; none through the pool', async () => {
    expect(await onLocalFileSystem(root)).toBe(true); // the temp folder: on a local file system
    const writev = jest.spyOn(await fileHandleProto(), 'writev');
    const nodeFs = require('node:fs') as typeof import('node:fs');
    const writeSync = jest.spyOn(nodeFs, 'writeSync');
    await writeInOrder('inline.bin', 48);
    expect(writeSync.mock.calls.map((c) => (c as unknown[])[4])).toEqual(Array.from({ length: 48 }, (_, i) => i * 32768));
    expect(writev).not.toHaveBeenCalled();
  });

  it('WRITEs to a regular file on a network file system (statfs says NFS) go through the pool', async () => {
    const nodeFs = require('node:fs') as typeof import('node:fs');
    jest.spyOn(nodeFs, 'statfs').mockImplementation(((_path: unknown, cb: (err: null, st: { type: number }) => void) => cb(null, { type: 0x6969 })) as never);
    const writev = jest.spyOn(await fileHandleProto(), 'writev');
    const writeSync = jest.spyOn(nodeFs, 'writeSync');
    await writeInOrder('nfs.bin', 8);
    expect(writev).toHaveBeenCalled();
    expect(writeSync).not.toHaveBeenCalled();
  });

  it('WRITEs to what is not a regular file go through the pool, gathered into a few calls of at most FILE_WRITE_CALL_BYTES', async () => {
    const { writev } = await asIfNotRegular();
    await writeInOrder('run.bin', 48);
    // One per request before: 48. No more than FILE_WRITE_CALL_BYTES each (1.5 MiB here).
    const sizes = writev.mock.calls.map(([bufs]) => (bufs as Buffer[]).reduce((n, b) => n + b.length, 0));
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    expect(sizes.length).toBeLessThanOrEqual(4);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(FILE_WRITE_CALL_BYTES);
  });

  it('a READ between two WRITEs sees the first and not the second; overlapping WRITEs land in order', async () => {
    const { sftp, until, handle } = await openForWriteRead('order.bin');
    sftp.data(
      Buffer.concat([
        ...encodeRequest.write(10, handle, 0, Buffer.from('aaaa')),
        encodeRequest.read(11, handle, 0, 100),
        ...encodeRequest.write(12, handle, 4, Buffer.from('bbbb')),
        ...encodeRequest.write(13, handle, 0, Buffer.from('cc')),
        ...encodeRequest.write(14, handle, 2, Buffer.from('dd')),
      ]),
      0,
    );
    const replies = (await until(2 + 5)).slice(2);
    expect(replies.map((r) => r.kind)).toEqual(['status', 'data', 'status', 'status', 'status']);
    expect(replies[1].kind === 'data' && replies[1].data.toString()).toBe('aaaa');
    expect(fs.readFileSync(path.join(root, 'order.bin'), 'utf8')).toBe('ccddbbbb');
  });

  async function openForWriteRead(name: string) {
    const served = serve(root);
    served.sftp.data(Buffer.concat([encodeRequest.init(3), encodeRequest.open(1, `/${name}`, FXF.READ | FXF.WRITE | FXF.CREAT | FXF.TRUNC)]), 0);
    const [, opened] = await served.until(2);
    if (opened.kind !== 'handle') throw new Error(`OPEN failed: ${JSON.stringify(opened)}`);
    return { ...served, handle: opened.handle };
  }

  it.each([['on the thread'], ['through the pool']])('a run that fails %s answers each of its WRITEs with the error, and later WRITEs go on', async (how) => {
    const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
    let failures = 1;
    if (how === 'on the thread') {
      const nodeFs = require('node:fs') as typeof import('node:fs');
      const real = nodeFs.writeSync;
      jest.spyOn(nodeFs, 'writeSync').mockImplementation(((...a: Parameters<typeof real>) => {
        if (failures-- > 0) throw noSpace();
        return real(...a);
      }) as typeof real);
    } else {
      const real = (await fileHandleProto()).writev;
      const { writev } = await asIfNotRegular();
      writev.mockImplementation(function (this: unknown, ...a: unknown[]) {
        if (failures-- > 0) return Promise.reject(noSpace());
        return real.apply(this, a);
      });
    }
    const { sftp, until, handle } = await openForWrite('full.bin');
    sftp.data(Buffer.concat(writes(handle, randomBytes(8 * 1000), 1000, 10)), 0);
    const failed = (await until(2 + 8)).slice(2);
    expect(failed.map((r) => (r.kind === 'status' ? [r.id, r.message] : r.kind))).toEqual(Array.from({ length: 8 }, (_, i) => [10 + i, 'No space left on device']));
    expect(failed.every((r) => r.kind === 'status' && r.code !== 0)).toBe(true);
    const data = randomBytes(3000);
    sftp.data(Buffer.concat(writes(handle, data, 1000, 20)), 0);
    const later = (await until(2 + 8 + 3)).slice(2 + 8);
    expect(later.map((r) => (r.kind === 'status' ? [r.id, r.code] : r.kind))).toEqual([[20, 0], [21, 0], [22, 0]]);
    expect(fs.readFileSync(path.join(root, 'full.bin'))).toEqual(data);
  });

  it('refuses WRITEs reaching past 2^53 one by one, as too large, and gathers the WRITEs after them', async () => {
    const { sftp, until, handle } = await openForWrite('far.bin');
    sftp.data(
      Buffer.concat([
        ...encodeRequest.write(10, handle, 2 ** 53 - 2, Buffer.from('abcd')),
        ...encodeRequest.write(11, handle, 2n ** 60n, Buffer.from('abcd')),
        ...encodeRequest.write(12, handle, 0, Buffer.from('ok')),
        ...encodeRequest.write(13, handle, 2, Buffer.from('!')),
      ]),
      0,
    );
    const replies = (await until(2 + 4)).slice(2);
    expect(replies.map((r) => (r.kind === 'status' ? [r.id, r.code, r.message] : r.kind))).toEqual([
      [10, FX.FAILURE, 'File too large'],
      [11, FX.FAILURE, 'File too large'],
      [12, 0, expect.any(String)],
      [13, 0, expect.any(String)],
    ]);
    expect(fs.readFileSync(path.join(root, 'far.bin'), 'utf8')).toBe('ok!');
  });

  it("reuses its request packets' memory from one WRITE to the next, and keeps none once the file is closed", async () => {
    const { sftp, until, handle } = await openForWrite('reuse.bin');
    const pool = (sftp as unknown as { requestPool: BufferPool }).requestPool;
    const take = jest.spyOn(pool, 'take');
    const data = randomBytes(96 * 32768);
    let expected = 2;
    // Three rounds of 32 WRITEs, each answered before the next: 96 packets of ~32 KiB.
    for (let round = 0; round < 3; round++) {
      sftp.data(Buffer.concat(writes(handle, data.subarray(round * 32 * 32768, (round + 1) * 32 * 32768), 32768, 10 + round * 32, round * 32 * 32768)), 0);
      expected += 32;
      const got = await until(expected);
      expect(got.slice(-32).every((r) => r.kind === 'status' && r.code === 0)).toBe(true);
    }
    const memory = new Set(take.mock.results.map((r) => (r.value as Buffer).buffer));
    expect(take).toHaveBeenCalledTimes(96);
    expect(memory.size).toBeLessThanOrEqual(40);
    expect(pool.idle).toBeGreaterThan(0);
    sftp.data(encodeRequest.close(200, handle), 0);
    const [closed] = (await until(expected + 1)).slice(-1);
    expect(closed.kind === 'status' && closed.code).toBe(0);
    expect(pool.idle).toBe(0);
    expect(fs.readFileSync(path.join(root, 'reuse.bin')).equals(data)).toBe(true);
  });
});

describe('BufferPool', () => {
  const same = (a: Buffer, b: Buffer): boolean => a.buffer === b.buffer;

  it('hands a buffer back for the next request of the same size once it is released, once', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(DATA_HEADER + 32768);
    expect(a.length).toBe(DATA_HEADER + 32768);
    pool.release(a.subarray(0, 100)); // any view of it
    pool.release(a); // a second release of the same handing-out: ignored
    const b = pool.take(DATA_HEADER + 32768);
    expect(same(b, a)).toBe(true);
    expect(same(pool.take(DATA_HEADER + 32768), a)).toBe(false);
    expect(same(pool.take(1000), a)).toBe(false); // another size: its own
  });

  it('ignores buffers it did not make, keeps at most its limit idle, and clear drops them', () => {
    const pool = new BufferPool(2 * 5000);
    const foreign = Buffer.alloc(5000);
    pool.release(foreign);
    expect(same(pool.take(5000), foreign)).toBe(false);
    const held = [pool.take(5000), pool.take(5000), pool.take(5000)];
    for (const h of held) pool.release(h);
    const again = [pool.take(5000), pool.take(5000), pool.take(5000)];
    expect(again.filter((x) => held.some((h) => same(h, x))).length).toBe(2);
    for (const x of again) pool.release(x);
    pool.clear();
    expect(again.some((x) => same(x, pool.take(5000)))).toBe(false);
  });

  it('never pools below its minimum size, and never hands out a slice of shared memory', () => {
    const pool = new BufferPool(1 << 20, 4096);
    const small = pool.take(100).fill(1);
    pool.release(small);
    pool.take(100).fill(2); // small ones come from Node's shared slab: not the same bytes
    expect(small.every((b) => b === 1)).toBe(true);
    const big = pool.take(5000);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(5000);
  });
});
