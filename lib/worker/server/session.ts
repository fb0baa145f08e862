import type { Readable } from 'node:stream';
import type { ChannelCore, ChannelSink } from '../../transport/channel';
import type { Message } from '../../wire/message';
import { track } from '../live';
import { parseChannelRequest } from '../ssh/bridge-policy';
import { findPython3, spawnSession } from './process';
import { parseScpCommand, ScpServerChannel } from './scp';
import type { ScpSettings } from './scp';
import type { PtySize, SessionExit, SessionProcess } from './process';

/** What a session may do, decided by the embedded server's settings. */
export interface SessionSettings {
  username: string;
  /** The environment every session starts with (HOME, USER, SHELL, PATH...). */
  baseEnv: Record<string, string>;
  shell: string;
  cwd?: string;
  allowPty: boolean;
  /** Client env requests accepted: names or prefixes ending in '*'; empty accepts none. */
  acceptEnv: string[];
  /** Runs `exec` elsewhere than the local shell (a main-thread callback); null: the shell. */
  execHandler: ((command: string, env: Record<string, string>) => Promise<{ stdout: Buffer; stderr: Buffer; status: number }>) | null;
  /** exec/shell allowed at all. */
  allowExec: boolean;
  /** Subsystems served in the worker: name -> starter, which logs the start itself. */
  subsystems: Map<string, (ch: ChannelCore) => ChannelSink>;
  /** `scp -t` / `scp -f` exec requests served in the worker, in this jail; null: not. */
  scp: ScpSettings | null;
  /**
   * Agent forwarding of the connection (auth-agent-req@openssh.com); null: refused. `request`
   * sets it up once (true when it is there); `path` is SSH_AUTH_SOCK for sessions started after.
   */
  agent: { request(): Promise<boolean>; path(): string | null } | null;
  log(line: string): void;
}

/** Most bytes held for a slow client before the process's output is paused. */
const HIGH_WATER = 1 << 20;

/**
 * One session channel of the embedded server, entirely in the worker: the client's requests
 * (env, pty-req, exec, shell, window-change, signal, subsystem) run a local process whose
 * stdio is joined to the channel with flow control both ways, and its end becomes
 * exit-status or exit-signal, EOF and CLOSE.
 */
export class SessionChannel implements ChannelSink {
  private readonly env: Record<string, string> = {};
  private pty: (PtySize & { term: string; modes: Buffer }) | null = null;
  private proc: SessionProcess | null = null;
  private started = false;
  /** Output waiting for window, per stream. */
  private readonly queued: [Buffer[], Buffer[]] = [[], []];
  private queuedBytes = 0;
  private readonly paused: Readable[] = [];
  private exitInfo: SessionExit | null = null;
  private outputsOpen = 0;
  private delegate: ChannelSink | null = null;
  /** Input that came before the process (a request's answer is async; data is not). */
  private early: Buffer[] = [];
  private earlyEof = false;
  /** Window changes not yet handed to the pty helper; input waits in `held` meanwhile. */
  private inputHeld = 0;
  private held: Buffer[] = [];
  private heldEof = false;

  constructor(
    private readonly core: ChannelCore,
    private readonly settings: SessionSettings,
  ) {
    track('session', this);
    core.sink = this;
  }

  // ---- requests ----

  request(type: string, _wantReply: boolean, msg: Message): boolean | Promise<boolean> {
    if (this.delegate) return false;
    const a = parseChannelRequest(type, msg);
    if (!a) return false;
    switch (type) {
      case 'env':
        if (this.started || !this.envAllowed(a.name as string)) return false;
        this.env[a.name as string] = a.value as string;
        return true;
      case 'pty-req':
        // Ptys run under a Python 3 helper: without one, say no now rather than fail the shell.
        if (this.started || !this.settings.allowPty) return false;
        if (!findPython3()) {
          this.settings.log(`${this.settings.username}: pty refused: pty sessions need python3`);
          return false;
        }
        this.pty = {
          term: a.term as string,
          cols: a.width as number,
          rows: a.height as number,
          widthPixels: a.widthPixels as number,
          heightPixels: a.heightPixels as number,
          modes: a.modes as Buffer,
        };
        return true;
      case 'window-change': {
        if (!this.pty) return false;
        this.pty = { ...this.pty, cols: a.width as number, rows: a.height as number };
        if (!this.proc) return true;
        // Input that follows the request waits until the new size is in the helper's control
        // pipe: two pipes give no order between them, and a command typed after a resize must
        // see the new size (stty size, a full-screen program's first draw).
        this.inputHeld++;
        const release = () => {
          this.inputHeld--;
          this.releaseInput();
        };
        const ok = this.proc.resize({ cols: a.width as number, rows: a.height as number, widthPixels: a.widthPixels as number, heightPixels: a.heightPixels as number }, release);
        if (!ok) release();
        return ok;
      }
      case 'auth-agent-req@openssh.com':
        return this.started || !this.settings.agent ? false : this.settings.agent.request();
      case 'signal':
        return this.proc ? this.proc.signal(a.signal as string) : false;
      case 'break':
        // As sshd: taken on a session with a terminal, refused without one (sendBreak says).
        if (!this.proc || !this.proc.sendBreak()) return false;
        this.settings.log(`${this.settings.username}: break (${a.msec as number} ms asked)`);
        return true;
      case 'shell':
        return this.start(null);
      case 'exec':
        return this.start((a.command as Buffer).toString('utf8'));
      case 'subsystem':
        return this.startSubsystem(a.name as string);
    }
    return false;
  }

