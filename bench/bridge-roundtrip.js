#!/usr/bin/env node
// The cost of one blocking call through the bridge (issue 3 target: median under 30 µs), and
// of its neighbours: a promise call, a call after the worker went idle, a callback serviced
// while blocked, and ring throughput between the threads. Uses dist/: run `npm run build`.
//
//   node bench/bridge-roundtrip.js [--calls N]
'use strict';
const path = require('node:path');
const { getBridge, shutdownBridge, SharedRing } = require(path.join(__dirname, '..', 'dist', 'bridge'));

const argCalls = process.argv.indexOf('--calls');
const CALLS = argCalls > 0 ? Number(process.argv[argCalls + 1]) : 200000;

function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1] };
}

function line(name, st, unit = 'µs') {
  const f = (v) => v.toFixed(1).padStart(8);
  console.log(`${name.padEnd(44)} median ${f(st.median)} ${unit}  p90 ${f(st.p90)}  p99 ${f(st.p99)}  max ${f(st.max)}`);
}

function timeCalls(n, fn) {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    fn(i);
    out[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const bridge = getBridge();
  bridge.call('bridge', 'ping'); // start the worker
  timeCalls(20000, () => bridge.call('bridge', 'ping')); // warm up both threads' JITs

  console.log(`bridge round trips (${CALLS} calls, node ${process.version})`);
  line('call ping (back to back)', stats(timeCalls(CALLS, () => bridge.call('bridge', 'ping'))));
  const payload = { path: '/srv/app.tar.gz', flags: 'r', mode: 0o644, data: Buffer.alloc(64) };
  line('call echo {4 fields, 64-byte buffer}', stats(timeCalls(CALLS / 4, () => bridge.call('bridge', 'echo', payload))));

  bridge.onCallback('bench', (p) => p);
  line('call with one callback serviced while blocked', stats(timeCalls(CALLS / 10, (i) => bridge.call('bridge', 'callbackRoundtrip', { kind: 'bench', payload: i }))));

  // A call after the worker's event loop went to sleep: the wake-up cost of an idle thread.
  const idle = [];
  for (let i = 0; i < 500; i++) {
    await sleep(2);
    const t = process.hrtime.bigint();
    bridge.call('bridge', 'ping');
    idle.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  line('call ping after 2 ms idle', stats(idle));

  const asyncSamples = [];
  for (let i = 0; i < 20000; i++) {
    const t = process.hrtime.bigint();
    await bridge.callAsync('bridge', 'ping');
    asyncSamples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  line('callAsync ping, awaited one at a time', stats(asyncSamples));

  const batch = 20000;
  let t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: batch }, () => bridge.callAsync('bridge', 'ping')));
  console.log(`${'callAsync ping, 20000 in flight'.padEnd(44)} ${(Number(process.hrtime.bigint() - t) / 1000 / batch).toFixed(2)} µs per call`);

  // Ring streaming: the worker writes 1 GiB, the main thread reads it (blocking reads).
  for (const [capacity, maxChunk] of [[1 << 20, 256 << 10], [4 << 20, 1 << 20]]) {
    const total = 1 << 30;
    const ring = new SharedRing(capacity);
    const target = Buffer.allocUnsafe(maxChunk);
    t = process.hrtime.bigint();
    const done = bridge.callAsync('bridge', 'ringProduce', { sab: ring.sab, total, maxChunk: maxChunk * 2, seed: 7, hash: false });
    let got = 0;
    while (!ring.eof) {
      const n = ring.readInto(target, 0, maxChunk);
      if (n === 0) ring.waitReadable(null);
      got += n;
    }
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const result = await done;
    if (result.bytes !== got) throw new Error(`ring lost data: wrote ${result.bytes}, read ${got}`);
    console.log(`${`ring worker->main, ${capacity >> 20} MiB ring, reads of ${maxChunk >> 10} KiB`.padEnd(44)} ${(got / seconds / 1e6).toFixed(0)} MB/s`);
  }
  await shutdownBridge();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
