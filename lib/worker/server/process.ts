import { ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, readdirSync, readFileSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/**
 * The program of a server session on the local machine: an `exec` command or a shell, over
 * pipes or a pseudo-terminal. Node has no pty API and we take no native dependency, so a pty
 * session runs under a small Python 3 helper (PTY_HELPER below) that owns the terminal and
 * relays its bytes. Each session is its own Unix session (setsid), as under sshd: signal()
 * reaches its process group and kill() everything in the session.
 */

export interface PtySize { cols: number; rows: number; widthPixels?: number; heightPixels?: number }

export interface SessionProcessOptions {
  /** The command line for `exec` (run through the shell with -c); null runs an interactive shell. */
  command: string | null;
  /** The shell: default process.env.SHELL or '/bin/sh'. */
  shell?: string;
  /** The whole environment of the child (nothing inherited beyond it). */
  env: Record<string, string>;
  cwd?: string;
  /**
   * A pseudo-terminal (SSH pty-req): TERM is set from `term` (when not empty); stderr is merged
   * into the pty. `modes` are the RFC 4254 section 8 encoded terminal modes, applied to the
   * terminal before the program starts (the ones this platform's termios knows; others are
   * skipped, as are malformed encodings).
   */
  pty?: (PtySize & { term: string; modes?: Buffer }) | null;
  /** The Python 3 that runs the pty helper: default /usr/bin/python3, then python3 on PATH. */
  python?: string;
}

export interface SessionExit {
  code: number | null;
  /** SSH name without "SIG": 'TERM', 'KILL', 'INT'... */
  signal: string | null;
  /** Known only with a pty (Node does not report WCOREDUMP): always false over pipes. */
  coreDumped: boolean;
  /** Set when the pty helper itself failed before reporting the program's end (its stderr). */
  error?: string;
}

export interface SessionProcess {
  /** The program's pid over pipes; with a pty, the helper's (the program is its child). */
  readonly pid: number;
  /** Write errors after the program is gone are swallowed: the data has nowhere to go. */
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** null with a pty (the terminal carries both streams). */
  readonly stderr: Readable | null;
  /**
   * SSH window-change; a no-op (returns false) without a pty. `applied` is called once the
   * new size is on its way to the terminal (input written after that sees it).
   */
  resize(size: PtySize, applied?: () => void): boolean;
  /**
   * SSH "signal" request: name without SIG ('INT', 'TERM', 'HUP', 'KILL', 'USR1'...); false if
   * unknown or the process is gone. Without a pty, delivered to the program's process group;
   * with a pty, to the terminal's foreground process group.
   */
  signal(name: string): boolean;
  /**
   * RFC 4335 "break": a break on the terminal (tcsendbreak on the pty's master, as sshd; a
   * no-op for a Linux pty, which has no line to hold). False without a pty.
   */
  sendBreak(): boolean;
  /** Resolves once the process has exited AND its stdout/stderr have ended (all output read). */
  readonly exited: Promise<SessionExit>;
  /** Kills the whole process tree (SIGHUP to the session, SIGKILL after a grace of 1 s), idempotent. */
  kill(): void;
}

/** kill(): what ignores SIGHUP gets SIGKILL this much later; and if a process outside the
 * session (a daemon that called setsid) still holds our pipes one more grace later, we stop
 * waiting for it and close them. */
const KILL_GRACE_MS = 1000;
/** kill() of a pty session: the helper hangs up, waits its grace (HANGUP_GRACE, 1 s), then sends
 * SIGKILL until the session is empty (for up to 1 s more) and reports. Ours comes only if the
 * helper has not ended by then, with room for a loaded machine: at 2 s it raced a helper doing
 * its job (and searched /proc beside it). */
const HELPER_HANGUP_FALLBACK_MS = 5000;
/** The pty helper's stderr kept for SessionExit.error. */
const HELPER_STDERR_LIMIT = 4096;

export function spawnSession(options: SessionProcessOptions): SessionProcess {
  const shell = options.shell || process.env.SHELL || '/bin/sh';
  if (isAbsolute(shell) && !isExecutable(shell)) throw new Error(`cannot run the shell ${shell}: not an executable file`);
  if (options.cwd !== undefined && !isDirectory(options.cwd)) throw new Error(`cannot run in ${options.cwd}: not a directory`);
  return options.pty ? new PtySession(options, options.pty, shell) : new PipeSession(options, shell);
}

// ---- signals ----

const SIGNALS = osConstants.signals as Record<string, number>;
/** Number -> SSH name; the first of aliases wins (ABRT over IOT, IO over POLL), as in Node. */
const SIGNAL_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(SIGNALS)) if (!SIGNAL_NAMES.has(n)) SIGNAL_NAMES.set(n, name.slice(3));

