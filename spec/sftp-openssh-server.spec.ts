/**
 * SftpClientCore against OpenSSH's real sftp-server over pipes: every request, compared with
 * what the filesystem says, and whole-file transfers compared by SHA-256.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SFTPAttributes } from '../lib/sftp/attributes';
import { EXT, FX, FXF } from '../lib/sftp/constants';
import { verifySize } from '../lib/sftp/transfer';
import { EOFError, IOError } from '../lib/errors';
import { cleanup, itWithBinary, OpenSshServer, SFTP_SERVER, sha256, startOpenSshServer, tempDir } from './support/sftp/harness';

const it_ = (name: string, fn: () => Promise<void>, timeout?: number) => itWithBinary(SFTP_SERVER, 'openssh-sftp-server', name, fn, timeout);

/** Collects a download in order. */
async function fetchAll(s: OpenSshServer, remote: string, opts: Parameters<OpenSshServer['core']['download']>[2] = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  let next = 0;
  const n = await s.core.download(remote, (off, data) => {
    expect(off).toBe(next);
    next += data.length;
    parts.push(Buffer.from(data));
  }, opts);
  const out = Buffer.concat(parts);
  expect(out.length).toBe(n);
  return out;
}

/** An upload source over a buffer, handing out fresh views. */
const fromBuffer = (data: Buffer) => (off: number, len: number) => (off >= data.length ? null : data.subarray(off, off + len));

