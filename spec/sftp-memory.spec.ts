/**
 * SftpClientCore against SftpServerCore in memory (both sans-I/O), then hostile input to the
 * server, and the client's download pipeline against a scripted server that answers short
 * and out of order.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SFTPAttributes } from '../lib/sftp/attributes';
import { SftpClientCore } from '../lib/sftp/client-core';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, SftpReply } from '../lib/sftp/codec';
import { EXT, FX, FXF, FXP } from '../lib/sftp/constants';
import { SftpServerCore } from '../lib/sftp/server-core';
import { IOError } from '../lib/errors';
import { copyRemote, downloadRuns, readRange } from '../lib/sftp/transfer';
import { BufferPool } from '../lib/buffer-pool';
import { localSource } from '../lib/worker/services/sftp';
import { FileWriter, FILE_WRITE_CALL_BYTES, onLocalFileSystem, INLINE_SLOW_WRITES, INLINE_WRITE_SLOW_MS, INLINE_WRITE_STALL_MS, unwritten, writeAllAt, writeAllSync } from '../lib/files';
import { cleanup, memoryPair, MemoryPair, openFdsUnder, settledFdsUnder, sha256, tempDir } from './support/sftp/harness';

const fromBuffer = (data: Buffer) => (off: number, len: number) => (off >= data.length ? null : data.subarray(off, off + len));
const attrs = (a: Partial<SFTPAttributes>) => Object.assign(new SFTPAttributes(), a);

async function fetchAll(client: SftpClientCore, remote: string, opts = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  await client.download(remote, (_off, d) => void parts.push(Buffer.from(d)), opts);
  return Buffer.concat(parts);
}

afterAll(cleanup);


describe('SftpClientCore against SftpServerCore in memory', () => {
  let root: string;
  let m: MemoryPair;
  const p = (n: string) => path.join(root, n);

  beforeAll(async () => {
    root = fs.realpathSync(tempDir('mem-'));
    m = await memoryPair(root, {}, 7000);
  });
  afterAll(() => m.server.end());

  it('announces the OpenSSH extensions and its limits', async () => {
    for (const ext of Object.values(EXT)) expect(m.client.hasExtension(ext)).toBe(true);
    expect(await m.client.limits()).toEqual({ maxPacketLength: 262144, maxReadLength: 261120, maxWriteLength: 261120, maxOpenHandles: 1024 });
  });

  it('does every file operation and matches the filesystem', async () => {
    const c = m.client;
    const h = await c.open('/f', FXF.WRITE | FXF.CREAT | FXF.TRUNC, attrs({ st_mode: 0o640 }));
    await c.write(h, 0, Buffer.from('hello world'));
    expect((await c.fstat(h)).st_size).toBe(11);
    await c.fsetstat(h, attrs({ st_size: 5 }));
    await c.fsync(h);
    expect((await c.fstatvfs(h)).bsize).toBe(fs.statfsSync(root).bsize);
    await c.close(h);
    expect(fs.readFileSync(p('f'), 'utf8')).toBe('hello');
    await expect(c.open('f', FXF.WRITE | FXF.CREAT | FXF.EXCL)).rejects.toMatchObject({ status: FX.FAILURE, serverMessage: 'File exists', code: 'EEXIST' });
    const a = await c.open('f', FXF.WRITE | FXF.APPEND);
    await c.write(a, 0, Buffer.from('!'));
    await c.close(a);
    expect(fs.readFileSync(p('f'), 'utf8')).toBe('hello!');
    const r = await c.open('f', FXF.READ);
    expect((await c.read(r, 1, 3))!.toString()).toBe('ell');
    expect(await c.read(r, 6, 10)).toBeNull();
    await expect(c.write(r, 0, Buffer.from('x'))).rejects.toMatchObject({ code: 'EACCES' });
    await c.close(r);

    const st = await c.stat('f');
    const local = fs.statSync(p('f'));
    expect([st.st_size, st.st_mode, st.st_uid, st.st_mtime]).toEqual([6, local.mode, local.uid, Math.floor(local.mtimeMs / 1000)]);
    await c.setstat('f', attrs({ st_mode: 0o600, st_atime: 1000000000, st_mtime: 1100000000 }));
    expect(fs.statSync(p('f')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(p('f')).mtimeMs).toBe(1100000000 * 1000);

    await c.mkdir('dir', attrs({ st_mode: 0o755 }));
    for (let i = 0; i < 230; i++) fs.writeFileSync(p(`dir/e${i}`), '');
    const names = (await c.listdir('dir')).map((e) => e.filename);
    expect(names.slice(0, 2)).toEqual(['.', '..']);
    expect(names.slice(2).sort()).toEqual(fs.readdirSync(p('dir')).sort());
    await expect(c.rmdir('dir')).rejects.toMatchObject({ status: FX.FAILURE, serverMessage: 'Directory not empty', code: 'ENOTEMPTY' });
    fs.rmSync(p('dir'), { recursive: true });
    fs.mkdirSync(p('dir'));
    await c.rmdir('dir');
    expect(fs.existsSync(p('dir'))).toBe(false);

    fs.writeFileSync(p('g'), 'G');
    await expect(c.rename('f', 'g')).rejects.toMatchObject({ serverMessage: 'File exists' });
    await c.rename('f', 'f2');
    await c.posixRename('f2', 'g');
    expect(fs.readFileSync(p('g'), 'utf8')).toBe('hello!');
    await c.hardlink('g', 'g2');
    expect(fs.statSync(p('g2')).ino).toBe(fs.statSync(p('g')).ino);
    await c.symlink('g', 'gl');
    expect(fs.readlinkSync(p('gl'))).toBe('g');
    expect(await c.readlink('gl')).toBe('g');
    expect((await c.lstat('gl')).isSymbolicLink()).toBe(true);
    expect((await c.stat('gl')).st_size).toBe(6);
    await c.lsetstat('gl', attrs({ st_atime: 1200000000, st_mtime: 1200000000 }));
    expect(fs.lstatSync(p('gl')).mtimeMs).toBe(1200000000 * 1000);
    await c.remove('g2');
    await expect(c.remove('g2')).rejects.toMatchObject({ code: 'ENOENT', path: 'g2' });

    expect(await c.realpath('.')).toBe('/');
    expect(await c.realpath('gl')).toBe('/g');
    expect(await c.realpath('../../x/..')).toBe('/');
    expect(await c.expandPath('~/g')).toBe('/g');
    expect((await c.statvfs('/')).blocks).toBe(fs.statfsSync(root).blocks);

    const src = randomBytes(200000);
    fs.writeFileSync(p('cd'), src);
    const rh = await c.open('cd', FXF.READ);
    const wh = await c.open('cd2', FXF.WRITE | FXF.CREAT);
    await c.copyData(rh, 0, 0, wh, 0);
    await c.copyData(rh, 10, 20, wh, 200000);
    await expect(c.copyData(rh, 0, 10, rh, 5)).rejects.toBeInstanceOf(IOError);
    await c.close(rh);
    await c.close(wh);
    expect(fs.readFileSync(p('cd2'))).toEqual(Buffer.concat([src, src.subarray(10, 30)]));
  });

  it('copyRemote: by the server with copy-data, else down and up through the client; both exact', async () => {
    const c = m.client;
    const data = randomBytes(3 * 1024 * 1024 + 5);
    fs.writeFileSync(p('copy-src'), data);
    fs.chmodSync(p('copy-src'), 0o640);
    for (const throughClient of [false, true]) {
      const dst = `copy-dst-${throughClient}`;
      // A longer file in the way is replaced, not left with its tail.
      fs.writeFileSync(p(dst), Buffer.alloc(data.length + 1000, 1));
      const seen: number[] = [];
      const r = await copyRemote(c, 'copy-src', dst, { throughClient, maxInFlight: 4, onProgress: (done) => seen.push(done) });
      expect(r).toEqual({ bytes: data.length, serverSide: !throughClient });
      expect(sha256(fs.readFileSync(p(dst)))).toBe(sha256(data));
      expect(seen[seen.length - 1]).toBe(data.length);
      // A new file gets the source's permissions.
      fs.rmSync(p(dst));
      await copyRemote(c, 'copy-src', dst, { throughClient });
      expect(fs.statSync(p(dst)).mode & 0o777).toBe(0o640);
      // A shorter file in the way is overwritten to the full length.
      fs.writeFileSync(p(dst), 'short');
      await copyRemote(c, 'copy-src', dst, { throughClient });
      expect(sha256(fs.readFileSync(p(dst)))).toBe(sha256(data));
      // Onto itself: nothing lost (truncating first would empty it).
      await copyRemote(c, dst, dst, { throughClient });
      expect(sha256(fs.readFileSync(p(dst)))).toBe(sha256(data));
      await expect(copyRemote(c, 'copy-src', dst, { throughClient, exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(copyRemote(c, 'no-such', dst, { throughClient })).rejects.toMatchObject({ code: 'ENOENT' });
      fs.mkdirSync(p(`copy-dir-${throughClient}`));
      await expect(copyRemote(c, `copy-dir-${throughClient}`, dst, { throughClient })).rejects.toMatchObject({ code: 'EISDIR' });
      await expect(copyRemote(c, 'copy-src', `copy-dir-${throughClient}/missing/x`, { throughClient })).rejects.toMatchObject({ code: 'ENOENT' });
    }
    fs.writeFileSync(p('copy-empty'), '');
    expect(await copyRemote(c, 'copy-empty', 'copy-empty2', { throughClient: true })).toEqual({ bytes: 0, serverSide: false });
    expect(fs.readFileSync(p('copy-empty2')).length).toBe(0);
  });

  it('transfers files of every size around the request size exactly', async () => {
    for (const size of [0, 1, 32767, 32768, 32769, 261120, 261121, 3 * 1024 * 1024 + 11]) {
      const data = randomBytes(size);
      expect(await m.client.upload(fromBuffer(data), `t${size}`, { size })).toBe(size);
      expect(sha256(fs.readFileSync(p(`t${size}`)))).toBe(sha256(data));
      expect(sha256(await fetchAll(m.client, `t${size}`))).toBe(sha256(data));
      expect(sha256(await fetchAll(m.client, `t${size}`, { requestSize: 32768, maxInFlight: 3 }))).toBe(sha256(data));
    }
  });

  it('keeps offsets right with WRITEs, a READ and a CLOSE pipelined on one handle', async () => {
    const h = await m.client.open('pipe', FXF.READ | FXF.WRITE | FXF.CREAT | FXF.TRUNC);
    const chunks = Array.from({ length: 50 }, () => randomBytes(10000));
    const writes = chunks.map((d, i) => m.client.write(h, i * 10000, d));
    const read = m.client.read(h, 0, 200000);
    const close = m.client.close(h);
    await Promise.all(writes);
    expect((await read)!.equals(Buffer.concat(chunks).subarray(0, 200000))).toBe(true);
    await close;
    expect(fs.readFileSync(p('pipe')).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('downloads through a copying framer from reused input, its reply buffers reused once the sink is done', async () => {
    const t = await memoryPair(root, {}, 7000, { transientInput: true });
    try {
      const data = randomBytes(20 * 261120 + 12345);
      fs.writeFileSync(p('pooled'), data);
      const parts: Buffer[] = [];
      const buffers = new Set<ArrayBufferLike>();
      const n = await t.client.download(
        '/pooled',
        async (_off, d) => {
          buffers.add(d.buffer);
          // A slow sink: replies that arrive meanwhile must not land in this one's buffer.
          await new Promise((r) => setTimeout(r, 2));
          parts.push(Buffer.from(d));
        },
        { sinkReleasesData: true, maxInFlight: 4 },
      );
      expect(n).toBe(data.length);
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
      // 21 replies through a handful of buffers.
      expect(buffers.size).toBeLessThan(10);
      // Without the promise to release, every reply has a buffer of its own.
      const kept = new Set<ArrayBufferLike>();
      const again: Buffer[] = [];
      await t.client.download('/pooled', (_off, d) => {
        kept.add(d.buffer);
        again.push(d);
      });
      expect(kept.size).toBe(21);
      expect(sha256(Buffer.concat(again))).toBe(sha256(data));
    } finally {
      t.server.end();
    }
  });

  it('rejects pending requests when the session ends', async () => {
    const pair = await memoryPair(root);
    const pending = pair.client.stat('/');
    pair.client.end(new Error('channel closed'));
    await expect(pending).rejects.toThrow('channel closed');
    await expect(pair.client.stat('/')).rejects.toThrow('channel closed');
    await pair.server.end();
  });
});

describe('SftpServerCore options', () => {
  it('read-only refuses every change with EACCES and still serves reads', async () => {
    const root = tempDir('ro-');
    fs.writeFileSync(path.join(root, 'f'), 'data');
    const { client, server } = await memoryPair(root, { readOnly: true });
    await expect(client.open('f', FXF.WRITE)).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.open('n', FXF.READ | FXF.CREAT)).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.mkdir('d')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.remove('f')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.rename('f', 'g')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.setstat('f', attrs({ st_mode: 0o600 }))).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.symlink('f', 'l')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(client.upload(fromBuffer(Buffer.from('x')), 'f')).rejects.toMatchObject({ code: 'EACCES' });
    expect((await fetchAll(client, 'f')).toString()).toBe('data');
    expect(Number((await client.statvfs('/')).flag) & 1).toBe(1);
    expect(fs.readdirSync(root)).toEqual(['f']);
    await server.end();
  });

  it('umask gives created files and directories exactly mode & ~umask', async () => {
    const root = tempDir('umask-');
    const { client, server } = await memoryPair(root, { umask: 0o027 });
    await client.close(await client.open('f', FXF.WRITE | FXF.CREAT, attrs({ st_mode: 0o666 })));
    await client.mkdir('d', attrs({ st_mode: 0o777 }));
    expect(fs.statSync(path.join(root, 'f')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(root, 'd')).mode & 0o777).toBe(0o750);
    await server.end();
  });
});

/** A raw session with the server: packets in, decoded replies out. */
async function rawServer(root: string, opts = {}) {
  const replies: SftpReply[] = [];
  const ended: Error[] = [];
  let wake: (() => void) | null = null;
  const server = new SftpServerCore(
    root,
    (b) => {
      replies.push(decodeReply(b.subarray(4)));
      wake?.();
    },
    { ...opts, onEnd: (e) => ended.push(e) },
  );
  server.receive(encodeRequest.init(3));
  const next = async (): Promise<SftpReply> => {
    while (replies.length === 0) await new Promise<void>((r) => (wake = r));
    return replies.shift()!;
  };
  expect(await next()).toMatchObject({ kind: 'version', version: 3 });
  return { server, next, replies, ended };
}

