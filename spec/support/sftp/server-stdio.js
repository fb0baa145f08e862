#!/usr/bin/env node
// Runs SftpServerCore over stdin/stdout, for OpenSSH's `sftp -D 'node server-stdio.js ROOT'`
// (sftp starts the "server command" and speaks SFTP over its pipes, no ssh involved).
// Plain JavaScript on the compiled dist/: a child process cannot compile TypeScript on the fly.
// Options: --read-only, --umask=OCTAL. Diagnostics go to stderr when SFTP_STDIO_LOG is set.
'use strict';
const path = require('node:path');
const { SftpServerCore } = require(path.join(__dirname, '..', '..', '..', 'dist', 'sftp', 'server-core.js'));

const args = process.argv.slice(2);
const root = args.find((a) => !a.startsWith('--'));
if (!root) {
  process.stderr.write('usage: server-stdio.js [--read-only] [--umask=022] ROOT\n');
  process.exit(2);
}
const umaskArg = args.find((a) => a.startsWith('--umask='));
const log = process.env.SFTP_STDIO_LOG ? (line) => process.stderr.write(`sftp-stdio: ${line}\n`) : undefined;

const server = new SftpServerCore(root, (bytes) => process.stdout.write(bytes), {
  readOnly: args.includes('--read-only'),
  umask: umaskArg ? parseInt(umaskArg.slice('--umask='.length), 8) : undefined,
  log,
  onEnd: (err) => {
    process.stderr.write(`sftp-stdio: ${err.message}\n`);
    process.exitCode = 1;
    process.stdin.destroy();
  },
  onBackpressure: (paused) => (paused ? process.stdin.pause() : process.stdin.resume()),
});
process.stdin.on('data', (chunk) => server.receive(chunk));
process.stdin.on('end', () => {
  void server.end();
});
