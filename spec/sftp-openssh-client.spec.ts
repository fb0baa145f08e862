/**
 * SftpServerCore driven by OpenSSH's real `sftp` client: `sftp -D` starts our server on
 * stdio (spec/support/sftp/server-stdio.js, on the compiled dist/), then batch files do
 * put/get/ls/mkdir/rename/rm/ln/cp/chmod/df and the results are compared with the filesystem.
 * Then the same client tries every way out of the root it can express.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, DIST_SERVER, itWithBinary, runSftpBatch, SFTP_CLIENT, sha256, tempDir } from './support/sftp/harness';

const it_ = (name: string, fn: () => Promise<void>, timeout?: number) => itWithBinary(SFTP_CLIENT, 'openssh-client', name, fn, timeout);

/** Every file under a directory with its content hash (symlinks as their target), for "nothing changed" checks. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const rel = path.relative(dir, full);
      if (e.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(full)}`;
      else if (e.isDirectory()) {
        out[rel] = 'dir';
        walk(full);
      } else out[rel] = sha256(fs.readFileSync(full));
    }
  };
  walk(dir);
  return out;
}

describe('SftpServerCore under OpenSSH sftp (sftp -D)', () => {
  let root: string;
  let local: string;
  const r = (n: string) => path.join(root, n);
  const l = (n: string) => path.join(local, n);
  const batch = (lines: string[], serverArgs?: string[]) => runSftpBatch(root, lines, { cwd: local, serverArgs });

  beforeAll(() => {
    if (!fs.existsSync(DIST_SERVER)) throw new Error(`${DIST_SERVER} is missing: run \`npm run build\` before these tests`);
  });
  beforeEach(() => {
    root = fs.realpathSync(tempDir('root-'));
    local = fs.realpathSync(tempDir('local-'));
  });
  afterAll(cleanup);

  it_('put, get, ls, mkdir, rename, ln, cp, chmod, rm, rmdir and df do what they say', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    fs.writeFileSync(l('up.bin'), data);
    fs.writeFileSync(r('down.txt'), 'from the server\n');
    const res = await batch([
      'pwd',
      'put up.bin',
      'get down.txt',
      'mkdir dir',
      'rename up.bin dir/moved.bin',
      'ln -s dir/moved.bin soft',
      'ln dir/moved.bin hard',
      'chmod 600 down.txt',
      'ls -l',
      'ls -1 dir',
      'df',
      'get soft via-link.bin',
      'cp dir/moved.bin copied.bin',
      'rm hard',
      'mkdir gone',
      'rmdir gone',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Remote working directory: \/\n/);
    expect(fs.readFileSync(l('down.txt'), 'utf8')).toBe('from the server\n');
    expect(sha256(fs.readFileSync(r('dir/moved.bin')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(l('via-link.bin')))).toBe(sha256(data));
    // sftp's cp is a copy-data on the server (OpenSSH 9.0+).
    expect(sha256(fs.readFileSync(r('copied.bin')))).toBe(sha256(data));
    expect(fs.existsSync(r('up.bin'))).toBe(false);
    expect(fs.readlinkSync(r('soft'))).toBe('dir/moved.bin');
    expect(fs.existsSync(r('hard'))).toBe(false);
    expect(fs.statSync(r('dir/moved.bin')).nlink).toBe(1);
    expect(fs.statSync(r('down.txt')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(r('gone'))).toBe(false);
    expect(res.stdout).toMatch(/^-rw------- .* down\.txt$/m);
    expect(res.stdout).toMatch(/^lrwxrwxrwx .* soft$/m);
    expect(res.stdout).toMatch(/^dir\/moved\.bin$/m);
    expect(res.stdout).toMatch(/Size\s+Used\s+Avail/);
  });

  it_('recursive put and get, preserving times and modes (-p), and resumed transfers', async () => {
    fs.mkdirSync(l('tree/sub'), { recursive: true });
    const files: Record<string, Buffer> = { 'tree/a': randomBytes(100000), 'tree/sub/b': randomBytes(1), 'tree/sub/c': Buffer.alloc(0) };
    for (const [n, d] of Object.entries(files)) fs.writeFileSync(l(n), d);
    fs.chmodSync(l('tree/a'), 0o640);
    fs.utimesSync(l('tree/a'), 1000000000, 1000000000);
    const res = await batch(['put -rp tree', 'get -rp tree back']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    for (const [n, d] of Object.entries(files)) {
      expect(fs.readFileSync(r(n)).equals(d)).toBe(true);
      expect(fs.readFileSync(l(n.replace('tree', 'back'))).equals(d)).toBe(true);
    }
    expect(fs.statSync(r('tree/a')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(r('tree/a')).mtimeMs).toBe(1000000000 * 1000);

    const big = randomBytes(2 * 1024 * 1024);
    fs.writeFileSync(l('resume.bin'), big);
    fs.writeFileSync(r('resume.bin'), big.subarray(0, 700000));
    fs.writeFileSync(r('reget.bin'), big);
    fs.writeFileSync(l('reget.bin'), big.subarray(0, 123457));
    const res2 = await batch(['reput resume.bin', 'reget reget.bin']);
    expect(res2.code).toBe(0);
    expect(sha256(fs.readFileSync(r('resume.bin')))).toBe(sha256(big));
    expect(sha256(fs.readFileSync(l('reget.bin')))).toBe(sha256(big));
  });

  it_('a 32 MiB file goes up and down exactly', async () => {
    const data = randomBytes(32 * 1024 * 1024);
    fs.writeFileSync(l('big'), data);
    const res = await batch(['put big', 'get big big2']);
    expect(res.code).toBe(0);
    expect(sha256(fs.readFileSync(r('big')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(l('big2')))).toBe(sha256(data));
  });

  it_('failures come back as sftp errors: missing files, rename onto an existing file, read-only server', async () => {
    fs.writeFileSync(r('a'), 'a');
    fs.writeFileSync(r('b'), 'b');
    const res = await batch(['-get nothing-here', '-rename -l a b', '-rmdir a', 'pwd']);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/nothing-here.*not found/);
    expect(fs.readFileSync(r('b'), 'utf8')).toBe('b');
    fs.writeFileSync(l('f'), 'f');
    const ro = await batch(['put f', 'pwd'], ['--read-only']);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/Permission denied/);
    expect(fs.existsSync(r('f'))).toBe(false);
  });

  it_('never escapes the root: .., absolute paths, symlinks out, symlinks created by the client', async () => {
    const outside = fs.realpathSync(tempDir('outside-'));
    fs.writeFileSync(path.join(outside, 'secret'), 'SECRET');
    fs.mkdirSync(r('inner'));
    fs.writeFileSync(r('inner/ok'), 'ok');
    fs.symlinkSync('/etc', r('etc-link'));
    fs.symlinkSync(outside, r('out-abs'));
    fs.symlinkSync(path.relative(root, outside), r('out-rel'));
    fs.symlinkSync(path.join(outside, 'secret'), r('secret-link'));
    fs.symlinkSync(path.join(outside, 'new-file'), r('dangling-out'));
    fs.symlinkSync('inner', r('in-link'));
    fs.writeFileSync(l('payload'), 'PAYLOAD');
    const before = snapshot(outside);
    const rel = path.relative(root, outside); // ../pts-outside-XXXX
    const res = await batch([
      '-get ../../etc/passwd p1',
      `-get ${rel}/secret p2`,
      '-get /etc/passwd p3',
      '-get etc-link/passwd p4',
      '-get out-abs/secret p5',
      '-get out-rel/secret p6',
      '-get secret-link p7',
      '-put payload out-abs/x',
      '-put payload out-rel/x',
      '-put payload dangling-out',
      '-put payload ../escaped',
      '-mkdir out-abs/newdir',
      '-rename inner/ok out-abs/ok',
      '-ln -s ../../../../../../etc up-link',
      `-ln -s ${rel}/secret made-link`,
      '-ln secret-link hard-out',
      '-ls out-abs',
      '-ls etc-link/',
      '-chmod 777 out-abs/secret',
      '-rm out-abs/secret',
      'cd ..',
      'cd ..',
      'pwd',
      '-cd etc-link',
      '-cd out-rel',
      'pwd',
      'cd in-link',
      'pwd',
      'get ok p8',
      'ln -s /inner/ok abs-made',
    ]);
    expect(res.code).toBe(0);
    // Nothing from outside reached the local side; only the one legitimate download did.
    expect(fs.readdirSync(local).sort()).toEqual(['p8', 'payload']);
    expect(fs.readFileSync(l('p8'), 'utf8')).toBe('ok');
    expect(res.stdout).not.toMatch(/root:x:0:0|SECRET/);
    expect(res.stdout).not.toMatch(/^\S*secret\s*$/m); // no listing of the outside directory
    expect(res.stdout).not.toMatch(/^etc-link\//m);
    // Nothing outside changed.
    expect(snapshot(outside)).toEqual(before);
    expect(fs.existsSync(path.join(path.dirname(root), 'escaped'))).toBe(false);
    // cd .. stops at the root; links out are refused, links in are followed.
    expect(res.stdout.match(/Remote working directory: .*/g)).toEqual([
      'Remote working directory: /',
      'Remote working directory: /',
      'Remote working directory: /inner',
    ]);
    expect(res.stderr).toMatch(/Permission denied/);
    // The client could not plant links leading out; an absolute target was kept inside the root.
    expect(fs.existsSync(r('up-link'))).toBe(false);
    expect(fs.existsSync(r('made-link'))).toBe(false);
    expect(fs.readlinkSync(r('inner/abs-made'))).toBe('ok');
    expect(fs.readFileSync(r('inner/abs-made'), 'utf8')).toBe('ok');
  });
});
