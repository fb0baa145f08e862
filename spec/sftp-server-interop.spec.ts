/**
 * The 'sftp' subsystem of SSHServer (lib/worker/sftp/server-channel.ts) against real SFTP
 * clients over SSH: OpenSSH's sftp in batch mode, PuTTY's psftp and pscp, Paramiko's SFTPClient
 * and AsyncSSH's client, with every result compared with the filesystem under the root. Then the jail seen through
 * SSH (a sentinel directory next to the root must not change), the read-only and disabled
 * subsystem, and hostile SFTP streams from this library's own client: each closes the channel
 * with a log line, the server keeps its memory bounded and goes on serving.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AutoAddPolicy, Channel, Ed25519Key, SSHClient, SSHServer } from '../lib';
import type { SSHServerOptions } from '../lib/api/ssh-server';
import { DEFAULT_WINDOW_SIZE, SFTP_WINDOW_SIZE } from '../lib/transport/channel';
import { itWithPeers, OPENSSH_ROOT, peerPath } from './support/peers';
import { CLEAN_ENV, runProcess } from './support/run-process';
import { startReadyProcess } from './support/ready-process';
import type { ProcessRun } from './support/run-process';

const USER = 'sftp-tester';
const PASSWORD = 'sftp interop pw';
const CLIENTS = path.join(__dirname, 'support', 'clients');
const PYTHON = '/usr/bin/python3';
/** Below Jest's 60 s test timeout, so a hung client is killed and reported by its test. */
const TIMEOUT_MS = 45_000;

let base: string;
/** The server's root, a sentinel directory next to it, and the key clients log in with. */
let root: string;
let sentinel: string;
let keyPath: string;
let key: Ed25519Key;
let server: SSHServer;
const extraServers: SSHServer[] = [];

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const r = (...p: string[]): string => path.join(root, ...p);

/** Every entry under a directory with its content hash, link target or type, for "nothing changed". */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const st = fs.lstatSync(full);
      const rel = path.relative(dir, full);
      if (e.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(full)}`;
      else if (e.isDirectory()) {
        out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`;
        walk(full);
      } else out[rel] = `${sha256(fs.readFileSync(full))} ${(st.mode & 0o7777).toString(8)}`;
    }
  };
  walk(dir);
  return out;
}

/** A fresh local directory for one client run. */
const localDir = (): string => fs.mkdtempSync(path.join(base, 'local-'));

function startServer(options: Partial<SSHServerOptions>): SSHServer {
  const s = SSHServer.start({ users: { [USER]: { password: PASSWORD, authorizedKeys: [key] } }, ...options });
  extraServers.push(s);
  return s;
}

/** Runs a client to its end (killed after TIMEOUT_MS), stdin from `input`. */
const run = (cmd: string, args: string[], options: { input?: string; cwd?: string } = {}): Promise<ProcessRun> =>
  runProcess(cmd, args, { input: options.input, cwd: options.cwd ?? base, env: CLEAN_ENV, timeoutMs: TIMEOUT_MS });

let batchCount = 0;

/**
 * OpenSSH's `sftp -b` against a server: key auth, the server's own host keys in known_hosts
 * (StrictHostKeyChecking yes), nothing from ~/.ssh or an agent. Run in `cwd` (the local side).
 * `port`: where it connects, when a relay stands in front of the server.
 */
function sftpBatch(target: SSHServer, lines: string[], cwd: string, port = target.port): Promise<ProcessRun> {
  const n = ++batchCount;
  const batch = path.join(base, `batch-${n}`);
  const knownHosts = path.join(base, `known_hosts-${n}`);
  fs.writeFileSync(batch, lines.join('\n') + '\n');
  fs.writeFileSync(knownHosts, target.knownHosts().split(`:${target.port}]`).join(`:${port}]`).split(`]:${target.port} `).join(`]:${port} `));
  const args = ['-b', batch, '-P', String(port), '-F', '/dev/null'];
  for (const o of [
    'BatchMode=yes',
    'StrictHostKeyChecking=yes',
    `UserKnownHostsFile=${knownHosts}`,
    'GlobalKnownHostsFile=/dev/null',
    'IdentitiesOnly=yes',
    'IdentityAgent=none',
    'ControlPath=none',
    'LogLevel=ERROR',
    'ConnectTimeout=10',
  ]) {
    args.push('-o', o);
  }
  args.push('-i', keyPath, `${USER}@${target.host}`);
  return run(`${OPENSSH_ROOT}/usr/bin/sftp`, args, { cwd });
}

/** A Python client script: the JSON spec on stdin, the JSON result on its last stdout line. */
async function python<T>(script: string, spec: object): Promise<T & { error: string | null }> {
  const res = await run(PYTHON, ['-B', path.join(CLIENTS, script)], { input: JSON.stringify(spec) });
  const last = res.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T & { error: string | null };
  } catch {
    throw new Error(`${script} printed no result (exit ${res.code}): ${res.stdout}\n${res.stderr}`);
  }
}

