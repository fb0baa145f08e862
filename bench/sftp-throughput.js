#!/usr/bin/env node
// SFTP throughput, side by side over loopback: one file of --size random bytes downloaded (get)
// and uploaded (put) against one throw-away OpenSSH sshd (internal-sftp) by
//   OpenSSH      sftp -b batch (default -B 32768 -R 64), the whole process; printed net of a
//                median `sftp -b` that only connects (that net figure is what ratios use)
//   ssh2         sftp.fastGet / fastPut (defaults), as installed and with a TCP_NODELAY socket
//   Paramiko     SFTPClient.get (prefetch) / put, timed inside Python
//   paramiko-ts  SFTPClient.get / put
// every client with aes128-gcm@openssh.com set (Paramiko 2.x has no AES-GCM: it keeps its own
// default, named in the table). Then the servers, each served to OpenSSH's sftp client: sshd vs
// our SSHServer with `sftp: { root: '/' }` (same host key and user key).
//
// Each transfer is checked before it counts: the size of every copy, and the SHA-256 of the
// first copy each client makes in each direction. Libraries are timed from the get/put call to
// its return (connect, auth and the SFTP session's start excluded). MB/s are 10^6 bytes/s,
// medians of --repeat runs (round robin). Against OpenSSH's sftp a second ratio is printed: the
// median of each round's ours/sftp ratio (the two runs of a round are back to back, so a slow
// spell of the VM weighs on both).
//
//   npm run build && node bench/sftp-throughput.js [--size 1G] [--repeat 3] [--paramiko-max-size 448M]
//       [--only sftp,ssh2,ssh2-nodelay,ssh2-js-nodelay,paramiko,ours,server] [--json [FILE]]
//       [--cipher chacha20-poly1305@openssh.com] [--directions get|put|get,put] [--delay MS]
//
// --delay MS puts a relay (spec/support/delay-relay.js) between every client and its server that
// holds each byte MS ms each way: a round trip of 2 x MS, as on a network or through a local
// tunnel to a distant server (the socket's peer is still this machine). Throughput is then bound
// by windows and pipelines, not CPU; try --size 256M.
//
// Profile paramiko-ts's client runs (one .cpuprofile per thread, the worker included):
//   node bench/sftp-throughput.js --only ours --repeat 1 --cpu-prof /tmp/prof
//   node bench/support/cpuprofile-summary.js /tmp/prof
//
// Uses dist/: run `npm run build` first.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const c = require('./support/common');

// --cipher NAME sets another cipher for every client (chacha20-poly1305@openssh.com: OpenSSH's
// default); the child processes inherit it through the environment.
/** --directions get or put runs only that one (profiling one side). */
const DIRECTIONS = String(c.arg('directions', 'get,put')).split(',');
const GCM = String(c.arg('cipher', process.env.PTS_BENCH_CIPHER || 'aes128-gcm@openssh.com'));
process.env.PTS_BENCH_CIPHER = GCM;
const PARAMIKO_SCRIPT = path.join(__dirname, 'support', 'sftp_paramiko.py');
// Paramiko rekeys after 512 MiB (Packetizer.REKEY_BYTES) and that rekey, under a stream, often
// stalls against OpenSSH (see channel-throughput.js): Paramiko moves at most this much.
const PARAMIKO_MAX_SIZE = c.parseSize(c.arg('paramiko-max-size', '448M'));

// ---------------------------------------------------------------- clients (child processes)

function childOurs(o) {
  const { Transport, PKey, HostKeys, SFTPClient } = c.requireDist();
  const t = new Transport(['127.0.0.1', o.port]);
  t.getSecurityOptions().ciphers = [GCM];
  t.startClient();
  const known = new HostKeys(o.knownHosts).lookup(`[127.0.0.1]:${o.port}`);
  const key = t.getRemoteServerKey();
  if (!known || !known.get(key.getName()) || !known.get(key.getName()).equals(key)) throw new Error('host key mismatch');
  t.authPublickey(o.user, PKey.fromPrivateKeyFile(o.key));
  const sftp = SFTPClient.fromTransport(t);
  const t0 = process.hrtime.bigint();
  const cpu0 = c.threadCpu();
  if (o.direction === 'get') sftp.get(o.remote, o.local);
  else sftp.put(o.local, o.remote);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const detail = `cpu during the transfer: ${c.threadCpuSince(cpu0)}`;
  const n = t.getNegotiated();
  sftp.close();
  t.close();
  return { seconds, cipher: n ? `${n.cipherS2C} ${n.macS2C || ''}`.trim() : null, detail };
}

