import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { exitCleanup, makeTempDir, removeTempDir } from './process';
import { OPENSSH_ROOT } from '../peers';

/**
 * Reference clients run against a server under test: OpenSSH's ssh, PuTTY's plink, Dropbear's
 * dbclient, Paramiko's and AsyncSSH's clients (scripts in spec/support/clients/), and ssh-audit.
 *
 * Every function starts its client process BEFORE it returns (the returned promise only waits for
 * it to end): a test may call one and then block the main thread in the library's server calls.
 * Nothing is piped to or from Node: stdin comes from a file, stdout and stderr go to files in a
 * per-call temp dir (removed at the end), so a client never stalls on a pipe nobody drains.
 * A client always ends: after `timeoutMs` (default 30 s) its process group is SIGKILLed and the
 * promise resolves with what it had written (`timedOut: true`); coreutils `timeout` kills it
 * too if the main thread is blocked at that moment. Clients connect to the target's host and port
 * (127.0.0.1), never read ~/.ssh, a real known_hosts, an ssh config or an agent.
 */

export interface ExecResult {
  /** Exit status of the remote command as the client reports it (ssh: 255 on connection/auth errors). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What every client function resolves with. */
export interface ClientResult extends ExecResult {
  /** The client was killed at `timeoutMs`; stdout and stderr hold what it wrote until then. */
  timedOut: boolean;
  durationMs: number;
  /** PID of the process started (the client, or the wrapper that runs it). */
  pid: number;
  /** The call's temp dir (already removed when the promise resolves). */
  tempDir: string;
}

/** Where a client connects: a started server (SshServer) or anything with these fields. */
export interface ClientTarget {
  host: string;
  port: number;
  user: { username: string; password?: string | null };
  /** Host keys (plink's default -hostkey list). */
  hostKeys?: Array<{ fingerprint: string; publicKey?: string }>;
}

/** The pseudo-terminal a client asks for (pty-req). */
export interface PtyOptions {
  cols?: number;
  rows?: number;
  /** TERM sent with the pty request (default 'xterm'; plink sends its own setting, see plinkExec). */
  term?: string;
}

/**
 * One step of an interactive pty session (`ptyScript`), run in order:
 * - a string or `{ line }`: sends the text and "\n";
 * - `{ send }`: sends the text as is;
 * - `{ expect }`: waits until the output after the previous match contains the text (default
 *   10 s; the run stops with `error` if it does not come). The terminal echoes input: expect a text
 *   the echo does not contain, e.g. send `echo D$((1+1))` and expect `D2`;
 * - `{ resize }`: changes the terminal size (window-change);
 * - `{ sleep }`: milliseconds;
 * - `{ eof: true }`: ends the input (ssh/plink/dbclient: sends ^D).
 * After the last step the output is collected until the session closes.
 */
export type PtyStep =
  | string
  | { line: string }
  | { send: string }
  | { expect: string; timeoutMs?: number }
  | { resize: { cols: number; rows: number } }
  | { sleep: number }
  | { eof: true };

/** The result of a pty session: `stdout` is everything the terminal showed (CRLF line ends, echo included). */
export interface PtyResult {
  /** Set when a step failed (an `expect` not met) or the wrapper broke. */
  error?: string | null;
}

const CLIENTS_DIR = join(__dirname, '..', 'clients');
/** Debian's paramiko and asyncssh import only under the system interpreter. */
const PYTHON = '/usr/bin/python3';
const PTY_RUN = join(CLIENTS_DIR, 'pty_run.py');
const TIMEOUT = '/usr/bin/timeout';
const DEFAULT_TIMEOUT_MS = 30_000;
/** Extra time a Python client gets after its own deadline to print its result. */
const PYTHON_GRACE_MS = 3_000;
const BASE_ENV = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };

/** Single-quotes a word for /bin/sh. */
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const signalName = (n: number | null): NodeJS.Signals | null =>
  n === null ? null : ((Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined) ?? null);

interface RawRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  durationMs: number;
  pid: number;
}

/**
 * Starts `cmd args` now (synchronously) with stdin from a file and stdout/stderr to files in
 * `dir`, in a process group of its own; resolves when it has exited. After `timeoutMs` the group
 * is SIGKILLed; `timeout -s KILL` does the same 1 s later should the event loop be blocked.
 */
function startClient(
  dir: string,
  cmd: string,
  args: string[],
  options: { input?: string | Buffer; env: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string },
): Promise<RawRun> {
  const inPath = join(dir, 'stdin');
  const outPath = join(dir, 'stdout');
  const errPath = join(dir, 'stderr');
  writeFileSync(inPath, options.input ?? '', { mode: 0o600 });
  const fds = [openSync(inPath, 'r'), openSync(outPath, 'w', 0o600), openSync(errPath, 'w', 0o600)];
  const [file, argv] = existsSync(TIMEOUT)
    ? [TIMEOUT, ['-s', 'KILL', `${(options.timeoutMs + 1000) / 1000}s`, cmd, ...args]]
    : [cmd, args];
  const started = Date.now();
  let child;
  try {
    // detached: a new session and process group, killed as a whole.
    child = spawn(file, argv, { env: options.env, cwd: options.cwd ?? dir, stdio: fds, detached: true });
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const pid = child.pid ?? -1;
  const killGroup = () => {
    if (pid > 0) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  // A test run that ends (or dies) first takes the client with it.
  const unregister = exitCleanup(killGroup);
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      unregister();
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      unregister();
      const durationMs = Date.now() - started;
      // Killed by the `timeout` backstop while the event loop was blocked.
      if (signal === 'SIGKILL' && durationMs >= options.timeoutMs) timedOut = true;
      // What the client started (an askpass, a pty child) must not outlive it.
      killGroup();
      resolve({
        status,
        signal,
        stdout: readFileSync(outPath),
        stderr: readFileSync(errPath),
        timedOut,
        durationMs,
        pid,
      });
    });
  });
}

