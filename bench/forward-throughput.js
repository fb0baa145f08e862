#!/usr/bin/env node
// Port forwarding throughput, side by side on 127.0.0.1: a local TCP source sends --size bytes
// of zeros to each connection; a reader connects to a forwarded port and reads
// all of it (in a process of its own), through
//   openssh      OpenSSH's `ssh -N -L` to a throw-away sshd
//   ours         paramiko-ts SSHClient.forwardLocalPort to the same sshd (its own process)
//   ssh2-nodelay the ssh2 package's forwardOut from a local listener, TCP_NODELAY socket (its own process)
//   server       OpenSSH's `ssh -N -L` to our SSHServer, and to sshd again beside it
// aes128-gcm@openssh.com for every client. Each tunnel is set up once; then the reads run
// --repeat times, round robin, and the median MB/s (10^6 bytes/s) is reported with the machine's
// CPU per GiB moved (every process, both cores).
//
//   npm run build && node bench/forward-throughput.js [--size 1G] [--repeat 3]
//       [--only openssh,ours,ssh2-nodelay,server]
//
// Uses dist/: run `npm run build` first.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const c = require('./support/common');
const { startSshd } = require('./support/sshd');

const GCM = 'aes128-gcm@openssh.com';

// ---------------------------------------------------------------- tunnel processes

/**
 * A child role keeps a tunnel open: it prints {"port": N} once the forwarded port listens and
 * exits when its stdin closes.
 */
function untilStdinCloses() {
  return new Promise((resolve) => {
    process.stdin.on('data', () => undefined);
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
  });
}

async function childOurs(o) {
  const { SSHClient, RejectPolicy } = c.requireDist();
  const client = new SSHClient();
  client.loadHostKeys(o.knownHosts);
  client.setMissingHostKeyPolicy(new RejectPolicy());
  // aes128-gcm@openssh.com is our first choice, as it is sshd's.
  client.connect('127.0.0.1', { port: o.port, username: o.user, keyFilename: o.key, allowAgent: false, lookForKeys: false });
  const fwd = client.forwardLocalPort('127.0.0.1', 0, '127.0.0.1', o.target);
  console.log(JSON.stringify({ port: fwd.port, cipher: client.getTransport().getNegotiated()?.cipherS2C }));
  await untilStdinCloses();
  fwd.close();
  client.close();
}

async function childSsh2(o) {
  const { Client } = c.requireSsh2();
  const conn = new Client();
  await new Promise((resolve, reject) => {
    conn.on('ready', resolve).on('error', reject);
    conn.connect(c.ssh2Config(o, { nodelay: true, cipher: GCM }));
  });
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    conn.forwardOut('127.0.0.1', sock.remotePort, '127.0.0.1', o.target, (err, stream) => {
      if (err) return sock.destroy(err);
      sock.pipe(stream).pipe(sock);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  console.log(JSON.stringify({ port: server.address().port, cipher: GCM }));
  await untilStdinCloses();
  server.close();
  conn.end();
}

function childSource(o) {
  const chunk = Buffer.alloc(256 * 1024);
  const server = net.createServer((s) => {
    let left = o.size;
    s.on('error', () => undefined);
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump);
      }
      s.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
  return untilStdinCloses().then(() => server.close());
}

// ---------------------------------------------------------------- the driver

/** Starts a long-lived process and resolves with its first JSON line; `stop()` ends it. */
function startTunnel(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${path.basename(cmd)} exited with ${code} before it was ready`)));
    lines.once('line', (line) => {
      const info = JSON.parse(line);
      resolve({
        ...info,
        pid: child.pid,
        stop: () => {
          child.stdin.end();
          setTimeout(() => child.kill('SIGKILL'), 3000).unref();
        },
      });
    });
  });
}

/** `ssh -N -L` from a free port to the source; resolves once the port accepts. */
async function startOpensshTunnel(target, sourcePort) {
  const port = await freePort();
  const child = spawn('ssh', [...c.sshArgs(target, ['-N', '-c', GCM, '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${port}:127.0.0.1:${sourcePort}`])], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (await accepts(port)) return { port, pid: child.pid, stop: () => child.kill('SIGTERM') };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error('ssh -L did not start listening');
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Reads everything the forwarded port gives; seconds from connect to end, and the machine's CPU meanwhile. */
function childSink(o) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const cpu0 = c.machineCpuSeconds();
    let bytes = 0;
    const s = net.connect(o.target, '127.0.0.1');
    s.on('data', (d) => (bytes += d.length));
    s.on('error', reject);
    s.on('end', () => resolve({ bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9, machineCpu: c.machineCpuSeconds() - cpu0 }));
  });
}

/** The reader runs in a process of its own, as the tunnels' ends do: nothing else shares its threads. */
const readAll = (port) => c.runNodeChild(__filename, ['--child', 'sink', '--target', String(port)]);

