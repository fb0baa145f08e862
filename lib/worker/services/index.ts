/**
 * The services of the transport worker: one line per service module. A module exports a
 * `Service` ({ name, methods }, see lib/bridge/worker-side.ts); the main thread calls its
 * methods with `getBridge().call(name, method, args, timeout)`.
 */
import type { Service } from '../../bridge/worker-side';
import { agent } from './agent';
import { diagnostics } from './diagnostics';
import { transport } from './transport';
import { socketsService } from './sockets';
import { embeddedService } from './embedded';
import { sftpService } from './sftp';

export const services: readonly Service[] = [
  diagnostics, // 'bridge': ping, echo and the fault injection the bridge's tests use
  transport, // 'transport': client connections, auth, channels (lib/worker/ssh/)
  socketsService, // 'sockets': TCP sockets a script opens itself (lib/api/socket.ts)
  agent, // 'agent': the ssh-agent client (identities, signatures) behind Agent and AgentKey
  sftpService, // 'sftp': SFTP client sessions; whole-file get/put run here (lib/worker/sftp/)
  embeddedService, // 'embedded': SSHServer, the ready server that runs entirely here (lib/worker/server/)
];
