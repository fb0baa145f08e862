#!/usr/bin/env node
// A script that runs one command, as a cron job or a deploy step runs it: a fresh process that
// loads the library, connects (ed25519 key, host key checked against a known_hosts file), runs
// `true`, reads the exit status and closes. Timed from outside, whole process: interpreter start,
// module loading, the transport worker's start, and code that runs for the first time.
// connect-exec.js times the same work inside one process, where only the first round is cold.
//
// Side by side, in turns, against one throw-away OpenSSH sshd on 127.0.0.1: paramiko-ts, the ssh2
// npm package given a TCP_NODELAY socket, Paramiko, OpenSSH's `ssh`, and `node -e 0` (what any
// Node script pays before its first line).
//
//   npm run build && node bench/cold-script.js [--runs 9] [--only ours,ssh2,paramiko,ssh,node]
//
// Uses dist/: run `npm run build` first.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const c = require('./support/common');

const RUNS = Number(c.arg('runs', 9));
const ONLY = String(c.arg('only', 'ours,ssh2,paramiko,ssh,node')).split(',');

/** The scripts, written to a temp folder: each takes port, user, key and known_hosts from argv. */
function scripts(dir) {
  const ours = path.join(dir, 'ours.js');
  fs.writeFileSync(
    ours,
    `const [port, user, key, knownHosts] = process.argv.slice(2);
const { SSHClient, RejectPolicy } = require(${JSON.stringify(c.DIST)});
const client = new SSHClient();
client.loadHostKeys(knownHosts);
client.setMissingHostKeyPolicy(new RejectPolicy());
client.connect('127.0.0.1', { port: Number(port), username: user, keyFilename: key, lookForKeys: false, allowAgent: false });
const [, stdout] = client.execCommand('true');
if (stdout.channel.recvExitStatus() !== 0) process.exit(1);
client.close();
`,
  );
  const ssh2 = path.join(dir, 'ssh2.js');
  fs.writeFileSync(
    ssh2,
    `const [port, user, key, knownHosts] = process.argv.slice(2);
const fs = require('node:fs');
const net = require('node:net');
const { Client, utils } = require(${JSON.stringify(require.resolve('ssh2', { paths: [c.ROOT] }))});
const known = fs.readFileSync(knownHosts, 'utf8').trim().split(/\\s+/)[2];
const sock = net.connect(Number(port), '127.0.0.1', () => {
  sock.setNoDelay(true);
  const client = new Client();
  client.on('ready', () => client.exec('true', (err, stream) => {
    if (err) throw err;
    stream.on('exit', (code) => { if (code !== 0) process.exitCode = 1; });
    stream.on('close', () => client.end());
    stream.resume();
  }));
  client.on('error', (err) => { console.error(err.message); process.exit(1); });
  client.connect({ sock, username: user, privateKey: fs.readFileSync(key),
    hostVerifier: (keyBlob) => Buffer.from(keyBlob).toString('base64') === known });
});
`,
  );
  const paramiko = path.join(dir, 'paramiko_one.py');
  fs.writeFileSync(
    paramiko,
    `import sys, paramiko
port, user, key, known = sys.argv[1:5]
client = paramiko.SSHClient()
client.load_host_keys(known)
client.set_missing_host_key_policy(paramiko.RejectPolicy())
client.connect("127.0.0.1", port=int(port), username=user, key_filename=key, look_for_keys=False, allow_agent=False)
stdin, stdout, stderr = client.exec_command("true")
if stdout.channel.recv_exit_status() != 0: sys.exit(1)
client.close()
`,
  );
  return { ours, ssh2, paramiko };
}

async function main() {
  const { startSshd } = require('./support/sshd');
  console.log(`== a one-command script in a fresh process (connect, exec true, exit status, close), whole-process ms, ${RUNS} runs in turns`);
  c.printMachine();
  const sshd = await startSshd();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-cold-'));
  try {
    const s = scripts(dir);
    const args = [String(sshd.port), sshd.user, sshd.keyPath, sshd.knownHostsPath];
    const cases = {
      ours: ['paramiko-ts', process.execPath, [s.ours, ...args]],
      ssh2: ['ssh2 + TCP_NODELAY socket', process.execPath, [s.ssh2, ...args]],
      paramiko: ['Paramiko', c.PYTHON, [s.paramiko, ...args]],
      ssh: ['OpenSSH ssh', 'ssh', [...c.sshArgs(sshd), 'true']],
      node: ['node -e 0 (the floor of a Node script)', process.execPath, ['-e', '0']],
    };
    const picked = Object.entries(cases).filter(([k]) => ONLY.includes(k));
    const times = new Map(picked.map(([k]) => [k, []]));
    for (let run = 0; run < RUNS; run++) {
      for (const [key, [, cmd, argv]] of picked) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.status !== 0) throw new Error(`${key} exited ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').slice(0, 500)}`);
        times.get(key).push(ms);
      }
    }
    const ours = c.quantile(times.get('ours') ?? [], 0.5);
    const rows = picked.map(([key, [label]]) => {
      const t = times.get(key);
      const median = c.quantile(t, 0.5);
      const ratio = key === 'ours' || key === 'node' || !ours ? '' : `${(median / ours).toFixed(2)}x`;
      return [label, median.toFixed(0), Math.min(...t).toFixed(0), Math.max(...t).toFixed(0), ratio];
    });
    console.log(c.table([['script', 'median ms', 'min ms', 'max ms', 'ours faster by (median)'], ...rows]));
    console.log('(ratio = peer median / paramiko-ts median: above 1 we are faster)');
  } finally {
    sshd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
