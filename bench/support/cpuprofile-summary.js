#!/usr/bin/env node
// Self time by function from V8 .cpuprofile files (as `node --cpu-prof --cpu-prof-dir=DIR`
// writes them, one per thread: CPU.<date>.<pid>.<thread id>.<seq>.cpuprofile, thread 0 = main).
//
//   node bench/support/cpuprofile-summary.js DIR_OR_FILES... [--top 25] [--by function|file]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const TOP = Number(opt('top', 25));
const BY = opt('by', 'function');
const inputs = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));

const files = [];
for (const p of inputs) {
  if (fs.statSync(p).isDirectory()) {
    for (const f of fs.readdirSync(p).sort()) if (f.endsWith('.cpuprofile')) files.push(path.join(p, f));
  } else files.push(p);
}
if (files.length === 0) {
  console.error('usage: cpuprofile-summary.js DIR_OR_FILES... [--top N] [--by function|file]');
  process.exit(2);
}

const shortUrl = (u) => {
  if (!u) return '';
  const s = u.replace(/^file:\/\//, '');
  const i = s.indexOf('/dist/');
  if (i >= 0) return s.slice(i + 1);
  const j = s.indexOf('node_modules/');
  if (j >= 0) return s.slice(j);
  return s.startsWith('node:') ? s : path.basename(s);
};

for (const file of files) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // Self time per node: timeDeltas[i] is the time before samples[i].
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const agg = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const fn = cf.functionName || '(anonymous)';
    const url = shortUrl(cf.url);
    const key = BY === 'file' ? url || fn : `${fn}${url ? `  ${url}:${cf.lineNumber + 1}` : ''}`;
    agg.set(key, (agg.get(key) ?? 0) + us);
  }
  const m = /CPU\.[\d.]+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(path.basename(file));
  const thread = m ? (m[2] === '0' ? 'main thread' : `worker thread ${m[2]}`) : '';
  const idle = agg.get('(idle)') ?? 0;
  console.log(`\n${path.basename(file)}  ${thread}: ${(total / 1e3).toFixed(0)} ms sampled, ${((total - idle) / 1e3).toFixed(0)} ms busy`);
  const rows = [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  for (const [k, us] of rows) {
    const busyPct = k === '(idle)' ? '' : `${((100 * us) / (total - idle || 1)).toFixed(1).padStart(5)}% busy`;
    console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}% ${busyPct.padEnd(11)} ${k}`);
  }
}