describe('SftpServerCore against hostile input', () => {
  it('answers a garbage handle with FAILURE and keeps serving', async () => {
    const s = await rawServer(tempDir('h-'));
    for (const h of [Buffer.alloc(0), Buffer.from('garbage-handle'), Buffer.from([0, 0, 0, 99])]) {
      s.server.receive(encodeRequest.read(1, h, 0, 10));
      expect(await s.next()).toMatchObject({ kind: 'status', id: 1, code: FX.FAILURE, message: 'Invalid handle' });
      s.server.receive(encodeRequest.close(2, h));
      expect(await s.next()).toMatchObject({ kind: 'status', id: 2, code: FX.FAILURE });
    }
    s.server.receive(encodeRequest.realpath(3, '.'));
    expect(await s.next()).toMatchObject({ kind: 'name', id: 3 });
    expect(s.ended).toEqual([]);
  });

  it('answers an unknown packet type and an unknown extension with OP_UNSUPPORTED', async () => {
    const s = await rawServer(tempDir('u-'));
    s.server.receive(Buffer.from([0, 0, 0, 9, 77, 0, 0, 0, 5, 1, 2, 3, 4]));
    expect(await s.next()).toEqual({ kind: 'status', id: 5, code: FX.OP_UNSUPPORTED, message: 'Unsupported request type 77', lang: '' });
    s.server.receive(encodeRequest.extended(6, 'nope@example.com'));
    expect(await s.next()).toMatchObject({ kind: 'status', id: 6, code: FX.OP_UNSUPPORTED });
    expect(s.ended).toEqual([]);
  });

  it('ends the session on a truncated packet, after a BAD_MESSAGE for its id', async () => {
    const s = await rawServer(tempDir('t-'));
    const open = encodeRequest.open(7, '/some/file', FXF.READ);
    const cut = Buffer.concat([Buffer.alloc(4), open.subarray(4, open.length - 6)]);
    cut.writeUInt32BE(cut.length - 4, 0);
    s.server.receive(cut);
    expect(await s.next()).toMatchObject({ kind: 'status', id: 7, code: FX.BAD_MESSAGE });
    expect(s.ended).toHaveLength(1);
    expect(s.ended[0].message).toMatch(/malformed SSH_FXP_OPEN/);
    s.server.receive(encodeRequest.realpath(8, '.'));
    await new Promise((r) => setTimeout(r, 20));
    expect(s.replies).toEqual([]);
  });

  it('ends the session on a truncated extended request and on an oversize length', async () => {
    const s = await rawServer(tempDir('t2-'));
    s.server.receive(encodeRequest.extended(9, EXT.POSIX_RENAME, (m) => m.addString('only-one')));
    expect(await s.next()).toMatchObject({ kind: 'status', id: 9, code: FX.BAD_MESSAGE });
    expect(s.ended).toHaveLength(1);
    const s2 = await rawServer(tempDir('t3-'));
    s2.server.receive(Buffer.from([0x7f, 0xff, 0xff, 0xff, FXP.READ]));
    expect(s2.ended[0].message).toMatch(/exceeds the limit/);
  });

  it('ends the session when a request comes before INIT', () => {
    const ended: Error[] = [];
    const sent: Buffer[] = [];
    const server = new SftpServerCore(tempDir('i-'), (b) => sent.push(b), { onEnd: (e) => ended.push(e) });
    server.receive(encodeRequest.stat(1, '/'));
    expect(ended[0].message).toMatch(/before SSH_FXP_INIT/);
    expect(sent).toEqual([]);
  });

  it('refuses handles beyond the limit (2000 opens: 1024 succeed) and recovers after closes, no descriptor left open', async () => {
    const root = tempDir('many-');
    fs.writeFileSync(path.join(root, 'f'), 'x');
    const { client, server } = await memoryPair(root);
    const fds = openFdsUnder(root);
    const results = await Promise.allSettled(Array.from({ length: 2000 }, () => client.open('f', FXF.READ)));
    const ok = results.filter((r): r is PromiseFulfilledResult<Buffer> => r.status === 'fulfilled');
    const bad = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1024);
    expect(bad).toHaveLength(976);
    expect(bad[0].reason.message).toMatch(/Too many open handles \(limit 1024\)/);
    expect(server.openHandles).toBe(1024);
    await Promise.all(ok.map((r) => client.close(r.value)));
    expect(server.openHandles).toBe(0);
    expect(await settledFdsUnder(root, fds)).toBe(fds);
    await client.close(await client.open('f', FXF.READ));
    await server.end();
  });

  it('closes what an OPEN or OPENDIR still in progress opens when the session ends', async () => {
    const root = tempDir('end-');
    fs.writeFileSync(path.join(root, 'f'), 'x');
    const s = await rawServer(root);
    const fds = openFdsUnder(root);
    for (let id = 1; id <= 20; id++) s.server.receive(id % 2 ? encodeRequest.open(id, 'f', FXF.READ) : encodeRequest.opendir(id, '.'));
    await s.server.end();
    // The queued ones still run (and fail: the session is over); what they opened is closed again.
    for (let i = 0; i < 200 && s.server.pending > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.server.pending).toBe(0);
    expect(await settledFdsUnder(root, fds)).toBe(fds);
    expect(s.server.openHandles).toBe(0);
  });

  it('answers a NUL in a path with BAD_MESSAGE', async () => {
    const { client, server } = await memoryPair(tempDir('nul-'));
    await expect(client.stat('a\0b')).rejects.toMatchObject({ code: 'EBADMSG' });
    await server.end();
  });
});

