import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';

/**
 * Process plumbing shared by every peer harness: a temp dir per peer, spawning with a parent-death
 * signal, output to a log file, stopping by PID (SIGTERM, then SIGKILL after a grace period), and a
 * process 'exit' hook that kills whatever a failed test left behind.
 */

/** log() returns at most this many bytes (the tail of the log file). */
const LOG_LIMIT = 8 * 1024 * 1024;
/** How long `stop()` waits after SIGTERM before SIGKILL. */
export const STOP_GRACE_MS = 2000;

interface Registry {
  children: Set<ChildProcess>;
  dirs: Set<string>;
  cleanups: Set<() => void>;
}

/**
 * The real `process` object. Inside Jest, test code sees a copy of it whose 'exit' event never
 * fires; `vm.runInThisContext` evaluates in the worker's main context, where `process` is the real
 * one. Outside Jest both are the same object.
 */
function realProcess(): NodeJS.Process {
  try {
    const p = vm.runInThisContext('process') as NodeJS.Process;
    if (p && typeof p.on === 'function' && typeof p.pid === 'number') return p;
  } catch {
    /* fall through */
  }
  return process;
}

const REGISTRY_KEY = Symbol.for('paramiko-ts.spec.servers.registry');

/**
 * One registry and one 'exit' listener per OS process, however many times Jest re-evaluates this
 * module (once per test file): they live on the real process object.
 */
function registry(): Registry {
  const real = realProcess() as NodeJS.Process & { [REGISTRY_KEY]?: Registry };
  let reg = real[REGISTRY_KEY];
  if (!reg) {
    const r: Registry = { children: new Set(), dirs: new Set(), cleanups: new Set() };
    reg = r;
    real[REGISTRY_KEY] = r;
    real.on('exit', () => {
      // No time to wait here: SIGKILL the peers and what they started (commands of the Python
      // servers, per-connection server processes).
      for (const child of r.children) {
        if (child.exitCode === null && child.signalCode === null && child.pid) {
          const family = descendants(child.pid);
          for (const p of [{ pid: child.pid }, ...family]) {
            try {
              real.kill(p.pid, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }
        }
      }
      for (const fn of r.cleanups) {
        try {
          fn();
        } catch {
          /* best effort */
        }
      }
      for (const dir of r.dirs) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch {
          /* best effort */
        }
      }
    });
  }
  return reg;
}

/** A fresh temp dir (mode 0755 so peers that drop privileges can read what they need), removed at exit at the latest. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pts-${prefix}-`));
  chmodSync(dir, 0o755);
  registry().dirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  registry().dirs.delete(dir);
}

/**
 * Registers a synchronous cleanup to run at process exit if nobody ran it before; returns the
 * function that runs it now (once) and unregisters it.
 */
export function exitCleanup(fn: () => void): () => void {
  const reg = registry();
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    reg.cleanups.delete(run);
    fn();
  };
  reg.cleanups.add(run);
  return run;
}

/** Whether this process runs as root (needed for system users, PAM passwords, dropbear). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

const SETPRIV = '/usr/bin/setpriv';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Keep a pipe to the peer's stdin (the Python servers exit when it closes). Default: /dev/null. */
  stdinPipe?: boolean;
}

/**
 * A started peer process. Its stdout and stderr go to a log file, not to a pipe: the library's
 * blocking calls park the main thread in Atomics.wait, during which nobody would drain a pipe, and
 * a peer blocked on a full stderr pipe would hang the very call that waits for it.
 */
