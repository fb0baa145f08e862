#!/usr/bin/env node
'use strict';
// A TCP relay on 127.0.0.1 that holds every byte for --delay ms in each direction before passing
// it on, so a connection through it sees a round trip of twice that: what a client meets on a
// real network, or through a local tunnel (ssh -L, a SOCKS proxy, kubectl port-forward) whose far
// end is remote, while its socket's peer is this machine. The kernel here has no netem; this
// stands in for it (tests and bench/). Bytes keep their order and nothing is lost; the relay adds
// no bandwidth limit unless --rate is given (MB/s).
//
//   node spec/support/delay-relay.js --target 127.0.0.1:PORT --delay 10 [--rate 100]
//   prints "READY <port>" on stdout, relays until killed or until its stdin ends.
//
// From a plain-JS script (bench/): const r = await startDelayRelay({ targetPort, delayMs }); ...; r.stop();
const net = require('node:net');
const { spawn } = require('node:child_process');

/** One direction: chunks wait in order until their time comes. */
function relay(from, to, delayMs, bytesPerMs) {
  const queue = [];
  let head = 0;
  let timer = null;
  let lastDue = 0;
  let queued = 0;
  let ended = false;
  const flush = () => {
    timer = null;
    const now = performance.now();
    while (head < queue.length && queue[head].due <= now) {
      const { buf } = queue[head++];
      queued -= buf.length;
      to.write(buf);
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    // Hold the sender back while a lot waits here (its own TCP window then fills, as on a link).
    if (queued < 32 << 20 && from.isPaused()) from.resume();
    if (head < queue.length) timer = setTimeout(flush, Math.max(0, queue[head].due - now));
    else if (ended) to.end();
  };
  from.on('data', (buf) => {
    const now = performance.now();
    const serial = bytesPerMs ? Math.max(now, lastDue - delayMs) + buf.length / bytesPerMs : now;
    const due = serial + delayMs;
    lastDue = due;
    queue.push({ buf, due });
    queued += buf.length;
    if (queued >= 32 << 20) from.pause();
    if (!timer) timer = setTimeout(flush, Math.max(0, due - now));
  });
  from.on('end', () => {
    ended = true;
    if (!timer && head >= queue.length) to.end();
  });
}

function serve(targetHost, targetPort, delayMs, rateMBs) {
  const bytesPerMs = rateMBs ? rateMBs * 1000 : 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done);
    upstream.on('error', done);
    relay(client, upstream, delayMs, bytesPerMs);
    relay(upstream, client, delayMs, bytesPerMs);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Starts the relay as a child process (so a parent blocked in spawnSync does not stall it). */
function startDelayRelay({ targetHost = '127.0.0.1', targetPort, delayMs, rateMBs = 0 }) {
  const args = [__filename, '--target', `${targetHost}:${targetPort}`, '--delay', String(delayMs)];
  if (rateMBs) args.push('--rate', String(rateMBs));
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', stop);
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code) => reject(new Error(`the delay relay exited (${code})`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /READY (\d+)\n/.exec(out);
      if (!m) return;
      // It must not keep this process alive; its stdin ends when this process exits, and so does it.
      child.unref();
      child.stdout.unref();
      child.stdin.unref();
      resolve({ port: Number(m[1]), pid: child.pid, stop });
    });
  });
}

if (require.main === module) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  const [host, port] = String(arg('target', '')).split(':');
  if (!port) throw new Error('--target HOST:PORT is required');
  serve(host, Number(port), Number(arg('delay', '10')), Number(arg('rate', '0'))).then((server) => {
    process.stdout.write(`READY ${server.address().port}\n`);
  });
  // Whoever started it holds stdin open: when it ends (that process exited), so does the relay.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
} else {
  module.exports = { startDelayRelay };
}