describe('SftpClientCore download pipeline against a server that answers short and out of order', () => {
  /** A scripted server over one file: READs answered with random short lengths, in shuffled batches. */
  function quirkyServer(file: Buffer, opts: { maxRead?: number; inOrder?: boolean } = {}) {
    let client!: SftpClientCore;
    const queue: Buffer[] = [];
    const flush = () => {
      // Answer what is queued in a random order.
      for (let i = queue.length - 1; i > 0 && !opts.inOrder; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [queue[i], queue[j]] = [queue[j], queue[i]];
      }
      for (const b of queue.splice(0)) client.receive(b);
    };
    const handle = Buffer.from('H');
    client = new SftpClientCore((bytes) => {
      const req = decodeRequest(Buffer.from(bytes).subarray(4));
      let reply: Buffer;
      switch (req.kind) {
        case 'init':
          return setImmediate(() => client.receive(encodeReply.version(3, opts.maxRead ? [[EXT.LIMITS, '1']] : [])));
        case 'extended':
          reply = encodeReply.extendedReply(req.id, (m) => m.addInt64(262144).addInt64(opts.maxRead!).addInt64(32768).addInt64(0));
          break;
        case 'open':
          reply = encodeReply.handle(req.id, handle);
          break;
        case 'fstat':
          reply = encodeReply.attrs(req.id, attrs({ st_size: file.length }));
          break;
        case 'close':
          reply = encodeReply.status(req.id, FX.OK);
          break;
        case 'read': {
          const off = req.offset as number;
          if (off >= file.length) reply = encodeReply.status(req.id, FX.EOF);
          else {
            const most = Math.min(req.length, file.length - off);
            const n = opts.inOrder ? most : 1 + Math.floor(Math.random() * most);
            reply = encodeReply.data(req.id, file.subarray(off, off + n));
          }
          break;
        }
        default:
          reply = encodeReply.status((req as { id: number }).id, FX.OP_UNSUPPORTED);
      }
      queue.push(reply);
      if (queue.length === 1) setImmediate(flush);
    });
    return client;
  }

  it('re-requests the rest of every short read and delivers the file exactly, in order', async () => {
    for (const size of [0, 1, 1000, 100000, 1234567]) {
      const file = randomBytes(size);
      const client = quirkyServer(file, { maxRead: 20000 });
      await client.start();
      let next = 0;
      const parts: Buffer[] = [];
      const n = await client.download('x', (off, d) => {
        expect(off).toBe(next);
        next += d.length;
        parts.push(Buffer.from(d));
      }, { maxInFlight: 16 });
      expect(n).toBe(size);
      expect(sha256(Buffer.concat(parts))).toBe(sha256(file));
      // A range, with an async sink.
      const part: Buffer[] = [];
      const got = await client.download('x', async (_o, d) => void part.push(Buffer.from(d)), { offset: Math.floor(size / 3), length: 50000 });
      expect(Buffer.concat(part).equals(file.subarray(Math.floor(size / 3), Math.floor(size / 3) + 50000))).toBe(true);
      expect(got).toBe(Math.min(50000, size - Math.floor(size / 3)));
    }
  });

  it('hands a run sink contiguous runs of at least minRunBytes, the last excepted', async () => {
    const file = randomBytes(1234567);
    for (const sync of [true, false]) {
      const client = quirkyServer(file, { maxRead: 20000, inOrder: true });
      await client.start();
      const runs: Array<[number, Buffer[]]> = [];
      const sink = (off: number, chunks: Buffer[]) => {
        runs.push([off, chunks.map((c) => Buffer.from(c))]);
        return sync ? undefined : new Promise<void>((r) => setImmediate(r));
      };
      expect(await downloadRuns(client, 'x', sink, { maxInFlight: 32, minRunBytes: 100000 })).toBe(file.length);
      let next = 0;
      runs.forEach(([off, chunks], i) => {
        expect(off).toBe(next);
        const bytes = chunks.reduce((n, c) => n + c.length, 0);
        if (i < runs.length - 1) expect(bytes).toBeGreaterThanOrEqual(100000);
        next += bytes;
      });
      expect(Buffer.concat(runs.flatMap(([, c]) => c)).equals(file)).toBe(true);
      expect(runs.length).toBeLessThanOrEqual(Math.ceil(file.length / 100000));
    }
  });

  it('keeps runs within maxRunBytes however far the sink lags, and sends a run that cannot take another request at once', async () => {
    const file = randomBytes(1234567);
    for (const inOrder of [true, false]) {
      const client = quirkyServer(file, { maxRead: 20000, inOrder });
      await client.start();
      const runs: number[] = [];
      const sink = (_off: number, chunks: Buffer[]) => {
        runs.push(chunks.reduce((n, c) => n + c.length, 0));
        // A slow disk: replies pile up while each run is written.
        return new Promise<void>((r) => setTimeout(r, 3));
      };
      // minRunBytes above the cap: a run is sent once no further 20000-byte READ fits.
      expect(await downloadRuns(client, 'x', sink, { maxInFlight: 32, minRunBytes: 100000, maxRunBytes: 90000 })).toBe(file.length);
      expect(runs.reduce((a, b) => a + b, 0)).toBe(file.length);
      expect(Math.max(...runs)).toBeLessThanOrEqual(90000);
      // Full answers in order: four READs per run (a fifth would pass the cap), the last excepted.
      if (inOrder) expect(runs.slice(0, -1).every((n) => n === 80000)).toBe(true);
    }
  });

  it('uses 32 KiB requests when the server has no limits extension', async () => {
    const client = quirkyServer(Buffer.alloc(10));
    await client.start();
    expect(await client.limits()).toMatchObject({ maxReadLength: 32768, maxWriteLength: 32768, maxPacketLength: 262144 });
  });

  it('fails the session on a reply to an unknown request id', async () => {
    const errors: Error[] = [];
    const client = new SftpClientCore(() => undefined, { onError: (e) => errors.push(e) });
    const started = client.start();
    client.receive(encodeReply.version(3, []));
    await started;
    const pending = client.stat('/');
    client.receive(encodeReply.status(12345, FX.OK));
    await expect(pending).rejects.toThrow(/unknown request id 12345/);
    expect(errors).toHaveLength(1);
  });

  it('fails the read and the session when DATA is longer than asked', async () => {
    const errors: Error[] = [];
    const sent: Buffer[] = [];
    const client = new SftpClientCore((b) => void sent.push(b), { onError: (e) => errors.push(e) });
    const started = client.start();
    client.receive(encodeReply.version(3, []));
    await started;
    const read = client.read(Buffer.from('h'), 0, 4);
    const other = client.stat('/');
    const id = decodeRequest(sent[1].subarray(4)) as { id: number };
    client.receive(encodeReply.data(id.id, Buffer.alloc(5)));
    await expect(read).rejects.toThrow(/5 bytes for a read of 4/);
    await expect(other).rejects.toThrow(/5 bytes for a read of 4/);
    expect(errors).toHaveLength(1);
  });
});

