import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { connect as netConnect, isIP, Socket } from 'node:net';
import { endWithCutOff } from './streams';
import type { ByteStream } from './streams';
import { DEFAULT_LOG_CHANNEL, logTo } from '../../debug';
import { IOError, NoValidConnectionsError, SocketTimeout, SSHException } from '../../errors';
import { callback, mainDoorbell } from '../../bridge/worker-side';
import { connectForBridge, SocketBridge } from './socket-bridge';
import { ClientAuth } from '../../transport/auth-client';
import { DEFAULT_MAX_AUTH_TRIES, ServerAuth } from '../../transport/auth-server';
import type { ServerAuthPolicy } from '../../transport/auth-server';
import { ConnectionCore } from '../../transport/connection';
import type { ConnectionHandlers, IncomingOpen } from '../../transport/connection';
import { DISCONNECT, MSG, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED } from '../../transport/constants';
import { WireArena } from '../../transport/packet';
import { Session } from '../../transport/session';
import type { SessionOptions } from '../../transport/session';
import { Message } from '../../wire/message';
import type { PKey } from '../../keys';
import { announcedToProve, fillAnnouncement, HOSTKEYS_ANNOUNCE, HOSTKEYS_PROVE, proveHostKeys, verifyProofs } from '../../transport/hostkey-rotation';
import { WorkerChannel } from './channel';
import { track } from '../live';

/** What a server connection asks of its owner: ServerInterface's decisions, in the worker or
 * on the main thread. */
export interface ServerPolicy extends ServerAuthPolicy {
  /** An incoming channel open: an OPEN_* code (OPEN_SUCCEEDED accepts). */
  channelOpen(open: import('../../transport/connection').IncomingOpen): number | Promise<number>;
  /** A global request: false refuses, true or reply data accepts. */
  globalRequest(name: string, wantReply: boolean, msg: Message): boolean | Buffer | Promise<boolean | Buffer>;
  /** A request on one of our accepted channels (pty-req, exec, shell...): true accepts. */
  channelRequest(ch: WorkerChannel, type: string, wantReply: boolean, msg: Message): boolean | Promise<boolean>;
  /** The connection ended (after the last channel closed). */
  closed?(error: Error): void;
  /** The policy attaches its own sinks to accepted channels (no Transport.accept queue, no rings). */
  readonly ownsChannels?: boolean;
}

/** Server-side settings of a connection. */
export interface ServerSide {
  policy: ServerPolicy;
  /** Failed attempts before the connection is dropped (OpenSSH's MaxAuthTries, 6). */
  maxAuthTries?: number;
  /** Seconds a client has from connecting to authenticating (OpenSSH's LoginGraceTime, 120). */
  loginGraceTime?: number | null;
}
/** SSH_MSG_IGNORE with an empty string: the smallest packet that makes TCP send an ACK now. */
const IGNORE_ACK = Buffer.from([MSG.IGNORE, 0, 0, 0, 0]);

/**
 * Bytes a socket dialed for a transport reads into the shared buffer: the connection that takes
 * the socket sets `deliver`; bytes before that are copied into `early`.
 */
interface ReadBufferState {
  deliver: ((chunk: Buffer) => void) | null;
  early: Buffer[];
}
const kReadBuffer = Symbol('readBuffer');
/** A socket dial() made for a transport carries its read state under kReadBuffer. */
type DialedSocket = { [kReadBuffer]?: ReadBufferState };
/** Each socket read takes up to this much (Node's default allocates 64 KiB per read). */
const READ_BUFFER_SIZE = 256 * 1024;
/**
 * One read buffer for every dialed socket of the worker: libuv reads one socket at a time into
 * it and each read's bytes are consumed (or copied) before the callback returns, so a thousand
 * connections cost no more memory than one.
 */
let sharedReadBuffer: Buffer | null = null;

function readBuffer(state: ReadBufferState): { buffer: Buffer; callback(n: number, buf: Buffer): boolean } {
  return {
    buffer: (sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE)),
    callback(n, buf) {
      const chunk = buf.subarray(0, n);
      if (state.deliver) state.deliver(chunk);
      else state.early.push(Buffer.from(chunk));
      return true;
    },
  };
}

/**
 * Every address of `host`. A name that does not resolve is an IOError with the resolver's code
 * (Python's socket.gaierror is an OSError), not Node's bare `getaddrinfo ENOTFOUND`.
 */
