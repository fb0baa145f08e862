#!/usr/bin/env node
// Everyday operations one by one, as a script or a test suite makes them: paramiko-ts's client
// against a throw-away OpenSSH sshd and against our SSHServer (shell /bin/sh, SFTP at `/`), and
// Paramiko's client against the same sshd (bench/support/paramiko_ops.py, timed inside Python), in
// turns, each operation timed --rounds times on a fresh connection per round; medians in ms.
// Both servers get the same user key; sshd's sessions get `SetEnv HOME=<temp dir>` (see
// bench/support/sshd.js), ours run /bin/sh, so neither pays for this machine's ~/.bashrc.
//
//   npm run build && node bench/operation-latency.js [--rounds 7] [--turns 2] [--warm 200] [--delay MS]
//
// The rows marked "warm" repeat an SFTP operation --warm times back to back on one connection
// and take the median of the second half: code run many times, as in a script that makes many
// operations (the rows above time each operation once per connection, mostly before V8 has
// compiled it).
//
// --delay MS reaches both servers through spec/support/delay-relay.js, which holds each byte MS
// ms each way: how many round trips each operation takes shows in its time.
//
// Uses dist/: run `npm run build` first.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const c = require('./support/common');

const ROUNDS = Number(c.arg('rounds', 7));
const TURNS = Number(c.arg('turns', 2));
const DELAY_MS = Number(c.arg('delay', 0));
const WARM = Number(c.arg('warm', 200));
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Median ms of each operation over ROUNDS fresh connections to `target`. */
function measure(lib, target, dir) {
  const samples = {};
  const time = (name, fn) => {
    const t = now();
    const r = fn();
    (samples[name] ??= []).push(now() - t);
    return r;
  };
  for (let round = 0; round < ROUNDS; round++) {
    const client = new lib.SSHClient();
    client.setMissingHostKeyPolicy(new lib.AutoAddPolicy());
    time('connect + auth', () =>
      client.connect('127.0.0.1', { port: target.port, username: target.user, pkey: target.key, allowAgent: false, lookForKeys: false }),
    );
    time('exec true + status', () => {
      const [, out] = client.execCommand('true');
      out.read();
      return out.channel.recvExitStatus();
    });
    time('exec echo, read()', () => client.execCommand('echo hi')[1].read());
    const sftp = time('openSftp', () => client.openSftp());
    time('sftp stat', () => sftp.stat(path.join(dir, 'small')));
    time('listdir (1000 names)', () => sftp.listdir(path.join(dir, 'many')));
    time('get 1 KB', () => sftp.get(path.join(dir, 'small'), path.join(dir, `got-${round}`)));
    time('put 1 KB', () => sftp.put(path.join(dir, 'small'), path.join(dir, `put-${round}`)));
    time('open, read(), close 1 KB', () => {
      const f = sftp.open(path.join(dir, 'small'), 'r');
      f.read();
      f.close();
    });
    sftp.close();
    const shell = client.invokeShell();
    shell.settimeout(10);
    time('shell start + echo', () => {
      shell.send('echo MARK$((1+1))\n');
      let text = '';
      while (!text.includes('MARK2')) text += shell.recv(4096).toString();
    });
    shell.close();
    time('close', () => client.close());
  }
  // Warm: the same SFTP operations WARM times each, back to back on one connection (the code
  // compiled by then, as in a script that makes many): the median of the last half.
  const client = new lib.SSHClient();
  client.setMissingHostKeyPolicy(new lib.AutoAddPolicy());
  client.connect('127.0.0.1', { port: target.port, username: target.user, pkey: target.key, allowAgent: false, lookForKeys: false });
  const sftp = client.openSftp();
  const warm = (name, fn) => {
    const t = [];
    for (let i = 0; i < WARM; i++) {
      const t0 = now();
      fn(i);
      t.push(now() - t0);
    }
    (samples[`${name}, warm`] ??= []).push(...t.slice(WARM >> 1));
  };
  warm('sftp stat', () => sftp.stat(path.join(dir, 'small')));
  warm('get 1 KB', (i) => sftp.get(path.join(dir, 'small'), path.join(dir, `wgot-${i % 8}`)));
  warm('put 1 KB', (i) => sftp.put(path.join(dir, 'small'), path.join(dir, `wput-${i % 8}`)));
  warm('open, read(), close 1 KB', () => {
    const f = sftp.open(path.join(dir, 'small'), 'r');
    f.read();
    f.close();
  });
  client.close();
  return Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, c.quantile(s, 0.5)]));
}

