/**
 * Local listeners whose connections become channels of a connection, in the worker: port
 * forwards, SOCKS, unix socket forwards, and the agent proxy of a server (sessions reach the
 * client's agent through it).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ioErrorFrom } from '../../files';
import { DEFAULT_MAX_PACKET_SIZE, DEFAULT_WINDOW_SIZE } from '../../transport/channel';
import type { ChannelCore } from '../../transport/channel';
import type { WorkerConnection } from './connection';
import { SocketBridge } from './socket-bridge';
import { track } from '../live';

/** A local listener (TCP `[port, host]` or a unix socket `[path]`); IOError when it cannot listen. */
export async function listenOn(listen: [number, string] | [string], onConnection: (sock: Socket) => void): Promise<Server> {
  // allowHalfOpen: a client's half-close is passed on as EOF while the answer still flows back.
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConnection);
  track('listener', server);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (listen.length === 2) server.listen(listen[0], listen[1], done);
      else server.listen(listen[0], done);
    });
  } catch (e) {
    throw ioErrorFrom(e, 'cannot listen on', listen.length === 2 ? `${listen[1]}:${listen[0]}` : listen[0]);
  }
  return server;
}

/**
 * Listens here (`listen` as server.listen takes it: port and host, or a unix socket path) and
 * joins each connection to the channel `open` makes for it (SocketBridge); a connection whose
 * channel the peer refuses is closed. Resolves once listening; IOError if it cannot.
 */
export async function bridgeListener(log: (line: string) => void, what: string, listen: [number, string] | [string], open: (sock: Socket) => Promise<ChannelCore>): Promise<Server> {
  return listenOn(listen, (sock) => {
    open(sock).then(
      (core) => {
        log(`[chan ${core.localId}] ${what}: connection from ${sock.remoteAddress ?? 'a local socket'}`);
        new SocketBridge(core, sock, (t) => log(`[chan ${core.localId}] ${t}`));
        sock.resume();
      },
      (e: Error) => {
        log(`${what}: the peer refused the channel: ${e.message}`);
        sock.destroy();
      },
    );
  });
}

/**
 * A unix socket in a fresh 0700 folder whose connections become agent channels to the client
 * (auth-agent@openssh.com): what SSH_AUTH_SOCK names for a server's sessions after the client
 * asked for agent forwarding. `stop` closes it and removes the folder.
 */
export async function agentProxyListener(c: WorkerConnection): Promise<{ path: string; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'pts-agent-proxy-'));
  chmodSync(dir, 0o700);
  const path = join(dir, 'agent.sock');
  let server: Server;
  try {
    server = await bridgeListener((l) => c.log(l), 'agent proxy', [path], () => c.conn.open('auth-agent@openssh.com', undefined, DEFAULT_WINDOW_SIZE, DEFAULT_MAX_PACKET_SIZE));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  c.log(`agent proxy listening on ${path}`);
  return {
    path,
    stop: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
