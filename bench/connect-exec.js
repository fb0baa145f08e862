#!/usr/bin/env node
// connect + auth (ed25519 key) + exec `true` + read the exit status + close, side by side against
// one throw-away OpenSSH sshd on 127.0.0.1: paramiko-ts (SSHClient), the ssh2 npm package as
// installed and given a TCP_NODELAY socket, Paramiko (timed inside Python, interpreter start
// excluded) and OpenSSH's whole `ssh ... true` command (time per process).
//
// Each client runs in its own process: 1 first connection (for paramiko-ts it includes starting
// the worker thread) and N more, of which the median and p90 are reported. Every client reads the
// key file and checks the host key against a known_hosts file on each connection.
//
//   npm run build && node bench/connect-exec.js [--n 30] [--json FILE]
//       [--only ours,ssh2,ssh2-nodelay,paramiko,openssh,openssh-curve25519]
//       [--openssh10 [ROOT]]   (OpenSSH 10's sshd, unpacked by .ci/install-openssh10; its
//                               default kex is mlkem768x25519-sha256)
//       [--delay MS]           (every client through a relay holding each byte MS ms each way:
//                               a round trip of 2 x MS, so the figures count round trips)
//
// Uses dist/: run `npm run build` first.
'use strict';
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const c = require('./support/common');


// ---------------------------------------------------------------- clients (child processes)

function childOurs(o) {
  const { SSHClient, RejectPolicy } = c.requireDist();
  const ms = [];
  let cipher = null;
  for (let i = 0; i < o.iterations; i++) {
    const t0 = process.hrtime.bigint();
    const client = new SSHClient();
    client.loadHostKeys(o.knownHosts);
    client.setMissingHostKeyPolicy(new RejectPolicy());
    client.connect('127.0.0.1', { port: o.port, username: o.user, keyFilename: o.key, lookForKeys: false, allowAgent: false });
    const [, stdout] = client.execCommand('true');
    const status = stdout.channel.recvExitStatus();
    if (i === 0) {
      const n = client.getTransport().getNegotiated();
      cipher = n ? `${n.kex}, ${n.cipherS2C} ${n.macS2C || ''}`.trim() : null;
    }
    client.close();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (status !== 0) throw new Error(`exit status ${status}`);
  }
  return { ms, cipher };
}

function ssh2Once(o, nodelay, negotiated) {
  const { Client } = require('ssh2');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let elapsed = null;
    const conn = new Client();
    // Built after t0: reading the key file is part of every client's connection time.
    const cfg = c.ssh2Config(o, { nodelay });
    conn.on('handshake', (n) => negotiated && negotiated(n));
    conn.on('error', reject);
    conn.on('ready', () => {
      conn.exec('true', (err, stream) => {
        if (err) return reject(err);
        stream.resume();
        stream.stderr.resume();
        stream.on('exit', (code) => {
          conn.end();
          // end() sends the disconnect and returns: the caller may go on, as after SSHClient.close().
          elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
          if (code !== 0) reject(new Error(`exit status ${code}`));
        });
      });
    });
    // The next connection starts once this one's socket is closed (not counted in its time).
    conn.on('close', () => (elapsed === null ? reject(new Error('closed before the exit status')) : resolve(elapsed)));
    conn.connect(cfg);
  });
}

async function childSsh2(o, nodelay) {
  const ms = [];
  let cipher = null;
  for (let i = 0; i < o.iterations; i++) {
    ms.push(await ssh2Once(o, nodelay, i === 0 ? (n) => (cipher = `${n.kex}, ${n.sc.cipher} ${n.sc.mac || ''}`.trim()) : null));
  }
  return { ms, cipher };
}

// ---------------------------------------------------------------- driver

const TOOLS = [
  { id: 'ours', label: 'paramiko-ts SSHClient' },
  { id: 'ssh2', label: 'ssh2 (as installed)' },
  { id: 'ssh2-nodelay', label: 'ssh2 + TCP_NODELAY socket' },
  { id: 'paramiko', label: 'Paramiko (in-process time)' },
  { id: 'openssh', label: 'OpenSSH ssh (whole process)' },
  // OpenSSH 9.x's default kex is sntrup761x25519-sha512 (post-quantum hybrid), which the other
  // clients do not offer: the same command with the kex they all use.
  { id: 'openssh-curve25519', label: 'OpenSSH ssh, kex curve25519-sha256' },
];

