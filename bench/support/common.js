'use strict';
// Helpers shared by the side-by-side benchmarks: argument parsing, statistics, the machine's
// description, loading the compiled library from dist/, and running a peer in a child process.
const { execFileSync, spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
const PYTHON = '/usr/bin/python3'; // Debian's Paramiko imports only under the system python
const PARAMIKO_SCRIPT = path.join(__dirname, 'paramiko_bench.py');

/** `--name value` / `--name=value` / `--flag` from argv. */
function arg(name, fallback) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) return true;
      return next;
    }
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return fallback;
}

/** "1G", "256M", "64k" or a plain number of bytes. */
function parseSize(s) {
  if (typeof s === 'number') return s;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgKMG]?)i?[bB]?$/.exec(String(s).trim());
  if (!m) throw new Error(`bad size: ${s}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * mult);
}

/** Quantile by nearest rank over a sorted copy. */
function quantile(samples, q) {
  const s = Float64Array.from(samples).sort();
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

function stats(samples) {
  return { n: samples.length, median: quantile(samples, 0.5), p90: quantile(samples, 0.9), min: Math.min(...samples), max: Math.max(...samples) };
}

/** Loads the compiled library, or explains how to get it. */
function requireDist() {
  if (!fs.existsSync(path.join(DIST, 'index.js'))) {
    console.error(`dist/ is missing (${DIST}): run \`npm run build\` first`);
    process.exit(2);
  }
  return require(DIST);
}

function tryRun(cmd, args) {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout || ''}${r.stderr || ''}`.trim();
  } catch {
    return '';
  }
}

function ssh2Version() {
  try {
    return require('ssh2/package.json').version;
  } catch {
    return null;
  }
}

/** Whether ssh2's optional native crypto binding (sshcrypto.node) loaded. */
function ssh2Native() {
  try {
    require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
    return true;
  } catch {
    return false;
  }
}

/**
 * `require('ssh2')`, with its optional native crypto binding (sshcrypto.node) or without it
 * (`native: false`: the load of the binding is refused, as on a machine where npm could not
 * compile it; ssh2 then ciphers through node:crypto, one object per packet, as paramiko-ts does).
 * Throws if the binding's presence is not what was asked.
 */
function requireSsh2({ native = true } = {}) {
  if (!native) {
    const Module = require('node:module');
    const load = Module._load;
    Module._load = function (request, ...rest) {
      if (/sshcrypto\.node$/.test(request)) throw new Error('ssh2 native binding hidden for this benchmark');
      return load.call(this, request, ...rest);
    };
  }
  const ssh2 = require('ssh2');
  const { bindingAvailable } = require('ssh2/lib/protocol/crypto');
  if (bindingAvailable !== native) throw new Error(`ssh2's native binding is ${bindingAvailable ? '' : 'not '}loaded (asked ${native ? 'with' : 'without'})`);
  return ssh2;
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (/^model name\s*:\s*(.+)$/m.exec(cpuinfo) || [])[1] || 'unknown';
  const flags = (/^flags\s*:\s*(.+)$/m.exec(cpuinfo) || [])[1] || '';
  const paramiko = tryRun(PYTHON, ['-c', 'import paramiko, cryptography; print(paramiko.__version__, cryptography.__version__)']).split(/\s+/);
  return {
    nproc: Number(tryRun('nproc', [])) || os.cpus().length,
    cpu: model,
    aesni: /\baes\b/.test(flags),
    kernel: os.release(),
    node: process.version,
    openssh: tryRun('ssh', ['-V']),
    paramiko: paramiko[0] || 'not installed',
    cryptography: paramiko[1] || '',
    python: tryRun(PYTHON, ['--version']),
    ssh2: ssh2Version(),
    ssh2Native: ssh2Native(),
    loadavg: os.loadavg(),
  };
}

