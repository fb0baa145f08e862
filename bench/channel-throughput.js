#!/usr/bin/env node
// Channel throughput, side by side against one throw-away OpenSSH sshd on 127.0.0.1: stream
// `head -c SIZE /dev/zero` through one exec channel and read all of it, with
//   paramiko-ts  Channel.recv(1 MiB) loop, and ChannelFile.read() (everything to EOF, one Buffer)
//   ssh2         stream 'data' events, as installed and given a TCP_NODELAY socket; and with
//                every chunk kept and joined into one Buffer at EOF (the peer of our read())
//   Paramiko     Channel.recv(1 MiB) loop (timed inside Python)
//   OpenSSH      ssh host 'head -c SIZE /dev/zero' > /dev/null (the whole process)
// each with its own default cipher, then with aes128-gcm@openssh.com forced for all (Paramiko 2.x
// has no AES-GCM: its row there says so). The libraries are timed from the exec request to EOF
// (connect and auth excluded); OpenSSH's figure is the whole process, connect included, and the
// same figure net of a median `ssh host true` is printed beside it.
//
// Each client runs in its own process; every case runs --repeat times (round robin) and the
// median MB/s (10^6 bytes/s) is reported.
//
//   npm run build && node bench/channel-throughput.js [--size 1G] [--repeat 3] [--paramiko-max-size BYTES]
//       [--only ours-recv,ours-read,ssh2,ssh2-nodelay,ssh2-js,ssh2-gather,paramiko,openssh] [--ciphers default,gcm,CIPHER] [--json FILE]
//       [--delay MS]  (every client through a relay holding each byte MS ms each way: a round
//                      trip of 2 x MS, where the channel window, not CPU, bounds a stream)
//
// Profile paramiko-ts's runs (one .cpuprofile per thread, the worker included):
//   node bench/channel-throughput.js --only ours-recv --repeat 1 --cpu-prof /tmp/prof
//   node bench/support/cpuprofile-summary.js /tmp/prof
//
// Uses dist/: run `npm run build` first.
'use strict';
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const c = require('./support/common');

const GCM = 'aes128-gcm@openssh.com';
const PARAMIKO_MAX_SIZE = c.parseSize(c.arg('paramiko-max-size', '448M'));

// ---------------------------------------------------------------- clients (child processes)

