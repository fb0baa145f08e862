/**
 * The server's jail, through the client core in memory: links out of the root (absolute,
 * relative, chained, dangling) refuse every operation with EACCES, and nothing outside is
 * read, listed, created or changed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SFTPAttributes } from '../lib/sftp/attributes';
import { SftpClientCore } from '../lib/sftp/client-core';
import { FX, FXF } from '../lib/sftp/constants';
import { cleanup, memoryPair, tempDir } from './support/sftp/harness';

const fromBuffer = (data: Buffer) => (off: number, len: number) => (off >= data.length ? null : data.subarray(off, off + len));
const attrs = (a: Partial<SFTPAttributes>) => Object.assign(new SFTPAttributes(), a);

async function fetchAll(client: SftpClientCore, remote: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await client.download(remote, (_off, d) => void parts.push(Buffer.from(d)));
  return Buffer.concat(parts);
}

afterAll(cleanup);

describe('SftpServerCore jail', () => {
  it('refuses with EACCES every path that leads out through links, however deep, and creates nothing outside', async () => {
    const root = fs.realpathSync(tempDir('jail-'));
    const outside = fs.realpathSync(tempDir('jail-out-'));
    fs.writeFileSync(path.join(outside, 'secret'), 'S');
    fs.mkdirSync(path.join(root, 'd'));
    fs.symlinkSync(outside, path.join(root, 'abs'));
    fs.symlinkSync('d/../../' + path.basename(outside), path.join(root, 'rel'));
    fs.symlinkSync('abs', path.join(root, 'chain1'));
    fs.symlinkSync('../chain1', path.join(root, 'd/chain2'));
    fs.symlinkSync(path.join(outside, 'new'), path.join(root, 'dangling'));
    fs.symlinkSync('loop2', path.join(root, 'loop1'));
    fs.symlinkSync('loop1', path.join(root, 'loop2'));
    fs.symlinkSync(path.join(root, 'd'), path.join(root, 'abs-in'));
    const { client, server } = await memoryPair(root);
    const denied = { code: 'EACCES' };
    for (const via of ['abs', 'rel', 'chain1', 'd/chain2']) {
      await expect(client.stat(`${via}/secret`)).rejects.toMatchObject(denied);
      await expect(client.open(`${via}/secret`, FXF.READ)).rejects.toMatchObject(denied);
      await expect(client.open(`${via}/created`, FXF.WRITE | FXF.CREAT)).rejects.toMatchObject(denied);
      await expect(client.opendir(via)).rejects.toMatchObject(denied);
      await expect(client.mkdir(`${via}/dir`)).rejects.toMatchObject(denied);
      await expect(client.remove(`${via}/secret`)).rejects.toMatchObject(denied);
      await expect(client.setstat(`${via}/secret`, attrs({ st_mode: 0o777 }))).rejects.toMatchObject(denied);
      await expect(client.posixRename(`${via}/secret`, 'stolen')).rejects.toMatchObject(denied);
      await expect(client.hardlink(`${via}/secret`, 'stolen')).rejects.toMatchObject(denied);
      await expect(client.realpath(via)).rejects.toMatchObject(denied);
      await expect(client.statvfs(via)).rejects.toMatchObject(denied);
    }
    await expect(client.open('dangling', FXF.WRITE | FXF.CREAT)).rejects.toMatchObject(denied);
    await expect(client.upload(fromBuffer(Buffer.from('x')), 'dangling')).rejects.toMatchObject(denied);
    await expect(client.symlink('../' + path.basename(outside), 'planted')).rejects.toMatchObject(denied);
    await expect(client.symlink('d/../..', 'planted')).rejects.toMatchObject(denied);
    await expect(client.stat('loop1')).rejects.toMatchObject({ code: 'ELOOP', status: FX.NO_SUCH_FILE }); // NO_SUCH_FILE, with the OS's text
    // The links themselves are inside: lstat, readlink and remove work on them.
    expect((await client.lstat('abs')).isSymbolicLink()).toBe(true);
    expect(await client.readlink('abs')).toBe(outside);
    expect(await client.readlink('abs-in')).toBe('/d');
    expect(await client.realpath('abs-in')).toBe('/d');
    // An absolute target is a path inside the root, stored relative to the link.
    await client.symlink('/d', 'd/self');
    expect(fs.readlinkSync(path.join(root, 'd/self'))).toBe('.');
    await client.remove('dangling');
    expect(fs.readdirSync(outside)).toEqual(['secret']);
    expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('S');
    expect(fs.existsSync(path.join(root, 'stolen'))).toBe(false);
    // `..` stops at the root, as in a chroot.
    fs.writeFileSync(path.join(root, 'top'), 'T');
    expect((await fetchAll(client, '../../../top')).toString()).toBe('T');
    const names = (await client.listdir('/..')).map((a) => a.filename).sort();
    expect(names).toEqual(fs.readdirSync(root).concat(['.', '..']).sort());
    await server.end();
  });
});

describe('SftpServerCore rooted at /', () => {
  it('resolves paths through links as the OS does: stat and lstat, realpath, creation through a directory link and a dangling one, loops, remove, rename, opendir', async () => {
    // Rooted at `/` nothing can lead out, and paths go to realpath(3) in one call instead of an
    // lstat per component: the answers must be the walk's.
    const t = fs.realpathSync(tempDir('open-root-'));
    fs.mkdirSync(path.join(t, 'd'));
    fs.writeFileSync(path.join(t, 'd/f'), 'F');
    fs.symlinkSync('d', path.join(t, 'ld'));
    fs.symlinkSync('d/f', path.join(t, 'lf'));
    fs.symlinkSync(path.join(t, 'made-through-link'), path.join(t, 'dangling'));
    fs.symlinkSync('loop2', path.join(t, 'loop1'));
    fs.symlinkSync('loop1', path.join(t, 'loop2'));
    const { client } = await memoryPair('/');
    const at = (p: string): string => path.join(t, p);

    expect((await client.stat(at('ld/f'))).st_size).toBe(1);
    expect((await client.lstat(at('lf'))).isSymbolicLink()).toBe(true);
    expect((await client.stat(at('lf'))).isFile()).toBe(true);
    expect((await client.lstat(at('ld/'))).isDirectory()).toBe(true); // a trailing slash follows
    expect(await client.realpath(at('ld/f'))).toBe(at('d/f'));
    expect(await client.realpath(at('ld/not-yet'))).toBe(at('d/not-yet'));
    await expect(client.realpath(at('no-dir/x'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(client.stat(at('loop1'))).rejects.toMatchObject({ status: FX.NO_SUCH_FILE });

    await client.close(await client.open(at('ld/new'), FXF.WRITE | FXF.CREAT));
    expect(fs.existsSync(at('d/new'))).toBe(true);
    const h = await client.open(at('dangling'), FXF.WRITE | FXF.CREAT);
    await client.write(h, 0, Buffer.from('through'));
    await client.close(h);
    expect(fs.readFileSync(at('made-through-link'), 'utf8')).toBe('through');
    expect(fs.lstatSync(at('dangling')).isSymbolicLink()).toBe(true);

    await client.rename(at('ld/new'), at('ld/renamed'));
    expect(fs.existsSync(at('d/renamed'))).toBe(true);
    await client.remove(at('lf'));
    expect([fs.existsSync(at('lf')), fs.readFileSync(at('d/f'), 'utf8')]).toEqual([false, 'F']);
    const names = (await client.listdir(at('ld'))).map((e) => e.filename).sort();
    expect(names).toEqual(['.', '..', 'f', 'renamed']);
    await expect(client.stat(at('d/missing/deeper'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