describe('SftpClientCore upload sources', () => {
  it('takes chunks of any size, sync or async, larger than a WRITE too', async () => {
    const root = tempDir('src-');
    const { client, server } = await memoryPair(root);
    const data = randomBytes(2_000_003);
    const sizes = [1, 100000, 700000, 3, 65536];
    let k = 0;
    const yielded: Buffer[] = [];
    const written: Buffer[] = [];
    const n = await client.upload(
      async (off, _len) => {
        if (off >= data.length) return null;
        const take = sizes[k++ % sizes.length];
        yielded.push(data.subarray(off, off + take));
        return yielded[yielded.length - 1];
      },
      'up',
      {
        requestSize: 65536,
        maxInFlight: 4,
        fsync: true,
        // Every chunk comes back once, whole: those split over several WRITEs too.
        onWritten: (chunk) => void written.push(chunk),
      },
    );
    expect(n).toBe(data.length);
    expect(written.length).toBe(yielded.length);
    expect(written.every((c) => yielded.includes(c)) && new Set(written).size === written.length).toBe(true);
    expect(sha256(fs.readFileSync(path.join(root, 'up')))).toBe(sha256(data));
    await expect(client.upload(fromBuffer(data), 'up2', { size: data.length + 1 })).rejects.toThrow(/size mismatch/);
    const boom = new Error('source failed');
    await expect(client.upload(() => Promise.reject(boom), 'up3')).rejects.toBe(boom);
    expect(server.openHandles).toBe(0);
    await server.end();
  });

  it("a put's local source reads to the end, as Paramiko's put: what is appended meanwhile, what is left of a file that shrank, a /proc file whose size says 0", async () => {
    const root = tempDir('local-src-');
    const { client, server } = await memoryPair(root);
    const pool = new BufferPool(16 * 1024 * 1024, 64 * 1024);
    const direct = <T>(fn: () => Promise<T>) => fn();
    /** Uploads `file` through localSource, calling `meanwhile` after its first chunk was read. */
    const putThrough = async (file: string, meanwhile: () => void): Promise<number> => {
      const fh = await fs.promises.open(file, 'r');
      try {
        const st = await fh.stat();
        const read = localSource(fh, st.isFile() ? st.size : undefined, pool, direct);
        let calls = 0;
        return await client.upload(async (off, len) => {
          const chunk = await read(off, len);
          if (calls++ === 0) meanwhile();
          return chunk;
        }, 'up', { requestSize: 65536, maxInFlight: 2, onWritten: (d) => pool.release(d) });
      } finally {
        await fh.close();
      }
    };
    const grown = path.join(root, 'grows');
    const start = randomBytes(1_000_000);
    const tail = randomBytes(300_001);
    fs.writeFileSync(grown, start);
    expect(await putThrough(grown, () => fs.appendFileSync(grown, tail))).toBe(start.length + tail.length);
    expect(sha256(fs.readFileSync(path.join(root, 'up')))).toBe(sha256(Buffer.concat([start, tail])));
    // Appended after the first read reached the size it had (its read of one byte more saw 0).
    fs.writeFileSync(grown, start.subarray(0, 1000));
    expect(await putThrough(grown, () => fs.appendFileSync(grown, tail))).toBe(1000 + tail.length);
    expect(fs.readFileSync(path.join(root, 'up')).equals(Buffer.concat([start.subarray(0, 1000), tail]))).toBe(true);
    const shrunk = path.join(root, 'shrinks');
    fs.writeFileSync(shrunk, start);
    expect(await putThrough(shrunk, () => fs.truncateSync(shrunk, 400_000))).toBeLessThanOrEqual(400_000 + 4 * 65536);
    expect(fs.readFileSync(path.join(root, 'up')).equals(fs.readFileSync(shrunk).subarray(0, fs.statSync(path.join(root, 'up')).size))).toBe(true);
    if (fs.existsSync('/proc/version') && fs.statSync('/proc/version').size === 0) {
      expect(await putThrough('/proc/version', () => undefined)).toBe(fs.readFileSync('/proc/version').length);
      expect(fs.readFileSync(path.join(root, 'up')).equals(fs.readFileSync('/proc/version'))).toBe(true);
    }
    expect(server.openHandles).toBe(0);
    await server.end();
  });
});

