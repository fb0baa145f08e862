import { getBridge } from '../bridge';

/**
 * A TCP socket owned by the transport worker (Python's `socket.create_connection`), to hand to
 * `new Transport(sock)` as Paramiko scripts do. Once a Transport uses it, the Transport owns it.
 */
export class Socket {
  /** @internal the worker's id, consumed by Transport */
  id: number | null;
  private readonly peer: [string, number];
  private readonly local: [string, number];

  private constructor(info: { id: number; peer: [string, number]; local: [string, number] }) {
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
