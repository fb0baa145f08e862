/**
 * SFTPClient and SFTPFile against OpenSSH's sshd (its internal-sftp subsystem), every call
 * compared with what the real filesystem says. sshd and this test run on the same machine, so a
 * remote path is a local path: the test prepares and checks files with node:fs directly.
 *
 * As root, sshd logs in as the test user (pts-test); the work dir is a temp dir handed to that
 * user, and files the test creates itself stay root's (which is how EACCES is provoked).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { AutoAddPolicy, IOError, SFTPAttributes, SFTPClient, SFTPFile, SocketTimeout, SSHClient, SSHException } from '../lib';
import { hasPeer, itWithPeers } from './support/peers';
import { generateKey, isRoot, startSshd } from './support/servers';
import type { SshdServer } from './support/servers';
import { loginTo } from './support/our-client';

/** Every client timeout is bounded: a blocked main thread cannot be interrupted by Jest. */
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sha256File = (path: string): string => sha256(fs.readFileSync(path));

let sshd: SshdServer;
/** Keys and local copies (the test's own). */
let local: string;
/** The remote side's scratch dir, writable by the login user. */
let work: string;
let userKey: string;
let ssh: SSHClient;
let sftp: SFTPClient;
let counter = 0;

/** A fresh remote path in the work dir (the same path locally). */
const remote = (name: string): string => join(work, `${++counter}-${name}`);
/** A fresh local path outside the work dir. */
const localPath = (name: string): string => join(local, `${++counter}-${name}`);

const connect = (): SSHClient => loginTo(sshd, userKey);

/** Creates a file as the login user would (so the server may change it), with `data`. */
function put(path: string, data: string | Buffer, mode = 0o644): string {
  fs.writeFileSync(path, data, { mode });
  fs.chmodSync(path, mode);
  if (isRoot()) fs.chownSync(path, sshd.user.uid, sshd.user.gid);
  return path;
}

/** Byte equality without Jest's element-by-element diff (slow on megabytes). */
function expectBytes(actual: Buffer, expected: Buffer): void {
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  throw new Error(`bytes differ: got ${actual.length} bytes, expected ${expected.length}; first difference at offset ${i}`);
}

/** The error `fn` throws (fails the test if it throws nothing). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, nothing was thrown');
}

/** Closes `f` whatever happens (used where a test expects the operations before it to fail). */
function closeQuietly(f: { close(): void }): void {
  try {
    f.close();
  } catch {
    // the test looked at the error it wanted already
  }
}

beforeAll(async () => {
  if (!hasPeer('sshd')) return;
  local = fs.mkdtempSync(join(tmpdir(), 'pts-sftp-client-'));
  const key = generateKey(join(local, 'id_ed25519'), 'ed25519');
  userKey = key.path;
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  // realpath: the server reports canonical paths (normalize, chdir), /tmp may be a link.
  work = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'pts-sftp-work-')));
  fs.chmodSync(work, 0o755);
  if (isRoot()) fs.chownSync(work, sshd.user.uid, sshd.user.gid);
  ssh = connect();
  sftp = ssh.openSftp();
}, 60_000);

afterAll(async () => {
  try {
    sftp?.close();
    ssh?.close();
  } finally {
    await sshd?.stop();
    for (const d of [work, local]) {
      if (!d) continue;
      // Tests leave read-only dirs behind; make everything removable first.
      for (const e of fs.readdirSync(d, { recursive: true, withFileTypes: true })) {
        if (e.isDirectory()) fs.chmodSync(join(e.parentPath ?? e.path, e.name), 0o755);
      }
      fs.rmSync(d, { recursive: true, force: true });
    }
  }
});

describe('SFTPClient against OpenSSH sshd: the session', () => {
  itWithPeers(['sshd'], 'openSftp, Transport.openSftpClient and SFTPClient.fromTransport each start a version 3 session', () => {
    expect(sftp.version).toBe(3);
    expect(sftp.extensions).toEqual(expect.arrayContaining(['posix-rename@openssh.com', 'statvfs@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com']));
    using c = connect();
    const t = c.getTransport()!;
    const a = t.openSftpClient();
    const b = SFTPClient.fromTransport(t);
    try {
      expect(a.normalize('.')).toBe(fs.realpathSync(sshd.user.home));
      expect(b.normalize('.')).toBe(fs.realpathSync(sshd.user.home));
    } finally {
      a.close();
      b.close();
    }
  });

  itWithPeers(['sshd'], 'a closed session refuses further calls with SSHException, and close is idempotent', () => {
    const s = ssh.openSftp();
    s.close();
    s.close();
    expect(() => s.listdir(work)).toThrow(SSHException);
  });

  itWithPeers(['sshd'], 'after the SSHClient closes, SFTP calls raise SSHException and closing the SFTPClient does not throw', () => {
    const c = connect();
    const s = c.openSftp();
    expect(Array.isArray(s.listdir(work))).toBe(true);
    c.close();
    expect(() => s.listdir(work)).toThrow(SSHException);
    s.close();
  });

  itWithPeers(['sshd'], 'limits and statvfs report what the server and the filesystem say', () => {
    const l = sftp.limits();
    expect(l.maxPacketLength).toBe(256 * KiB);
    expect(l.maxReadLength).toBeGreaterThanOrEqual(32 * KiB);
    expect(l.maxWriteLength).toBeGreaterThanOrEqual(32 * KiB);
    const v = sftp.statvfs(work);
    const fsv = fs.statfsSync(work);
    expect(Number(v.frsize) * Number(v.blocks)).toBe(fsv.bsize * fsv.blocks);
    expect(Number(v.files)).toBe(fsv.files);
    expect(Number(v.namemax)).toBeGreaterThan(0);
  });
});

