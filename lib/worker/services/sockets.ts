import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { IOError, SSHException } from '../../errors';
import type { CallContext, Service } from '../../bridge/worker-side';
import { WorkerConnection } from '../ssh/connection';

/**
 * TCP sockets that live in the worker, handed to the main thread as ids: Python's
 * `socket.create_connection` for scripts that open the socket themselves and pass it to
 * Transport. A socket given to a Transport is taken out of this table.
 */
const sockets = new Map<number, Socket>();
let nextId = 1;

/** Removes a socket from the table for a Transport to own. */
export function takeSocket(id: number): Socket {
  const s = sockets.get(id);
  if (!s || s.destroyed) throw new SSHException('the socket is closed or already used by a Transport');
  sockets.delete(id);
  s.removeAllListeners('error');
  // A connection ends when its peer's side ends (a Transport reads SSH, nothing half-open).
  s.allowHalfOpen = false;
  if (s.readableEnded) s.end();
  return s;
}

/** A listening socket: connections wait (paused, unread) in `queue` until accepted. */
interface Listener {
  server: Server;
  queue: Socket[];
  waiters: Array<(s: Socket | null) => void>;
  closed: boolean;
}
const listeners = new Map<number, Listener>();

/** The first error of a socket not yet taken by a Transport: its next send or recv raises it. */
const failures = new WeakMap<Socket, Error>();

/** Registers an accepted or connected socket in the table; its id goes to the main thread. */
export function registerSocket(s: Socket): { id: number; peer: [string, number]; local: [string, number] } {
  // Errors before a Transport takes it over are reported when it is used.
  s.on('error', (e) => {
    if (!failures.has(s)) failures.set(s, e);
  });
  // As a Python socket: the peer's EOF (its shutdown(SHUT_WR)) leaves this side able to send.
  s.allowHalfOpen = true;
  // Whatever speaks through it (SSH, often, from a socket-like wrapper on the main thread) sends
  // small messages and waits for answers: Nagle's delay and the peer's delayed ACK would add
  // 40 ms to such round trips (measured: a channel open through a wrapper took 42 ms).
  s.setNoDelay(true);
  const id = nextId++;
  sockets.set(id, s);
  return { id, peer: [s.remoteAddress ?? 'unknown', s.remotePort ?? 0], local: [s.localAddress ?? '', s.localPort ?? 0] };
}

/** Opens a TCP listener in the worker; resolves once it is bound. */
export function listenTcp(host: string, port: number, backlog: number): Promise<{ server: Server; address: [string, number] }> {
  return new Promise((resolve, reject) => {
    // Paused: nothing is read before a Transport takes the socket (its first bytes are SSH's).
    const server = createServer({ pauseOnConnect: true, noDelay: true });
    server.once('error', reject);
    server.listen({ host, port, backlog }, () => {
      server.removeListener('error', reject);
      const a = server.address();
      const address: [string, number] = a && typeof a === 'object' ? [a.address, a.port] : [host, port];
      resolve({ server, address });
    });
  });
}

/** A socket of the table for send or recv: IOError once closed, taken or failed. */
function usable(id: number): Socket {
  const s = sockets.get(id);
  if (!s) throw new IOError('the socket is closed or already used by a Transport', { code: 'EBADF' });
  const failed = failures.get(s);
  if (failed) {
    const code = (failed as NodeJS.ErrnoException).code;
    throw new IOError(`socket error: ${failed.message}`, { code, cause: failed });
  }
  return s;
}

/**
 * Waits until one of `events` happens on `s` (true) or `timeoutSec` passes (false; null: never).
 * Every wait also ends on error or close, whose effects the caller then finds.
 */
function socketEvent(s: Socket, events: ReadonlyArray<'readable' | 'end' | 'drain'>, timeoutSec: number | null): Promise<boolean> {
  const all = [...events, 'error', 'close'];
  return new Promise((resolve) => {
    const timer = timeoutSec === null ? null : setTimeout(() => finish(false), timeoutSec * 1000);
    const onEvent = (): void => finish(true);
    function finish(ok: boolean): void {
      if (timer) clearTimeout(timer);
      for (const e of all) s.removeListener(e, onEvent);
      resolve(ok);
    }
    for (const e of all) s.on(e, onEvent);
  });
}