function childSsh2(o, nodelay, native = true) {
  const { Client } = c.requireSsh2({ native });
  return new Promise((resolve, reject) => {
    const conn = new Client();
    const cfg = c.ssh2Config(o, { nodelay, cipher: GCM });
    let cipher = null;
    conn.on('handshake', (n) => (cipher = `${n.sc.cipher} ${n.sc.mac || ''}`.trim()));
    conn.on('error', reject);
    conn.on('ready', () => {
      conn.sftp((err, sftp) => {
        if (err) return reject(err);
        const t0 = process.hrtime.bigint();
        const done = (e) => {
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          conn.end();
          if (e) reject(e);
          else resolve({ seconds, cipher });
        };
        if (o.direction === 'get') sftp.fastGet(o.remote, o.local, done);
        else sftp.fastPut(o.local, o.remote, done);
      });
    });
    conn.connect(cfg);
  });
}

// ---------------------------------------------------------------- driver

const CLIENTS = [
  { id: 'sftp', label: 'OpenSSH sftp -b' },
  { id: 'ssh2', label: 'ssh2 fastGet/fastPut (as installed)' },
  { id: 'ssh2-nodelay', label: 'ssh2 fastGet/fastPut + TCP_NODELAY' },
  { id: 'ssh2-js-nodelay', label: 'ssh2 + TCP_NODELAY, without its native binding' },
  { id: 'paramiko', label: 'Paramiko get (prefetch) / put' },
  { id: 'ours', label: 'paramiko-ts SFTPClient get / put' },
];

/** OpenSSH sftp's arguments for a target ({ host, port, user, keyPath, knownHostsPath }). */
function sftpArgs(target, batch) {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', `UserKnownHostsFile=${target.knownHostsPath}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'LogLevel=ERROR',
    '-o', `Port=${target.port}`,
    '-o', `User=${target.user}`,
    '-i', target.keyPath,
    '-c', GCM,
    '-b', batch,
    target.host,
  ];
}

/** Seconds any one child process may take before it is killed and its run counts as failed. */
let childTimeout = 120;

/**
 * Runs a child process; resolves with its stdout once it exits 0. A child still running after
 * `childTimeout` seconds is killed (by its PID) and the run fails: a hung transfer never stalls
 * the benchmark.
 */
