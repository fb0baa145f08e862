#!/usr/bin/env node
'use strict';
/**
 * inetd's "nowait" in a few lines, for servers that speak on stdin and stdout (tinysshd):
 *
 *   node tcp-exec.js <host> <port> <command> [args...]
 *
 * Listens on host:port and runs the command for each connection with the socket as its stdin
 * and stdout (its stderr is ours: the harness's log). Prints nothing; the harness waits for the
 * server's identification line. On SIGTERM, or when its stdin closes (the harness gives it a
 * pipe, which closes when the runner dies), it kills the connections' processes and exits.
 */
const net = require('node:net');
const { spawn } = require('node:child_process');

const [host, port, command, ...args] = process.argv.slice(2);
const children = new Set();

const server = net.createServer({ pauseOnConnect: true }, (sock) => {
  // The child gets its own copy of the socket's descriptor; ours is closed once it has it.
  const child = spawn(command, args, { stdio: [sock, sock, 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', (e) => process.stderr.write(`tcp-exec: ${command}: ${e.message}\n`));
  sock.destroy();
});
server.on('error', (e) => {
  process.stderr.write(`tcp-exec: ${e.message}\n`);
  process.exit(1);
});
server.listen({ host, port: Number(port) });

const quit = () => {
  for (const c of children) c.kill('SIGKILL');
  process.exit(0);
};
process.on('SIGTERM', quit);
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