/**
 * Runs `fn(dir)` with a fresh temp dir, removed when its promise settles. `fn` must start its
 * client before its first `await` (the caller may block the main thread right after the call).
 */
function inTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = makeTempDir(prefix);
  let p: Promise<T>;
  try {
    p = fn(dir);
  } catch (e) {
    removeTempDir(dir);
    return Promise.reject(e);
  }
  return p.finally(() => removeTempDir(dir));
}

function toStepJson(steps: PtyStep[]): object[] {
  return steps.map((s) => {
    if (typeof s === 'string') return { line: s };
    if ('resize' in s) return { resize: [s.resize.cols, s.resize.rows] };
    return s;
  });
}

interface PtyRunJson {
  output: string;
  status: number | null;
  signal: number | null;
  timedOut: boolean;
  error: string | null;
}

/** The last line of a Python script's stdout, parsed (null when there is none). */
function lastJson<T>(stdout: Buffer): T | null {
  const lines = stdout.toString('utf8').trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i].trim();
    if (!l.startsWith('{')) continue;
    try {
      return JSON.parse(l) as T;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Starts `argv` on a fresh pseudo-terminal (spec/support/clients/pty_run.py) and drives it with
 * `steps`; its stderr goes to a file of its own.
 */
function startInPty(
  dir: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
  steps: PtyStep[],
  pty: PtyOptions,
  timeoutMs: number,
): Promise<ClientResult & PtyResult> {
  const stderrPath = join(dir, 'pty-stderr');
  writeFileSync(stderrPath, '', { mode: 0o600 });
  const spec = { argv, env, cols: pty.cols ?? 80, rows: pty.rows ?? 24, steps: toStepJson(steps), timeoutMs, stderrPath };
  const run = startClient(dir, PYTHON, ['-B', PTY_RUN], {
    input: JSON.stringify(spec),
    env: { ...BASE_ENV, PYTHONDONTWRITEBYTECODE: '1' },
    timeoutMs: timeoutMs + PYTHON_GRACE_MS,
  });
  return run.then((raw) => {
    const j = lastJson<PtyRunJson>(raw.stdout);
    const stderr = readFileSync(stderrPath, 'utf8');
    if (!j) {
      return {
        status: null,
        signal: raw.signal,
        stdout: '',
        stderr: stderr + raw.stderr.toString('utf8'),
        timedOut: raw.timedOut,
        durationMs: raw.durationMs,
        pid: raw.pid,
        tempDir: dir,
        error: `pty_run printed no result (exit ${raw.status ?? raw.signal})`,
      };
    }
    return {
      status: j.status,
      signal: signalName(j.signal),
      stdout: Buffer.from(j.output, 'base64').toString('utf8'),
      stderr,
      timedOut: j.timedOut || raw.timedOut,
      durationMs: raw.durationMs,
      pid: raw.pid,
      tempDir: dir,
      error: j.error,
    };
  });
}

const list = (v: string | string[]) => (Array.isArray(v) ? v.join(',') : v);

// ---------------------------------------------------------------------------------------------
// OpenSSH ssh

export interface OpensshExecOptions {
  /** The ssh program (default /usr/bin/ssh, or OpenSSH 10's with PARAMIKO_TS_OPENSSH=10: peers.ts). */
  binary?: string;
  /** Private key file (-i, with IdentitiesOnly). */
  identity?: string;
  /** Passphrase of `identity` (answered through SSH_ASKPASS). */
  identityPassphrase?: string;
  /**
   * Password auth through SSH_ASKPASS (a temp script; SSH_ASKPASS_REQUIRE=force, BatchMode=no,
   * NumberOfPasswordPrompts=1). With `identity` too: PreferredAuthentications publickey,password
   * (for AuthenticationMethods publickey,password on the server).
   */
  password?: string;
  /** The answer to the new-password prompts ssh shows when the server asks for a change (its old-password prompt gets `password`). */
  newPassword?: string;
  /** Answer keyboard-interactive prompts with `password` instead of using password auth. */
  kbdint?: boolean;
  /** PreferredAuthentications (default: derived from identity/password/kbdint, or ssh's own). */
  preferredAuthentications?: string;
  /** KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms. */
  kex?: string | string[];
  cipher?: string | string[];
  mac?: string | string[];
  hostKeyAlgorithm?: string | string[];
  /** Default: the server's test user. */
  username?: string;
  /** Check the host key against this known_hosts file (StrictHostKeyChecking yes); default: no checking. */
  knownHostsFile?: string;
  /** An agent socket to use (IdentityAgent); default: none. */
  agentSocket?: string;
  /** More -o options, e.g. ['Ciphers=aes128-ctr'] (they take precedence over the defaults). */
  options?: string[];
  /** ssh -v (3: -vvv), its log written to `log` (with -E: stderr then holds only the remote's stderr and nothing of ssh's own messages). */
  verbose?: boolean | 3;
  /** An interactive session: `ssh -tt` on a pseudo-terminal of `pty`'s size, driven by these steps. */
  ptyScript?: PtyStep[];
  pty?: PtyOptions;
  input?: string | Buffer;
  timeoutMs?: number;
}

export interface OpensshResult extends ClientResult, PtyResult {
  /** With a password or passphrase: the prompts ssh passed to the askpass script, in order. */
  prompts: string[];
  /** With `verbose`: ssh's debug log. */
  log?: string;
  /** With `verbose`: what the log says was negotiated. */
  negotiated?: {
    kex?: string;
    hostKeyAlgorithm?: string;
    cipher?: string;
    mac?: string;
    compression?: string;
    hostKeyType?: string;
    hostKeyFingerprint?: string;
    /** "Authenticated to ... using "publickey"": the method that completed authentication. */
    authMethod?: string;
    /** A method succeeded partially ("Authenticated using "publickey" with partial success."). */
    partialSuccess?: boolean;
  };
}

function parseOpensshLog(log: string): OpensshResult['negotiated'] {
  const m = (re: RegExp) => re.exec(log) ?? undefined;
  const cs = m(/kex: client->server cipher: (\S+) MAC: (\S+) compression: (\S+)/);
  const hk = m(/Server host key: (\S+) (SHA256:\S+)/);
  return {
    kex: m(/kex: algorithm: (\S+)/)?.[1],
    hostKeyAlgorithm: m(/kex: host key algorithm: (\S+)/)?.[1],
    cipher: cs?.[1],
    mac: cs?.[2],
    compression: cs?.[3],
    hostKeyType: hk?.[1],
    hostKeyFingerprint: hk?.[2],
    authMethod: m(/Authenticated to .* using "([^"]+)"/)?.[1],
    partialSuccess: /partial success/.test(log),
  };
}