/** The server's log lines since `from`, once one matches (or after 5 s). */
async function logAfter(s: SSHServer, from: number, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const text = s.logSince(from).lines.join('\n');
    if (pattern.test(text) || Date.now() > deadline) return text;
    await new Promise((res) => setTimeout(res, 20));
  }
}

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(tmpdir(), 'pts-sftp-interop-')));
  root = path.join(base, 'root');
  sentinel = path.join(base, 'sentinel');
  fs.mkdirSync(root);
  fs.mkdirSync(sentinel);
  fs.writeFileSync(path.join(sentinel, 'secret'), 'SENTINEL SECRET\n');
  fs.mkdirSync(path.join(sentinel, 'dir'));
  key = Ed25519Key.generate();
  keyPath = path.join(base, 'id_ed25519');
  key.writePrivateKeyFile(keyPath);
  server = SSHServer.start({ users: { [USER]: { password: PASSWORD, authorizedKeys: [key] } }, sftp: { root } });
});

afterAll(() => {
  server?.close();
  for (const s of extraServers.splice(0)) s.close();
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('OpenSSH sftp against SSHServer', () => {
  itWithPeers(['sftp'], 'a 32 MiB file goes up and comes back exactly', async () => {
    const local = localDir();
    const data = randomBytes(32 << 20);
    fs.writeFileSync(path.join(local, 'big.bin'), data);
    const from = server.logSince(0).next;
    const res = await sftpBatch(server, ['put big.bin', 'get big.bin back.bin'], local);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(sha256(fs.readFileSync(r('big.bin')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(path.join(local, 'back.bin')))).toBe(sha256(data));
    const log = await logAfter(server, from, /sftp: session ended/);
    expect(log).toMatch(new RegExp(`${USER}: sftp: session started \\(root ${root}\\)`));
    expect(log).toMatch(/sftp: session ended \(client EOF\): \d+ bytes in, \d+ bytes out/);
    // OpenSSH's client returns window in small steps, and its socket's peer is this machine: the
    // download is paced from the start, 256 KiB in flight or a little more (see
    // lib/transport/flight-pacer.ts), however slow the loaded machine's round trips. A first
    // adjust later than 250 ms (a very loaded machine) releases the whole 2 MiB window once.
    const end = /bytes out \(([^)]*)\)/.exec(log);
    expect(end).not.toBeNull();
    const paced = /^paced: at most (\d+) in flight$/.exec(end![1]);
    expect([end![1], paced !== null]).toEqual([end![1], true]);
    expect(Number(paced![1])).toBeGreaterThan(0);
    expect(Number(paced![1])).toBeLessThanOrEqual(2 << 20);
    fs.rmSync(r('big.bin'));
  });

  itWithPeers(['sftp'], 'through a local tunnel to a distant client (a relay adding 10 ms each way), a download is paced only until round trips show the remote path', async () => {
    const relay = await startReadyProcess('delay-relay.js', ['--target', `127.0.0.1:${server.port}`, '--delay', '10']);
    try {
      const local = localDir();
      const data = randomBytes(16 << 20);
      fs.writeFileSync(r('far.bin'), data);
      const from = server.logSince(0).next;
      const res = await sftpBatch(server, ['get far.bin'], local, relay.port);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(sha256(fs.readFileSync(path.join(local, 'far.bin')))).toBe(sha256(data));
      // The socket's peer is the relay on this machine: held to the loopback cap at first, as a
      // local OpenSSH client is, then given the whole window once 64 round trips took 20 ms.
      const log = await logAfter(server, from, /sftp: session ended/);
      const end = /bytes out \((.*)\), [\d.]+ s/.exec(log);
      expect(end?.[1]).toMatch(/^paced: at most \d+ in flight until round trips showed a remote path \(quickest \d+\.\d+ ms of \d+\)$/);
      expect(Number(/quickest (\S+) ms/.exec(end![1])![1])).toBeGreaterThanOrEqual(20);
      // OpenSSH's client answered the keepalive probes, 20 ms each: the window was widened for uploads.
      expect(log).toMatch(/sftp: round trips of \d+\.\d ms or more: window widened to 16 MiB/);
      fs.rmSync(r('far.bin'));
    } finally {
      await relay.stop();
    }
  });

  itWithPeers(['ssh'], "on a near path the session keeps its window: OpenSSH's ssh gets no adjust at the subsystem's start", async () => {
    const knownHosts = path.join(base, 'known_hosts-window');
    fs.writeFileSync(knownHosts, server.knownHosts());
    const args = ['-F', '/dev/null', '-p', String(server.port), '-vvv', '-i', keyPath, '-s'];
    for (const o of ['BatchMode=yes', 'StrictHostKeyChecking=yes', `UserKnownHostsFile=${knownHosts}`, 'GlobalKnownHostsFile=/dev/null', 'IdentitiesOnly=yes', 'IdentityAgent=none', 'ControlPath=none']) {
      args.push('-o', o);
    }
    // No input: the client's EOF ends the session once it has started.
    const res = await run(`${OPENSSH_ROOT}/usr/bin/ssh`, [...args, `${USER}@${server.host}`, 'sftp'], { input: '' });
    expect(res.stderr).toMatch(/subsystem request accepted on channel 0/);
    // The keepalive probes that measure the path are answered (ssh says it got a request).
    expect(res.stderr).not.toMatch(new RegExp(`channel 0: rcvd adjust ${SFTP_WINDOW_SIZE - DEFAULT_WINDOW_SIZE}\\b`));
  });

  /** Our client's view of the server's window for an SFTP session, `ms` after the subsystem started (the path measured meanwhile). */
  function sftpWindowAfter(port: number, ms: number): number[] {
    const c = new SSHClient();
    c.setMissingHostKeyPolicy(new AutoAddPolicy());
    try {
      c.connect(server.host, { port, username: USER, password: PASSWORD, allowAgent: false, lookForKeys: false, timeout: 10 });
      const ch = c.getTransport()!.openSession();
      const before = ch.outWindowSize;
      ch.invokeSubsystem('sftp');
      const waited = new Int32Array(new SharedArrayBuffer(4));
      let after = ch.outWindowSize;
      for (const deadline = Date.now() + ms; after !== SFTP_WINDOW_SIZE && Date.now() < deadline; after = ch.outWindowSize) Atomics.wait(waited, 0, 0, 20);
      return [before, after];
    } finally {
      c.close();
    }
  }

  it('our client, near: the window stays as the session opened it', () => {
    const from = server.logSince(0).next;
    expect(sftpWindowAfter(server.port, 300)).toEqual([DEFAULT_WINDOW_SIZE, DEFAULT_WINDOW_SIZE]);
    expect(server.logSince(from).lines.join('\n')).not.toMatch(/window widened/);
  });

  it('our client through a relay adding 10 ms each way: three round trips of 20 ms widen the window to SFTP_WINDOW_SIZE', async () => {
    const relay = await startReadyProcess('delay-relay.js', ['--target', `127.0.0.1:${server.port}`, '--delay', '10']);
    try {
      const from = server.logSince(0).next;
      expect(sftpWindowAfter(relay.port, 5000)).toEqual([DEFAULT_WINDOW_SIZE, SFTP_WINDOW_SIZE]);
      const widened = /sftp: round trips of (\S+) ms or more: window widened to 16 MiB/.exec(server.logSince(from).lines.join('\n'));
      expect(widened).not.toBeNull();
      expect(Number(widened![1])).toBeGreaterThanOrEqual(20);
    } finally {
      await relay.stop();
    }
  });

  itWithPeers(['ssh'], "OpenSSH's scp (SFTP underneath since OpenSSH 9.0) copies both ways", async () => {
    const local = localDir();
    const data = randomBytes(3 << 20);
    fs.writeFileSync(path.join(local, 'scp.bin'), data);
    const knownHosts = path.join(base, 'known_hosts-scp');
    fs.writeFileSync(knownHosts, server.knownHosts());
    const opts = ['-P', String(server.port), '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
      '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'LogLevel=ERROR', '-i', keyPath];
    const up = await run(`${OPENSSH_ROOT}/usr/bin/scp`, [...opts, 'scp.bin', `${USER}@${server.host}:/scp-up.bin`], { cwd: local });
    expect([up.code, up.stderr]).toEqual([0, '']);
    const down = await run(`${OPENSSH_ROOT}/usr/bin/scp`, [...opts, `${USER}@${server.host}:/scp-up.bin`, 'scp-down.bin'], { cwd: local });
    expect([down.code, down.stderr]).toEqual([0, '']);
    expect(sha256(fs.readFileSync(r('scp-up.bin')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(path.join(local, 'scp-down.bin')))).toBe(sha256(data));
    fs.rmSync(r('scp-up.bin'));
  });

  itWithPeers(['sftp'], 'an empty file, ls, mkdir, rmdir, rename, rm, chmod, ln -s and df agree with the filesystem', async () => {
    const local = localDir();
    fs.writeFileSync(path.join(local, 'empty'), '');
    fs.writeFileSync(path.join(local, 'f.txt'), 'some text\n');
    fs.mkdirSync(r('ops'));
    fs.writeFileSync(r('ops', 'old-name'), 'renamed\n');
    fs.writeFileSync(r('ops', 'doomed'), 'x');
    const res = await sftpBatch(
      server,
      [
        'cd ops',
        'pwd',
        'put empty',
        'get empty empty-back',
        'put f.txt',
        'mkdir made',
        'mkdir made-then-gone',
        'rmdir made-then-gone',
        'rename old-name made/new-name',
        'rm doomed',
        'chmod 640 f.txt',
        'ln -s made/new-name link',
        'ls -1a',
        'ls -l',
        'ls -l f.tx?',
        'df',
      ],
      local,
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Remote working directory: \/ops\n/);
    expect(fs.statSync(r('ops', 'empty')).size).toBe(0);
    expect(fs.statSync(path.join(local, 'empty-back')).size).toBe(0);
    expect(fs.readFileSync(r('ops', 'f.txt'), 'utf8')).toBe('some text\n');
    expect(fs.statSync(r('ops', 'made')).isDirectory()).toBe(true);
    expect(fs.existsSync(r('ops', 'made-then-gone'))).toBe(false);
    expect(fs.existsSync(r('ops', 'old-name'))).toBe(false);
    expect(fs.readFileSync(r('ops', 'made', 'new-name'), 'utf8')).toBe('renamed\n');
    expect(fs.existsSync(r('ops', 'doomed'))).toBe(false);
    expect(fs.statSync(r('ops', 'f.txt')).mode & 0o777).toBe(0o640);
    expect(fs.readlinkSync(r('ops', 'link'))).toBe('made/new-name');
    // ls -1a lists exactly what is there (the client sorts by name).
    const listed = res.stdout.split('sftp> ls -1a\n')[1].split('sftp> ')[0].trim().split('\n').sort();
    expect(listed).toEqual(['.', '..', ...fs.readdirSync(r('ops'))].sort());
    // ls -l shows the types and modes lstat sees.
    expect(res.stdout).toMatch(/^lrwxrwxrwx .* link$/m);
    expect(res.stdout).toMatch(/^-rw-r----- .* f\.txt$/m);
    expect(res.stdout).toMatch(/^drwx.* made$/m);
    // Owner and group by name, as OpenSSH's sftp-server gives them: in the long names, and for
    // a glob (which the client lists from stat results) through users-groups-by-id@openssh.com.
    const [user, group] = [userInfo().username, execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim()];
    const globbed = res.stdout.split('sftp> ls -l f.tx?\n')[1].split('sftp> ')[0];
    expect(globbed).toMatch(new RegExp(`^-rw-r----- +\\S+ +${user} +${group} +10 .* f\\.txt\\n$`));
    expect(res.stdout).toMatch(new RegExp(`^-rw-r----- +\\S+ +${user} +${group} +10 .* f\\.txt$`, 'm'));
    // df (statvfs@openssh.com): the size in KiB as statfs gives it for the root's filesystem.
    const df = /Size\s+Used\s+Avail\s+\(root\)\s+%Capacity\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(res.stdout);
    expect(df).not.toBeNull();
    const st = fs.statfsSync(root);
    expect(Number(df![1])).toBe(Math.floor((st.blocks * st.bsize) / 1024));
  });
});

/** PuTTY's common options: batch (never a prompt), password from a file, our host keys only. */
function puttyArgs(target: SSHServer): string[] {
  const pw = path.join(base, 'putty-password');
  fs.writeFileSync(pw, PASSWORD, { mode: 0o600 });
  const args = ['-batch', '-noagent', '-P', String(target.port), '-l', USER, '-pwfile', pw];
  for (const k of target.hostKeys) args.push('-hostkey', k.fingerprint);
  return args;
}

/**
 * A PuTTY program in `cwd` (PuTTY keeps its host key cache in ~/.putty: a HOME of its own);
 * stderr without the lines it prints on every login (the user name, and the frame around our
 * server's keyboard-interactive prompts).
 */
async function puttyRun(cmd: string, args: string[], cwd: string): Promise<ProcessRun> {
  const res = await runProcess(cmd, args, { cwd, env: { ...CLEAN_ENV, HOME: base }, timeoutMs: TIMEOUT_MS });
  const noise = /^(Using username ".*"\.|Keyboard-interactive authentication prompts from server:|End of keyboard-interactive prompts from server)$/;
  return { ...res, stderr: res.stderr.split('\n').filter((l) => !noise.test(l)).join('\n') };
}

describe("PuTTY's psftp and pscp against SSHServer", () => {
  itWithPeers(['psftp'], 'psftp: put and get (and reput/reget resuming), ls, mkdir, mv, rm, chmod, rmdir agree with the filesystem', async () => {
    const local = localDir();
    const data = randomBytes(8 << 20);
    fs.writeFileSync(path.join(local, 'big.bin'), data);
    fs.writeFileSync(path.join(local, 'half.bin'), data);
    fs.mkdirSync(r('pu'));
    fs.writeFileSync(r('pu', 'doomed'), 'x');
    // A partial upload and a partial download, for reput and reget to finish.
    fs.writeFileSync(r('pu', 'half.bin'), data.subarray(0, 3 << 20));
    const batch = path.join(base, 'psftp-batch');
    fs.writeFileSync(
      batch,
      [
        'cd /pu',
        'pwd',
        'put big.bin',
        'get big.bin back.bin',
        'reput half.bin',
        'mkdir made',
        'mkdir gone',
        'rmdir gone',
        'mv big.bin made/moved.bin',
        'rm doomed',
        'chmod 640 half.bin',
        'ls',
        '',
      ].join('\n'),
    );
    const res = await puttyRun(peerPath('psftp'), [...puttyArgs(server), '-bc', '-b', batch, server.host], local);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Remote directory is \/pu\n/);
    expect(sha256(fs.readFileSync(r('pu', 'made', 'moved.bin')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(path.join(local, 'back.bin')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(r('pu', 'half.bin')))).toBe(sha256(data));
    expect(res.stdout).toMatch(/reput half\.bin\n.*[Rr]estarting at file position 3145728/);
    expect(fs.statSync(r('pu', 'made')).isDirectory()).toBe(true);
    expect(fs.existsSync(r('pu', 'gone'))).toBe(false);
    expect(fs.existsSync(r('pu', 'doomed'))).toBe(false);
    expect(fs.statSync(r('pu', 'half.bin')).mode & 0o777).toBe(0o640);
    // ls: the long names our server sends, as lstat sees the entries.
    expect(res.stdout).toMatch(/^-rw-r----- .* half\.bin$/m);
    expect(res.stdout).toMatch(/^drwx.* made$/m);

    // reget: a partial local copy is completed from where it stops.
    fs.writeFileSync(path.join(local, 'part.bin'), data.subarray(0, 5 << 20));
    fs.writeFileSync(batch, 'reget /pu/half.bin part.bin\n');
    const again = await puttyRun(peerPath('psftp'), [...puttyArgs(server), '-b', batch, server.host], local);
    expect([again.code, again.stderr]).toEqual([0, '']);
    expect(sha256(fs.readFileSync(path.join(local, 'part.bin')))).toBe(sha256(data));
    fs.rmSync(r('pu'), { recursive: true });
  });

  itWithPeers(['pscp'], 'pscp over SFTP (its default) and over SCP (-scp, served by `scp: true`), both ways, recursive', async () => {
    const scpServer = startServer({ sftp: { root }, scp: true });
    const local = localDir();
    const data = randomBytes(2 << 20);
    fs.mkdirSync(path.join(local, 'tree', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(local, 'tree', 'a.bin'), data);
    fs.writeFileSync(path.join(local, 'tree', 'sub', 'b.txt'), 'bee\n');
    // Into existing directories: pscp 0.78 -r -sftp to a name that does not exist yet creates it,
    // then fails to open the files in it, against OpenSSH's sftp-server as well.
    for (const protocol of ['-sftp', '-scp']) {
      const dest = `pscp${protocol}`;
      fs.mkdirSync(r(dest));
      const up = await puttyRun(peerPath('pscp'), [...puttyArgs(scpServer), protocol, '-r', 'tree', `${scpServer.host}:/${dest}`], local);
      expect({ protocol, code: up.code, stderr: up.stderr }).toEqual({ protocol, code: 0, stderr: '' });
      expect(sha256(fs.readFileSync(r(dest, 'tree', 'a.bin')))).toBe(sha256(data));
      expect(fs.readFileSync(r(dest, 'tree', 'sub', 'b.txt'), 'utf8')).toBe('bee\n');
      const back = path.join(local, `back${protocol}`);
      fs.mkdirSync(back);
      const down = await puttyRun(peerPath('pscp'), [...puttyArgs(scpServer), protocol, '-r', `${scpServer.host}:/${dest}/tree`, back], local);
      expect({ protocol, code: down.code, stderr: down.stderr }).toEqual({ protocol, code: 0, stderr: '' });
      expect(sha256(fs.readFileSync(path.join(back, 'tree', 'a.bin')))).toBe(sha256(data));
      expect(fs.readFileSync(path.join(back, 'tree', 'sub', 'b.txt'), 'utf8')).toBe('bee\n');
      fs.rmSync(r(dest), { recursive: true });
    }
  });
});

describe('Python SFTP clients against SSHServer', () => {
  const spec = (local: string, dir: string) => ({
    host: server.host,
    port: server.port,
    username: USER,
    password: PASSWORD,
    hostKeyFingerprints: server.hostKeys.map((k) => k.fingerprint),
    local,
    dir,
    timeoutMs: 60000,
  });

  itWithPeers(['paramiko'], 'Paramiko: put, get with prefetch, stat, rename refuses to overwrite, posix_rename replaces, mkdir, listdir_attr, remove', async () => {
    const local = localDir();
    const data = randomBytes(8 << 20);
    fs.writeFileSync(path.join(local, 'src.bin'), data);
    const res = await python<{
      prefetchSha256: string;
      stat: { size: number; mode: number };
      renameError: string | null;
      listdir: Array<[string, number, boolean]>;
      goneAfterRemove: boolean;
      cwd: string;
    }>('paramiko_sftp.py', spec(local, '/pm'));
    expect(res.error).toBeNull();
    expect(sha256(fs.readFileSync(path.join(local, 'down.bin')))).toBe(sha256(data));
    expect(res.prefetchSha256).toBe(sha256(data));
    expect(res.stat.size).toBe(data.length);
    expect(res.stat.mode).toBe(fs.statSync(r('pm', 'other')).mode);
    // SFTP v3 rename refused, the target kept until posix-rename replaced it.
    expect(res.renameError).toMatch(/Failure|exists/i);
    expect(sha256(fs.readFileSync(r('pm', 'other')))).toBe(sha256(data));
    expect(fs.existsSync(r('pm', 'up.bin'))).toBe(false);
    expect(fs.statSync(r('pm')).mode & 0o777).toBe(0o750 & ~process.umask());
    expect(res.listdir).toEqual([
      ['other', data.length, false],
      ['sub', fs.statSync(r('pm', 'sub')).size, true],
    ]);
    expect(res.goneAfterRemove).toBe(false);
    expect(fs.existsSync(r('pm', 'gone'))).toBe(false);
    expect(res.cwd).toBe('/');
  });

  itWithPeers(['asyncssh'], 'AsyncSSH: put, get, listdir, stat, exists, remove', async () => {
    const local = localDir();
    const data = randomBytes(4 << 20);
    fs.writeFileSync(path.join(local, 'src.bin'), data);
    fs.chmodSync(path.join(local, 'src.bin'), 0o640);
    const res = await python<{
      listdir: string[];
      stat: { size: number; permissions: number; type: number };
      existsBefore: boolean;
      existsAfter: boolean;
      missingExists: boolean;
    }>('asyncssh_sftp.py', spec(local, '/as'));
    expect(res.error).toBeNull();
    expect(sha256(fs.readFileSync(path.join(local, 'down.bin')))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(r('as', 'kept.bin')))).toBe(sha256(data));
    expect(res.listdir).toEqual(['.', '..', 'kept.bin', 'up.bin']);
    expect(res.stat.size).toBe(data.length);
    expect(res.stat.type).toBe(1); // FILEXFER_TYPE_REGULAR, from the mode bits
    expect([res.existsBefore, res.existsAfter, res.missingExists]).toEqual([true, false, false]);
    expect(fs.readdirSync(r('as'))).toEqual(['kept.bin']);
  });
});

describe('the SFTP root seen through SSH', () => {
  itWithPeers(['sftp'], 'nothing outside the root is read or written: .., absolute paths, cd .. past the root, symlinks in and out', async () => {
    const local = localDir();
    fs.writeFileSync(path.join(local, 'payload'), 'PAYLOAD');
    fs.mkdirSync(r('jail'));
    fs.writeFileSync(r('jail', 'ok'), 'ok');
    // Links planted from outside the SFTP session: out of the root (absolute, relative,
    // dangling), and one that stays in.
    fs.symlinkSync(sentinel, r('out-abs'));
    fs.symlinkSync(path.relative(root, sentinel), r('out-rel'));
    fs.symlinkSync(path.join(sentinel, 'secret'), r('secret-link'));
    fs.symlinkSync(path.join(sentinel, 'planted'), r('dangling-out'));
    fs.symlinkSync('jail', r('in-link'));
    const before = snapshot(sentinel);
    const rel = path.relative(root, sentinel); // ../sentinel
    const res = await sftpBatch(
      server,
      [
        '-get ../../etc/passwd p1',
        '-get ../sentinel/secret p2',
        `-get ${sentinel}/secret p3`,
        '-get out-abs/secret p4',
        '-get out-rel/secret p5',
        '-get secret-link p6',
        '-put payload out-abs/written',
        '-put payload out-rel/written',
        '-put payload dangling-out',
        '-put payload ../escaped',
        '-mkdir out-abs/newdir',
        '-rename jail/ok out-rel/ok',
        '-chmod 777 out-abs/secret',
        '-rm out-abs/secret',
        '-rmdir out-abs/dir',
        '-ln -s ../../../../.. up-link',
        `-ln -s ${rel}/secret made-link`,
        '-ln secret-link hard-out',
        '-ls out-abs',
        'cd ..',
        'cd ..',
        'pwd',
        '-cd out-abs',
        'pwd',
        'cd in-link',
        'pwd',
        'get ok p7',
      ],
      local,
    );
    expect(res.code).toBe(0);
    // Only the legitimate download reached the local side; no byte of the sentinel came back.
    expect(fs.readdirSync(local).sort()).toEqual(['p7', 'payload']);
    expect(res.stdout).not.toMatch(/SENTINEL|root:x:0:0/);
    expect(res.stdout).not.toMatch(/^\S*secret\s*$/m);
    expect(res.stderr).toMatch(/Permission denied/);
    // Nothing next to the root changed, nothing was created beside it.
    expect(snapshot(sentinel)).toEqual(before);
    expect(fs.existsSync(path.join(base, 'escaped'))).toBe(false);
    expect(fs.readFileSync(r('jail', 'ok'), 'utf8')).toBe('ok');
    expect(fs.existsSync(r('up-link'))).toBe(false);
    expect(fs.existsSync(r('made-link'))).toBe(false);
    // A hard link to a link is a link (link(2) does not follow): the same way out, refused the same.
    if (fs.existsSync(r('hard-out'))) expect(fs.lstatSync(r('hard-out')).ino).toBe(fs.lstatSync(r('secret-link')).ino);
    // cd .. stops at the root; a link out is refused, a link in is followed.
    expect(res.stdout.match(/Remote working directory: .*/g)).toEqual([
      'Remote working directory: /',
      'Remote working directory: /',
      'Remote working directory: /jail',
    ]);
  });
});

describe('SSHServer sftp option', () => {
  itWithPeers(['sftp'], 'readOnly: reads work, every change is refused with Permission denied', async () => {
    const ro = startServer({ sftp: { root, readOnly: true } });
    const local = localDir();
    fs.writeFileSync(path.join(local, 'up'), 'up');
    fs.mkdirSync(r('ro'));
    fs.writeFileSync(r('ro', 'file'), 'read me\n');
    const before = snapshot(r('ro'));
    const res = await sftpBatch(
      ro,
      ['cd ro', 'get file', '-put up', '-mkdir d', '-rm file', '-rename file other', '-chmod 600 file', '-ln -s file l', 'ls'],
      local,
    );
    expect(res.code).toBe(0);
    expect(fs.readFileSync(path.join(local, 'file'), 'utf8')).toBe('read me\n');
    expect(res.stderr.match(/Permission denied/g)?.length).toBeGreaterThanOrEqual(6);
    expect(snapshot(r('ro'))).toEqual(before);
    expect(ro.log().join('\n')).toMatch(/sftp: session started \(root .*, read-only\)/);
  });

  itWithPeers(['sftp'], 'false refuses the subsystem; with exec: false it is off unless given', async () => {
    const local = localDir();
    const off = startServer({ sftp: false });
    const noExec = startServer({ exec: false });
    const noExecButSftp = startServer({ exec: false, sftp: { root } });
    for (const s of [off, noExec]) {
      const res = await sftpBatch(s, ['pwd'], local);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/subsystem request failed|Connection closed/);
      expect(res.stdout).not.toMatch(/Remote working directory/);
      expect(await logAfter(s, 0, /refused/)).toMatch(new RegExp(`${USER}: subsystem "sftp" refused`));
    }
    const ok = await sftpBatch(noExecButSftp, ['pwd'], local);
    expect([ok.code, ok.stdout]).toEqual([0, 'sftp> pwd\nRemote working directory: /\n']);
  });

  itWithPeers(['sftp'], 'a root removed after start: the subsystem is refused, logged, and the server goes on', async () => {
    const gone = fs.mkdtempSync(path.join(base, 'gone-'));
    const s = startServer({ sftp: { root: gone } });
    fs.rmdirSync(gone);
    const res = await sftpBatch(s, ['pwd'], localDir());
    expect(res.code).not.toBe(0);
    expect(await logAfter(s, 0, /sftp: refused/)).toMatch(/sftp: refused: ENOENT/);
    fs.mkdirSync(gone);
    const again = await sftpBatch(s, ['pwd'], localDir());
    expect([again.code, again.stdout]).toEqual([0, 'sftp> pwd\nRemote working directory: /\n']);
  });

  it('refuses to start with a root that is not a directory', () => {
    expect(() => startServer({ sftp: { root: path.join(base, 'no-such-dir') } })).toThrow(/SFTP root .*no-such-dir/);
    fs.writeFileSync(path.join(base, 'a-file'), '');
    expect(() => startServer({ sftp: { root: path.join(base, 'a-file') } })).toThrow(/not a directory/);
  });
});

// ---- hostile SFTP streams, from this library's own client ----

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const str = (s: string | Buffer): Buffer => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
/** One SFTP packet: length, type, body. */
const packet = (type: number, ...body: Buffer[]): Buffer => {
  const payload = Buffer.concat([Buffer.from([type]), ...body]);
  return Buffer.concat([u32(payload.length), payload]);
};
const FXP = { INIT: 1, OPEN: 3, READ: 5, VERSION: 2, STATUS: 101, HANDLE: 102, DATA: 103 } as const;
const INIT = packet(FXP.INIT, u32(3));

/** Splits SFTP packets out of a byte stream: [type, body] each; a cut-off tail is dropped. */
function packets(bytes: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let off = 0;
  while (off + 4 <= bytes.length) {
    const len = bytes.readUInt32BE(off);
    if (off + 4 + len > bytes.length) break;
    out.push([bytes[off + 4], bytes.subarray(off + 5, off + 4 + len)]);
    off += 4 + len;
  }
  return out;
}

/** Logs in with this library's client and opens the sftp subsystem on a session channel. */
function openSubsystem(target: SSHServer): { client: SSHClient; chan: Channel } {
  const client = new SSHClient();
  client.setMissingHostKeyPolicy(new AutoAddPolicy());
  client.connect(target.host, { port: target.port, username: USER, password: PASSWORD, allowAgent: false, lookForKeys: false, timeout: 10 });
  const chan = client.getTransport()!.openSession();
  chan.settimeout(20);
  chan.invokeSubsystem('sftp');
  return { client, chan };
}

/** Sends `bytes` on a fresh sftp channel; returns what came back until the close, and the exit status. */
function hostile(bytes: Buffer): { reply: Array<[number, Buffer]>; status: number } {
  const { client, chan } = openSubsystem(server);
  try {
    chan.sendall(bytes);
    const parts: Buffer[] = [];
    for (;;) {
      const d = chan.recv(65536);
      if (d.length === 0) break;
      parts.push(d);
    }
    return { reply: packets(Buffer.concat(parts)), status: chan.recvExitStatus() };
  } finally {
    client.close();
  }
}

describe('hostile SFTP clients over SSH', () => {
  /** The session ended on a protocol error, logged; a normal client is served afterwards. */
  const droppedAndOthersServed = async (from: number, why: RegExp) => {
    const log = await logAfter(server, from, /sftp: session ended \(protocol error/);
    expect(log).toMatch(/sftp: session ended \(protocol error: /);
    expect(log).toMatch(why);
    const ok = await sftpBatch(server, ['pwd'], localDir());
    expect([ok.code, ok.stdout]).toEqual([0, 'sftp> pwd\nRemote working directory: /\n']);
  };

  itWithPeers(['sftp'], 'garbage instead of INIT: the channel closes with exit status 1, logged', async () => {
    const from = server.logSince(0).next;
    const garbage = Buffer.concat([u32(64), Buffer.from([0xee]), randomBytes(63)]);
    const res = hostile(garbage);
    expect(res).toEqual({ reply: [], status: 1 });
    await droppedAndOthersServed(from, /before SSH_FXP_INIT/);
  });

  itWithPeers(['sftp'], 'a truncated packet: BAD_MESSAGE for its id, then the channel closes, logged', async () => {
    const from = server.logSince(0).next;
    // An OPEN that ends after its request id.
    const res = hostile(Buffer.concat([INIT, packet(FXP.OPEN, u32(7))]));
    expect(res.status).toBe(1);
    expect(res.reply.map(([t]) => t)).toEqual([FXP.VERSION, FXP.STATUS]);
    const status = res.reply[1][1];
    expect([status.readUInt32BE(0), status.readUInt32BE(4)]).toEqual([7, 5]); // id 7, SSH_FX_BAD_MESSAGE
    await droppedAndOthersServed(from, /malformed SSH_FXP_OPEN/);
  });

  itWithPeers(['sftp'], 'an oversize length: the channel closes before anything is buffered, logged', async () => {
    const from = server.logSince(0).next;
    const res = hostile(Buffer.concat([INIT, u32(0x7fffffff), randomBytes(4096)]));
    expect(res.status).toBe(1);
    expect(res.reply.map(([t]) => t)).toEqual([FXP.VERSION]);
    await droppedAndOthersServed(from, /exceeds the limit/);
  });

  it('a client that pipelines READs and reads no reply: the server holds a bounded buffer, then delivers every reply', async () => {
    const size = 32 << 20;
    fs.writeFileSync(r('pipelined.bin'), randomBytes(size));
    const { client, chan } = openSubsystem(server);
    try {
      chan.sendall(Buffer.concat([INIT, packet(FXP.OPEN, u32(1), str('/pipelined.bin'), u32(1), u32(0))]));
      // VERSION, then HANDLE.
      let got = Buffer.alloc(0);
      while (packets(got).length < 2) got = Buffer.concat([got, chan.recv(65536)]);
      const [type, body] = packets(got)[1];
      expect(type).toBe(FXP.HANDLE);
      const handle = body.subarray(8, 8 + body.readUInt32BE(4));
      // 1024 READs of 255 KiB: 255 MiB of replies if the server buffered them all.
      const n = 1024;
      const len = 255 * 1024;
      const reads: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const offset = (i * len) % (size - len);
        reads.push(packet(FXP.READ, u32(100 + i), str(handle), u32(0), u32(offset), u32(len)));
      }
      const before = server.status().arrayBuffers;
      chan.sendall(Buffer.concat(reads));
      await new Promise((res) => setTimeout(res, 1500));
      const held = server.status().arrayBuffers - before;
      expect(held).toBeLessThan(64 << 20);
      // Reading now brings every reply, in full.
      const expected = n * (4 + 1 + 4 + 4 + len);
      let received = 0;
      let tail = Buffer.alloc(0);
      const ids = new Set<number>();
      while (received < expected) {
        const d = chan.recv(1 << 20);
        if (d.length === 0) break;
        received += d.length;
        tail = Buffer.concat([tail, d]);
        let off = 0;
        while (off + 4 <= tail.length && off + 4 + tail.readUInt32BE(off) <= tail.length) {
          expect(tail[off + 4]).toBe(FXP.DATA);
          ids.add(tail.readUInt32BE(off + 5));
          off += 4 + tail.readUInt32BE(off);
        }
        tail = tail.subarray(off);
      }
      expect(received).toBe(expected);
      expect(ids.size).toBe(n);
    } finally {
      client.close();
      fs.rmSync(r('pipelined.bin'));
    }
  });
});
