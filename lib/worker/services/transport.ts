import type { AddressInfo, Socket } from 'node:net';
import { SocketTimeout, SSHException } from '../../errors';
import { PKey } from '../../keys';
import type { Service, CallContext } from '../../bridge/worker-side';
import { applyDisabled, defaultPreferences, SERVER_SIG_ALGS, serverDefaultPreferences, validatePreferences } from '../../transport/algorithms';
import { moduliChooser } from '../../transport/kex/moduli';
import { BridgePolicy } from '../ssh/bridge-policy';
import { mainDoorbell } from '../../bridge/worker-side';
import type { AlgorithmPreferences, DisabledAlgorithms } from '../../transport/algorithms';
import type { AuthOutcome } from '../../transport/auth-client';
import { printable } from '../../printable';
import { Message } from '../../wire/message';
import { SocksHandshake } from '../../wire/socks';
import { agentProxyListener, bridgeListener, listenOn } from '../ssh/listeners';
import { agentSign } from './agent';
import { WorkerConnection, type DialOptions } from '../ssh/connection';
import type { WorkerChannel } from '../ssh/channel';
import { ChannelStream, ProcessStream, RingStream } from '../ssh/streams';
import { SharedRing } from '../../bridge/ring';
import { SocketBridge } from '../ssh/socket-bridge';
import { DEFAULT_MAX_PACKET_SIZE, DEFAULT_WINDOW_SIZE } from '../../transport/channel';
import { takeSocket } from './sockets';
import type { ByteStream } from '../ssh/streams';

/** Options of a client connection, as the main thread sends them. */
export interface ConnectArgs {
  host: string;
  port: number;
  /** Run over a channel of another connection (jump host) instead of TCP. */
  via?: { id: number; chan: number };
  /** Run over a shell command's stdin/stdout (ProxyCommand) instead of TCP. */
  proxyCommand?: string;
  /** Run over a socket the script opened (the `sockets` service's id). */
  socketId?: number;
  /** Run over a socket-like object of the main thread, through two rings its pump serves. */
  sockRings?: SockRings;
  /** TCP connect timeout (seconds, null = OS default). */
  timeout: number | null;
  /** Time for the server's identification and the first key exchange (Paramiko's 15 s). */
  handshakeTimeout: number | null;
  /** Time for the server's identification line alone (Paramiko's banner_timeout, 15 s). */
  bannerTimeout?: number | null;
  preferences?: Partial<AlgorithmPreferences>;
  disabledAlgorithms?: DisabledAlgorithms;
  compress?: boolean;
  localVersion?: string;
  rekeyBytes?: number;
  rekeyPackets?: number;
  rekeySeconds?: number;
  /** How a host and port are dialed: address family, local address, TCP keepalive. */
  dial?: DialOptions;
  /** Ask the server to prove the host keys it announces (OpenSSH's UpdateHostKeys). */
  updateHostKeys?: boolean;
  /** NODE_DEBUG section to log to (Paramiko's log channel), and whether to hex-dump packets. */
  logChannel?: string;
  hexdump?: boolean;
}

/** The rings of a socket-like object's pump (lib/api/sock-pump.ts): `id` names it for sockFailed. */
export interface SockRings {
  id: number;
  /** This thread writes what the connection sends; the pump hands it to `sock.send`. */
  toMain: SharedArrayBuffer;
  /** The pump writes what `sock.recv` gave. */
  fromMain: SharedArrayBuffer;
  /** How logs name the peer (the object's class). */
  label: string;
}

/** Streams over main-thread socket-like objects, by pump id, while open. */
const ringStreams = new Map<number, RingStream>();

function ringStream(r: SockRings): RingStream {
  // What the connection writes wakes a main thread blocked in a call, so its pump sends it.
  const s = new RingStream(SharedRing.fromShared(r.toMain, { doorbell: mainDoorbell() }), SharedRing.fromShared(r.fromMain), r.label);
  ringStreams.set(r.id, s);
  s.once('close', () => ringStreams.delete(r.id));
  return s;
}

