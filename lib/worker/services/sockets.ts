import type { Socket } from 'node:net';
import { SSHException } from '../../errors';
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
  return s;
}

export const socketsService: Service = {
  name: 'sockets',
  methods: {
    async connect(a: { host: string; port: number; timeout: number | null }, _ctx: CallContext) {
      const s = await WorkerConnection.dial(a.host, a.port, a.timeout);
      // Errors before a Transport takes it over are reported when it is used.
      s.on('error', () => undefined);
      const id = nextId++;
      sockets.set(id, s);
      return { id, peer: [s.remoteAddress ?? a.host, s.remotePort ?? a.port], local: [s.localAddress ?? '', s.localPort ?? 0] };
    },
    close(a: { id: number }) {
      sockets.get(a.id)?.destroy();
      sockets.delete(a.id);
      return true;
    },
  },
};
