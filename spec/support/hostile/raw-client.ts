import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { AutoAddPolicy, SSHClient } from '../../../lib';
import { defaultPreferences } from '../../../lib/transport/algorithms';
import { ClientAuth } from '../../../lib/transport/auth-client';
import { MSG } from '../../../lib/transport/constants';
import { Session } from '../../../lib/transport/session';
import { Message } from '../../../lib/wire/message';

/**
 * An SSH client the tests can make misbehave: this library's sans-I/O Session and ClientAuth
 * driven over a socket on the test's own event loop (async, so the main thread stays free for
 * the server in the worker). `send` puts any payload on the wire encrypted; `writeRaw` puts
 * bytes on the wire as they are (a forged MAC, an oversize length).
 */
export class RawClient {
  readonly session: Session;
  readonly auth: ClientAuth;
  /** Connection-layer messages received: [type, payload after the type byte]. */
  readonly received: Array<[number, Buffer]> = [];
  /** Resolves when the socket closes, with the bytes received before the SSH identification ended. */
  readonly closed: Promise<void>;
  private kexWaiters: Array<() => void> = [];
  private kexed = false;
  error: Error | null = null;

  private constructor(readonly socket: Socket) {
    this.session = new Session(
      { role: 'client', preferences: defaultPreferences() },
      {
        write: (d) => {
          if (!socket.destroyed) socket.write(d);
        },
        message: (type, msg) => {
          if (this.auth.handle(type, msg)) return;
          this.received.push([type, Buffer.from(msg.getRemainder())]);
        },
        kexDone: () => {
          this.kexed = true;
          for (const w of this.kexWaiters.splice(0)) w();
        },
        closed: (e) => {
          this.error = e;
          this.auth.abort(e ?? new Error('connection closed'));
          socket.destroy();
        },
      },
    );
    this.auth = new ClientAuth({
      send: (p) => this.session.send(p),
      sessionId: () => this.session.sessionId!,
      serverSigAlgs: () => this.session.serverSigAlgs,
      authenticated: () => this.session.setAuthenticated(),
    });
    socket.on('data', (d: Buffer) => this.session.receive(d));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.auth.abort(this.error ?? new Error('connection closed'));
        resolve();
      }),
    );
  }

  /** A TCP connection only (nothing sent yet). */
  static socket(port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
  }

  /** Connects and completes the key exchange. */
  static async connect(port: number): Promise<RawClient> {
    const c = new RawClient(await RawClient.socket(port));
    c.session.start();
    await c.kex();
    return c;
  }

  kex(): Promise<void> {
    if (this.kexed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.kexWaiters.push(resolve);
      void this.closed.then(() => reject(this.error ?? new Error('closed before the key exchange')));
    });
  }

  async login(username: string, password: string): Promise<void> {
    const o = await this.auth.authPassword(username, password);
    if (!o.success) throw new Error(`login refused: ${o.allowed.join(',')}`);
  }

  /** Sends a payload through the session (encrypted, counted). */
  send(payload: Buffer): void {
    this.session.send(payload);
  }

  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** CHANNEL_OPEN "session" with local id `id`. */
  openSession(id: number): void {
    this.send(new Message().addByte(MSG.CHANNEL_OPEN).addString('session').addInt(id).addInt(1 << 20).addInt(32768).asBytes());
  }

  /** Waits until `cond()` holds over the messages received (or the connection closes). */
  async until(cond: () => boolean, timeoutMs = 10000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!cond() && !this.socket.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return cond();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A well-behaved client's login and command against `server` after hostile ones: it is unaffected. */
export function goodClientWorks(server: { host: string; port: number }, username: string, password: string): void {
  const c = new SSHClient();
  try {
    c.setMissingHostKeyPolicy(new AutoAddPolicy());
    c.connect(server.host, { port: server.port, username, password, allowAgent: false, lookForKeys: false, timeout: 10 });
    const [, out] = c.execCommand('echo fine', { timeout: 20 });
    expect(out.read().toString()).toBe('fine\n');
  } finally {
    c.close();
  }
}