/** Options of a server connection (Transport.startServer), as the main thread sends them. */
export interface StartServerArgs {
  /** The accepted socket (the `sockets` service's id), or a socket-like object's rings. */
  socketId?: number;
  sockRings?: SockRings;
  /** Private host keys, OpenSSH format. */
  hostKeys: string[];
  preferences?: Partial<AlgorithmPreferences>;
  disabledAlgorithms?: DisabledAlgorithms;
  compress?: boolean;
  localVersion?: string;
  /** Text of an OpenSSH moduli file (group exchange), or null for the built-in groups. */
  moduli?: string | null;
  maxAuthTries?: number;
  loginGraceTime?: number | null;
  handshakeTimeout: number | null;
  bannerTimeout?: number | null;
  /** Paramiko's start_server(event): set (word 0 to 1, main thread woken) when negotiation ends. */
  event?: SharedArrayBuffer | null;
  rekeyBytes?: number;
  rekeyPackets?: number;
  rekeySeconds?: number;
  /** How the main thread finds this transport's ServerInterface in callbacks. */
  callbackKey: number;
  logChannel?: string;
  hexdump?: boolean;
}


/** Sets a main-thread Event (an Int32 flag in shared memory) and wakes the main thread. */
function setSharedEvent(sab: SharedArrayBuffer | null | undefined): void {
  if (!sab) return;
  Atomics.store(new Int32Array(sab), 0, 1);
  const bell = mainDoorbell();
  Atomics.add(bell.array, bell.index, 1);
  Atomics.notify(bell.array, bell.index);
}

const connections = new Map<number, WorkerConnection>();
let nextId = 1;

function conn(id: number): WorkerConnection {
  const c = connections.get(id);
  if (!c) throw new SSHException('this transport is closed or was never started');
  if (c.isClosed) throw c.closedError ?? new SSHException('SSH session not active');
  return c;
}

/** The live connection with this id (other services open channels on it). */
export function connectionOf(id: number): WorkerConnection {
  return conn(id);
}

function chan(id: number, chanId: number): WorkerChannel {
  const c = connections.get(id);
  const ch = c?.channels.get(chanId);
  if (!ch) throw new SSHException('channel is closed');
  return ch;
}

/** Runs `p` against the caller's deadline: SocketTimeout when it runs out. */
function withDeadline<T>(p: Promise<T>, ctx: CallContext, what: string): Promise<T> {
  const left = ctx.remaining();
  if (left === null) return p;
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new SocketTimeout(`${what} timed out`)), left * 1000);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function outcome(o: AuthOutcome): AuthOutcome {
  return { success: o.success, partial: o.partial, allowed: o.allowed };
}

function info(c: WorkerConnection) {
  const s = c.session;
  return {
    active: !c.isClosed,
    authenticated: c.authenticated,
    username: c.serverAuth ? c.serverAuth.username : c.auth.username,
    banner: c.serverAuth ? null : c.auth.banner,
    remoteVersion: s.remoteVersion,
    localVersion: s.localVersion,
    sessionId: s.sessionId,
    negotiated: s.negotiated,
    strictKex: s.strict,
    hostKey: s.remoteHostKey ? s.remoteHostKey.asBytes() : null,
    serverSigAlgs: s.serverSigAlgs,
    peer: [c.socket.remoteAddress ?? 'unknown', c.socket.remotePort ?? 0] as [string, number],
    error: c.closedError ? c.closedError.message : null,
  };
}

/** Encodes the fields of a session channel request (RFC 4254 section 6). */
function fillRequest(type: string, a: Record<string, unknown>): ((m: Message) => void) | undefined {
  switch (type) {
    case 'exec':
      return (m) => m.addString(a.command as string | Buffer);
    case 'subsystem':
      return (m) => m.addString(a.name as string);
    case 'env':
      return (m) => m.addString(a.name as string).addString(a.value as string);
    case 'pty-req':
      return (m) =>
        m.addString(a.term as string).addInt(a.width as number).addInt(a.height as number)
          .addInt(a.widthPixels as number).addInt(a.heightPixels as number).addString((a.modes as Buffer) ?? Buffer.alloc(0));
    case 'window-change':
      return (m) => m.addInt(a.width as number).addInt(a.height as number).addInt(a.widthPixels as number).addInt(a.heightPixels as number);
    case 'signal':
      return (m) => m.addString(a.signal as string);
    case 'break':
      return (m) => m.addInt(a.msec as number);
    case 'x11-req':
      return (m) => m.addBoolean(a.singleConnection as boolean).addString(a.protocol as string).addString(a.cookie as string).addInt(a.screen as number);
    case 'shell':
    case 'auth-agent-req@openssh.com':
      return undefined;
    default:
      throw new SSHException(`unknown channel request type ${JSON.stringify(type)}`);
  }
}

