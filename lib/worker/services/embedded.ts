import { callback } from '../../bridge/worker-side';
import type { Service } from '../../bridge/worker-side';
import { SSHException } from '../../errors';
import { EmbeddedServer } from '../server/embedded';
import { dropSpareHelper } from '../server/process';
import type { EmbeddedOptions } from '../server/embedded';

const servers = new Map<number, EmbeddedServer>();
let nextId = 1;

function server(id: number): EmbeddedServer {
  const s = servers.get(id);
  if (!s) throw new SSHException('this server is closed');
  return s;
}

/** The embedded SSH server (api/ssh-server.ts): it runs here, the main thread only holds an id. */
export const embeddedService: Service = {
  name: 'embedded',
  methods: {
    async start(a: EmbeddedOptions & { callbackKey: number }) {
      const key = a.callbackKey;
      const exec = a.execCallback
        ? async (command: string, username: string, env: Record<string, string>) => {
            const r = (await callback('embedded-exec', { key, command, username, env })) as { stdout: Uint8Array; stderr: Uint8Array; status: number };
            return { stdout: Buffer.from(r.stdout), stderr: Buffer.from(r.stderr), status: r.status };
          }
        : null;
      const s = await EmbeddedServer.start(a, exec);
      const id = nextId++;
      servers.set(id, s);
      s.log(`listening on ${s.address[0]} port ${s.address[1]}`);
      return { id, address: s.address };
    },

    status(a: { id: number }) {
      const s = server(a.id);
      // The worker's own heap (this isolate) and the process's buffers: what connections cost.
      const m = process.memoryUsage();
      return { connections: s.connections.size, ...s.stats, workerHeapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
    },

    log(a: { id: number; since?: number }) {
      return server(a.id).recentLog(a.since ?? 0);
    },

    async close(a: { id: number }) {
      const s = servers.get(a.id);
      if (!s) return true;
      servers.delete(a.id);
      // The last server gone: no pty session will want a helper started ahead.
      if (servers.size === 0) dropSpareHelper();
      await s.close();
      return true;
    },
  },
};
