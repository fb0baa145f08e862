// A jump host (bastion), as Paramiko scripts do it: log in to the bastion, open a direct-tcpip
// channel through it to the target, and run a second SSHClient over that channel (`sock`).
// Both servers are embedded SSHServers on 127.0.0.1 so that the sample runs anywhere; the
// target accepts connections only through the bastion's forwarding. For real hosts, replace the
// two addresses and the keys.
//
//   node samples/jump-host.js
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Ed25519Key, RejectPolicy, SSHClient, SSHServer } = require('paramiko-ts');

const dir = mkdtempSync(join(tmpdir(), 'paramiko-ts-jump-'));
const key = Ed25519Key.generate();
const keyFile = join(dir, 'id_ed25519');
key.writePrivateKeyFile(keyFile);

const bastion = SSHServer.start({ users: { hop: { authorizedKeys: [key] } }, exec: false, forwarding: true });
const target = SSHServer.start({ users: { app: { authorizedKeys: [key] } } });
const knownHosts = join(dir, 'known_hosts');
writeFileSync(knownHosts, bastion.knownHosts() + target.knownHosts());

const jump = new SSHClient();
const client = new SSHClient();
try {
  jump.loadHostKeys(knownHosts);
  jump.setMissingHostKeyPolicy(new RejectPolicy());
  jump.connect(bastion.host, { port: bastion.port, username: 'hop', keyFilename: keyFile, lookForKeys: false, allowAgent: false });

  // The channel to the target, opened by the bastion (its address as the bastion sees it).
  const channel = jump.getTransport().openChannel('direct-tcpip', [target.host, target.port], ['127.0.0.1', 0]);

  client.loadHostKeys(knownHosts);
  client.setMissingHostKeyPolicy(new RejectPolicy());
  client.connect(target.host, { port: target.port, username: 'app', keyFilename: keyFile, lookForKeys: false, allowAgent: false, sock: channel });
  const [, stdout] = client.execCommand('echo "hello from the target, through the bastion"');
  process.stdout.write(stdout.read().toString());
  console.log(`exit status ${stdout.channel.recvExitStatus()}`);
} finally {
  client.close();
  jump.close();
  target.close();
  bastion.close();
  rmSync(dir, { recursive: true, force: true });
}