/** Bytes a socket may hold unsent before send waits (the kernel's buffer is the rest). */
const SEND_BUFFER_LIMIT = 1024 * 1024;

function listener(id: number): Listener {
  const l = listeners.get(id);
  if (!l || l.closed) throw new SSHException('the listening socket is closed');
  return l;
}

export const socketsService: Service = {
  name: 'sockets',
  methods: {
    async connect(a: { host: string; port: number; timeout: number | null }, _ctx: CallContext) {
      return registerSocket(await WorkerConnection.dial(a.host, a.port, a.timeout));
    },

    /** Python's socket()+bind()+listen(): port 0 picks a free port. */
    async listen(a: { host: string; port: number; backlog: number }) {
      const { server, address } = await listenTcp(a.host, a.port, a.backlog);
      const l: Listener = { server, queue: [], waiters: [], closed: false };
      server.on('connection', (s: Socket) => {
        s.on('error', () => undefined);
        const w = l.waiters.shift();
        if (w) w(s);
        else l.queue.push(s);
      });
      server.on('error', () => undefined);
      const id = nextId++;
      listeners.set(id, l);
      return { id, address };
    },

    /** The next connection, or null when `timeout` (seconds) passes first (SocketTimeout on the main thread). */
    async accept(a: { id: number; timeout: number | null }) {
      const l = listener(a.id);
      const ready = l.queue.shift();
      if (ready) return registerSocket(ready);
      if (a.timeout === 0) return null;
      const s = await new Promise<Socket | null>((resolve) => {
        const timer = a.timeout === null ? null : setTimeout(() => {
          l.waiters.splice(l.waiters.indexOf(done), 1);
          resolve(null);
        }, a.timeout * 1000);
        const done = (sock: Socket | null) => {
          if (timer) clearTimeout(timer);
          resolve(sock);
        };
        l.waiters.push(done);
      });
      if (!s) {
        if (l.closed) throw new SSHException('the listening socket was closed');
        return null;
      }
      return registerSocket(s);
    },

    closeListener(a: { id: number }) {
      const l = listeners.get(a.id);
      if (!l) return true;
      listeners.delete(a.id);
      l.closed = true;
      l.server.close();
      for (const s of l.queue.splice(0)) s.destroy();
      for (const w of l.waiters.splice(0)) w(null);
      return true;
    },

    /**
     * Python's send of all of `data`: taken whole into the socket's buffer once what is already
     * buffered is under SEND_BUFFER_LIMIT, waiting for that up to `timeout` seconds (0: not at
     * all); null when the time runs out first, with nothing taken (SocketTimeout on the main
     * thread). A write that fails later fails the next call.
     */
    async send(a: { id: number; data: Uint8Array; timeout: number | null }) {
      let s = usable(a.id);
      if (s.writableEnded) throw new IOError('send after shutdown of the writing side', { code: 'EPIPE' });
      if (s.writableLength >= SEND_BUFFER_LIMIT) {
        if (a.timeout === 0 || !(await socketEvent(s, ['drain'], a.timeout))) return null;
        s = usable(a.id);
      }
      s.write(a.data);
      return a.data.length;
    },

    /**
     * Python's recv: up to `n` bytes, as soon as any are there; an empty buffer at EOF; null when
     * `timeout` (seconds; 0: only what is there now) passes first. `peek` leaves them unread.
     */
    async recv(a: { id: number; n: number; timeout: number | null; peek?: boolean }) {
      for (;;) {
        const s = usable(a.id);
        const chunk = s.read() as Buffer | null;
        if (chunk && chunk.length) {
          // The rest stays first in line: for the next recv, or for the Transport taking over.
          if (a.peek) s.unshift(chunk);
          else if (chunk.length > a.n) s.unshift(chunk.subarray(a.n));
          return Buffer.from(chunk.subarray(0, a.n));
        }
        if (s.readableEnded || s.destroyed) return Buffer.alloc(0);
        if (a.timeout === 0 || !(await socketEvent(s, ['readable', 'end'], a.timeout))) return null;
      }
    },

    /** Python's shutdown(SHUT_WR): sends FIN; reading goes on. */
    shutdownWrite(a: { id: number }) {
      usable(a.id).end();
      return true;
    },

    close(a: { id: number }) {
      sockets.get(a.id)?.destroy();
      sockets.delete(a.id);
      return true;
    },
  },
};
