// Driving a network device's command line, as Paramiko (and Netmiko) scripts do: an old device
// offers only legacy algorithms, answers in a shell with a prompt, and runs no exec commands.
// The "device" here is an embedded SSHServer set up like one (SHA-1 key exchange, a CBC cipher,
// a shell whose prompt is "router# ") so that the sample runs anywhere; for a real device, put
// its address, credentials and known_hosts entry in place of the server's.
//
//   node samples/device-cli.js
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { RejectPolicy, SSHClient, SSHServer } = require('paramiko-ts');

const device = SSHServer.start({
  users: { admin: 'secret' },
  preferences: { kex: ['diffie-hellman-group14-sha1'], ciphers: ['aes128-cbc', '3des-cbc'], macs: ['hmac-sha1'] },
  shell: '/bin/sh',
  env: { PATH: '/usr/bin:/bin', PS1: 'router# ' },
});
const dir = mkdtempSync(join(tmpdir(), 'paramiko-ts-device-'));
const knownHosts = join(dir, 'known_hosts');
writeFileSync(knownHosts, device.knownHosts());

const client = new SSHClient();
try {
  client.loadHostKeys(knownHosts);
  client.setMissingHostKeyPolicy(new RejectPolicy());
  client.connect(device.host, {
    port: device.port,
    username: 'admin',
    password: 'secret',
    lookForKeys: false,
    allowAgent: false,
    // Legacy algorithms are never offered unless named: add what the device needs.
    kexAlgs: '+diffie-hellman-group14-sha1',
    encryptionAlgs: '+aes128-cbc',
  });
  const n = client.getTransport().getNegotiated();
  console.log(`negotiated ${n.kex}, ${n.cipherC2S}, ${n.macC2S}`);

  // A terminal that does not echo what we type, and a read up to each prompt.
  const shell = client.invokeShell({ termModes: { ECHO: 0 } });
  shell.settimeout(10);
  const screen = shell.makefile('r');
  screen.readUntil('router# ');
  for (const command of ['echo "uptime is 42 days"', 'echo "3 interfaces up" | tr a-z A-Z']) {
    shell.send(`${command}\n`);
    const reply = screen.readUntil('router# ');
    console.log(`${command} -> ${reply.slice(0, -'router# '.length).trim()}`);
  }
  shell.send('exit\n');
  console.log(`exit status ${shell.recvExitStatus()}`);
} finally {
  client.close();
  device.close();
  rmSync(dir, { recursive: true, force: true });
}
