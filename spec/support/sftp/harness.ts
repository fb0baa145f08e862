/**
 * Test harness for the SFTP cores: OpenSSH's sftp-server on a pipe, OpenSSH's sftp client
 * driving our server through `sftp -D`, and both cores joined in memory. Every temp dir and
 * child process is tracked and cleaned by `cleanup()` (call it in afterEach/afterAll).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SftpClientCore, SftpClientCoreOptions } from '../../../lib/sftp/client-core';
import { SftpServerCore, SftpServerCoreOptions } from '../../../lib/sftp/server-core';
import { OPENSSH_ROOT, peersRequired } from '../peers';

/** OpenSSH's sftp-server and sftp (OpenSSH 10's with PARAMIKO_TS_OPENSSH=10: see peers.ts). */
export const SFTP_SERVER = `${OPENSSH_ROOT}/usr/lib/openssh/sftp-server`;
export const SFTP_CLIENT = `${OPENSSH_ROOT}/usr/bin/sftp`;
export const STDIO_SCRIPT = path.join(__dirname, 'server-stdio.js');
export const DIST_SERVER = path.join(__dirname, '..', '..', '..', 'dist', 'sftp', 'server-core.js');

const dirs: string[] = [];
const children: ChildProcess[] = [];

export function tempDir(prefix = 'sftp-'): string {
  const d = mkdtempSync(path.join(tmpdir(), `pts-${prefix}`));
  dirs.push(d);
  return d;
}

/**
 * This process's open descriptors on files under `dir`. Counting every descriptor of the process
 * is not a leak check inside a Jest worker: sockets and pipes of earlier tests close meanwhile.
 */
export function openFdsUnder(dir: string): number {
  const prefix = realpathSync(dir) + path.sep;
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(prefix)) n++;
    } catch {
      // closed between the listing and the readlink
    }
  }
  return n;
}

/** `openFdsUnder(dir)` once it is back to `want` (closes run in libuv's pool), or after 2 s. */
export async function settledFdsUnder(dir: string, want: number): Promise<number> {
  for (let i = 0; i < 200 && openFdsUnder(dir) !== want; i++) await new Promise((r) => setTimeout(r, 10));
  return openFdsUnder(dir);
}

export async function cleanup(): Promise<void> {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((r) => c.once('exit', r));
    }
  }
  for (const d of dirs.splice(0)) {
    // A test may have made a directory read-only; make it removable again.
    spawnChmod(d);
    rmSync(d, { recursive: true, force: true });
  }
}

function spawnChmod(d: string): void {
  try {
    require('node:child_process').spawnSync('chmod', ['-R', 'u+rwx', d]);
  } catch {
    // best effort
  }
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * `it` for tests needing an OpenSSH binary: in CI a missing one fails; elsewhere a notice
 * and a pass, as spec/support/peers.ts does for the other peers.
 */
export function itWithBinary(bin: string, pkg: string, name: string, fn: () => Promise<void>, timeout?: number): void {
  if (existsSync(bin)) it(name, fn, timeout);
  else if (peersRequired()) it(name, () => { throw new Error(`peer missing: ${bin} (apt-get install ${pkg})`); });
  else it(name, () => console.warn(`NOTICE: not run, ${bin} missing (${pkg}): ${name}`));
}

export interface OpenSshServer {
  core: SftpClientCore;
  proc: ChildProcess;
  stderr: () => string;
  /** Ends stdin and waits for the process to exit. */
  close(): Promise<void>;
}

/** OpenSSH's sftp-server on pipes, started in `dir`, with a started client core. */
export async function startOpenSshServer(dir: string, args: string[] = [], options: SftpClientCoreOptions = {}): Promise<OpenSshServer> {
  const proc = spawn(SFTP_SERVER, ['-d', dir, '-e', '-l', 'ERROR', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const core = new SftpClientCore((b) => proc.stdin!.write(b), options);
  proc.stdout!.on('data', (c: Buffer) => core.receive(c));
  proc.on('exit', () => core.end());
  await core.start();
  return {
    core,
    proc,
    stderr: () => err,
    close: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.stdin!.end();
      await exited;
    },
  };
}

export interface MemoryPair {
  client: SftpClientCore;
  server: SftpServerCore;
  /** Bytes the server sent (for hostile tests that bypass the client). */
  serverOut: Buffer[];
  ended: Error[];
}

/**
 * Both cores joined in memory. `split` cuts every send into pieces of at most that many
 * bytes, to exercise framing; delivery is on the next tick so neither side recurses into the other.
 */
/**
 * With `transientInput`, the client copies what it receives (a copying framer, as over a real
 * channel) and each piece it gets lives in one reused buffer, scribbled over after the call.
 */
export async function memoryPair(
  root: string,
  serverOptions: SftpServerCoreOptions = {},
  split?: number,
  { transientInput = false } = {},
): Promise<MemoryPair> {
  const ended: Error[] = [];
  const serverOut: Buffer[] = [];
  const pieces = (b: Buffer): Buffer[] => {
    if (!split) return [b];
    const out: Buffer[] = [];
    for (let i = 0; i < b.length; i += split) out.push(b.subarray(i, i + split));
    return out;
  };
  let client!: SftpClientCore;
  const server = new SftpServerCore(
    root,
    (b) => {
      serverOut.push(b);
      for (const p of pieces(b)) setImmediate(() => (transientInput ? receiveTransient(p) : client.receive(p)));
    },
    { ...serverOptions, onEnd: (e) => ended.push(e) },
  );
  let scratch = Buffer.alloc(0);
  const receiveTransient = (p: Buffer): void => {
    if (scratch.length < p.length) scratch = Buffer.alloc(p.length);
    const view = scratch.subarray(0, p.length);
    p.copy(view);
    client.receive(view);
    view.fill(0xee);
  };
  client = new SftpClientCore(
    (b) => {
      // The client may hand over a WRITE's data without a copy: copy here as a transport would.
      const copy = Buffer.from(b);
      for (const p of pieces(copy)) setImmediate(() => server.receive(p));
    },
    { copyInput: transientInput },
  );
  await client.start();
  return { client, server, serverOut, ended };
}

export interface BatchResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs OpenSSH's `sftp -b` against our server over stdio (`sftp -D`), in `cwd`. */
export function runSftpBatch(root: string, batch: string[], options: { cwd: string; serverArgs?: string[] }): Promise<BatchResult> {
  const serverCmd = [process.execPath, STDIO_SCRIPT, ...(options.serverArgs ?? []), root].join(' ');
  const proc = spawn(SFTP_CLIENT, ['-q', '-b', '-', '-D', serverCmd], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  proc.stdin!.end(batch.join('\n') + '\n');
  return new Promise((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
}
