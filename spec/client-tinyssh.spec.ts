/**
 * Our client against TinySSH (tinysshd): a server with nothing but the modern core
 * (curve25519-sha256 and sntrup761x25519-sha512@openssh.com, ssh-ed25519,
 * chacha20-poly1305@openssh.com, public keys only) and its own implementation of each, so it
 * checks those paths against a peer that shares no code with OpenSSH. It serves one channel per
 * connection.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationException, BadHostKeyException, Ed25519Key, PKey, SSHClient, SSHException } from '../lib';
import { hasPeer, itWithPeers } from './support/peers';
import { loginKnowing } from './support/our-client';
import { generateKey } from './support/servers';
import { startTinysshd, TinysshdServer } from './support/servers/tinyssh';

let server: TinysshdServer;
let dir: string;
let userKey: string;

beforeAll(async () => {
  if (!hasPeer('tinysshd')) return;
  dir = mkdtempSync(join(tmpdir(), 'pts-tinyssh-'));
  const key = generateKey(join(dir, 'id_ed25519'), 'ed25519');
  userKey = key.path;
  server = await startTinysshd({ authorizedKeys: [key.publicKey] });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Logged in with the test key, the server's host key on record and no other accepted. */
const client = (options: Record<string, unknown> = {}): SSHClient => loginKnowing(server, userKey, options);

describe('SSHClient against TinySSH', () => {
  itWithPeers(['tinysshd'], 'negotiates its only algorithms and runs commands: output, stderr, exit status, stdin', () => {
    using c = client();
    const t = c.getTransport()!;
    expect(t.remoteVersion).toMatch(/^SSH-2.0-tinyssh/);
    // Our first choices it lacks (mlkem768, sntrup761's RFC name, AES-GCM) fall through to its.
    expect(t.getNegotiated()).toMatchObject({
      kex: 'sntrup761x25519-sha512@openssh.com',
      hostKey: 'ssh-ed25519',
      cipherC2S: 'chacha20-poly1305@openssh.com',
      cipherS2C: 'chacha20-poly1305@openssh.com',
    });
    expect(t.getRemoteServerKey().fingerprint).toBe(server.hostKeys[0].fingerprint);
    const r = c.run('echo out; echo err >&2; exit 7', { input: '' });
    expect([r.stdout, r.stderr, r.exitStatus]).toEqual(['out\n', 'err\n', 7]);
    // TinySSH serves one channel per connection and ends the connection with it: an
    // SSHException after (not active, EOF or a reset, depending on how far its close has come),
    // and a new connection for the next command.
    expect(() => c.run('true')).toThrow(SSHException);
    using again = client();
    expect(again.run('tr a-z A-Z', { input: 'through stdin\n' }).stdout).toBe('THROUGH STDIN\n');
  });

  itWithPeers(['tinysshd'], 'curve25519-sha256 when asked for, and 20 MB each way with its sha256 intact', () => {
    using c = client({ disabledAlgorithms: { kex: ['sntrup761x25519-sha512@openssh.com', 'sntrup761x25519-sha512', 'mlkem768x25519-sha256'] } });
    expect(c.getTransport()!.getNegotiated()!.kex).toBe('curve25519-sha256');
    const data = randomBytes(20_000_000);
    const r = c.run('sha256sum; head -c 20000000 /dev/zero', { input: data, encoding: null });
    expect((r.stdout as Buffer).subarray(0, 64).toString()).toBe(createHash('sha256').update(data).digest('hex'));
    expect((r.stdout as Buffer).length).toBe(64 + 4 + 20_000_000);
  });

  itWithPeers(['tinysshd'], 'SFTP through its subsystem: put and get a file exactly, listdir, stat', () => {
    using c = client();
    const sftp = c.openSftp();
    const local = join(dir, 'up.bin');
    const data = randomBytes(3_000_000);
    writeFileSync(local, data);
    const remote = `/tmp/pts-tinyssh-${process.pid}.bin`;
    try {
      sftp.put(local, remote);
      expect(sftp.stat(remote).st_size).toBe(data.length);
      expect(sftp.listdir('/tmp')).toContain(`pts-tinyssh-${process.pid}.bin`);
      sftp.get(remote, join(dir, 'down.bin'));
      expect(readFileSync(join(dir, 'down.bin')).equals(data)).toBe(true);
    } finally {
      sftp.remove(remote);
      sftp.close();
    }
  });

  itWithPeers(['tinysshd'], 'a pty and a shell', () => {
    using c = client();
    const chan = c.invokeShell({ term: 'xterm', width: 100, height: 30 });
    chan.settimeout(10);
    chan.sendall('stty size; exit\n');
    let out = '';
    for (let b = chan.recv(4096); b.length; b = chan.recv(4096)) out += b.toString();
    expect(out).toMatch(/30 100/);
  });

  itWithPeers(['tinysshd'], 'a key it does not know is refused; a changed host key is a BadHostKeyException', () => {
    const stranger = Ed25519Key.generate();
    expect(() => client({ keyFilename: undefined, pkey: stranger })).toThrow(AuthenticationException);
    const c = new SSHClient();
    const other = Ed25519Key.generate();
    c.getHostKeys().add(`[${server.host}]:${server.port}`, other.getName(), PKey.fromBlob(other.asBytes()));
    expect(() => c.connect(server.host, { port: server.port, username: server.user.username, keyFilename: userKey, allowAgent: false, lookForKeys: false, timeout: 10 })).toThrow(BadHostKeyException);
  });
});
