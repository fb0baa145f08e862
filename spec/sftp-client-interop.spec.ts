/**
 * SFTPClient against the SFTP servers that are not OpenSSH's sshd: Dropbear (which runs
 * OpenSSH's sftp-server, compiled in as /usr/lib/sftp-server; Debian's openssh-sftp-server
 * package provides that path), AsyncSSH's own SFTP server and Paramiko's SFTPServer (both in the
 * harness scripts under spec/support/servers/). The servers run on this machine as the test
 * user, so remote paths are local paths and results are checked with node:fs.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IOError, SFTPClient, SSHClient } from '../lib';
import { hasPeer, itWithPeers, peersRequired } from './support/peers';
import type { PeerName } from './support/peers';
import { generateKey, isRoot, startAsyncsshServer, startDropbear, startParamikoServer } from './support/servers';
import type { SshServer } from './support/servers';
import { loginTo } from './support/our-client';
import { catchError } from './support/bridge-helpers';

/** Every client timeout is bounded: a blocked main thread cannot be interrupted by Jest. */
const MiB = 1024 * 1024;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface PeerCase {
  title: string;
  peer: PeerName;
  version: RegExp;
  /** Dropbear logs users in by uid and checks /etc/shadow: only as root. */
  needsRoot?: boolean;
  start(): Promise<SshServer>;
}

const PEERS: PeerCase[] = [
  { title: 'Dropbear (OpenSSH sftp-server)', peer: 'dropbear', version: /^SSH-2\.0-dropbear/, needsRoot: true, start: () => startDropbear() },
  { title: "AsyncSSH's SFTP server", peer: 'asyncssh', version: /^SSH-2\.0-AsyncSSH_/, start: () => startAsyncsshServer() },
  { title: "Paramiko's SFTPServer", peer: 'paramiko', version: /^SSH-2\.0-paramiko_/, start: () => startParamikoServer() },
];

