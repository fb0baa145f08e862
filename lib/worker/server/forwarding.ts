/**
 * Forwarding for one connection of the embedded server, as sshd's AllowTcpForwarding and
 * AllowStreamLocalForwarding with GatewayPorts no: direct-tcpip channels (`ssh -L`, `-D`, `-J`
 * and our own forwardLocalPort) connect from here to the destination they name; tcpip-forward
 * requests (`ssh -R`) listen on the loopback address and open a forwarded-tcpip channel back to
 * the client per connection. The same for unix sockets (OpenSSH's streamlocal channels).
 */
import { unlinkSync } from 'node:fs';
import { connect as netConnect, createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { ChannelCore } from '../../transport/channel';
import type { IncomingOpen } from '../../transport/connection';
import { OPEN_FAILED_CONNECT_FAILED, OPEN_SUCCEEDED } from '../../transport/constants';
import type { Message } from '../../wire/message';
import { SocketBridge } from '../ssh/socket-bridge';

/** How a forwarding connection reaches the client: a new channel toward it, and a log line. */
export interface ForwardingHost {
  openToClient(kind: string, fill: (m: Message) => void): Promise<ChannelCore>;
  log(line: string): void;
}

export class ServerForwarding {
  /** Remote forward listeners: `address:port` as the client asked, or `path:` and a socket path. */
  private readonly listeners = new Map<string, Server>();

  constructor(private readonly host: ForwardingHost) {}

  /** A direct-tcpip open (RFC 4254 7.2): connects to its destination; the code to answer with. */
  async directTcpip(open: IncomingOpen): Promise<number> {
    const host = open.msg.getText();
    const port = open.msg.getInt();
    const origin = `${open.msg.getText()}:${open.msg.getInt()}`;
    const sock = netConnect({ host, port, allowHalfOpen: true });
    const connected = await new Promise<boolean>((resolve) => {
      sock.once('connect', () => resolve(true));
      sock.once('error', (e: Error) => {
        this.host.log(`forward from ${origin} to ${host}:${port} failed: ${e.message}`);
        resolve(false);
      });
    });
    if (!connected) {
      sock.destroy();
      return OPEN_FAILED_CONNECT_FAILED;
    }
    const id = open.channel.localId;
    this.host.log(`[chan ${id}] forward from ${origin} to ${host}:${port}`);
    new SocketBridge(open.channel, sock, (t) => this.host.log(`[chan ${id}] ${t}`));
    return OPEN_SUCCEEDED;
  }

  /** A direct-streamlocal@openssh.com open: connects to the unix socket it names. */
  async directStreamlocal(open: IncomingOpen): Promise<number> {
    const path = open.msg.getText();
    const sock = createConnection({ path, allowHalfOpen: true });
    const connected = await new Promise<boolean>((resolve) => {
      sock.once('connect', () => resolve(true));
      sock.once('error', (e: Error) => {
        this.host.log(`forward to ${path} failed: ${e.message}`);
        resolve(false);
      });
    });
    if (!connected) {
      sock.destroy();
      return OPEN_FAILED_CONNECT_FAILED;
    }
    const id = open.channel.localId;
    this.host.log(`[chan ${id}] forward to ${path}`);
    new SocketBridge(open.channel, sock, (t) => this.host.log(`[chan ${id}] ${t}`));
    return OPEN_SUCCEEDED;
  }

  /**
   * tcpip-forward and cancel-tcpip-forward (RFC 4254 7.1), and OpenSSH's streamlocal-forward /
   * cancel-streamlocal-forward; null for other requests. The reply to a forward of port 0
   * carries the port bound.
   */
  globalRequest(name: string, msg: Message): Promise<boolean | Buffer> | null {
    if (name === 'tcpip-forward') return this.listen(msg.getText(), msg.getInt());
    if (name === 'cancel-tcpip-forward') return Promise.resolve(this.cancel(`${msg.getText()}:${msg.getInt()}`));
    if (name === 'streamlocal-forward@openssh.com') return this.listenPath(msg.getText());
    if (name === 'cancel-streamlocal-forward@openssh.com') return Promise.resolve(this.cancel(`path:${msg.getText()}`));
    return null;
  }

  /** A unix socket the client asked for; its connections come back as forwarded-streamlocal channels. */
  private async listenPath(path: string): Promise<boolean> {
    if (!path || this.listeners.has(`path:${path}`)) return false;
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (sock) => {
      // The socket path, then a reserved string (OpenSSH's PROTOCOL 2.4).
      const fill = (m: Message): void => void m.addString(path).addString('');
      this.toClient('forwarded-streamlocal@openssh.com', fill, sock, `remote forward ${path}`);
    });
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', (e: Error) => {
        this.host.log(`remote forward ${path} refused: ${e.message}`);
        resolve(false);
      });
      server.listen(path, () => resolve(true));
    });
    if (!ok) return false;
    this.listeners.set(`path:${path}`, server);
    this.host.log(`remote forward listening on ${path}`);
    return true;
  }

  private async listen(address: string, port: number): Promise<boolean | Buffer> {
    if (port > 65535) return false;
    // GatewayPorts no: whatever the address, only this machine may connect.
    const bindTo = address === '::1' ? '::1' : '127.0.0.1';
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (sock) => this.forwarded(address, server, sock));
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', (e: Error) => {
        this.host.log(`remote forward ${address}:${port} refused: ${e.message}`);
        resolve(false);
      });
      server.listen(port, bindTo, () => resolve(true));
    });
    if (!ok) return false;
    const bound = (server.address() as AddressInfo).port;
    this.listeners.get(`${address}:${bound}`)?.close();
    this.listeners.set(`${address}:${bound}`, server);
    this.host.log(`remote forward ${address}:${bound} listening on ${bindTo}:${bound}`);
    if (port !== 0) return true;
    const reply = Buffer.alloc(4);
    reply.writeUInt32BE(bound);
    return reply;
  }

  /** A connection to a remote forward: a forwarded-tcpip channel to the client, joined to it. */
  private forwarded(address: string, server: Server, sock: Socket): void {
    const port = (server.address() as AddressInfo).port;
    const fill = (m: Message): void => void m.addString(address).addInt(port).addString(sock.remoteAddress ?? '').addInt(sock.remotePort ?? 0);
    this.toClient('forwarded-tcpip', fill, sock, `remote forward ${address}:${port}`);
  }

  /** A channel of `kind` to the client for a connection to one of its remote forwards, joined to it. */
  private toClient(kind: string, fill: (m: Message) => void, sock: Socket, what: string): void {
    this.host.openToClient(kind, fill).then(
      (core) => {
        this.host.log(`[chan ${core.localId}] ${what}: connection from ${sock.remoteAddress ?? 'a local socket'}`);
        new SocketBridge(core, sock, (t) => this.host.log(`[chan ${core.localId}] ${t}`));
        sock.resume();
      },
      (e: Error) => {
        this.host.log(`${what}: the client refused the channel: ${e.message}`);
        sock.destroy();
      },
    );
  }

  /** Stops the listener of a forward (`address:port`, or `path:` and the socket path). */
  private cancel(key: string): boolean {
    const server = this.listeners.get(key);
    if (!server) return false;
    this.stop(key, server);
    this.host.log(`remote forward ${key.replace(/^path:/, '')} cancelled`);
    return true;
  }

  private stop(key: string, server: Server): void {
    server.close();
    this.listeners.delete(key);
    // A unix socket's file outlives its listener: remove it, as sshd does.
    if (key.startsWith('path:')) {
      try {
        unlinkSync(key.slice(5));
      } catch {
        // already gone
      }
    }
  }

  /** The connection ended: every listener stops (connections already carried go on). */
  close(): void {
    for (const [key, server] of [...this.listeners]) this.stop(key, server);
  }
}