describe('SFTPClient against OpenSSH sshd: names and directories', () => {
  itWithPeers(['sshd'], 'listdir and listdirAttr give every entry without . and .., with attributes and longname', () => {
    const d = remote('list');
    fs.mkdirSync(d);
    if (isRoot()) fs.chownSync(d, sshd.user.uid, sshd.user.gid);
    put(join(d, 'a.txt'), 'aaa');
    put(join(d, 'b.bin'), Buffer.alloc(1234));
    fs.mkdirSync(join(d, 'sub'));
    expect(sftp.listdir(d).sort()).toEqual(['a.txt', 'b.bin', 'sub']);
    const attrs = sftp.listdirAttr(d);
    const byName = new Map(attrs.map((a) => [a.filename, a]));
    expect([...byName.keys()].sort()).toEqual(['a.txt', 'b.bin', 'sub']);
    expect(byName.get('b.bin')!.st_size).toBe(1234);
    expect(byName.get('a.txt')!.st_mode! & S_IFMT).toBe(S_IFREG);
    expect(byName.get('sub')!.st_mode! & S_IFMT).toBe(S_IFDIR);
    expect(byName.get('b.bin')!.longname).toMatch(/^-rw-r--r-- .* 1234 .*b\.bin$/);
    const iter = [...sftp.listdirIter(d)].map((a) => a.filename).sort();
    expect(iter).toEqual(['a.txt', 'b.bin', 'sub']);
    expect(sftp.listdir(join(d, 'sub'))).toEqual([]);
  });

  itWithPeers(['sshd'], 'listdir gathers every READDIR batch of a large directory (OpenSSH sends 100 names per reply)', () => {
    const d = remote('many');
    fs.mkdirSync(d);
    const names = Array.from({ length: 257 }, (_, i) => `entry-${i}`);
    for (const n of names) fs.writeFileSync(join(d, n), '');
    expect(sftp.listdir(d).sort()).toEqual([...names].sort());
  });

  itWithPeers(['sshd'], 'mkdir creates with the mode (less the umask), rmdir removes, makedirs and rmtree work on trees', () => {
    const d = remote('mk');
    sftp.mkdir(d, 0o700);
    const st = fs.statSync(d);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(sshd.user.uid);
    sftp.rmdir(d);
    expect(fs.existsSync(d)).toBe(false);

    const deep = join(remote('tree'), 'a', 'b', 'c');
    sftp.makedirs(deep);
    expect(fs.statSync(deep).isDirectory()).toBe(true);
    sftp.makedirs(deep); // already there: nothing to do
    put(join(deep, 'f'), 'x');
    sftp.symlink('/', join(deep, '..', 'root-link'));
    const top = join(deep, '..', '..', '..');
    sftp.rmtree(top);
    expect(fs.existsSync(top)).toBe(false);
    expect(fs.existsSync('/etc')).toBe(true); // the link was removed, not followed

    // A wide tree: its files go many at a time, its directories deepest first.
    const wide = remote('wide');
    for (let d = 0; d < 6; d++) {
      fs.mkdirSync(join(wide, `d${d}`, 'inner'), { recursive: true });
      for (let f = 0; f < 40; f++) fs.writeFileSync(join(wide, `d${d}`, f % 2 ? 'inner' : '', `f${f}`), 'x');
    }
    if (isRoot()) spawnSync('chown', ['-R', `${sshd.user.uid}:${sshd.user.gid}`, wide]);
    sftp.rmtree(wide);
    expect(fs.existsSync(wide)).toBe(false);
    if (isRoot()) {
      // What the login user may not remove stops it with the cause, the rest of the files gone.
      const locked = remote('locked');
      fs.mkdirSync(join(locked, 'keep'), { recursive: true });
      fs.writeFileSync(join(locked, 'gone'), 'x');
      fs.writeFileSync(join(locked, 'keep', 'stays'), 'x');
      fs.chownSync(locked, sshd.user.uid, sshd.user.gid);
      fs.chownSync(join(locked, 'gone'), sshd.user.uid, sshd.user.gid);
      const e = thrown(() => sftp.rmtree(locked)) as IOError;
      expect(e.code).toBe('EACCES');
      expect(e.message).toContain('stays');
      expect([fs.existsSync(join(locked, 'gone')), fs.existsSync(join(locked, 'keep', 'stays'))]).toEqual([false, true]);
    }
  });

  itWithPeers(['sshd'], 'mkdir on an existing name and rmdir of a non-empty directory raise IOError EEXIST and ENOTEMPTY', () => {
    // OpenSSH answers both with a bare "Failure" (SFTP v3 has no status for either): the
    // client looks and names the errno, keeping the server's text in the message.
    const d = remote('busy');
    sftp.mkdir(d);
    put(join(d, 'f'), 'x');
    const exists = thrown(() => sftp.mkdir(d)) as IOError & { status?: number };
    expect([exists.code, exists.errno, exists.status]).toEqual(['EEXIST', 17, 4]);
    expect(exists.message).toBe(`EEXIST: file exists (the server said "Failure"), mkdir '${d}'`);
    const full = thrown(() => sftp.rmdir(d)) as IOError;
    expect([full.code, full.errno]).toEqual(['ENOTEMPTY', 39]);
    expect(fs.existsSync(join(d, 'f'))).toBe(true);
    expect((thrown(() => sftp.rmdir(join(d, 'f'))) as IOError).code).toBe('ENOTDIR');
    expect((thrown(() => sftp.symlink('anything', join(d, 'f'))) as IOError).code).toBe('EEXIST');
    expect((thrown(() => sftp.hardlink(join(d, 'f'), join(d, 'f'))) as IOError).code).toBe('EEXIST');
  });

  itWithPeers(['sshd'], 'remove and unlink delete files; removing a directory raises IOError', () => {
    const a = put(remote('rm-a'), 'a');
    const b = put(remote('rm-b'), 'b');
    sftp.remove(a);
    sftp.unlink(b);
    expect(fs.existsSync(a) || fs.existsSync(b)).toBe(false);
    const d = remote('rm-dir');
    fs.mkdirSync(d);
    expect((thrown(() => sftp.remove(d)) as IOError).code).toBe('EISDIR');
    expect(fs.statSync(d).isDirectory()).toBe(true);
    // Writing to a directory: EISDIR too.
    expect((thrown(() => sftp.open(d, 'w')) as IOError).code).toBe('EISDIR');
  });

  itWithPeers(['sshd'], 'rename refuses to overwrite an existing file; posixRename replaces it', () => {
    const a = put(remote('ren-a'), 'from a');
    const b = put(remote('ren-b'), 'from b');
    expect((thrown(() => sftp.rename(a, b)) as IOError).code).toBe('EEXIST');
    expect(fs.readFileSync(a, 'utf8')).toBe('from a');
    expect(fs.readFileSync(b, 'utf8')).toBe('from b');
    const c = remote('ren-c');
    sftp.rename(a, c);
    expect(fs.existsSync(a)).toBe(false);
    expect(fs.readFileSync(c, 'utf8')).toBe('from a');
    sftp.posixRename(c, b);
    expect(fs.existsSync(c)).toBe(false);
    expect(fs.readFileSync(b, 'utf8')).toBe('from a');
  });

  itWithPeers(['sshd'], "symlink(source, dest) makes dest point to source; readlink gives the target as written", () => {
    const target = put(remote('sym-target'), 'target data');
    const link = remote('sym-link');
    sftp.symlink(target, link);
    expect(fs.readlinkSync(link)).toBe(target);
    expect(sftp.readlink(link)).toBe(target);
    // A relative target stays relative, and may dangle.
    const rel = remote('sym-rel');
    sftp.symlink('no-such-target', rel);
    expect(fs.readlinkSync(rel)).toBe('no-such-target');
    expect(sftp.readlink(rel)).toBe('no-such-target');
    // stat follows the link, lstat does not
    expect(sftp.stat(link).st_mode! & S_IFMT).toBe(S_IFREG);
    expect(sftp.stat(link).st_size).toBe(11);
    expect(sftp.lstat(link).st_mode! & S_IFMT).toBe(S_IFLNK);
    expect(() => sftp.stat(rel)).toThrow(IOError);
    expect(sftp.lstat(rel).st_mode! & S_IFMT).toBe(S_IFLNK);
  });

  itWithPeers(['sshd'], 'hardlink adds a second name for the same inode', () => {
    const a = put(remote('hl-a'), 'shared');
    const b = remote('hl-b');
    sftp.hardlink(a, b);
    expect(fs.statSync(a).ino).toBe(fs.statSync(b).ino);
    expect(fs.statSync(a).nlink).toBe(2);
  });

  itWithPeers(['sshd'], 'copyFile copies on the server (copy-data) or through the client, exactly; remoteCopy copies ranges between files and paths', () => {
    expect(sftp.supportsRemoteCopy).toBe(true);
    const data = randomBytes(5 * MiB + 3);
    const src = put(remote('copy-src'), data, 0o600);
    for (const throughClient of [false, true]) {
      const dst = remote('copy-dst');
      const seen: number[] = [];
      expect(sftp.copyFile(src, dst, { throughClient, callback: (done) => seen.push(done) })).toBe(data.length);
      expectBytes(fs.readFileSync(dst), data);
      expect(fs.statSync(dst).mode & 0o777).toBe(0o600);
      expect(seen[seen.length - 1]).toBe(data.length);
      expect((thrown(() => sftp.copyFile(src, dst, { exclusive: true, throughClient })) as IOError).code).toBe('EEXIST');
      expect((thrown(() => sftp.copyFile(`${src}-missing`, dst, { throughClient })) as IOError).code).toBe('ENOENT');
    }

    // remoteCopy: paths (the destination truncated, as AsyncSSH), then ranges between open files.
    const whole = remote('rc-whole');
    put(whole, Buffer.alloc(6 * MiB, 7));
    sftp.remoteCopy(src, whole);
    expectBytes(fs.readFileSync(whole), data);
    const into = put(remote('rc-into'), 'abcdefghij');
    const f = sftp.open(into, 'r+');
    try {
      f.write('XY'); // sent before the copy: the copy overwrites part of it
      sftp.remoteCopy(src, f, 100, 4, 1);
      f.seek(0);
      expectBytes(f.read(), Buffer.concat([Buffer.from('X'), data.subarray(100, 104), Buffer.from('fghij')]));
    } finally {
      f.close();
    }
    expect(() => sftp.remoteCopy(src, into, -1)).toThrow(TypeError);

    // A destination that fails in the middle (/dev/full: ENOSPC) stops both pipelines and raises.
    for (const throughClient of [false, true]) expect(thrown(() => sftp.copyFile(src, '/dev/full', { throughClient }))).toBeInstanceOf(IOError);
    expect(sftp.stat('.').st_mode).toBeDefined(); // the session carries on
  });

  itWithPeers(['sshd'], 'put and get with recurse copy whole trees (files, empty ones, links, empty directories); preserve keeps modes and times', () => {
    const src = localPath('tree');
    fs.mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
    fs.writeFileSync(join(src, 'a.txt'), 'alpha');
    fs.writeFileSync(join(src, 'empty'), '');
    const bin = randomBytes(300 * KiB);
    fs.writeFileSync(join(src, 'sub', 'b.bin'), bin);
    fs.symlinkSync('a.txt', join(src, 'link'));
    fs.chmodSync(join(src, 'a.txt'), 0o640);
    fs.chmodSync(join(src, 'sub'), 0o750);
    const then = 1_500_000_000;
    for (const p of ['a.txt', 'empty', 'sub/b.bin', 'sub/deeper', 'sub', '']) fs.utimesSync(join(src, p), then, then + 7);

    /** What a tree holds: every path with its kind, content hash or target, mode and mtime. */
    const describe = (root: string, times: boolean): Record<string, string> => {
      const out: Record<string, string> = {};
      const walk = (rel: string) => {
        const full = join(root, rel);
        const st = fs.lstatSync(full);
        const mode = (st.mode & 0o7777).toString(8);
        const mtime = times ? ` ${Math.floor(st.mtimeMs / 1000)}` : '';
        if (st.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(full)}`;
        else if (st.isFile()) out[rel] = `${sha256(fs.readFileSync(full)).slice(0, 12)} ${mode}${mtime}`;
        else {
          out[rel || '.'] = `dir ${mode}${mtime}`;
          for (const name of fs.readdirSync(full).sort()) walk(rel ? `${rel}/${name}` : name);
        }
      };
      walk('');
      return out;
    };

    const up = remote('tree-up');
    const seen: Array<[number, number]> = [];
    const st = sftp.put(src, up, (done, total) => seen.push([done, total]), true, { recurse: true, preserve: true });
    expect(st.isDirectory()).toBe(true);
    expect(describe(up, true)).toEqual(describe(src, true));
    expect(seen[seen.length - 1]).toEqual([5 + 300 * KiB, 5 + 300 * KiB]);

    const down = localPath('tree-down');
    expect(sftp.get(up, down, null, { recurse: true, preserve: true })).toBe(5 + 300 * KiB);
    expect(describe(down, true)).toEqual(describe(src, true));

    // Without preserve: the same content and links; the times are the copy's own.
    const plain = localPath('tree-plain');
    sftp.get(up, plain, null, { recurse: true });
    const strip = (d: Record<string, string>) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.replace(/ \d+$/, '').replace(/ [0-7]+$/, '')]));
    expect(strip(describe(plain, false))).toEqual(strip(describe(src, false)));
    // An existing directory is merged into.
    sftp.put(src, up, null, true, { recurse: true });
    expect(strip(describe(up, false))).toEqual(strip(describe(src, false)));

    // followSymlinks: the link's target is copied as a file.
    const followed = localPath('tree-followed');
    sftp.get(up, followed, null, { recurse: true, followSymlinks: true });
    expect(fs.lstatSync(join(followed, 'link')).isFile()).toBe(true);
    expect(fs.readFileSync(join(followed, 'link'), 'utf8')).toBe('alpha');

    expect((thrown(() => sftp.get(join(up, 'a.txt'), localPath('x'), null, { recurse: true })) as IOError).code).toBe('ENOTDIR');
    if (isRoot()) {
      // One file of many the login user may not read: the batch stops with its error, the rest settle.
      const many = remote('tree-many');
      fs.mkdirSync(many);
      fs.chownSync(many, sshd.user.uid, sshd.user.gid);
      for (let i = 0; i < 30; i++) put(join(many, `f${i}`), `file ${i}`);
      fs.chownSync(join(many, 'f17'), 0, 0);
      fs.chmodSync(join(many, 'f17'), 0o600);
      const e = thrown(() => sftp.get(many, localPath('many'), null, { recurse: true })) as IOError;
      expect(e.code).toBe('EACCES');
      expect(e.message).toContain('f17');
      expect(sftp.stat('.').st_mode).toBeDefined(); // the session carries on
    }
    expect((thrown(() => sftp.put(localPath('missing'), remote('x'), null, true, { recurse: true })) as IOError).code).toBe('ENOENT');
    // A single file with preserve, up and down.
    const single = remote('single');
    sftp.put(join(src, 'a.txt'), single, null, true, { preserve: true });
    expect([fs.statSync(single).mode & 0o777, Math.floor(fs.statSync(single).mtimeMs / 1000)]).toEqual([0o640, then + 7]);
    fs.utimesSync(single, then, then + 9);
    const one = localPath('one');
    sftp.get(single, one, null, { preserve: true });
    expect([fs.statSync(one).mode & 0o777, Math.floor(fs.statSync(one).mtimeMs / 1000)]).toEqual([0o640, then + 9]);
  });

  itWithPeers(['sshd'], 'glob: *, ?, [...], [!...], ** and hidden names as a shell; literal parts must exist; a trailing / keeps directories', () => {
    const w = remote('glob');
    for (const d of ['sub/deep', 'sub2', '.hid']) fs.mkdirSync(join(w, d), { recursive: true });
    for (const f of ['a.txt', 'b.txt', 'c.log', '.hidden.txt', 'sub/d.txt', 'sub/deep/e.txt', 'sub2/f.txt', '.hid/g.txt', 'x[1].txt']) fs.writeFileSync(join(w, f), f);
    fs.symlinkSync('sub', join(w, 'link-to-sub'));
    const g = (p: string) => sftp.glob(`${w}/${p}`).map((x) => x.slice(w.length + 1));
    expect(g('*.txt')).toEqual(['a.txt', 'b.txt', 'x[1].txt']);
    expect(g('.*.txt')).toEqual(['.hidden.txt']);
    expect(g('[ab].txt')).toEqual(['a.txt', 'b.txt']);
    expect(g('[!a].txt')).toEqual(['b.txt']);
    expect(g('?.log')).toEqual(['c.log']);
    expect(g('*/d.txt')).toEqual(['link-to-sub/d.txt', 'sub/d.txt']);
    expect(g('**/*.txt')).toEqual(['a.txt', 'b.txt', 'sub/d.txt', 'sub/deep/e.txt', 'sub2/f.txt', 'x[1].txt']);
    expect(g('sub*/')).toEqual(['sub', 'sub2']);
    expect(g('a.txt')).toEqual(['a.txt']);
    expect(g('missing.txt')).toEqual([]);
    expect(g('nomatch*')).toEqual([]);
    expect(g('a.txt/*')).toEqual([]);
    // Relative to chdir's directory.
    sftp.chdir(w);
    try {
      expect(sftp.glob('sub/*.txt')).toEqual(['sub/d.txt']);
    } finally {
      sftp.chdir(null);
    }
  });

  itWithPeers(['sshd'], "mget and mput (AsyncSSH's): every match of the patterns into a directory, files together, directories with recurse", () => {
    const src = localPath('m-src');
    fs.mkdirSync(join(src, 'dir', 'deeper'), { recursive: true });
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 25; i++) files[`f${i}.dat`] = randomBytes(i * 997);
    files['big.bin'] = randomBytes(3 * MiB + 5);
    files['skip.txt'] = Buffer.from('not matched');
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(join(src, name), data);
    fs.writeFileSync(join(src, 'dir', 'deeper', 'in.txt'), 'inside');
    const up = remote('m-up');
    sftp.mkdir(up);
    // Two patterns whose matches overlap: each file once.
    const wanted = Object.keys(files).filter((n) => n.endsWith('.dat') || n === 'big.bin');
    const bytes = wanted.reduce((n, f) => n + files[f].length, 0);
    const seen: Array<[number, number]> = [];
    expect(sftp.mput([join(src, '*.dat'), join(src, 'f1*.dat'), join(src, 'big.bin')], up, (done, total) => seen.push([done, total]))).toBe(bytes);
    expect(fs.readdirSync(up).sort()).toEqual(wanted.sort());
    for (const f of wanted) expect(sha256File(join(up, f))).toBe(sha256(files[f]));
    expect(seen[seen.length - 1]).toEqual([bytes, bytes]);
    // A directory needs recurse; then it goes under its own name.
    expect((thrown(() => sftp.mput(join(src, 'd*'), up)) as IOError).code).toBe('EISDIR');
    sftp.mput(join(src, 'd*'), up, null, true, { recurse: true });
    expect(fs.readFileSync(join(up, 'dir', 'deeper', 'in.txt'), 'utf8')).toBe('inside');
    // And back: remote patterns (relative to chdir too) into a local directory.
    const down = localPath('m-down');
    fs.mkdirSync(down);
    sftp.chdir(up);
    try {
      expect(sftp.mget(['f?.dat', 'big.*'], down)).toBe(files['big.bin'].length + [...Array(10).keys()].reduce((n, i) => n + files[`f${i}.dat`].length, 0));
      sftp.mget('di?', down, null, { recurse: true });
    } finally {
      sftp.chdir(null);
    }
    expect(fs.readdirSync(down).sort()).toEqual(['big.bin', 'dir', ...[...Array(10).keys()].map((i) => `f${i}.dat`)].sort());
    for (let i = 0; i < 10; i++) expect(sha256File(join(down, `f${i}.dat`))).toBe(sha256(files[`f${i}.dat`]));
    expect(fs.readFileSync(join(down, 'dir', 'deeper', 'in.txt'), 'utf8')).toBe('inside');
    // Nothing matched, or no directory to copy into: raised before anything moves.
    const none = thrown(() => sftp.mget([join(up, 'big.bin'), join(up, 'nothing*')], down)) as IOError;
    expect([none.code, none.message]).toEqual(['ENOENT', expect.stringContaining('nothing*')]);
    expect((thrown(() => sftp.mget(join(up, '*.dat'), join(down, 'big.bin'))) as IOError).code).toBe('ENOTDIR');
    expect((thrown(() => sftp.mput(join(src, '*.dat'), join(up, 'big.bin'))) as IOError).code).toBe('ENOTDIR');
    expect((thrown(() => sftp.mput(join(src, 'zzz*'), up)) as IOError).code).toBe('ENOENT');
  });

  itWithPeers(['sshd'], 'exists, lexists, isdir, isfile and islink answer as os.path does, links and missing paths included', () => {
    const file = put(remote('probe-file'), 'x');
    const dir = remote('probe-dir');
    fs.mkdirSync(dir);
    const toFile = remote('probe-link');
    fs.symlinkSync(file, toFile);
    const dangling = remote('probe-dangling');
    fs.symlinkSync(remote('nowhere'), dangling);
    const missing = remote('probe-missing');
    const table = (p: string) => [sftp.exists(p), sftp.lexists(p), sftp.isdir(p), sftp.isfile(p), sftp.islink(p)];
    expect(table(file)).toEqual([true, true, false, true, false]);
    expect(table(dir)).toEqual([true, true, true, false, false]);
    expect(table(toFile)).toEqual([true, true, false, true, true]);
    expect(table(dangling)).toEqual([false, true, false, false, true]);
    expect(table(missing)).toEqual([false, false, false, false, false]);
    expect(table(join(file, 'under-a-file'))).toEqual([false, false, false, false, false]);
    if (isRoot()) {
      // Inside a directory the login user may not search: false, as Python's (EACCES).
      const closed = remote('probe-closed');
      fs.mkdirSync(closed, { mode: 0o700 });
      fs.writeFileSync(join(closed, 'f'), 'x');
      expect(sftp.exists(join(closed, 'f'))).toBe(false);
    }
  });

  itWithPeers(['sshd'], 'normalize gives the canonical absolute path; "." is the login directory', () => {
    expect(sftp.normalize('.')).toBe(fs.realpathSync(sshd.user.home));
    const d = remote('norm');
    fs.mkdirSync(d);
    expect(sftp.normalize(`${d}/./../${d.split('/').pop()}/..//`)).toBe(work);
    expect(() => sftp.normalize(`${d}/missing/..`)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  itWithPeers(['sshd'], 'getcwd is null until chdir; chdir makes relative paths relative to it; chdir(null) resets', () => {
    using c = connect();
    const s = c.openSftp();
    try {
      expect(s.getcwd()).toBeNull();
      const d = remote('cwd');
      fs.mkdirSync(d);
      if (isRoot()) fs.chownSync(d, sshd.user.uid, sshd.user.gid);
      s.chdir(`${d}/.`);
      expect(s.getcwd()).toBe(d);
      const f = s.open('rel.txt', 'w');
      f.write('relative');
      f.close();
      expect(fs.readFileSync(join(d, 'rel.txt'), 'utf8')).toBe('relative');
      expect(s.listdir()).toEqual(['rel.txt']);
      expect(s.stat('rel.txt').st_size).toBe(8);
      s.mkdir('sub');
      s.chdir('sub');
      expect(s.getcwd()).toBe(join(d, 'sub'));
      s.chdir('..');
      expect(s.getcwd()).toBe(d);
      expect(() => s.chdir('missing')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(() => s.chdir('rel.txt')).toThrow(IOError);
      expect(s.getcwd()).toBe(d);
      s.chdir(null);
      expect(s.getcwd()).toBeNull();
      expect(s.normalize('.')).toBe(fs.realpathSync(sshd.user.home));
    } finally {
      s.close();
    }
  });
});

describe('SFTPClient against OpenSSH sshd: attributes', () => {
  itWithPeers(['sshd'], 'stat and lstat match fs.stat: size, mode, uid, gid, atime, mtime', () => {
    const f = put(remote('attrs'), Buffer.alloc(4321), 0o640);
    fs.utimesSync(f, 1_000_000_000, 1_200_000_000);
    const st = sftp.stat(f);
    const want = fs.statSync(f);
    expect(st).toBeInstanceOf(SFTPAttributes);
    expect(st.st_size).toBe(4321);
    expect(st.st_mode).toBe(want.mode);
    expect(st.st_uid).toBe(want.uid);
    expect(st.st_gid).toBe(want.gid);
    expect(st.st_atime).toBe(1_000_000_000);
    expect(st.st_mtime).toBe(1_200_000_000);
    expect(sftp.lstat(f).st_mode).toBe(want.mode);
    st.filename = 'attrs';
    expect(st.toString()).toMatch(/^-rw-r----- .* 4321 .*attrs$/);
  });

  itWithPeers(['sshd'], 'chmod, chown, utime and truncate change the file as fs sees it', () => {
    const f = put(remote('set'), 'hello world');
    sftp.chmod(f, 0o600);
    expect(fs.statSync(f).mode & 0o7777).toBe(0o600);
    sftp.chown(f, sshd.user.uid, sshd.user.gid);
    expect(fs.statSync(f).uid).toBe(sshd.user.uid);
    sftp.utime(f, [1_111_111_111, 1_222_222_222]);
    expect(fs.statSync(f).atimeMs).toBe(1_111_111_111_000);
    expect(fs.statSync(f).mtimeMs).toBe(1_222_222_222_000);
    const before = Date.now() / 1000;
    sftp.utime(f, null);
    expect(fs.statSync(f).mtimeMs / 1000).toBeGreaterThanOrEqual(Math.floor(before) - 1);
    sftp.truncate(f, 5);
    expect(fs.readFileSync(f, 'utf8')).toBe('hello');
    sftp.truncate(f, 8);
    expect(fs.readFileSync(f)).toEqual(Buffer.from('hello\0\0\0'));
  });

  itWithPeers(['sshd'], 'chown to another user is refused with EACCES', () => {
    if (!isRoot()) return; // the current user cannot give files away either way; nothing to compare
    const f = put(remote('chown'), 'x');
    const e = thrown(() => sftp.chown(f, 0, 0)) as IOError;
    expect(e).toBeInstanceOf(IOError);
    expect(e.code).toBe('EACCES');
    expect(fs.statSync(f).uid).toBe(sshd.user.uid);
  });
});

describe('SFTPClient against OpenSSH sshd: errors', () => {
  itWithPeers(['sshd'], 'a missing path raises IOError ENOENT (errno 2) naming the path', () => {
    const missing = join(work, 'no', 'such', 'file');
    for (const fn of [() => sftp.stat(missing), () => sftp.open(missing, 'r'), () => sftp.remove(missing), () => sftp.listdir(missing), () => sftp.readlink(missing)]) {
      const e = thrown(fn) as IOError;
      expect(e).toBeInstanceOf(IOError);
      expect(e.code).toBe('ENOENT');
      expect(e.errno).toBe(2);
      expect(e.message).toContain(missing);
    }
    const e = thrown(() => sftp.get(missing, localPath('never'))) as IOError;
    expect(e.code).toBe('ENOENT');
    expect(e.message).toContain(missing);
  });

  itWithPeers(['sshd'], 'get and put: a local file that cannot be opened raises IOError with its code, naming it', () => {
    const data = put(remote('local-errors'), 'x');
    const target = join(local, 'no-such-dir', 'copy');
    const e = thrown(() => sftp.get(data, target)) as IOError;
    expect(e).toBeInstanceOf(IOError);
    expect([e.code, e.errno]).toEqual(['ENOENT', 2]);
    expect(e.message).toContain(target);
    const source = join(local, 'no-such-source');
    const e2 = thrown(() => sftp.put(source, remote('never-uploaded'))) as IOError;
    expect(e2).toBeInstanceOf(IOError);
    expect(e2.code).toBe('ENOENT');
    expect(e2.message).toContain(source);
    const e3 = thrown(() => sftp.get(data, local)) as IOError; // a directory
    expect(e3.code).toBe('EISDIR');
  });

  itWithPeers(['sshd'], 'get to what is not a regular file: a FIFO gets every byte, /dev/full raises IOError ENOSPC naming it', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const src = put(remote('to-fifo'), data);
    const fifo = join(local, `fifo-${counter}`);
    const out = join(local, `fifo-out-${counter}`);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // The reader starts slowly, and reads slowly: the writes wait for it in libuv's pool, not in the worker.
    const reader = spawn('sh', ['-c', `sleep 0.3; dd if="${fifo}" of="${out}" bs=4096 status=none`], { stdio: 'ignore' });
    const ended = new Promise((resolve) => reader.on('exit', resolve));
    try {
      expect(sftp.get(src, fifo)).toBe(data.length);
      expect(sftp.stat(src).st_size).toBe(data.length); // the session still answers
    } finally {
      await ended;
    }
    expect(fs.readFileSync(out).equals(data)).toBe(true);
    const e = thrown(() => sftp.get(src, '/dev/full')) as IOError;
    expect(e).toBeInstanceOf(IOError);
    expect(e.code).toBe('ENOSPC');
    expect(e.message).toContain('/dev/full');
  });

  itWithPeers(['sshd'], 'put from what is not a regular file: a FIFO is read to its end, whatever its size says (0)', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 33);
    const fifo = join(local, `put-fifo-${++counter}`);
    const source = join(local, `put-fifo-src-${counter}`);
    fs.writeFileSync(source, data);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // A slow writer, in small pieces: reads of the FIFO come back short.
    const writer = spawn('sh', ['-c', `sleep 0.2; dd if="${source}" of="${fifo}" bs=3000 status=none`], { stdio: 'ignore' });
    const ended = new Promise((resolve) => writer.on('exit', resolve));
    const dst = remote('from-fifo');
    const seen: Array<[number, number]> = [];
    try {
      const attrs = sftp.put(fifo, dst, (done, total) => seen.push([done, total]), true);
      expect(attrs.st_size).toBe(data.length);
    } finally {
      await ended;
    }
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
    expect(seen.at(-1)).toEqual([data.length, data.length]);
  });

  itWithPeers(['sshd'], 'a forbidden path raises IOError EACCES (errno 13) naming the path', () => {
    const secret = remote('secret');
    fs.writeFileSync(secret, 'no');
    fs.chmodSync(secret, 0o000);
    if (!isRoot()) return; // as the owner the server could chmod it back; the point is someone else's file
    const e = thrown(() => sftp.open(secret, 'r')) as IOError;
    expect(e).toBeInstanceOf(IOError);
    expect(e.code).toBe('EACCES');
    expect(e.errno).toBe(13);
    expect(e.message).toContain(secret);
    const ro = remote('ro-dir');
    fs.mkdirSync(ro, { mode: 0o755 }); // root's: the login user may not create in it
    const inside = join(ro, 'new');
    const e2 = thrown(() => sftp.mkdir(inside)) as IOError;
    expect(e2.code).toBe('EACCES');
    expect(e2.message).toContain(inside);
    const e3 = thrown(() => sftp.put(__filename, join(ro, 'up'))) as IOError;
    expect(e3.code).toBe('EACCES');
  });
});

describe('SFTPClient against OpenSSH sshd: open modes', () => {
  /** Opens, runs `fn`, closes. */
  function withFile<T>(path: string, mode: string, fn: (f: SFTPFile) => T): T {
    const f = sftp.open(path, mode);
    try {
      return fn(f);
    } finally {
      f.close();
    }
  }

  itWithPeers(['sshd'], "'r' reads and refuses writes; a missing file raises ENOENT", () => {
    const p = put(remote('mode-r'), 'read me');
    withFile(p, 'r', (f) => {
      expect(f.readable()).toBe(true);
      expect(f.writable()).toBe(false);
      expect(f.read().toString()).toBe('read me');
      expect(() => f.write('x')).toThrow(IOError);
    });
    expect(() => sftp.open(remote('mode-r-missing'), 'r')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  itWithPeers(['sshd'], "'w' creates or truncates; 'w+' also reads back", () => {
    const p = put(remote('mode-w'), 'a long old content');
    withFile(p, 'w', (f) => {
      expect(f.readable()).toBe(false);
      f.write('new');
      expect(() => f.read()).toThrow(IOError);
    });
    expect(fs.readFileSync(p, 'utf8')).toBe('new');
    const created = remote('mode-w-created');
    withFile(created, 'w', (f) => f.write('made'));
    expect(fs.readFileSync(created, 'utf8')).toBe('made');
    withFile(p, 'w+', (f) => {
      f.write('0123456789');
      f.seek(3);
      expect(f.read(4).toString()).toBe('3456');
    });
    expect(fs.readFileSync(p, 'utf8')).toBe('0123456789');
  });

  itWithPeers(['sshd'], "'a' appends, even after a seek; 'a+' reads too", () => {
    const p = put(remote('mode-a'), 'start;');
    withFile(p, 'a', (f) => {
      expect(f.tell()).toBe(6);
      f.write('one;');
      f.seek(0);
      f.write('two;');
    });
    expect(fs.readFileSync(p, 'utf8')).toBe('start;one;two;');
    withFile(p, 'a+', (f) => {
      f.write('three');
      f.seek(0);
      expect(f.read().toString()).toBe('start;one;two;three');
    });
  });

  itWithPeers(['sshd'], "'r+' writes in place without truncating", () => {
    const p = put(remote('mode-rplus'), 'abcdefghij');
    withFile(p, 'r+', (f) => {
      f.seek(2);
      f.write('XY');
      f.seek(0);
      expect(f.read().toString()).toBe('abXYefghij');
    });
    expect(fs.readFileSync(p, 'utf8')).toBe('abXYefghij');
  });

  itWithPeers(['sshd'], "'x' creates a new file and fails with IOError when it exists", () => {
    const p = remote('mode-x');
    withFile(p, 'x', (f) => f.write('exclusive'));
    expect(fs.readFileSync(p, 'utf8')).toBe('exclusive');
    expect((thrown(() => sftp.open(p, 'x')) as IOError).code).toBe('EEXIST');
    expect(() => sftp.open(p, 'xb')).toThrow(IOError);
    expect(fs.readFileSync(p, 'utf8')).toBe('exclusive');
  });

  itWithPeers(['sshd'], 'an unknown mode is a TypeError before anything is sent', () => {
    const p = remote('mode-bad');
    expect(() => sftp.open(p, 'q')).toThrow(TypeError);
    expect(fs.existsSync(p)).toBe(false);
  });
});

describe('SFTPClient against OpenSSH sshd: SFTPFile', () => {
  itWithPeers(['sshd'], 'read() of a large file from the middle to the end: every byte, in one buffer grown in place', () => {
    const data = randomBytes(21 * MiB + 5);
    const f = sftp.open(put(remote('read-large'), data), 'rb');
    try {
      expectBytes(f.read(3 * MiB + 1), data.subarray(0, 3 * MiB + 1));
      const rest = f.read();
      expectBytes(rest, data.subarray(3 * MiB + 1));
      const memory = rest.buffer as ArrayBuffer & { resizable?: boolean };
      expect([memory.resizable, memory.byteLength]).toEqual([true, rest.length]);
      expect(f.tell()).toBe(data.length);
      expect(f.read().length).toBe(0);
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'read() of files of every size around sshd\'s READ size (255 KiB) and the read-ahead: exact; a file grown after it is read on', () => {
    for (const size of [0, 1, 1000, 255 * KiB - 1, 255 * KiB, 255 * KiB + 1, 256 * KiB, 256 * KiB + 1, 1279 * KiB + 3]) {
      const data = randomBytes(size);
      const p = put(remote(`read-${size}`), data);
      const f = sftp.open(p, 'rb');
      try {
        expectBytes(f.read(), data);
        expect(f.read().length).toBe(0);
        // The end the read met was the end then: more written since is there for the next read.
        fs.appendFileSync(p, 'more');
        expect(f.read().toString()).toBe('more');
      } finally {
        f.close();
      }
    }
  });

  itWithPeers(['sshd'], 'read(n), read() to the end, and an empty Buffer at EOF', () => {
    const data = randomBytes(300 * KiB + 17);
    const p = put(remote('read'), data);
    const f = sftp.open(p, 'rb');
    try {
      expectBytes(f.read(10), data.subarray(0, 10));
      expect(f.tell()).toBe(10);
      expectBytes(f.read(100 * KiB), data.subarray(10, 10 + 100 * KiB));
      expectBytes(f.read(), data.subarray(10 + 100 * KiB));
      const eof = f.read(10);
      expect(Buffer.isBuffer(eof)).toBe(true);
      expect(eof.length).toBe(0);
      expect(f.read().length).toBe(0);
    } finally {
      f.close();
    }
    expect(f.isClosed).toBe(true);
    expect(() => f.read(1)).toThrow(IOError);
  });

  itWithPeers(['sshd'], 'a sequential reader holds what it has not read yet, not the whole file', () => {
    const data = randomBytes(6 * MiB + 5);
    const p = put(remote('sequential'), data);
    const f = sftp.open(p, 'rb');
    // The buffer is private; its size is the point: a reader that kept every byte read would
    // hold the whole file and copy all of it again at each refill (quadratic time).
    const buffered = (): number => (f as unknown as { readBuf: Buffer }).readBuf.length;
    try {
      const parts: Buffer[] = [];
      let most = 0;
      for (let b = f.read(MiB); b.length; b = f.read(MiB)) {
        parts.push(b);
        most = Math.max(most, buffered());
      }
      expectBytes(Buffer.concat(parts), data);
      expect(most).toBeLessThanOrEqual(MiB);
      // Going back re-reads from the server.
      f.seek(3);
      expectBytes(f.read(10), data.subarray(3, 13));
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'readinto, readlines(sizehint), setblocking and file() as Paramiko\'s', () => {
    const p = put(remote('into'), 'one\ntwo\nthree\nfour\n');
    const f = sftp.file(p, 'r');
    try {
      const buf = Buffer.alloc(6);
      expect(f.readinto(buf)).toBe(6);
      expect(buf.toString()).toBe('one\ntw');
      expect(f.readlines(5)).toEqual(['o\n', 'three\n']);
      expect(f.readlines()).toEqual(['four\n']);
      expect(f.readinto(buf)).toBe(0);
      f.setblocking(false);
      expect(f.gettimeout()).toBe(0);
      expect(sftp.getChannel().gettimeout()).toBe(0);
      f.setblocking(true);
      expect(f.gettimeout()).toBeNull();
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'seek with whence 0, 1 and 2, and tell', () => {
    const p = put(remote('seek'), '0123456789abcdef');
    const f = sftp.open(p, 'r');
    try {
      expect(f.seek(4)).toBe(4);
      expect(f.read(2).toString()).toBe('45');
      expect(f.seek(3, 1)).toBe(9);
      expect(f.read(1).toString()).toBe('9');
      expect(f.seek(-2, 2)).toBe(14);
      expect(f.tell()).toBe(14);
      expect(f.read().toString()).toBe('ef');
      f.seek(100);
      expect(f.read().length).toBe(0);
      expect(() => f.seek(-1)).toThrow(IOError);
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'readline returns strings (Buffers with b), iteration and readlines give every line', () => {
    const text = 'first line\nsecond\n\nünïcode\nlast without newline';
    const p = put(remote('lines'), text);
    const f = sftp.open(p, 'r');
    try {
      expect(f.readline()).toBe('first line\n');
      expect(f.readline(3)).toBe('sec');
      expect(f.readline()).toBe('ond\n');
      expect(f.readlines()).toEqual(['\n', 'ünïcode\n', 'last without newline']);
      expect(f.readline()).toBe('');
    } finally {
      f.close();
    }
    const g = sftp.open(p, 'rb');
    try {
      const lines = [...g];
      expect(lines.every((l) => Buffer.isBuffer(l))).toBe(true);
      expect(Buffer.concat(lines as Buffer[]).toString()).toBe(text);
      expect(lines).toHaveLength(5);
    } finally {
      g.close();
    }
    // Lines longer than the read buffer, across buffer boundaries.
    const long = Array.from({ length: 40 }, (_, i) => `${i}:${'x'.repeat(20_000 + i)}\n`).join('');
    const q = put(remote('long-lines'), long);
    const h = sftp.open(q, 'r', 8192);
    try {
      const got = [...h];
      expect(got).toHaveLength(40);
      expect(got.join('')).toBe(long);
    } finally {
      h.close();
    }
  });

  itWithPeers(['sshd'], 'readv returns each range; ranges past the end come back short', () => {
    const data = randomBytes(200 * KiB);
    const p = put(remote('readv'), data);
    const f = sftp.open(p, 'rb');
    try {
      const chunks: Array<[number, number]> = [
        [0, 10],
        [100 * KiB, 100],
        [5, 64 * KiB + 3],
        [200 * KiB - 4, 4],
        [150 * KiB, 50 * KiB],
      ];
      const got = f.readv(chunks);
      expect(got).toHaveLength(chunks.length);
      chunks.forEach(([o, n], i) => expectBytes(got[i], data.subarray(o, o + n)));
      expectBytes(f.readv([[200 * KiB - 2, 10]])[0], data.subarray(200 * KiB - 2));
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'write, writelines and flush: the data is on disk after flush', () => {
    const p = remote('write');
    const f = sftp.open(p, 'w');
    try {
      expect(f.write('abc')).toBe(3);
      f.write(Buffer.from('def'));
      f.writelines(['\n', 'g', Buffer.from('h\n')]);
      expect(f.tell()).toBe(10);
      f.flush();
      expect(fs.readFileSync(p, 'utf8')).toBe('abcdef\ngh\n');
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'stat, chmod, chown, utime, truncate, fsync and statvfs on an open file', () => {
    const p = remote('fattrs');
    const f = sftp.open(p, 'w+');
    try {
      f.write('0123456789');
      expect(f.stat().st_size).toBe(10); // pending writes are flushed first
      f.chmod(0o604);
      expect(fs.statSync(p).mode & 0o777).toBe(0o604);
      f.chown(sshd.user.uid, sshd.user.gid);
      f.utime([1_300_000_000, 1_400_000_000]);
      expect(fs.statSync(p).mtimeMs).toBe(1_400_000_000_000);
      f.truncate(4);
      expect(fs.readFileSync(p, 'utf8')).toBe('0123');
      f.fsync();
      expect(Number(f.statvfs().namemax)).toBeGreaterThan(0);
      expect(f.stat().st_mode! & 0o777).toBe(0o604);
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'prefetch then read streams the whole file', () => {
    const data = randomBytes(3 * MiB + 5);
    const p = put(remote('prefetch'), data);
    const f = sftp.open(p, 'rb');
    try {
      f.prefetch(data.length);
      const parts: Buffer[] = [];
      for (let b = f.read(1 * MiB); b.length; b = f.read(1 * MiB)) parts.push(b);
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'a failing write without pipelining raises at the write (unbuffered by default, as Paramiko)', () => {
    const f = sftp.open('/dev/full', 'w');
    try {
      const err = thrown(() => f.write('some bytes')) as IOError & { path?: string };
      expect(err).toBeInstanceOf(IOError);
      // Errors on an open file name it, as the path-based calls' errors do.
      expect(err.message).toContain("'/dev/full'");
      expect(err.path).toBe('/dev/full');
    } finally {
      closeQuietly(f);
    }
  });

  itWithPeers(['sshd'], 'with a write buffer, a failing write raises at flush (/dev/full)', () => {
    const f = sftp.open('/dev/full', 'w', 8192);
    try {
      f.write('some bytes'); // buffered
      expect(() => f.flush()).toThrow(IOError);
    } finally {
      closeQuietly(f);
    }
  });

  itWithPeers(['sshd'], 'pipelined writes that fail surface at close (/dev/full)', () => {
    const f = sftp.open('/dev/full', 'w');
    f.setPipelined(true);
    let closed = false;
    try {
      // One write call of 1 MiB: sent as many WRITEs that are not waited for.
      expect(f.write(randomBytes(MiB))).toBe(MiB);
      const e = thrown(() => f.close());
      closed = true;
      expect(e).toBeInstanceOf(IOError);
      expect(f.isClosed).toBe(true);
    } finally {
      if (!closed) closeQuietly(f);
    }
    // The session is still usable.
    expect(sftp.stat('/dev/full').st_mode! & S_IFMT).toBe(0o020000);
  });

  itWithPeers(['sshd'], 'pipelined writes that succeed land in order', () => {
    const data = randomBytes(5 * MiB + 3);
    const p = remote('pipelined');
    const f = sftp.open(p, 'wb');
    f.setPipelined(true);
    for (let off = 0; off < data.length; off += 70_001) f.write(data.subarray(off, off + 70_001));
    f.close();
    expect(sha256File(p)).toBe(sha256(data));
  });

  itWithPeers(['sshd'], 'reads and writes past 4 GiB address the right bytes (sparse 5 GiB file)', () => {
    const p = remote('sparse');
    const mark = 5 * GiB;
    const data = randomBytes(MiB);
    const fd = fs.openSync(p, 'w');
    try {
      fs.ftruncateSync(fd, mark + 2 * MiB);
      fs.writeSync(fd, data, 0, data.length, mark - MiB / 2); // straddles the 5 GiB mark
    } finally {
      fs.closeSync(fd);
    }
    if (isRoot()) fs.chownSync(p, sshd.user.uid, sshd.user.gid);
    expect(sftp.stat(p).st_size).toBe(mark + 2 * MiB);

    const f = sftp.open(p, 'r+b');
    try {
      f.seek(mark - MiB / 2 - 100);
      const got = f.read(MiB + 200);
      expect(got.length).toBe(MiB + 200);
      expectBytes(got.subarray(0, 100), Buffer.alloc(100));
      expectBytes(got.subarray(100, 100 + MiB), data);
      expectBytes(got.subarray(100 + MiB), Buffer.alloc(100));
      const [around, last] = f.readv([
        [mark - 8, 16],
        [mark + 2 * MiB - 4, 100],
      ]);
      expectBytes(around, data.subarray(MiB / 2 - 8, MiB / 2 + 8));
      expect(last).toEqual(Buffer.alloc(4));
      // A write past 4 GiB (and past 2^32 + 2^31, where a signed 32-bit offset would wrap twice).
      f.seek(4 * GiB + 3);
      f.write('beyond 4G');
      f.seek(-9, 1);
      expect(f.read(9).toString()).toBe('beyond 4G');
      f.seek(0, 2);
      expect(f.tell()).toBe(mark + 2 * MiB);
    } finally {
      f.close();
    }
    const check = Buffer.alloc(9);
    const wrapped = Buffer.alloc(9, 1);
    const rfd = fs.openSync(p, 'r');
    try {
      fs.readSync(rfd, check, 0, 9, 4 * GiB + 3);
      fs.readSync(rfd, wrapped, 0, 9, 3); // the offset modulo 2^32: untouched
    } finally {
      fs.closeSync(rfd);
    }
    expect(check.toString()).toBe('beyond 4G');
    expect(wrapped).toEqual(Buffer.alloc(9));
  });
});

describe('SFTPClient against OpenSSH sshd: put and get', () => {
  const sizes = [0, 1, 32767, 32768, 32769];

  itWithPeers(['sshd'], `put and get of ${sizes.join(', ')} bytes: same bytes both ways, callbacks ending at the total`, () => {
    for (const size of sizes) {
      const src = localPath(`src-${size}`);
      const data = randomBytes(size);
      fs.writeFileSync(src, data);
      const dst = remote(`put-${size}`);
      const calls: Array<[number, number]> = [];
      const attrs = sftp.put(src, dst, (done, total) => calls.push([done, total]));
      expect(attrs).toBeInstanceOf(SFTPAttributes);
      expect(attrs.st_size).toBe(size);
      expectBytes(fs.readFileSync(dst), data);
      expect(calls.length).toBeGreaterThan(0);
      expect(calls[calls.length - 1]).toEqual([size, size]);

      const back = localPath(`back-${size}`);
      const got: Array<[number, number]> = [];
      expect(sftp.get(dst, back, (done, total) => got.push([done, total]))).toBe(size);
      expectBytes(fs.readFileSync(back), data);
      expect(got.length).toBeGreaterThan(0);
      expect(got[got.length - 1]).toEqual([size, size]);
    }
  });

  itWithPeers(['sshd'], 'put and get of 64 MiB of random data: SHA-256 equal both ways, progress monotonic', () => {
    const data = randomBytes(64 * MiB);
    const want = sha256(data);
    const src = localPath('big');
    fs.writeFileSync(src, data);
    const dst = remote('big');
    const calls: Array<[number, number]> = [];
    expect(sftp.put(src, dst, (d, t) => calls.push([d, t])).st_size).toBe(64 * MiB);
    expect(sha256File(dst)).toBe(want);
    for (let i = 1; i < calls.length; i++) expect(calls[i][0]).toBeGreaterThanOrEqual(calls[i - 1][0]);
    expect(calls.every(([, t]) => t === 64 * MiB)).toBe(true);
    expect(calls[calls.length - 1]).toEqual([64 * MiB, 64 * MiB]);

    const back = localPath('big-back');
    const got: Array<[number, number]> = [];
    expect(sftp.get(dst, back, (d, t) => got.push([d, t]))).toBe(64 * MiB);
    expect(sha256File(back)).toBe(want);
    for (let i = 1; i < got.length; i++) expect(got[i][0]).toBeGreaterThanOrEqual(got[i - 1][0]);
    expect(got[got.length - 1]).toEqual([64 * MiB, 64 * MiB]);
  }, 60_000);

  itWithPeers(['sshd'], 'putfo and getfo move the bytes of file-like objects', () => {
    const data = randomBytes(700 * KiB + 1);
    let at = 0;
    const reader = { read: (n?: number) => { const b = data.subarray(at, at + (n ?? data.length)); at += b.length; return b; } };
    const dst = remote('putfo');
    const calls: Array<[number, number]> = [];
    expect(sftp.putfo(reader, dst, data.length, (d, t) => calls.push([d, t])).st_size).toBe(data.length);
    expect(sha256File(dst)).toBe(sha256(data));
    expect(calls[calls.length - 1]).toEqual([data.length, data.length]);

    const parts: Buffer[] = [];
    const got: Array<[number, number]> = [];
    expect(sftp.getfo(dst, { write: (b: Buffer) => parts.push(Buffer.from(b)) }, (d, t) => got.push([d, t]))).toBe(data.length);
    expectBytes(Buffer.concat(parts), data);
    expect(got[got.length - 1]).toEqual([data.length, data.length]);

    // Strings too, and an empty source makes an empty file.
    const strs = ['héllo ', 'world'];
    const dst2 = remote('putfo-str');
    sftp.putfo({ read: () => strs.shift() ?? '' }, dst2);
    expect(fs.readFileSync(dst2, 'utf8')).toBe('héllo world');
    const empty = remote('putfo-empty');
    expect(sftp.putfo({ read: () => null }, empty).st_size).toBe(0);
    expect(fs.statSync(empty).size).toBe(0);
  });

  itWithPeers(['sshd'], 'put confirms the size: a remote that does not keep the bytes (/dev/null) raises, unless confirm is false', () => {
    const src = localPath('to-null');
    fs.writeFileSync(src, randomBytes(1000));
    expect(() => sftp.put(src, '/dev/null')).toThrow(/size mismatch in put/);
    expect(sftp.put(src, '/dev/null', null, false).st_size).toBe(1000);
    expect(() => sftp.putfo({ read: ((once) => () => once.shift() ?? null)([Buffer.alloc(10)]) }, '/dev/null')).toThrow(/size mismatch in put/);
  });

  itWithPeers(['sshd'], 'put reads a local file to its end, as Paramiko: a /proc file whose size says 0 is sent whole', () => {
    const proc = '/proc/version';
    expect(fs.statSync(proc).size).toBe(0);
    const want = fs.readFileSync(proc);
    const dst = remote('proc-version');
    const seen: Array<[number, number]> = [];
    expect(sftp.put(proc, dst, (done, total) => seen.push([done, total])).st_size).toBe(want.length);
    expect(fs.readFileSync(dst).equals(want)).toBe(true);
    expect(seen.at(-1)).toEqual([want.length, want.length]);
  });

  itWithPeers(['sshd'], 'get raises when the file holds less than its size says (a sysfs file)', () => {
    const sysfs = '/sys/devices/system/cpu/online';
    if (!fs.existsSync(sysfs) || fs.statSync(sysfs).size <= fs.readFileSync(sysfs).length) return;
    expect(() => sftp.get(sysfs, localPath('cpu-online'))).toThrow(/size mismatch in get/);
  });

  itWithPeers(['sshd'], 'get and put relative to chdir; put needs the full remote file name (a directory is refused)', () => {
    using c = connect();
    const s = c.openSftp();
    try {
      const d = remote('rel-put');
      fs.mkdirSync(d);
      if (isRoot()) fs.chownSync(d, sshd.user.uid, sshd.user.gid);
      s.chdir(d);
      const src = localPath('rel-src');
      fs.writeFileSync(src, 'relative put');
      s.put(src, 'r.txt');
      expect(fs.readFileSync(join(d, 'r.txt'), 'utf8')).toBe('relative put');
      const back = localPath('rel-back');
      s.get('r.txt', back);
      expect(fs.readFileSync(back, 'utf8')).toBe('relative put');
      expect(() => s.put(src, d)).toThrow(IOError);
    } finally {
      s.close();
    }
  });

  itWithPeers(['sshd'], 'a progress callback may make SFTP calls of its own on the same session', () => {
    const src = localPath('nested');
    fs.writeFileSync(src, randomBytes(16 * MiB));
    const dst = remote('nested');
    const seen: number[] = [];
    sftp.put(src, dst, () => {
      if (seen.length < 3) seen.push(Number(sftp.stat(dst).st_size));
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(fs.statSync(dst).size).toBe(16 * MiB);
  });

  /** A sparse local file: reading it costs nothing, sending it takes a while. */
  function sparse(path: string, size: number): string {
    const fd = fs.openSync(path, 'w');
    fs.ftruncateSync(fd, size);
    fs.closeSync(fd);
    if (isRoot()) fs.chownSync(path, sshd.user.uid, sshd.user.gid);
    return path;
  }

  itWithPeers(['sshd'], 'a get interrupted by closing the transport from its callback raises, never reports success', () => {
    const src = sparse(remote('interrupt-get'), 512 * MiB);
    const c = connect();
    const s = c.openSftp();
    let closedAt = -1;
    try {
      const e = thrown(() =>
        s.get(src, localPath('interrupt-get'), (done, total) => {
          if (closedAt < 0 && done < total) {
            closedAt = done;
            c.getTransport()!.close();
          }
        }),
      );
      expect(closedAt).toBeGreaterThanOrEqual(0);
      expect(e).toBeInstanceOf(Error);
      expect(c.getTransport()?.isActive() ?? false).toBe(false);
    } finally {
      c.close();
    }
  }, 30_000);

  itWithPeers(['sshd'], 'a put interrupted by closing the transport from its callback raises, never reports success', () => {
    const src = sparse(localPath('interrupt-put'), 512 * MiB);
    const dst = remote('interrupt-put');
    const c = connect();
    const s = c.openSftp();
    let closedAt = -1;
    try {
      const e = thrown(() =>
        s.put(src, dst, (done, total) => {
          if (closedAt < 0 && done < total) {
            closedAt = done;
            c.getTransport()!.close();
          }
        }),
      );
      expect(closedAt).toBeGreaterThanOrEqual(0);
      expect(e).toBeInstanceOf(Error);
      expect(fs.statSync(dst).size).toBeLessThan(512 * MiB);
    } finally {
      c.close();
    }
  }, 30_000);
});

/**
 * Bugs found while writing this suite, each against Paramiko's documented behaviour (REFERENCE.md
 * section 1.7, Paramiko 2.12's paramiko/file.py and sftp_client.py). Each is `it.failing`: it
 * passes while the bug is there and fails once fixed (turn it into a plain `it` then).
 */
describe('SFTPClient against OpenSSH sshd: known bugs', () => {
  itWithPeers(['sshd'], 'an exception thrown by a put callback aborts the transfer and propagates (Paramiko cancels this way)', () => {
    const src = localPath('cb-throws-put');
    fs.writeFileSync(src, Buffer.alloc(32 * MiB));
    let calls = 0;
    const e = thrown(() =>
      sftp.put(src, remote('cb-throws-put'), () => {
        calls++;
        throw new Error('cancelled by the callback');
      }),
    );
    expect(e.message).toBe('cancelled by the callback');
    expect(calls).toBeGreaterThan(0);
  });

  itWithPeers(['sshd'], 'an exception thrown by a get callback aborts the transfer and propagates', () => {
    const src = put(remote('cb-throws-get'), Buffer.alloc(32 * MiB));
    let calls = 0;
    const e = thrown(() =>
      sftp.get(src, localPath('cb-throws-get'), () => {
        calls++;
        throw new Error('cancelled by the callback');
      }),
    );
    expect(e.message).toBe('cancelled by the callback');
    expect(calls).toBeGreaterThan(0);
  });

  itWithPeers(['sshd'], 'readline and iteration work on a file opened unbuffered (bufsize 0)', () => {
    const p = put(remote('unbuffered-lines'), 'a\nbb\nccc\n');
    const f = sftp.open(p, 'r', 0);
    try {
      expect(f.readline()).toBe('a\n');
      expect([...f]).toEqual(['bb\n', 'ccc\n']);
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'bufsize 1 is line-buffered: a write ending a line is on the server when write returns', () => {
    const p = remote('line-buffered');
    const f = sftp.open(p, 'w', 1);
    try {
      f.write('one line\n');
      expect(fs.readFileSync(p, 'utf8')).toBe('one line\n');
    } finally {
      f.close();
    }
  });

  itWithPeers(['sshd'], 'in append mode tell() follows the end of the file after a seek and a write', () => {
    const p = put(remote('append-tell'), 'start;');
    const f = sftp.open(p, 'a');
    try {
      f.write('one;');
      f.seek(0);
      f.write('two;');
      f.flush();
      expect(fs.readFileSync(p, 'utf8')).toBe('start;one;two;');
      expect(f.tell()).toBe(14);
    } finally {
      f.close();
    }
  });
});

describe('SFTP timeouts against a server that stops answering', () => {
  it('getChannel().settimeout bounds each request and a transfer\'s inactivity: SocketTimeout, no hang', async () => {
    const script = join(__dirname, 'support', 'sftp', 'stall-server.js');
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.on('exit', r));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /port (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        void exited.then(() => reject(new Error(`the stalling server exited: ${out}`)));
      });
      const c = new SSHClient();
      try {
        c.setMissingHostKeyPolicy(new AutoAddPolicy());
        c.connect('127.0.0.1', { port, username: 'u', password: 'p', allowAgent: false, lookForKeys: false, timeout: 10 });
        const s = c.openSftp();
        expect(s.getChannel().gettimeout()).toBeNull();
        s.getChannel().settimeout(0.5);
        const t0 = Date.now();
        expect(() => s.stat('/anything')).toThrow(SocketTimeout);
        expect(Date.now() - t0).toBeLessThan(5000);
        const local = join(tmpdir(), `pts-stall-${process.pid}`);
        try {
          expect(() => s.get('/big', local)).toThrow(SocketTimeout);
        } finally {
          fs.rmSync(local, { force: true });
        }
      } finally {
        c.close();
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  }, 30000);
});