/**
 * A scripted server for one transfer or listing: requests arrive in batches (whatever the client
 * sent before the replies it had were delivered); STAT answers with `statSizes` in turn (a
 * negative one: permission denied), READ and FSTAT from `file`, READDIR with `listing` in turn
 * (a batch of that many names, `eof`, or `fail`: a FAILURE status), and EOF past its end;
 * `withLimits` announces limits@openssh.com (1000-byte reads and writes); FSTAT answers
 * `fstatSize` (the file's length unless told).
 */
async function scripted(statSizes: number[], file = Buffer.alloc(0), listing: Array<number | 'eof' | 'fail'> = [], withLimits = false, fstatSize = file.length) {
  const batches: string[][] = [[]];
  const queue: Buffer[] = [];
  let stats = 0;
  let names = 0;
  let client!: SftpClientCore;
  const flush = () => {
    batches.push([]);
    for (const b of queue.splice(0)) client.receive(b);
  };
  client = new SftpClientCore((bytes) => {
    const req = decodeRequest(Buffer.from(bytes).subarray(4));
    if (req.kind === 'init') return void setImmediate(() => client.receive(encodeReply.version(3, withLimits ? [[EXT.LIMITS, '1']] : [])));
    batches[batches.length - 1].push(req.kind);
    const id = (req as { id: number }).id;
    if (req.kind === 'extended') {
      // limits@openssh.com: 256 KiB packets, 1000-byte reads and writes, 64 handles.
      queue.push(encodeReply.extendedReply(id, (m) => m.addInt64(256 * 1024).addInt64(1000).addInt64(1000).addInt64(64)));
    } else if (req.kind === 'open' || req.kind === 'opendir') queue.push(encodeReply.handle(id, Buffer.from('H')));
    else if (req.kind === 'readdir') {
      const batch = listing.shift() ?? 'eof';
      if (batch === 'eof') queue.push(encodeReply.status(id, FX.EOF));
      else if (batch === 'fail') queue.push(encodeReply.status(id, FX.FAILURE));
      else queue.push(encodeReply.name(id, Array.from({ length: batch }, () => attrs({ filename: `f${names++}`, longname: '' }))));
    } else if (req.kind === 'stat') {
      const size = statSizes[Math.min(stats++, statSizes.length - 1)];
      queue.push(size < 0 ? encodeReply.status(id, FX.PERMISSION_DENIED) : encodeReply.attrs(id, attrs({ st_size: size })));
    } else if (req.kind === 'fstat') queue.push(encodeReply.attrs(id, attrs({ st_size: fstatSize })));
    else if (req.kind === 'read') {
      const off = req.offset as number;
      queue.push(off >= file.length ? encodeReply.status(id, FX.EOF) : encodeReply.data(id, file.subarray(off, off + req.length)));
    } else queue.push(encodeReply.status(id, FX.OK));
    if (queue.length === 1) setImmediate(flush);
  });
  await client.start();
  return { client, batches: () => batches.filter((b) => b.length) };
}

