import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoAddPolicy, Ed25519Key, SCPClient, SCPException, SSHClient, SSHServer } from '../lib';
import { itWithPeers } from './support/peers';

// SSHServer's own SCP (scp: true): served in the worker inside the sftp jail, to OpenSSH's scp
// in its legacy protocol mode (-O, the one Python's scp package and old clients speak) and to
// our SCPClient.
let dir: string;
let root: string;
let local: string;
let keyPath: string;
let server: SSHServer;
let readOnly: SSHServer;
const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'pts-scp-server-')));
  root = join(dir, 'root');
  local = join(dir, 'local');
  fs.mkdirSync(join(root, 'tree', 'sub'), { recursive: true });
  fs.mkdirSync(local);
  fs.writeFileSync(join(root, 'tree', 'x'), 'x contents\n', { mode: 0o640 });
  fs.writeFileSync(join(root, 'tree', 'sub', 'big'), randomBytes(2 * 1024 * 1024 + 3));
  fs.utimesSync(join(root, 'tree', 'x'), 1_000_000_000, 1_100_000_000);
  fs.writeFileSync(join(dir, 'outside'), 'secret\n');
  fs.symlinkSync(join(dir, 'outside'), join(root, 'link-out'));
  const key = Ed25519Key.generate();
  keyPath = join(dir, 'id_ed25519');
  key.writePrivateKeyFile(keyPath);
  server = SSHServer.start({ users: { u: { authorizedKeys: [key] } }, exec: false, sftp: { root }, scp: true });
  readOnly = SSHServer.start({ users: { u: { authorizedKeys: [key] } }, exec: false, sftp: { root, readOnly: true }, scp: true });
});

