#!/usr/bin/env node
// Our embedded SSHServer side by side with OpenSSH's sshd, both served to OpenSSH `ssh` clients
// on this machine, with the same Ed25519 host key and user key:
//
//   1. logins per second: `ssh host true` (connect, key exchange, publickey auth, exec, exit),
//      N in all, C at a time;
//   2. memory per idle authenticated connection: M `ssh -N` clients held open at once; for sshd
//      the proportional set size (PSS) of its per-connection processes, for us the growth of this
//      process's PSS (the server runs in its worker thread).
//
//   npm run build && node bench/server-handshakes.js [--n 200] [--c 8] [--m 200] [--kex NAME]
//       [--openssh10 [ROOT]] [--json]
//
// The clients use their default key exchange (sntrup761x25519-sha512 with both servers) unless
// --kex names one (e.g. curve25519-sha256, to see the servers' own cost without the client's
// post-quantum key generation, which dominates). --openssh10: OpenSSH 10's ssh and sshd
// (unpacked by .ci/install-openssh10), whose default is mlkem768x25519-sha256.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const c = require('./support/common');
const { startSshd } = require('./support/sshd');

const N = Number(c.arg('n', 200));
const C = Number(c.arg('c', 8));
const M = Number(c.arg('m', 200));
const asJson = Boolean(c.arg('json'));
const KEX = c.arg('kex', '');
const TEN = c.arg('openssh10');
const TEN_ROOT = TEN ? (TEN === true ? '/opt/paramiko-ts/openssh10' : String(TEN)) : null;
const SSH = TEN_ROOT ? `${TEN_ROOT}/usr/bin/ssh` : 'ssh';
/** ssh options every client gets. */
const KEX_ARGS = KEX ? ['-o', `KexAlgorithms=${KEX}`] : [];
const pts = c.requireDist();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function runSsh(target, extra, command = []) {
  return new Promise((resolve) => {
    const child = spawn(SSH, [...c.sshArgs(target, [...KEX_ARGS, ...extra]), ...command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, err }));
  });
}

