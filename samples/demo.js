// The demo: an embedded SSH server on 127.0.0.1 and a client script against it, both in this
// process, run as a user would run them against the installed package (`require('paramiko-ts')`
// resolves to this package's own build). No `await`: every call blocks until it is done, and the
// server keeps serving from the transport worker meanwhile.
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { AutoAddPolicy, Ed25519Key, SSHClient, SSHServer } = require('paramiko-ts');

const dir = mkdtempSync(join(tmpdir(), 'paramiko-ts-demo-'));
const userKey = Ed25519Key.generate();
const keyFile = join(dir, 'id_ed25519');
userKey.writePrivateKeyFile(keyFile);

// A server in one line: accounts with a password or keys, host keys generated, a free port.
const sftpRoot = join(dir, 'sftp-root');
require('node:fs').mkdirSync(sftpRoot);
const server = SSHServer.start({
  users: { demo: { password: 'demo password', authorizedKeys: [userKey] } },
  banner: 'paramiko-ts demo server\n',
  sftp: { root: sftpRoot }, // SFTP jailed in this directory
});
console.log(`server: listening on ${server.host} port ${server.port}`);
for (const k of server.hostKeys) console.log(`server: host key ${k.getName()} ${k.fingerprint}`);

const client = new SSHClient();
try {
  // Trust the server's keys as known_hosts lines (what `ssh-keyscan` would give).
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, server.knownHosts());
  client.loadHostKeys(knownHosts);
  client.setMissingHostKeyPolicy(new AutoAddPolicy());

  client.connect(server.host, { port: server.port, username: 'demo', keyFilename: keyFile, allowAgent: false, lookForKeys: false });
  const t = client.getTransport();
  const n = t.getNegotiated();
  console.log(`client: logged in as ${t.getUsername()} with ${n.kex}, ${n.hostKey}, ${n.cipherC2S}`);
  console.log(`client: banner: ${t.getBanner().trim()}`);

  const [, stdout, stderr] = client.execCommand('echo "hello from $(uname -s)"; echo "to stderr" >&2; exit 3');
  console.log(`client: stdout: ${stdout.read().toString().trim()}`);
  console.log(`client: stderr: ${stderr.read().toString().trim()}`);
  const status = stdout.channel.recvExitStatus();
  console.log(`client: exit status: ${status}`);

  const [stdin, out] = client.execCommand('wc -c');
  stdin.write(Buffer.alloc(1 << 20, 'x'));
  stdin.close();
  console.log(`client: sent 1 MiB, the server counted ${out.read().toString().trim()} bytes`);

  const chan = t.openSession();
  chan.getPty({ term: 'xterm', width: 100, height: 30 });
  chan.execCommand('stty size');
  console.log(`client: pty size on the server (rows cols): ${chan.makefile().read().toString().trim()}`);

  // SFTP: a 16 MiB file up and back down, many requests in flight, run inside the worker.
  const sftp = client.openSftp();
  const local = join(dir, 'data.bin');
  writeFileSync(local, require('node:crypto').randomBytes(16 << 20));
  sftp.put(local, '/data.bin');
  sftp.get('/data.bin', join(dir, 'back.bin'));
  const same = require('node:fs').readFileSync(local).equals(require('node:fs').readFileSync(join(dir, 'back.bin')));
  console.log(`client: sftp listdir /: ${sftp.listdir('/').join(', ')}; 16 MiB round trip ${same ? 'identical' : 'DIFFERENT'}`);
  sftp.close();

  if (status !== 3 || !same) process.exitCode = 1;
} finally {
  client.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log('demo: done');
