#!/usr/bin/env node
// Builds paramiko-ts's optional native packet ciphers (lib/native/sshcrypto.c) with node-gyp,
// against the headers and OpenSSL of the running node. npm runs this on install and `npm run
// build` runs it before tsc (make rebuilds only what changed). Without a C compiler, or with
// PARAMIKO_TS_NATIVE=0, nothing is built and the library ciphers through node:crypto instead:
// the same protocol, slower on bulk transfers. PARAMIKO_TS_REQUIRE_NATIVE=1 makes a failed
// build fail the install (CI), instead of a notice.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const here = __dirname;
const required = process.env.PARAMIKO_TS_REQUIRE_NATIVE === '1';

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: the candidates above or nothing
  }
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/**
 * Where the running node's headers are: npm's nodedir setting, else the install prefix when it
 * has them (Debian's and the official builds do). Without one node-gyp would download them.
 */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.join(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? path.resolve(prefix) : null;
}

function run(gyp, args) {
  const dir = nodeDir();
  if (dir) args = [...args, `--nodedir=${dir}`];
  const r = spawnSync(process.execPath, [gyp, ...args], { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

function give(reason, output) {
  const text = `paramiko-ts: native ciphers not built (${reason}); AES-GCM runs through node:crypto instead (slower on bulk transfers).`;
  if (required) {
    process.stderr.write(`${output ?? ''}\n${text}\nPARAMIKO_TS_REQUIRE_NATIVE=1: failing.\n`);
    process.exit(1);
  }
  process.stderr.write(`${text}\n`);
  process.exit(0);
}

if (process.env.PARAMIKO_TS_NATIVE === '0') give('PARAMIKO_TS_NATIVE=0');
const gyp = nodeGyp();
if (!gyp) give('node-gyp not found');
if (!existsSync(path.join(here, 'build', 'Makefile')) && !existsSync(path.join(here, 'build', 'binding.sln'))) {
  const configured = run(gyp, ['configure']);
  if (!configured.ok) give('node-gyp configure failed', configured.output);
}
const built = run(gyp, ['build']);
if (!built.ok) give('node-gyp build failed: is a C compiler installed?', built.output);