describe('SftpClientCore round trips of a whole-file transfer', () => {
  it('asks the limits as the session starts; a transfer\'s OPEN does not wait for them', async () => {
    const file = randomBytes(2500);
    const down = await scripted([file.length], file, [], true);
    // Asked right after VERSION, without waiting: the session's first request.
    expect(down.batches()).toEqual([['extended']]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await fetchAll(down.client, 'f')).toEqual(file);
    // READs of the announced 1000 bytes (and one at the end, for growth).
    expect(down.batches()).toEqual([['extended'], ['stat', 'open'], ['read', 'read', 'read', 'read'], ['close']]);
    // A transfer at once: the OPEN goes out with the limits still on their way.
    const up = await scripted([], file, [], true);
    expect(await up.client.upload(fromBuffer(file), 'g')).toBe(file.length);
    expect(up.batches()).toEqual([['extended', 'open'], ['write', 'write', 'write'], ['close']]);
  });

  it('sends its STAT behind the CLOSE, in one round trip', async () => {
    const { client, batches } = await scripted([5]);
    let confirmed: SFTPAttributes | null = null;
    expect(await client.upload(fromBuffer(Buffer.from('hello')), 'f', { confirm: (st) => (confirmed = st) })).toBe(5);
    expect(batches()).toEqual([['open'], ['write'], ['close', 'stat']]);
    expect(confirmed!.st_size).toBe(5);
  });

  it('asks again once closed when that STAT was answered with another size (a server may answer it first)', async () => {
    const { client, batches } = await scripted([0, 5]);
    let confirmed: SFTPAttributes | null = null;
    await client.upload(fromBuffer(Buffer.from('hello')), 'f', { confirm: (st) => (confirmed = st) });
    expect(batches()).toEqual([['open'], ['write'], ['close', 'stat'], ['stat']]);
    expect(confirmed!.st_size).toBe(5);
    // Still short after the CLOSE: Paramiko's error.
    const short = await scripted([3]);
    await expect(short.client.upload(fromBuffer(Buffer.from('hello')), 'g', { confirm: () => undefined })).rejects.toThrow('size mismatch in put! 3 != 5');
  });

  it('a download asks the size with the OPEN, or not at all when a listing gave it: its READs go out with the OPEN answered', async () => {
    const file = randomBytes(3000);
    const known = await scripted([], file);
    expect(await fetchAll(known.client, 'f', { knownSize: file.length })).toEqual(file);
    expect(known.batches()).toEqual([['open'], ['read', 'read'], ['close']]);
    const plain = await scripted([file.length], file);
    expect(await fetchAll(plain.client, 'f')).toEqual(file);
    expect(plain.batches()).toEqual([['stat', 'open'], ['read', 'read'], ['close']]);
    // A server that opens the file but refuses to STAT its path: the FSTAT of the handle.
    const refused = await scripted([-1], file);
    expect(await fetchAll(refused.client, 'f')).toEqual(file);
    expect(refused.batches()).toEqual([['stat', 'open'], ['fstat'], ['read', 'read'], ['close']]);
    // A file that grew since it was listed is read to its end.
    const grown = await scripted([], file);
    expect(await fetchAll(grown.client, 'f', { knownSize: 1000 })).toEqual(file);
  });
});

