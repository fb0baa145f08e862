/**
 * SFTPFile.check, the check-file extension, end to end: this library's client against its own
 * two servers (SSHServer's filesystem server in the worker, and the main-thread SFTPServer),
 * against Paramiko's SFTPServer and OpenSSH's (which lacks it); Paramiko's client against ours.
 * Every digest is compared with node:crypto's over the same bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  AutoAddPolicy,
  EOFError,
  IOError,
  SFTPAttributes,
  SFTPClient,
  SFTPFile,
  SFTPHandle,
  SFTPServer,
  SFTPServerInterface,
  SSHClient,
  SSHServer,
} from '../lib';
import { CHECK_FILE, decodeCheckFileReply, encodeCheckFileArgs } from '../lib/sftp/check-file';
import { SftpClientCore } from '../lib/sftp/client-core';
import { FX } from '../lib/sftp/constants';
import { SftpServerCore } from '../lib/sftp/server-core';
import { hasPeer, itWithPeers } from './support/peers';
import { generateKey, isRoot, startParamikoServer, startSshd } from './support/servers';
import type { SshServer } from './support/servers';
import { CONNECT, loginTo } from './support/our-client';
import { MainThreadSftpServer } from './support/sftp/main-thread-server';
import { CLEAN_ENV, runProcess } from './support/run-process';
import type { ProcessRun } from './support/run-process';

const CLIENTS = path.join(__dirname, 'support', 'clients');
const PYTHON = '/usr/bin/python3';
/** Every client timeout is bounded: a blocked main thread cannot be interrupted by Jest. */
const USER = 'check-tester';
const PASSWORD = 'check-file pw';
const KiB = 1024;
const MiB = 1024 * KiB;

/** What the server should answer: `alg` over [offset, offset + length) of `data` (0: to the end), per block. */
function expected(data: Buffer, alg: string, offset = 0, length = 0, blockSize = 0): Buffer {
  const range = data.subarray(offset, length ? offset + length : data.length);
  const h = (b: Buffer) => createHash(alg).update(b).digest();
  if (!blockSize) return h(range);
  const out: Buffer[] = [];
  for (let i = 0; i < range.length; i += blockSize) out.push(h(range.subarray(i, i + blockSize)));
  return Buffer.concat(out);
}

/** The error `fn` throws (fails the test if it throws nothing). */
function thrown(fn: () => unknown): Error & { status?: number; code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, nothing was thrown');
}

function withFile<T>(sftp: SFTPClient, remote: string, mode: string, fn: (f: SFTPFile) => T): T {
  const f = sftp.open(remote, mode);
  try {
    return fn(f);
  } finally {
    f.close();
  }
}

/** Runs a process to its end (killed after 45 s, below Jest's timeout), stdin from `input`. */
const run = (cmd: string, args: string[], input = ''): Promise<ProcessRun> => runProcess(cmd, args, { input, env: CLEAN_ENV, timeoutMs: 45_000 });

type PyCase = [alg: string, offset: number, length: number, blockSize: number];
interface PyResult {
  error: string | null;
  results?: Array<{ hex?: string; error?: string }>;
}

let specCount = 0;

/** Starts paramiko_check.py with `spec` (in a file: the main-thread server test blocks this thread). */
function paramikoCheck(spec: object): Promise<ProcessRun> {
  const file = path.join(base, `check-spec-${++specCount}.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  return run(PYTHON, ['-B', path.join(CLIENTS, 'paramiko_check.py'), file]);
}

/** Parses paramiko_check.py's result line. */
function pyResult(r: ProcessRun): PyResult {
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as PyResult;
  } catch {
    throw new Error(`paramiko_check.py printed no result (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

let base: string;
/** 300 KiB + 123 bytes: more than four of the server's 64 KiB read chunks, and not a whole number of blocks. */
let data: Buffer;

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(tmpdir(), 'pts-sftp-check-')));
  fs.chmodSync(base, 0o755);
  data = randomBytes(300 * KiB + 123);
});

afterAll(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

/** A fresh directory under the suite's base holding `data` as data.bin: a server's root. */
function rootWithData(name: string): string {
  const root = path.join(base, name);
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'data.bin'), data);
  return root;
}