/** N logins with C in flight; returns logins per second. */
async function loginsPerSecond(target) {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next++ < N) {
        const r = await runSsh(target, [], ['true']);
        if (r.code !== 0) {
          failed++;
          if (failed === 1) console.error(`ssh failed against ${target.name}: ${r.err.trim()}`);
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  if (failed) throw new Error(`${failed} of ${N} logins failed against ${target.name}`);
  return N / secs;
}

/** PSS of a process in KiB (smaps_rollup), 0 when it is gone. */
function pss(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Descendants of `pid` (from /proc/<pid>/task/<pid>/children, recursively). */
function descendants(pid) {
  const out = [];
  const walk = (p) => {
    let kids = [];
    try {
      kids = fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {}
    for (const k of kids) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

/** Holds M idle authenticated connections; `measure()` is called with them all up. */
async function holdIdle(target, measure) {
  const children = [];
  try {
    for (let i = 0; i < M; i += 20) {
      const batch = [];
      for (let j = i; j < Math.min(M, i + 20); j++) {
        const child = spawn(SSH, c.sshArgs(target, [...KEX_ARGS, '-N', '-o', 'ServerAliveInterval=0']), { stdio: 'ignore' });
        children.push(child);
        batch.push(child);
      }
      await sleep(300);
    }
    // Wait until every client has logged in (the server side counts them).
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline && (await target.authenticated()) < M) await sleep(200);
    const n = await target.authenticated();
    if (n < M) throw new Error(`only ${n} of ${M} idle connections logged in to ${target.name}`);
    await sleep(500);
    return measure();
  } finally {
    for (const ch of children) ch.kill('SIGTERM');
    await sleep(500);
  }
}

async function main() {
  const sshd = await startSshd(TEN_ROOT ? { root: TEN_ROOT } : {});
  sshd.name = 'OpenSSH sshd';
  const hostKey = path.join(sshd.dir, 'ssh_host_ed25519_key');
  const server = pts.SSHServer.start({
    users: { [sshd.user]: { authorizedKeys: fs.readFileSync(sshd.keyPath + '.pub', 'utf8') } },
    hostKeys: [hostKey],
    env: { PATH: '/usr/bin:/bin', HOME: path.join(sshd.dir, 'home'), LANG: 'C.UTF-8' },
    maxConnections: M + 50,
    maxSessions: 10,
  });
  const ours = { ...sshd, name: 'paramiko-ts SSHServer', port: server.port, knownHostsPath: path.join(sshd.dir, 'known_hosts_ours') };
  fs.writeFileSync(ours.knownHostsPath, server.knownHosts());
  const base = server.status().authenticated;
  ours.authenticated = async () => {
    const s = server.status();
    return Math.min(s.connections, s.authenticated - base);
  };
  // sshd: one direct child of the listener per connection (its monitor), titled "sshd: USER" or
  // "sshd: USER [priv]" once the user has logged in ("[preauth]", "[accepted]", "[net]" before).
  sshd.authenticated = async () => {
    let kids = [];
    try {
      kids = fs.readFileSync(`/proc/${sshd.child.pid}/task/${sshd.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {}
    return kids.filter((p) => {
      try {
        return !/\[(preauth|accepted|net)\]/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'));
      } catch {
        return false;
      }
    }).length;
  };

  try {
    // Warm up both (first connections pay for page faults and key caches).
    await runSsh(sshd, [], ['true']);
    await runSsh(ours, [], ['true']);
    const rates = { sshd: await loginsPerSecond(sshd), ours: await loginsPerSecond(ours) };

    // Ours: the growth of this process's PSS, and of the worker's heap plus buffers (both
    // sampled a few times over 2 s, after the connections settled; GC makes single readings noisy).
    const sample = async () => {
      const xs = [];
      for (let i = 0; i < 5; i++) {
        const st = server.status();
        xs.push({ pss: pss(process.pid), heap: st.workerHeapUsed + st.arrayBuffers });
        await sleep(400);
      }
      const med = (k) => xs.map((x) => x[k]).sort((a, b) => a - b)[2];
      return { pss: med('pss'), heap: med('heap') };
    };
    const before = await sample();
    let heapKiB = 0;
    const oursKiB = await holdIdle(ours, async () => {
      const after = await sample();
      heapKiB = (after.heap - before.heap) / 1024 / M;
      return (after.pss - before.pss) / M;
    });
    const sshdKiB = await holdIdle(sshd, () => descendants(sshd.child.pid).reduce((sum, p) => sum + pss(p), 0) / M);

    const result = {
      n: N,
      concurrency: C,
      idle: M,
      loginsPerSecond: { sshd: rates.sshd, ours: rates.ours, ratio: rates.ours / rates.sshd },
      kibPerIdleConnection: { sshd: sshdKiB, ours: oursKiB, oursWorkerHeap: heapKiB, ratio: oursKiB / sshdKiB },
    };
    if (asJson) {
      console.log(JSON.stringify(result));
      return;
    }
    c.printMachine();
    console.log(`\nOpenSSH ssh clients (kex: ${KEX || "their default"}): ${N} logins (\`ssh host true\`, ${C} at a time), then ${M} idle \`ssh -N\` connections held at once\n`);
    console.log(
      c.table([
        ['server', 'logins/s', 'KiB per idle connection'],
        ['OpenSSH sshd', c.fmt(rates.sshd), c.fmt(sshdKiB, 0)],
        ['paramiko-ts SSHServer', c.fmt(rates.ours), `${c.fmt(oursKiB, 0)} (worker heap + buffers: ${c.fmt(heapKiB, 0)})`],
        ['ratio (ours / sshd)', c.fmt(rates.ours / rates.sshd, 2), c.fmt(oursKiB / sshdKiB, 2)],
      ]),
    );
  } finally {
    server.close();
    sshd.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