afterAll(() => {
  server?.close();
  readOnly?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** OpenSSH's scp in legacy mode against `s`: [status, stderr]. */
function scp(s: SSHServer, ...args: string[]): [number | null, string] {
  const r = spawnSync(
    'scp',
    ['-O', '-q', '-F', '/dev/null', '-i', keyPath, '-P', String(s.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', ...args],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return [r.status, r.stderr];
}

describe('SSHServer scp: true', () => {
  itWithPeers(['scp'], 'OpenSSH scp -O downloads and uploads files and trees, with -p times and modes', () => {
    const down = join(local, 'down');
    expect(scp(server, '-r', '-p', `u@127.0.0.1:/tree`, down)).toEqual([0, '']);
    expect(sha(join(down, 'sub', 'big'))).toBe(sha(join(root, 'tree', 'sub', 'big')));
    expect(fs.statSync(join(down, 'x')).mtimeMs).toBe(1_100_000_000_000);
    expect(fs.statSync(join(down, 'x')).mode & 0o777).toBe(0o640);
    expect(scp(server, '-r', '-p', down, `u@127.0.0.1:/uploaded`)).toEqual([0, '']);
    expect(sha(join(root, 'uploaded', 'sub', 'big'))).toBe(sha(join(root, 'tree', 'sub', 'big')));
    expect(fs.statSync(join(root, 'uploaded', 'x')).mtimeMs).toBe(1_100_000_000_000);
    // a single file to a new name, and a glob
    expect(scp(server, join(down, 'x'), 'u@127.0.0.1:renamed')).toEqual([0, '']);
    expect(fs.readFileSync(join(root, 'renamed'), 'utf8')).toBe('x contents\n');
    const globbed = join(local, 'globbed');
    fs.mkdirSync(globbed);
    expect(scp(server, 'u@127.0.0.1:/tree/*', globbed)[0]).toBe(1); // sub is a directory without -r
    expect(fs.readdirSync(globbed)).toEqual(['x']);
  });

  itWithPeers(['scp'], 'the jail holds: .. stops at the root, a symlink out is refused both ways', () => {
    const [status, err] = scp(server, 'u@127.0.0.1:/../../../etc/hostname', join(local, 'h'));
    expect(status).toBe(1);
    expect(err).toMatch(/No such file or directory/);
    const out = scp(server, 'u@127.0.0.1:/link-out', join(local, 'o'));
    expect(out[0]).toBe(1);
    expect(out[1]).toMatch(/Permission denied/);
    expect(fs.existsSync(join(local, 'o'))).toBe(false);
    fs.writeFileSync(join(local, 'payload'), 'overwrite?\n');
    const up = scp(server, join(local, 'payload'), 'u@127.0.0.1:/link-out');
    expect(up[0]).toBe(1);
    expect(fs.readFileSync(join(dir, 'outside'), 'utf8')).toBe('secret\n');
  });

  itWithPeers(['scp'], 'a read-only jail refuses uploads and still serves downloads', () => {
    fs.writeFileSync(join(local, 'ro'), 'data\n');
    const [status, err] = scp(readOnly, join(local, 'ro'), 'u@127.0.0.1:/ro');
    expect(status).toBe(1);
    expect(err).toMatch(/Permission denied/);
    expect(fs.existsSync(join(root, 'ro'))).toBe(false);
    expect(scp(readOnly, 'u@127.0.0.1:/tree/x', join(local, 'from-ro'))).toEqual([0, '']);
  });

  itWithPeers(['paramiko', 'python-scp'], "Python's scp package (over Paramiko) puts a tree and gets it back", () => {
    const tree = join(local, 'py-tree');
    fs.mkdirSync(join(tree, 'd'), { recursive: true });
    fs.writeFileSync(join(tree, 'd', 'f'), randomBytes(300_000));
    const script = [
      'import sys, paramiko, scp',
      'port, key, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]',
      'c = paramiko.SSHClient()',
      'c.set_missing_host_key_policy(paramiko.AutoAddPolicy())',
      "c.connect('127.0.0.1', port=port, username='u', key_filename=key, look_for_keys=False, allow_agent=False)",
      'with scp.SCPClient(c.get_transport()) as s:',
      "    s.put(src, remote_path='/py-up', recursive=True, preserve_times=True)",
      "    s.get('/py-up', local_path=dst, recursive=True)",
      "    try:\n        s.get('/no-such-thing', local_path=dst)\n    except scp.SCPException as e:\n        print('error:', e)",
      'c.close()',
    ].join('\n');
    const back = join(local, 'py-back');
    const r = spawnSync('/usr/bin/python3', ['-c', script, String(server.port), keyPath, tree, back], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^error: .*No such file or directory/);
    expect(sha(join(root, 'py-up', 'd', 'f'))).toBe(sha(join(tree, 'd', 'f')));
    expect(sha(join(back, 'd', 'f'))).toBe(sha(join(tree, 'd', 'f')));
  });

  it('SCPClient against it: put, get, errors as SCPException; other commands stay refused with exec: false', () => {
    const c = new SSHClient();
    c.setMissingHostKeyPolicy(new AutoAddPolicy());
    c.connect(server.host, { port: server.port, username: 'u', keyFilename: keyPath, lookForKeys: false, allowAgent: false });
    try {
      const client = new SCPClient(c.getTransport()!);
      client.putfo(Buffer.from('via SCPClient\n'), '/via-client', '0600');
      expect(fs.readFileSync(join(root, 'via-client'), 'utf8')).toBe('via SCPClient\n');
      expect(fs.statSync(join(root, 'via-client')).mode & 0o777).toBe(0o600);
      const chunks: Buffer[] = [];
      client.getfo('/tree/x', { write: (b: Buffer) => chunks.push(Buffer.from(b)) });
      expect(Buffer.concat(chunks).toString()).toBe('x contents\n');
      expect(() => client.get('/missing', join(local, 'm'))).toThrow(SCPException);
      // `dir/.` and the root go by their directories' names
      client.get('/tree/.', join(local, 'dot-tree'), { recursive: true });
      expect(fs.readdirSync(join(local, 'dot-tree')).sort()).toEqual(['sub', 'x']);
      expect(() => c.run('echo hi')).toThrow(); // exec stays off: only scp is served
    } finally {
      c.close();
    }
  });

  it('hostile scp -t input ends the transfer with a reason, never with the root\'s real path', () => {
    const c = new SSHClient();
    c.setMissingHostKeyPolicy(new AutoAddPolicy());
    c.connect(server.host, { port: server.port, username: 'u', keyFilename: keyPath, lookForKeys: false, allowAgent: false });
    try {
      const cases: Array<[string, RegExp]> = [
        ['C0644 3 a\0b\nabc\0', /bad name/],
        ['C0644 5 ../x\n', /bad name/],
        ['D0755 0 sub/dir\n', /bad name/],
        ['C0644 abc x\n', /unknown control line/],
        ['E\n', /E outside a directory/],
        ['C0644 100 short\nonly this', /end of input|in the middle of a file/],
        // Beyond 2^53 - 1 (OpenSSH: beyond off_t): refused before a file is made.
        ['C0644 99999999999999999999 huge\n', /size out of range/],
      ];
      for (const [input, expected] of cases) {
        const ch = c.getTransport()!.openSession();
        ch.settimeout(10);
        ch.execCommand('scp -r -t /');
        expect(ch.recv(1)[0]).toBe(0);
        ch.sendall(input);
        ch.shutdownWrite();
        let out = '';
        for (let b = ch.recv(4096); b.length; b = ch.recv(4096)) out += b.toString('latin1');
        expect([input, out]).toEqual([input, expect.stringMatching(expected)]);
        expect(out).not.toContain(root);
        expect(ch.recvExitStatus()).toBe(1);
      }
      expect(fs.existsSync(join(root, 'short'))).toBe(true); // opened before the data ran out; never outside
      expect(fs.existsSync(join(root, 'huge'))).toBe(false);
      fs.rmSync(join(root, 'short'));
    } finally {
      c.close();
    }
  });

  it('scp: true without sftp is refused at start', () => {
    expect(() => SSHServer.start({ users: { u: 'pw' }, exec: false, scp: true })).toThrow(/scp needs the sftp option/);
  });
});