/** How dial connects beyond host and port (ssh_config's AddressFamily, BindAddress, TCPKeepAlive). */
export interface DialOptions {
  /** Only addresses of this family (4 or 6); 0 or absent: any. */
  family?: number;
  /** The local address (and port) to bind before connecting. */
  localAddress?: string;
  localPort?: number;
  /** SO_KEEPALIVE on the socket. */
  keepAlive?: boolean;
}

async function resolve(host: string): Promise<Array<{ address: string; family: number }>> {
  try {
    return await lookup(host, { all: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOTFOUND' ? 'no such host' : code === 'EAI_AGAIN' ? 'temporary failure in name resolution' : (e as Error).message;
    throw new IOError(`cannot resolve host name ${JSON.stringify(host)}: ${why}`, { code, cause: e });
  }
}

/**
 * Whether a TCP socket's peer is this machine: a loopback address, or one of its own interfaces'
 * (the kernel loops those back too). Channels then pace their data from the start (FlightPacer).
 */
export function peerIsThisMachine(socket: ByteStream): boolean {
  if (!(socket instanceof Socket) || !socket.remoteAddress) return false;
  const a = socket.remoteAddress.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  if (a === '::1' || a.startsWith('127.')) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address.toLowerCase() === a));
}

/**
 * One SSH connection inside the worker: its socket, the transport Session, user auth and the
 * connection protocol. Writes are batched: every packet produced while handling one event goes
 * out in a single socket write (with TCP_NODELAY), which avoids Nagle and delayed-ACK stalls.
 */
export class WorkerConnection {
  readonly session: Session;
  readonly auth: ClientAuth;
  /** The server side of user auth (server connections only). */
  readonly serverAuth: ServerAuth | null = null;
  readonly conn: ConnectionCore;
  /** Channels the peer opened and we accepted (a client: x11 ones), until Transport.accept takes them. */
  private readonly accepted: WorkerChannel[] = [];
  private readonly acceptWaiters: Array<(ch: WorkerChannel | null) => void> = [];
  /**
   * Client: an x11-req was sent on this connection, so the server's "x11" channel opens are
   * accepted (and queued for Transport.accept, as Paramiko does without a handler). Before
   * that, they are refused like any other channel the server opens unasked.
   */
  x11Requested = false;
  /** Client: the main thread has a handler for x11 channels (else they wait for accept()). */
  x11Handler = false;
  /** Client: the main thread has a handler function for agent channels (Paramiko's form). */
  agentHandler = false;
  /**
   * Client: remote forwards the server accepted (tcpip-forward, RFC 4254 7.1), by
   * "address:port" as requested and bound. Only forwarded-tcpip channels for one of them are
   * accepted; `handler` says whether they go to the main thread's handler (through a callback)
   * or to Transport.accept.
   */
  readonly remoteForwards = new Map<string, { handler: boolean; connectTo?: [string, number] }>();
  /** forwardRemotePath: the server's socket paths we asked for, each with the local path its connections go to. */
  readonly remotePathForwards = new Map<string, string>();
  /** Forwarders (forwardLocalPort, forwardRemotePort, the agent proxy) by id: each entry stops one. */
  private readonly forwarders = new Map<number, () => void>();
  private nextForwarder = 1;
  /** The worker's id of this connection, for callbacks to the main thread. */
  transportId = -1;
  /**
   * Client: the local agent's socket once agent forwarding was asked on one of our channels;
   * until then the server's "auth-agent@openssh.com" opens are refused.
   */
  agentForwardSocket: string | null = null;
  /** Client: ask the server to prove the host keys it announces (OpenSSH's UpdateHostKeys). */
  updateHostKeys = false;
  /** Client: the announced host keys the server proved, as blobs (the exchange's own left out). */
  provenHostKeys: Buffer[] = [];
  private graceTimer: NodeJS.Timeout | null = null;
  readonly channels = new Map<number, WorkerChannel>();
  /** Channels whose rings got data during the current socket read (woken once at its end). */
  private readonly dirty = new Set<WorkerChannel>();
  closedError: Error | null = null;
  isClosed = false;
  /** Where log() writes: the connection's NODE_DEBUG section, or null when NODE_DEBUG leaves it out. */
  private logWriter = logTo(DEFAULT_LOG_CHANNEL);

