import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  decodeTerminalModes,
  dropSpareHelper,
  findPython3,
  SessionExit,
  SessionProcess,
  SessionProcessOptions,
  spareHelperPid,
  spawnSession,
} from '../lib/worker/server/process';

// The server side's local programs: exec and shell sessions over pipes and over a pty (the
// Python helper), their exit, signals and clean-up of every process they start.

const SH = '/bin/sh';
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const PTY = { cols: 80, rows: 24, term: 'xterm-256color' };

const started: SessionProcess[] = [];
afterEach(async () => {
  const all = started.splice(0);
  for (const p of all) p.kill();
  await Promise.all(all.map((p) => p.exited));
});

function run(command: string | null, options: Partial<SessionProcessOptions> = {}): SessionProcess {
  const p = spawnSession({ command, shell: SH, env: ENV, ...options });
  started.push(p);
  return p;
}

/** Everything a stream carries, and waits for a text to show up in it (failing at its end). */
class Collector {
  text = '';
  bytes = 0;
  private ended = false;
  private waiters: (() => void)[] = [];

  constructor(stream: Readable) {
    stream.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      this.bytes += d.length;
      this.wake();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Resolves with the text after `from` once it contains `marker`. */
  until(marker: string, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.text.indexOf(marker, from);
        if (at >= 0) resolve(this.text.slice(from, at + marker.length));
        else if (this.ended) reject(new Error(`stream ended without ${JSON.stringify(marker)}: ${JSON.stringify(this.text)}`));
        else this.waiters.push(check);
      };
      check();
    });
  }

  private wake(): void {
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w();
  }
}

async function outputs(p: SessionProcess): Promise<{ out: string; err: string | null; exit: SessionExit }> {
  const out = new Collector(p.stdout);
  const err = p.stderr ? new Collector(p.stderr) : null;
  const exit = await p.exited;
  return { out: out.text, err: err ? err.text : null, exit };
}

/** Alive and not a zombie (the container's init may not reap orphans). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** Polls `done` every 20 ms for up to 2 s (a signalled process dies a moment after kill() returns). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Pids a command printed, one a line. */
const pids = (text: string) => text.split(/\s+/).filter((w) => /^\d+$/.test(w)).map(Number);

let dir: string;
beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'pts-process-spec-')));
});
afterAll(() => {
  // The helper started ahead by the last pty session (it would end with this process anyway).
  dropSpareHelper();
  rmSync(dir, { recursive: true, force: true });
});

