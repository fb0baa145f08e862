import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoAddPolicy, IOError, SCPClient, SCPException, SSHClient, SSHServer } from '../lib';
import { loginTo } from './support/our-client';
import { hasPeer, itWithPeers, itWithRootPeers } from './support/peers';
import { generateKey, isRoot, startDropbear, startSshd } from './support/servers';
import type { SshdServer } from './support/servers';

// Our SCP client against OpenSSH's sshd, which runs OpenSSH's own `scp -t` / `scp -f`.
let sshd: SshdServer;
let local: string;
let work: string;
let userKey: string;
let ssh: SSHClient;
let counter = 0;

/** A fresh remote path in the work dir (the sshd runs on this machine: the same path locally). */
const remote = (name: string): string => join(work, `${++counter}-${name}`);
/** A fresh local path. */
const localPath = (name: string): string => join(local, `${++counter}-${name}`);
const sha = (path: string) => createHash('sha256').update(fs.readFileSync(path)).digest('hex');

/** A directory the login user owns (so its scp may write there). */
function remoteDir(name: string): string {
  const d = remote(name);
  fs.mkdirSync(d, { mode: 0o755 });
  if (isRoot()) fs.chownSync(d, sshd.user.uid, sshd.user.gid);
  return d;
}

/** A local tree: a/, a/x (mode 0640), a/sub/, a/sub/y (empty), a/sub/z (300 KiB). */
function localTree(): string {
  const top = localPath('tree');
  fs.mkdirSync(join(top, 'sub'), { recursive: true });
  fs.writeFileSync(join(top, 'x'), 'x contents\n', { mode: 0o640 });
  fs.writeFileSync(join(top, 'sub', 'y'), '');
  fs.writeFileSync(join(top, 'sub', 'z'), randomBytes(300 * 1024));
  fs.utimesSync(join(top, 'x'), 1_000_000_000, 1_100_000_000);
  fs.chmodSync(join(top, 'sub'), 0o750);
  return top;
}

function expectSameTree(a: string, b: string): void {
  const list = (d: string): string[] => fs.readdirSync(d, { recursive: true }).map(String).sort();
  expect(list(b)).toEqual(list(a));
  for (const entry of list(a)) {
    const pa = join(a, entry);
    if (fs.statSync(pa).isFile()) expect([entry, sha(join(b, entry))]).toEqual([entry, sha(pa)]);
  }
}

beforeAll(async () => {
  if (!hasPeer('sshd')) return;
  local = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'pts-scp-local-')));
  const key = generateKey(join(local, 'id_ed25519'), 'ed25519');
  userKey = key.path;
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  work = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'pts-scp-work-')));
  fs.chmodSync(work, 0o755);
  if (isRoot()) fs.chownSync(work, sshd.user.uid, sshd.user.gid);
  ssh = loginTo(sshd, userKey);
}, 60_000);