  private pendingWrites: Buffer[] = [];
  /**
   * Sealed packets are written into this and reused once a flush leaves nothing in the socket's
   * queue. Only for a net.Socket, whose writableLength says when the kernel has the bytes (a
   * channel carrying a nested connection keeps what it is given).
   */
  private readonly arena: WireArena | null;
  private flushScheduled = false;
  private kexWaiters: Array<{ resolve(): void; reject(e: Error): void }> = [];
  private firstKexDone = false;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private lastSend = Date.now();
  /** Packets written so far (to see whether handling a read produced any). */
  private writeCount = 0;
  private lastReceive = Date.now();
  /** Server: its host keys (announced after a login, proved on request). */
  private hostKeys: PKey[] = [];

  constructor(
    readonly socket: ByteStream,
    options: SessionOptions,
    handlers: ConnectionHandlers = {},
    readonly server: ServerSide | null = null,
  ) {
    track('connection', this);
    socket.setNoDelay?.(true);
    this.arena = socket instanceof Socket ? new WireArena() : null;
    this.session = new Session(options, {
      write: (d) => this.write(d),
      message: (type, msg) => this.onMessage(type, msg),
      kexDone: (first) => this.onKexDone(first),
      kexRefused: (e) => {
        for (const w of this.kexWaiters.splice(0)) w.reject(e);
      },
      closed: (e) => this.onSessionClosed(e),
      log: (t) => this.log(t),
    });
    if (this.arena) {
      this.session.useWireArena(this.arena);
      // A queue that empties after a flush (an upload's usually does) frees the arena too,
      // unless packets sealed since wait for the next flush.
      const arena = this.arena;
      (socket as Socket).on('drain', () => {
        if ((socket as Socket).writableLength === 0 && this.pendingWrites.length === 0) arena.rewind();
      });
    }
    this.auth = new ClientAuth({
      send: (p) => this.session.send(p),
      sessionId: () => this.session.sessionId!,
      serverSigAlgs: () => this.session.serverSigAlgs,
      authenticated: () => this.session.setAuthenticated(),
    });
    const sendFilled = (length: number, fill: (into: Buffer) => void): void => this.session.sendFilled(length, fill);
    if (server) {
      this.serverAuth = new ServerAuth(
        {
          send: (p) => this.session.send(p),
          sessionId: () => this.session.sessionId!,
          authenticated: () => this.onServerAuthenticated(),
          disconnect: (reason, text) => this.disconnectWith(reason, text),
        },
        server.policy,
        server.maxAuthTries ?? DEFAULT_MAX_AUTH_TRIES,
      );
      const grace = server.loginGraceTime === undefined ? 120 : server.loginGraceTime;
      if (grace !== null && grace > 0) {
        this.graceTimer = setTimeout(() => {
          if (this.serverAuth?.authenticated || this.isClosed) return;
          this.disconnectWith(DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE, `the client did not authenticate within ${grace} s`);
        }, grace * 1000);
        this.graceTimer.unref();
      }
      const policy = server.policy;
      const hostKeys = (this.hostKeys = options.hostKeys ?? []);
      this.conn = new ConnectionCore((p) => this.session.send(p), {
        globalRequest: (name, wantReply, msg) =>
          name === HOSTKEYS_PROVE
            ? (proveHostKeys(msg, hostKeys, this.session.sessionId!, this.session.negotiated!.hostKey) ?? false)
            : policy.globalRequest(name, wantReply, msg),
        log: (t) => this.log(t),
        channelOpen: async (open) => {
          const code = await policy.channelOpen(open);
          if (code === 0 && !this.isClosed && !policy.ownsChannels) this.acceptChannel(open.channel);
          return code;
        },
      }, sendFilled);
    } else {
      const otherRequests = handlers.globalRequest ?? (() => false);
      this.conn = new ConnectionCore((p) => this.session.send(p), {
        globalRequest: (name, wantReply, msg) => (name === HOSTKEYS_ANNOUNCE ? this.hostKeysAnnounced(msg) : otherRequests(name, wantReply, msg)),
        channelOpen: handlers.channelOpen ?? ((open) => this.clientChannelOpen(open)),
        log: (t) => this.log(t),
      }, sendFilled);
    }
    const loopback = peerIsThisMachine(socket);
    // OpenSSH returns window every three packets (channel_check_window), client and server alike.
    this.conn.pacingHints = () => ({ loopback, smallStepPeer: /^SSH-2\.0-OpenSSH_/.test(this.session.remoteVersion ?? '') });
    const onBytes = (d: Buffer, transient: boolean): void => {
      this.lastReceive = Date.now();
      const writes = this.writeCount;
      this.session.receive(d, transient);
      this.scheduleWake();
      this.elicitAck(writes);
    };
    const reads = (socket as DialedSocket)[kReadBuffer];
    if (reads) {
      for (const d of reads.early.splice(0)) onBytes(d, false);
      reads.deliver = (d) => onBytes(d, true);
    } else {
      socket.on('data', (d: Buffer) => onBytes(d, false));
    }
    socket.on('error', (e: Error) => this.die(e instanceof SSHException ? e : new SSHException(`socket error: ${e.message}`, { cause: e })));
    socket.on('close', () => this.die(this.closedEarlyError()));
    socket.resume?.();
  }