/** The byte stream a connection runs over: TCP, a jump host's channel, or a ProxyCommand. */
async function openStream(a: ConnectArgs): Promise<ByteStream> {
  if (a.via) {
    const parent = conn(a.via.id);
    const ch = parent.channels.get(a.via.chan);
    if (!ch || ch.core.state !== 'open') throw new SSHException('the channel to tunnel through is not open');
    // The channel now belongs to the nested connection: its rings are no longer fed, and what
    // arrived before (the server's identification, usually) goes to the new owner first.
    const early = ch.takeOver();
    return new ChannelStream(ch.core, a.host, a.port, early);
  }
  if (a.proxyCommand !== undefined) return new ProcessStream(a.proxyCommand);
  if (a.socketId !== undefined) return takeSocket(a.socketId);
  if (a.sockRings) return ringStream(a.sockRings);
  return WorkerConnection.dial(a.host, a.port, a.timeout, true, a.dial);
}

/** Applies the log options of a connect or startServer call, before the first line is logged. */
function setLogging(c: WorkerConnection, a: { logChannel?: string; hexdump?: boolean }, mode: string): void {
  if (a.logChannel) c.setLogChannel(a.logChannel);
  c.session.hexdump = Boolean(a.hexdump);
  c.log(`starting (${mode} mode)`);
}

/** Runs an auth attempt and logs its outcome (an error too, which is rethrown). */
async function loggedAuth(c: WorkerConnection, method: string, username: string, attempt: Promise<AuthOutcome>): Promise<AuthOutcome> {
  try {
    const o = await attempt;
    if (o.success) c.log(`authentication (${method}) as ${username} successful`);
    else if (o.partial) c.log(`authentication (${method}) as ${username}: partial success, continue with ${o.allowed.join(',')}`);
    else c.log(`authentication (${method}) as ${username} failed; the server allows ${o.allowed.join(',') || 'nothing more'}`);
    return outcome(o);
  } catch (e) {
    c.log(`authentication (${method}) as ${username}: ${(e as Error).message}`);
    throw e;
  }
}

/**
 * Asks the server to listen on `address:port` (tcpip-forward, RFC 4254 7.1) and registers what
 * to do with its connections; returns the port bound (sent back only when 0 was asked).
 */
async function remoteForward(c: WorkerConnection, ctx: CallContext, address: string, port: number, use: { handler: boolean; connectTo?: [string, number] }): Promise<number> {
  const r = await withDeadline(c.conn.globalRequest('tcpip-forward', true, forwardFields(address, port)), ctx, 'port forward request');
  if (!r) throw new SSHException('TCP forwarding request denied');
  const bound = port === 0 ? r.getInt() : port;
  c.remoteForwards.set(`${address}:${bound}`, use);
  c.log(`remote forward ${address}:${bound} granted${use.connectTo ? ` -> ${use.connectTo[0]}:${use.connectTo[1]}` : ''}`);
  return bound;
}

/** The fields of tcpip-forward and cancel-tcpip-forward. */
function forwardFields(address: string, port: number): (m: Message) => void {
  return (m) => void m.addString(address).addInt(port);
}

/**
 * One connection to a SOCKS forward: the handshake, then a direct-tcpip channel to the
 * destination it names (the client's address as the originator), joined to the socket.
 */
function socksConnection(c: WorkerConnection, sock: Socket): void {
  const hs = new SocksHandshake();
  const from = `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? 0}`;
  const onData = (d: Buffer): void => {
    const step = hs.feed(d);
    if (step.send) sock.write(step.send);
    if (step.kind === 'more') return;
    sock.off('data', onData);
    sock.pause();
    if (step.kind === 'fail') {
      c.log(`SOCKS forward: ${from}: ${step.reason}`);
      sock.end();
      return;
    }
    const { host, port } = step.request;
    const fill = (m: Message): void => void m.addString(host).addInt(port).addString(sock.remoteAddress ?? '').addInt(sock.remotePort ?? 0);
    c.conn.open('direct-tcpip', fill, DEFAULT_WINDOW_SIZE, DEFAULT_MAX_PACKET_SIZE).then(
      (core) => {
        c.log(`[chan ${core.localId}] SOCKS${step.request.version} forward: ${from} to ${host}:${port}`);
        if (sock.destroyed) {
          core.close();
          return;
        }
        sock.write(hs.reply(true));
        new SocketBridge(core, sock, (t) => c.log(`[chan ${core.localId}] ${t}`), step.rest);
        sock.resume();
      },
      (e: Error) => {
        c.log(`SOCKS forward: ${from} to ${host}:${port}: the server refused: ${e.message}`);
        sock.end(hs.reply(false));
      },
    );
  };
  sock.on('data', onData);
  sock.on('error', (e: Error) => c.log(`SOCKS forward: ${from}: ${e.message}`));
  sock.resume();
}

