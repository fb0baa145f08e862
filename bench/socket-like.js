#!/usr/bin/env node
// What a socket-like `sock` (an object of the main thread with send/recv/settimeout/close,
// driven by lib/api/sock-pump.ts) costs against the same connection on a paramiko-ts Socket the
// worker owns: connect + auth, a channel open, exec `true` with its status, and --size bytes of
// `head -c` read with recv(1 MiB), against an SSHServer in this process (shell /bin/sh), in
// turns, --rounds times; medians. A channel open far above a millisecond through the wrapper
// means Nagle is back (createConnection's sockets set TCP_NODELAY).
//
//   npm run build && node bench/socket-like.js [--rounds 5] [--size 100M]
//
// Uses dist/: run `npm run build` first.
'use strict';
const c = require('./support/common');

const ROUNDS = Number(c.arg('rounds', 5));
const SIZE = c.parseSize(c.arg('size', '100M'));
const now = () => Number(process.hrtime.bigint()) / 1e6;

function main() {
  const lib = c.requireDist();
  console.log(`== a socket-like object as sock vs a worker-owned Socket: ${ROUNDS} rounds, ${SIZE} bytes streamed`);
  c.printMachine();
  const server = lib.SSHServer.start({ users: { u: 'p' }, shell: '/bin/sh' });
  const wrap = (s) => ({ send: (d) => s.send(d), recv: (n) => s.recv(n), settimeout: (t) => s.settimeout(t), close: () => s.close() });
  const kinds = {
    'paramiko-ts Socket (the worker reads it)': () => lib.createConnection([server.host, server.port], 10),
    'a plain object wrapping one (pumped)': () => wrap(lib.createConnection([server.host, server.port], 10)),
  };
  const samples = {};
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const [label, make] of Object.entries(kinds)) {
        const s = (samples[label] ??= { connect: [], open: [], exec: [], mbps: [] });
        const client = new lib.SSHClient();
        client.setMissingHostKeyPolicy(new lib.AutoAddPolicy());
        let t = now();
        client.connect(server.host, { port: server.port, username: 'u', password: 'p', sock: make(), allowAgent: false, lookForKeys: false });
        s.connect.push(now() - t);
        const transport = client.getTransport();
        t = now();
        const ch = transport.openSession();
        s.open.push(now() - t);
        t = now();
        ch.execCommand('true');
        ch.recvExitStatus();
        s.exec.push(now() - t);
        ch.close();
        const stream = transport.openSession();
        stream.execCommand(`head -c ${SIZE} /dev/zero`);
        t = now();
        let got = 0;
        for (let d = stream.recv(1 << 20); d.length; d = stream.recv(1 << 20)) got += d.length;
        if (got !== SIZE) throw new Error(`${label}: got ${got} of ${SIZE} bytes`);
        s.mbps.push(SIZE / ((now() - t) / 1000) / 1e6);
        client.close();
      }
    }
  } finally {
    server.close();
  }
  console.log(c.loadLine('after'));
  console.log('');
  console.log('sock                                        connect+auth ms  channel open ms  exec true ms  stream MB/s');
  for (const [label, s] of Object.entries(samples)) {
    const m = (xs, digits = 1) => c.quantile(xs, 0.5).toFixed(digits);
    console.log(`${label.padEnd(44)}${m(s.connect).padStart(15)}${m(s.open).padStart(17)}${m(s.exec).padStart(14)}${m(s.mbps, 0).padStart(13)}`);
  }
}

main();