function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, childTimeout * 1000);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${path.basename(cmd)} ${args[0]} killed after ${childTimeout} s: ${err.trim()}`));
      else if (code !== 0) reject(new Error(`${path.basename(cmd)} exited ${code ?? signal}: ${err.trim()}`));
      else resolve(out);
    });
  });
}

/** A child that prints its result as JSON on its last line. */
async function runJson(cmd, args) {
  const out = await run(cmd, args);
  const lines = out.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]);
  } catch {
    throw new Error(`no JSON result from ${path.basename(cmd)} ${args[0]}: ${out.trim()}`);
  }
}

/** One `sftp -b` run of `lines`; resolves with its wall-clock seconds. */
async function sftpBatch(target, dir, lines) {
  const batch = path.join(dir, `batch-${process.hrtime.bigint()}`);
  fs.writeFileSync(batch, lines.join('\n') + '\n');
  try {
    const t0 = process.hrtime.bigint();
    await run('sftp', sftpArgs(target, batch));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    fs.rmSync(batch, { force: true });
  }
}

/** Median seconds of an `sftp -b` that connects, runs `pwd` and quits. */
async function sftpConnectSeconds(target, dir) {
  const s = [];
  for (let i = 0; i < 5; i++) s.push(await sftpBatch(target, dir, ['pwd']));
  return c.quantile(s, 0.5);
}

/** A file of `size` random bytes; resolves with its SHA-256. */
function makeSource(file, size) {
  const fd = fs.openSync(file, 'w');
  const hash = crypto.createHash('sha256');
  try {
    const chunk = 8 << 20;
    for (let off = 0; off < size; off += chunk) {
      const b = crypto.randomBytes(Math.min(chunk, size - off));
      hash.update(b);
      fs.writeSync(fd, b);
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Writes back every dirty page before a timed run. A fresh 1 GiB source is otherwise written back
 * by the kernel's flusher 30 s after it was made (`vm.dirty_expire_centisecs`), in the middle of
 * whichever runs come then, and charges their machine CPU and their disk with it.
 */
function settleDisk() {
  spawnSync('sync', [], { stdio: 'ignore' });
}

function sha256File(file) {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 4 << 20 })
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/**
 * One transfer by one client: `direction` 'get' (remote `src` to a fresh local file) or 'put'
 * (local `src` to a fresh remote file). Resolves with { seconds, bytes, cipher } once the copy
 * is checked (size always, SHA-256 when `hash` is given).
 */
async function transfer(tool, target, dir, direction, src, size, hash) {
  const dst = path.join(dir, `${direction}-${tool}-${process.hrtime.bigint()}`);
  const remote = direction === 'get' ? src : dst;
  const local = direction === 'get' ? dst : src;
  let res;
  settleDisk();
  const cpu0 = c.machineCpuSeconds();
  try {
    if (tool === 'sftp') {
      const seconds = await sftpBatch(target, dir, [`${direction} ${src} ${dst}`]);
      res = { seconds };
    } else if (tool === 'paramiko') {
      const common = ['--port', String(target.port), '--user', target.user, '--key', target.keyPath, '--known-hosts', target.knownHostsPath];
      res = await runJson(c.PYTHON, [PARAMIKO_SCRIPT, direction, ...common, '--remote', remote, '--local', local]);
    } else {
      const args = ['--child', tool, '--port', String(target.port), '--user', target.user, '--key', target.keyPath, '--known-hosts', target.knownHostsPath];
      const prof = c.arg('cpu-prof');
      const nodeArgs = prof && tool === 'ours' ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
      res = await runJson(process.execPath, [...nodeArgs, __filename, ...args, '--direction', direction, '--remote', remote, '--local', local]);
    }
    res.machineCpu = c.machineCpuSeconds() - cpu0;
    const got = fs.statSync(dst).size;
    if (got !== size) throw new Error(`${tool} ${direction}: the copy has ${got} bytes, ${size} expected`);
    if (hash) {
      const h = await sha256File(dst);
      if (h !== hash) throw new Error(`${tool} ${direction}: the copy's SHA-256 differs from the source's`);
    }
    return { ...res, bytes: size, checked: hash ? 'size+sha256' : 'size' };
  } finally {
    fs.rmSync(dst, { force: true });
  }
}

async function main() {
  const size = c.parseSize(c.arg('size', '1G'));
  const delayMs = Number(c.arg('delay', 0));
  const repeat = Number(c.arg('repeat', 3));
  const only = c.arg('only') ? String(c.arg('only')).split(',') : null;
  const json = c.arg('json');
  const pts = c.requireDist();
  const { startSshd } = require('./support/sshd');
  const want = (id) => !only || only.includes(id);
  // Generous: a transfer slower than 5 MB/s (plus a minute) is broken, not slow.
  childTimeout = 60 + size / 5e6;

  const link = delayMs ? `through a relay adding ${delayMs} ms each way (${2 * delayMs} ms round trip)` : 'over loopback';
  console.log(`== SFTP throughput: a ${(size / 2 ** 20).toFixed(0)} MiB file of random bytes, get and put ${link}, median of ${repeat} runs`);
  c.printMachine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-bench-sftp-'));
  // Also on a signal (bench/support/sshd.js exits the process then): no gigabytes left behind.
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const sshd = await startSshd({ ciphers: `${GCM},aes128-ctr` });
  let server = null;
  const results = { clients: {}, servers: {} };
  try {
    console.log(`sshd: ${sshd.banner} on 127.0.0.1:${sshd.port}`);
    const src = path.join(dir, 'source');
    const srcHash = makeSource(src, size);
    const paramikoSize = Math.min(size, PARAMIKO_MAX_SIZE);
    const paramikoSrc = paramikoSize < size ? path.join(dir, 'source-paramiko') : src;
    const paramikoHash = paramikoSize < size ? makeSource(paramikoSrc, paramikoSize) : srcHash;

    // ---- clients against sshd
    let sshdTarget = { host: '127.0.0.1', port: sshd.port, user: sshd.user, keyPath: sshd.keyPath, knownHostsPath: sshd.knownHostsPath };
    if (delayMs) sshdTarget = await c.throughRelay(sshdTarget, delayMs, dir);
    const tools = CLIENTS.filter((t) => want(t.id) && (!t.id.startsWith('ssh2') || c.ssh2Version()));
    for (const t of tools) results.clients[t.id] = { label: t.label, get: [], put: [], cipher: null, note: null };
    for (let r = 0; r < repeat; r++) {
      for (const t of tools) {
        for (const direction of DIRECTIONS) {
          const isParamiko = t.id === 'paramiko';
          const n = isParamiko ? paramikoSize : size;
          let res;
          const sshd0 = sshd.finishedSessionsCpu();
          try {
            res = await transfer(t.id, sshdTarget, dir, direction, isParamiko ? paramikoSrc : src, n, r === 0 ? (isParamiko ? paramikoHash : srcHash) : null);
          } catch (err) {
            // One client failing does not void the others' figures.
            console.log(`  ${t.label} ${direction}: FAILED: ${err.message.split('\n').filter(Boolean).slice(-1)[0]}`);
            continue;
          }
          const mbps = res.bytes / res.seconds / 1e6;
          // sshd's session (internal-sftp runs inside it): the server side's whole cost of the run.
          const sshdPerGiB = (sshd.finishedSessionsCpu() - sshd0) / (res.bytes / 2 ** 30);
          results.clients[t.id][direction].push({ round: r, seconds: res.seconds, MBps: mbps, cpuPerGiB: res.machineCpu / (res.bytes / 2 ** 30), sshdPerGiB });
          if (res.cipher) results.clients[t.id].cipher = res.cipher;
          if (isParamiko && n < size) results.clients[t.id].note = `${(n / 2 ** 20).toFixed(0)} MiB`;
          console.log(`  ${t.label} ${direction}: ${c.fmt(mbps, 0)} MB/s (${res.seconds.toFixed(2)} s, machine CPU ${c.fmt(res.machineCpu / (res.bytes / 2 ** 30), 2)} s/GiB, sshd ${c.fmt(sshdPerGiB, 2)} s/GiB, ${res.checked} checked)${res.detail ? `  [${res.detail}]` : ''}`);
        }
      }
    }
    console.log('  (connect times and the servers next)');
    if (results.clients.sftp) {
      results.clients.sftp.connectSeconds = await sftpConnectSeconds(sshdTarget, dir);
      results.clients.sftp.cipher = c.sshNegotiated(sshd, ['-c', GCM]);
    }

    // ---- servers, each served to OpenSSH's sftp client
    if (want('server')) {
      const targets = [{ id: 'sshd', label: 'OpenSSH sshd (internal-sftp)', target: sshdTarget }];
      try {
        server = pts.SSHServer.start({
          users: { [sshd.user]: { authorizedKeys: fs.readFileSync(sshd.keyPath + '.pub', 'utf8') } },
          hostKeys: [path.join(sshd.dir, 'ssh_host_ed25519_key')],
          exec: false,
          sftp: { root: '/' },
        });
        const knownHostsPath = path.join(dir, 'known_hosts_ours');
        fs.writeFileSync(knownHostsPath, server.knownHosts());
        let ours = { host: '127.0.0.1', port: server.port, user: sshd.user, keyPath: sshd.keyPath, knownHostsPath };
        if (delayMs) ours = await c.throughRelay(ours, delayMs, dir);
        await sftpBatch(ours, dir, ['pwd']); // the subsystem answers at all
        targets.push({ id: 'ours', label: "paramiko-ts SSHServer (sftp: { root: '/' })", target: ours });
      } catch (err) {
        results.servers.ours = { label: 'paramiko-ts SSHServer', skipped: `could not serve SFTP: ${err.message.split('\n')[0]}` };
        console.log(`  paramiko-ts SSHServer: skipped (${results.servers.ours.skipped})`);
      }
      for (const s of targets) results.servers[s.id] = { label: s.label, get: [], put: [] };
      for (let r = 0; r < repeat; r++) {
        for (const s of targets) {
          for (const direction of DIRECTIONS) {
            let res;
            try {
              res = await transfer('sftp', s.target, dir, direction, src, size, r === 0 ? srcHash : null);
            } catch (err) {
              console.log(`  sftp -> ${s.label} ${direction}: FAILED: ${err.message.split('\n').filter(Boolean).slice(-1)[0]}`);
              continue;
            }
            const cpuPerGiB = res.machineCpu / (res.bytes / 2 ** 30);
            results.servers[s.id][direction].push({ seconds: res.seconds, MBps: res.bytes / res.seconds / 1e6, cpuPerGiB });
            console.log(`  sftp -> ${s.label} ${direction}: ${c.fmt(res.bytes / res.seconds / 1e6, 0)} MB/s gross (${res.seconds.toFixed(2)} s, machine CPU ${c.fmt(cpuPerGiB, 2)} s/GiB, ${res.checked} checked)`);
          }
        }
      }
      for (const s of targets) results.servers[s.id].connectSeconds = await sftpConnectSeconds(s.target, dir);
    }
  } finally {
    server?.close();
    sshd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(c.loadLine('after'));

  // ---- medians, net figures, ratios
  const med = (runs, connect = 0, bytes = size) => (runs.length ? bytes / (c.quantile(runs.map((x) => x.seconds), 0.5) - connect) / 1e6 : NaN);
  const medCpu = (runs) => (runs.length ? c.quantile(runs.map((x) => x.cpuPerGiB), 0.5) : NaN);
  const summary = { size, repeat, nproc: c.machine().nproc, clients: {}, servers: {}, ratios: {} };
  for (const [id, r] of Object.entries(results.clients)) {
    const bytes = id === 'paramiko' ? Math.min(size, PARAMIKO_MAX_SIZE) : size;
    summary.clients[id] = {
      label: r.label,
      cipher: r.cipher,
      note: r.note,
      getMBps: med(r.get, 0, bytes),
      putMBps: med(r.put, 0, bytes),
      ...(id === 'sftp' && { getNetMBps: med(r.get, r.connectSeconds), putNetMBps: med(r.put, r.connectSeconds), connectMs: r.connectSeconds * 1000 }),
      runs: { get: r.get.map((x) => x.MBps), put: r.put.map((x) => x.MBps) },
      cpuPerGiB: { get: medCpu(r.get), put: medCpu(r.put) },
    };
  }
  for (const [id, r] of Object.entries(results.servers)) {
    if (r.skipped) {
      summary.servers[id] = r;
      continue;
    }
    summary.servers[id] = {
      label: r.label,
      getMBps: med(r.get),
      putMBps: med(r.put),
      getNetMBps: med(r.get, r.connectSeconds),
      putNetMBps: med(r.put, r.connectSeconds),
      connectMs: r.connectSeconds * 1000,
      runs: { get: r.get.map((x) => x.MBps), put: r.put.map((x) => x.MBps) },
      cpuPerGiB: { get: medCpu(r.get), put: medCpu(r.put) },
    };
  }
  const sc = summary.clients;
  const ss = summary.servers;
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) ? a / b : NaN);
  if (sc.ours) {
    if (sc.sftp) {
      summary.ratios['ours / OpenSSH sftp'] = { get: ratio(sc.ours.getMBps, sc.sftp.getNetMBps), put: ratio(sc.ours.putMBps, sc.sftp.putNetMBps) };
      // OpenSSH's own runs vary by up to 1.8x from one round to the next on a shared VM: the ratio
      // of the two runs of each round (run one after the other) drifts less than the ratio of medians.
      const paired = (d) => {
        const theirs = new Map(results.clients.sftp[d].map((x) => [x.round, x.seconds - results.clients.sftp.connectSeconds]));
        const each = results.clients.ours[d].filter((x) => theirs.has(x.round)).map((x) => theirs.get(x.round) / x.seconds);
        return each.length ? c.quantile(each, 0.5) : NaN;
      };
      summary.ratios['ours / OpenSSH sftp, median of each round\'s ratio'] = { get: paired('get'), put: paired('put') };
    }
    if (sc['ssh2-nodelay']) summary.ratios['ours / ssh2 NODELAY'] = { get: ratio(sc.ours.getMBps, sc['ssh2-nodelay'].getMBps), put: ratio(sc.ours.putMBps, sc['ssh2-nodelay'].putMBps) };
    if (sc['ssh2-js-nodelay']) summary.ratios['ours / ssh2 NODELAY without native binding'] = { get: ratio(sc.ours.getMBps, sc['ssh2-js-nodelay'].getMBps), put: ratio(sc.ours.putMBps, sc['ssh2-js-nodelay'].putMBps) };
    if (sc.paramiko) summary.ratios['ours / Paramiko'] = { get: ratio(sc.ours.getMBps, sc.paramiko.getMBps), put: ratio(sc.ours.putMBps, sc.paramiko.putMBps) };
  }
  if (ss.ours && !ss.ours.skipped && ss.sshd) {
    summary.ratios['our server / sshd'] = { get: ratio(ss.ours.getNetMBps, ss.sshd.getNetMBps), put: ratio(ss.ours.putNetMBps, ss.sshd.putNetMBps) };
  }

  if (json) {
    const text = JSON.stringify(summary, null, 2);
    if (json === true) console.log(text);
    else fs.writeFileSync(json, text);
    if (json === true) return;
  }

  const runs = (xs) => xs.map((x) => x.toFixed(0)).join(' ');
  console.log(`\n-- clients against OpenSSH sshd, ${GCM} set on each (MB/s = 10^6 bytes/s, median)`);
  const rows = [['client', 'get MB/s', 'get runs', 'put MB/s', 'put runs', 'cipher negotiated']];
  for (const t of CLIENTS) {
    const r = sc[t.id];
    if (!r) continue;
    if (t.id === 'sftp') {
      rows.push([`${r.label} (whole process)`, c.fmt(r.getMBps, 0), runs(r.runs.get), c.fmt(r.putMBps, 0), runs(r.runs.put), r.cipher]);
      rows.push([`${r.label} (net of ${c.fmt(r.connectMs, 0)} ms connect)`, c.fmt(r.getNetMBps, 0), '', c.fmt(r.putNetMBps, 0), '', '']);
    } else {
      rows.push([r.label, c.fmt(r.getMBps, 0), runs(r.runs.get), c.fmt(r.putMBps, 0), runs(r.runs.put), `${r.cipher ?? ''}${r.note ? ` (${r.note})` : ''}`]);
    }
  }
  console.log(c.table(rows));
  if (Object.keys(ss).length) {
    console.log(`\n-- servers, served to OpenSSH sftp -b (-c ${GCM}); net of each server's own connect time`);
    const srows = [['server', 'get MB/s', 'get runs (gross)', 'put MB/s', 'put runs (gross)', 'connect ms']];
    for (const r of Object.values(ss)) {
      if (r.skipped) srows.push([r.label, 'n/a', '', 'n/a', '', r.skipped]);
      else srows.push([r.label, c.fmt(r.getNetMBps, 0), runs(r.runs.get), c.fmt(r.putNetMBps, 0), runs(r.runs.put), c.fmt(r.connectMs, 0)]);
    }
    console.log(c.table(srows));
  }
  // What each transfer cost the whole machine (both ends, kernel included), and the speed that
  // cost allows when every core is kept busy: a client or server whose figure is far below its
  // ceiling waits rather than computes.
  console.log(`\n-- machine CPU per GiB moved (all processes, median), and the ceiling it implies on ${summary.nproc} cores`);
  const crows = [['transfer', 'get s/GiB', 'get ceiling MB/s', 'put s/GiB', 'put ceiling MB/s']];
  const ceiling = (cpu) => c.fmt((summary.nproc * 2 ** 30) / cpu / 1e6, 0);
  const cpuRow = (label, r) => crows.push([label, c.fmt(r.cpuPerGiB.get, 2), ceiling(r.cpuPerGiB.get), c.fmt(r.cpuPerGiB.put, 2), ceiling(r.cpuPerGiB.put)]);
  for (const r of Object.values(sc)) cpuRow(`${r.label} against sshd`, r);
  for (const r of Object.values(ss)) if (!r.skipped) cpuRow(`OpenSSH sftp against ${r.label}`, r);
  console.log(c.table(crows));
  console.log('(OpenSSH sftp runs include its connect)');
  console.log('');
  const rrows = [['ratio (above 1: ours faster)', 'get', 'put']];
  for (const [k, v] of Object.entries(summary.ratios)) rrows.push([k, ...[v.get, v.put].map((r) => (Number.isFinite(r) ? `${c.fmt(r, 2)}x` : 'n/a'))]);
  console.log(c.table(rrows));
  console.log('(OpenSSH sftp ratios use its figure net of connect; Paramiko 2.x has no AES-GCM and uses its own default cipher)');
}

c.benchEntry({
  roles: {
    ours: childOurs,
    ssh2: (o) => childSsh2(o, false),
    'ssh2-nodelay': (o) => childSsh2(o, true),
    'ssh2-js-nodelay': (o) => childSsh2(o, true, false),
  },
  extra: () => ({ direction: c.arg('direction'), remote: c.arg('remote'), local: c.arg('local') }),
  main,
});
