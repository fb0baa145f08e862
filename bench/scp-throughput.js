#!/usr/bin/env node
// SCP throughput against one throw-away OpenSSH sshd on 127.0.0.1 (aes128-gcm for all): a file of
// --size downloaded and uploaded by
//   paramiko-ts  SCPClient.get / put (the legacy scp protocol over a session channel)
//   OpenSSH      scp -O (the same protocol), and plain scp (SFTP underneath since OpenSSH 9.0)
// OpenSSH's figures are whole processes (connect included); ours are timed around get/put on a
// connection made before. Each case runs --repeat times in turn; the median MB/s (10^6 B/s) is
// printed with the runs.
//
//   npm run build && node bench/scp-throughput.js [--size 256M] [--repeat 3]
//
// Uses dist/: run `npm run build` first.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const c = require('./support/common');
const { startSshd } = require('./support/sshd');

const SIZE = c.parseSize(c.arg('size', '256M'));
const REPEAT = Number(c.arg('repeat', 3));
const GCM = 'aes128-gcm@openssh.com';

async function main() {
  const { SSHClient, RejectPolicy, SCPClient } = c.requireDist();
  const sshd = await startSshd({ ciphers: GCM });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-bench-scp-'));
  try {
    const source = path.join(dir, 'source.bin');
    fs.writeFileSync(source, Buffer.alloc(SIZE, 0x5a));
    const client = new SSHClient();
    client.loadHostKeys(sshd.knownHostsPath);
    client.setMissingHostKeyPolicy(new RejectPolicy());
    client.connect(sshd.host, { port: sshd.port, username: sshd.user, keyFilename: sshd.keyPath, lookForKeys: false, allowAgent: false });
    const scp = new SCPClient(client.getTransport());
    const sshOpts = c.sshArgs(sshd, ['-o', `Ciphers=${GCM}`]).slice(0, -1).filter((a, i, all) => !(a === '-p' || all[i - 1] === '-p') && !(a === '-l' || all[i - 1] === '-l'));
    const target = `${sshd.user}@${sshd.host}`;
    const scpProcess = (legacy, from, to) => {
      const r = spawnSync('scp', [...(legacy ? ['-O'] : []), '-q', ...sshOpts, '-P', String(sshd.port), from, to]);
      if (r.status !== 0) throw new Error(`scp failed: ${r.stderr}`);
    };
    const cases = [
      ['paramiko-ts SCPClient get', () => scp.get(source, path.join(dir, 'ours-down'))],
      ['paramiko-ts SCPClient put', () => scp.put(source, path.join(dir, 'ours-up'))],
      ['OpenSSH scp -O get (whole process)', () => scpProcess(true, `${target}:${source}`, path.join(dir, 'o-down'))],
      ['OpenSSH scp -O put (whole process)', () => scpProcess(true, source, `${target}:${path.join(dir, 'o-up')}`)],
      ['OpenSSH scp (SFTP) get (whole process)', () => scpProcess(false, `${target}:${source}`, path.join(dir, 's-down'))],
      ['OpenSSH scp (SFTP) put (whole process)', () => scpProcess(false, source, `${target}:${path.join(dir, 's-up')}`)],
    ];
    const runs = new Map(cases.map(([name]) => [name, []]));
    for (let i = 0; i < REPEAT; i++) {
      for (const [name, run] of cases) {
        const t0 = process.hrtime.bigint();
        run();
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        runs.get(name).push(SIZE / s / 1e6);
      }
    }
    client.close();
    c.printMachine();
    console.log(`\n${(SIZE / 1048576).toFixed(0)} MiB over scp, ${GCM}, median of ${REPEAT}\n`);
    const rows = [['case', 'MB/s', 'runs']];
    for (const [name, mbs] of runs) rows.push([name, c.fmt(c.quantile(mbs, 0.5), 0), mbs.map((v) => v.toFixed(0)).join(' ')]);
    console.log(c.table(rows));
  } finally {
    sshd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