describe('without a pty', () => {
  // A killed session's pipes may close a moment before its last process is gone (a job in a
  // group of its own dies a little after): its SIGKILL timer then stays, and fires a grace later,
  // searching /proc. Outlive those timers (grace, then the abandon's) here, so that none fires in
  // a later test that checks who searched /proc (under load, one fired in the pty tests' window).
  afterAll(() => new Promise((resolve) => setTimeout(resolve, 2 * 1000 + 250)));

  it('exec keeps stdout and stderr apart and reports the exit status', async () => {
    const r = await outputs(run('echo out; echo err >&2; exit 3'));
    expect(r).toEqual({ out: 'out\n', err: 'err\n', exit: { code: 3, signal: null, coreDumped: false } });
  });

  it('gives the child exactly the environment given', async () => {
    process.env.PTS_ONLY_IN_PARENT = 'leak';
    try {
      const r = await outputs(run('env', { env: { ...ENV, FOO: 'bar' } }));
      const lines = r.out.trim().split('\n');
      expect(lines).toContain('FOO=bar');
      expect(r.out).not.toContain('PTS_ONLY_IN_PARENT');
      // Nothing beyond what was given, but for what the shell itself sets.
      const names = lines.map((l) => l.slice(0, l.indexOf('=')));
      expect(names.filter((n) => !['PATH', 'FOO', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(n))).toEqual([]);
    } finally {
      delete process.env.PTS_ONLY_IN_PARENT;
    }
  });

  it('runs in the given working directory', async () => {
    const r = await outputs(run('pwd -P', { cwd: dir }));
    expect(r.out).toBe(`${dir}\n`);
  });

  it('refuses a missing working directory or shell at once', () => {
    expect(() => run('true', { cwd: join(dir, 'nowhere') })).toThrow(/not a directory/);
    expect(() => run('true', { shell: join(dir, 'nosh') })).toThrow(/cannot run the shell/);
    expect(() => run('true', { shell: 'no-such-shell-here' })).toThrow(/cannot run the shell/);
  });

  it('delivers 8 MiB of output completely before exited resolves', async () => {
    const p = run('head -c 8388608 /dev/zero; exit 0');
    const out = new Collector(p.stdout);
    const exit = await p.exited;
    expect(out.bytes).toBe(8 * 1024 * 1024);
    expect(exit.code).toBe(0);
  });

  it('feeds stdin to cat and ends it with stdin.end()', async () => {
    const p = run('cat');
    const out = new Collector(p.stdout);
    p.stdin.write('hello ');
    p.stdin.end('world\n');
    const exit = await p.exited;
    expect(out.text).toBe('hello world\n');
    expect(exit).toEqual({ code: 0, signal: null, coreDumped: false });
  });

  it('runs a shell reading commands from stdin when command is null', async () => {
    const p = run(null);
    const out = new Collector(p.stdout);
    p.stdin.write('echo from-stdin\nexit 4\n');
    expect((await p.exited).code).toBe(4);
    expect(out.text).toBe('from-stdin\n');
  });

  it("signal('TERM') ends sleep with exit signal TERM", async () => {
    const p = run('sleep 30');
    new Collector(p.stdout);
    expect(p.signal('TERM')).toBe(true);
    expect(await p.exited).toEqual({ code: null, signal: 'TERM', coreDumped: false });
  });

  it('signal() reaches the children in the process group too', async () => {
    // If only the shell got TERM, its sleep would keep stdout open and exited would hang; if
    // only the sleep did, the shell would go on to print "no".
    const p = run('(echo started; exec sleep 30); echo no');
    const out = new Collector(p.stdout);
    await out.until('started\n');
    expect(p.signal('TERM')).toBe(true);
    expect((await p.exited).signal).toBe('TERM');
    expect(out.text).toBe('started\n');
  });

  it('signal() refuses an unknown name and a process that is gone', async () => {
    const p = run('sleep 30');
    new Collector(p.stdout);
    expect(p.signal('NOPE')).toBe(false);
    expect(p.signal('SIGTERM')).toBe(false); // SSH names have no SIG prefix
    expect(p.signal('KILL')).toBe(true);
    expect((await p.exited).signal).toBe('KILL');
    expect(p.signal('TERM')).toBe(false);
  });

  it('resize() is a no-op without a pty', async () => {
    const p = run('true');
    expect(p.stderr).not.toBeNull();
    expect(p.resize({ cols: 100, rows: 40 })).toBe(false);
    new Collector(p.stdout);
    await p.exited;
  });

  it('kill() ends the whole tree, background children included', async () => {
    const p = run('sleep 30 & echo $!; sleep 30 & echo $!; echo done; wait');
    const out = new Collector(p.stdout);
    await out.until('done\n');
    const tree = [p.pid, ...pids(out.text)];
    expect(tree).toHaveLength(3);
    expect(tree.every(alive)).toBe(true);
    p.kill();
    p.kill(); // idempotent
    expect((await p.exited).signal).toBe('HUP');
    // The children got their HUP with the shell's, but may not have run yet to die of it.
    await until(() => !tree.some(alive));
    expect(tree.filter(alive)).toEqual([]);
  });

  it('kill() after the program ended: nothing searched for when its group is gone, a job left in the group hung up', async () => {
    // The end of nearly every exec session: no /proc scan (it reads every process's stat on
    // the worker's thread, shared by every connection).
    const done = run('true');
    await done.exited;
    // The module object itself (an import's namespace cannot be spied on).
    const readdir = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readdirSync');
    try {
      done.kill();
      expect(readdir.mock.calls.filter(([dir]) => String(dir) === '/proc')).toEqual([]);
    } finally {
      readdir.mockRestore();
    }
    // Ended with a job still running in its group, its output elsewhere: hung up all the same.
    const left = run('sleep 30 >/dev/null 2>&1 & echo $!');
    const [sleeper] = pids((await outputs(left)).out);
    expect(alive(sleeper)).toBe(true);
    left.kill();
    await until(() => !alive(sleeper));
    expect(alive(sleeper)).toBe(false);
  });

  it('kill() follows up with SIGKILL for what ignores SIGHUP', async () => {
    const p = run('trap "" HUP; sleep 30 & echo $!; echo done; wait');
    const out = new Collector(p.stdout);
    await out.until('done\n');
    const [sleeper] = pids(out.text);
    const t0 = Date.now();
    p.kill();
    expect((await p.exited).signal).toBe('KILL');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(alive(sleeper)).toBe(false);
  });

  it('kill() stops waiting, after the graces, for a process that left the session with stdout', async () => {
    const p = run(`setsid sh -c 'echo $$; exec sleep 30' &`); // prints once it has left
    const out = new Collector(p.stdout);
    await out.until('\n');
    const [escaped] = pids(out.text);
    try {
      const t0 = Date.now();
      p.kill();
      await p.exited;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      expect(alive(escaped)).toBe(true); // not ours to kill: it left the session, as from sshd's
    } finally {
      process.kill(escaped, 'SIGKILL');
    }
  });

  const python = findPython3();
  (python ? it : it.skip)('kill() reaches another process group of the session', async () => {
    const script = 'import os, time; os.setpgid(0, 0); print(os.getpid(), flush=True); time.sleep(30)';
    const p = run(`'${python}' -c '${script}' & wait`);
    const out = new Collector(p.stdout);
    await out.until('\n');
    const [other] = pids(out.text);
    expect(execFileSync('ps', ['-o', 'pgid=', '-p', String(other)]).toString().trim()).toBe(String(other));
    p.kill();
    await p.exited;
    // Its pipes close as it exits, a moment before the kernel marks it a zombie.
    await until(() => !alive(other));
    expect(alive(other)).toBe(false);
  });
});

const describePty = findPython3() ? describe : describe.skip;

describePty('with a pty', () => {
  const runPty = (command: string | null, pty: Partial<typeof PTY> & { modes?: Buffer } = {}, options: Partial<SessionProcessOptions> = {}) =>
    run(command, { pty: { ...PTY, ...pty }, ...options });

  /** Sends one line to an interactive shell and returns its output up to a marker it prints. */
  let marks = 0;
  async function shellRun(p: SessionProcess, out: Collector, command: string): Promise<string> {
    const mark = `M${++marks}`;
    const from = out.text.length;
    // The echo of the line shows "MARK M1"; only the output has "MARK_M1".
    p.stdin.write(`${command}; printf '%s_%s\\n' MARK ${mark}\n`);
    return out.until(`MARK_${mark}`, from);
  }

  it('is a terminal: tty names a /dev/pts device, stderr is null', async () => {
    const p = runPty('tty; echo to-stderr >&2');
    expect(p.stderr).toBeNull();
    const r = await outputs(p);
    expect(r.out).toMatch(/^\/dev\/pts\/\d+\r\nto-stderr\r\n$/);
    expect(r.exit).toEqual({ code: 0, signal: null, coreDumped: false });
  });

  it('the program leads a session of its own whose controlling terminal is the pty, in the foreground; no signal is ignored', async () => {
    // /proc/self/stat of the shell: pid, session, tty_nr and the terminal's foreground group.
    const r = await outputs(runPty('read -r s < /proc/$$/stat; echo "$s"; grep SigIgn /proc/$$/status'));
    const [stat, ignored] = r.out.split('\r\n');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(stat.split(' ')[0]);
    const [sid, ttyNr, tpgid] = [Number(fields[3]), Number(fields[4]), Number(fields[5])];
    expect(sid).toBe(pid);
    expect(ttyNr).toBeGreaterThan(0);
    expect(tpgid).toBe(pid);
    expect(ignored).toMatch(/^SigIgn:\s+0+$/);
  });

  it('has the window size given, and TERM from the request', async () => {
    const r = await outputs(runPty('stty size; echo "$TERM"', { cols: 123, rows: 45 }));
    expect(r.out).toBe('45 123\r\nxterm-256color\r\n');
  });

  it('resize() changes the size seen by a running shell', async () => {
    const p = runPty(null);
    const out = new Collector(p.stdout);
    expect(await shellRun(p, out, 'stty size')).toMatch(/\b24 80\r\n/);
    expect(p.resize({ cols: 100, rows: 40 })).toBe(true);
    expect(await shellRun(p, out, 'stty size')).toMatch(/\b40 100\r\n/);
    p.stdin.write('exit\n');
    expect((await p.exited).code).toBe(0);
  });

  it('reports the exit status of an interactive shell', async () => {
    const p = runPty(null);
    const out = new Collector(p.stdout);
    await shellRun(p, out, 'true');
    p.stdin.write('exit 7\n');
    expect(await p.exited).toEqual({ code: 7, signal: null, coreDumped: false });
    // The helper said the session was empty as it ended: no search of /proc for jobs left in
    // other groups (each reads every process's stat on the worker's shared thread).
    const readdir = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readdirSync');
    try {
      p.kill();
      expect(readdir.mock.calls.filter(([dir]) => String(dir) === '/proc')).toHaveLength(0);
    } finally {
      readdir.mockRestore();
    }
  });

  it("signal('INT') goes to the foreground group: sleep dies by INT", async () => {
    // exec: dash -c catches SIGINT (to wait for a foreground child and then die of it), so a
    // SIGINT landing while it forks a plain `sleep` would be held until the sleep ends.
    const p = runPty('printf ready; exec sleep 30');
    const out = new Collector(p.stdout);
    await out.until('ready');
    expect(p.signal('INT')).toBe(true);
    expect(await p.exited).toEqual({ code: null, signal: 'INT', coreDumped: false });
    expect(p.signal('INT')).toBe(false);
  });

  it('acts on a signal sent right after the start (the helper waits for the exec)', async () => {
    const p = runPty('sleep 30');
    new Collector(p.stdout);
    expect(p.signal('TERM')).toBe(true);
    expect(await p.exited).toEqual({ code: null, signal: 'TERM', coreDumped: false });
  });

  it('keeps exit 130 apart from death by SIGINT', async () => {
    expect((await outputs(runPty('exit 130'))).exit).toEqual({ code: 130, signal: null, coreDumped: false });
  });

  it('ends cat at stdin EOF, after a full line and after a partial one', async () => {
    for (const input of ['hello\n', 'partial']) {
      const p = runPty('cat');
      const out = new Collector(p.stdout);
      p.stdin.end(input);
      expect(await p.exited).toEqual({ code: 0, signal: null, coreDumped: false });
      expect(out.text).toContain(input.trim());
    }
  });

  it('kill() right after the start, before the helper has said who the program is: the helper hangs it up, no search of /proc here', async () => {
    const readdir = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readdirSync');
    try {
      const p = runPty('sleep 30');
      p.kill();
      const exit = await p.exited;
      expect(exit.signal === 'HUP' || exit.code !== 0).toBe(true);
      expect(readdir.mock.calls.filter(([dir]) => String(dir) === '/proc')).toHaveLength(0);
    } finally {
      readdir.mockRestore();
    }
  });

  it('relays all output written just before the exit', async () => {
    const r = await outputs(runPty("head -c 1048576 /dev/zero | tr '\\0' x; exit 5"));
    expect(r.exit.code).toBe(5);
    expect(r.out.length).toBe(1024 * 1024);
    expect(/^x*$/.test(r.out)).toBe(true);
  });

  it('applies terminal modes and skips what it does not know', async () => {
    const mode = (opcode: number, value: number) => Buffer.from([opcode, value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
    // ECHO off, VINTR ^G, an unknown opcode, then TTY_OP_END.
    const modes = Buffer.concat([mode(53, 0), mode(1, 7), mode(99, 1), Buffer.from([0])]);
    const r = await outputs(runPty('stty -a', { modes }));
    expect(r.out).toMatch(/intr = \^G;/);
    expect(r.out).toMatch(/(^|\s)-echo(\s|$)/m);
  });

  it('decodes terminal modes, stopping at TTY_OP_END, an undefined opcode or truncation', () => {
    const modes = Buffer.from([53, 0, 0, 0, 1, 128, 0, 0, 0x96, 0, 0, 1, 0, 0, 0, 3]);
    expect(decodeTerminalModes(modes)).toEqual([['lflag', 'ECHO', 1], ['ispeed', 'ISPEED', 38400]]);
    expect(decodeTerminalModes(Buffer.from([1, 0, 0, 0, 3, 160, 0, 0, 0, 0, 2, 0, 0, 0, 4]))).toEqual([['cc', 'VINTR', 3]]);
    expect(decodeTerminalModes(Buffer.from([1, 0, 0]))).toEqual([]);
  });

  it('does not fail on malformed modes', async () => {
    const r = await outputs(runPty('echo ok', { modes: Buffer.from([53, 0, 0]) }));
    expect(r.out).toBe('ok\r\n');
  });

  it('gives the program exactly the environment given, plus TERM, in the cwd given', async () => {
    const r = await outputs(runPty('env; pwd -P', {}, { env: { ...ENV, FOO: 'bar' }, cwd: dir }));
    const lines = r.out.split('\r\n');
    expect(lines).toEqual(expect.arrayContaining(['FOO=bar', 'TERM=xterm-256color', dir]));
    expect(r.out).not.toContain('HOME=');
  });

  it('kill() ends an interactive shell and its job; the helper does it, without a search of /proc here', async () => {
    const p = runPty(null);
    const out = new Collector(p.stdout);
    const text = await shellRun(p, out, 'sleep 30 & echo pid=$!');
    const [sleeper] = /pid=(\d+)/.exec(text)!.slice(1).map(Number);
    expect(alive(sleeper)).toBe(true);
    const readdir = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readdirSync');
    try {
      p.kill();
      await p.exited;
      expect(readdir.mock.calls.filter(([dir]) => String(dir) === '/proc')).toHaveLength(0);
    } finally {
      readdir.mockRestore();
    }
    expect(alive(sleeper)).toBe(false);
    expect(alive(p.pid)).toBe(false);
  });

  it('kill(): a job that ignores SIGHUP, in a group of its own, gets SIGKILL from the helper after its grace', async () => {
    const p = runPty(null);
    const out = new Collector(p.stdout);
    const text = await shellRun(p, out, '(trap "" HUP; exec sleep 30) & echo pid=$!');
    const [stubborn] = /pid=(\d+)/.exec(text)!.slice(1).map(Number);
    expect(execFileSync('ps', ['-o', 'pgid=', '-p', String(stubborn)]).toString().trim()).toBe(String(stubborn));
    const readdir = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readdirSync');
    try {
      const t0 = Date.now();
      p.kill();
      await p.exited;
      await until(() => !alive(stubborn));
      expect(alive(stubborn)).toBe(false);
      // After the helper's grace (1 s), and not from us: ours would have searched /proc.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(readdir.mock.calls.filter(([dir]) => String(dir) === '/proc')).toHaveLength(0);
    } finally {
      readdir.mockRestore();
    }
  });

  it('kill() with the helper stopped: our SIGKILL for the session after 5 s (a search of /proc finds the job), then the helper is ended', async () => {
    const p = runPty(null);
    const out = new Collector(p.stdout);
    const text = await shellRun(p, out, '(trap "" HUP; exec sleep 30) & echo pid=$!; echo shell=$$');
    const [stubborn] = /pid=(\d+)/.exec(text)!.slice(1).map(Number);
    const [shell] = /shell=(\d+)/.exec(text)!.slice(1).map(Number);
    const readdir = jest.spyOn(require('node:fs') as typeof import('node:fs'), 'readdirSync');
    try {
      process.kill(p.pid, 'SIGSTOP');
      const t0 = Date.now();
      p.kill();
      await new Promise((resolve) => setTimeout(resolve, 4000));
      // The helper has the hangup: nothing done here before the fallback.
      expect(alive(stubborn) && alive(shell)).toBe(true);
      const exit = await p.exited;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(5000);
      expect(exit.error).toContain('without reporting');
      await until(() => !alive(stubborn) && !alive(shell));
      expect([alive(stubborn), alive(shell), alive(p.pid)]).toEqual([false, false, false]);
      expect(readdir.mock.calls.filter(([dir]) => String(dir) === '/proc').length).toBeGreaterThan(0);
    } finally {
      readdir.mockRestore();
      for (const pid of [stubborn, shell, p.pid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
    }
  });

  it('reports a shell that cannot be run through the terminal, exit 127', async () => {
    const r = await outputs(runPty('true', {}, { shell: 'no-such-shell-here' }));
    expect(r.exit.code).toBe(127);
    expect(r.out).toContain('no-such-shell-here');
  });

  it('reports a failure of the helper itself in SessionExit.error', async () => {
    const fake = join(dir, 'broken-python3');
    writeFileSync(fake, '#!/bin/sh\necho boom >&2\nexit 3\n', { mode: 0o755 });
    const r = await outputs(runPty('true', {}, { python: fake }));
    expect(r.exit).toEqual({ code: 3, signal: null, coreDumped: false, error: 'boom' });
  });

  it('starts the next session\'s helper ahead: the second session runs in it, in its own cwd; dropSpareHelper ends it', async () => {
    dropSpareHelper();
    expect(spareHelperPid()).toBeNull();
    const first = await outputs(runPty('pwd -P', {}, { cwd: dir }));
    expect(first.out).toBe(`${dir}\r\n`);
    // Started once the first session was on its way.
    await new Promise((resolve) => setImmediate(resolve));
    const ahead = spareHelperPid();
    expect(ahead).toEqual(expect.any(Number));
    const second = runPty('pwd -P', {}, { cwd: '/' });
    expect(second.pid).toBe(ahead);
    expect((await outputs(second)).out).toBe('/\r\n');
    await new Promise((resolve) => setImmediate(resolve));
    const next = spareHelperPid()!;
    expect(next).not.toBe(ahead);
    expect(alive(next)).toBe(true);
    dropSpareHelper();
    expect(spareHelperPid()).toBeNull();
    for (let i = 0; i < 100 && alive(next); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(alive(next)).toBe(false);
  });

  it('throws when there is no python3 for the helper', () => {
    expect(() => runPty('true', {}, { python: join(dir, 'no-python3') })).toThrow(/pty sessions need python3/);
  });
});
