/**
 * This library's SSHClient logging in to a harness server (spec/support/servers): publickey
 * auth with one key file, no agent, no ~/.ssh keys, any host key, and timeouts that fail a test
 * instead of hanging it.
 */
import { AutoAddPolicy, PKey, SSHClient } from '../../lib';
import { knownHostsName } from './servers';
import type { SshServer } from './servers';

/** Timeouts of every harness login, in seconds. */
export const CONNECT = { timeout: 10, bannerTimeout: 10, authTimeout: 20, channelTimeout: 20 };

/** A client logged in to `server` as its user with `keyFilename`; `options` add to or override connect's. */
export function loginTo(server: SshServer, keyFilename: string, options: Record<string, unknown> = {}): SSHClient {
  const c = new SSHClient();
  c.setMissingHostKeyPolicy(new AutoAddPolicy());
  return connectAs(c, server, keyFilename, options);
}

/** As loginTo, but with the server's host keys on record and any other refused (RejectPolicy, the default). */
export function loginKnowing(server: SshServer, keyFilename: string | undefined, options: Record<string, unknown> = {}): SSHClient {
  const c = new SSHClient();
  for (const line of server.hostKeys.map((k) => k.publicKey)) {
    const key = PKey.fromPublicKeyLine(line);
    c.getHostKeys().add(knownHostsName(server.host, server.port), key.getName(), key);
  }
  return connectAs(c, server, keyFilename, options);
}

function connectAs(c: SSHClient, server: SshServer, keyFilename: string | undefined, options: Record<string, unknown>): SSHClient {
  c.connect(server.host, {
    port: server.port,
    username: server.user.username,
    keyFilename,
    lookForKeys: false,
    allowAgent: false,
    ...CONNECT,
    ...options,
  });
  return c;
}
