#!/usr/bin/env node
// A command's output streamed by each server to OpenSSH's `ssh`: our embedded SSHServer side by
// side with OpenSSH's sshd (same Ed25519 host key and user key), alternating, each run the whole
// `ssh -c CIPHER host 'head -c SIZE /dev/zero' | wc -c` pipeline (connect included; the count is
// checked).
//
//   npm run build && node bench/server-stream.js [--size 1G] [--repeat 3]
//       [--ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const c = require('./support/common');
const { startSshd } = require('./support/sshd');

const SIZE = c.parseSize(c.arg('size', '1G'));
const REPEAT = Number(c.arg('repeat', 3));
const CIPHERS = String(c.arg('ciphers', 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com')).split(',');

/** MB/s of one streamed run, or NaN (with the reason printed) when ssh failed or the size is off. */
function streamOnce(server, cipher) {
  const quote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  // The bytes cross the connection and are counted here, by wc reading ssh's stdout.
  const command = `ssh ${[...c.sshArgs(server, ['-c', cipher]), `head -c ${SIZE} /dev/zero`].map(quote).join(' ')} | wc -c`;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', command], { encoding: 'utf8', timeout: 120_000 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 || Number(r.stdout.trim()) !== SIZE) {
    console.log(`  ${server.name} ${cipher}: failed (${r.status ?? r.signal}) ${r.stderr.trim().slice(0, 200)}`);
    return NaN;
  }
  return SIZE / 1e6 / seconds;
}

async function main() {
  const pts = c.requireDist();
  const sshd = await startSshd();
  sshd.name = 'OpenSSH sshd';
  const server = pts.SSHServer.start({
    users: { [sshd.user]: { authorizedKeys: fs.readFileSync(sshd.keyPath + '.pub', 'utf8') } },
    hostKeys: [path.join(sshd.dir, 'ssh_host_ed25519_key')],
    env: { PATH: '/usr/bin:/bin', HOME: path.join(sshd.dir, 'home'), LANG: 'C.UTF-8' },
  });
  try {
    const ours = { ...sshd, name: 'paramiko-ts SSHServer', port: server.port, knownHostsPath: path.join(sshd.dir, 'known_hosts_ours') };
    fs.writeFileSync(ours.knownHostsPath, server.knownHosts());
    c.printMachine();
    console.log(`${SIZE} bytes per run, ${REPEAT} runs per server and cipher; native ciphers: ${pts.nativeCryptoStatus()}`);
    const rows = [['cipher', 'sshd MB/s (median)', 'runs', 'ours MB/s (median)', 'runs', 'ours / sshd']];
    for (const cipher of CIPHERS) {
      const runs = { sshd: [], ours: [] };
      for (let i = 0; i < REPEAT; i++) {
        runs.sshd.push(streamOnce(sshd, cipher));
        runs.ours.push(streamOnce(ours, cipher));
      }
      const med = (xs) => c.quantile(xs.filter(Number.isFinite), 0.5);
      const fmtRuns = (xs) => xs.map((x) => c.fmt(x, 0)).join(' ');
      rows.push([cipher, c.fmt(med(runs.sshd), 0), fmtRuns(runs.sshd), c.fmt(med(runs.ours), 0), fmtRuns(runs.ours), `${c.fmt(med(runs.ours) / med(runs.sshd), 2)}x`]);
    }
    console.log(`\n${c.table(rows)}\n(whole ssh processes, connect included; MB/s = 10^6 bytes/s)`);
  } finally {
    server.close();
    sshd.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
