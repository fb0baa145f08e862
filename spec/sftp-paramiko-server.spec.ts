/**
 * Paramiko's server-side SFTP classes (SFTPServer, SFTPServerInterface, SFTPHandle) with a
 * filesystem-backed interface written the way Paramiko's own test stub is, served on the main
 * thread to OpenSSH's sftp client and Paramiko's SFTP client.
 */
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Channel, ServerInterface, SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface, SFTP_OK } from '../lib';
import { decodeReply, encodeRequest } from '../lib/sftp/codec';
import { FXF } from '../lib/sftp/constants';
import { itWithPeers, OPENSSH_ROOT } from './support/peers';
import { MainThreadSftpServer } from './support/sftp/main-thread-server';
import { runProcess } from './support/run-process';
import type { ProcessRun } from './support/run-process';

let root: string;
let work: string;
let server: MainThreadSftpServer;

/** As Paramiko's tests/_stub_sftp.py: every path maps under `root`. */
class StubSFTPServer extends SFTPServerInterface {
  private real(path: string): string {
    return join(root, this.canonicalize(path));
  }
  override listFolder(path: string): SFTPAttributes[] | number {
    try {
      const dir = this.real(path);
      return readdirSync(dir).map((name) => SFTPAttributes.fromStat(lstatSync(join(dir, name)), name));
    } catch (e) {
      return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
    }
  }
  override stat(path: string): SFTPAttributes | number {
    try {
      return SFTPAttributes.fromStat(statSync(this.real(path)));
    } catch (e) {
      return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
    }
  }
  override lstat(path: string): SFTPAttributes | number {
    try {
      return SFTPAttributes.fromStat(lstatSync(this.real(path)));
    } catch (e) {
      return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
    }
  }
  override open(path: string, flags: number, attr: SFTPAttributes): SFTPHandle | number {
    const real = this.real(path);
    let fd: number;
    try {
      fd = openSync(real, flags, attr.st_mode ?? 0o666);
    } catch (e) {
      return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
    }
    const h = new StubHandle(flags);
    h.filename = real;
    h.readfile = fd;
    h.writefile = fd;
    return h;
  }
  override remove(path: string): number {
    return this.run(() => unlinkSync(this.real(path)));
  }
  override rename(oldpath: string, newpath: string): number {
    if (existsSync(this.real(newpath))) return 4; // SFTPv3: no overwrite
    return this.run(() => renameSync(this.real(oldpath), this.real(newpath)));
  }
  override posixRename(oldpath: string, newpath: string): number {
    return this.run(() => renameSync(this.real(oldpath), this.real(newpath)));
  }
  override mkdir(path: string, attr: SFTPAttributes): number {
    return this.run(() => mkdirSync(this.real(path), attr.st_mode ?? 0o777));
  }
  override rmdir(path: string): number {
    return this.run(() => rmdirSync(this.real(path)));
  }
  override chattr(path: string, attr: SFTPAttributes): number {
    return this.run(() => SFTPServer.setFileAttr(this.real(path), attr));
  }
  override symlink(targetPath: string, path: string): number {
    return this.run(() => symlinkSync(targetPath, this.real(path)));
  }
  override readlink(path: string): string | number {
    try {
      return readlinkSync(this.real(path));
    } catch (e) {
      return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
    }
  }
  private run(f: () => void): number {
    try {
      f();
      return SFTP_OK;
    } catch (e) {
      return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
    }
  }
}

class StubHandle extends SFTPHandle {
  override stat(): SFTPAttributes | number {
    return SFTPAttributes.fromStat(statSync(this.filename));
  }
  override chattr(attr: SFTPAttributes): number {
    SFTPServer.setFileAttr(this.filename, attr);
    return SFTP_OK;
  }
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'pts-sftpsrv-'));
  root = join(work, 'root');
  mkdirSync(root);
  server = new MainThreadSftpServer(work, StubSFTPServer);
});

