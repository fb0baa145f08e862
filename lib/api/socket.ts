import { getBridge, request, runAsync, runSync, type Op } from '../bridge';
import { SocketTimeouts } from './timeout';
import { IOError, SocketTimeout, SSHException } from '../errors';

/** Python's socket.MSG_PEEK, for `Socket.recv(n, MSG_PEEK)`: look at the bytes, leave them unread. */
export const MSG_PEEK = 2;

/**
 * A TCP socket owned by the transport worker (Python's `socket.create_connection`), to hand to
 * `new Transport(sock)` as Paramiko scripts do. Once a Transport uses it, the Transport owns it.
 *
 * Before that it reads and writes as Python's socket does (`send`, `sendall`, `recv`,
 * `settimeout`), for what a script says first on a connection: an HTTP proxy's CONNECT, a SOCKS
 * greeting. Bytes it has not read stay for the Transport, so the server's identification line
 * may arrive with the proxy's answer.
 */
export class Socket extends SocketTimeouts {
  /** @internal the worker's id, consumed by Transport */
  id: number | null;
  private readonly peer: [string, number];
  private readonly local: [string, number];

  /** @internal use createConnection or Listener.accept */
  constructor(info: { id: number; peer: [string, number]; local: [string, number] }) {
    super();
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

  /**
   * Sends all of `data` (a string goes as UTF-8) and returns its length: the worker's socket
   * buffers what the kernel cannot take yet, so a send is never partial. While 1 MiB is already
   * waiting to go out it waits for room, up to the timeout, then raises SocketTimeout having
   * taken nothing (at once under settimeout(0)). IOError when the connection failed.
   */
  send(data: Uint8Array | string): number {
    let bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (bytes.length === 0) return 0;
    // A view posts its whole ArrayBuffer (a pooled Buffer's 8 KiB, a slice's parent): post a copy.
    if (bytes.byteLength !== bytes.buffer.byteLength) bytes = new Uint8Array(bytes);
    const t = this.timeout;
    const n = getBridge().call<number | null>('sockets', 'send', { id: this.open(), data: bytes, timeout: t }, t === null ? null : t + 5);
    if (n === null) throw new SocketTimeout(`send timed out after ${t} s`);
    return n;
  }

  /** Python's sendall (here the same as send). */
  sendall(data: Uint8Array | string): void {
    this.send(data);
  }

  /**
   * Up to `bufsize` bytes, as soon as any arrive; an empty Buffer once the peer closed its side.
   * SocketTimeout when nothing arrives within the timeout (at once with settimeout(0)). With
   * `flags` MSG_PEEK the bytes stay unread: a script finds the end of a proxy's answer, then
   * reads exactly that much and leaves the SSH server's first bytes to the Transport.
   */
  recv(bufsize: number, flags = 0): Buffer {
    if (!Number.isInteger(bufsize) || bufsize < 0) throw new TypeError(`recv needs a byte count, not ${bufsize}`);
    if (flags !== 0 && flags !== MSG_PEEK) throw new TypeError(`recv flags: only MSG_PEEK (${MSG_PEEK}) is supported, not ${flags}`);
    const id = this.open();
    if (bufsize === 0) return Buffer.alloc(0);
    const t = this.timeout;
    const args = { id, n: bufsize, timeout: t, peek: flags === MSG_PEEK };
    const data = getBridge().call<Buffer | null>('sockets', 'recv', args, t === null ? null : t + 5);
    if (data === null) throw new SocketTimeout(t === 0 ? 'recv: no data ready (non-blocking socket)' : `recv timed out after ${t} s`);
    return data;
  }

  /** Python's shutdown(SHUT_WR): ends the sending side (the peer reads EOF); recv goes on. */
  shutdownWrite(): void {
    getBridge().call('sockets', 'shutdownWrite', { id: this.open() }, 10);
  }

  private open(): number {
    if (this.id === null) throw new IOError('the socket is closed or already used by a Transport', { code: 'EBADF' });
    return this.id;
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