function signalNumber(name: string): number | null {
  const key = `SIG${name}`;
  return Object.hasOwn(SIGNALS, key) ? SIGNALS[key] : null;
}

function sshSignalName(signal: NodeJS.Signals | number | null): string | null {
  if (signal === null) return null;
  if (typeof signal === 'number') return SIGNAL_NAMES.get(signal) ?? String(signal);
  return signal.startsWith('SIG') ? signal.slice(3) : signal;
}

function tryKill(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Live processes of session `sid` from Linux's /proc; null where there is no /proc. */
function sessionMembers(sid: number): number[] | null {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return null;
  }
  const members: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
      const [state, , , session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(session) === sid && state !== 'Z' && state !== 'X') members.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return members;
}

/** Signals every process of the session led by `sid`: its process group, and on Linux also the
 * other groups in it (jobs of a shell with job control), each signal in `signals` in turn. */
function signalSession(sid: number, ...signals: NodeJS.Signals[]): boolean {
  if (!(sid > 1)) return false;
  // One scan for all the signals: it reads every process's stat (1.6 ms for 66 processes here),
  // on the worker's thread, which every connection shares.
  const members = sessionMembers(sid) ?? [];
  let any = members.length > 0;
  for (const signal of signals) {
    if (tryKill(-sid, signal)) any = true;
    for (const pid of members) tryKill(pid, signal);
  }
  return any;
}

function sessionGone(sid: number): boolean {
  const members = sessionMembers(sid);
  return members ? members.length === 0 : !tryKill(-sid, 0);
}

// ---- the common part: exit, kill ----

abstract class Session {
  readonly exited: Promise<SessionExit>;
  protected closed = false;
  protected killing = false;
  private timer: NodeJS.Timeout | null = null;
  private settle!: (exit: SessionExit) => void;

  constructor(protected readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => (this.settle = resolve));
    // Failures of kill() and of writes show in return values; none may crash the worker.
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    // 'close': the process has exited and every one of its pipes has ended.
    child.on('close', (code, signal) => {
      this.closed = true;
      this.settle(this.outcome(code, signal));
      if (this.timer && this.sessionEnded()) this.clearTimer();
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** The id of the program's Unix session (its leader's pid) once known. */
  protected abstract get sessionId(): number | null;
  /** Whether the program may put processes in groups of their own (a shell with job control: under a pty). */
  protected abstract readonly jobControl: boolean;
  protected abstract outcome(code: number | null, signal: NodeJS.Signals | null): SessionExit;

  /**
   * Once the program has ended: whether its session is known to be empty, without a search of
   * /proc (the pty helper reports it; see PtySession).
   */
  protected knownEmpty(): boolean {
    return false;
  }

  /** Whether the session is gone: known so, or found so by a search of /proc. */
  private sessionEnded(): boolean {
    const sid = this.sessionId;
    return sid === null || this.knownEmpty() || sessionGone(sid);
  }

  kill(): void {
    if (this.killing) return;
    this.killing = true;
    const sid = this.sessionId;
    // The usual end of an exec: the program ended, every pipe closed, its process group is
    // gone. What could remain left its stdio and its group (a process that daemonized itself),
    // which sshd would not signal either: /proc is not searched for it, which took three scans
    // of every process per session end, ~5 ms of the worker's thread here. (A shell with job
    // control, under a pty, may leave jobs in groups of their own: its helper searches for
    // them, and we do only when it could not say.)
    if (this.closed && (this.knownEmpty() || (!this.jobControl && (sid === null || !tryKill(-sid, 0))))) return;
    // Nothing was left to signal, and the program is done: no grace period to wait out.
    if (!this.hangup() && this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.forceKill();
      if (!this.closed) this.timer = setTimeout(() => this.abandon(), KILL_GRACE_MS);
    }, this.graceMs);
  }