  private envAllowed(name: string): boolean {
    return this.settings.acceptEnv.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
  }

  private startSubsystem(name: string): boolean {
    const starter = this.settings.subsystems.get(name);
    if (this.started) return false;
    if (!starter) {
      this.settings.log(`${this.settings.username}: subsystem ${JSON.stringify(name.slice(0, 100))} refused`);
      return false;
    }
    let sink: ChannelSink;
    try {
      sink = starter(this.core);
    } catch {
      return false; // the starter said why in the log
    }
    this.started = true;
    this.delegate = sink;
    // The client's first bytes may have come before this request's answer (ssh sends SFTP's
    // INIT without waiting for it): they go to the subsystem, in order.
    for (const chunk of this.early.splice(0)) sink.data(chunk, 0);
    if (this.earlyEof) sink.eof();
    return true;
  }

  /** An scp exec served by ScpServerChannel in the jail (as a subsystem is). */
  private startScp(command: string, request: NonNullable<ReturnType<typeof parseScpCommand>>): boolean {
    if (this.started) return false;
    const s = this.settings;
    s.log(`${s.username}: scp ${JSON.stringify(command.slice(0, 200))}`);
    let sink: ChannelSink;
    try {
      sink = new ScpServerChannel(this.core, { ...s.scp!, log: (l) => s.log(`${s.username}: ${l}`) }, request);
    } catch (e) {
      s.log(`${s.username}: scp refused: ${(e as Error).message}`);
      return false;
    }
    this.started = true;
    this.delegate = sink;
    for (const chunk of this.early.splice(0)) sink.data(chunk, 0);
    if (this.earlyEof) sink.eof();
    return true;
  }

  private start(command: string | null): boolean | Promise<boolean> {
    const scp = command !== null && this.settings.scp ? parseScpCommand(command) : null;
    if (scp) return this.startScp(command!, scp);
    if (this.started || !this.settings.allowExec) return false;
    // With an exec callback there is no local shell to give.
    if (command === null && this.settings.execHandler) return false;
    this.started = true;
    const s = this.settings;
    s.log(`${s.username}: ${command === null ? `shell${this.pty ? ' with pty' : ''}` : `exec ${JSON.stringify(command.slice(0, 200))}`}`);
    const env = { ...s.baseEnv, ...this.env };
    // As sshd: once the client asked for agent forwarding on the connection, sessions see it.
    const agentPath = s.agent?.path();
    if (agentPath) env.SSH_AUTH_SOCK = agentPath;
    if (command !== null && s.execHandler) {
      const handler = s.execHandler;
      // The reply goes first (the client waits for it), then the output.
      setImmediate(() => void this.runHandler(handler, command, env));
      return true;
    }
    try {
      this.proc = spawnSession({ command, shell: s.shell, env, cwd: s.cwd, pty: this.pty });
    } catch (e) {
      s.log(`${s.username}: cannot start the session: ${(e as Error).message}`);
      this.started = false;
      return false;
    }
    const proc = this.proc;
    proc.stdin.on('error', () => undefined);
    for (const chunk of this.early.splice(0)) this.data(chunk, 0);
    if (this.earlyEof) proc.stdin.end();
    this.pipe(proc.stdout, 0);
    if (proc.stderr) this.pipe(proc.stderr, 1);
    void proc.exited.then((exit) => {
      this.exitInfo = exit;
      this.maybeFinish();
    });
    return true;
  }

