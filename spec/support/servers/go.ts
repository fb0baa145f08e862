import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from './keys';
import { failStart, serverHandle, startDaemon, withPortRetry } from './ports';
import { makeTempDir, removeTempDir } from './process';
import { runProcess } from '../run-process';
import type { ProcessRun } from '../run-process';
import { SshServer } from './types';
import { ensureTestUser } from './users';

/** Go's SSH stack as Debian 12 ships it: golang-go, golang-golang-x-crypto-dev, golang-github-pkg-sftp-dev. */
export const GO = '/usr/bin/go';
export const GOPATH = '/usr/share/gocode';
const SOURCES = join(__dirname, '..', 'go');

/**
 * The peer's program `name` (server or client, spec/support/go), built once per source version
 * into the temp dir (a few seconds; later runs reuse it). GOPATH mode over Debian's packaged
 * sources: nothing is downloaded.
 */
export function goProgram(name: 'server' | 'client'): string {
  const source = join(SOURCES, `${name}.go`);
  const digest = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'pts-go-peer');
  const binary = join(dir, `${name}-${digest}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}`;
  const r = spawnSync(GO, ['build', '-o', partial, source], {
    env: { PATH: '/usr/bin:/bin', HOME: dir, GO111MODULE: 'off', GOPATH, GOCACHE: join(dir, 'cache'), GOFLAGS: '' },
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`go build ${source} failed (${r.error?.message ?? r.status}): ${r.stderr}`);
  renameSync(partial, binary); // atomic: a parallel test file never runs half a binary
  return binary;
}

export interface GoServer extends SshServer {
  kind: 'go';
}

/**
 * Starts spec/support/go/server.go on 127.0.0.1:<free port> with an Ed25519 host key: logins
 * with the test user's password or an authorized key (`authorize`; any user name), exec through
 * /bin/sh as the user running the tests, and pkg/sftp's server for the sftp subsystem.
 * `rekeyBytes`: the server starts a key exchange after that many bytes (x/crypto's RekeyThreshold).
 */
export async function startGoServer(options: { authorizedKeys?: string[]; rekeyBytes?: number } = {}): Promise<GoServer> {
  const binary = goProgram('server');
  const user = ensureTestUser();
  const dir = makeTempDir('go');
  try {
    const hostKeys = [generateKey(join(dir, 'host_ed25519'), 'ed25519')];
    const authorizedPath = join(dir, 'authorized_keys');
    writeFileSync(authorizedPath, '');
    // Read at every login, as sshd does.
    const authorize = (_username: string, line: string) => appendFileSync(authorizedPath, `${line.trim()}\n`);
    for (const k of options.authorizedKeys ?? []) authorize(user.username, k);
    return await withPortRetry(async (port) => {
      const args = ['-listen', `127.0.0.1:${port}`, '-hostkey', hostKeys[0].path, '-authorized', authorizedPath, '-password', user.password ?? ''];
      if (options.rekeyBytes) args.push('-rekey', String(options.rekeyBytes));
      const { peer, banner } = await startDaemon('go-ssh-server', binary, args, join(dir, `go-${port}.log`), port);
      return serverHandle(peer, { kind: 'go' as const, port, dir, banner, hostKeys, user }, authorize, () => removeTempDir(dir)) as GoServer;
    });
  } catch (e) {
    return failStart(null, () => removeTempDir(dir), e);
  }
}

/** Runs spec/support/go/client.go with `args` (see its header), `input` on its stdin. */
export function goClient(args: string[], input = ''): Promise<ProcessRun> {
  return runProcess(goProgram('client'), args, { input, timeoutMs: 120_000 });
}