function printMachine(m = machine()) {
  console.log(`machine: ${m.nproc} x ${m.cpu}${m.aesni ? ' (AES-NI)' : ''}, Linux ${m.kernel}`);
  console.log(`node ${m.node}; ${m.openssh}; Paramiko ${m.paramiko} (cryptography ${m.cryptography}, ${m.python}); ssh2 ${m.ssh2 ?? 'not installed'}${m.ssh2 ? (m.ssh2Native ? ' (native crypto binding built)' : ' (pure JS, no native binding)') : ''}`);
  console.log(`load average: ${m.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(stateLine());
}

/**
 * What the machine's state costs right now, for reading the figures that follow: on the VMs we
 * measure on, memory the guest freed is handed back to the host, and touching it again (new
 * page-cache pages for a file being written, a fresh heap) costs 5-10 times as much for a while
 * (docs/performance.md, "Session 19"): every client pays it, the ratios hold better
 * than the MB/s. Three probes, ~1 s: CPU seconds per GiB for 256 MiB written to a new file in
 * 1 MiB calls (page cache only, never synced) and for 256 MiB of fresh memory touched, and
 * node:crypto's AES-128-GCM MB/s over 64 MiB in 32 KiB updates (the CPU itself: ~2200 on a quiet
 * host here, the figure issue 3 gives; 1400 on a slow day).
 */
function stateProbe() {
  const crypto = require('node:crypto');
  const MiB = 1 << 20;
  const total = 256 * MiB;
  const perGiB = (usage) => ((usage.user + usage.system) / 1e6) * ((1 << 30) / total);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-bench-probe-'));
  let write;
  try {
    const chunk = Buffer.alloc(MiB, 0x5a);
    const fd = fs.openSync(path.join(dir, 'probe'), 'w');
    try {
      const t = process.cpuUsage();
      for (let at = 0; at < total; at += MiB) fs.writeSync(fd, chunk, 0, MiB, at);
      write = perGiB(process.cpuUsage(t));
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const t = process.cpuUsage();
  Buffer.allocUnsafeSlow(total).fill(0x5a);
  const touch = perGiB(process.cpuUsage(t));
  const data = Buffer.alloc(64 * MiB, 0x5a);
  const cipher = crypto.createCipheriv('aes-128-gcm', crypto.randomBytes(16), crypto.randomBytes(12));
  const packet = 32 * 1024;
  const start = performance.now();
  for (let at = 0; at < data.length; at += packet) cipher.update(data.subarray(at, at + packet));
  cipher.final();
  const aes = data.length / ((performance.now() - start) / 1000) / 1e6;
  return { write, touch, aes };
}

function stateLine(p = stateProbe()) {
  return `machine state: page-cache writes ${p.write.toFixed(2)} s/GiB, fresh memory ${p.touch.toFixed(2)} s/GiB, node:crypto aes128-gcm ${p.aes.toFixed(0)} MB/s (a quiet host here: writes ~0.2, AES ~2200)`;
}

function loadLine(label) {
  return `load average ${label}: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

/** CPU time (ms, user + system) and minor page faults of each thread of this process, from /proc/self/task. */
function threadCpu() {
  const tick = 1000 / 100; // USER_HZ
  const out = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ tid: Number(tid), comm, ms: (Number(f[11]) + Number(f[12])) * tick, minflt: Number(f[7]) });
    } catch {}
  }
  return out;
}

/** CPU time (and page faults, when many) of this process's threads since `before` (from threadCpu()), as text. */
function threadCpuSince(before) {
  return threadCpu()
    .map((t) => {
      const b = before.find((x) => x.tid === t.tid);
      return { ...t, ms: t.ms - (b?.ms ?? 0), minflt: t.minflt - (b?.minflt ?? 0) };
    })
    .filter((t) => t.ms > 0)
    .map((t) => `${t.tid === process.pid ? 'main' : t.comm} ${t.ms.toFixed(0)} ms${t.minflt > 1000 ? ` (${(t.minflt / 1000).toFixed(0)}k page faults)` : ''}`)
    .join(', ');
}

/**
 * Busy CPU seconds of the whole machine so far (every process, kernel time included, from the
 * `cpu` line of /proc/stat: all but idle and iowait). The difference over a transfer, divided
 * by the bytes moved, is what the transfer cost both ends together: on a machine with N cores,
 * N / (that cost per byte) is the fastest the same work could go if nothing ever waited.
 */
function machineCpuSeconds() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

