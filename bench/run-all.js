#!/usr/bin/env node
// Runs every side-by-side benchmark in turn, with the machine's load before and after each one
// (figures taken while other jobs run are not worth much: see docs/performance.md).
//
//   npm run build && node bench/run-all.js [--quick] [--wait-quiet [MAX_LOAD]] [--out DIR] [--only A,B]
//
//   --quick         smaller runs: connect N=10, 128 MiB streams, 1 repeat, 50k bridge calls
//   --wait-quiet    before each benchmark, wait (up to 10 minutes) until the 1-minute load
//                   average is below MAX_LOAD (default 0.5)
//   --out DIR       also save each benchmark's output (and JSON results) in DIR
//   --only A,B      run only these (connect-exec, cold-script, channel-throughput, bridge-roundtrip, chachapoly, ...)
//
// Uses dist/: run `npm run build` first.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const c = require('./support/common');

const quick = Boolean(c.arg('quick'));
const waitQuiet = c.arg('wait-quiet');
const maxLoad = waitQuiet === true || waitQuiet === undefined ? 0.5 : Number(waitQuiet);
const outDir = c.arg('out');

const BENCHES = [
  { name: 'connect-exec', args: quick ? ['--n', '10'] : ['--n', '30'], json: true },
  { name: 'cold-script', args: quick ? ['--runs', '3'] : ['--runs', '9'] },
  { name: 'channel-throughput', args: quick ? ['--size', '128M', '--repeat', '1'] : ['--size', '1G', '--repeat', '3'], json: true },
  { name: 'bridge-roundtrip', args: quick ? ['--calls', '50000'] : [] },
  { name: 'chachapoly', args: quick ? ['0.3'] : ['1'] },
  { name: 'operation-latency', args: quick ? ['--rounds', '3', '--turns', '1', '--warm', '40'] : [] },
  { name: 'sftp-tree', args: quick ? ['--dirs', '5', '--files', '10', '--repeat', '1'] : [] },
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- CPU used by other processes while a benchmark runs (the load average counts our own) ----

const HZ = 100; // USER_HZ

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // ppid, and utime + stime + cutime + cstime (children reaped by this process included)
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

/** CPU ticks of this process and all its live descendants (reaped ones are in their parents' cutime). */
function treeTicks() {
  const stats = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(d);
    if (st) stats.set(Number(d), st);
  }
  const children = new Map();
  for (const [pid, st] of stats) {
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(pid);
  }
  let ticks = 0;
  const stack = [process.pid];
  while (stack.length) {
    const pid = stack.pop();
    ticks += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

function machineBusyTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  // irq and softirq left out: loopback TCP runs in softirq, charged to no process (ours neither)
  return f[0] + f[1] + f[2];
}

/** Samples, every second, the CPU the machine spent outside this process tree. */
function watchOthers() {
  let lastTree = treeTicks();
  let lastBusy = machineBusyTicks();
  const started = Date.now();
  let others = 0;
  let worst = 0;
  const timer = setInterval(() => {
    const tree = treeTicks();
    const busy = machineBusyTicks();
    const o = Math.max(0, busy - lastBusy - (tree - lastTree));
    others += o;
    worst = Math.max(worst, o);
    lastTree = tree;
    lastBusy = busy;
  }, 1000);
  return () => {
    clearInterval(timer);
    const seconds = (Date.now() - started) / 1000;
    return { seconds, otherCoreSeconds: others / HZ, otherShare: others / HZ / seconds, worstSecond: worst / HZ };
  };
}

async function quiet() {
  if (!waitQuiet) return;
  const deadline = Date.now() + 10 * 60 * 1000;
  while (os.loadavg()[0] > maxLoad && Date.now() < deadline) {
    process.stdout.write(`  waiting for a quiet machine: ${c.loadLine('now')} (want < ${maxLoad})\n`);
    await sleep(15000);
  }
}

function run(script, args, logFile) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = logFile ? fs.createWriteStream(logFile) : null;
    for (const s of [child.stdout, child.stderr]) {
      s.on('data', (d) => {
        (s === child.stdout ? process.stdout : process.stderr).write(d);
        if (log) log.write(d);
      });
    }
    child.on('close', (code) => {
      if (log) log.end();
      resolve(code);
    });
  });
}

async function main() {
  c.requireDist();
  if (outDir) fs.mkdirSync(outDir, { recursive: true });
  c.printMachine();
  const failed = [];
  const only = c.arg('only') ? String(c.arg('only')).split(',') : null;
  for (const b of BENCHES) {
    if (only && !only.includes(b.name)) continue;
    const script = path.join(__dirname, `${b.name}.js`);
    if (!fs.existsSync(script)) {
      console.log(`\n### ${b.name}: not present, skipped`);
      continue;
    }
    await quiet();
    console.log(`\n### ${b.name} ${b.args.join(' ')}`);
    console.log(c.loadLine('before'));
    const args = [...b.args];
    if (outDir && b.json) args.push('--json', path.join(outDir, `${b.name}.json`));
    const stop = watchOthers();
    const code = await run(script, args, outDir ? path.join(outDir, `${b.name}.txt`) : null);
    const o = stop();
    console.log(c.loadLine('after'));
    console.log(
      `other processes used ${o.otherCoreSeconds.toFixed(1)} core-seconds in ${o.seconds.toFixed(0)} s ` +
        `(${(100 * o.otherShare).toFixed(0)}% of one core on average, ${(100 * o.worstSecond).toFixed(0)}% in the worst second)` +
        (o.otherShare > 0.1 ? ': the machine was NOT quiet, rerun for figures worth keeping' : ''),
    );
    if (code !== 0) failed.push(`${b.name} (exit ${code})`);
  }
  if (failed.length) {
    console.error(`\nfailed: ${failed.join(', ')}`);
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
