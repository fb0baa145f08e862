/**
 * This library's SSHClient logging in to a harness server (spec/support/servers): publickey
 * auth with one key file, no agent, no ~/.ssh keys, any host key, and timeouts that fail a test
 * instead of hanging it.
 */
import { AutoAddPolicy, SSHClient } from '../../lib';
import type { SshServer } from './servers';

/** Timeouts of every harness login, in seconds. */
export const CONNECT = { timeout: 10, bannerTimeout: 10, authTimeout: 20, channelTimeout: 20 };

/** A client logged in to `server` as its user with `keyFilename`; `options` add to or override connect's. */
export function loginTo(server: SshServer, keyFilename: string, options: Record<string, unknown> = {}): SSHClient {
  const c = new SSHClient();
  c.setMissingHostKeyPolicy(new AutoAddPolicy());
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
