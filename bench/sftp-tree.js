#!/usr/bin/env node
// Directory trees over SFTP, side by side against one throw-away OpenSSH sshd: a tree of many
// small files (--dirs directories of --files files of --size bytes) uploaded and downloaded by
// paramiko-ts (`put`/`get` with `recurse`) and by OpenSSH's `sftp -b` (`put -r` / `get -r`),
// in turns, --repeat times; the contents of every copy are compared with the source. OpenSSH's
// figures are net of a median `sftp -b` that only connects. Small files are bound by round
// trips (open, fstat, read or write, close per file), not bandwidth.
//
//   npm run build && node bench/sftp-tree.js [--dirs 20] [--files 20] [--size 4096] [--repeat 3] [--delay MS]
//
// --delay MS: both clients through a relay holding each byte MS ms each way (a round trip of
// 2 x MS), where round trips, not CPU, make the figures.
//
// Uses dist/: run `npm run build` first.
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const c = require('./support/common');

const DIRS = Number(c.arg('dirs', 20));
const FILES = Number(c.arg('files', 20));
const SIZE = Number(c.arg('size', 4096));
const REPEAT = Number(c.arg('repeat', 3));
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Every file of a tree with its SHA-256, by relative path. */
function digest(root) {
  const out = {};
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out[r] = crypto.createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex');
    }
  };
  walk('');
  return out;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function main() {
  const lib = c.requireDist();
  const { startSshd } = require('./support/sshd');
  console.log(`== SFTP directory trees: ${DIRS} directories of ${FILES} files of ${SIZE} bytes, put and get, ${REPEAT} rounds`);
  c.printMachine();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-bench-tree-'));
  const src = path.join(work, 'src');
  for (let d = 0; d < DIRS; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < FILES; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), crypto.randomBytes(SIZE));
  }
  const want = digest(src);
  const sshd = await startSshd();
  const delayMs = Number(c.arg('delay', 0));
  const target = delayMs ? await c.throughRelay(sshd, delayMs, sshd.dir) : sshd;
  if (delayMs) console.log(`through a relay adding ${delayMs} ms each way (${2 * delayMs} ms round trip)`);
  const runs = { ours: { put: [], get: [] }, sftp: { put: [], get: [], connect: [] } };
  const sftpArgs = ['-q', '-o', `UserKnownHostsFile=${target.knownHostsPath}`, '-i', sshd.keyPath, '-P', String(target.port), '-b'];
  const batch = (line) => {
    const file = path.join(work, 'batch');
    fs.writeFileSync(file, line ? `${line}\n` : '');
    const t = now();
    execFileSync('sftp', [...sftpArgs, file, `${sshd.user}@127.0.0.1`], { stdio: ['ignore', 'ignore', 'pipe'] });
    return now() - t;
  };
  try {
    const client = new lib.SSHClient();
    client.loadHostKeys(target.knownHostsPath);
    client.connect('127.0.0.1', { port: target.port, username: sshd.user, keyFilename: sshd.keyPath, lookForKeys: false, allowAgent: false });
    const sftp = client.openSftp();
    try {
      for (let r = 0; r < REPEAT; r++) {
        for (const who of ['ours', 'sftp']) {
          const remote = fs.mkdtempSync(path.join(work, `remote-${who}-`));
          const back = fs.mkdtempSync(path.join(work, `back-${who}-`));
          if (who === 'ours') {
            let t = now();
            sftp.put(src, remote, null, true, { recurse: true });
            runs.ours.put.push(now() - t);
            t = now();
            sftp.get(remote, back, null, { recurse: true });
            runs.ours.get.push(now() - t);
          } else {
            // Whole processes; the median connect-only run is taken off when printing.
            runs.sftp.connect.push(batch(''));
            runs.sftp.put.push(batch(`put -r ${src}/. ${remote}`));
            runs.sftp.get.push(batch(`get -r ${remote}/. ${back}`));
          }
          if (!same(digest(remote), want) || !same(digest(back), want)) throw new Error(`${who}: a copy differs from the source`);
          fs.rmSync(remote, { recursive: true });
          fs.rmSync(back, { recursive: true });
        }
      }
    } finally {
      sftp.close();
      client.close();
    }
  } finally {
    sshd.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  const connect = c.quantile(runs.sftp.connect, 0.5);
  const med = (xs, minus = 0) => c.quantile(xs.map((x) => x - minus), 0.5);
  const fmt = (xs, minus = 0) => `${med(xs, minus).toFixed(0)} ms (${xs.map((x) => (x - minus).toFixed(0)).join(' ')})`;
  console.log(c.loadLine('after'));
  console.log('');
  console.log(`client                                           put                       get`);
  console.log(`paramiko-ts put/get recurse                      ${fmt(runs.ours.put).padEnd(26)}${fmt(runs.ours.get)}`);
  console.log(`OpenSSH sftp -b put -r/get -r (net of ${connect.toFixed(0)} ms)    ${fmt(runs.sftp.put, connect).padEnd(26)}${fmt(runs.sftp.get, connect)}`);
  console.log(`(every copy's files compared with the source by SHA-256)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