/** Paramiko's medians over ROUNDS fresh connections (null when it is not installed). */
function measureParamiko(port, user, keyPath, dir) {
  const script = path.join(__dirname, 'support', 'paramiko_ops.py');
  try {
    const args = [script, '--port', String(port), '--user', user, '--key', keyPath, '--dir', dir, '--rounds', String(ROUNDS), '--warm', String(WARM)];
    return JSON.parse(execFileSync(c.PYTHON, args, { encoding: 'utf8', timeout: 600_000 }));
  } catch (err) {
    console.log(`(Paramiko not measured: ${String(err.message).split('\n')[0]})`);
    return null;
  }
}

async function main() {
  const lib = c.requireDist();
  const { startSshd } = require('./support/sshd');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-oplat-'));
  fs.mkdirSync(path.join(dir, 'many'));
  for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(dir, 'many', `f${i}`), 'x');
  fs.writeFileSync(path.join(dir, 'small'), Buffer.alloc(1000, 1));
  console.log(`== one operation at a time, median of ${ROUNDS} fresh connections per server and turn, ms`);
  c.printMachine();
  const sshd = await startSshd();
  const key = lib.PKey.fromPrivateKeyFile(sshd.keyPath);
  const server = lib.SSHServer.start({
    users: { [sshd.user]: { authorizedKeys: fs.readFileSync(sshd.keyPath + '.pub', 'utf8') } },
    shell: '/bin/sh',
    sftp: { root: '/' },
  });
  try {
    // The relays end with this process (their stdin is its pipe).
    const { startDelayRelay } = require('../spec/support/delay-relay');
    const reach = async (port) => (DELAY_MS ? (await startDelayRelay({ targetPort: port, delayMs: DELAY_MS })).port : port);
    const sshdPort = await reach(sshd.port);
    const oursPort = await reach(server.port);
    if (DELAY_MS) console.log(`through a relay adding ${DELAY_MS} ms each way (a ${2 * DELAY_MS} ms round trip)`);
    const rows = { sshd: [], ours: [], paramiko: [] };
    for (let turn = 0; turn < TURNS; turn++) {
      rows.sshd.push(measure(lib, { port: sshdPort, user: sshd.user, key }, dir));
      rows.ours.push(measure(lib, { port: oursPort, user: sshd.user, key }, dir));
      const p = measureParamiko(sshdPort, sshd.user, sshd.keyPath, dir);
      if (p) rows.paramiko.push(p);
    }
    const names = Object.keys(rows.sshd[0]);
    const cell = (runs, name) => runs.map((r) => (r[name] === undefined ? '-' : r[name].toFixed(2))).join(' / ');
    const width = 8 * TURNS + 2;
    const nameWidth = Math.max(...names.map((n) => n.length));
    console.log(`${'operation'.padEnd(nameWidth)}  ${'sshd'.padEnd(width)}  ${'SSHServer'.padEnd(width)}  Paramiko -> sshd`);
    for (const name of names) {
      console.log(`${name.padEnd(nameWidth)}  ${cell(rows.sshd, name).padEnd(width)}  ${cell(rows.ours, name).padEnd(width)}  ${rows.paramiko.length ? cell(rows.paramiko, name) : 'not measured'}`);
    }
    console.log('(one figure per turn; the client is paramiko-ts against sshd and against our SSHServer, then Paramiko against the same sshd)');
  } finally {
    server.close();
    sshd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
