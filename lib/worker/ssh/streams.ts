import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { SharedRing } from '../../bridge/ring';
import { ProxyCommandFailure, SSHException } from '../../errors';
import type { ChannelCore, ChannelSink } from '../../transport/channel';

/**
 * What a connection runs over: a TCP socket, a channel of another connection (jump hosts), or
 * a ProxyCommand's pipes. The subset of net.Socket that WorkerConnection uses.
 */
export interface ByteStream extends EventEmitter {
  write(data: Buffer): unknown;
  end(): unknown;
  destroy(): unknown;
  readonly destroyed: boolean;
  setNoDelay?(on: boolean): unknown;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  /** Starts the flow of 'data' events once the consumer listens (net.Socket has it too). */
  resume?(): unknown;
  /** Batches the writes until uncork (net.Socket: one writev, no concatenation). */
  cork?(): unknown;
  uncork?(): unknown;
}

/**
 * Ends `stream` (what was written still goes out) and destroys it if its peer has not closed
 * within `graceMs`. The timer holds the stream only and goes when it closes: one that held its
 * owner kept each finished connection or forward alive that long.
 */
export function endWithCutOff(stream: ByteStream, graceMs: number): void {
  if (stream.destroyed) return;
  stream.end();
  const cutOff = setTimeout(() => stream.destroy(), graceMs).unref();
  stream.once('close', () => clearTimeout(cutOff));
}

/**
 * A channel of one connection carrying another connection's bytes (`direct-tcpip` to a jump
 * host's target). Data goes straight from one session to the next inside the worker; the
 * window reopens as soon as the nested session has taken the bytes.
 */
export class ChannelStream extends EventEmitter implements ByteStream, ChannelSink {
  destroyed = false;
  private pending: Buffer[] = [];
  /** Data held until the nested connection listens: the server's identification often
   * arrives before it exists. */
  private held: Buffer[] | null;

  /** `initial`: what arrived on the channel before it was handed over. */
  constructor(
    private readonly core: ChannelCore,
    readonly remoteAddress: string,
    readonly remotePort: number,
    initial: Buffer[] = [],
  ) {
    super();
    this.held = initial.filter((b) => b.length);
    core.sink = this;
  }

  resume(): void {
    const held = this.held;
    this.held = null;
    for (const chunk of held ?? []) this.data(chunk);
  }

  // ---- ChannelSink: from the outer connection ----
  data(chunk: Buffer): void {
    if (this.held) {
      this.held.push(Buffer.from(chunk));
      return;
    }
    this.emit('data', chunk);
    this.core.consumed(chunk.length);
  }
  eof(): void {
    this.emit('end');
  }
  closed(error: Error | null): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (error) this.emit('error', error);
    this.emit('close');
  }
  writable(): void {
    this.flush();
  }

  // ---- ByteStream: from the inner connection ----
  write(data: Buffer): boolean {
    if (this.destroyed || this.core.state !== 'open') return false;
    this.pending.push(data);
    this.flush();
    return true;
  }

  private flush(): void {
    while (this.pending.length && this.core.state === 'open' && this.core.writableBytes > 0) {
      const head = this.pending[0];
      const n = this.core.write(head);
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
  }

  end(): void {
    this.core.sendEof();
  }

  destroy(): void {
    this.core.close();
  }
}

/**
 * A ProxyCommand: a shell command whose stdin and stdout carry the connection (OpenSSH runs it
 * through the shell, and SSHConfig keeps its text for one). Its death ends the connection
 * with ProxyCommandFailure carrying its stderr.
 */
export class ProcessStream extends EventEmitter implements ByteStream {
  destroyed = false;
  readonly remoteAddress: string;
  readonly remotePort = 0;
  private readonly child;
  private stderr = '';

  constructor(readonly command: string) {
    super();
    this.remoteAddress = `proxy: ${command}`;
    this.child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => this.emit('data', d));
    this.child.stderr.on('data', (d: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += d.toString();
    });
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (e) => this.fail(e.message));
    this.child.on('exit', (code, signal) => this.fail(`exited ${signal ? `by ${signal}` : `with status ${code}`}${this.stderr ? `: ${this.stderr.trim()}` : ''}`));
  }

  private fail(reason: string): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('error', new ProxyCommandFailure(this.command, reason));
    this.emit('close');
  }

  write(data: Buffer): boolean {
    if (this.destroyed) return false;
    return this.child.stdin.write(data);
  }

  end(): void {
    this.child.stdin.end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.child.kill('SIGTERM');
  }
}

/**
 * A connection over a socket-like object of the main thread (Paramiko's `sock=`: anything with
 * send, recv, settimeout and close). The object's calls can only run on the main thread, so its
 * bytes cross in two rings: what this connection writes goes into `toMain`, which the main
 * thread's pump hands to `sock.send`; what `sock.recv` gives arrives in `fromMain`. The pump's
 * own end closes `fromMain` at the object's EOF; `fail` carries its error.
 */
export class RingStream extends EventEmitter implements ByteStream {
  destroyed = false;
  private readonly pending: Buffer[] = [];
  private flushing = false;
  private ended = false;

  constructor(
    private readonly toMain: SharedRing,
    private readonly fromMain: SharedRing,
    readonly remoteAddress: string,
    readonly remotePort = 0,
  ) {
    super();
    void this.pumpIn();
  }

  private async pumpIn(): Promise<void> {
    for (;;) {
      await this.fromMain.waitReadableAsync(null);
      if (this.destroyed) return;
      const data = this.fromMain.read();
      if (data.length) {
        this.emit('data', data);
        continue;
      }
      if (this.fromMain.eof) {
        this.emit('end');
        this.finish();
        return;
      }
    }
  }

  write(data: Buffer): boolean {
    if (this.destroyed || this.ended) return false;
    this.pending.push(Buffer.from(data));
    void this.flush();
    return true;
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length && !this.destroyed) {
        // The pump stopped reading (the object is closed): nothing more can go out.
        if (this.toMain.readerClosed) return this.finish();
        const head = this.pending[0];
        const n = this.toMain.write(head);
        if (n < head.length) {
          this.pending[0] = head.subarray(n);
          await this.toMain.waitWritableAsync(null);
          continue;
        }
        this.pending.shift();
      }
      if (this.ended && !this.pending.length) this.toMain.close();
    } finally {
      this.flushing = false;
    }
  }

  end(): void {
    this.ended = true;
    void this.flush();
  }

  /** The main thread's object failed (its send or recv raised something other than a timeout). */
  fail(message: string): void {
    if (this.destroyed) return;
    this.emit('error', new SSHException(`socket error: ${message}`));
    this.finish();
  }

  destroy(): void {
    this.finish();
  }

  private finish(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pending.length = 0;
    // Both closed: the pump sees it, closes the object and stops.
    this.toMain.close();
    this.fromMain.closeReader();
    this.emit('close');
  }
}