  /**
   * Opens a TCP connection to every address of `host` in turn (Paramiko's connect loop). With
   * `forTransport`, the socket reads into the worker's shared read buffer (no allocation per read; the
   * session copies the unread tail of a packet) and only a WorkerConnection can take its bytes.
   */
  static async dial(host: string, port: number, timeoutSec: number | null, forTransport = false, how: DialOptions = {}): Promise<Socket> {
    const all = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolve(host);
    const addresses = how.family ? all.filter((a) => a.family === how.family) : all;
    if (!addresses.length) throw new IOError(`${host} has no IPv${how.family} address (asked for IPv${how.family} only)`, { code: 'EAI_ADDRFAMILY' });
    const errors = new Map<string, Error>();
    for (const a of addresses) {
      try {
        const reads: ReadBufferState = { deliver: null, early: [] };
        return await new Promise<Socket>((resolve, reject) => {
          const s = netConnect({
            host: a.address,
            port,
            family: a.family,
            ...(how.localAddress ? { localAddress: how.localAddress } : {}),
            ...(how.localPort ? { localPort: how.localPort } : {}),
            ...(how.keepAlive ? { keepAlive: true } : {}),
            ...(forTransport ? { onread: readBuffer(reads) } : {}),
          });
          if (forTransport) (s as DialedSocket)[kReadBuffer] = reads;
          const timer = timeoutSec === null ? null : setTimeout(() => {
            s.destroy();
            reject(new SocketTimeout(`connect to ${a.address} port ${port} timed out after ${timeoutSec} s`));
          }, timeoutSec * 1000);
          s.once('connect', () => {
            if (timer) clearTimeout(timer);
            s.removeAllListeners('error');
            resolve(s);
          });
          s.once('error', (e) => {
            if (timer) clearTimeout(timer);
            reject(e);
          });
        });
      } catch (e) {
        errors.set(`${a.address}:${port}`, e as Error);
      }
    }
    // A single address that timed out is a timeout, as in Paramiko; anything else lists them all.
    const only = errors.size === 1 ? errors.values().next().value : null;
    if (only instanceof SocketTimeout) throw only;
    throw new NoValidConnectionsError(errors);
  }

  // ---- output batching ----