for (const pc of PEERS) {
  describe(`SFTPClient against ${pc.title}`, () => {
    let server: SshServer;
    let local: string;
    let work: string;
    let userKey: string;
    let ssh: SSHClient;
    let sftp: SFTPClient;
    let counter = 0;
    const rootMissing = Boolean(pc.needsRoot) && !isRoot();
    const remote = (name: string): string => join(work, `${++counter}-${name}`);

    /** itWithPeers, and a peer that needs root counts as missing when we are not root. */
    function itPeer(name: string, fn: () => void, timeout?: number): void {
      if (!rootMissing || !hasPeer(pc.peer)) return itWithPeers([pc.peer], name, fn, timeout);
      it(name, () => {
        if (peersRequired()) throw new Error(`${pc.title} needs root (run the tests as root)`);
        console.warn(`NOTICE: not run, ${pc.title} needs root: ${name}`);
      });
    }

    beforeAll(async () => {
      if (!hasPeer(pc.peer) || rootMissing) return;
      local = fs.mkdtempSync(join(tmpdir(), `pts-sftp-interop-${pc.peer}-`));
      const key = generateKey(join(local, 'id_ed25519'), 'ed25519');
      userKey = key.path;
      server = await pc.start();
      server.authorize(key.publicKey);
      work = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), `pts-sftp-interop-work-${pc.peer}-`)));
      fs.chmodSync(work, 0o755);
      if (isRoot()) fs.chownSync(work, server.user.uid, server.user.gid);
      ssh = loginTo(server, userKey);
      sftp = ssh.openSftp();
    }, 60_000);

    afterAll(async () => {
      try {
        sftp?.close();
        ssh?.close();
      } finally {
        await server?.stop();
        for (const d of [work, local]) if (d) fs.rmSync(d, { recursive: true, force: true });
      }
    });

    itPeer('starts an SFTP version 3 session', () => {
      expect(ssh.getTransport()!.remoteVersion).toMatch(pc.version);
      expect(sftp.version).toBe(3);
    });

    itPeer('put and get of 8 MiB of random data: SHA-256 equal both ways, callbacks ending at the total', () => {
      const data = randomBytes(8 * MiB);
      const src = join(local, `${++counter}-src`);
      fs.writeFileSync(src, data);
      const dst = remote('put');
      const calls: Array<[number, number]> = [];
      expect(sftp.put(src, dst, (d, t) => calls.push([d, t])).st_size).toBe(8 * MiB);
      expect(sha256(fs.readFileSync(dst))).toBe(sha256(data));
      expect(calls[calls.length - 1]).toEqual([8 * MiB, 8 * MiB]);
      const back = join(local, `${++counter}-back`);
      const got: Array<[number, number]> = [];
      expect(sftp.get(dst, back, (d, t) => got.push([d, t]))).toBe(8 * MiB);
      expect(sha256(fs.readFileSync(back))).toBe(sha256(data));
      expect(got[got.length - 1]).toEqual([8 * MiB, 8 * MiB]);
    }, 30_000);

    itPeer('listdir gives the entries without . and ..', () => {
      const d = remote('list');
      fs.mkdirSync(d);
      for (const n of ['a', 'b', 'c']) fs.writeFileSync(join(d, n), n);
      fs.mkdirSync(join(d, 'sub'));
      expect(sftp.listdir(d).sort()).toEqual(['a', 'b', 'c', 'sub']);
      const attrs = new Map(sftp.listdirAttr(d).map((a) => [a.filename, a]));
      expect(attrs.get('a')!.st_size).toBe(1);
      expect(attrs.get('sub')!.st_mode! & S_IFMT).toBe(S_IFDIR);
      // Many READDIRs, sent several at a time: every name once.
      const many = remote('many');
      fs.mkdirSync(many);
      const names = Array.from({ length: 1500 }, (_, i) => `n${i}`);
      for (const n of names) fs.writeFileSync(join(many, n), '');
      expect(sftp.listdir(many).sort()).toEqual(names.sort());
    });

    itPeer('stat matches fs.stat; a missing path raises IOError ENOENT', () => {
      const f = remote('stat');
      fs.writeFileSync(f, Buffer.alloc(777));
      fs.chmodSync(f, 0o640);
      fs.utimesSync(f, 1_000_000_000, 1_100_000_000);
      const st = sftp.stat(f);
      const want = fs.statSync(f);
      expect(st.st_size).toBe(777);
      expect(st.st_mode).toBe(want.mode);
      expect(st.st_mode! & S_IFMT).toBe(S_IFREG);
      expect(st.st_uid).toBe(want.uid);
      expect(st.st_gid).toBe(want.gid);
      expect(st.st_mtime).toBe(1_100_000_000);
      const missing = join(work, 'missing');
      expect(() => sftp.stat(missing)).toThrow(IOError);
      expect(() => sftp.stat(missing)).toThrow(expect.objectContaining({ code: 'ENOENT', errno: 2 }));
    });

    itPeer('mkdir and rmdir', () => {
      const d = remote('dir');
      sftp.mkdir(d, 0o750);
      expect(fs.statSync(d).isDirectory()).toBe(true);
      expect(fs.statSync(d).mode & 0o777).toBe(0o750);
      // SFTP v3 says SSH_FX_FAILURE for each of these. AsyncSSH's server sends the OS's text with
      // it, which gives the errno; OpenSSH's sftp-server and Paramiko's say "Failure", and the
      // client looks (the name exists, the directory is not empty, it is a directory) and says so.
      fs.writeFileSync(join(d, 'x'), '');
      const errors = [() => sftp.mkdir(d), () => sftp.rmdir(d), () => sftp.remove(d)].map((call) => catchError(call) as IOError);
      for (const e of errors) expect(e).toBeInstanceOf(IOError);
      expect(errors.map((e) => e.code)).toEqual(['EEXIST', 'ENOTEMPTY', 'EISDIR']);
      for (const e of errors) expect(e.message.includes('(the server said "Failure")')).toBe(pc.peer !== 'asyncssh');
      fs.rmSync(join(d, 'x'));
      sftp.rmdir(d);
      expect(fs.existsSync(d)).toBe(false);
    });

    itPeer('rename moves a file to a new name and refuses to overwrite; posixRename (where announced) replaces', () => {
      const a = remote('ren-a');
      fs.writeFileSync(a, 'moved');
      const b = remote('ren-b');
      sftp.rename(a, b);
      expect(fs.existsSync(a)).toBe(false);
      expect(fs.readFileSync(b, 'utf8')).toBe('moved');
      const c = remote('ren-c');
      fs.writeFileSync(c, 'kept');
      expect(() => sftp.rename(b, c)).toThrow(IOError);
      expect(fs.readFileSync(b, 'utf8')).toBe('moved');
      expect(fs.readFileSync(c, 'utf8')).toBe('kept');
      if (!sftp.extensions.includes('posix-rename@openssh.com')) return;
      sftp.posixRename(b, c);
      expect(fs.existsSync(b)).toBe(false);
      expect(fs.readFileSync(c, 'utf8')).toBe('moved');
    });

    itPeer('copyFile copies exactly, by the server where it announces copy-data and through the client elsewhere; remoteCopy needs copy-data', () => {
      // Paramiko's server has no copy-data: the copy through the client meets a real server here.
      if (pc.peer === 'paramiko') expect(sftp.supportsRemoteCopy).toBe(false);
      const data = randomBytes(3 * MiB + 17);
      const src = remote('cp-src');
      fs.writeFileSync(src, data);
      for (const throughClient of [false, true]) {
        const dst = remote('cp-dst');
        expect(sftp.copyFile(src, dst, { throughClient })).toBe(data.length);
        expect(sha256(fs.readFileSync(dst))).toBe(sha256(data));
        expect(catchError(() => sftp.copyFile(src, dst, { exclusive: true, throughClient }))).toMatchObject({ code: 'EEXIST' });
      }
      const ranged = remote('cp-ranged');
      if (sftp.supportsRemoteCopy) {
        sftp.remoteCopy(src, ranged, 10, 1000);
        expect(fs.readFileSync(ranged).equals(data.subarray(10, 1010))).toBe(true);
      } else {
        expect(catchError(() => sftp.remoteCopy(src, ranged))).toMatchObject({ status: 8, message: expect.stringContaining('does not support copy-data') });
      }
    }, 30_000);

    itPeer('remove deletes a file; removing a missing one raises ENOENT', () => {
      const f = remote('rm');
      fs.writeFileSync(f, 'x');
      sftp.remove(f);
      expect(fs.existsSync(f)).toBe(false);
      expect(() => sftp.remove(f)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    });
  });
}