  private async runHandler(handler: NonNullable<SessionSettings['execHandler']>, command: string, env: Record<string, string>): Promise<void> {
    let r: { stdout: Buffer; stderr: Buffer; status: number };
    try {
      r = await handler(command, env);
    } catch (e) {
      r = { stdout: Buffer.alloc(0), stderr: Buffer.from(`${(e as Error).message}\n`), status: 1 };
    }
    if (this.core.state !== 'open') return;
    this.outputsOpen = 0;
    if (r.stdout.length) this.output(r.stdout, 0);
    if (r.stderr.length) this.output(r.stderr, 1);
    this.exitInfo = { code: r.status, signal: null, coreDumped: false };
    this.maybeFinish();
  }

  private pipe(stream: Readable, which: 0 | 1): void {
    this.outputsOpen++;
    stream.on('data', (d: Buffer) => {
      this.output(d, which);
      if (this.queuedBytes > HIGH_WATER) {
        stream.pause();
        this.paused.push(stream);
      }
    });
    stream.on('end', () => {
      this.outputsOpen--;
      this.maybeFinish();
    });
    stream.on('error', () => undefined);
  }

  private output(d: Buffer, which: 0 | 1): void {
    if (this.core.state !== 'open' || this.core.eofSent) return;
    if (this.queued[which].length === 0) {
      const n = this.core.write(d, which);
      if (n === d.length) return;
      d = d.subarray(n);
    }
    this.queued[which].push(d);
    this.queuedBytes += d.length;
  }

  /** After the process exited and its output is all sent: exit status, EOF, close. */
  private maybeFinish(): void {
    if (!this.exitInfo || this.outputsOpen > 0 || this.queuedBytes > 0 || this.core.state !== 'open' || this.core.closeSent) return;
    const e = this.exitInfo;
    if (e.error) this.settings.log(`${this.settings.username}: the session's process failed: ${e.error.trim().slice(0, 300)}`);
    if (e.signal) void this.core.request('exit-signal', false, (m) => m.addString(e.signal!).addBoolean(e.coreDumped).addString('').addString(''));
    else void this.core.request('exit-status', false, (m) => m.addInt((e.code ?? 255) >>> 0));
    this.core.sendEof();
    this.core.close();
  }

  // ---- ChannelSink ----

  data(chunk: Buffer, stream: 0 | 1): void {
    if (this.delegate) {
      this.delegate.data(chunk, stream);
      return;
    }
    const stdin = this.proc?.stdin;
    if (!this.started && stream === 0) {
      this.early.push(Buffer.from(chunk));
      return;
    }
    if (!stdin || stream !== 0 || stdin.destroyed) {
      this.core.consumed(chunk.length);
      return;
    }
    if (this.inputHeld > 0) {
      this.held.push(Buffer.from(chunk));
      return;
    }
    // The window reopens as the process takes the input.
    stdin.write(chunk, () => this.core.consumed(chunk.length));
  }

  eof(): void {
    if (this.delegate) {
      this.delegate.eof();
      return;
    }
    if (!this.proc) this.earlyEof = true;
    else if (this.inputHeld > 0) this.heldEof = true;
    else this.proc.stdin.end();
  }

  /** After a resize reached the helper: the input that waited for it, then a waiting EOF. */
  private releaseInput(): void {
    if (this.inputHeld > 0 || !this.proc) return;
    for (const chunk of this.held.splice(0)) this.data(chunk, 0);
    if (this.heldEof) {
      this.heldEof = false;
      this.proc.stdin.end();
    }
  }

  closed(error: Error | null): void {
    this.delegate?.closed(error);
    this.proc?.kill();
    this.queued[0] = [];
    this.queued[1] = [];
    this.queuedBytes = 0;
  }

  writable(): void {
    if (this.delegate) {
      this.delegate.writable();
      return;
    }
    for (const which of [0, 1] as const) {
      const q = this.queued[which];
      while (q.length && this.core.writableBytes > 0) {
        const head = q[0];
        const n = this.core.write(head, which);
        this.queuedBytes -= n;
        if (n < head.length) q[0] = head.subarray(n);
        else q.shift();
      }
    }
    if (this.queuedBytes <= HIGH_WATER / 2) for (const s of this.paused.splice(0)) s.resume();
    this.maybeFinish();
  }
}
