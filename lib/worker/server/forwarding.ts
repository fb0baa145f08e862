/**
 * Forwarding for one connection of the embedded server, as sshd's AllowTcpForwarding and
 * AllowStreamLocalForwarding with GatewayPorts no: direct-tcpip channels (`ssh -L`, `-D`, `-J`
 * and our own forwardLocalPort) connect from here to the destination they name; tcpip-forward
 * requests (`ssh -R`) listen on the loopback address and open a forwarded-tcpip channel back to
 * the client per connection. The same for unix sockets (OpenSSH's streamlocal channels).
 */
import { unlinkSync } from 'node:fs';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { ChannelCore } from '../../transport/channel';
import type { IncomingOpen } from '../../transport/connection';
import { OPEN_FAILED_CONNECT_FAILED, OPEN_SUCCEEDED } from '../../transport/constants';
import type { Message } from '../../wire/message';
import { bridgeListener } from '../ssh/listeners';
import { connectForBridge, SocketBridge } from '../ssh/socket-bridge';

/** How a forwarding connection reaches the client: a new channel toward it, and a log line. */
export interface ForwardingHost {
  openToClient(kind: string, fill: (m: Message) => void): Promise<ChannelCore>;
  log(line: string): void;
}

export class ServerForwarding {
  /** Remote forward listeners: `address:port` as the client asked, or `path:` and a socket path. */
  private readonly listeners = new Map<string, Server>();
  /** The connection ended (close): listeners that finish starting after it are closed at once. */
  private closed = false;

  constructor(private readonly host: ForwardingHost) {}

  /** A direct-tcpip open (RFC 4254 7.2): connects to its destination; the code to answer with. */
  directTcpip(open: IncomingOpen): Promise<number> {
    const host = open.msg.getText();
    const port = open.msg.getInt();
    const origin = `${open.msg.getText()}:${open.msg.getInt()}`;
    return this.connectChannel(open, connectForBridge({ host, port, allowHalfOpen: true }), `forward from ${origin} to ${host}:${port}`);
  }

  /** A direct-streamlocal@openssh.com open: connects to the unix socket it names. */
  directStreamlocal(open: IncomingOpen): Promise<number> {
    const path = open.msg.getText();
    return this.connectChannel(open, connectForBridge({ path, allowHalfOpen: true }), `forward to ${path}`);
  }

  /** Once `sock` connects, the channel is joined to it; OPEN_FAILED_CONNECT_FAILED if it cannot. */
  private async connectChannel(open: IncomingOpen, sock: Socket, what: string): Promise<number> {
    const connected = await new Promise<boolean>((resolve) => {
      sock.once('connect', () => resolve(true));
      sock.once('error', (e: Error) => {
        this.host.log(`${what} failed: ${e.message}`);
        // As sshd's "connect failed: Connection refused": the errno, not the address (the client named it).
        open.reason = `connect failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`;
        resolve(false);
      });
    });
    if (!connected) {
      sock.destroy();
      return OPEN_FAILED_CONNECT_FAILED;
    }
    const id = open.channel.localId;
    this.host.log(`[chan ${id}] ${what}`);
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
    // The socket path, then a reserved string (OpenSSH's PROTOCOL 2.4).
    const server = await this.listenForClient(`remote forward ${path}`, [path], () =>
      this.host.openToClient('forwarded-streamlocal@openssh.com', (m) => void m.addString(path).addString('')),
    );
    if (!server) return false;
    this.listeners.set(`path:${path}`, server);
    this.host.log(`remote forward listening on ${path}`);
    return true;
  }

  private async listen(address: string, port: number): Promise<boolean | Buffer> {
    if (port > 65535) return false;
    // GatewayPorts no: whatever the address, only this machine may connect.
    const bindTo = address === '::1' ? '::1' : '127.0.0.1';
    let bound = port;
    const server = await this.listenForClient(`remote forward ${address}:${port}`, [port, bindTo], (sock) =>
      this.host.openToClient('forwarded-tcpip', (m) => void m.addString(address).addInt(bound).addString(sock.remoteAddress ?? '').addInt(sock.remotePort ?? 0)),
    );
    if (!server) return false;
    bound = (server.address() as AddressInfo).port;
    this.listeners.get(`${address}:${bound}`)?.close();
    this.listeners.set(`${address}:${bound}`, server);
    this.host.log(`remote forward ${address}:${bound} listening on ${bindTo}:${bound}`);
    if (port !== 0) return true;
    const reply = Buffer.alloc(4);
    reply.writeUInt32BE(bound);
    return reply;
  }

  /**
   * A listener whose connections become channels `open` makes toward the client; null (logged)
   * if it cannot listen, or if the connection ended while it was starting (it is closed then:
   * nobody would ever stop it).
   */
  private async listenForClient(what: string, where: [number, string] | [string], open: (sock: Socket) => Promise<ChannelCore>): Promise<Server | null> {
    let server: Server;
    try {
      server = await bridgeListener(this.host.log, what, where, open);
    } catch (e) {
      this.host.log(`${what} refused: ${(e as Error).message}`);
      return null;
    }
    if (this.closed) {
      server.close();
      if (typeof where[0] === 'string') this.unlinkQuietly(where[0]);
      this.host.log(`${what}: the connection ended before it was listening; closed`);
      return null;
    }
    return server;
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
    if (key.startsWith('path:')) this.unlinkQuietly(key.slice(5));
  }

  private unlinkQuietly(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }

  /** The connection ended: every listener stops (connections already carried go on), and any still starting when it starts. */
  close(): void {
    this.closed = true;
    for (const [key, server] of [...this.listeners]) this.stop(key, server);
  }
}