/**
 * `ssh -F /dev/null ... -p <port> <user>@<host> <command>` (OpenSSH's client). Without a password
 * it runs in batch mode (keys only); with `password` an askpass script answers the password (or
 * every keyboard-interactive prompt with `kbdint`). `ptyScript` runs an interactive session on a
 * pseudo-terminal (python3 needed). Resolves with status 255 on connection and auth errors.
 */
export function opensshExec(server: ClientTarget, command: string, options: OpensshExecOptions = {}): Promise<OpensshResult> {
  return inTempDir('ssh', async (dir) => {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const askpass = options.password !== undefined || options.identityPassphrase !== undefined;
    // ssh keeps the first value of an option: the caller's come first.
    const args = ['-F', '/dev/null'];
    if (options.verbose) args.push(options.verbose === 3 ? '-vvv' : '-v', '-E', join(dir, 'ssh.log'));
    if (options.kex) args.push('-o', `KexAlgorithms=${list(options.kex)}`);
    if (options.cipher) args.push('-o', `Ciphers=${list(options.cipher)}`);
    if (options.mac) args.push('-o', `MACs=${list(options.mac)}`);
    if (options.hostKeyAlgorithm) args.push('-o', `HostKeyAlgorithms=${list(options.hostKeyAlgorithm)}`);
    let preferred = options.preferredAuthentications;
    if (!preferred && options.password !== undefined) {
      preferred = [options.identity ? 'publickey' : null, options.kbdint ? 'keyboard-interactive' : 'password'].filter(Boolean).join(',');
    }
    if (preferred) args.push('-o', `PreferredAuthentications=${preferred}`);
    for (const o of options.options ?? []) args.push('-o', o);
    args.push('-o', `BatchMode=${askpass ? 'no' : 'yes'}`);
    if (askpass) args.push('-o', 'NumberOfPasswordPrompts=1');
    if (!options.verbose) args.push('-o', 'LogLevel=ERROR');
    args.push('-o', 'ConnectTimeout=10', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'UpdateHostKeys=no', '-o', 'CheckHostIP=no');
    args.push('-o', 'ControlMaster=no', '-o', 'ControlPath=none');
    if (options.knownHostsFile) {
      args.push('-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${options.knownHostsFile}`);
    } else {
      args.push('-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null');
    }
    args.push('-o', `IdentityAgent=${options.agentSocket ?? 'none'}`);
    if (options.identity) args.push('-o', 'IdentitiesOnly=yes', '-i', options.identity);
    args.push('-p', String(server.port), `${options.username ?? server.user.username}@${server.host}`);

    const env: NodeJS.ProcessEnv = { ...BASE_ENV, HOME: '/nonexistent', TERM: options.pty?.term ?? 'xterm' };
    const promptsPath = join(dir, 'prompts');
    if (askpass) {
      // The askpass program gets the prompt as its argument; it answers passphrase prompts with
      // the passphrase, a password change's new-password prompts with newPassword, anything else
      // (password, keyboard-interactive, a change's old password) with the password.
      writeFileSync(join(dir, 'password'), options.password ?? '', { mode: 0o600 });
      writeFileSync(join(dir, 'passphrase'), options.identityPassphrase ?? options.password ?? '', { mode: 0o600 });
      writeFileSync(join(dir, 'newpassword'), options.newPassword ?? '', { mode: 0o600 });
      writeFileSync(promptsPath, '', { mode: 0o600 });
      const script = join(dir, 'askpass');
      writeFileSync(
        script,
        [
          '#!/bin/sh',
          `printf '%s\\n' "$1" | tr '\\n' ' ' >> ${shq(promptsPath)}`,
          `echo >> ${shq(promptsPath)}`,
          'case "$1" in',
          `  *assphrase*) cat ${shq(join(dir, 'passphrase'))} ;;`,
          `  *"new password"*) cat ${shq(join(dir, 'newpassword'))} ;;`,
          `  *) cat ${shq(join(dir, 'password'))} ;;`,
          'esac',
          'echo',
          '',
        ].join('\n'),
        { mode: 0o700 },
      );
      chmodSync(script, 0o700);
      // force: askpass even without DISPLAY, and even on a terminal (ptyScript).
      Object.assign(env, { SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: 'force' });
    }

    let r: ClientResult & PtyResult;
    if (options.ptyScript) {
      const argv = [options.binary ?? `${OPENSSH_ROOT}/usr/bin/ssh`, '-tt', ...args, ...(command ? [command] : [])];
      r = await startInPty(dir, argv, env, options.ptyScript, options.pty ?? {}, timeoutMs);
    } else {
      const raw = await startClient(dir, options.binary ?? `${OPENSSH_ROOT}/usr/bin/ssh`, [...args, command], { input: options.input, env, timeoutMs });
      r = { ...raw, stdout: raw.stdout.toString('utf8'), stderr: raw.stderr.toString('utf8'), tempDir: dir };
    }
    const result: OpensshResult = {
      ...r,
      prompts: askpass && existsSync(promptsPath) ? readFileSync(promptsPath, 'utf8').split('\n').filter((l) => l !== '').map((l) => l.trim()) : [],
    };
    if (options.verbose) {
      const logPath = join(dir, 'ssh.log');
      result.log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
      result.negotiated = parseOpensshLog(result.log);
    }
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// PuTTY plink

export interface PlinkOptions {
  username?: string;
  /** Password, given to plink with -pwfile (a temp file). plink uses it for keyboard-interactive too. */
  password?: string;
  /** An OpenSSH private key: converted to .ppk with puttygen in the temp dir, then -i. */
  identityOpenssh?: string;
  /** A .ppk key file, as is. */
  identityPpk?: string;
  /**
   * -hostkey values ("SHA256:..." fingerprints): plink -batch refuses any other host key. Default:
   * the fingerprints of the target's hostKeys.
   */
  hostKeyFingerprint?: string | string[];
  /**
   * false: no keyboard-interactive (a saved session with AuthKI=0), so a password goes through
   * password auth. Default: plink's own order (it prefers keyboard-interactive when offered).
   */
  kbdint?: boolean;
  /** -t (a pty; with PtyOptions: its TERM goes into a saved session, plink ignores $TERM). */
  pty?: boolean | PtyOptions;
  /** An interactive session on a pseudo-terminal of `pty`'s size (python3 needed). */
  ptyScript?: PtyStep[];
  /** -v: plink's messages on stderr. */
  verbose?: boolean;
  /** More plink arguments, before the host. */
  extraArgs?: string[];
  input?: string | Buffer;
  timeoutMs?: number;
}

/**
 * Runs the client argv, first converting a key with `convert` (puttygen, dropbearconvert) in the
 * same child: a shell runs the converter, then execs the client. Nothing waits in between on the
 * Node side, so the client starts even if the main thread blocks right after the call.
 */
function withConversion(dir: string, convert: string[] | null, argv: string[]): string[] {
  if (!convert) return argv;
  const log = join(dir, 'convert.log');
  const script = `${convert.map(shq).join(' ')} </dev/null >${shq(log)} 2>&1 || { echo "pts: key conversion failed: ${convert[0]}" >&2; cat ${shq(log)} >&2; exit 250; }; exec "$@"`;
  return ['/bin/sh', '-c', script, 'sh', ...argv];
}

/**
 * `plink -ssh -batch -P <port> -l <user> ... <host> <command>` (PuTTY's command-line client). It
 * never prompts: in batch mode a question (unknown host key, missing password) fails the login.
 * HOME is the temp dir (plink keeps ~/.putty there). Without a command and with `ptyScript`, a
 * login shell.
 */
export function plinkExec(server: ClientTarget, command: string, options: PlinkOptions = {}): Promise<ClientResult & PtyResult> {
  return inTempDir('plink', async (dir) => {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const fps = options.hostKeyFingerprint ?? server.hostKeys?.map((k) => k.fingerprint) ?? [];
    const fpList = Array.isArray(fps) ? fps : [fps];
    if (fpList.length === 0) throw new Error('plinkExec: no host key fingerprint (plink -batch cannot accept an unknown host key)');
    const args = ['-ssh'];
    const ptyOpts = typeof options.pty === 'object' ? options.pty : {};
    const session: string[] = [];
    if (options.kbdint === false) session.push('AuthKI=0');
    if (ptyOpts.term) session.push(`TerminalType=${ptyOpts.term}`);
    if (session.length) {
      const sessions = join(dir, '.putty', 'sessions');
      mkdirSync(sessions, { recursive: true, mode: 0o700 });
      writeFileSync(join(sessions, 'pts'), session.join('\n') + '\n', { mode: 0o600 });
      args.push('-load', 'pts');
    }
    args.push('-batch', '-noagent', '-noshare', '-P', String(server.port), '-l', options.username ?? server.user.username);
    if (options.password !== undefined) {
      writeFileSync(join(dir, 'password'), options.password, { mode: 0o600 });
      args.push('-pwfile', join(dir, 'password'));
    }
    let convert: string[] | null = null;
    if (options.identityOpenssh) {
      const ppk = join(dir, 'identity.ppk');
      convert = ['/usr/bin/puttygen', options.identityOpenssh, '-O', 'private', '-o', ppk];
      args.push('-i', ppk);
    } else if (options.identityPpk) {
      args.push('-i', options.identityPpk);
    }
    for (const fp of fpList) args.push('-hostkey', fp);
    if (options.pty || options.ptyScript) args.push('-t', '-no-antispoof');
    else args.push('-T');
    if (options.verbose) args.push('-v');
    args.push(...(options.extraArgs ?? []), server.host);
    if (command) args.push(command);
    const env: NodeJS.ProcessEnv = { ...BASE_ENV, HOME: dir, TERM: ptyOpts.term ?? 'xterm' };
    const argv = withConversion(dir, convert, ['/usr/bin/plink', ...args]);
    if (options.ptyScript) return startInPty(dir, argv, env, options.ptyScript, ptyOpts, timeoutMs);
    const raw = await startClient(dir, argv[0], argv.slice(1), { input: options.input, env, timeoutMs });
    return { ...raw, stdout: raw.stdout.toString('utf8'), stderr: raw.stderr.toString('utf8'), tempDir: dir };
  });
}

// ---------------------------------------------------------------------------------------------
// Dropbear dbclient

export interface DbclientOptions {
  username?: string;
  /** Password through DROPBEAR_PASSWORD (dbclient uses it for keyboard-interactive prompts too). */
  password?: string;
  /** An OpenSSH private key: converted with `dropbearconvert openssh dropbear` in the temp dir, then -i. */
  identityOpenssh?: string;
  /** A dropbear-format key file, as is. */
  identityDropbear?: string;
  /**
   * Host key checking: 'accept' (-y, default: an unknown key is accepted and not stored), 'none'
   * (-y -y: no checking at all).
   */
  hostKeyCheck?: 'accept' | 'none';
  /**
   * Strict checking against these public key lines instead ("ssh-ed25519 AAAA...", written to
   * ~/.ssh/known_hosts as "<host> <type> <base64>"). A different key of the same type fails at
   * once; a key type not listed makes dbclient ask on the terminal, which it has not, and spin
   * until the timeout.
   */
  knownHostKeys?: string[];
  /** -c, -m. */
  ciphers?: string | string[];
  macs?: string | string[];
  /**
   * -t: a pty (TERM from PtyOptions). dbclient allocates one only when its own stdin is a terminal
   * ("Failed reading termmodes" otherwise), so it then runs on a pseudo-terminal like `ptyScript`,
   * `input` typed into it (python3 needed).
   */
  pty?: boolean | PtyOptions;
  /** An interactive session on a pseudo-terminal of `pty`'s size (python3 needed). */
  ptyScript?: PtyStep[];
  extraArgs?: string[];
  input?: string | Buffer;
  timeoutMs?: number;
}

/**
 * `dbclient -y -p <port> -l <user> ... <host> <command>` (Dropbear's client), HOME the temp dir
 * (dbclient creates ~/.ssh/known_hosts there). Its stderr carries notices ("Host ... key accepted
 * unconditionally", keyboard-interactive banners) besides the remote's stderr.
 */
export function dbclientExec(server: ClientTarget, command: string, options: DbclientOptions = {}): Promise<ClientResult & PtyResult> {
  return inTempDir('dbclient', async (dir) => {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const args: string[] = [];
    if (options.knownHostKeys) {
      const sshDir = join(dir, '.ssh');
      mkdirSync(sshDir, { mode: 0o700 });
      // dbclient 2022.83 matches the bare host name (no "[host]:port") and takes a trailing
      // comment as part of the key.
      const lines = options.knownHostKeys.map((k) => `${server.host} ${k.trim().split(/\s+/).slice(0, 2).join(' ')}\n`);
      writeFileSync(join(sshDir, 'known_hosts'), lines.join(''), { mode: 0o600 });
    } else {
      args.push(...((options.hostKeyCheck ?? 'accept') === 'none' ? ['-y', '-y'] : ['-y']));
    }
    args.push('-p', String(server.port), '-l', options.username ?? server.user.username);
    let convert: string[] | null = null;
    if (options.identityOpenssh) {
      const key = join(dir, 'identity.dropbear');
      convert = ['/usr/bin/dropbearconvert', 'openssh', 'dropbear', options.identityOpenssh, key];
      args.push('-i', key);
    } else if (options.identityDropbear) {
      args.push('-i', options.identityDropbear);
    }
    if (options.ciphers) args.push('-c', list(options.ciphers));
    if (options.macs) args.push('-m', list(options.macs));
    args.push(options.pty || options.ptyScript ? '-t' : '-T');
    args.push(...(options.extraArgs ?? []), server.host);
    if (command) args.push(command);
    const ptyOpts = typeof options.pty === 'object' ? options.pty : {};
    const env: NodeJS.ProcessEnv = { ...BASE_ENV, HOME: dir, TERM: ptyOpts.term ?? 'xterm' };
    if (options.password !== undefined) env.DROPBEAR_PASSWORD = options.password;
    const argv = withConversion(dir, convert, ['/usr/bin/dbclient', ...args]);
    if (options.ptyScript) return startInPty(dir, argv, env, options.ptyScript, ptyOpts, timeoutMs);
    if (options.pty) {
      const typed: PtyStep[] = options.input === undefined ? [] : [{ send: Buffer.from(options.input).toString('utf8') }];
      return startInPty(dir, argv, env, typed, ptyOpts, timeoutMs);
    }
    const raw = await startClient(dir, argv[0], argv.slice(1), { input: options.input, env, timeoutMs });
    return { ...raw, stdout: raw.stdout.toString('utf8'), stderr: raw.stderr.toString('utf8'), tempDir: dir };
  });
}

// ---------------------------------------------------------------------------------------------
// Paramiko and AsyncSSH clients (spec/support/clients/*.py)

export interface PythonClientOptions {
  username?: string;
  password?: string;
  /** keyboard-interactive, every prompt answered with `password`. */
  kbdint?: boolean;
  /** Private key file: publickey first, then `password` if the server wants more (partial success). */
  keyFile?: string;
  keyPassphrase?: string;
  /** AsyncSSH only: the new password given when the server asks for a change (the old one is `password`). */
  newPassword?: string;
  /** Algorithm lists to restrict the client to (its own names). */
  kex?: string[];
  ciphers?: string[];
  macs?: string[];
  hostKeyAlgorithms?: string[];
  /** exec mode: the command (with stdin `input`; `pty` requests a pty for it). */
  command?: string;
  input?: string | Buffer;
  /** A pty for the exec, or the shell's pty size and TERM. */
  pty?: boolean | PtyOptions;
  /** shell mode: pty + shell, driven by these steps (`resize` → resize_pty / change_terminal_size). */
  ptyScript?: PtyStep[];
  timeoutMs?: number;
}

export interface PythonClientResult extends ClientResult, PtyResult {
  /** Connection or authentication failure, "ExceptionName: message" (the promise still resolves). */
  error: string | null;
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
  /** The server's host key type ("ssh-rsa" for any RSA) and fingerprint ("SHA256:..."). */
  hostKeyType?: string;
  hostKeyFingerprint?: string;
  /** With newPassword: the prompts of the server's password-change requests, in order. */
  passwordChangePrompts?: string[];
  /** Paramiko: the negotiated host key algorithm ("rsa-sha2-512"). */
  hostKeyAlgorithm?: string;
  kex?: string | null;
  /** Client-to-server cipher and MAC. */
  cipher?: string | null;
  mac?: string | null;
  /** AsyncSSH: the exit signal's name ("TERM"); Paramiko does not report exit-signal. */
  exitSignal?: string | null;
}

interface PythonJson {
  stdout: string;
  stderr: string;
  status: number | null;
  error: string | null;
  timedOut: boolean;
  hostKeyType?: string;
  hostKeyFingerprint?: string;
  hostKeyAlgorithm?: string;
  kex?: string | null;
  cipher?: string | null;
  mac?: string | null;
  exitSignal?: string | null;
  passwordChangePrompts?: string[];
}

function pythonClient(kind: 'paramiko' | 'asyncssh', server: ClientTarget, options: PythonClientOptions): Promise<PythonClientResult> {
  return inTempDir(kind, async (dir) => {
    if (options.command === undefined && !options.ptyScript) throw new Error(`${kind}Client: give a command or a ptyScript`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const pty = typeof options.pty === 'object' ? options.pty : {};
    const spec = {
      host: server.host,
      port: server.port,
      username: options.username ?? server.user.username,
      password: options.password,
      kbdint: options.kbdint ?? false,
      keyFile: options.keyFile,
      keyPassphrase: options.keyPassphrase,
      newPassword: options.newPassword,
      kex: options.kex,
      ciphers: options.ciphers,
      macs: options.macs,
      hostKeyAlgorithms: options.hostKeyAlgorithms,
      mode: options.ptyScript ? 'shell' : 'exec',
      command: options.command,
      input: options.input === undefined ? '' : Buffer.from(options.input).toString('base64'),
      pty: Boolean(options.pty),
      term: pty.term ?? 'xterm',
      cols: pty.cols ?? 80,
      rows: pty.rows ?? 24,
      steps: options.ptyScript ? toStepJson(options.ptyScript) : undefined,
      timeoutMs,
    };
    const raw = await startClient(dir, PYTHON, ['-B', '-W', 'ignore', join(CLIENTS_DIR, `${kind}_client.py`)], {
      input: JSON.stringify(spec),
      env: { ...BASE_ENV, HOME: dir, PYTHONDONTWRITEBYTECODE: '1' },
      timeoutMs: timeoutMs + PYTHON_GRACE_MS,
    });
    const j = lastJson<PythonJson>(raw.stdout);
    const base = { signal: raw.signal, durationMs: raw.durationMs, pid: raw.pid, tempDir: dir };
    if (!j) {
      const out = raw.stdout.toString('utf8') + raw.stderr.toString('utf8');
      return {
        ...base,
        status: null,
        stdout: '',
        stderr: '',
        stdoutBytes: Buffer.alloc(0),
        stderrBytes: Buffer.alloc(0),
        timedOut: raw.timedOut,
        error: `${kind} client printed no result (exit ${raw.status ?? raw.signal}): ${out.slice(-4000)}`,
      };
    }
    const stdoutBytes = Buffer.from(j.stdout, 'base64');
    const stderrBytes = Buffer.from(j.stderr, 'base64');
    return {
      ...base,
      status: j.status,
      stdout: stdoutBytes.toString('utf8'),
      stderr: stderrBytes.toString('utf8'),
      stdoutBytes,
      stderrBytes,
      timedOut: j.timedOut || raw.timedOut,
      error: j.error,
      hostKeyType: j.hostKeyType,
      hostKeyFingerprint: j.hostKeyFingerprint,
      hostKeyAlgorithm: j.hostKeyAlgorithm,
      kex: j.kex,
      cipher: j.cipher,
      mac: j.mac,
      exitSignal: j.exitSignal,
      passwordChangePrompts: j.passwordChangePrompts,
    };
  });
}

/**
 * Paramiko's client (spec/support/clients/paramiko_client.py): exec (`command`) or an interactive
 * shell on a pty (`ptyScript`). Failures resolve with `error` set.
 */
export function paramikoClient(server: ClientTarget, options: PythonClientOptions): Promise<PythonClientResult> {
  return pythonClient('paramiko', server, options);
}

/** AsyncSSH's client (spec/support/clients/asyncssh_client.py), as paramikoClient. */
export function asyncsshClient(server: ClientTarget, options: PythonClientOptions): Promise<PythonClientResult> {
  return pythonClient('asyncssh', server, options);
}

export interface ParamikoExecOptions {
  username?: string;
  /** Password auth (or the answer to keyboard-interactive prompts with `interactive`). */
  password?: string;
  /** Use keyboard-interactive (answering every prompt with `password`) instead of password auth. */
  interactive?: boolean;
  /** Private key file for publickey auth. */
  keyFilename?: string;
  input?: string | Buffer;
  timeoutMs?: number;
}

/**
 * Runs `command` through Paramiko's client (Transport, then one session channel). Rejects when the
 * connection or authentication fails, with Paramiko's exception name and message
 * ("paramiko client: AuthenticationException: ..."); paramikoClient resolves instead.
 */
export async function paramikoExec(server: ClientTarget, command: string, options: ParamikoExecOptions = {}): Promise<ClientResult> {
  const r = await paramikoClient(server, {
    username: options.username,
    password: options.password,
    kbdint: options.interactive,
    keyFile: options.keyFilename,
    command,
    input: options.input,
    timeoutMs: options.timeoutMs,
  });
  if (r.error) throw new Error(`paramiko client: ${r.error}`);
  return { status: r.status, signal: null, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut, durationMs: r.durationMs, pid: r.pid, tempDir: r.tempDir };
}

// ---------------------------------------------------------------------------------------------
// ssh-audit

export type AuditLevel = 'fail' | 'warn' | 'info';

export interface SshAuditFinding {
  /** kex, key (host key algorithms), enc, mac. */
  category: string;
  algorithm: string;
  level: AuditLevel;
  text: string;
}

export interface SshAuditResult {
  /** ssh-audit's exit code: 0 good, 1 connection error, 2 warnings, 3 failures (255: its "unknown error", -1). */
  exitCode: number | null;
  verdict: 'good' | 'warning' | 'failure' | 'connection-error' | 'error';
  timedOut: boolean;
  /** The parsed `-j` output, and the text as printed (null when it printed no JSON). */
  json: Record<string, unknown> | null;
  rawJson: string;
  /** The `-b -n` (batch, no colours) text report, where 2.x keeps its per-algorithm notes. */
  text: string;
  banner: string | null;
  software: string | null;
  kex: string[];
  hostKeyAlgorithms: string[];
  ciphers: string[];
  macs: string[];
  compression: string[];
  fingerprints: Array<{ hostKeyType: string; sha256: string }>;
  /** Every per-algorithm note (from the JSON when it carries notes, as ssh-audit 3.x does; else from the text). */
  findings: SshAuditFinding[];
  /** The findings at level fail. */
  failures: SshAuditFinding[];
  recommendations: Array<{ action: 'remove' | 'append' | 'change'; category: string; algorithm: string }>;
  cves: Array<{ id: string; cvss: number | null; description: string }>;
  terrapin: TerrapinCheck;
}

export interface TerrapinCheck {
  /** Terrapin applies (chacha20-poly1305, or a CBC cipher with an EtM MAC) and there is no strict kex. */
  vulnerable: boolean;
  /** The server offers kex-strict-s-v00@openssh.com (the counter-measure). */
  strictKex: boolean;
  chacha20: boolean;
  cbcEtm: boolean;
  /** ssh-audit itself mentions CVE-2023-48795 / Terrapin (3.1 and later; 2.5 knows nothing of it). */
  reportedByTool: boolean;
}

/** ssh-audit 3.x's rule (ssh_audit.py): chacha20-poly1305 by prefix, or ≥1 CBC cipher and ≥1 EtM MAC; strict kex protects. */
export function terrapinCheck(kex: string[], ciphers: string[], macs: string[]): Omit<TerrapinCheck, 'reportedByTool'> {
  const strictKex = kex.includes('kex-strict-s-v00@openssh.com');
  const chacha20 = ciphers.some((c) => c.startsWith('chacha20-poly1305'));
  const cbcEtm = ciphers.some((c) => c.includes('-cbc')) && macs.some((m) => m.endsWith('-etm@openssh.com'));
  return { vulnerable: (chacha20 || cbcEtm) && !strictKex, strictKex, chacha20, cbcEtm };
}

type JsonAlg = string | { algorithm: string; notes?: Partial<Record<AuditLevel, string[]>> };

function parseAuditText(text: string) {
  const findings: SshAuditFinding[] = [];
  const recommendations: SshAuditResult['recommendations'] = [];
  const cves: SshAuditResult['cves'] = [];
  for (const line of text.split('\n')) {
    let m = /^\((kex|key|enc|mac)\) (\S+)(?: \([^)]*\))?\s+-- \[(fail|warn|info)\] (.*)$/.exec(line);
    if (m) {
      findings.push({ category: m[1], algorithm: m[2], level: m[3] as AuditLevel, text: m[4].trim() });
      continue;
    }
    m = /^\(rec\) ([-+!])(\S+?)\s*-- (\w+) algorithm to (\w+)/.exec(line);
    if (m) {
      const action = m[1] === '-' ? 'remove' : m[1] === '+' ? 'append' : 'change';
      recommendations.push({ action, category: m[3], algorithm: m[2] });
      continue;
    }
    m = /^\(cve\) (\S+)\s+-- \(CVSSv\d: ([\d.]+)\) (.*)$/.exec(line);
    if (m) cves.push({ id: m[1], cvss: Number(m[2]), description: m[3].trim() });
  }
  return { findings, recommendations, cves };
}

/**
 * Runs ssh-audit against host:port twice at once: `-j` (JSON: algorithm lists, fingerprints) and
 * `-b -n` (text: ssh-audit 2.5's JSON has no per-algorithm notes, its text has them). Resolves with
 * the parsed report; the Terrapin verdict is computed from the algorithm lists (see terrapinCheck).
 */
export function sshAudit(host: string, port: number, options: { timeoutMs?: number } = {}): Promise<SshAuditResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const env = { ...BASE_ENV, HOME: '/nonexistent', PYTHONDONTWRITEBYTECODE: '1' };
  const run = (prefix: string, args: string[]) =>
    inTempDir(prefix, async (dir) => {
      const raw = await startClient(dir, '/usr/bin/ssh-audit', [...args, '-p', String(port), host], { env, timeoutMs });
      return { status: raw.status, timedOut: raw.timedOut, out: raw.stdout.toString('utf8'), err: raw.stderr.toString('utf8') };
    });
  const jsonRun = run('ssh-audit-j', ['-j']);
  const textRun = run('ssh-audit-b', ['-b', '-n']);
  return Promise.all([jsonRun, textRun]).then(([j, t]) => {
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(j.out.trim()) as Record<string, unknown>;
    } catch {
      json = null;
    }
    const names = (v: unknown): string[] => (Array.isArray(v) ? (v as JsonAlg[]).map((x) => (typeof x === 'string' ? x : x.algorithm)) : []);
    const kex = names(json?.kex);
    const hostKeyAlgorithms = names(json?.key);
    const ciphers = names(json?.enc);
    const macs = names(json?.mac);
    const fromText = parseAuditText(t.out);
    // ssh-audit 3.x lists CVEs in its JSON too.
    const jsonCves = Array.isArray(json?.cves)
      ? (json!.cves as Array<{ name?: string; cve?: string; cvssv2?: number; CVSSv2?: number; description?: string }>).map((c) => ({
          id: c.name ?? c.cve ?? '',
          cvss: c.cvssv2 ?? c.CVSSv2 ?? null,
          description: c.description ?? '',
        }))
      : [];
    // ssh-audit 3.x puts notes into the JSON: prefer them when present.
    const jsonFindings: SshAuditFinding[] = [];
    for (const category of ['kex', 'key', 'enc', 'mac']) {
      const entries = json?.[category];
      if (!Array.isArray(entries)) continue;
      for (const e of entries as JsonAlg[]) {
        if (typeof e === 'string' || !e.notes) continue;
        for (const level of ['fail', 'warn', 'info'] as AuditLevel[]) {
          for (const text of e.notes[level] ?? []) jsonFindings.push({ category, algorithm: e.algorithm, level, text });
        }
      }
    }
    const findings = jsonFindings.length ? jsonFindings : fromText.findings;
    const banner = (json?.banner as { raw?: string; software?: string } | undefined) ?? undefined;
    const fingerprints = Array.isArray(json?.fingerprints)
      ? (json!.fingerprints as Array<{ hostkey: string; hash_alg: string; hash: string }>)
          .filter((f) => f.hash_alg === 'SHA256')
          .map((f) => ({ hostKeyType: f.hostkey, sha256: `SHA256:${f.hash}` }))
      : [];
    const exitCode = j.status === null ? null : j.status;
    const verdict: SshAuditResult['verdict'] =
      exitCode === 0 ? 'good' : exitCode === 2 ? 'warning' : exitCode === 3 ? 'failure' : exitCode === 1 ? 'connection-error' : 'error';
    const everything = `${j.out}\n${t.out}`;
    return {
      exitCode,
      verdict,
      timedOut: j.timedOut || t.timedOut,
      json,
      rawJson: j.out,
      text: t.out,
      banner: banner?.raw ?? null,
      software: banner?.software ?? null,
      kex,
      hostKeyAlgorithms,
      ciphers,
      macs,
      compression: Array.isArray(json?.compression) ? (json!.compression as string[]) : [],
      fingerprints,
      findings,
      failures: findings.filter((f) => f.level === 'fail'),
      recommendations: fromText.recommendations,
      cves: jsonCves.length ? jsonCves : fromText.cves,
      terrapin: { ...terrapinCheck(kex, ciphers, macs), reportedByTool: /CVE-2023-48795|terrapin/i.test(everything) },
    };
  });
}