describe("check against SSHServer's SFTP server (the worker's)", () => {
  let root: string;
  let server: SSHServer;
  let ssh: SSHClient;
  let sftp: SFTPClient;

  beforeAll(() => {
    root = rootWithData('worker-root');
    server = SSHServer.start({ users: { [USER]: { password: PASSWORD } }, sftp: { root } });
    ssh = new SSHClient();
    ssh.setMissingHostKeyPolicy(AutoAddPolicy);
    ssh.connect(server.host, { port: server.port, username: USER, password: PASSWORD, lookForKeys: false, allowAgent: false, ...CONNECT });
    sftp = ssh.openSftp();
  });

  afterAll(() => {
    try {
      sftp?.close();
      ssh?.close();
    } finally {
      server?.close();
    }
  });

  const onData = <T>(fn: (f: SFTPFile) => T): T => withFile(sftp, '/data.bin', 'r', fn);

  it('announces check-file in VERSION with its algorithms (as Paramiko\'s server does), and answers it', () => {
    expect(sftp.extensions).toContain('check-file');
    expect(onData((f) => f.check('sha1'))).toEqual(expected(data, 'sha1'));
  });

  it('hashes the whole file, a range, and block by block, as node:crypto does', () => {
    onData((f) => {
      expect(f.check('md5')).toEqual(expected(data, 'md5'));
      expect(f.check('md5', 1000, 70_000)).toEqual(expected(data, 'md5', 1000, 70_000));
      // Blocks of 64 KiB + 1 straddle the server's read chunks; the last block is short.
      const blocks = f.check('sha256', 77, 0, 64 * KiB + 1);
      expect(blocks.length).toBe(32 * Math.ceil((data.length - 77) / (64 * KiB + 1)));
      expect(blocks).toEqual(expected(data, 'sha256', 77, 0, 64 * KiB + 1));
      expect(f.check('sha1', 0, 4096, 256)).toEqual(expected(data, 'sha1', 0, 4096, 256));
    });
  });

  it('supports md5, sha1, sha224, sha256, sha384 and sha512', () => {
    onData((f) => {
      for (const alg of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']) expect(f.check(alg, 5, 1000)).toEqual(expected(data, alg, 5, 1000));
    });
  });

  it('takes the first algorithm of a preference list that it supports', () => {
    onData((f) => {
      expect(f.check('blake2b,sha512,md5')).toEqual(expected(data, 'sha512'));
      expect(f.check(['whirlpool', 'sha224'], 0, 512)).toEqual(expected(data, 'sha224', 0, 512));
    });
  });

  it('takes its optional arguments positionally or as an options object', () => {
    onData((f) => {
      expect(f.check('sha1', { offset: 10, length: 2000, blockSize: 512 })).toEqual(expected(data, 'sha1', 10, 2000, 512));
      expect(f.check('sha1', 10, { blockSize: 1024 })).toEqual(expected(data, 'sha1', 10, 0, 1024));
      expect(thrown(() => f.check('sha1', -1))).toBeInstanceOf(TypeError);
      expect(thrown(() => f.check('sha1', 0, 0, 2 ** 32))).toBeInstanceOf(TypeError);
    });
  });

  it('refuses a list with no algorithm it supports: IOError with status FAILURE', () => {
    const e = onData((f) => thrown(() => f.check('whirlpool,crc32')));
    expect(e).toBeInstanceOf(IOError);
    expect(e.status).toBe(FX.FAILURE);
    expect(e.message).toMatch(/No supported hash algorithm in "whirlpool,crc32"/);
    expect(e.message).toContain('/data.bin');
  });

  it('refuses a block size below 256 (the draft minimum), accepts 256', () => {
    onData((f) => {
      const e = thrown(() => f.check('sha1', 0, 0, 255));
      expect(e).toBeInstanceOf(IOError);
      expect(e.status).toBe(FX.FAILURE);
      expect(e.message).toMatch(/Block size 255 is below the minimum of 256/);
      expect(f.check('sha1', 0, 1000, 256)).toEqual(expected(data, 'sha1', 0, 1000, 256));
      // The session goes on after a refusal.
      expect(f.check('md5', 3, 4)).toEqual(expected(data, 'md5', 3, 4));
    });
  });

  it('a start past the end of the file is EOFError; at the end, the hash of nothing; a range past the end covers what there is', () => {
    onData((f) => {
      const e = thrown(() => f.check('sha1', data.length + 1));
      expect(e).toBeInstanceOf(EOFError);
      expect(e.status).toBe(FX.EOF);
      expect(f.check('sha1', data.length)).toEqual(createHash('sha1').update(Buffer.alloc(0)).digest());
      expect(f.check('sha1', data.length, 0, 1024)).toEqual(Buffer.alloc(0));
      expect(f.check('md5', data.length - 100, 10_000)).toEqual(expected(data, 'md5', data.length - 100));
      expect(f.check('md5', 0, Number.MAX_SAFE_INTEGER, 100 * KiB)).toEqual(expected(data, 'md5', 0, 0, 100 * KiB));
    });
  });

  it('hashes a 40 MiB file in 1 MiB blocks, and whole', () => {
    const big = randomBytes(40 * MiB + 5);
    fs.writeFileSync(path.join(root, 'big.bin'), big);
    withFile(sftp, '/big.bin', 'r', (f) => {
      expect(f.check('sha256', 0, 0, MiB)).toEqual(expected(big, 'sha256', 0, 0, MiB));
      expect(f.check('sha1')).toEqual(expected(big, 'sha1'));
    });
  }, 60_000);

  it('refuses, before reading, a request whose digests would not fit one reply', () => {
    // Sparse: 1 GiB that takes no disk. 2^22 md5 digests of 256 bytes would be 64 MiB.
    const sparse = path.join(root, 'sparse.bin');
    fs.writeFileSync(sparse, '');
    fs.truncateSync(sparse, 1024 * MiB);
    const t0 = Date.now();
    const e = withFile(sftp, '/sparse.bin', 'r', (f) => thrown(() => f.check('md5', 0, 0, 256)));
    expect(e).toBeInstanceOf(IOError);
    expect(e.status).toBe(FX.FAILURE);
    expect(e.message).toMatch(/Too many blocks for one reply/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('hashes what pipelined writes put there; a write-only handle is refused (EACCES)', () => {
    const fresh = randomBytes(10_000);
    withFile(sftp, '/written.bin', 'w+', (f) => {
      f.setPipelined(true);
      f.write(fresh.subarray(0, 6000));
      f.write(fresh.subarray(6000));
      expect(f.check('sha1', 0, 0, 4096)).toEqual(expected(fresh, 'sha1', 0, 0, 4096));
    });
    const e = withFile(sftp, '/written.bin', 'a', (f) => thrown(() => f.check('sha1')));
    expect(e).toBeInstanceOf(IOError);
    expect(e.code).toBe('EACCES');
  });
});

describe('check-file requests on the server engine in memory', () => {
  let root: string;
  let client: SftpClientCore;
  let server: SftpServerCore;

  beforeAll(async () => {
    root = path.join(base, 'memory-root');
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, 'data.bin'), data);
    fs.mkdirSync(path.join(root, 'dir'));
    // The two engines joined back to back, each delivery on a later turn as over a channel.
    server = new SftpServerCore(root, (b) => setImmediate(() => client.receive(Buffer.from(b))));
    client = new SftpClientCore((b) => setImmediate(() => server.receive(Buffer.from(b))));
    await client.start();
  });

  afterAll(async () => {
    client?.end();
    await server?.end();
  });

  const request = (name: string, target: string | Buffer, algorithms: string, offset = 0, length = 0, blockSize = 0) =>
    client
      .extendedRequest(name, (m) => encodeCheckFileArgs(m, { target: Buffer.from(target), algorithms, offset, length, blockSize }))
      .then((m) => decodeCheckFileReply(m!));

  it('VERSION carries the pair "check-file": its algorithms, as Paramiko\'s "md5,sha1"', () => {
    expect(client.extensions.get('check-file')).toBe('md5,sha1,sha224,sha256,sha384,sha512');
  });

  it('check-file-name hashes a path, and says which algorithm it used', async () => {
    const r = await request(CHECK_FILE.NAME, '/data.bin', 'nope,sha384,sha1', 9, 99_999, 4096);
    expect(r.algorithm).toBe('sha384');
    expect(r.hashes).toEqual(expected(data, 'sha384', 9, 99_999, 4096));
    await expect(request(CHECK_FILE.NAME, '/missing', 'sha1')).rejects.toMatchObject({ status: FX.NO_SUCH_FILE, code: 'ENOENT' });
    await expect(request(CHECK_FILE.NAME, '/dir', 'sha1')).rejects.toMatchObject({ status: FX.FAILURE });
    await expect(request(CHECK_FILE.NAME, '/../../etc/passwd', 'sha1')).rejects.toBeInstanceOf(IOError);
  });

  it('check-file-handle and Paramiko\'s check-file name reply alike; a bad handle is FAILURE', async () => {
    const h = await client.open('/data.bin', 1);
    try {
      const a = await request(CHECK_FILE.HANDLE, h, 'md5', 0, 0, 1000);
      const b = await request(CHECK_FILE.LEGACY, h, 'md5', 0, 0, 1000);
      expect(a).toEqual({ algorithm: 'md5', hashes: expected(data, 'md5', 0, 0, 1000) });
      expect(b).toEqual(a);
      expect(await client.checkFile(h, 'sha1', 100)).toEqual({ algorithm: 'sha1', hashes: expected(data, 'sha1', 100) });
    } finally {
      await client.close(h);
    }
    await expect(request(CHECK_FILE.HANDLE, Buffer.from('nope'), 'sha1')).rejects.toMatchObject({ status: FX.FAILURE });
  });
});

describe('check against the main-thread SFTPServer (Paramiko API)', () => {
  let root: string;
  let server: MainThreadSftpServer;

  class DirServer extends SFTPServerInterface {
    override open(p: string, flags: number): SFTPHandle | number {
      try {
        const h = new StatHandle(flags);
        h.filename = path.join(root, this.canonicalize(p));
        h.readfile = fs.openSync(h.filename, flags);
        return h;
      } catch (e) {
        return SFTPServer.convertErrno(e as NodeJS.ErrnoException);
      }
    }
  }
  class StatHandle extends SFTPHandle {
    override stat(): SFTPAttributes | number {
      return SFTPAttributes.fromStat(fs.fstatSync(this.readfile!));
    }
  }
  beforeAll(() => {
    root = rootWithData('main-root');
    server = new MainThreadSftpServer(fs.mkdtempSync(path.join(base, 'main-key-')), DirServer);
  });

  afterAll(() => server?.close());

  itWithPeers(['paramiko'], "Paramiko's client: digests through the handle's read, refusals as IOError", async () => {
    const cases: PyCase[] = [
      ['sha1', 0, 0, 0],
      ['md5', 1000, 70_000, 0],
      ['sha256', 0, 0, 64 * KiB],
      ['crc32', 0, 0, 0],
      ['sha1', 0, 0, 100],
    ];
    const spec = { host: '127.0.0.1', port: server.port, username: 'tester', keyPath: server.clientKeyPath, path: '/data.bin', cases, timeoutMs: 30_000 };
    const client = paramikoCheck(spec);
    server.serveOnce(45_000);
    const res = pyResult(await client);
    expect(res.error).toBeNull();
    expect(res.results!.slice(0, 3)).toEqual([
      { hex: expected(data, 'sha1').toString('hex') },
      { hex: expected(data, 'md5', 1000, 70_000).toString('hex') },
      { hex: expected(data, 'sha256', 0, 0, 64 * KiB).toString('hex') },
    ]);
    expect(res.results![3].error).toMatch(/^(IOError|OSError): .*No supported hash algorithm/);
    expect(res.results![4].error).toMatch(/^(IOError|OSError): .*Block size 100 is below the minimum/);
  });
});

describe("Paramiko's client against SSHServer's SFTP server", () => {
  let root: string;
  let server: SSHServer;

  beforeAll(() => {
    root = rootWithData('pyclient-root');
    server = SSHServer.start({ users: { [USER]: { password: PASSWORD } }, sftp: { root } });
  });

  afterAll(() => server?.close());

  itWithPeers(['paramiko'], 'SFTPFile.check gets the digests node:crypto computes; refusals are IOError, a start past the end EOFError', async () => {
    const cases: PyCase[] = [
      ['sha1', 0, 0, 0],
      ['md5', 1000, 70_000, 0],
      ['sha256,sha1', 77, 0, 64 * KiB + 1],
      ['sha512', 0, 4096, 256],
      ['whirlpool', 0, 0, 0],
      ['sha1', 0, 0, 255],
      ['sha1', data.length + 10, 0, 0],
    ];
    const spec = {
      host: server.host,
      port: server.port,
      username: USER,
      password: PASSWORD,
      hostKeyFingerprints: server.hostKeys.map((k) => k.fingerprint),
      path: '/data.bin',
      cases,
      timeoutMs: 30_000,
    };
    const res = pyResult(await paramikoCheck(spec));
    expect(res.error).toBeNull();
    expect(res.results!.slice(0, 4)).toEqual([
      { hex: expected(data, 'sha1').toString('hex') },
      { hex: expected(data, 'md5', 1000, 70_000).toString('hex') },
      { hex: expected(data, 'sha256', 77, 0, 64 * KiB + 1).toString('hex') },
      { hex: expected(data, 'sha512', 0, 4096, 256).toString('hex') },
    ]);
    expect(res.results![4].error).toMatch(/^(IOError|OSError): .*No supported hash algorithm/);
    expect(res.results![5].error).toMatch(/^(IOError|OSError): .*Block size 255 is below the minimum/);
    expect(res.results![6].error).toMatch(/^EOFError: .*beyond the end of the file/);
  });
});

/** Connects this library's client to a harness server with a fresh key. */
function connectTo(server: SshServer, keyDir: string): { ssh: SSHClient; sftp: SFTPClient } {
  const key = generateKey(path.join(keyDir, 'id_ed25519'), 'ed25519');
  server.authorize(key.publicKey);
  const ssh = loginTo(server, key.path);
  return { ssh, sftp: ssh.openSftp() };
}

/** A world-readable copy of `data` in a fresh directory (the harness servers log in as the test user when we are root). */
function publish(name: string, content: Buffer): string {
  const dir = fs.mkdtempSync(path.join(base, `${name}-`));
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'data.bin');
  fs.writeFileSync(file, content, { mode: 0o644 });
  if (isRoot()) fs.chmodSync(file, 0o644);
  return file;
}

/**
 * Registers the describe block's setup: `peer`'s server started, `content()` published, our
 * client logged in over SFTP; all closed after the block. Skipped when the peer is missing.
 */
function peerSession(peer: 'paramiko' | 'sshd', start: () => Promise<SshServer>, content: () => Buffer): { sftp: SFTPClient; file: string } {
  const s = {} as { server?: SshServer; ssh?: SSHClient; sftp: SFTPClient; file: string };
  beforeAll(async () => {
    if (!hasPeer(peer)) return;
    s.file = publish(peer, content());
    s.server = await start();
    ({ ssh: s.ssh, sftp: s.sftp } = connectTo(s.server, fs.mkdtempSync(path.join(base, `${peer}key-`))));
  }, 60_000);
  afterAll(async () => {
    try {
      s.sftp?.close();
      s.ssh?.close();
    } finally {
      await s.server?.stop();
    }
  });
  return s;
}

describe("check against Paramiko's SFTPServer", () => {
  /**
   * Under 64 KiB: Paramiko's server (2.12) adds the running count to the offset after each of
   * its 64 KiB reads, so its digests of a block longer than that skip data.
   */
  const small = randomBytes(60 * KiB + 7);
  const peer = peerSession('paramiko', startParamikoServer, () => small);

  itWithPeers(['paramiko'], 'whole file, a range and blocks match node:crypto (the request falls back to the name "check-file")', () => {
    withFile(peer.sftp, peer.file, 'r', (f) => {
      expect(f.check('sha1')).toEqual(expected(small, 'sha1'));
      expect(f.check('md5', 100, 5000)).toEqual(expected(small, 'md5', 100, 5000));
      expect(f.check('sha1', 0, 0, 4096)).toEqual(expected(small, 'sha1', 0, 0, 4096));
      // Paramiko's server knows sha1 and md5 only: the list's first one it has.
      expect(f.check('sha256,md5', 10, 0, 1024)).toEqual(expected(small, 'md5', 10, 0, 1024));
    });
  });

  itWithPeers(['paramiko'], 'its refusals come back as IOError with its status and text', () => {
    withFile(peer.sftp, peer.file, 'r', (f) => {
      const alg = thrown(() => f.check('whirlpool'));
      expect(alg).toBeInstanceOf(IOError);
      expect(alg.status).toBe(FX.FAILURE);
      expect(alg.message).toMatch(/No supported hash types found/);
      const block = thrown(() => f.check('sha1', 0, 0, 100));
      expect(block).toBeInstanceOf(IOError);
      expect(block.message).toMatch(/Block size too small/);
    });
  });
});

describe("check against OpenSSH's sftp-server, which lacks check-file", () => {
  const peer = peerSession('sshd', () => startSshd(), () => data);

  itWithPeers(['sshd'], 'IOError ENOSYS with status OP_UNSUPPORTED, and the file and session stay usable', () => {
    withFile(peer.sftp, peer.file, 'r', (f) => {
      const e = thrown(() => f.check('sha1'));
      expect(e).toBeInstanceOf(IOError);
      expect(e.status).toBe(FX.OP_UNSUPPORTED);
      expect(e.code).toBe('ENOSYS');
      expect(e.message).toMatch(/does not support check-file/);
      expect(e.message).toContain(peer.file);
      expect(f.read(10)).toEqual(data.subarray(0, 10));
    });
    expect(peer.sftp.stat(peer.file).st_size).toBe(data.length);
  });
});
