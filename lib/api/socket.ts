import { getBridge, request, runAsync, runSync, type Op } from '../bridge';
import { SocketTimeout, SSHException } from '../errors';

/**
 * A TCP socket owned by the transport worker (Python's `socket.create_connection`), to hand to
 * `new Transport(sock)` as Paramiko scripts do. Once a Transport uses it, the Transport owns it.
 */
export class Socket {
  /** @internal the worker's id, consumed by Transport */
  id: number | null;
  private readonly peer: [string, number];
  private readonly local: [string, number];

  /** @internal use createConnection or Listener.accept */
  constructor(info: { id: number; peer: [string, number]; local: [string, number] }) {
    this.id = info.id;
    this.peer = info.peer;
    this.local = info.local;
  }

  /** Connects to `[host, port]`, trying every address of the host; `timeout` in seconds. */
  static createConnection(address: [string, number], timeout: number | null = null): Socket {
    const info = getBridge().call<{ id: number; peer: [string, number]; local: [string, number] }>(
      'sockets',
      'connect',
      { host: address[0], port: address[1], timeout },
      timeout === null ? null : timeout + 1,
    );
    return new Socket(info);
  }

  getpeername(): [string, number] {
    return this.peer;
  }

  getsockname(): [string, number] {
    return this.local;
  }

  /** Hands the socket over (used by Transport). */
  take(): number {
    if (this.id === null) throw new TypeError('this socket is closed or already used by a Transport');
    const id = this.id;
    this.id = null;
    return id;
  }

  close(): void {
    if (this.id === null) return;
    getBridge().call('sockets', 'close', { id: this.id }, 10);
    this.id = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Python's `socket.create_connection(address, timeout)`. */
export function createConnection(address: [string, number], timeout: number | null = null): Socket {
  return Socket.createConnection(address, timeout);
}

/**
 * A listening TCP socket owned by the transport worker (Python's socket + bind + listen), so
 * Paramiko's server loop ports line by line: `const [sock, addr] = listener.accept()`, then
 * `new Transport(sock)`. Connections queue in the worker unread until accepted.
 */
export class Listener {
  private id: number | null;
  private readonly address: [string, number];

  /** @internal use `listen()` */
  constructor(info: { id: number; address: [string, number] }) {
    this.id = info.id;
    this.address = info.address;
  }

  /**
   * The next connection and its peer's address; `timeout` in seconds (null waits forever,
   * Python's meaning), then SocketTimeout. Worker callbacks (a running server's
   * ServerInterface) are served while it waits.
   */
  accept(timeout: number | null | { timeout?: number | null } = null): [Socket, [string, number]] {
    return runSync(this.acceptOp(timeout));
  }

  /** The promise twin of accept: a server loop can wait for connections on its event loop. */
  acceptAsync(timeout: number | null | { timeout?: number | null } = null): Promise<[Socket, [string, number]]> {
    return runAsync(this.acceptOp(timeout));
  }

  private *acceptOp(timeout: number | null | { timeout?: number | null }): Op<[Socket, [string, number]]> {
    if (this.id === null) throw new SSHException('the listening socket is closed');
    const t = timeout !== null && typeof timeout === 'object' ? (timeout.timeout ?? null) : timeout;
    const info = yield* request<{ id: number; peer: [string, number]; local: [string, number] } | null>(
      'sockets',
      'accept',
      { id: this.id, timeout: t },
      t === null ? null : t + 5,
    );
    if (!info) throw new SocketTimeout('accept timed out');
    const sock = new Socket(info);
    return [sock, sock.getpeername()];
  }

  /** `[host, port]` it listens on (the port chosen when 0 was asked). */
  getsockname(): [string, number] {
    return this.address;
  }

  close(): void {
    if (this.id === null) return;
    const id = this.id;
    this.id = null;
    getBridge().call('sockets', 'closeListener', { id }, 10);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Options of `listen`. */
export interface ListenOptions {
  /** Connections the kernel queues before accept (Python's listen(backlog)); default 128. */
  backlog?: number;
}

/** Listens on `host:port` (port 0 picks a free one); see Listener. */
export function listen(host: string, port: number, options: ListenOptions = {}): Listener {
  const info = getBridge().call<{ id: number; address: [string, number] }>(
    'sockets',
    'listen',
    { host, port, backlog: options.backlog ?? 128 },
    30,
  );
  return new Listener(info);
}
