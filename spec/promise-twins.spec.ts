/**
 * The promise twins (`connectAsync`, `runAsync`, `recvAsync`, `getAsync`...) against OpenSSH's
 * sshd: each does what its blocking method does, through the same op (lib/bridge/op.ts), while
 * the event loop keeps running. The tests that matter most would deadlock or time out with the
 * blocking calls: two commands that wait on each other, run from one thread.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationException, AutoAddPolicy, IOError, ProcessError, selectAsync, SocketTimeout, SSHClient, Transport, PKey } from '../lib';
import { echoServer, roundTrip } from './support/echo';
import { hasPeer, itWithPeers } from './support/peers';
import { generateKey, isRoot, startSshd } from './support/servers';
import type { SshdServer } from './support/servers';
import { CONNECT } from './support/our-client';

let sshd: SshdServer;
let dir: string;
let userKey: string;
let otherKey: string;

async function connectAsync(keyFilename = userKey): Promise<SSHClient> {
  const c = new SSHClient();
  c.setMissingHostKeyPolicy(new AutoAddPolicy());
  await c.connectAsync(sshd.host, { port: sshd.port, username: sshd.user.username, keyFilename, lookForKeys: false, allowAgent: false, ...CONNECT });
  return c;
}

/** Runs `body` with a fresh client, closed by its twin whatever happens. */
async function withClient(body: (c: SSHClient) => Promise<void>): Promise<void> {
  const c = await connectAsync();
  try {
    await body(c);
  } finally {
    await c.closeAsync();
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  if (!hasPeer('sshd')) return;
  dir = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'pts-twins-')));
  fs.chmodSync(dir, 0o777);
  const key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
  userKey = key.path;
  otherKey = generateKey(join(dir, 'id_other'), 'ed25519').path;
  sshd = await startSshd({ authorizedKeys: [key.publicKey], extraConfig: ['AcceptEnv PTS_*'] });
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('promise twins against OpenSSH sshd', () => {
  itWithPeers(['sshd'], 'connectAsync, runAsync and closeAsync leave the event loop running while they wait', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    try {
      const c = await connectAsync();
      const r = await c.runAsync('sleep 0.5; echo done; echo oops >&2; exit 3');
      expect(r).toMatchObject({ exitStatus: 3, exitSignal: null, stdout: 'done\n', stderr: 'oops\n' });
      // A blocking run would have held the timer back for the whole half second.
      expect(ticks).toBeGreaterThanOrEqual(5);
      await expect(c.runAsync('exit 4', { check: true })).rejects.toBeInstanceOf(ProcessError);
      await c.closeAsync();
      expect(c.getTransport()).toBeNull();
    } finally {
      clearInterval(timer);
    }
  });

  itWithPeers(['sshd'], 'two commands that wait on each other both finish (blocking calls from one thread could not)', async () => {
    await withClient(async (c) => {
      const flag = join(dir, `flag-${process.pid}-${Date.now()}`);
      const waiter = c.runAsync(`for i in $(seq 200); do [ -e ${flag} ] && echo seen && exit 0; sleep 0.05; done; exit 1`);
      const toucher = c.runAsync(`touch ${flag}`);
      const [w, t] = await Promise.all([waiter, toucher]);
      expect(t.exitStatus).toBe(0);
      expect(w).toMatchObject({ exitStatus: 0, stdout: 'seen\n' });
    });
  });

  itWithPeers(['sshd'], 'a channel driven by its twins: 4 MiB through cat and back, EOF, exit status', async () => {
    await withClient(async (c) => {
      const chan = await c.getTransport()!.openSessionAsync();
      await chan.execCommandAsync('cat');
      const data = randomBytes(4 << 20);
      // Send and receive at once: cat's output fills the window long before the input ends.
      const sending = chan.sendallAsync(data).then(() => chan.shutdownWriteAsync());
      const parts: Buffer[] = [];
      for (let b = await chan.recvAsync(1 << 20); b.length; b = await chan.recvAsync(1 << 20)) parts.push(b);
      await sending;
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
      expect(await chan.recvExitStatusAsync()).toBe(0);
      await chan.closeAsync();
    });
  });

  itWithPeers(['sshd'], 'execCommandAsync gives files with twins: for await over lines, readAsync, writeAsync and closeAsync on stdin', async () => {
    await withClient(async (c) => {
      const [stdin, stdout, stderr] = await c.execCommandAsync('sed s/^/x/; echo err >&2');
      await stdin.writeAsync('a\nb\n');
      await stdin.writeAsync(Buffer.from('c\n'));
      await stdin.closeAsync();
      const lines: Array<string | Buffer> = [];
      for await (const line of stdout) lines.push(line);
      expect(lines).toEqual(['xa\n', 'xb\n', 'xc\n']);
      expect((await stderr.readAsync()).toString()).toBe('err\n');
      expect(await stdout.channel.recvExitStatusAsync()).toBe(0);
    });
  });

  itWithPeers(['sshd'], 'channel requests without a reply have twins too: env, pty size, signal', async () => {
    await withClient(async (c) => {
      const chan = await c.getTransport()!.openSessionAsync();
      await chan.updateEnvironmentAsync({ PTS_ONE: 'one' });
      await chan.setEnvironmentVariableAsync('PTS_TWO', 'two');
      await chan.getPtyAsync('xterm', 80, 24);
      await chan.execCommandAsync('echo $PTS_ONE $PTS_TWO; stty size; sleep 0.3; stty size; exec sleep 30');
      const out = chan.makefile('r');
      expect(await out.readlineAsync()).toBe('one two\r\n');
      expect(await out.readlineAsync()).toBe('24 80\r\n');
      await chan.resizePtyAsync(100, 40);
      expect(await out.readlineAsync()).toBe('40 100\r\n');
      await chan.sendSignalAsync('TERM');
      // sshd delivers it (OpenSSH 7.9 and later): the command dies of it.
      expect(await chan.statusEvent.waitAsync(10)).toBe(true);
      expect(chan.exitSignal?.signal).toBe('TERM');
      await chan.closeAsync();
    });
  });

  itWithPeers(['sshd'], 'errors arrive as rejections of the same classes: auth, timeout', async () => {
    await expect(connectAsync(otherKey)).rejects.toBeInstanceOf(AuthenticationException);
    await withClient(async (c) => {
      const chan = await c.getTransport()!.openSessionAsync();
      await chan.execCommandAsync('sleep 5');
      chan.settimeout(0.2);
      await expect(chan.recvAsync(10)).rejects.toBeInstanceOf(SocketTimeout);
      chan.settimeout(0);
      await expect(chan.recvAsync(10)).rejects.toBeInstanceOf(SocketTimeout);
      await chan.closeAsync();
    });
  });

  itWithPeers(['sshd'], 'Transport twins: startClientAsync, authPublickeyAsync, authPasswordAsync, globalRequestAsync, renegotiateKeysAsync', async () => {
    const t = new Transport([sshd.host, sshd.port]);
    try {
      await t.startClientAsync({ timeout: 10 });
      expect(t.getRemoteServerKey().getName()).toBe('ssh-ed25519');
      if (isRoot() && sshd.user.password) {
        await expect(t.authPasswordAsync(sshd.user.username, 'not the password')).rejects.toBeInstanceOf(AuthenticationException);
      }
      expect(await t.authPublickeyAsync(sshd.user.username, PKey.fromPrivateKeyFile(userKey))).toEqual([]);
      expect(t.isAuthenticated()).toBe(true);
      // OpenSSH refuses global requests it does not know.
      expect(await t.globalRequestAsync('no-such-request@paramiko-ts', null, true)).toBeNull();
      await t.renegotiateKeysAsync();
      const chan = await t.openSessionAsync();
      await chan.execCommandAsync('echo after rekey');
      expect((await chan.makefile('r').readAsync()).toString()).toBe('after rekey\n');
    } finally {
      await t.closeAsync();
    }
  });

  itWithPeers(['sshd'], 'acceptAsync takes a forwarded connection made from this same event loop (a blocking accept would starve it)', async () => {
    const c = await connectAsync();
    const t = c.getTransport()!;
    try {
      const port = await t.requestPortForwardAsync('127.0.0.1', 0);
      const sock = netConnect({ host: '127.0.0.1', port });
      sock.on('error', () => {});
      sock.write('hello through sshd');
      const chan = await t.acceptAsync(10);
      expect(chan).not.toBeNull();
      expect(chan!.kind).toBe('forwarded-tcpip');
      let got = Buffer.alloc(0);
      while (got.length < 18) got = Buffer.concat([got, await chan!.recvAsync(100)]);
      expect(got.toString()).toBe('hello through sshd');
      sock.destroy();
      await chan!.closeAsync();
      await t.cancelPortForwardAsync('127.0.0.1', port);
    } finally {
      await c.closeAsync();
    }
  });

  itWithPeers(['sshd'], 'forwardLocalPortAsync and forwardRemotePortAsync carry connections made and served by this event loop', async () => {
    const c = await connectAsync();
    const t = c.getTransport()!;
    // An echo server on this thread: only a free event loop can serve it.
    const echo = await echoServer();
    const trip = async (port: number, text: string) => (await roundTrip(port, Buffer.from(text))).toString();
    try {
      const local = await t.forwardLocalPortAsync('127.0.0.1', 0, '127.0.0.1', echo.port);
      expect(await trip(local.port, 'via a local forward')).toBe('via a local forward');
      local.close();
      const remote = await t.forwardRemotePortAsync('127.0.0.1', 0, '127.0.0.1', echo.port);
      expect(await trip(remote.port, 'via a remote forward')).toBe('via a remote forward');
      remote.close();
    } finally {
      await echo.close();
      await c.closeAsync();
    }
  });

  itWithPeers(['sshd'], 'forwardLocalPathAsync, forwardRemotePathAsync and forwardSocksAsync, served by this event loop', async () => {
    const c = await connectAsync();
    const t = c.getTransport()!;
    // Sockets sshd (the test user) may use, an echo server on one of them, on this thread.
    const sockets = fs.mkdtempSync(join(tmpdir(), 'pts-twins-sl-'));
    fs.chmodSync(sockets, 0o1777);
    const echo = await echoServer(join(sockets, 'echo.sock'));
    const tcpEcho = await echoServer();
    try {
      using _local = await t.forwardLocalPathAsync(join(sockets, 'here.sock'), join(sockets, 'echo.sock'));
      expect((await roundTrip(join(sockets, 'here.sock'), Buffer.from('via a path'))).toString()).toBe('via a path');
      using _remote = await t.forwardRemotePathAsync(join(sockets, 'there.sock'), join(sockets, 'echo.sock'));
      expect((await roundTrip(join(sockets, 'there.sock'), Buffer.from('back via a path'))).toString()).toBe('back via a path');
      // SOCKS5 by hand: no authentication, CONNECT 127.0.0.1:<echo>, then the echo.
      using socks = await t.forwardSocksAsync('127.0.0.1', 0);
      const request = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, tcpEcho.port >> 8, tcpEcho.port & 255]);
      const answer = await roundTrip(socks.port, Buffer.concat([request, Buffer.from('via socks')]));
      expect(answer.subarray(0, 2)).toEqual(Buffer.from([5, 0])); // no authentication chosen
      expect(answer.subarray(2, 4)).toEqual(Buffer.from([5, 0])); // succeeded
      expect(answer.subarray(12).toString()).toBe('via socks');
    } finally {
      await echo.close();
      await tcpEcho.close();
      await c.closeAsync();
      fs.rmSync(sockets, { recursive: true, force: true });
    }
  });

  itWithPeers(['sshd'], 'selectAsync waits for the first ready channel while timers run', async () => {
    const c = await connectAsync();
    try {
      const t = c.getTransport()!;
      const slow = await t.openSessionAsync();
      const soon = await t.openSessionAsync();
      await slow.execCommandAsync('sleep 5; echo slow');
      await soon.execCommandAsync('sleep 0.3; echo soon');
      expect(await selectAsync([slow, soon], [], [], 0)).toEqual([[], [], []]);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const [r] = await selectAsync([slow, soon], [], [], 10).finally(() => clearInterval(timer));
      expect(r).toEqual([soon]);
      expect(ticks).toBeGreaterThan(10);
      await slow.closeAsync();
      await soon.closeAsync();
    } finally {
      await c.closeAsync();
    }
  });

  itWithPeers(['sshd'], 'SFTP twins: putAsync and getAsync with progress, file reads and writes, directories, errors with codes', async () => {
    const c = await connectAsync();
    const sftp = await c.openSftpAsync();
    const work = join(dir, `sftp-${Date.now()}`);
    try {
      await sftp.mkdirAsync(work, 0o755);
      const src = join(dir, 'src.bin');
      const data = randomBytes(3 << 20);
      fs.writeFileSync(src, data);
      const progress: number[] = [];
      const attrs = await sftp.putAsync(src, `${work}/up.bin`, (done) => progress.push(done));
      expect(attrs.st_size).toBe(data.length);
      expect(progress[progress.length - 1]).toBe(data.length);
      const back = join(dir, 'back.bin');
      expect(await sftp.getAsync(`${work}/up.bin`, back)).toBe(data.length);
      expect(sha256(fs.readFileSync(back))).toBe(sha256(data));

      const f = await sftp.openAsync(`${work}/lines.txt`, 'w');
      await f.writeAsync('one\ntwo\n');
      await f.closeAsync();
      const g = await sftp.openAsync(`${work}/lines.txt`, 'a');
      await g.writeAsync('three\n');
      await g.closeAsync();
      const r = await sftp.openAsync(`${work}/lines.txt`, 'r');
      expect(await r.readlineAsync()).toBe('one\n');
      const rest: Array<string | Buffer> = [];
      for await (const line of r) rest.push(line);
      expect(rest).toEqual(['two\n', 'three\n']);
      expect((await r.statAsync()).st_size).toBe(14);
      await r.closeAsync();

      await sftp.makedirsAsync(`${work}/a/b/c`);
      expect((await sftp.listdirAsync(`${work}/a/b`)).sort()).toEqual(['c']);
      await sftp.renameAsync(`${work}/lines.txt`, `${work}/a/lines.txt`);
      expect((await sftp.statAsync(`${work}/a/lines.txt`)).st_size).toBe(14);
      const missing = await sftp.statAsync(`${work}/nope`).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(IOError);
      expect((missing as IOError).code).toBe('ENOENT');
      await sftp.rmtreeAsync(`${work}/a`);
      expect((await sftp.listdirAsync(work)).sort()).toEqual(['up.bin']);

      // putfo/getfo over file-like objects, and the file attribute twins.
      const chunks = [Buffer.from('abc'), Buffer.from('defg')];
      await sftp.putfoAsync({ read: () => chunks.shift() ?? Buffer.alloc(0) }, `${work}/fo.txt`);
      const got: Buffer[] = [];
      expect(await sftp.getfoAsync(`${work}/fo.txt`, { write: (b: Buffer) => got.push(b) })).toBe(7);
      expect(Buffer.concat(got).toString()).toBe('abcdefg');
      const h = await sftp.openAsync(`${work}/fo.txt`, 'r+');
      await h.truncateAsync(5);
      await h.chmodAsync(0o600);
      await h.utimeAsync([1_000_000, 2_000_000]);
      expect(await h.seekAsync(-2, 2)).toBe(3);
      expect((await h.readAsync()).toString()).toBe('de');
      await h.fsyncAsync();
      expect((await h.readvAsync([[0, 2], [3, 2]])).map(String)).toEqual(['ab', 'de']);
      expect((await h.statvfsAsync()).bsize).toBeGreaterThan(0);
      // OpenSSH has no check-file: the twin rejects as check raises
      await expect(h.checkAsync('sha256')).rejects.toMatchObject({ code: 'ENOSYS' });
      const st = await h.statAsync();
      expect(st).toMatchObject({ st_size: 5, st_mtime: 2_000_000 });
      expect((st.st_mode ?? 0) & 0o777).toBe(0o600);
      await h.closeAsync();
    } finally {
      await sftp.closeAsync();
      await c.closeAsync();
    }
  });
});