afterAll(() => {
  server?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Accepts one connection, serves SFTP through the stub until the client's session ends. */
const serveOnce = (): void => server.serveOnce(60000);

const run = (cmd: string, args: string[], input = ''): Promise<ProcessRun> => runProcess(cmd, args, { input, timeoutMs: 60_000 });

describe('SFTPServer with an SFTPServerInterface (Paramiko API) on the main thread', () => {
  it('a READ asking for 4 GiB gets at most 255 KiB, as from OpenSSH sftp-server: the handle is never asked for more', () => {
    writeFileSync(join(root, 'big'), randomBytes(600_000));
    const read = jest.spyOn(SFTPHandle.prototype, 'read'); // calls through, recording the lengths asked
    try {
      const sftp = new SFTPServer({} as Channel, 'sftp', new ServerInterface(), StubSFTPServer);
      const serve = (packet: Buffer) => decodeReply((sftp as unknown as { handle(p: Buffer): Buffer }).handle(packet.subarray(4)).subarray(4));
      const opened = serve(encodeRequest.open(1, '/big', FXF.READ));
      if (opened.kind !== 'handle') throw new Error(`open: ${JSON.stringify(opened)}`);
      const got = serve(encodeRequest.read(2, opened.handle, 0, 0xffffffff));
      expect(got).toMatchObject({ kind: 'data', id: 2 });
      expect(got.kind === 'data' && got.data.length).toBe(255 * 1024);
      expect(read.mock.calls.map(([, length]) => length)).toEqual([255 * 1024]);
    } finally {
      read.mockRestore();
    }
  });

  itWithPeers(['sftp'], "OpenSSH's sftp client: put, get, ls, mkdir, rename, symlink, chmod, rm", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(join(work, 'up.bin'), data);
    writeFileSync(join(root, 'old.txt'), 'old');
    const batch = join(work, 'batch');
    writeFileSync(
      batch,
      [
        `put ${join(work, 'up.bin')} /up.bin`,
        `get /up.bin ${join(work, 'down.bin')}`,
        'mkdir /dir',
        'rename /old.txt /dir/new.txt',
        'symlink /dir/new.txt /link',
        'chmod 600 /up.bin',
        'ls -l /',
        'rm /dir/new.txt',
      ].join('\n') + '\n',
    );
    const client = run(`${OPENSSH_ROOT}/usr/bin/sftp`, [
      '-b', batch, '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'IdentityAgent=none', '-o', 'IdentitiesOnly=yes', '-i', server.clientKeyPath, '-P', String(server.port), 'tester@127.0.0.1',
    ]);
    serveOnce();
    const r = await client;
    expect(r.stderr).not.toMatch(/error|failed|denied/i);
    expect(r.code).toBe(0);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(readFileSync(join(root, 'up.bin')))).toBe(sha(data));
    expect(sha(readFileSync(join(work, 'down.bin')))).toBe(sha(data));
    expect(statSync(join(root, 'up.bin')).mode & 0o777).toBe(0o600);
    expect(readlinkSync(join(root, 'link'))).toBe('/dir/new.txt');
    expect(existsSync(join(root, 'dir', 'new.txt'))).toBe(false);
    expect(existsSync(join(root, 'old.txt'))).toBe(false);
    expect(r.stdout).toMatch(/up\.bin/);
  });

  itWithPeers(['paramiko'], "Paramiko's SFTP client: putfo/getfo, listdir_attr, stat, rename refusing to overwrite, posix_rename", async () => {
    writeFileSync(join(root, 'a.txt'), 'A');
    writeFileSync(join(root, 'b.txt'), 'B');
    const script = [
      'import io, json, sys, paramiko',
      't = paramiko.Transport(("127.0.0.1", int(sys.argv[1])))',
      't.connect(username="tester", pkey=paramiko.Ed25519Key.from_private_key_file(sys.argv[2]))',
      's = paramiko.SFTPClient.from_transport(t)',
      'out = {}',
      's.putfo(io.BytesIO(b"x" * 100000), "/p.bin")',
      'buf = io.BytesIO(); s.getfo("/p.bin", buf); out["got"] = len(buf.getvalue())',
      'out["names"] = sorted(a.filename for a in s.listdir_attr("/"))',
      'out["size"] = s.stat("/p.bin").st_size',
      'try:\n    s.rename("/a.txt", "/b.txt"); out["rename"] = "overwrote"\nexcept IOError as e:\n    out["rename"] = "refused"',
      's.posix_rename("/a.txt", "/b.txt")',
      'out["b"] = s.open("/b.txt").read().decode()',
      'try:\n    s.stat("/missing"); out["missing"] = "found"\nexcept IOError as e:\n    out["missing"] = e.errno',
      's.close(); t.close()',
      'print(json.dumps(out))',
    ].join('\n');
    const client = run('/usr/bin/python3', ['-c', script, String(server.port), server.clientKeyPath]);
    serveOnce();
    const r = await client;
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
    expect(out.names).toEqual(expect.arrayContaining(['a.txt', 'b.txt', 'p.bin']));
    expect({ ...out, names: undefined }).toEqual({ got: 100000, names: undefined, size: 100000, rename: 'refused', b: 'A', missing: 2 });
    expect(readFileSync(join(root, 'b.txt'), 'utf8')).toBe('A');
    expect(readFileSync(join(root, 'p.bin')).length).toBe(100000);
  });
});