function childOurs(o, how) {
  const { Transport, PKey, HostKeys } = c.requireDist();
  const t = new Transport(['127.0.0.1', o.port]);
  if (o.cipher) t.getSecurityOptions().ciphers = [o.cipher];
  t.startClient();
  const hk = new HostKeys(o.knownHosts);
  const known = hk.lookup(`[127.0.0.1]:${o.port}`);
  const key = t.getRemoteServerKey();
  if (!known || !known.get(key.getName()) || !known.get(key.getName()).equals(key)) throw new Error('host key mismatch');
  t.authPublickey(o.user, PKey.fromPrivateKeyFile(o.key));
  const ch = t.openSession();
  const t0 = process.hrtime.bigint();
  ch.execCommand(`head -c ${o.size} /dev/zero`);
  const cpu0 = c.threadCpu();
  const machine0 = c.machineCpuSeconds();
  let got = 0;
  let calls = 0;
  if (how === 'recv') {
    for (;;) {
      const d = ch.recv(1 << 20);
      calls++;
      if (d.length === 0) break;
      got += d.length;
    }
  } else {
    got = ch.makefile('rb').read().length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const machineCpu = c.machineCpuSeconds() - machine0;
  // CPU time per thread during the stream: main = this thread; the transport worker and V8's
  // helper threads are all called "node".
  const threads = c.threadCpuSince(cpu0);
  const status = ch.recvExitStatus();
  const n = t.getNegotiated();
  t.close();
  if (got !== o.size || status !== 0) throw new Error(`got ${got} of ${o.size} bytes, exit status ${status}`);
  const detail = `cpu during the stream: ${threads}${calls ? `; ${calls} recv calls, ${(got / Math.max(1, calls - 1) / 1024).toFixed(0)} KiB each on average` : ''}`;
  return { seconds, bytes: got, machineCpu, cipher: n ? `${n.cipherS2C} ${n.macS2C || ''}`.trim() : null, detail };
}

/**
 * `gather`: keep every chunk and join them once at the end, as an ssh2 user does to get a
 * command's whole output (the peer of our stdout.read(), which holds it all in one Buffer).
 */
function childSsh2(o, nodelay, native = true, gather = false) {
  const { Client } = c.requireSsh2({ native });
  return new Promise((resolve, reject) => {
    const conn = new Client();
    const cfg = c.ssh2Config(o, { nodelay, cipher: o.cipher });
    let cipher = null;
    conn.on('handshake', (n) => (cipher = `${n.sc.cipher} ${n.sc.mac || ''}`.trim()));
    conn.on('error', reject);
    conn.on('ready', () => {
      const cpu0 = c.threadCpu();
      const machine0 = c.machineCpuSeconds();
      let machineCpu = null;
      let threads = '';
      const t0 = process.hrtime.bigint();
      conn.exec(`head -c ${o.size} /dev/zero`, (err, stream) => {
        if (err) return reject(err);
        let got = 0;
        let seconds = null;
        let status = null;
        const chunks = [];
        stream.on('data', (d) => {
          got += d.length;
          if (gather) chunks.push(d);
        });
        stream.stderr.resume();
        stream.on('end', () => {
          if (gather && Buffer.concat(chunks, got).length !== got) reject(new Error('joined output has the wrong length'));
          chunks.length = 0;
          seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          machineCpu = c.machineCpuSeconds() - machine0;
          threads = c.threadCpuSince(cpu0);
        });
        stream.on('exit', (code) => (status = code));
        stream.on('close', () => {
          conn.end();
          if (got !== o.size || status !== 0) reject(new Error(`got ${got} of ${o.size} bytes, exit status ${status}`));
          else resolve({ seconds, bytes: got, machineCpu, cipher, detail: `cpu during the stream: ${threads}` });
        });
      });
    });
    conn.connect(cfg);
  });
}

// ---------------------------------------------------------------- driver

const TOOLS = [
  { id: 'ours-recv', label: 'paramiko-ts recv(1 MiB)' },
  { id: 'ours-read', label: 'paramiko-ts stdout.read()' },
  { id: 'ssh2', label: 'ssh2 (as installed)' },
  { id: 'ssh2-nodelay', label: 'ssh2 + TCP_NODELAY socket' },
  { id: 'ssh2-js', label: 'ssh2 without its native binding' },
  { id: 'ssh2-gather', label: 'ssh2 + NODELAY, all output in one Buffer' },
  { id: 'paramiko', label: 'Paramiko recv(1 MiB)' },
  { id: 'openssh', label: 'OpenSSH ssh > /dev/null' },
];

function sshTrueMs(sshd, extra) {
  const ms = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync('ssh', [...c.sshArgs(sshd, extra), 'true'], { stdio: 'ignore' });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return c.quantile(ms, 0.5);
}

async function measure(tool, sshd, size, cipher) {
  const common = ['--port', String(sshd.port), '--user', sshd.user, '--key', sshd.keyPath, '--known-hosts', sshd.knownHostsPath];
  if (tool === 'paramiko') {
    if (cipher === GCM) return { skipped: 'Paramiko 2.x has no AES-GCM' };
    // Paramiko rekeys by itself after 512 MiB received (Packetizer.REKEY_BYTES), and that rekey
    // in the middle of this stream often stalls until "Key-exchange timed out waiting for key
    // negotiation" (30 s; 4 of 9 runs past 512 MiB here): by default Paramiko streams 448 MiB, below its
    // rekey point (--paramiko-max-size to change it). A stalled run is retried twice at most.
    const n = Math.min(size, PARAMIKO_MAX_SIZE);
    let stalls = 0;
    for (;;) {
      try {
        const r = await c.runJson(c.PYTHON, [c.PARAMIKO_SCRIPT, 'throughput', ...common, '--size', String(n), ...(cipher ? ['--cipher', cipher] : [])]);
        const notes = [];
        if (n < size) notes.push(`${(n / 2 ** 20).toFixed(0)} MiB`);
        if (stalls) notes.push(`${stalls} run(s) retried after Paramiko's rekey stalled`);
        if (notes.length) r.note = notes.join('; ');
        return r;
      } catch (err) {
        if (!/Key-exchange timed out/.test(err.message) || stalls >= 2) throw err;
        stalls++;
        console.log(`  Paramiko: its rekey stalled ("Key-exchange timed out waiting for key negotiation"): retrying`);
      }
    }
  }
  if (tool === 'openssh') {
    const extra = cipher ? ['-c', cipher] : [];
    const devnull = fs.openSync('/dev/null', 'w');
    try {
      const machine0 = c.machineCpuSeconds();
      const t0 = process.hrtime.bigint();
      const r = spawnSync('ssh', [...c.sshArgs(sshd, extra), `head -c ${size} /dev/zero`], { stdio: ['ignore', devnull, 'pipe'] });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r.status !== 0) throw new Error(`ssh exited ${r.status}: ${r.stderr}`);
      return { seconds, bytes: size, machineCpu: c.machineCpuSeconds() - machine0 };
    } finally {
      fs.closeSync(devnull);
    }
  }
  const args = ['--child', tool, ...common, '--size', String(size), ...(cipher ? ['--cipher', cipher] : [])];
  const prof = c.arg('cpu-prof');
  const nodeArgs = prof && tool.startsWith('ours') ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  return c.runNodeChild(__filename, args, nodeArgs);
}