  /**
   * Wakes the main thread for the data of every read in this event-loop turn at once: a futex
   * wake costs ~90 us of this thread's time on these VMs, and libuv delivers a fast stream as
   * many 64 KiB reads per turn.
   */
  private scheduleWake(): void {
    if (this.wakeScheduled || this.dirty.size === 0) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      for (const ch of this.dirty) ch.flushSignals();
      this.dirty.clear();
    });
  }
  private wakeScheduled = false;

  /**
   * The server may send a few messages that need no answer (OpenSSH's hostkeys-00 and DEBUG
   * right after auth) and then hold its reply to our pending request behind Nagle's algorithm
   * until our ACK, which the kernel delays by ~40 ms when we have nothing to send. Node cannot
   * set TCP_QUICKACK, so when a read produced no packet of ours while we await an answer on the
   * connection layer, a tiny IGNORE carries the ACK at once.
   */
  private elicitAck(writesBefore: number): void {
    if (this.writeCount !== writesBefore || this.isClosed || this.session.inKex || !this.session.sessionId) return;
    // Never during authentication: with zlib@openssh.com the server starts decompressing when
    // it sends USERAUTH_SUCCESS, so a packet of ours sent just before we read it (after, say,
    // the EXT_INFO that RFC 8308 lets precede it) would arrive uncompressed.
    if (!this.auth.authenticated || !this.conn.awaitingReply) return;
    this.session.send(IGNORE_ACK);
  }

  private write(data: Buffer): void {
    this.writeCount++;
    if (this.socket.destroyed) return;
    this.pendingWrites.push(data);
    this.lastSend = Date.now();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pendingWrites;
    this.pendingWrites = [];
    if (!batch.length || this.socket.destroyed) return;
    if (batch.length === 1) {
      this.socket.write(batch[0]);
    } else if (this.socket.cork && this.socket.uncork) {
      // One writev of the whole batch: no copy into a concatenated buffer.
      this.socket.cork();
      for (const b of batch) this.socket.write(b);
      this.socket.uncork();
    } else {
      this.socket.write(Buffer.concat(batch));
    }
    if (this.arena && (this.socket as Socket).writableLength === 0) this.arena.rewind();
  }

  /**
   * Client: the server's hostkeys-00@openssh.com (no reply wanted). With updateHostKeys, the
   * keys other than the exchange's are to be proved (hostkeys-prove-00); those whose signatures
   * verify are kept for the main thread (Transport.getProvenHostKeys). A failed proof keeps none.
   */
  private hostKeysAnnounced(msg: Message): boolean {
    const exchangeKey = this.session.remoteHostKey;
    if (!this.updateHostKeys || !exchangeKey) return false;
    const blobs = announcedToProve(msg, exchangeKey.asBytes());
    if (blobs === null) {
      this.log('host key announcement malformed: ignored');
      return false;
    }
    this.log(`the server announced ${blobs.length + 1} host key(s); asking it to prove ${blobs.length}`);
    if (!blobs.length) {
      // Only the exchange's key: nothing to prove, but keys on record beside it are gone.
      this.announceProven([], exchangeKey.asBytes());
      return false;
    }
    const sessionId = this.session.sessionId!;
    const hostKey = this.session.negotiated!.hostKey;
    this.conn
      .globalRequest(HOSTKEYS_PROVE, true, (m) => {
        for (const b of blobs) m.addString(b);
      })
      .then((reply) => {
        if (!reply) {
          this.log('the server refused to prove its host keys');
          return;
        }
        const keys = verifyProofs(reply, blobs, sessionId, hostKey);
        this.provenHostKeys = keys.map((k) => k.asBytes());
        this.log(`the server proved ${keys.length} host key(s): ${keys.map((k) => `${k.getName()} ${k.fingerprint}`).join(', ')}`);
        this.announceProven(this.provenHostKeys, exchangeKey.asBytes());
      })
      .catch((e: Error) => this.log(`host key update abandoned: ${e.message}`));
    return false;
  }

  /**
   * Tells the main thread what the server offers now, its proven keys and the exchange's, so an
   * SSHClient records the new ones and drops those on record it no longer offers, at once, as
   * OpenSSH does on the proof (a script that never closes still gets them). No listener there:
   * getProvenHostKeys has them.
   */
  private announceProven(keys: Buffer[], exchange: Buffer): void {
    callback('hostKeysProven', { id: this.transportId, keys, exchange }).catch((e: Error) => this.log(`host key update not recorded: ${e.message}`));
  }

  // ---- events ----

  private onMessage(type: number, msg: Message): void {
    if (this.serverAuth) {
      if (this.serverAuth.handle(type, msg)) return;
      // RFC 4252 section 6: nothing of the connection layer before authentication.
      if (!this.serverAuth.authenticated) {
        this.disconnectWith(DISCONNECT.PROTOCOL_ERROR, `message ${type} before authentication`);
        return;
      }
    } else if (this.auth.handle(type, msg)) return;
    if (this.conn.handle(type, msg)) return;
    this.session.sendUnimplemented();
  }

  // ---- server ----

  private onServerAuthenticated(): void {
    this.session.setAuthenticated();
    // As sshd: every host key, for clients that keep known_hosts up to date (UpdateHostKeys).
    const hostKeys = this.hostKeys;
    if (hostKeys.length) void this.conn.globalRequest(HOSTKEYS_ANNOUNCE, false, (m) => fillAnnouncement(m, hostKeys)).catch(() => undefined);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  /**
   * Client: a channel the server opens. Only "x11" after our x11-req (RFC 4254 6.3.2); the
   * originator's address and port travel with the channel to Transport.accept.
   */
  private clientChannelOpen(open: IncomingOpen): number {
    if (open.kind === 'forwarded-tcpip') return this.forwardedOpen(open);
    if (open.kind === 'forwarded-streamlocal@openssh.com') return this.forwardedPathOpen(open);
    if (open.kind === 'auth-agent@openssh.com') return this.agentOpen(open);
    if (open.kind !== 'x11' || !this.x11Requested) return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
    const origin: [string, number] = [open.msg.getText(), open.msg.getInt()];
    if (this.x11Handler) this.toHandler('x11Channel', open, origin);
    else this.acceptChannel(open.channel, origin);
    return OPEN_SUCCEEDED;
  }

  /**
   * A channel the server opened, handed to the main thread's handler by callback. If no handler
   * runs (the script ended, or the handler threw), the channel is of no use and is closed.
   */
  private toHandler(
    name: 'portForward' | 'x11Channel' | 'agentChannel',
    open: IncomingOpen,
    origin: [string, number] | null,
    forwardedTo: [string, number] | null = null,
    extra: Record<string, unknown> = {},
  ): void {
    const ch = this.adopt(open.channel);
    ch.origin = origin;
    ch.forwardedTo = forwardedTo;
    callback(name, { id: this.transportId, chan: ch.info(), origin, ...extra }).catch((e: Error) => {
      this.log(`[chan ${open.channel.localId}] ${open.kind} handler failed: ${e.message}`);
      ch.close();
    });
  }

  /** A program on the server talks to our agent (we asked for agent forwarding): joined to it here. */
  private agentOpen(open: IncomingOpen): number {
    if (this.agentHandler) {
      this.log(`[chan ${open.channel.localId}] agent connection from the server, to the handler`);
      this.toHandler('agentChannel', open, null);
      return OPEN_SUCCEEDED;
    }
    const path = this.agentForwardSocket;
    if (!path) return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
    const id = open.channel.localId;
    this.log(`[chan ${id}] agent connection from the server, forwarded to ${path}`);
    new SocketBridge(open.channel, connectForBridge({ path, allowHalfOpen: true }), (t) => this.log(`[chan ${id}] agent: ${t}`));
    return OPEN_SUCCEEDED;
  }

  /**
   * A connection to one of our remote forwards (RFC 4254 7.2: the address and port that were
   * connected, then the originator's). Refused unless we asked for that forward. With a
   * handler the main thread gets it by callback, else it waits for Transport.accept.
   */
  private forwardedOpen(open: IncomingOpen): number {
    const server: [string, number] = [open.msg.getText(), open.msg.getInt()];
    const origin: [string, number] = [open.msg.getText(), open.msg.getInt()];
    // The server names the address as we asked for it (OpenSSH does); failing that, the one
    // forward of that port.
    let key = `${server[0]}:${server[1]}`;
    if (!this.remoteForwards.has(key)) {
      const same = [...this.remoteForwards.keys()].filter((k) => k.endsWith(`:${server[1]}`));
      if (same.length === 1) key = same[0];
    }
    const fwd = this.remoteForwards.get(key);
    if (!fwd) return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
    this.log(`connection to remote forward ${server[0]}:${server[1]} from ${origin[0]}:${origin[1]}`);
    if (fwd.connectTo) {
      // forwardRemotePort: joined here to a new connection to its destination.
      const [host, port] = fwd.connectTo;
      const id = open.channel.localId;
      new SocketBridge(open.channel, connectForBridge({ host, port, allowHalfOpen: true }), (t) => this.log(`[chan ${id}] to ${host}:${port}: ${t}`));
      return OPEN_SUCCEEDED;
    }
    if (!fwd.handler) {
      this.acceptChannel(open.channel, origin, server);
      return OPEN_SUCCEEDED;
    }
    this.toHandler('portForward', open, origin, server, { server, forward: key });
    return OPEN_SUCCEEDED;
  }

  /**
   * A connection to one of our forwardRemotePath sockets (OpenSSH's PROTOCOL 2.4: the socket
   * path, then a reserved string): joined here to a new connection to its local socket.
   */
  private forwardedPathOpen(open: IncomingOpen): number {
    const path = open.msg.getText();
    const dest = this.remotePathForwards.get(path);
    if (dest === undefined) return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
    const id = open.channel.localId;
    this.log(`[chan ${id}] connection to remote forward ${path}, to ${dest}`);
    new SocketBridge(open.channel, connectForBridge({ path: dest, allowHalfOpen: true }), (t) => this.log(`[chan ${id}] to ${dest}: ${t}`));
    return OPEN_SUCCEEDED;
  }

  /** A channel the peer opened and we accepted: it waits for Transport.accept. */
  private acceptChannel(core: import('../../transport/channel').ChannelCore, origin: [string, number] | null = null, forwardedTo: [string, number] | null = null): void {
    const ch = this.adopt(core);
    ch.origin = origin;
    ch.forwardedTo = forwardedTo;
    // Server: the client's requests on it (exec, pty-req...) go to the policy. A client refuses
    // whatever the server asks on a channel it opened (no handler).
    const policy = this.server?.policy;
    if (policy) ch.requestHandler = (type, wantReply, msg) => policy.channelRequest(ch, type, wantReply, msg);
    const w = this.acceptWaiters.shift();
    if (w) w(ch);
    else this.accepted.push(ch);
  }

  /** Transport.accept: the next accepted channel, or null after `timeoutSec` or when the connection ends. */
  nextChannel(timeoutSec: number | null): Promise<WorkerChannel | null> {
    const ready = this.accepted.shift();
    if (ready) return Promise.resolve(ready);
    if (this.isClosed || timeoutSec === 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = timeoutSec === null ? null : setTimeout(() => {
        const i = this.acceptWaiters.indexOf(done);
        if (i >= 0) this.acceptWaiters.splice(i, 1);
        resolve(null);
      }, timeoutSec * 1000);
      const done = (ch: WorkerChannel | null) => {
        if (timer) clearTimeout(timer);
        resolve(ch);
      };
      this.acceptWaiters.push(done);
    });
  }

  /** Whether this is the server end. */
  get isServer(): boolean {
    return this.serverAuth !== null;
  }

  /** Authenticated (either role). */
  get authenticated(): boolean {
    return this.serverAuth ? this.serverAuth.authenticated : this.auth.authenticated;
  }

  /** Why the peer's close ends us: before its identification, it was probably not SSH. */
  private closedEarlyError(): SSHException {
    if (this.session.remoteVersion !== null) return new SSHException('connection closed by the peer (EOF)');
    if (this.isServer) return new SSHException('the client closed the connection before its SSH identification');
    const said = this.session.preBanner[0];
    return new SSHException(
      `the server closed the connection without an SSH identification${said ? ` (it sent ${JSON.stringify(said.slice(0, 60))})` : ''}: is this an SSH server?`,
    );
  }

  /** Fails the connection if the server's identification line has not come within `seconds`. */
  expectBanner(seconds: number | null): void {
    if (seconds === null) return;
    this.bannerTimer = setTimeout(() => {
      if (this.session.remoteVersion === null && !this.isClosed) {
        const peer = this.isServer ? 'client' : 'server';
        this.die(new SSHException(`Error reading SSH protocol banner: no identification from the ${peer} within ${seconds} s`));
      }
    }, seconds * 1000);
    this.bannerTimer.unref();
  }
  /** Pending until the first key exchange or the end: a timer holds the connection it names. */
  private bannerTimer: NodeJS.Timeout | null = null;

  private onKexDone(first: boolean): void {
    if (first) {
      this.firstKexDone = true;
      if (this.bannerTimer) clearTimeout(this.bannerTimer);
      this.bannerTimer = null;
      const key = this.session.remoteHostKey;
      if (key) this.log(`server host key ${key.getName()} ${key.fingerprint}`);
    } else this.log('key re-exchange done: new keys in use');
    for (const w of this.kexWaiters.splice(0)) w.resolve();
  }

  /** Resolves when the first key exchange (or the current rekey) has completed. */
  waitKex(timeoutSec: number | null): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.firstKexDone && !this.session.inKex) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer =
        timeoutSec === null
          ? null
          : setTimeout(() => {
              const err = new SSHException(`key exchange did not complete within ${timeoutSec} s`);
              reject(err);
              this.die(err);
            }, timeoutSec * 1000);
      this.kexWaiters.push({
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  private onSessionClosed(error: Error | null): void {
    this.flush();
    this.die(error ?? this.closingReason ?? new SSHException('SSH session closed'));
  }

  /** Why we are disconnecting, for the error the connection ends with (and the server's log). */
  private closingReason: Error | null = null;

  /** Sends DISCONNECT with `text`, and ends the connection with it as the error. */
  disconnectWith(reason: number, text: string): void {
    this.closingReason ??= new SSHException(text);
    this.session.disconnect(reason, text);
  }

  /** Ends everything: socket, waiters, channels. Idempotent. */
  die(error: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closedError = error;
    this.log(`connection closed: ${error.message}`);
    for (const stop of this.forwarders.values()) stop();
    this.forwarders.clear();
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.bannerTimer) clearTimeout(this.bannerTimer);
    for (const w of this.acceptWaiters.splice(0)) w(null);
    this.flush();
    // A peer that does not close its end is cut off after a second.
    endWithCutOff(this.socket, 1000);
    for (const w of this.kexWaiters.splice(0)) w.reject(error);
    this.auth.abort(error);
    this.conn.abort(error);
    this.server?.policy.closed?.(error);
  }

  /** Registers a forwarder's stop; returns its id. All stop when the connection ends. */
  addForwarder(stop: () => void): number {
    // A listener that finished starting after the connection ended would outlive it.
    if (this.isClosed) {
      stop();
      throw new SSHException('the connection ended before the forward was listening');
    }
    const id = this.nextForwarder++;
    this.forwarders.set(id, stop);
    return id;
  }

  /** Stops one forwarder (a no-op if it is gone). */
  stopForwarder(id: number): void {
    const stop = this.forwarders.get(id);
    this.forwarders.delete(id);
    stop?.();
  }

  /**
   * Logs to the connection's NODE_DEBUG section (Paramiko's log channel), each line naming the
   * peer. A no-op unless NODE_DEBUG names the section.
   */
  log(text: string): void {
    if (!this.logWriter) return;
    const peer = this.socket.remoteAddress ? `${this.socket.remoteAddress}:${this.socket.remotePort ?? 0}` : 'no address';
    this.logWriter(`[${peer}] ${text}`);
  }

  /** Paramiko's set_log_channel: the NODE_DEBUG section this connection logs to. */
  setLogChannel(name: string): void {
    this.logWriter = logTo(name);
  }

  /**
   * Paramiko's close(): DISCONNECT, then the socket closes. What the main thread wrote on a
   * channel before (in its ring, not sent yet) goes out first, as far as the peer's window
   * allows: Paramiko's send() has put it on the socket by then.
   */
  close(): void {
    if (this.isClosed) return;
    for (const ch of this.channels.values()) ch.flushNow();
    this.session.disconnect(DISCONNECT.BY_APPLICATION, this.isServer ? 'closed by the server' : 'closed by the client');
  }

  /** Channel bookkeeping: the worker side of a newly open channel. */
  adopt(core: import('../../transport/channel').ChannelCore): WorkerChannel {
    const ch = new WorkerChannel(
      core,
      mainDoorbell(),
      (c) => this.channels.delete(c.core.localId),
      (c) => this.dirty.add(c),
      (t) => this.log(`[chan ${core.localId}] ${t}`),
    );
    this.log(
      `[chan ${core.localId}] ${core.kind} channel open (peer's number ${core.remoteId}; window ${core.windowSize} in, ${core.remoteWindow} out; max packet ${core.maxPacket} in, ${core.remoteMaxPacket} out)`,
    );
    // Events that arrived before this sink (replayed by the constructor) wake the reader now.
    ch.flushSignals();
    this.dirty.delete(ch);
    this.channels.set(core.localId, ch);
    return ch;
  }

  /**
   * Paramiko's set_keepalive: a global request after `interval` s without traffic. Beyond
   * Paramiko, the request wants a reply (any reply, even a refusal, shows the peer is alive), and
   * after `countMax` unanswered ones the connection is declared dead, as OpenSSH's
   * ServerAliveCountMax does; 0 turns that check off.
   */
  setKeepalive(intervalSec: number, countMax = 3): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    if (intervalSec <= 0) return;
    const ms = intervalSec * 1000;
    let unanswered = 0;
    this.keepaliveTimer = setInterval(() => {
      if (this.isClosed) return;
      // As OpenSSH's ServerAliveInterval: probe after `interval` s with nothing received.
      if (Date.now() - this.lastReceive < ms) {
        unanswered = 0;
        return;
      }
      if (Date.now() - this.lastSend < ms && unanswered > 0) return;
      if (countMax > 0 && unanswered >= countMax) {
        this.die(new SSHException(`the peer did not answer ${unanswered} keepalives in ${(unanswered * intervalSec).toFixed(1)} s: connection lost`));
        return;
      }
      unanswered++;
      void this.conn.globalRequest('keepalive@openssh.com', countMax > 0).catch(() => undefined);
      this.lastSend = Date.now();
    }, Math.max(50, ms / 4));
    this.keepaliveTimer.unref();
  }

  sendIgnore(bytes: number): void {
    this.session.send(new Message().addByte(MSG.IGNORE).addString(Buffer.alloc(bytes)).asBytes());
  }
}