async function main() {
  const size = c.parseSize(c.arg('size', '1G'));
  const repeat = Number(c.arg('repeat', 3));
  const only = c.arg('only') ? String(c.arg('only')).split(',') : null;
  const want = (id) => !only || only.includes(id);
  console.log(`== Port forwarding throughput: ${(size / 2 ** 20).toFixed(0)} MiB of zeros through each tunnel, median of ${repeat} reads`);
  c.printMachine();
  console.log(c.loadLine('load average'));
  const sshd = await startSshd({ extraConfig: ['AllowTcpForwarding yes'] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-bench-fwd-'));
  const stops = [];
  let server = null;
  try {
    const source = await startTunnel(process.execPath, [__filename, '--child', 'source', '--size', String(size)]);
    stops.push(source.stop);
    const childArgs = (role) => [__filename, '--child', role, '--port', String(sshd.port), '--user', sshd.user, '--key', sshd.keyPath, '--known-hosts', sshd.knownHostsPath, '--target', String(source.port)];
    const tunnels = [];
    if (want('openssh')) tunnels.push({ id: 'openssh', label: 'OpenSSH ssh -L -> sshd', start: () => startOpensshTunnel(sshd, source.port) });
    if (want('ours')) tunnels.push({ id: 'ours', label: 'paramiko-ts forwardLocalPort -> sshd', start: () => startTunnel(process.execPath, childArgs('ours')) });
    if (want('ssh2-nodelay') && c.ssh2Version()) tunnels.push({ id: 'ssh2-nodelay', label: 'ssh2 forwardOut + TCP_NODELAY -> sshd', start: () => startTunnel(process.execPath, childArgs('ssh2')) });
    if (want('server')) {
      const { SSHServer } = c.requireDist();
      server = SSHServer.start({
        users: { [sshd.user]: { authorizedKeys: fs.readFileSync(sshd.keyPath + '.pub', 'utf8') } },
        hostKeys: [path.join(sshd.dir, 'ssh_host_ed25519_key')],
        exec: false,
        forwarding: true,
      });
      const knownHostsPath = path.join(dir, 'known_hosts_ours');
      fs.writeFileSync(knownHostsPath, server.knownHosts());
      const ours = { ...sshd, port: server.port, knownHostsPath };
      tunnels.push({ id: 'server-sshd', label: 'OpenSSH ssh -L -> sshd (beside our server)', start: () => startOpensshTunnel(sshd, source.port) });
      tunnels.push({ id: 'server-ours', label: 'OpenSSH ssh -L -> paramiko-ts SSHServer', start: () => startOpensshTunnel(ours, source.port) });
    }
    for (const t of tunnels) {
      t.tunnel = await t.start();
      stops.push(t.tunnel.stop);
      if (t.tunnel.cipher) console.log(`  ${t.label}: ${t.tunnel.cipher}`);
      t.runs = [];
    }
    for (let r = 0; r < repeat; r++) {
      for (const t of tunnels) {
        const res = await readAll(t.tunnel.port);
        if (res.bytes !== size) throw new Error(`${t.label}: ${res.bytes} bytes of ${size}`);
        t.runs.push(res);
        console.log(`  ${t.label}: ${c.fmt(res.bytes / res.seconds / 1e6, 0)} MB/s (${res.seconds.toFixed(2)} s, machine CPU ${c.fmt(res.machineCpu / (res.bytes / 2 ** 30), 2)} s/GiB)`);
      }
    }
    console.log(c.loadLine('after'));
    const med = (t) => size / c.quantile(t.runs.map((x) => x.seconds), 0.5) / 1e6;
    const medCpu = (t) => c.quantile(t.runs.map((x) => x.machineCpu / (x.bytes / 2 ** 30)), 0.5);
    const rows = [['tunnel', 'MB/s (median)', 'runs', 'machine CPU s/GiB']];
    for (const t of tunnels) rows.push([t.label, c.fmt(med(t), 0), t.runs.map((x) => c.fmt(x.bytes / x.seconds / 1e6, 0)).join(' '), c.fmt(medCpu(t), 2)]);
    console.log('\n' + c.table(rows));
    const by = Object.fromEntries(tunnels.map((t) => [t.id, med(t)]));
    const ratios = [['ratio (above 1: ours faster)', '']];
    if (by.ours && by.openssh) ratios.push(['ours / OpenSSH ssh -L', `${c.fmt(by.ours / by.openssh, 2)}x`]);
    if (by.ours && by['ssh2-nodelay']) ratios.push(['ours / ssh2 + TCP_NODELAY', `${c.fmt(by.ours / by['ssh2-nodelay'], 2)}x`]);
    if (by['server-ours'] && by['server-sshd']) ratios.push(['our server / sshd', `${c.fmt(by['server-ours'] / by['server-sshd'], 2)}x`]);
    if (ratios.length > 1) console.log('\n' + c.table(ratios));
  } finally {
    for (const stop of stops) stop();
    server?.close();
    sshd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

c.benchEntry({
  roles: { ours: childOurs, ssh2: childSsh2, source: childSource, sink: childSink },
  extra: () => ({ target: Number(c.arg('target')), size: c.parseSize(c.arg('size', '1G')) }),
  main,
});
