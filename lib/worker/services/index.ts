/**
 * The services of the transport worker: one line per service module, loaded at the service's
 * first request (a script that only runs commands loads neither the SFTP engine nor the server:
 * the worker is ready ~20 ms sooner, docs/performance.md session 25). A module exports a
 * `Service` ({ name, methods }, see lib/bridge/worker-side.ts) under the name given here; the
 * main thread calls its methods with `getBridge().call(name, method, args, timeout)`.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type { Service } from '../../bridge/worker-side';

export const services: ReadonlyArray<{ name: string; load: () => Service }> = [
  // 'bridge': ping, echo and the fault injection the bridge's tests use
  { name: 'bridge', load: () => (require('./diagnostics') as typeof import('./diagnostics')).diagnostics },
  // 'transport': client connections, auth, channels (lib/worker/ssh/)
  { name: 'transport', load: () => (require('./transport') as typeof import('./transport')).transport },
  // 'sockets': TCP sockets a script opens itself (lib/api/socket.ts)
  { name: 'sockets', load: () => (require('./sockets') as typeof import('./sockets')).socketsService },
  // 'agent': the ssh-agent client (identities, signatures) behind Agent and AgentKey
  { name: 'agent', load: () => (require('./agent') as typeof import('./agent')).agent },
  // 'sftp': SFTP client sessions; whole-file get/put run here (lib/worker/sftp/)
  { name: 'sftp', load: () => (require('./sftp') as typeof import('./sftp')).sftpService },
  // 'embedded': SSHServer, the ready server that runs entirely here (lib/worker/server/)
  { name: 'embedded', load: () => (require('./embedded') as typeof import('./embedded')).embeddedService },
];

/** The methods of `entry`'s module, which must name itself as the list does. */
export function loadService(entry: { name: string; load: () => Service }): Service['methods'] {
  const service = entry.load();
  if (service.name !== entry.name) throw new Error(`worker service module for "${entry.name}" names itself "${service.name}"`);
  return service.methods;
}