/** Runs a command, collects stdout, resolves with the last line parsed as JSON. */
function runJson(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const lines = out.trim().split('\n');
      if (code !== 0) {
        reject(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} exited ${code ?? signal}:\n${err.trim()}\n${out.trim()}`));
        return;
      }
      try {
        resolve(JSON.parse(lines[lines.length - 1]));
      } catch (e) {
        reject(new Error(`no JSON result from ${cmd} ${args.join(' ')}:\n${out}\n${err}`));
      }
    });
  });
}

/**
 * The entry point of a benchmark script that runs each client under test in a child process of
 * its own (`--child ROLE`): a child builds the connection options (`--port --user --key
 * --known-hosts`, plus `extra()`), prints `await roles[ROLE](options)` as one JSON line and exits;
 * without `--child`, `main()` runs. Either way an error is printed and exits with status 1.
 */
function benchEntry({ roles, extra = () => ({}), main }) {
  const role = arg('child');
  const child = async () => {
    const run = roles[role];
    if (!run) throw new Error(`unknown child role ${role}`);
    const options = { port: Number(arg('port')), user: arg('user'), key: arg('key'), knownHosts: arg('known-hosts'), ...extra() };
    process.stdout.write(JSON.stringify(await run(options)) + '\n');
    process.exit(0);
  };
  (role ? child() : main()).catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  });
}

/**
 * An `ssh2` Client's connect config for the benchmark sshd (`o` from benchEntry): key login, the
 * host key checked against --known-hosts, optionally a TCP_NODELAY socket and one cipher.
 */
function ssh2Config(o, { nodelay = false, cipher = null } = {}) {
  const blob = Buffer.from(fs.readFileSync(o.knownHosts, 'utf8').trim().split(/\s+/)[2], 'base64');
  const cfg = {
    host: '127.0.0.1',
    port: o.port,
    username: o.user,
    privateKey: fs.readFileSync(o.key),
    hostVerifier: (key) => Buffer.isBuffer(key) && key.equals(blob),
  };
  if (cipher) cfg.algorithms = { cipher: [cipher] };
  if (nodelay) {
    const sock = new net.Socket();
    sock.setNoDelay(true);
    sock.connect(o.port, '127.0.0.1');
    cfg.sock = sock;
  }
  return cfg;
}

/** Node re-running this same script in a child process (one process per client under test). */
function runNodeChild(script, args, nodeArgs = []) {
  return runJson(process.execPath, [...nodeArgs, script, ...args]);
}

/** The OpenSSH client's options for a benchmark sshd: key login, host key checked, nothing else read. */
function sshArgs(sshd, extra = [], logLevel = 'ERROR') {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `LogLevel=${logLevel}`,
    '-i', sshd.keyPath,
    '-p', String(sshd.port),
    '-l', sshd.user,
    ...extra,
    sshd.host,
  ];
}

/** The cipher (and with `withKex` the kex) OpenSSH's client negotiates with this server (from `ssh -v`). */
function sshNegotiated(sshd, extra = [], withKex = false) {
  const r = spawnSync('ssh', [...sshArgs(sshd, extra, 'DEBUG1'), 'true'], { encoding: 'utf8' });
  const m = /kex: server->client cipher: (\S+) MAC: (\S+)/.exec(r.stderr || '');
  const k = /kex: algorithm: (\S+)/.exec(r.stderr || '');
  const cipher = m ? (m[2] === '<implicit>' ? m[1] : `${m[1]} ${m[2]}`) : '?';
  return withKex ? `${k ? k[1] : '?'}, ${cipher}` : cipher;
}

function fmt(v, digits = 1) {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}

/** A plain-text table: rows of strings, the first row a header. */
function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  return rows
    .map((r, j) => {
      const line = r.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ');
      return j === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

/**
 * `target` ({ port, knownHostsPath, ... }) reached through a relay that holds each byte `delayMs`
 * each way (spec/support/delay-relay.js): the relay's port and a known_hosts file (in `dir`)
 * naming the server's keys under it. The relay ends with this process.
 */
async function throughRelay(target, delayMs, dir) {
  const { startDelayRelay } = require('../../spec/support/delay-relay');
  const relay = await startDelayRelay({ targetPort: target.port, delayMs });
  const knownHostsPath = path.join(dir, `known_hosts_relay_${relay.port}`);
  fs.writeFileSync(knownHostsPath, fs.readFileSync(target.knownHostsPath, 'utf8').split(`[127.0.0.1]:${target.port} `).join(`[127.0.0.1]:${relay.port} `));
  return { ...target, port: relay.port, knownHostsPath };
}

module.exports = {
  benchEntry,
  throughRelay,
  ssh2Config,
  requireSsh2,
  ROOT,
  DIST,
  PYTHON,
  PARAMIKO_SCRIPT,
  arg,
  parseSize,
  quantile,
  stats,
  requireDist,
  machine,
  printMachine,
  stateProbe,
  stateLine,
  loadLine,
  runJson,
  runNodeChild,
  threadCpu,
  threadCpuSince,
  machineCpuSeconds,
  sshArgs,
  sshNegotiated,
  ssh2Version,
  fmt,
  table,
  execFileSync,
};