async function measure(tool, sshd, iterations) {
  const common = ['--port', String(sshd.port), '--user', sshd.user, '--key', sshd.keyPath, '--known-hosts', sshd.knownHostsPath];
  if (tool === 'paramiko') {
    return c.runJson(c.PYTHON, [c.PARAMIKO_SCRIPT, 'connect', ...common, '-n', String(iterations)]);
  }
  if (tool === 'openssh' || tool === 'openssh-curve25519') {
    const extra = tool === 'openssh' ? [] : ['-o', 'KexAlgorithms=curve25519-sha256'];
    const args = [...c.sshArgs(sshd, extra), 'true'];
    const ms = [];
    for (let i = 0; i < iterations; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync('ssh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.status !== 0) throw new Error(`ssh exited ${r.status}: ${r.stderr}`);
    }
    return { ms, cipher: c.sshNegotiated(sshd, extra, true) };
  }
  return c.runNodeChild(__filename, ['--child', tool, ...common, '--iterations', String(iterations)]);
}

async function main() {
  const N = Number(c.arg('n', 30));
  const only = c.arg('only') ? String(c.arg('only')).split(',') : null;
  const jsonOut = c.arg('json');
  c.requireDist();
  const { startSshd } = require('./support/sshd');

  console.log(`== connect + auth (ed25519 key) + exec true + exit status + close: 1 first + ${N} connections per client`);
  c.printMachine();
  const ten = c.arg('openssh10');
  const sshd = await startSshd(ten ? { root: ten === true ? '/opt/paramiko-ts/openssh10' : String(ten) } : {});
  const results = {};
  const delayMs = Number(c.arg('delay', 0));
  try {
    console.log(`sshd: ${sshd.banner} on 127.0.0.1:${sshd.port}`);
    let target = sshd;
    if (delayMs) {
      target = await c.throughRelay(sshd, delayMs, sshd.dir);
      console.log(`through a relay adding ${delayMs} ms each way (${2 * delayMs} ms round trip) on 127.0.0.1:${target.port}`);
    }
    for (const t of TOOLS) {
      if (only && !only.includes(t.id)) continue;
      if (t.id.startsWith('ssh2') && !c.ssh2Version()) {
        console.log(`${t.label}: skipped, ssh2 is not installed (npm ci)`);
        continue;
      }
      const r = await measure(t.id, target, N + 1);
      const steady = r.ms.slice(1);
      results[t.id] = { label: t.label, first: r.ms[0], ...c.stats(steady), cipher: r.cipher, ms: r.ms };
      console.log(`  ${t.label}: first ${c.fmt(r.ms[0])} ms, median ${c.fmt(results[t.id].median)} ms, p90 ${c.fmt(results[t.id].p90)} ms`);
    }
  } finally {
    sshd.stop();
  }
  console.log(c.loadLine('after'));

  const ours = results.ours;
  const rows = [['client', 'first ms', 'median ms', 'p90 ms', 'min ms', 'ours faster by (median)', 'negotiated (kex, cipher)']];
  for (const t of TOOLS) {
    const r = results[t.id];
    if (!r) continue;
    const ratio = ours && t.id !== 'ours' ? `${(r.median / ours.median).toFixed(2)}x` : '';
    rows.push([r.label, c.fmt(r.first), c.fmt(r.median), c.fmt(r.p90), c.fmt(r.min), ratio, r.cipher || '']);
  }
  console.log('');
  console.log(c.table(rows));
  console.log('(ratio = peer median / paramiko-ts median: above 1 we are faster)');
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ n: N, results }, null, 2));
}

c.benchEntry({
  roles: {
    ours: childOurs,
    ssh2: (o) => childSsh2(o, false),
    'ssh2-nodelay': (o) => childSsh2(o, true),
  },
  extra: () => ({ iterations: Number(c.arg('iterations')) }),
  main,
});
