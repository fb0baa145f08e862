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