export class PeerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly name: string;
  readonly logPath: string;
  /** Resolves when the process has exited (and been reaped). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private spawnError = '';
  private savedLog: string | null = null;
  private stopping: Promise<void> | null = null;

  constructor(name: string, cmd: string, args: string[], logPath: string, options: SpawnOptions = {}) {
    this.name = name;
    this.logPath = logPath;
    const fd = openSync(logPath, 'a', 0o644);
    // setpriv (util-linux) sets PR_SET_PDEATHSIG, then execs the peer under the same PID: if this
    // Node process dies without running its 'exit' hook (SIGKILL, OOM), the kernel sends the peer
    // SIGTERM. setpriv runs after libuv's setuid, so the setting survives the uid change.
    const [file, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'TERM', '--', cmd, ...args]] : [cmd, args];
    let child: ChildProcess;
    try {
      child = spawn(file, argv, {
        env: options.env ?? process.env,
        cwd: options.cwd,
        uid: options.uid,
        gid: options.gid,
        stdio: [options.stdinPipe ? 'pipe' : 'ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    if (child.pid === undefined) {
      this.pid = -1; // spawn failed (ENOENT...): the 'error' event carries the reason
    } else {
      this.pid = child.pid;
      registry().children.add(child);
    }
    this.exited = new Promise((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        registry().children.delete(child);
        resolve({ code, signal });
      };
      child.on('exit', finish);
      child.on('error', (err) => {
        this.spawnError += `[harness] spawn error: ${err.message}\n`;
        if (child.pid === undefined || child.exitCode !== null) finish(null, null);
      });
    });
    child.stdin?.on('error', () => {
      /* EPIPE when the peer exits first */
    });
    // A forgotten stop() must not keep Jest from exiting: the 'exit' hook kills the peer then.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** Everything the peer wrote to stdout and stderr so far (the last 8 MiB). */
  log(): string {
    if (this.savedLog !== null) return this.savedLog;
    return this.readLog();
  }

  private readLog(): string {
    try {
      const size = statSync(this.logPath).size;
      const start = Math.max(0, size - LOG_LIMIT);
      const buf = Buffer.alloc(size - start);
      const fd = openSync(this.logPath, 'r');
      try {
        readSync(fd, buf, 0, buf.length, start);
      } finally {
        closeSync(fd);
      }
      return buf.toString('utf8') + this.spawnError;
    } catch {
      return this.spawnError;
    }
  }

  /** Keeps the log in memory (before the temp dir holding the file is removed). */
  saveLog(): void {
    if (this.savedLog === null) this.savedLog = this.readLog();
  }

  get running(): boolean {
    return this.pid > 0 && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for an output line matching `re` (the Python servers print `READY <port>`); also after exit, from the saved log. */
  async waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.log().split('\n')) {
        const m = re.exec(line.replace(/\r$/, ''));
        if (m) return m;
      }
      if (this.savedLog !== null) throw new PeerStartError(this, `stopped without printing a line matching ${re}`);
      if (!this.running) {
        // Exited: one last look at what it wrote before going.
        await sleep(10);
        for (const line of this.log().split('\n')) {
          const m = re.exec(line.replace(/\r$/, ''));
          if (m) return m;
        }
        throw new PeerStartError(this, `exited (${this.child.signalCode ?? this.child.exitCode}) before printing a line matching ${re}`);
      }
      if (Date.now() > deadline) throw new PeerStartError(this, `printed no line matching ${re} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`; also the peer's descendants (per-connection server
   * processes, commands they run), found before the peer dies. Idempotent.
   */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop(graceMs);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<void> {
    if (this.pid <= 0) return;
    const family = this.running ? descendants(this.pid) : [];
    if (this.running) signal(this.pid, 'SIGTERM');
    for (const d of family) signalIfSame(d, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.running) signal(this.pid, 'SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    await this.exited;
    clearTimeout(timer);
    // Descendants get the rest of the grace period, then SIGKILL.
    const deadline = Date.now() + graceMs;
    while (family.some(alive) && Date.now() < deadline) await sleep(25);
    for (const d of family) signalIfSame(d, 'SIGKILL');
    this.saveLog();
  }
}

/** Thrown when a peer exits or stays silent during start; carries its log. */
export class PeerStartError extends Error {
  readonly log: string;
  /** The peer could not bind its port: the caller retries with another one. */
  readonly addressInUse: boolean;
  constructor(peer: PeerProcess, what: string) {
    const log = peer.log();
    super(`${peer.name} (pid ${peer.pid}) ${what}\n--- ${peer.name} output ---\n${log.slice(-16000)}`);
    this.name = 'PeerStartError';
    this.log = log;
    this.addressInUse = /Address already in use|EADDRINUSE/i.test(log);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

interface ProcRef {
  pid: number;
  start: string;
}

/** Field 22 of /proc/<pid>/stat (start time): tells a process from a later one with the same PID. */
function procStat(pid: number): { ppid: number; start: string; state: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]), start: rest[19] };
  } catch {
    return null;
  }
}

/** Every live descendant of `pid` (Linux /proc; empty elsewhere). */
export function descendants(pid: number): ProcRef[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const byParent = new Map<number, ProcRef[]>();
  for (const e of entries) {
    const st = procStat(Number(e));
    if (!st) continue;
    const list = byParent.get(st.ppid) ?? [];
    list.push({ pid: Number(e), start: st.start });
    byParent.set(st.ppid, list);
  }
  const out: ProcRef[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of byParent.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

function alive(p: ProcRef): boolean {
  const st = procStat(p.pid);
  return st !== null && st.start === p.start && st.state !== 'Z';
}

function signalIfSame(p: ProcRef, sig: NodeJS.Signals): void {
  if (alive(p)) signal(p.pid, sig);
}

/** Whether a PID names a live (non-zombie) process. */
export function pidAlive(pid: number): boolean {
  const st = procStat(pid);
  if (st) return st.state !== 'Z';
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Wraps an async function so that every call after the first returns the first call's promise. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | null = null;
  return () => (p ??= fn());
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Synchronous sleep (for lock retries in synchronous code). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