describe('readRange to the end of a file (SFTPFile.read())', () => {
  it('sends an FSTAT with its READs and stops where an answer ends short at the size: one round trip', async () => {
    const file = randomBytes(3000);
    // 64 KiB: two READs of 32 KiB (no limits extension).
    const { client, batches } = await scripted([], file);
    const h = await client.open('f', FXF.READ);
    const r = await readRange(client, h, 0, 64 * 1024, { toEnd: true });
    expect(r.data.equals(file)).toBe(true);
    expect(r.eof).toBe(true);
    // One READ alone (within a request's size) too.
    const one = await readRange(client, h, 1000, 10_000, { toEnd: true });
    expect(one.data.equals(file.subarray(1000))).toBe(true);
    expect(one.eof).toBe(true);
    expect(batches()).toEqual([['open'], ['fstat', 'read', 'read'], ['fstat', 'read']]);
    // Without toEnd: the rest of the short answer is asked, to hear EOF; a single READ cannot tell.
    const plain = await scripted([], file);
    const ph = await plain.client.open('f', FXF.READ);
    expect((await readRange(plain.client, ph, 0, 64 * 1024)).eof).toBe(true);
    expect((await readRange(plain.client, ph, 1000, 10_000)).eof).toBe(false);
    expect(plain.batches()).toEqual([['open'], ['read', 'read'], ['read'], ['read']]);
  });

  it('reads on where the file has grown past the size the FSTAT gave, or where the server answered short before it', async () => {
    const file = randomBytes(3000);
    const grown = await scripted([], file, [], false, 1000);
    const h = await grown.client.open('f', FXF.READ);
    const r = await readRange(grown.client, h, 0, 64 * 1024, { toEnd: true });
    expect(r.data.equals(file)).toBe(true);
    expect(r.eof).toBe(true);
    // The size is larger than what the READ gave: the rest is asked (and is EOF).
    const larger = await scripted([], file, [], false, 5000);
    const lh = await larger.client.open('f', FXF.READ);
    expect((await readRange(larger.client, lh, 0, 64 * 1024, { toEnd: true })).data.equals(file)).toBe(true);
    expect(larger.batches()).toEqual([['open'], ['fstat', 'read', 'read'], ['read']]);
  });
});

describe('SftpClientCore listing a directory', () => {
  const listed = (entries: SFTPAttributes[]) => entries.map((e) => e.filename);
  const named = (n: number) => Array.from({ length: n }, (_, i) => `f${i}`);

  it('sends its READDIRs four, then eight... at a time: 1000 names in two rounds', async () => {
    const { client, batches } = await scripted([], undefined, Array(10).fill(100));
    expect(listed(await client.listdir('d'))).toEqual(named(1000));
    expect(batches()).toEqual([['opendir'], Array(4).fill('readdir'), Array(8).fill('readdir'), ['close']]);
    // A small directory: one round.
    const small = await scripted([], undefined, [3]);
    expect(listed(await small.client.listdir('d'))).toEqual(named(3));
    expect(small.batches()).toEqual([['opendir'], Array(4).fill('readdir'), ['close']]);
    // An empty one.
    const empty = await scripted([], undefined, []);
    expect(await empty.client.listdir('d')).toEqual([]);
  });

  it('keeps names a server sends for a READDIR after the EOF (answered out of order), and ignores errors after it', async () => {
    const { client } = await scripted([], undefined, [100, 'eof', 100, 'fail']);
    expect(listed(await client.listdir('d'))).toEqual(named(200));
  });

  it('raises an error that comes before any EOF, and closes the handle', async () => {
    const { client, batches } = await scripted([], undefined, [100, 'fail', 100]);
    await expect(client.listdir('d')).rejects.toThrow(IOError);
    expect(batches().at(-1)).toEqual(['close']);
  });
});

