import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// What a user installs: the packed tarball, installed into an empty project, builds the native
// ciphers from the sources it ships (lib/native) and loads them. The dependencies come from
// npm's cache (`npm install` of this repository filled it) or the registry.
const root = join(__dirname, '..');

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('the npm package', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'paramiko-ts-package-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('installs into an empty project, builds its native ciphers there and runs on them', () => {
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], root))[0];
    const files: string[] = packed.files.map((f: { path: string }) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'lib/native/sshcrypto.c', 'lib/native/binding.gyp', 'lib/native/install.js']));
    expect(files.filter((f) => f.startsWith('lib/native/build') || f.startsWith('spec/'))).toEqual([]);

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // Outer npm's variables (npm test) would point the inner npm at this repository.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config|package|lifecycle)_/i.test(k)));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed.filename)], app, { ...env, PARAMIKO_TS_REQUIRE_NATIVE: '1' });

    const out = run(process.execPath, ['-e', `
      const { nativeCryptoStatus, SSHServer, SSHClient, AutoAddPolicy } = require('paramiko-ts');
      const server = SSHServer.start({ users: { u: 'p' } });
      const client = new SSHClient();
      try {
        client.setMissingHostKeyPolicy(new AutoAddPolicy());
        client.connect(server.host, { port: server.port, username: 'u', password: 'p', lookForKeys: false, allowAgent: false });
        const [, stdout] = client.execCommand('echo installed');
        console.log(JSON.stringify({ status: nativeCryptoStatus(), out: stdout.read().toString().trim(), cipher: client.getTransport().getNegotiated().cipherC2S }));
      } finally {
        client.close();
        server.close();
      }
    `], app, env);
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result.status).toBe(`loaded from ${join(app, 'node_modules', 'paramiko-ts', 'lib', 'native', 'build', 'Release', 'sshcrypto.node')}`);
    expect(result.out).toBe('installed');
    expect(result.cipher).toBe('aes128-gcm@openssh.com');
  }, 240_000);
});
