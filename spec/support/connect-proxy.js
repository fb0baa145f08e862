#!/usr/bin/env node
// An HTTP CONNECT proxy for the tests, on 127.0.0.1 (a free port, printed as "READY <port>").
// `CONNECT host:port HTTP/1.1` to 127.0.0.1 is answered with 200 and joined to that port; any
// other request or destination gets 403. The 200 is held until the destination's first bytes
// arrive and goes out in the same write, so a client always finds the server's first bytes
// right behind the proxy's answer (what a fast server sometimes does through a real proxy).
'use strict';
const net = require('node:net');

const server = net.createServer((client) => {
  let head = Buffer.alloc(0);
  client.on('error', () => undefined);
  const onData = (d) => {
    head = Buffer.concat([head, d]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    client.removeListener('data', onData);
    client.pause();
    const m = /^CONNECT 127\.0\.0\.1:(\d+) HTTP\/1\.[01]\r\n/.exec(head.toString('latin1'));
    if (!m) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const target = net.connect(Number(m[1]), '127.0.0.1');
    target.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    target.once('data', (first) => {
      client.write(Buffer.concat([Buffer.from('HTTP/1.1 200 Connection established\r\nX-Test: one write\r\n\r\n'), first]));
      const rest = head.subarray(end + 4);
      if (rest.length) target.write(rest);
      client.pipe(target);
      target.pipe(client);
      client.resume();
    });
  };
  client.on('data', onData);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