/** `default`: each client's own choice; `gcm`: aes128-gcm@openssh.com; else a cipher name. */
function modeCipher(mode) {
  return mode === 'gcm' ? GCM : mode === 'default' ? null : mode;
}

async function main() {
  const size = c.parseSize(c.arg('size', '1G'));
  const repeat = Number(c.arg('repeat', 3));
  const only = c.arg('only') ? String(c.arg('only')).split(',') : null;
  const modes = String(c.arg('ciphers', 'default,gcm')).split(',');
  const jsonOut = c.arg('json');
  c.requireDist();
  const { startSshd } = require('./support/sshd');

  console.log(`== channel throughput: head -c ${size} /dev/zero through one exec channel, median of ${repeat} runs per case`);
  c.printMachine();
  const sshd = await startSshd();
  const all = {};
  const delayMs = Number(c.arg('delay', 0));
  try {
    console.log(`sshd: ${sshd.banner} on 127.0.0.1:${sshd.port}`);
    let target = sshd;
    if (delayMs) {
      target = await c.throughRelay(sshd, delayMs, sshd.dir);
      console.log(`through a relay adding ${delayMs} ms each way (${2 * delayMs} ms round trip) on 127.0.0.1:${target.port}`);
    }
    for (const mode of modes) {
      const cipher = modeCipher(mode);
      const tools = TOOLS.filter((t) => (!only || only.includes(t.id)) && (!t.id.startsWith('ssh2') || c.ssh2Version()));
      const runs = Object.fromEntries(tools.map((t) => [t.id, []]));
      const info = {};
      for (let r = 0; r < repeat; r++) {
        for (const t of tools) {
          let res;
          const sshd0 = sshd.finishedSessionsCpu();
          try {
            res = await measure(t.id, target, size, cipher);
          } catch (err) {
            // One peer failing (Paramiko's rekey stall) does not void the others' figures.
            console.log(`  [${mode}] ${t.label}: FAILED: ${err.message.split('\n').filter(Boolean).slice(-1)[0]}`);
            res = { skipped: 'failed (see above)' };
          }
          if (res.skipped) {
            if (!runs[t.id].length) info[t.id] = { ...info[t.id], skipped: res.skipped };
            continue;
          }
          runs[t.id].push(res.bytes / res.seconds / 1e6);
          const sshdPerGiB = (sshd.finishedSessionsCpu() - sshd0) / (res.bytes / 2 ** 30);
          const cpuPerGiB = res.machineCpu == null ? null : res.machineCpu / (res.bytes / 2 ** 30);
          info[t.id] = { cpuPerGiB: cpuPerGiB == null ? info[t.id]?.cpuPerGiB : [...(info[t.id]?.cpuPerGiB ?? []), cpuPerGiB], cipher: res.cipher ?? info[t.id]?.cipher, note: [...new Set([info[t.id]?.note, res.note].filter(Boolean).join('; ').split('; ').filter(Boolean))].join('; ') || undefined, seconds: [...(info[t.id]?.seconds ?? []), res.seconds], sshdPerGiB: [...(info[t.id]?.sshdPerGiB ?? []), sshdPerGiB] };
          const cpuText = `${cpuPerGiB == null ? '' : `, machine CPU ${c.fmt(cpuPerGiB, 2)} s/GiB`}, sshd ${c.fmt(sshdPerGiB, 2)} s/GiB`;
          console.log(`  [${mode}] ${t.label}: ${c.fmt(res.bytes / res.seconds / 1e6, 0)} MB/s (${res.seconds.toFixed(2)} s${cpuText})${res.detail ? `  [${res.detail}]` : ''}`);
        }
      }
      if (runs.openssh) {
        info.openssh.cipher = c.sshNegotiated(target, cipher ? ['-c', cipher] : []);
        info.openssh.connectMs = sshTrueMs(target, cipher ? ['-c', cipher] : []);
        const sec = c.quantile(info.openssh.seconds, 0.5);
        info.openssh.netMBps = size / (sec - info.openssh.connectMs / 1000) / 1e6;
      }
      const result = {};
      for (const t of tools) {
        result[t.id] = { label: t.label, ...info[t.id], runsMBps: runs[t.id], MBps: runs[t.id].length ? c.quantile(runs[t.id], 0.5) : NaN };
      }
      all[mode] = result;
    }
  } finally {
    sshd.stop();
  }
  console.log(c.loadLine('after'));

  for (const mode of modes) {
    const result = all[mode];
    const ours = result['ours-recv'];
    const oursRead = result['ours-read'];
    console.log('');
    console.log(modeCipher(mode) ? `-- ${modeCipher(mode)} forced for all` : '-- each client with its default cipher');
    const rows = [['client', 'MB/s (median)', 'runs', 'ours recv / peer', 'ours read() / peer', 'machine CPU s/GiB', 'sshd CPU s/GiB', 'cipher negotiated']];
    for (const t of TOOLS) {
      const r = result[t.id];
      if (!r) continue;
      if (r.skipped && !r.runsMBps.length) {
        rows.push([r.label, 'n/a', '', '', '', '', '', r.skipped]);
        continue;
      }
      const ratioOf = (o) => (o && !t.id.startsWith('ours') && Number.isFinite(o.MBps) ? `${(o.MBps / r.MBps).toFixed(2)}x` : '');
      let label = r.label;
      let cipher = r.cipher || '';
      if (t.id === 'openssh') cipher += ` (net of ${c.fmt(r.connectMs, 0)} ms connect: ${c.fmt(r.netMBps, 0)} MB/s)`;
      if (r.note) cipher += ` (${r.note})`;
      const cpu = r.cpuPerGiB?.length ? c.fmt(c.quantile(r.cpuPerGiB, 0.5), 2) + (t.id === 'openssh' ? ' (whole process)' : '') : '';
      const sshdCpu = r.sshdPerGiB?.length ? c.fmt(c.quantile(r.sshdPerGiB, 0.5), 2) : '';
      rows.push([label, c.fmt(r.MBps, 0), r.runsMBps.map((x) => x.toFixed(0)).join(' '), ratioOf(ours), ratioOf(oursRead), cpu, sshdCpu, cipher]);
    }
    console.log(c.table(rows));
  }
  console.log('(ratios = our MB/s / the peer\'s: above 1 we are faster; read() keeps the whole output, as only the ssh2 "all output" row does)');
  console.log('(machine CPU: busy time of every process during the stream, sshd and head included, per GiB)');
  console.log("(sshd CPU: its session processes and head, connect included, per GiB; sshd's part of it is one single-threaded process)");
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ size, repeat, results: all }, null, 2));
}

c.benchEntry({
  roles: {
    'ours-recv': (o) => childOurs(o, 'recv'),
    'ours-read': (o) => childOurs(o, 'read'),
    ssh2: (o) => childSsh2(o, false),
    'ssh2-nodelay': (o) => childSsh2(o, true),
    'ssh2-js': (o) => childSsh2(o, false, false),
    'ssh2-gather': (o) => childSsh2(o, true, true, true),
  },
  extra: () => ({ size: c.parseSize(c.arg('size')), cipher: c.arg('cipher') || null }),
  main,
});