describe('SftpClientCore against OpenSSH sftp-server', () => {
  let dir: string;
  let s: OpenSshServer;
  const p = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    if (!fs.existsSync(SFTP_SERVER)) return;
    dir = fs.realpathSync(tempDir('openssh-'));
    s = await startOpenSshServer(dir);
  });
  afterAll(async () => {
    await s?.close();
    await cleanup();
  });

  it_('negotiates version 3 with OpenSSH extensions and limits', async () => {
    expect(s.core.version).toBe(3);
    for (const ext of Object.values(EXT)) expect(s.core.hasExtension(ext)).toBe(true);
    const limits = await s.core.limits();
    expect(limits.maxPacketLength).toBe(256 * 1024);
    expect(limits.maxReadLength).toBeGreaterThanOrEqual(32 * 1024);
    expect(limits.maxWriteLength).toBeGreaterThanOrEqual(32 * 1024);
    expect(limits.maxOpenHandles).toBeGreaterThan(0);
  });

  it_('opens with each mode: create, exclusive, append, read-write, missing', async () => {
    const h = await s.core.open('modes', FXF.WRITE | FXF.CREAT | FXF.TRUNC, Object.assign(new SFTPAttributes(), { st_mode: 0o640 }));
    await s.core.write(h, 0, Buffer.from('hello'));
    await s.core.close(h);
    expect(fs.readFileSync(p('modes'), 'utf8')).toBe('hello');
    expect(fs.statSync(p('modes')).mode & 0o777).toBe(0o640 & ~process.umask());

    const excl = await s.core.open('modes', FXF.WRITE | FXF.CREAT | FXF.EXCL).catch((e) => e);
    expect(excl).toBeInstanceOf(IOError);
    expect(excl.status).toBe(FX.FAILURE);

    const a = await s.core.open('modes', FXF.WRITE | FXF.APPEND);
    await s.core.write(a, 0, Buffer.from(' world'));
    await s.core.close(a);
    expect(fs.readFileSync(p('modes'), 'utf8')).toBe('hello world');

    const rw = await s.core.open('modes', FXF.READ | FXF.WRITE);
    await s.core.write(rw, 0, Buffer.from('J'));
    expect((await s.core.read(rw, 0, 100))!.toString()).toBe('Jello world');
    await s.core.close(rw);

    const trunc = await s.core.open('modes', FXF.WRITE | FXF.TRUNC);
    await s.core.close(trunc);
    expect(fs.statSync(p('modes')).size).toBe(0);

    const missing = await s.core.open('nope/x', FXF.READ).catch((e) => e);
    expect(missing).toBeInstanceOf(IOError);
    expect([missing.code, missing.errno, missing.path, missing.syscall]).toEqual(['ENOENT', 2, 'nope/x', 'open']);
    expect(missing.message).toBe("ENOENT: no such file, open 'nope/x'");
  });

  it_('reads and writes at offsets, short at end of file, null past it', async () => {
    fs.writeFileSync(p('rw'), '0123456789');
    const h = await s.core.open('rw', FXF.READ | FXF.WRITE);
    expect((await s.core.read(h, 3, 4))!.toString()).toBe('3456');
    expect((await s.core.read(h, 8, 100))!.toString()).toBe('89');
    expect(await s.core.read(h, 10, 1)).toBeNull();
    expect(await s.core.read(h, 1000, 1)).toBeNull();
    await s.core.write(h, 12, Buffer.from('AB'));
    await s.core.close(h);
    expect(fs.readFileSync(p('rw'))).toEqual(Buffer.from('0123456789\0\0AB'));
    await expect(s.core.close(h)).rejects.toBeInstanceOf(IOError);
  });

  it_('stats, lstats and fstats as the filesystem does', async () => {
    fs.writeFileSync(p('st'), 'x'.repeat(1234));
    fs.symlinkSync('st', p('st-link'));
    const local = fs.statSync(p('st'));
    const st = await s.core.stat('st');
    expect([st.st_size, st.st_mode, st.st_uid, st.st_gid, st.st_mtime]).toEqual([1234, local.mode, local.uid, local.gid, Math.floor(local.mtimeMs / 1000)]);
    expect((await s.core.stat('st-link')).st_size).toBe(1234);
    const l = await s.core.lstat('st-link');
    expect(l.isSymbolicLink()).toBe(true);
    expect(l.st_size).toBe(fs.lstatSync(p('st-link')).size);
    const h = await s.core.open('st', FXF.READ);
    expect((await s.core.fstat(h)).st_size).toBe(1234);
    await s.core.close(h);
    await expect(s.core.stat('missing')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'stat', path: 'missing' });
  });

  it_('setstat and fsetstat change mode, times and size', async () => {
    fs.writeFileSync(p('set'), '0123456789');
    await s.core.setstat('set', Object.assign(new SFTPAttributes(), { st_mode: 0o600 }));
    expect(fs.statSync(p('set')).mode & 0o777).toBe(0o600);
    await s.core.setstat('set', Object.assign(new SFTPAttributes(), { st_atime: 1000000000, st_mtime: 1200000000 }));
    expect(Math.floor(fs.statSync(p('set')).mtimeMs / 1000)).toBe(1200000000);
    expect(Math.floor(fs.statSync(p('set')).atimeMs / 1000)).toBe(1000000000);
    await s.core.setstat('set', Object.assign(new SFTPAttributes(), { st_size: 4 }));
    expect(fs.readFileSync(p('set'), 'utf8')).toBe('0123');
    const h = await s.core.open('set', FXF.WRITE);
    await s.core.fsetstat(h, Object.assign(new SFTPAttributes(), { st_size: 6 * 2 ** 30, st_mode: 0o644 }));
    await s.core.close(h);
    expect(fs.statSync(p('set')).size).toBe(6 * 2 ** 30);
    expect((await s.core.stat('set')).st_size).toBe(6 * 2 ** 30);
    fs.rmSync(p('set'));
  });

  it_('lists a directory, makes and removes directories and files', async () => {
    await s.core.mkdir('d', Object.assign(new SFTPAttributes(), { st_mode: 0o750 }));
    expect(fs.statSync(p('d')).isDirectory()).toBe(true);
    expect(fs.statSync(p('d')).mode & 0o777).toBe(0o750 & ~process.umask());
    for (let i = 0; i < 250; i++) fs.writeFileSync(p(`d/f${i}`), String(i));
    const entries = await s.core.listdir('d');
    const names = entries.map((e) => e.filename!).filter((n) => n !== '.' && n !== '..');
    expect(names.sort()).toEqual(fs.readdirSync(p('d')).sort());
    const f7 = entries.find((e) => e.filename === 'f7')!;
    expect(f7.st_size).toBe(1);
    expect(f7.longname).toMatch(/^-rw.* f7$/);
    await expect(s.core.rmdir('d')).rejects.toBeInstanceOf(IOError);
    await expect(s.core.remove('d')).rejects.toBeInstanceOf(IOError);
    for (let i = 0; i < 250; i++) await s.core.remove(`d/f${i}`);
    await s.core.rmdir('d');
    expect(fs.existsSync(p('d'))).toBe(false);
    await expect(s.core.remove('d')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(s.core.opendir('d')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'opendir' });
  });

  it_('rename refuses to overwrite an existing file; posix-rename replaces it', async () => {
    fs.writeFileSync(p('r1'), 'one');
    fs.writeFileSync(p('r2'), 'two');
    const e = await s.core.rename('r1', 'r2').catch((x) => x);
    expect(e).toBeInstanceOf(IOError);
    expect(e.message).toMatch(/rename 'r1' -> 'r2'/);
    expect(fs.readFileSync(p('r2'), 'utf8')).toBe('two');
    await s.core.rename('r1', 'r3');
    expect(fs.readFileSync(p('r3'), 'utf8')).toBe('one');
    await s.core.posixRename('r3', 'r2');
    expect(fs.readFileSync(p('r2'), 'utf8')).toBe('one');
    expect(fs.existsSync(p('r3'))).toBe(false);
  });

  it_('symlink(target, link) makes link point to target, and readlink reads it back', async () => {
    fs.writeFileSync(p('sym-target'), 'T');
    await s.core.symlink('sym-target', 'sym-link');
    expect(fs.readlinkSync(p('sym-link'))).toBe('sym-target');
    expect(await s.core.readlink('sym-link')).toBe('sym-target');
    expect(fs.readFileSync(p('sym-link'), 'utf8')).toBe('T');
    await expect(s.core.readlink('sym-target')).rejects.toBeInstanceOf(IOError);
  });

  it_('realpath, expand-path, statvfs, hardlink, fsync, lsetstat, copy-data', async () => {
    expect(await s.core.realpath('.')).toBe(dir);
    fs.mkdirSync(p('rp'));
    // OpenSSH: a missing last component is fine, a missing directory before it is not.
    expect(await s.core.realpath('rp/../rp/./missing')).toBe(`${dir}/rp/missing`);
    await expect(s.core.realpath('nodir/x')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'realpath' });
    // With -d, OpenSSH's sftp-server takes the start directory as the home that `~` expands to.
    expect(await s.core.expandPath('~')).toBe(dir);
    expect(await s.core.expandPath('~/rp')).toBe(`${dir}/rp`);

    const vfs = await s.core.statvfs('.');
    const local = fs.statfsSync(dir);
    expect(vfs.bsize).toBe(local.bsize);
    expect(vfs.blocks).toBe(local.blocks);
    fs.writeFileSync(p('hl'), 'hard');
    const h = await s.core.open('hl', FXF.READ | FXF.WRITE);
    expect((await s.core.fstatvfs(h)).blocks).toBe(local.blocks);
    await s.core.fsync(h);
    await s.core.close(h);

    await s.core.hardlink('hl', 'hl2');
    expect(fs.statSync(p('hl2')).ino).toBe(fs.statSync(p('hl')).ino);
    expect(fs.statSync(p('hl')).nlink).toBe(2);

    fs.symlinkSync('hl', p('hl-link'));
    await s.core.lsetstat('hl-link', Object.assign(new SFTPAttributes(), { st_atime: 1100000000, st_mtime: 1100000000 }));
    expect(Math.floor(fs.lstatSync(p('hl-link')).mtimeMs / 1000)).toBe(1100000000);
    expect(Math.floor(fs.statSync(p('hl')).mtimeMs / 1000)).not.toBe(1100000000);

    const src = randomBytes(300000);
    fs.writeFileSync(p('cd-src'), src);
    const r = await s.core.open('cd-src', FXF.READ);
    const w = await s.core.open('cd-dst', FXF.WRITE | FXF.CREAT | FXF.TRUNC);
    await s.core.copyData(r, 0, 0, w, 0);
    await s.core.copyData(r, 1000, 500, w, 300000);
    await s.core.close(r);
    await s.core.close(w);
    expect(fs.readFileSync(p('cd-dst'))).toEqual(Buffer.concat([src, src.subarray(1000, 1500)]));
  });

  it_('downloads and uploads a 64 MiB random file exactly', async () => {
    const data = randomBytes(64 * 1024 * 1024);
    fs.writeFileSync(p('big'), data);
    let t = process.hrtime.bigint();
    let progress = 0;
    const got = await fetchAll(s, 'big', { onProgress: (n, total) => ((progress = n), expect(total).toBe(data.length)) });
    const down = Number(process.hrtime.bigint() - t) / 1e9;
    expect(sha256(got)).toBe(sha256(data));
    expect(progress).toBe(data.length);
    t = process.hrtime.bigint();
    expect(await s.core.upload(fromBuffer(data), 'big-up', { size: data.length })).toBe(data.length);
    const up = Number(process.hrtime.bigint() - t) / 1e9;
    expect(sha256(fs.readFileSync(p('big-up')))).toBe(sha256(data));
    await verifySize(s.core, 'big-up', data.length);
    const limits = await s.core.limits();
    process.stdout.write(
      `sftp-server pipe, ${limits.maxReadLength} B x 64 in flight: download ${(64 / 1.048576 / down).toFixed(0)} MB/s, upload ${(64 / 1.048576 / up).toFixed(0)} MB/s\n`,
    );
    fs.rmSync(p('big'));
    fs.rmSync(p('big-up'));
  }, 60000);

  it_('transfers sizes around the request size exactly: 0, 1, 32767, 32768, 32769, 255 KiB +- 1', async () => {
    for (const size of [0, 1, 32767, 32768, 32769, 261119, 261120, 261121, 3 * 32768 + 5]) {
      const data = randomBytes(size);
      fs.writeFileSync(p('sz'), data);
      for (const requestSize of [undefined, 32768]) {
        expect(sha256(await fetchAll(s, 'sz', { requestSize }))).toBe(sha256(data));
        expect(await s.core.upload(fromBuffer(data), 'sz-up', { requestSize })).toBe(size);
        expect(sha256(fs.readFileSync(p('sz-up')))).toBe(sha256(data));
      }
    }
  });

  it_('handles a sparse file with data beyond 5 GiB: exact size, range download, upload at an offset', async () => {
    const FIVE_G = 5 * 2 ** 30;
    const tail = randomBytes(1024 * 1024);
    const fd = fs.openSync(p('sparse'), 'w');
    fs.writeSync(fd, tail, 0, tail.length, FIVE_G);
    fs.closeSync(fd);
    expect((await s.core.stat('sparse')).st_size).toBe(FIVE_G + tail.length);
    const got = await fetchAll(s, 'sparse', { offset: FIVE_G - 100000, length: 100000 + tail.length + 5000 });
    expect(sha256(got)).toBe(sha256(Buffer.concat([Buffer.alloc(100000), tail])));
    const patch = randomBytes(70000);
    await s.core.upload(fromBuffer(patch), 'sparse', { offset: FIVE_G + 4096 });
    const check = Buffer.alloc(patch.length);
    const rfd = fs.openSync(p('sparse'), 'r');
    fs.readSync(rfd, check, 0, check.length, FIVE_G + 4096);
    fs.closeSync(rfd);
    expect(check).toEqual(patch);
    expect(fs.statSync(p('sparse')).size).toBe(FIVE_G + tail.length);
    fs.rmSync(p('sparse'));
  });

  it_('an upload whose writes fail rejects (ENOSPC on /dev/full) and never reports success', async () => {
    const data = randomBytes(1024 * 1024);
    const e = await s.core.upload(fromBuffer(data), '/dev/full', { flags: FXF.WRITE }).catch((x) => x);
    expect(e).toBeInstanceOf(IOError);
    expect(e.syscall).toBe('write');
    // A file opened read-only: every WRITE fails.
    fs.writeFileSync(p('ro'), 'keep');
    const e2 = await s.core.upload(fromBuffer(data), 'ro', { flags: FXF.READ }).catch((x) => x);
    expect(e2).toBeInstanceOf(IOError);
    expect(fs.readFileSync(p('ro'), 'utf8')).toBe('keep');
    // The session is still usable.
    expect((await s.core.stat('ro')).st_size).toBe(4);
  });

  it_('a failing sink aborts a download with its error', async () => {
    fs.writeFileSync(p('sink'), randomBytes(500000));
    const boom = new Error('disk full');
    await expect(s.core.download('sink', () => { throw boom; })).rejects.toBe(boom);
    await expect(s.core.download('sink', async () => Promise.reject(boom))).rejects.toBe(boom);
    expect((await s.core.stat('sink')).st_size).toBe(500000);
  });

  it_('EOF status on other requests is an EOFError; a readdir past the end gives null', async () => {
    const h = await s.core.opendir('.');
    while (await s.core.readdir(h));
    expect(await s.core.readdir(h)).toBeNull();
    await s.core.close(h);
    expect(EOFError).toBeDefined();
  });
});

describe('SftpClientCore against a read-only OpenSSH sftp-server (-R)', () => {
  afterAll(cleanup);
  it_('an upload is refused with EACCES', async () => {
    const dir = tempDir('openssh-ro-');
    const s = await startOpenSshServer(dir, ['-R']);
    const e = await s.core.upload(() => Buffer.from('x'), 'f').catch((x) => x);
    expect(e).toBeInstanceOf(IOError);
    expect(e.code).toBe('EACCES');
    expect(fs.existsSync(path.join(dir, 'f'))).toBe(false);
    await s.close();
  });
});