  /** How long after the hangup what is left of the session gets SIGKILL from us. */
  protected get graceMs(): number {
    return KILL_GRACE_MS;
  }

  /** SIGHUP (then SIGCONT) to the session; false when no process of it was there. */
  protected hangup(): boolean {
    const sid = this.sessionId;
    if (sid === null) return false;
    return signalSession(sid, 'SIGHUP', 'SIGCONT'); // a stopped process acts on SIGHUP only once continued
  }

  protected forceKill(): void {
    const sid = this.sessionId;
    if (sid !== null) signalSession(sid, 'SIGKILL');
  }

  /** Something outside the session still holds our pipes: stop waiting for it. */
  protected abandon(): void {
    this.timer = null;
    for (const stream of this.child.stdio) stream?.destroy();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

// ---- without a pty ----

class PipeSession extends Session implements SessionProcess {
  protected readonly jobControl = false;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;

  constructor(options: SessionProcessOptions, shell: string) {
    // detached: the program leads its own session and process group, so signal() and kill()
    // reach its children too; it is not in ours either (no terminal's ^C reaches it).
    const child = spawn(shell, options.command === null ? [] : ['-c', options.command], {
      env: options.env,
      cwd: options.cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    super(child);
    if (child.pid === undefined) {
      for (const stream of child.stdio) stream?.destroy();
      throw new Error(`cannot run the shell ${shell}`);
    }
    this.stdin = child.stdin!;
    this.stdout = child.stdout!;
    this.stderr = child.stderr!;
  }

  protected get sessionId(): number {
    return this.pid;
  }

  protected outcome(code: number | null, signal: NodeJS.Signals | null): SessionExit {
    return { code, signal: sshSignalName(signal), coreDumped: false };
  }

  sendBreak(): boolean {
    return false;
  }

  resize(): boolean {
    return false;
  }

  signal(name: string): boolean {
    const n = signalNumber(name);
    if (n === null || this.child.exitCode !== null || this.child.signalCode !== null) return false;
    return tryKill(-this.pid, n);
  }
}

// ---- with a pty ----

let defaultPython: string | null | undefined;

/** The Python 3 for pty sessions: /usr/bin/python3, then python3 on PATH; null if none. */
export function findPython3(): string | null {
  if (defaultPython === undefined) {
    const onPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'python3'));
    defaultPython = ['/usr/bin/python3', ...onPath].find(isExecutable) ?? null;
  }
  return defaultPython;
}

type TermiosField = 'cc' | 'iflag' | 'oflag' | 'cflag' | 'lflag' | 'ispeed' | 'ospeed';
/** One decoded terminal mode: the termios field and constant it sets, and the value. */
export type TerminalMode = [field: TermiosField, name: string, value: number];

const opcodes = (field: TermiosField, first: number, names: string): [number, [TermiosField, string]][] =>
  names.split(' ').map((name, i) => [first + i, [field, name]]);

/** RFC 4254 section 8 opcodes (42, IUTF8, from RFC 8160) -> termios field and constant name. */
const TERMINAL_MODES = new Map<number, [TermiosField, string]>([
  ...opcodes('cc', 1, 'VINTR VQUIT VERASE VKILL VEOF VEOL VEOL2 VSTART VSTOP VSUSP VDSUSP VREPRINT VWERASE VLNEXT VFLUSH VSWTCH VSTATUS VDISCARD'),
  ...opcodes('iflag', 30, 'IGNPAR PARMRK INPCK ISTRIP INLCR IGNCR ICRNL IUCLC IXON IXANY IXOFF IMAXBEL IUTF8'),
  ...opcodes('lflag', 50, 'ISIG ICANON XCASE ECHO ECHOE ECHOK ECHONL NOFLSH TOSTOP IEXTEN ECHOCTL ECHOKE PENDIN'),
  ...opcodes('oflag', 70, 'OPOST OLCUC ONLCR OCRNL ONOCR ONLRET'),
  ...opcodes('cflag', 90, 'CS7 CS8 PARENB PARODD'),
  [128, ['ispeed', 'ISPEED']],
  [129, ['ospeed', 'OSPEED']],
]);
const TTY_OP_END = 0;
/** RFC 4254 section 8: "Opcodes 160 to 255 are not yet defined, and cause parsing to stop". */
const TTY_OP_UNDEFINED = 160;

/** The modes of a pty-req that this side knows; unknown opcodes are skipped, a truncated
 * encoding ends the list (a client's odd modes must not refuse it a terminal). */
export function decodeTerminalModes(modes: Buffer): TerminalMode[] {
  const decoded: TerminalMode[] = [];
  for (let at = 0; at + 5 <= modes.length; at += 5) {
    const opcode = modes[at];
    if (opcode === TTY_OP_END || opcode >= TTY_OP_UNDEFINED) break;
    const known = TERMINAL_MODES.get(opcode);
    if (known) decoded.push([known[0], known[1], modes.readUInt32BE(at + 1)]);
  }
  return decoded;
}

/** winsize fields are unsigned shorts; SSH sends uint32. */
const dimension = (n: number | undefined): number =>
  typeof n === 'number' && Number.isFinite(n) ? Math.min(0xffff, Math.max(0, Math.trunc(n))) : 0;

class PtySession extends Session implements SessionProcess {
  protected readonly jobControl = true;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr = null;
  private readonly control: Writable;
  private sid: number | null = null;
  private report: SessionExit | null = null;
  /** Processes left in the program's session as the helper ended (-1: it could not tell). */
  private left: number | null = null;
  /** kill() left the session's hangup to the helper. */
  private helperHangsUp = false;
  private helperErrors = '';

  constructor(options: SessionProcessOptions, pty: PtySize & { term: string; modes?: Buffer }, shell: string) {
    const python = options.python ?? findPython3();
    if (!python || !isExecutable(python)) {
      throw new Error(`pty sessions need python3 (${options.python ? `${options.python} is not executable` : 'found neither /usr/bin/python3 nor python3 on PATH'})`);
    }
    const child = takeHelper(python);
    super(child);
    if (child.pid === undefined) {
      for (const stream of child.stdio) stream?.destroy();
      throw new Error(`cannot run ${python} for the pty helper`);
    }
    // The next session's helper starts now, off this one's way (see takeHelper).
    setImmediate(() => prepareSpareHelper(python));
    this.stdin = child.stdin!;
    this.stdout = child.stdout!;
    this.control = child.stdio[3] as Writable;
    this.control.on('error', () => undefined);
    child.stderr!.on('data', (d: Buffer) => {
      if (this.helperErrors.length < HELPER_STDERR_LIMIT) this.helperErrors += d.toString();
    });
    let lines = '';
    (child.stdio[4] as Readable).on('data', (d: Buffer) => {
      lines += d.toString();
      for (let nl = lines.indexOf('\n'); nl >= 0; nl = lines.indexOf('\n')) {
        this.onReport(lines.slice(0, nl));
        lines = lines.slice(nl + 1);
      }
    });

    const env = { ...options.env };
    if (pty.term) env.TERM = pty.term;
    this.control.write(`${JSON.stringify({
      cwd: options.cwd ?? null,
      file: shell,
      argv: options.command === null ? [shell, '-i'] : [shell, '-c', options.command],
      env,
      size: [pty.rows, pty.cols, pty.widthPixels, pty.heightPixels].map(dimension),
      modes: pty.modes ? decodeTerminalModes(pty.modes) : [],
    })}\n`);
  }

  private onReport(line: string): void {
    let report: { pid?: number; code?: number | null; signal?: number | null; core?: boolean; session?: number };
    try {
      report = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof report.pid === 'number') {
      this.sid = report.pid;
      if (this.killing) this.hangup();
    } else if ('code' in report) {
      this.report = { code: report.code ?? null, signal: sshSignalName(report.signal ?? null), coreDumped: !!report.core };
    } else if (typeof report.session === 'number') {
      this.left = report.session;
    }
  }

  protected override knownEmpty(): boolean {
    return this.closed && this.left === 0;
  }

  /** The helper's own SIGKILL comes after its grace (HANGUP_GRACE, as ours): ours only if it fails to. */
  protected override get graceMs(): number {
    return this.helperHangsUp ? HELPER_HANGUP_FALLBACK_MS : KILL_GRACE_MS;
  }

  protected get sessionId(): number | null {
    return this.sid;
  }

  protected outcome(code: number | null, signal: NodeJS.Signals | null): SessionExit {
    return this.report ?? {
      code,
      signal: sshSignalName(signal),
      coreDumped: false,
      error: this.helperErrors.trim() || 'the pty helper ended without reporting the program\'s exit',
    };
  }

  /** The program runs and the helper still takes commands. */
  private get running(): boolean {
    return !this.closed && this.report === null && !this.control.writableEnded;
  }

  resize(size: PtySize, applied?: () => void): boolean {
    if (!this.running) return false;
    const { cols, rows, widthPixels, heightPixels } = size;
    // Once this is in the control pipe, the helper (control first in each round) applies it
    // before any input written afterwards.
    this.control.write(`resize ${[cols, rows, widthPixels, heightPixels].map(dimension).join(' ')}\n`, () => applied?.());
    return true;
  }

  signal(name: string): boolean {
    const n = signalNumber(name);
    if (n === null || !this.running) return false;
    this.control.write(`signal ${n}\n`);
    return true;
  }

  sendBreak(): boolean {
    if (!this.running) return false;
    this.control.write('break\n');
    return true;
  }

  protected override hangup(): boolean {
    // The helper closes the terminal and hangs up the program's session, every group of it
    // (even before it has told us the session id), SIGKILL for what is left after its grace; it
    // ends once the session is empty, or says what is left. Searching /proc here too cost the
    // worker's thread (which every connection shares) ~5 ms per search of ~65 processes.
    // While the helper runs, it has the hangup (a second call, once it reported the session
    // id, has nothing to add); once it has ended with processes left, we search for them.
    if (!this.closed) {
      if (!this.control.writableEnded) this.control.end();
      this.helperHangsUp = true;
      return true;
    }
    return super.hangup();
  }

  protected override forceKill(): void {
    super.forceKill();
    if (this.sid === null) this.child.kill('SIGKILL');
  }

  protected override abandon(): void {
    this.child.kill('SIGKILL');
    super.abandon();
  }
}

/**
 * A pty helper started ahead for the next pty session. Python's start and the helper's imports
 * took ~50 ms here, nearly all of a shell session's start against our server (sshd's: ~20 ms);
 * the rest is a fork. One spare at a time, for the python the last pty session used; it is made
 * only once a pty session has started (a server that never gives a terminal starts none), holds
 * no reference that keeps this process alive, and ends when its control pipe closes before a
 * config came (this process gone) or when the last embedded server closes (dropSpareHelper).
 */
let spare: { python: string; child: ChildProcess } | null = null;

/** fd 3: control lines from us (the config first); fd 4: the helper's reports (JSON lines). */
function spawnHelper(python: string): ChildProcess {
  // detached: a terminal's ^C to this process must not take the helper down with it; the
  // helper hangs the session up itself when fd 3 closes (this process gone). The program's
  // working directory comes in the config (the helper's own does not matter).
  return spawn(python, ['-I', '-S', '-c', PTY_HELPER], { cwd: '/', detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'] });
}

/** Whether `child` is a helper that has not ended (as far as this process has heard). */
const running = (child: ChildProcess): boolean => child.pid !== undefined && child.exitCode === null && child.signalCode === null;

/** Holds (or releases) this process's event loop for the helper and its pipes. */
function refHelper(child: ChildProcess, held: boolean): void {
  if (held) child.ref();
  else child.unref();
  for (const stream of child.stdio) {
    const s = stream as (typeof stream & { ref?: () => void; unref?: () => void }) | null;
    if (held) s?.ref?.();
    else s?.unref?.();
  }
}

/** The spare helper for `python` if there is one running, else a new one. */
function takeHelper(python: string): ChildProcess {
  const s = spare;
  spare = null;
  if (s && s.python === python && running(s.child)) {
    s.child.removeAllListeners('exit');
    refHelper(s.child, true);
    return s.child;
  }
  if (s) dropHelper(s.child);
  return spawnHelper(python);
}

function prepareSpareHelper(python: string): void {
  if (spare) return;
  const child = spawnHelper(python);
  if (!running(child)) {
    dropHelper(child);
    return;
  }
  child.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  child.stdio[3]?.on('error', () => undefined);
  // A spare that ends by itself (killed, or a python that is not one) is forgotten.
  child.once('exit', () => {
    if (spare?.child === child) spare = null;
    dropHelper(child);
  });
  refHelper(child, false);
  spare = { python, child };
}

function dropHelper(child: ChildProcess): void {
  for (const stream of child.stdio) stream?.destroy();
  if (running(child)) child.kill('SIGKILL');
}

/** @internal for tests: the spare helper's pid, if one is running. */
export function spareHelperPid(): number | null {
  return spare && running(spare.child) ? spare.child.pid! : null;
}

/** Ends the spare pty helper, if any (the last embedded server closed). */
export function dropSpareHelper(): void {
  const s = spare;
  spare = null;
  if (s) dropHelper(s.child);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The pty helper, run as `python3 -I -S -c PTY_HELPER`. fd 0/1: the terminal's input and
 * output; fd 2: its own errors; fd 3: control lines from us (a JSON config, then
 * `resize COLS ROWS WPX HPX`, `signal N` and `break`), EOF meaning hang up; fd 4: JSON lines to us,
 * `{"pid": N}` once the program is forked, `{"code", "signal", "core"}` once it is reaped (raw
 * wait status: `exit 130` and death by SIGINT stay apart). It exits when the program has been
 * reaped and nothing holds the terminal any more (the master reads EIO), all output relayed.
 */
const PTY_HELPER = String.raw`
import errno, fcntl, json, os, select, signal, struct, sys, termios, time

CTL, REPORT = 3, 4
HANGUP_GRACE = 1.0  # after a hangup, SIGKILL for what ignores SIGHUP


def report(obj):
    data = (json.dumps(obj) + '\n').encode()
    try:
        while data:
            data = data[os.write(REPORT, data):]
    except OSError:
        pass


def killpg(pgrp, sig):
    if pgrp > 1:  # never 0 (our own group) nor 1
        try:
            os.killpg(pgrp, sig)
        except OSError:
            pass


def session_members(sid):
    # Live processes of Unix session sid, from /proc (None where there is none): jobs of a shell
    # with job control are in groups of their own, out of killpg's reach.
    try:
        names = os.listdir('/proc')
    except OSError:
        return None
    found = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open('/proc/' + name + '/stat', os.O_RDONLY)
            try:
                stat = os.read(fd, 1024)
            finally:
                os.close(fd)
            fields = stat[stat.rfind(b')') + 2:].split(b' ')
            if int(fields[3]) == sid and fields[0] not in (b'Z', b'X'):
                found.append(int(name))
        except (OSError, ValueError, IndexError):
            pass  # exited meanwhile
    return found


def signal_session(sid, *sigs):
    members = session_members(sid) or []
    for sig in sigs:
        killpg(sid, sig)
        for pid in members:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    return members


def vdisable(fd):
    try:
        return os.fpathconf(fd, 'PC_VDISABLE')
    except (OSError, ValueError):
        return 0


def apply_modes(fd, modes):
    try:
        attr = termios.tcgetattr(fd)
    except termios.error:
        return
    flags = {'iflag': 0, 'oflag': 1, 'cflag': 2, 'lflag': 3}
    for field, name, value in modes:
        if field in ('ispeed', 'ospeed'):
            speed = getattr(termios, 'B%d' % value, None)
            if speed is not None:
                attr[4 if field == 'ispeed' else 5] = speed
            continue
        const = getattr(termios, name, None)
        if const is None:
            continue
        if field == 'cc':
            if const < len(attr[6]):
                attr[6][const] = vdisable(fd) if value == 255 else value & 0xff
        elif name in ('CS7', 'CS8'):
            if value:  # character size is a field, not a bit
                attr[2] = (attr[2] & ~termios.CSIZE) | const
        else:
            i = flags[field]
            attr[i] = attr[i] | const if value else attr[i] & ~const
    try:
        termios.tcsetattr(fd, termios.TCSANOW, attr)
    except termios.error:
        pass


def child(cfg, slave, close):
    try:
        signal.set_wakeup_fd(-1)
        # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec.
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setsid()
        try:
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        except (AttributeError, OSError):
            os.close(os.open(os.ttyname(slave), os.O_RDWR))  # System V: the first tty opened
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        for fd in close:
            if fd > 2:
                os.close(fd)
        if cfg.get('cwd'):
            try:
                os.chdir(cfg['cwd'])
            except OSError as e:
                os.write(2, ('cannot run in %s: %s\r\n' % (cfg['cwd'], e.strerror)).encode())
                os._exit(1)
        os.execvpe(cfg['file'], cfg['argv'], cfg['env'])
    except BaseException as e:
        try:
            os.write(2, ('%s: %s\r\n' % (cfg['file'], getattr(e, 'strerror', None) or e)).encode())
        finally:
            os._exit(127)


class Relay:
    def __init__(self, pid, master, wake, ctl):
        self.pid, self.master, self.wake, self.ctl = pid, master, wake, ctl
        self.ctl_open = self.stdin_open = self.master_open = self.out_open = True
        self.to_master = self.to_out = b''
        self.last_in = b'\n'
        self.status = None
        self.deadline = None
        self.hung_up = False
        self.grace_end = 0.0

    def run(self):
        self.commands()
        while self.status is None or self.master_open or self.to_out:
            r, w = [self.wake], []
            if self.ctl_open:
                r.append(CTL)
            if self.stdin_open and not self.to_master:
                r.append(0)
            if self.master_open:
                if not self.to_out:
                    r.append(self.master)
                if self.to_master:
                    w.append(self.master)
            if self.to_out:
                w.append(1)
            timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
            rr, ww, _ = select.select(r, w, [], timeout)
            if self.wake in rr:
                try:
                    while os.read(self.wake, 512):
                        pass
                except OSError:
                    pass
            # Control first: a resize sent before some input applies before that input.
            if CTL in rr:
                self.read_control()
            if 0 in rr and self.stdin_open:
                self.read_stdin()
            if self.master_open and self.master in ww:
                self.write_master()
            if self.master_open and self.master in rr:
                self.read_master()
            if 1 in ww:
                self.write_out()
            self.reap()
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.deadline = None
                if self.status is None:
                    signal_session(self.pid, signal.SIGKILL)

    def read_control(self):
        try:
            data = os.read(CTL, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data:
            self.ctl_open = False
            self.hangup()
            return
        self.ctl += data
        self.commands()

    def commands(self):
        while b'\n' in self.ctl:
            line, self.ctl = self.ctl.split(b'\n', 1)
            words = line.decode('ascii', 'replace').split()
            try:
                if words[:1] == ['resize'] and len(words) == 5 and self.master_open:
                    cols, rows, wpx, hpx = (int(x) for x in words[1:])
                    # On the master: the kernel sends SIGWINCH to the foreground group.
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, wpx, hpx))
                elif words == ['break'] and self.master_open:
                    termios.tcsendbreak(self.master, 0)
                elif words[:1] == ['signal'] and len(words) == 2 and self.status is None:
                    pgrp = 0
                    if self.master_open:
                        try:
                            pgrp = os.tcgetpgrp(self.master)
                        except OSError:
                            pass
                    killpg(pgrp if pgrp > 1 else self.pid, int(words[1]))
            except (ValueError, OSError, struct.error):
                pass

    def hangup(self):
        # As sshd when the connection goes: close the terminal (the kernel hangs up its
        # session) and hang up the program's session, every group of it (a stopped process
        # acts on SIGHUP only once continued), SIGKILL after the grace (see linger).
        self.hung_up = True
        self.stdin_open = self.out_open = False
        self.to_master = self.to_out = b''
        if self.master_open:
            self.close_master()
        signal_session(self.pid, signal.SIGHUP, signal.SIGCONT)
        self.grace_end = time.monotonic() + HANGUP_GRACE
        if self.status is None:
            self.deadline = self.grace_end

    def linger(self):
        # The program is reaped and its terminal closed. Hung up, we answer for what is left of
        # its session: given the rest of the grace, then SIGKILL. Either way, the last report
        # says how many processes the session still has (-1: unknown), so that whoever started
        # us need not search for them itself.
        left = session_members(self.pid)
        if self.hung_up:
            while left and time.monotonic() < self.grace_end:
                time.sleep(0.02)
                left = session_members(self.pid)
            for _ in range(50):
                if not left:
                    break
                signal_session(self.pid, signal.SIGKILL)
                time.sleep(0.02)
                left = session_members(self.pid)
        report({'session': -1 if left is None else len(left)})

    def read_stdin(self):
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if data:
            self.to_master += data
            self.last_in = data[-1:]
        else:
            self.stdin_open = False
            self.to_master += self.eof_chars()
        self.write_master()

    def eof_chars(self):
        # The terminal's EOF character ends a reader's input only at the start of a line: in
        # canonical mode, after a partial line, the first one just hands over the line.
        eof, canonical = b'\x04', True
        try:
            attr = termios.tcgetattr(self.master)
            c = attr[6][termios.VEOF]
            c = c if isinstance(c, bytes) else bytes([c])
            if c[0] != vdisable(self.master):
                eof = c
            canonical = bool(attr[3] & termios.ICANON)
        except (termios.error, OSError, IndexError):
            pass
        return eof * 2 if canonical and self.last_in not in (b'\n', b'\r') else eof

    def write_master(self):
        if not self.to_master or not self.master_open:
            return
        try:
            n = os.write(self.master, self.to_master)
        except BlockingIOError:
            return
        except OSError:
            self.to_master = b''  # nobody reads the terminal any more
            return
        self.to_master = self.to_master[n:]

    def read_master(self):
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b''  # Linux: every holder of the terminal side has closed it
        if not data:
            self.close_master()
        elif self.out_open:
            self.to_out += data
            self.write_out()

    def write_out(self):
        try:
            n = os.write(1, self.to_out)
        except BlockingIOError:
            return
        except OSError:
            self.out_open = False  # we are gone: keep draining the terminal, to no one
            self.to_out = b''
            return
        self.to_out = self.to_out[n:]

    def close_master(self):
        self.master_open = False
        self.to_master = b''
        os.close(self.master)

    def reap(self):
        if self.status is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 255 << 8
        if pid != self.pid:
            return
        self.status = status
        self.deadline = None
        # Input now has no reader that we answer for (sshd, too, stops writing).
        self.stdin_open = False
        self.to_master = b''
        if os.WIFSIGNALED(status):
            report({'code': None, 'signal': os.WTERMSIG(status), 'core': bool(os.WCOREDUMP(status))})
        else:
            report({'code': os.WEXITSTATUS(status), 'signal': None, 'core': False})


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctl = b''
    while b'\n' not in ctl:
        chunk = os.read(CTL, 65536)
        if not chunk:
            return 1
        ctl += chunk
    line, ctl = ctl.split(b'\n', 1)
    cfg = json.loads(line)

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', *cfg['size']))
    if cfg['modes']:
        apply_modes(slave, cfg['modes'])
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w, master, 0, 1, CTL):
        os.set_blocking(fd, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)  # SIGCHLD wakes select()

    # Close-on-exec: EOF once the program runs (or is gone), so that no control line (a signal)
    # is acted on before the program has its session and terminal.
    sync_r, sync_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        child(cfg, slave, (slave, master, wake_r, wake_w, sync_r, CTL, REPORT))
    os.close(slave)
    os.close(sync_w)
    while os.read(sync_r, 512):
        pass
    os.close(sync_r)
    report({'pid': pid})
    try:
        relay = Relay(pid, master, wake_r, ctl)
        relay.run()
        relay.linger()
    except BaseException:
        killpg(pid, signal.SIGKILL)  # no session without its supervisor
        raise
    return 0


sys.exit(main())
`;