afterAll(async () => {
  ssh?.close();
  await sshd?.stop();
  for (const d of [local, work]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('SCPClient against OpenSSH (scp -t / scp -f)', () => {
  itWithPeers(['sshd'], 'put one file to a new name and into a directory; get it back; progress reaches the size', () => {
    const src = localPath('data.bin');
    fs.writeFileSync(src, randomBytes(3 * 1024 * 1024 + 17));
    const progress: Array<[string, number, number]> = [];
    const scp = new SCPClient(ssh.getTransport()!, { progress: (name, size, sent) => progress.push([name, size, sent]) });
    const renamed = remote('renamed.bin');
    scp.put(src, renamed);
    expect(sha(renamed)).toBe(sha(src));
    const dir = remoteDir('into');
    scp.put([src], dir);
    expect(sha(join(dir, fs.readdirSync(dir)[0]))).toBe(sha(src));
    expect(progress[progress.length - 1]).toEqual([src.split('/').pop(), 3 * 1024 * 1024 + 17, 3 * 1024 * 1024 + 17]);
    const back = localPath('back.bin');
    scp.get(renamed, back);
    expect(sha(back)).toBe(sha(src));
    const intoLocal = localPath('local-dir');
    fs.mkdirSync(intoLocal);
    scp.get(renamed, intoLocal);
    expect(sha(join(intoLocal, renamed.split('/').pop()!))).toBe(sha(src));
    expect(scp.channel).toBeNull();
  });

  itWithPeers(['sshd'], 'several files, empty files and odd names (quotes, spaces, a leading dash) go and come back', () => {
    const scp = new SCPClient(ssh.getTransport()!);
    const names = ["it's here.txt", 'a b', '-dash', 'empty'];
    const files = names.map((n) => {
      const p = join(localPath('odd'), n);
      fs.mkdirSync(join(p, '..'), { recursive: true });
      fs.writeFileSync(p, n === 'empty' ? '' : `contents of ${n}\n`);
      return p;
    });
    const dir = remoteDir('several');
    scp.put(files, dir);
    expect(fs.readdirSync(dir).sort()).toEqual([...names].sort());
    const back = localPath('several-back');
    fs.mkdirSync(back);
    scp.get(names.map((n) => join(dir, n)), back);
    for (const n of names) expect(fs.readFileSync(join(back, n), 'utf8')).toBe(n === 'empty' ? '' : `contents of ${n}\n`);
  });

  itWithPeers(['sshd'], 'recursive with preserveTimes keeps the tree, modes and modification times, both ways', () => {
    const scp = new SCPClient(ssh.getTransport()!);
    const tree = localTree();
    const dir = remoteDir('tree-up');
    scp.put(tree, dir, { recursive: true, preserveTimes: true });
    const up = join(dir, tree.split('/').pop()!);
    expectSameTree(tree, up);
    expect(fs.statSync(join(up, 'x')).mtimeMs).toBe(1_100_000_000_000);
    expect(fs.statSync(join(up, 'x')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(join(up, 'sub')).mode & 0o777).toBe(0o750);
    const down = localPath('tree-down'); // does not exist: the top directory takes its name
    scp.get(up, down, true, true);
    expectSameTree(tree, down);
    // `dir/.`: OpenSSH's scp sends the directory as `.`, meaning the target itself
    const dot = localPath('tree-dot');
    scp.get(`${up}/.`, dot, { recursive: true });
    expectSameTree(tree, dot);
    expect(fs.statSync(join(down, 'x')).mtimeMs).toBe(1_100_000_000_000);
    expect(fs.statSync(join(down, 'x')).mode & 0o777).toBe(0o640);
  });

  itWithPeers(['sshd'], 'putfo and getfo move a Buffer, a string and a file-like object with a mode', () => {
    const scp = new SCPClient(ssh.getTransport()!);
    const data = randomBytes(100_000);
    const target = remote('from-buffer');
    scp.putfo(data, target, '0600');
    expect(fs.readFileSync(target).equals(data)).toBe(true);
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    const chunks: Buffer[] = [];
    expect(scp.getfo(target, { write: (b: Buffer) => chunks.push(Buffer.from(b)) })).toBe(100_000);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    const fromString = remote('from-string');
    scp.putfo('text\n', fromString);
    expect(fs.readFileSync(fromString, 'utf8')).toBe('text\n');
    const parts = [Buffer.from('one '), Buffer.from('two')];
    const fromFile = remote('from-file-like');
    scp.putfo({ read: () => parts.shift() ?? Buffer.alloc(0) }, fromFile, { mode: 0o640 });
    expect(fs.readFileSync(fromFile, 'utf8')).toBe('one two');
    expect(() => scp.putfo(data, remote('wrong-size'), '0644', 5)).toThrow(/size 5 given but the source holds 100000 bytes/);
  });

  itWithPeers(['sshd'], "the remote scp's errors arrive as SCPException with its message; local ones as IOError", () => {
    const scp = new SCPClient(ssh.getTransport()!);
    expect(() => scp.get(join(work, 'no-such-file'), localPath('x'))).toThrow(SCPException);
    expect(() => scp.get(join(work, 'no-such-file'), localPath('x'))).toThrow(/No such file or directory/);
    const src = localPath('small');
    fs.writeFileSync(src, 'small');
    expect(() => scp.put(src, join(work, 'missing-dir', 'sub', 'file'))).toThrow(/No such file or directory/);
    const tree = localTree();
    expect(() => scp.put(tree, remoteDir('no-r'))).toThrow(/is a directory \(pass recursive/);
    // scp's protocol sends a file's size first: what has none (a device, a FIFO) is refused, as
    // scp does, before anything is sent. (A FIFO with no writer would block the open: a device.)
    const never = remote('never-sent');
    expect(() => scp.put([src, '/dev/null'], never)).toThrow(/^\/dev\/null: not a regular file$/);
    expect(fs.existsSync(never)).toBe(false);
    expect(() => scp.put(localPath('absent'), work)).toThrow(IOError);
    expect(() => scp.get(tree, localPath('a'), { recursive: false })).toThrow(SCPException);
    // the connection is still good afterwards
    const ok = remote('after-errors');
    scp.put(src, ok);
    expect(fs.readFileSync(ok, 'utf8')).toBe('small');
  });

  itWithPeers(['sshd'], 'putAsync and getAsync leave the event loop running', async () => {
    const scp = new SCPClient(ssh.getTransport()!);
    const src = localPath('async.bin');
    fs.writeFileSync(src, randomBytes(2 * 1024 * 1024));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const target = remote('async.bin');
      await scp.putAsync(src, target);
      const back = localPath('async-back.bin');
      await scp.getAsync(target, back);
      expect(sha(back)).toBe(sha(src));
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
    // one transfer at a time per SCPClient: a second one at once is refused, the first completes
    const first = scp.putfoAsync(Buffer.from('one'), remote('one-at-a-time'));
    await expect(scp.putfoAsync(Buffer.from('two'), remote('refused'))).rejects.toThrow(/already in progress/);
    await first;
  });
});

describe('SCPClient through Dropbear (which runs the same scp: the channel handling differs)', () => {
  itWithRootPeers(['dropbear', 'sshd'], 'a tree goes up and comes back with its times', async () => {
    const key = generateKey(localPath('dropbear-key'), 'ed25519');
    const server = await startDropbear({ authorizedKeys: [key.publicKey] });
    try {
      using c = loginTo(server, key.path);
      const scp = new SCPClient(c.getTransport()!);
      const tree = localTree();
      const dir = remoteDir('dropbear-up');
      scp.put(tree, dir, { recursive: true, preserveTimes: true });
      const down = localPath('dropbear-down');
      scp.get(join(dir, tree.split('/').pop()!), down, { recursive: true, preserveTimes: true });
      expectSameTree(tree, down);
      expect(fs.statSync(join(down, 'x')).mtimeMs).toBe(1_100_000_000_000);
      expect(() => scp.get(join(dir, 'nothing-here'), localPath('n'))).toThrow(/No such file or directory/);
    } finally {
      await server.stop();
    }
  });
});

describe('SCPClient against a hostile or broken scp', () => {
  let dir: string;
  let server: SSHServer;
  let client: SSHClient;
  /** What the fake remote scp prints for each command. */
  const replies = new Map<string, string | Buffer>();

  beforeAll(() => {
    dir = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'pts-scp-hostile-')));
    server = SSHServer.start({
      users: { u: 'pw' },
      exec: (command) => {
        const path = /'([^']*)'$/.exec(command)?.[1] ?? '';
        return { stdout: replies.get(path) ?? '\x02no reply configured\n', status: 1 };
      },
    });
    client = new SSHClient();
    client.setMissingHostKeyPolicy(new AutoAddPolicy());
    client.connect(server.host, { port: server.port, username: 'u', password: 'pw', lookForKeys: false, allowAgent: false });
  });

  afterAll(() => {
    client?.close();
    server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const scp = () => new SCPClient(client.getTransport()!, { socketTimeout: 5 });

  it('a name with a path, .. or one not asked for is refused before anything is written', () => {
    replies.set('f1', 'C0644 3 ../evil\nabc\0');
    expect(() => scp().get('f1', dir)).toThrow(/unsafe name: "\.\.\/evil"/);
    replies.set('f2', 'C0644 3 .bashrc\nabc\0');
    expect(() => scp().get('f2', dir)).toThrow(/sent "\.bashrc", which was not asked for/);
    replies.set('f3', 'D0755 0 d\nE\n');
    expect(() => scp().get('f3', dir)).toThrow(/unsafe|not asked for/);
    replies.set('f4', 'D0755 0 f4\nE\n');
    expect(() => scp().get('f4', dir)).toThrow(/directory "f4" without recursive/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('garbage, a truncated file and a fatal message are reported, not hung on', () => {
    replies.set('g1', 'HELLO\n');
    expect(() => scp().get('g1', dir)).toThrow(/not part of the protocol: "HELLO"/);
    replies.set('g2', 'C0644 100 g2\nonly a little');
    expect(() => scp().get('g2', dir)).toThrow(/closed the channel before the transfer ended, exit status 1|ended after 13 of the 100 bytes of g2/);
    replies.set('g3', '\x02scp: g3: something broke\n');
    expect(() => scp().get('g3', dir)).toThrow(/scp: g3: something broke/);
  });

  it('put: a refusal at the first reply or after the data is the remote message', () => {
    const src = join(dir, '..', `${dir.split('/').pop()}-src`);
    fs.writeFileSync(src, 'data');
    try {
      replies.set('p1', '\x01scp: p1: Permission denied\n');
      expect(() => scp().put(src, 'p1')).toThrow(/scp: p1: Permission denied/);
      replies.set('p2', '\0\0\x02scp: p2: disk full\n');
      expect(() => scp().put(src, 'p2')).toThrow(/scp: p2: disk full/);
      replies.set('p3', 'Q');
      expect(() => scp().put(src, 'p3')).toThrow(/unexpected reply from the remote scp/);
    } finally {
      fs.rmSync(src, { force: true });
    }
  });
});