export const transport: Service = {
  name: 'transport',
  methods: {
    async connect(a: ConnectArgs, ctx: CallContext) {
      const socket = await openStream(a);
      let prefs = { ...defaultPreferences(a.compress), ...(a.preferences ?? {}) };
      prefs = applyDisabled(prefs, a.disabledAlgorithms);
      validatePreferences(prefs);
      const c = new WorkerConnection(socket, {
        role: 'client',
        preferences: prefs,
        localVersion: a.localVersion,
        rekeyBytes: a.rekeyBytes,
        rekeyPackets: a.rekeyPackets,
        rekeySeconds: a.rekeySeconds,
      });
      setLogging(c, a, 'client');
      c.updateHostKeys = Boolean(a.updateHostKeys);
      const id = nextId++;
      c.transportId = id;
      connections.set(id, c);
      c.session.start();
      c.expectBanner(a.bannerTimeout ?? null);
      try {
        await withDeadline(c.waitKex(a.handshakeTimeout), ctx, 'SSH handshake');
      } catch (e) {
        c.die(e as Error);
        connections.delete(id);
        throw e;
      }
      return { id, ...info(c) };
    },

    /** Paramiko's start_server: a server connection on an accepted socket, decisions by callback. */
    /** A socket-like object's send or recv raised: its connection ends with that error. */
    sockFailed(a: { id: number; message: string }) {
      ringStreams.get(a.id)?.fail(a.message);
      return true;
    },

    async startServer(a: StartServerArgs, ctx: CallContext) {
      const socket = a.sockRings ? ringStream(a.sockRings) : takeSocket(a.socketId ?? -1);
      let prefs = { ...serverDefaultPreferences(a.compress), ...(a.preferences ?? {}) };
      prefs = applyDisabled(prefs, a.disabledAlgorithms);
      validatePreferences(prefs);
      const id = nextId++;
      const c = new WorkerConnection(
        socket,
        {
          role: 'server',
          preferences: prefs,
          localVersion: a.localVersion,
          hostKeys: a.hostKeys.map((k) => PKey.fromPrivateKey(k)),
          serverSigAlgs: SERVER_SIG_ALGS,
          chooseGroup: moduliChooser(a.moduli),
          rekeyBytes: a.rekeyBytes,
          rekeyPackets: a.rekeyPackets,
          rekeySeconds: a.rekeySeconds,
        },
        {},
        { policy: new BridgePolicy(a.callbackKey), maxAuthTries: a.maxAuthTries, loginGraceTime: a.loginGraceTime },
      );
      setLogging(c, a, 'server');
      connections.set(id, c);
      c.session.start();
      c.expectBanner(a.bannerTimeout ?? null);
      const done = c.waitKex(a.handshakeTimeout).then(
        () => setSharedEvent(a.event),
        (e: Error) => {
          connections.delete(id);
          setSharedEvent(a.event);
          throw e;
        },
      );
      if (a.event) {
        done.catch(() => undefined);
        return { id, ...info(c) };
      }
      await withDeadline(done, ctx, 'SSH handshake');
      return { id, ...info(c) };
    },

    /** Transport.accept: the next channel the client opened and the server accepted, or null. */
    async acceptChannel(a: { id: number; timeout: number | null }) {
      const c = connections.get(a.id);
      if (!c) return null;
      const ch = await c.nextChannel(a.timeout);
      return ch ? { ...ch.info(), kind: ch.core.kind, origin: ch.origin, forwardedTo: ch.forwardedTo } : null;
    },

    /** Server: stderr data after what was sent before it; resolves once it is on the wire. */
    async channelSendStderr(a: { id: number; chan: number; data: Uint8Array }, ctx: CallContext) {
      const ch = chan(a.id, a.chan);
      await withDeadline(ch.sendAfterData({ stderr: Buffer.from(a.data) }), ctx, 'sending stderr');
      return a.data.length;
    },

    /** Server: exit-status / exit-signal (or another request without reply) after the data. */
    async channelSendAfterData(a: { id: number; chan: number; type: string; args: Record<string, unknown> }, ctx: CallContext) {
      const ch = chan(a.id, a.chan);
      let fill: (m: Message) => void;
      if (a.type === 'exit-status') fill = (m) => m.addInt(a.args.status as number);
      else if (a.type === 'exit-signal') {
        fill = (m) => m.addString(a.args.signal as string).addBoolean(Boolean(a.args.coreDumped)).addString((a.args.message as string) ?? '').addString('');
      } else throw new SSHException(`unknown request ${JSON.stringify(a.type)}`);
      await withDeadline(ch.sendAfterData({ run: () => void ch.core.request(a.type, false, fill) }), ctx, a.type);
      return true;
    },

    /** The host keys the server announced and proved so far (see WorkerConnection.hostKeysAnnounced). */
    provenHostKeys(a: { id: number }) {
      return conn(a.id).provenHostKeys;
    },

    info(a: { id: number }) {
      const c = connections.get(a.id);
      if (!c) return { active: false };
      return info(c);
    },

    async authNone(a: { id: number; username: string }, ctx: CallContext) {
      const c = conn(a.id);
      return loggedAuth(c, 'none', a.username, withDeadline(c.auth.authNone(a.username), ctx, 'authentication'));
    },

    /** `change`: the main thread has a passwordChange handler for an expired password. */
    async authPassword(a: { id: number; username: string; password: string; change?: boolean }, ctx: CallContext) {
      const c = conn(a.id);
      const change = a.change
        ? async (prompt: string, lang: string) => {
            c.log(`the server asks for a new password: "${printable(prompt)}"`);
            return (await ctx.callback('passwordChange', { id: a.id, prompt, lang })) as [string, string] | null;
          }
        : null;
      return loggedAuth(c, 'password', a.username, withDeadline(c.auth.authPassword(a.username, a.password, change), ctx, 'authentication'));
    },

    async authPublickey(a: { id: number; username: string; key: string; cert: Buffer | null; disabled: string[] }, ctx: CallContext) {
      const key = PKey.fromPrivateKey(a.key);
      if (a.cert) {
        const withCert = PKey.fromTypeString(new Message(a.cert).getText(), a.cert);
        key.publicBlob = withCert.publicBlob;
      }
      const signer = { key, sign: (data: Buffer, alg: string) => Buffer.from(key.signSshData(data, alg).asBytes()) };
      const c = conn(a.id);
      const what = `publickey ${key.publicBlob ? key.publicBlob.keyType : key.getName()} ${key.fingerprint}`;
      return loggedAuth(c, what, a.username, withDeadline(c.auth.authPublickey(a.username, signer, a.disabled), ctx, 'authentication'));
    },

    /** Publickey auth signed by the SSH agent at `socketPath` (no main-thread hop per signature). */
    async authAgent(a: { id: number; username: string; blob: Buffer; cert: Buffer | null; socketPath: string; disabled: string[] }, ctx: CallContext) {
      const blob = Buffer.from(a.blob);
      // A certificate identity gives the certified key with the certificate as its publicBlob.
      const key = PKey.fromBlob(blob);
      if (a.cert) key.publicBlob = PKey.fromBlob(Buffer.from(a.cert)).publicBlob;
      const limits = { timeout: ctx.remaining(), signal: ctx.signal };
      const signer = { key, sign: (data: Buffer, alg: string) => agentSign(a.socketPath, blob, data, alg, limits) };
      const c = conn(a.id);
      const what = `publickey, agent key ${key.getName()} ${key.fingerprint}`;
      return loggedAuth(c, what, a.username, withDeadline(c.auth.authPublickey(a.username, signer, a.disabled), ctx, 'authentication'));
    },

    async authInteractive(a: { id: number; username: string; submethods: string }, ctx: CallContext) {
      const handler = async (title: string, instructions: string, prompts: Array<[string, boolean]>) =>
        (await ctx.callback('interactive', { id: a.id, title, instructions, prompts })) as string[];
      const c = conn(a.id);
      return loggedAuth(c, 'keyboard-interactive', a.username, withDeadline(c.auth.authInteractive(a.username, handler, a.submethods), ctx, 'authentication'));
    },

    async openChannel(
      a: { id: number; kind: string; window: number; maxPacket: number; dest?: [string, number]; src?: [string, number]; origin?: [string, number] },
      ctx: CallContext,
    ) {
      const c = conn(a.id);
      let fill: ((m: Message) => void) | undefined;
      if (a.dest && a.src) fill = (m) => m.addString(a.dest![0]).addInt(a.dest![1]).addString(a.src![0]).addInt(a.src![1]);
      // x11 (RFC 4254 6.3.2): only the originator's address and port.
      else if (a.origin) fill = (m) => m.addString(a.origin![0]).addInt(a.origin![1]);
      const core = await withDeadline(c.conn.open(a.kind, fill, a.window, a.maxPacket), ctx, 'opening a channel');
      return c.adopt(core).info();
    },

    async channelRequest(a: { id: number; chan: number; type: string; wantReply: boolean; args: Record<string, unknown> }, ctx: CallContext) {
      const ch = chan(a.id, a.chan);
      const c0 = conn(a.id);
      const request = () =>
        withDeadline(ch.core.request(a.type, a.wantReply, fillRequest(a.type, a.args)), ctx, `channel request ${a.type}`).then((ok) => {
          c0.log(`[chan ${a.chan}] request ${a.type}: ${a.wantReply ? (ok ? 'accepted' : 'refused') : 'sent'}`);
          return ok;
        });
      if (a.type !== 'x11-req') return request();
      // The server may open x11 channels as soon as it has replied, in the same read as the
      // reply: accept them from now on, and stop again if it refuses (Paramiko sets its x11
      // handler before sending the request too).
      const c = conn(a.id);
      const before = c.x11Requested;
      c.x11Requested = true;
      // The main thread has already set (or cleared) its handler: the last request's counts.
      c.x11Handler = Boolean(a.args.handler);
      let ok = false;
      try {
        ok = await request();
        return ok;
      } finally {
        if (!ok) c.x11Requested = before;
      }
    },

    /** Waits for exit-status/exit-signal or close, accepting all output meanwhile (no deadlock). */
    async recvExitStatus(a: { id: number; chan: number }, ctx: CallContext) {
      const c = connections.get(a.id);
      const ch = c?.channels.get(a.chan);
      if (!ch) return null;
      ch.startDrain();
      await withDeadline(ch.waitExit(), ctx, 'waiting for the exit status');
      return { status: ch.core.exitStatus, signal: ch.exitSignal };
    },

    channelCombineStderr(a: { id: number; chan: number; combine: boolean }) {
      const ch = connections.get(a.id)?.channels.get(a.chan);
      if (ch) ch.combineStderr = a.combine;
      return true;
    },

    /**
     * Paramiko's request_port_forward: asks the server to listen on `address:port` (0: it picks)
     * and returns the port bound; its connections come back as forwarded-tcpip channels.
     */
    requestPortForward(a: { id: number; address: string; port: number; handler: boolean }, ctx: CallContext) {
      return remoteForward(conn(a.id), ctx, a.address, a.port, { handler: a.handler });
    },

    /** Paramiko's cancel_port_forward: the server stops listening; no more channels are accepted for it. */
    async cancelPortForward(a: { id: number; address: string; port: number }, ctx: CallContext) {
      const c = conn(a.id);
      c.remoteForwards.delete(`${a.address}:${a.port}`);
      await withDeadline(c.conn.globalRequest('cancel-tcpip-forward', true, forwardFields(a.address, a.port)), ctx, 'port forward cancel');
      return true;
    },

    /**
     * Paramiko's request_forward_agent: asks the server to forward agent connections on this
     * channel's session; they are joined to the agent at `socketPath` in this worker.
     */
    /**
     * `socketPath` null: the main thread's handler function gets the agent channels. `wantReply`
     * false (ssh's way, for ssh_config's ForwardAgent): the request is sent and not waited for.
     */
    async channelForwardAgent(a: { id: number; chan: number; socketPath: string | null; wantReply?: boolean }, ctx: CallContext) {
      const c = conn(a.id);
      const ch = chan(a.id, a.chan);
      const before = [c.agentForwardSocket, c.agentHandler] as const;
      if (a.socketPath === null) c.agentHandler = true;
      else [c.agentForwardSocket, c.agentHandler] = [a.socketPath, false];
      const wantReply = a.wantReply !== false;
      const ok = await withDeadline(ch.core.request('auth-agent-req@openssh.com', wantReply), ctx, 'agent forwarding request');
      c.log(`[chan ${a.chan}] request auth-agent-req@openssh.com: ${!wantReply ? 'sent' : ok ? 'accepted' : 'refused'}`);
      if (!ok) [c.agentForwardSocket, c.agentHandler] = before;
      return ok;
    },

    /**
     * forwardLocalPort: listens on `listenHost:listenPort` (0: any free port) here, and joins
     * each connection to a new direct-tcpip channel to `destHost:destPort` (from the server).
     */
    async forwardLocalPort(a: { id: number; listenHost: string; listenPort: number; destHost: string; destPort: number }) {
      const c = conn(a.id);
      const what = `local forward to ${a.destHost}:${a.destPort}`;
      const server = await bridgeListener((l) => c.log(l), what, [a.listenPort, a.listenHost], (sock) => {
        const fill = (m: Message): void =>
          void m.addString(a.destHost).addInt(a.destPort).addString(sock.remoteAddress ?? '').addInt(sock.remotePort ?? 0);
        return c.conn.open('direct-tcpip', fill, DEFAULT_WINDOW_SIZE, DEFAULT_MAX_PACKET_SIZE);
      });
      const port = (server.address() as AddressInfo).port;
      c.log(`${what} listening on ${a.listenHost}:${port}`);
      return { forwarder: c.addForwarder(() => server.close()), port };
    },

    /**
     * forwardSocks: a SOCKS4/4a/5 server on `listenHost:listenPort` here (0: any free port); each
     * CONNECT becomes a direct-tcpip channel to the destination it names, as `ssh -D` does.
     */
    async forwardSocks(a: { id: number; listenHost: string; listenPort: number }) {
      const c = conn(a.id);
      const server = await listenOn([a.listenPort, a.listenHost], (sock) => socksConnection(c, sock));
      const port = (server.address() as AddressInfo).port;
      c.log(`SOCKS forward listening on ${a.listenHost}:${port}`);
      return { forwarder: c.addForwarder(() => server.close()), port };
    },

    /**
     * forwardRemotePort: the server listens on `listenHost:listenPort` (tcpip-forward) and each
     * connection is joined here to a new connection to `destHost:destPort`.
     */
    async forwardRemotePort(a: { id: number; listenHost: string; listenPort: number; destHost: string; destPort: number }, ctx: CallContext) {
      const c = conn(a.id);
      const port = await remoteForward(c, ctx, a.listenHost, a.listenPort, { handler: false, connectTo: [a.destHost, a.destPort] });
      const stop = (): void => {
        c.remoteForwards.delete(`${a.listenHost}:${port}`);
        if (!c.isClosed) void c.conn.globalRequest('cancel-tcpip-forward', false, forwardFields(a.listenHost, port)).catch(() => undefined);
      };
      return { forwarder: c.addForwarder(stop), port };
    },

    /**
     * forwardLocalPath: listens on the unix socket `listenPath` here and joins each connection to
     * a direct-streamlocal@openssh.com channel to the server's socket `destPath`.
     */
    async forwardLocalPath(a: { id: number; listenPath: string; destPath: string }) {
      const c = conn(a.id);
      const what = `local forward to ${a.destPath}`;
      const server = await bridgeListener((l) => c.log(l), what, [a.listenPath], () =>
        // The path, then a reserved string and uint32 (OpenSSH's PROTOCOL 2.4).
        c.conn.open('direct-streamlocal@openssh.com', (m) => void m.addString(a.destPath).addString('').addInt(0), DEFAULT_WINDOW_SIZE, DEFAULT_MAX_PACKET_SIZE),
      );
      c.log(`${what} listening on ${a.listenPath}`);
      return { forwarder: c.addForwarder(() => server.close()), port: 0 };
    },

    /**
     * forwardRemotePath: the server listens on its unix socket `listenPath`
     * (streamlocal-forward@openssh.com) and each connection is joined here to `destPath`.
     */
    async forwardRemotePath(a: { id: number; listenPath: string; destPath: string }, ctx: CallContext) {
      const c = conn(a.id);
      const fields = (m: Message): void => void m.addString(a.listenPath);
      const r = await withDeadline(c.conn.globalRequest('streamlocal-forward@openssh.com', true, fields), ctx, 'unix socket forward request');
      if (!r) throw new SSHException(`the server refused to listen on ${a.listenPath} (streamlocal-forward@openssh.com)`);
      c.remotePathForwards.set(a.listenPath, a.destPath);
      c.log(`remote forward ${a.listenPath} granted -> ${a.destPath}`);
      const stop = (): void => {
        c.remotePathForwards.delete(a.listenPath);
        if (!c.isClosed) void c.conn.globalRequest('cancel-streamlocal-forward@openssh.com', false, fields).catch(() => undefined);
      };
      return { forwarder: c.addForwarder(stop), port: 0 };
    },

    /**
     * AgentServerProxy: a unix socket in a fresh 0700 directory; each connection to it becomes
     * an agent channel to the client (auth-agent@openssh.com), joined here.
     */
    async agentProxy(a: { id: number }) {
      const c = conn(a.id);
      const { path, stop } = await agentProxyListener(c);
      return { forwarder: c.addForwarder(stop), path };
    },

    /** Stops a forwarder (forwardLocalPort, forwardRemotePort, forwardSocks, the path forwards, agentProxy). */
    closeForward(a: { id: number; forwarder: number }) {
      connections.get(a.id)?.stopForwarder(a.forwarder);
      return true;
    },

    /** AgentRequestHandler.close: the server's agent channels are refused from now on. */
    stopForwardAgent(a: { id: number }) {
      const c = connections.get(a.id);
      if (c) c.agentForwardSocket = null;
      return true;
    },

    /** Paramiko's set_log_channel and set_hexdump on a running transport. */
    setLogging(a: { id: number; logChannel?: string; hexdump?: boolean }) {
      const c = conn(a.id);
      if (a.logChannel !== undefined) c.setLogChannel(a.logChannel);
      if (a.hexdump !== undefined) c.session.hexdump = a.hexdump;
      return true;
    },

    /** The peer's window left for our data now (Paramiko's out_window_size); 0 once closed. */
    channelOutWindow(a: { id: number; chan: number }) {
      return connections.get(a.id)?.channels.get(a.chan)?.core.remoteWindow ?? 0;
    },

    channelShutdownRead(a: { id: number; chan: number }) {
      connections.get(a.id)?.channels.get(a.chan)?.shutdownRead();
      return true;
    },

    channelShutdownWrite(a: { id: number; chan: number }) {
      connections.get(a.id)?.channels.get(a.chan)?.shutdownWrite();
      return true;
    },

    channelClose(a: { id: number; chan: number }) {
      connections.get(a.id)?.channels.get(a.chan)?.close();
      return true;
    },

    async globalRequest(a: { id: number; name: string; wantReply: boolean; data: Buffer | null }, ctx: CallContext) {
      const r = await withDeadline(
        conn(a.id).conn.globalRequest(a.name, a.wantReply, a.data ? (m) => m.addBytes(a.data!) : undefined),
        ctx,
        'global request',
      );
      return r ? { ok: true, data: Buffer.from(r.getRemainder()) } : { ok: false, data: null };
    },

    setKeepalive(a: { id: number; interval: number; countMax?: number }) {
      conn(a.id).setKeepalive(a.interval, a.countMax ?? 3);
      return true;
    },

    sendIgnore(a: { id: number; bytes: number }) {
      conn(a.id).sendIgnore(a.bytes);
      return true;
    },

    async renegotiate(a: { id: number }, ctx: CallContext) {
      const c = conn(a.id);
      c.session.rekey();
      try {
        await withDeadline(c.waitKex(null), ctx, 'key re-exchange');
      } catch (e) {
        // A refusal leaves the session as it was. A peer that never answers leaves it mid
        // exchange, every later packet held back: as Paramiko's, the session ends.
        if (e instanceof SocketTimeout && !c.isClosed) c.die(new SSHException(`key re-exchange did not complete within ${ctx.timeout} s`));
        throw e;
      }
      return true;
    },

    close(a: { id: number }) {
      const c = connections.get(a.id);
      if (c) {
        c.close();
        connections.delete(a.id);
      }
      return true;
    },
  },
};
