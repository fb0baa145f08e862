/**
 * Our SFTP and SCP clients against ProFTPD's mod_sftp: an SSH and SFTP implementation of its
 * own, common on hosting providers, that serves files only (no shell, no exec but scp).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCPClient, SSHClient, SSHException } from '../lib';
import { hasPeer, itWithPeers } from './support/peers';
import { loginKnowing } from './support/our-client';
import { generateKey } from './support/servers';
import { ProftpdServer, startProftpd } from './support/servers/proftpd';

let server: ProftpdServer;
let dir: string;
let userKey: string;
/** Where the tests write on the server: a folder of the test user's own. */
let remoteDir: string;

beforeAll(async () => {
  if (!hasPeer('proftpd')) return;
  dir = mkdtempSync(join(tmpdir(), 'pts-proftpd-'));
  const key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
  userKey = key.path;
  server = await startProftpd({ authorizedKeys: [key.publicKey] });
  remoteDir = `/tmp/pts-proftpd-${process.pid}`;
  mkdirSync(remoteDir);
  chownSync(remoteDir, server.user.uid, server.user.gid);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (remoteDir) rmSync(remoteDir, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Logged in with the test key, the server's host key on record and no other accepted. */
const client = (options: Record<string, unknown> = {}): SSHClient => loginKnowing(server, userKey, options);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('SFTPClient and SCPClient against ProFTPD mod_sftp', () => {
  itWithPeers(['proftpd'], 'logs in with a key or the password; SFTP put and get exactly, with every file operation', () => {
    using c = client();
    expect(c.getTransport()!.remoteVersion).toBe('SSH-2.0-mod_sftp');
    const sftp = c.openSftp();
    const data = randomBytes(5_000_000);
    const local = join(dir, 'up.bin');
    writeFileSync(local, data);
    const r = (n: string) => `${remoteDir}/${n}`;
    sftp.put(local, r('a.bin'));
    expect(sftp.stat(r('a.bin')).st_size).toBe(data.length);
    sftp.get(r('a.bin'), join(dir, 'down.bin'));
    expect(sha256(readFileSync(join(dir, 'down.bin')))).toBe(sha256(data));
    sftp.mkdir(r('d'));
    sftp.rename(r('a.bin'), r('d/b.bin'));
    expect(sftp.listdir(r('d'))).toEqual(['b.bin']);
    // Many READDIRs, sent several at a time: every name once.
    const names = Array.from({ length: 1500 }, (_, i) => `n${i}`);
    mkdirSync(`${remoteDir}/many`);
    for (const n of names) writeFileSync(`${remoteDir}/many/${n}`, '');
    expect(sftp.listdir(r('many')).sort()).toEqual(names.sort());
    sftp.symlink('b.bin', r('d/link'));
    // mod_sftp answers READLINK with the target made absolute, where OpenSSH gives it as stored.
    expect(sftp.readlink(r('d/link'))).toBe(r('d/b.bin'));
    expect(sftp.stat(r('d/link')).st_size).toBe(data.length);
    sftp.chmod(r('d/b.bin'), 0o640);
    expect(sftp.stat(r('d/b.bin')).st_mode! & 0o777).toBe(0o640);
    sftp.utime(r('d/b.bin'), [1_000_000_000, 1_000_000_000]);
    expect(sftp.stat(r('d/b.bin')).st_mtime).toBe(1_000_000_000);
    expect(() => sftp.rename(r('d/link'), r('d/b.bin'))).toThrow(); // SFTP v3 rename does not overwrite
    sftp.remove(r('d/link'));
    sftp.remove(r('d/b.bin'));
    sftp.rmdir(r('d'));
    expect(() => sftp.stat(r('d'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    sftp.close();
    using p = client({ keyFilename: undefined, password: server.user.password });
    expect(p.openSftp().normalize('.')).toMatch(/^\//);
  });

  itWithPeers(['proftpd'], 'SCP both ways through its scp; exec of anything else is refused with an SSHException', () => {
    using c = client();
    const scp = new SCPClient(c.getTransport()!);
    const data = randomBytes(1_000_000);
    writeFileSync(join(dir, 'scp.bin'), data);
    scp.put(join(dir, 'scp.bin'), `${remoteDir}/scp.bin`);
    scp.get(`${remoteDir}/scp.bin`, join(dir, 'scp-back.bin'));
    expect(readFileSync(join(dir, 'scp-back.bin')).equals(data)).toBe(true);
    expect(() => c.run('echo hi')).toThrow(SSHException);
  });

  itWithPeers(['proftpd'], 'delayed compression (zlib@openssh.com) and copyFile through the client', () => {
    using c = client({ compress: true });
    expect(c.getTransport()!.getNegotiated()!.compressionS2C).toBe('zlib@openssh.com');
    const sftp = c.openSftp();
    const text = Buffer.from('compressible '.repeat(200_000));
    const f = sftp.open(`${remoteDir}/z.txt`, 'w');
    f.write(text);
    f.close();
    sftp.copyFile(`${remoteDir}/z.txt`, `${remoteDir}/z2.txt`);
    expect(sftp.open(`${remoteDir}/z2.txt`, 'r').read().equals(text)).toBe(true);
    sftp.close();
  });
});