describe('writeAllAt (a get\'s local writes)', () => {
  it('goes on after short writevs from exactly where each stopped', async () => {
    const chunks = [randomBytes(7), randomBytes(0), randomBytes(13), randomBytes(5)];
    const out = Buffer.alloc(40);
    const steps = [3, 4, 9, 1, 100, 999];
    const fh = {
      writev: async (bufs: readonly NodeJS.ArrayBufferView[], position?: number | null) => {
        const all = Buffer.concat(bufs as Buffer[]);
        const n = Math.min(steps.shift()!, all.length);
        all.copy(out, position!, 0, n);
        return { bytesWritten: n, buffers: bufs };
      },
    };
    await writeAllAt(fh as never, chunks, 10);
    expect(out.subarray(10, 35).equals(Buffer.concat(chunks))).toBe(true);
    expect(steps).toEqual([999]);
    expect(unwritten(chunks, 7).map((c) => c.length)).toEqual([13, 5]);
    expect(unwritten(chunks, 9).map((c) => c.length)).toEqual([11, 5]);
  });

  it('writes at most FILE_WRITE_CALL_BYTES per system call, splitting a chunk larger than that', async () => {
    const chunks = [randomBytes(FILE_WRITE_CALL_BYTES * 2 + 5), randomBytes(10), randomBytes(FILE_WRITE_CALL_BYTES / 2), randomBytes(FILE_WRITE_CALL_BYTES / 2)];
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const out = Buffer.alloc(total + 3);
    const calls: number[] = [];
    const fh = {
      writev: async (bufs: readonly NodeJS.ArrayBufferView[], position?: number | null) => {
        const all = Buffer.concat(bufs as Buffer[]);
        calls.push(all.length);
        all.copy(out, position!);
        return { bytesWritten: all.length, buffers: bufs };
      },
    };
    await writeAllAt(fh as never, chunks, 3);
    expect(out.subarray(3).equals(Buffer.concat(chunks))).toBe(true);
    expect(Math.max(...calls)).toBeLessThanOrEqual(FILE_WRITE_CALL_BYTES);
    expect(calls).toEqual([FILE_WRITE_CALL_BYTES, FILE_WRITE_CALL_BYTES, 5 + 10 + FILE_WRITE_CALL_BYTES / 2, FILE_WRITE_CALL_BYTES / 2]);
  });

  it('raises IOError when a writev takes nothing', async () => {
    const fh = { writev: async (bufs: readonly NodeJS.ArrayBufferView[]) => ({ bytesWritten: 0, buffers: bufs }) };
    await expect(writeAllAt(fh as never, [Buffer.alloc(4)], 0)).rejects.toThrow(IOError);
  });

  describe('FileWriter', () => {
    async function opened(name: string) {
      const file = path.join(tempDir('download-writer-'), name);
      const fh = await fs.promises.open(file, 'w');
      const writev = jest.spyOn(fh, 'writev');
      return { file, fh, writev };
    }

    it('writes a regular file on the calling thread, a call per chunk, done on return', async () => {
      const { file, fh, writev } = await opened('inline');
      const nodeFs = require('node:fs') as typeof import('node:fs');
      const writeSync = jest.spyOn(nodeFs, 'writeSync');
      try {
        const w = new FileWriter(fh, true);
        const chunks = [randomBytes(1000), randomBytes(3000), randomBytes(5)];
        expect(w.write(chunks, 7)).toBeUndefined();
        expect(w.write([Buffer.from('head')], 0)).toBeUndefined();
        expect(writeSync.mock.calls.map((c) => (c as unknown[]).slice(3, 5))).toEqual([[1000, 7], [3000, 1007], [5, 4007], [4, 0]]);
        expect(writev).not.toHaveBeenCalled();
        expect(w.writesInline).toBe(true);
        expect(fs.readFileSync(file).equals(Buffer.concat([Buffer.from('head'), Buffer.alloc(3), ...chunks]))).toBe(true);
      } finally {
        writeSync.mockRestore();
        await fh.close();
      }
    });

    it('after INLINE_SLOW_WRITES slow writes, or one stall, writes through the pool, at the positions given', async () => {
      const { file, fh, writev } = await opened('slow');
      try {
        // Each write's duration, in turn: slow ones apart (a fast one between them) still count.
        const durations = [INLINE_WRITE_SLOW_MS, 0, INLINE_WRITE_SLOW_MS - 1, INLINE_WRITE_SLOW_MS];
        let t = 0;
        let start = true;
        const now = () => (start = !start) ? (t += durations.shift() ?? 0) : t;
        const w = new FileWriter(fh, true, { now });
        for (let i = 0; i < 4; i++) {
          expect(w.write([Buffer.from(String(i))], i)).toBeUndefined();
          expect(w.writesInline).toBe(true);
        }
        durations.push(INLINE_WRITE_SLOW_MS);
        expect(INLINE_SLOW_WRITES).toBe(3);
        expect(w.write([Buffer.from('4')], 4)).toBeUndefined();
        expect(w.writesInline).toBe(false);
        const later = w.write([Buffer.from('5'), Buffer.from('6')], 5);
        expect(later).toBeInstanceOf(Promise);
        await later;
        expect(writev.mock.calls.map((c) => c[1])).toEqual([5]);
        expect(fs.readFileSync(file, 'utf8')).toBe('0123456');
        // One write of INLINE_WRITE_STALL_MS is enough.
        const stalled = new FileWriter(fh, true, { now: ((clock) => () => clock.shift() ?? 0)([0, INLINE_WRITE_STALL_MS]) });
        expect(stalled.write([Buffer.from('7')], 7)).toBeUndefined();
        expect(stalled.writesInline).toBe(false);
      } finally {
        await fh.close();
      }
    });

    it('writes a regular file told not inline (a network file system) through the pool, where told', async () => {
      const { file, fh, writev } = await opened('remote-fs');
      try {
        const w = new FileWriter(fh, true, { inline: false, inOrder: true });
        expect(w.writesInline).toBe(false);
        await w.write([Buffer.from('cd')], 2);
        await w.write([Buffer.from('ab')], 0);
        expect(writev.mock.calls.map((c) => c[1])).toEqual([2, 0]);
        expect(fs.readFileSync(file, 'utf8')).toBe('abcd');
      } finally {
        await fh.close();
      }
    });

    it('onLocalFileSystem: true for the temp folder (ext4 or tmpfs here), false for /proc and for a path that is not there', async () => {
      expect(await onLocalFileSystem(tempDir('local-fs-'))).toBe(process.platform === 'linux');
      expect(await onLocalFileSystem('/proc')).toBe(false);
      expect(await onLocalFileSystem(path.join(tempDir('local-fs-'), 'no', 'such'))).toBe(false);
    });

    it('writes what is not a regular file through the pool: at its current offset when inOrder, else where told', async () => {
      const { file, fh, writev } = await opened('stream');
      try {
        const w = new FileWriter(fh, false, { inOrder: true });
        expect(w.writesInline).toBe(false);
        await w.write([Buffer.from('abc')], 0);
        await w.write([Buffer.from('de'), Buffer.from('f')], 3);
        expect(writev.mock.calls.map((c) => c[1])).toEqual([undefined, undefined]);
        expect(fs.readFileSync(file, 'utf8')).toBe('abcdef');
        // Not in order (an SFTP server's WRITEs): where told, as pwrite would.
        await new FileWriter(fh, false).write([Buffer.from('X')], 1);
        expect(writev.mock.calls.map((c) => c[1])).toEqual([undefined, undefined, 1]);
        expect(fs.readFileSync(file, 'utf8')).toBe('aXcdef');
      } finally {
        await fh.close();
      }
    });

    it('a failed inline write throws at once, with the errno', async () => {
      const file = path.join(tempDir('download-writer-'), 'ro');
      fs.writeFileSync(file, '');
      const fh = await fs.promises.open(file, 'r');
      try {
        expect(() => new FileWriter(fh, true).write([Buffer.from('x')], 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      } finally {
        await fh.close();
      }
    });
  });

  it('writeAllSync (SCP downloads, SFTPHandle.write): calls of at most FILE_WRITE_CALL_BYTES, on after a short one, at a position or the current offset', () => {
    const file = path.join(tempDir('write-sync-'), 'f');
    const fd = fs.openSync(file, 'w+');
    // The module object itself (the namespace import's properties cannot be redefined).
    const nodeFs = require('node:fs') as typeof import('node:fs');
    const writeSync = nodeFs.writeSync;
    let short = true;
    const spy = jest.spyOn(nodeFs, 'writeSync').mockImplementation(((fd_: number, buf: Uint8Array, off: number, len: number, pos: number | null) => {
      const n = writeSync(fd_, buf, off, short ? 10 : len, pos);
      short = false;
      return n;
    }) as never);
    try {
      const big = randomBytes(FILE_WRITE_CALL_BYTES * 2 + 100);
      writeAllSync(fd, big);
      writeAllSync(fd, Buffer.from('tail'));
      writeAllSync(fd, Buffer.from('AB'), 3);
      const lengths = spy.mock.calls.map((c) => c[3] as unknown as number);
      expect(lengths).toEqual([FILE_WRITE_CALL_BYTES, FILE_WRITE_CALL_BYTES, FILE_WRITE_CALL_BYTES, 90, 4, 2]);
      const expected = Buffer.concat([big, Buffer.from('tail')]);
      expected.write('AB', 3);
      expect(fs.readFileSync(file).equals(expected)).toBe(true);
      spy.mockImplementation((() => 0) as never);
      expect(() => writeAllSync(fd, Buffer.from('x'))).toThrow(IOError);
    } finally {
      spy.mockRestore();
      fs.closeSync(fd);
    }
  });
});
