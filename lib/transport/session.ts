import { prepareSntrup761KeyPair } from '../crypto/sntrup761';
import { MessageOrderError, SSHException } from '../errors';
import { cipherByName } from '../crypto/ciphers';
import { runsNatively } from '../crypto/native';
import { MACS } from '../crypto/macs';
import { PKey } from '../keys';
import { Message } from '../wire/message';
import {
  AlgorithmPreferences,
  choose,
  supported,
  decodeKexInit,
  encodeKexInit,
  keyTypeOfAlgorithm,
  signatureOfAlgorithm,
  KexInit,
} from './algorithms';
import { DISCONNECT, MSG, messageName } from './constants';
import { deriveKey, kexByName } from './kex';
import type { KexRun } from './kex';
import { PacketReader, PacketWriter } from './packet';
import type { WireArena } from './packet';
import { compressorFor } from './compression';
import { DEFAULT_LOCAL_VERSION } from './version';
import { hexLines } from '../wire/hexdump';
import { printable } from '../printable';

export { DEFAULT_LOCAL_VERSION };
/** RFC 4253 section 4.2: the identification line is at most 255 bytes including CR LF. */
const MAX_VERSION_LINE = 255;
/** Lines a server may send before its identification (OpenSSH allows 1024). */
const MAX_PRE_BANNER_LINES = 1024;
/** Rekey after this much traffic in one direction (AsyncSSH's 1 GiB default; OpenSSH derives
 * ~4 GiB from the cipher block size) or this many packets (well before a 2^32 sequence wrap). */
export const DEFAULT_REKEY_BYTES = 1 << 30;
export const DEFAULT_REKEY_PACKETS = 1 << 28;

const STRICT_C = 'kex-strict-c-v00@openssh.com';
const STRICT_S = 'kex-strict-s-v00@openssh.com';
const EXT_INFO_C = 'ext-info-c';
const NO_BYTES = Buffer.alloc(0);
const EXT_INFO_S = 'ext-info-s';

/** What was agreed in a key exchange (Paramiko's `get_security_options` view of it). */
export interface Negotiated {
  kex: string;
  hostKey: string;
  cipherC2S: string;
  cipherS2C: string;
  macC2S: string;
  macS2C: string;
  compressionC2S: string;
  compressionS2C: string;
}

export interface SessionOptions {
  role: 'client' | 'server';
  preferences: AlgorithmPreferences;
  localVersion?: string;
  /** Server: host keys, private. */
  hostKeys?: PKey[];
  /** Terrapin mitigation (on by default, as OpenSSH 9.6+ and Paramiko 3.4+). */
  strictKex?: boolean;
  rekeyBytes?: number;
  rekeyPackets?: number;
  /** Seconds after each key exchange until the next one starts (ssh_config's RekeyLimit time); absent or 0: none. */
  rekeySeconds?: number;
  /** Server: offer ext-info with these signature algorithms in server-sig-algs. */
  serverSigAlgs?: string[];
  /** Server: group chooser for diffie-hellman-group-exchange. */
  chooseGroup?: (min: number, n: number, max: number) => { p: bigint; g: bigint };
}

/** What the session asks of its owner (the worker's connection driver, or a test). */
export interface SessionHost {
  /** Bytes to put on the wire, in order. */
  write(data: Buffer): void;
  /** A message of the auth or connection layer (50 and up), or SERVICE_REQUEST/ACCEPT, EXT_INFO. */
  message(type: number, msg: Message): void;
  /** A key exchange finished; `first` for the initial one. */
  kexDone(first: boolean): void;
  /**
   * The peer answered our KEXINIT of a re-exchange with UNIMPLEMENTED (OpenSSH's sshd does
   * before authentication): the exchange is abandoned and the session goes on with its keys.
   */
  kexRefused?(error: SSHException): void;
  /** The session ended; `error` is null for a clean disconnect we asked for. */
  closed(error: Error | null): void;
  /** Optional debug log. */
  log?(text: string): void;
}

type Phase = 'version' | 'running' | 'closed';

/**
 * The SSH transport layer (RFC 4253) without I/O: bytes in through `receive`, bytes out through
 * `host.write`. Owns the identification exchange, key exchange and rekeying (strict kex and
 * ext-info included), packet protection, and the order rules of messages during kex.
 */
export class Session {
  readonly role: 'client' | 'server';
  readonly localVersion: string;
  remoteVersion: string | null = null;
  sessionId: Buffer | null = null;
  negotiated: Negotiated | null = null;
  /** The server's host key (client side), once the first kex verified it. */
  remoteHostKey: PKey | null = null;
  /** Client: the server's ext-info server-sig-algs, when it sent one. */
  serverSigAlgs: string[] | null = null;
  /** Extensions the peer announced in EXT_INFO. */
  readonly peerExtensions = new Map<string, Buffer>();
  strict = false;
  /** Log every packet's payload in hex (Paramiko's set_hexdump), through host.log. */
  hexdump = false;
  private phase: Phase = 'version';
  private readonly reader = new PacketReader();
  private readonly writer = new PacketWriter();
  private versionBuffer = '';
  private preBannerLines = 0;
  /** Lines the server sent before its identification. */
  readonly preBanner: string[] = [];
  private kexCount = 0;
  /** Our KEXINIT of the exchange in progress (null when none is). */
  private localKexInit: Buffer | null = null;
  private remoteKexInit: Buffer | null = null;
  private kexRun: KexRun | null = null;
  private pendingKeys: { sealer: () => void; opener: () => void } | null = null;
  private ignoreNextKexPacket = false;
  /** The peer's kex list in its first KEXINIT (where ext-info-c is announced). */
  private firstPeerKex: string[] | null = null;
  /** Payloads held back while a key exchange is in progress. */
  private queued: Buffer[] = [];
  private authenticated = false;
  private delayedCompression: { c2s: boolean; s2c: boolean } = { c2s: false, s2c: false };
  private readonly rekeyBytes: number;
  private readonly rekeyPackets: number;
  /** Starts the next key exchange when rekeySeconds have passed since the last one. */
  private rekeyTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: SessionOptions,
    private readonly host: SessionHost,
  ) {
    this.role = options.role;
    this.localVersion = options.localVersion ?? DEFAULT_LOCAL_VERSION;
    this.rekeyBytes = options.rekeyBytes ?? DEFAULT_REKEY_BYTES;
    this.rekeyPackets = options.rekeyPackets ?? DEFAULT_REKEY_PACKETS;
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** start() was called: until then input is only buffered. */
  private started = false;

  /** Whether a key exchange is under way (messages other than transport ones are queued). */
  get inKex(): boolean {
    return this.localKexInit !== null;
  }

  /** Sends our identification line and KEXINIT. */
  start(): void {
    this.started = true;
    this.host.write(Buffer.from(this.localVersion + '\r\n', 'latin1'));
    this.sendKexInit();
    // When sntrup761 is our first choice its key pair (4-5 ms, ~16 cold) is made while the
    // server answers. Second to ML-KEM (the default), it is made when a server picks it (OpenSSH
    // 9.0-9.8), and the next connection's spare after that, never for a server that takes ML-KEM.
    if (this.role === 'client' && this.options.preferences.kex[0]?.startsWith('sntrup761')) prepareSntrup761KeyPair();
    // What came before start(), now that our identification and KEXINIT are out.
    this.receive(NO_BYTES);
  }

  /**
   * Seals packets into `arena` where the cipher can (see WireArena): `host.write` then gets views
   * of it, valid until the host rewinds the arena.
   */
  useWireArena(arena: WireArena): void {
    this.writer.arena = arena;
  }

  // ---- input ----

  /**
   * Bytes from the peer. With `transient`, `data` is only valid during the call (a socket's
   * reused read buffer): what is left of a packet is copied before returning.
   */
  receive(data: Buffer, transient = false): void {
    if (this.phase === 'closed') return;
    if (!this.started) {
      // Input before start() waits: a peer that sends its KEXINIT at once (our own server does;
      // sshd waits for our version), held in a channel we then run over, would otherwise be
      // answered with our KEXINIT before our identification line.
      this.reader.push(data);
      if (transient) this.reader.detach();
      return;
    }
    try {
      if (this.phase === 'version') {
        this.reader.push(data);
        if (!this.readVersion()) return;
      } else {
        this.reader.push(data);
      }
      let payload: Buffer | null;
      while (this.phase === 'running' && (payload = this.reader.next()) !== null) {
        this.dispatch(payload);
        this.checkRekey();
      }
      if (transient) this.reader.detach();
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** Reads the identification line; true once it has been read. */
  private readVersion(): boolean {
    const raw = this.reader.takeRaw();
    let text = this.versionBuffer + raw.toString('latin1');
    for (;;) {
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (text.length > MAX_VERSION_LINE) throw new SSHException('identification line too long: the peer does not speak SSH');
        this.versionBuffer = text;
        return false;
      }
      const line = text.slice(0, nl).replace(/\r$/, '');
      text = text.slice(nl + 1);
      if (line.startsWith('SSH-')) {
        if (!line.startsWith('SSH-2.0-') && !line.startsWith('SSH-1.99-')) {
          throw new SSHException(`incompatible SSH version: ${JSON.stringify(line)} (only SSH-2.0 is supported)`);
        }
        if (line.length + 2 > MAX_VERSION_LINE) throw new SSHException('identification line too long');
        this.remoteVersion = line;
        this.host.log?.(`local version ${this.localVersion}, remote version ${line}`);
        this.phase = 'running';
        this.reader.push(Buffer.from(text, 'latin1'));
        return true;
      }
      // RFC 4253 section 4.2: a server may send other lines first; a client may not.
      if (this.role === 'server') {
        throw new SSHException(`client sent ${JSON.stringify(line.slice(0, 40))} before its identification: not an SSH client`);
      }
      if (++this.preBannerLines > MAX_PRE_BANNER_LINES || line.length > MAX_VERSION_LINE) {
        throw new SSHException('no SSH identification from the server: is this an SSH server?');
      }
      this.preBanner.push(line);
    }
  }

  private dumpPacket(direction: 'IN' | 'OUT', payload: Buffer): void {
    const log = this.host.log;
    if (!log) return;
    log(`${direction} ${messageName(payload[0])} (${payload.length} bytes)`);
    for (const line of hexLines(payload)) log(line);
  }

  private dispatch(payload: Buffer): void {
    if (this.hexdump) this.dumpPacket('IN', payload);
    const type = payload[0];
    // Only channel data may stay in the opener's reused buffer: its channel copies it on
    // arrival. Any other message may be kept or read later (kex hashes, async request handlers).
    const channelData = type === MSG.CHANNEL_DATA || type === MSG.CHANNEL_EXTENDED_DATA;
    if (this.reader.transient && !channelData) payload = Buffer.from(payload);
    const msg = new Message(payload);
    msg.transient = this.reader.transient && channelData;
    msg.getByte();
    // Strict kex: during the first exchange only the exchange's own messages may arrive.
    if (this.strict && this.kexCount === 0 && !this.sessionId && !this.isKexMessage(type)) {
      throw new MessageOrderError(`strict key exchange: unexpected ${messageName(type)} during the initial key exchange`);
    }
    switch (type) {
      case MSG.DISCONNECT: {
        const reason = msg.getInt();
        const text = msg.getText();
        this.close(new SSHException(`the ${this.role === 'client' ? 'server' : 'client'} disconnected: ${printable(text, { backslashes: false }) || '(no reason given)'} (code ${reason})`));
        return;
      }
      case MSG.IGNORE:
        return;
      case MSG.DEBUG:
        if (this.host.log) {
          try {
            msg.getBoolean();
            this.host.log(`debug message from the peer: ${msg.getText()}`);
          } catch {
            this.host.log('debug message from the peer (malformed)');
          }
        }
        return;
      case MSG.UNIMPLEMENTED: {
        const seq = msg.getInt();
        this.host.log?.(`peer says message #${seq} is unimplemented`);
        if (this.localKexInit && !this.remoteKexInit && this.sessionId && seq === this.localKexInitSeq) this.abandonRekey();
        return;
      }
      case MSG.KEXINIT:
        this.handleKexInit(payload);
        return;
      case MSG.NEWKEYS:
        this.handleNewKeys();
        return;
      case MSG.EXT_INFO:
        this.handleExtInfo(msg);
        return;
      case MSG.PING:
        // OpenSSH 9.5+ clients send these as chaff while the user types in a terminal (its
        // keystroke timing obfuscation), to servers whose EXT_INFO offers ping@openssh.com.
        // Answered as sshd does: with the same data, once the user is authenticated, in order
        // (queued during a rekey).
        if (this.sessionId && this.authenticated) this.send(new Message().addByte(MSG.PONG).addString(msg.getString()).asBytes());
        return;
      case MSG.PONG:
        return;
    }
    if (type >= 30 && type <= 49) {
      if (!this.kexRun) {
        if (!this.sessionId) throw new SSHException(`unexpected ${messageName(type)} outside a key exchange`);
        // As OpenSSH after its first exchange: a key exchange message with none running is
        // answered UNIMPLEMENTED and the session goes on.
        this.host.log?.(`unexpected ${messageName(type)} outside a key exchange: answered UNIMPLEMENTED`);
        this.sendUnimplemented();
        return;
      }
      if (this.ignoreNextKexPacket) {
        this.ignoreNextKexPacket = false;
        return;
      }
      const result = this.kexRun.handle(type, msg);
      if (result) this.finishKex(result);
      return;
    }
    if (type < 5 || (type > 7 && type < 50) || !this.sessionId) {
      if (!this.sessionId) throw new SSHException(`unexpected ${messageName(type)} before key exchange completed`);
      this.sendUnimplemented();
      return;
    }
    this.host.message(type, msg);
  }

  private isKexMessage(type: number): boolean {
    return type === MSG.KEXINIT || type === MSG.NEWKEYS || (type >= 30 && type <= 49) || type === MSG.DISCONNECT;
  }

  /** RFC 4253 section 11.4: answers a message we do not implement, and carries on. */
  sendUnimplemented(): void {
    this.sendRaw(new Message().addByte(MSG.UNIMPLEMENTED).addInt((this.reader.seq - 1) >>> 0).asBytes());
  }

  // ---- output ----

  /**
   * Sends a payload, or queues it while a key exchange is in progress. The payload is encoded or
   * copied before this returns: the caller may reuse its buffer.
   */
  send(payload: Buffer): void {
    if (this.phase === 'closed') throw new SSHException('the SSH session is closed');
    if (this.inKex && !this.sentNewKeysOrTransportMessage(payload[0])) {
      this.queued.push(Buffer.from(payload));
      return;
    }
    this.sendRaw(payload);
    this.checkRekey();
  }

  /**
   * Sends a connection-layer payload of `length` bytes that `fill` writes in place (channel
   * data), or queues it while a key exchange is in progress.
   */
  sendFilled(length: number, fill: (into: Buffer) => void): void {
    if (this.phase === 'closed') throw new SSHException('the SSH session is closed');
    if (this.inKex || this.hexdump) {
      // Queued during kex, or dumped: through send() with a payload of its own.
      const payload = Buffer.allocUnsafe(length);
      fill(payload);
      this.send(payload);
      return;
    }
    for (const part of this.writer.encodeFilled(length, fill)) this.host.write(part);
    this.checkRekey();
  }

  /** RFC 4253 section 7.1: during kex only transport messages other than service requests. */
  private sentNewKeysOrTransportMessage(type: number): boolean {
    return (type >= 1 && type <= 4) || (type >= 20 && type <= 49);
  }

  private sendRaw(payload: Buffer): void {
    if (this.hexdump) this.dumpPacket('OUT', payload);
    for (const part of this.writer.encodeParts(payload)) this.host.write(part);
  }

  // ---- key exchange ----

  private wantStrict(): boolean {
    return this.options.strictKex !== false;
  }

  private sendKexInit(): void {
    if (this.localKexInit) return;
    const extra: string[] = [];
    if (this.kexCount === 0) {
      if (this.role === 'client') extra.push(EXT_INFO_C);
      else if (this.options.serverSigAlgs) extra.push(EXT_INFO_S);
      if (this.wantStrict()) extra.push(this.role === 'client' ? STRICT_C : STRICT_S);
    }
    const prefs = this.role === 'server' ? this.serverPreferences() : this.options.preferences;
    this.localKexInit = encodeKexInit(prefs, extra);
    this.localKexInitSeq = this.writer.seq;
    this.sendRaw(this.localKexInit);
  }

  /** The sequence number our KEXINIT went out with (an UNIMPLEMENTED names it). */
  private localKexInitSeq = -1;

  /**
   * The peer ignored our re-exchange (RFC 4253 11.4: an unimplemented message is ignored): it
   * is not in a key exchange, so neither are we. What waited for the exchange goes out under
   * the current keys, and the traffic limits count afresh, so an automatic rekey is not asked
   * again at the next packet.
   */
  private abandonRekey(): void {
    this.localKexInit = null;
    for (const c of [this.writer.sinceKex, this.reader.sinceKex]) {
      c.bytes = 0;
      c.packets = 0;
    }
    const queued = this.queued;
    this.queued = [];
    for (const p of queued) this.sendRaw(p);
    this.host.log?.('key re-exchange refused by the peer (UNIMPLEMENTED); keeping the current keys');
    this.host.kexRefused?.(
      new SSHException(
        `the ${this.role === 'client' ? 'server' : 'client'} refused a key re-exchange now (it answered KEXINIT with UNIMPLEMENTED; OpenSSH's sshd does before authentication)`,
      ),
    );
  }

  /** The server offers only host key algorithms it has keys for. */
  private serverPreferences(): AlgorithmPreferences {
    const have = new Set<string>();
    for (const k of this.options.hostKeys ?? []) {
      have.add(k.getName());
      if (k.publicBlob) have.add(k.publicBlob.keyType);
    }
    const hostKeys = this.options.preferences.hostKeys.filter((a) => have.has(keyTypeOfAlgorithm(a)));
    if (!hostKeys.length) throw new SSHException('server has no host key for any enabled host key algorithm');
    return { ...this.options.preferences, hostKeys };
  }

  /** Starts a key re-exchange (Paramiko's renegotiate_keys); a no-op if one is running. */
  rekey(): void {
    if (this.phase !== 'running' || this.inKex || !this.sessionId) return;
    this.sendKexInit();
  }

  private checkRekey(): void {
    if (this.inKex || !this.sessionId || this.phase !== 'running') return;
    const w = this.writer.sinceKex;
    const r = this.reader.sinceKex;
    if (w.bytes >= this.rekeyBytes || r.bytes >= this.rekeyBytes || w.packets >= this.rekeyPackets || r.packets >= this.rekeyPackets) {
      this.host.log?.('rekeying: traffic limit reached');
      this.sendKexInit();
    }
  }

  private handleKexInit(payload: Buffer): void {
    if (this.remoteKexInit) throw new SSHException('KEXINIT received twice in one key exchange');
    const peer: KexInit = decodeKexInit(payload);
    if (this.kexCount === 0 && !this.sessionId) {
      const strictName = this.role === 'client' ? STRICT_S : STRICT_C;
      this.strict = this.wantStrict() && peer.kex.includes(strictName);
      // Strict kex: KEXINIT must have been the very first packet (OpenSSH PROTOCOL, Terrapin).
      if (this.strict && this.reader.seq !== 1) {
        throw new MessageOrderError('strict key exchange: KEXINIT was not the first packet');
      }
    }
    this.remoteKexInit = Buffer.from(payload);
    if (this.kexCount === 0) this.firstPeerKex = peer.kex;
    this.sendKexInit();
    const local = decodeKexInit(this.localKexInit!);
    const [c, s] = this.role === 'client' ? [local, peer] : [peer, local];
    const pseudo = (a: string) => a !== EXT_INFO_C && a !== EXT_INFO_S && a !== STRICT_C && a !== STRICT_S;
    const kex = choose('key exchange', c.kex.filter(pseudo), s.kex.filter(pseudo), this.role, supported('kex'));
    const hostKey = choose('host key', c.hostKeys, s.hostKeys, this.role, supported('hostKeys'));
    const cipherC2S = choose('cipher (client to server)', c.ciphersC2S, s.ciphersC2S, this.role, supported('ciphers'));
    const cipherS2C = choose('cipher (server to client)', c.ciphersS2C, s.ciphersS2C, this.role, supported('ciphers'));
    const aeadC = cipherByName(cipherC2S)!.aead;
    const aeadS = cipherByName(cipherS2C)!.aead;
    const macC2S = aeadC ? '' : choose('MAC (client to server)', c.macsC2S, s.macsC2S, this.role, supported('macs'));
    const macS2C = aeadS ? '' : choose('MAC (server to client)', c.macsS2C, s.macsS2C, this.role, supported('macs'));
    const compressionC2S = choose('compression (client to server)', c.compressionC2S, s.compressionC2S, this.role);
    const compressionS2C = choose('compression (server to client)', c.compressionS2C, s.compressionS2C, this.role);
    this.negotiated = { kex, hostKey, cipherC2S, cipherS2C, macC2S, macS2C, compressionC2S, compressionS2C };
    if (this.host.log) {
      const n = this.negotiated!;
      const both = (a: string, b: string): string => (a === b ? a || 'implicit' : `${a || 'implicit'} out, ${b || 'implicit'} in`);
      const natively = runsNatively(n.cipherC2S) || runsNatively(n.cipherS2C) ? ' (native)' : '';
      const [cipher, mac, comp] =
        this.role === 'client'
          ? [both(n.cipherC2S, n.cipherS2C), both(n.macC2S, n.macS2C), both(n.compressionC2S, n.compressionS2C)]
          : [both(n.cipherS2C, n.cipherC2S), both(n.macS2C, n.macC2S), both(n.compressionS2C, n.compressionC2S)];
      this.host.log(`kex agreed: ${n.kex}, host key ${n.hostKey}, cipher ${cipher}${natively}, MAC ${mac}, compression ${comp}${this.strict ? ', strict kex' : ''}`);
    }
    // A guessed first kex packet counts only when both sides list the same kex and host key
    // algorithms first (RFC 4253 section 7, as OpenSSH and Dropbear judge it); otherwise it is
    // ignored and the peer sends another. Agreeing on the peer's first choice is not enough:
    // Dropbear's client guesses curve25519-sha256, and a server listing sntrup761 first may
    // still agree on curve25519, yet Dropbear then sends its KEXDH_INIT again.
    if (peer.firstKexPacketFollows && (peer.kex[0] !== local.kex[0] || peer.hostKeys[0] !== local.hostKeys[0])) this.ignoreNextKexPacket = true;

    const alg = kexByName(kex)!;
    const [clientKexInit, serverKexInit] = this.role === 'client' ? [this.localKexInit!, this.remoteKexInit] : [this.remoteKexInit, this.localKexInit!];
    const hostKeyForServer = this.role === 'server' ? this.pickHostKey(hostKey) : null;
    this.kexRun = alg.create({
      role: this.role,
      clientVersion: this.role === 'client' ? this.localVersion : this.remoteVersion!,
      serverVersion: this.role === 'client' ? this.remoteVersion! : this.localVersion,
      clientKexInit,
      serverKexInit,
      send: (p) => this.sendRaw(p),
      hostKeyBlob: hostKeyForServer ? () => hostKeyForServer.blob : undefined,
      signExchangeHash: hostKeyForServer
        ? (h) => Buffer.from(hostKeyForServer.key.signSshData(h, signatureOfAlgorithm(hostKey)).asBytes())
        : undefined,
      chooseGroup: this.options.chooseGroup,
    });
    this.kexRun.start();
  }

  private pickHostKey(alg: string): { key: PKey; blob: Buffer } {
    const type = keyTypeOfAlgorithm(alg);
    for (const key of this.options.hostKeys ?? []) {
      if (key.getName() === type) return { key, blob: key.asBytes() };
      if (key.publicBlob?.keyType === type) return { key, blob: key.publicBlob.keyBlob };
    }
    throw new SSHException(`no host key for ${alg}`);
  }

  private finishKex(result: { sharedSecret: Buffer; exchangeHash: Buffer; hostKeyBlob: Buffer; signature?: Buffer }): void {
    const n = this.negotiated!;
    if (this.role === 'client') this.verifyHostKey(result.hostKeyBlob, result.exchangeHash, result.signature!);
    if (!this.sessionId) this.sessionId = result.exchangeHash;
    const hash = kexByName(n.kex)!.hash;
    const k = result.sharedSecret;
    const h = result.exchangeHash;
    const sid = this.sessionId;
    const derive = (letter: string, len: number) => deriveKey(hash, k, h, letter, sid, len);
    const makeKeys = (cipherName: string, macName: string, letters: [string, string, string]) => {
      const cipher = cipherByName(cipherName)!;
      const mac = macName ? MACS[macName] : null;
      return {
        cipher,
        mac,
        keys: {
          iv: derive(letters[0], cipher.ivLength),
          key: derive(letters[1], cipher.keyLength),
          macKey: mac ? derive(letters[2], mac.keyLength) : Buffer.alloc(0),
        },
      };
    };
    const c2s = makeKeys(n.cipherC2S, n.macC2S, ['A', 'C', 'E']);
    const s2c = makeKeys(n.cipherS2C, n.macS2C, ['B', 'D', 'F']);
    const [out, inn] = this.role === 'client' ? [c2s, s2c] : [s2c, c2s];
    const [outComp, inComp] = this.role === 'client' ? [n.compressionC2S, n.compressionS2C] : [n.compressionS2C, n.compressionC2S];
    this.kexRun = null;
    this.pendingKeys = {
      sealer: () => {
        this.writer.setProtection(out.cipher.createSealer(out.keys, out.mac), this.strict);
        this.setCompression('out', outComp);
      },
      opener: () => {
        this.reader.setProtection(inn.cipher.createOpener(inn.keys, inn.mac), this.strict);
        this.setCompression('in', inComp);
      },
    };
    this.sendRaw(new Message().addByte(MSG.NEWKEYS).asBytes());
    this.pendingKeys.sealer();
    // RFC 8308 section 2.4: EXT_INFO is the packet right after the server's first NEWKEYS.
    if (this.kexCount === 0 && this.options.serverSigAlgs && this.peerSentExtInfoC) this.sendExtInfo();
  }

  /** The peer's NEWKEYS: its next packet uses the new keys. It can only follow our own. */
  private handleNewKeys(): void {
    if (!this.pendingKeys) throw new SSHException('NEWKEYS before the key exchange completed');
    this.pendingKeys.opener();
    this.pendingKeys = null;
    this.localKexInit = null;
    this.remoteKexInit = null;
    const first = this.kexCount === 0;
    this.kexCount++;
    const queued = this.queued;
    this.queued = [];
    for (const p of queued) this.sendRaw(p);
    this.scheduleTimedRekey();
    this.host.kexDone(first);
  }

  private scheduleTimedRekey(): void {
    const seconds = this.options.rekeySeconds;
    if (this.rekeyTimer) clearTimeout(this.rekeyTimer);
    this.rekeyTimer = null;
    if (!seconds || !(seconds > 0)) return;
    this.rekeyTimer = setTimeout(() => {
      this.rekeyTimer = null;
      this.host.log?.('rekeying: time limit reached');
      this.rekey();
    }, seconds * 1000);
    this.rekeyTimer.unref();
  }

  private get peerSentExtInfoC(): boolean {
    return this.role === 'server' && (this.firstPeerKex ?? []).includes(EXT_INFO_C);
  }

  private verifyHostKey(blob: Buffer, h: Buffer, signature: Buffer): void {
    const alg = this.negotiated!.hostKey;
    let key: PKey;
    try {
      key = PKey.fromBlob(blob);
    } catch (e) {
      throw new SSHException(`server host key cannot be read: ${(e as Error).message}`, { cause: e });
    }
    const type = key.publicBlob ? key.publicBlob.keyType : key.getName();
    if (type !== keyTypeOfAlgorithm(alg)) {
      throw new SSHException(`server sent a ${type} host key for the negotiated algorithm ${alg}`);
    }
    const sigAlg = new Message(signature).getText();
    if (sigAlg !== signatureOfAlgorithm(alg)) {
      throw new SSHException(`server signed with ${sigAlg}, but ${signatureOfAlgorithm(alg)} was negotiated`);
    }
    if (!key.verifySshSig(h, signature)) {
      throw new SSHException('server host key signature does not verify: the exchange was tampered with or the server is broken');
    }
    if (this.remoteHostKey && !this.remoteHostKey.equals(key)) {
      throw new SSHException('server host key changed during rekeying');
    }
    this.remoteHostKey = key;
  }

  // ---- ext-info (RFC 8308) ----

  private sendExtInfo(): void {
    const m = new Message().addByte(MSG.EXT_INFO).addInt(2).addString('server-sig-algs').addList(this.options.serverSigAlgs!);
    m.addString('ping@openssh.com').addString('0');
    this.sendRaw(m.asBytes());
  }

  private handleExtInfo(msg: Message): void {
    const n = msg.getInt();
    for (let i = 0; i < n; i++) {
      const name = msg.getText();
      const value = Buffer.from(msg.getString());
      this.peerExtensions.set(name, value);
      if (name === 'server-sig-algs') this.serverSigAlgs = value.toString('latin1').split(',').filter(Boolean);
    }
  }

  // ---- compression ----

  private setCompression(dir: 'in' | 'out', name: string): void {
    const delayed = name === 'zlib@openssh.com';
    if (delayed && !this.authenticated) {
      this.delayedCompression[dir === 'out' ? 'c2s' : 's2c'] = true;
      return;
    }
    this.applyCompression(dir, name);
  }

  private applyCompression(dir: 'in' | 'out', name: string): void {
    const t = compressorFor(name, dir === 'out' ? 'compress' : 'decompress');
    if (dir === 'out') this.writer.setCompression(t);
    else this.reader.setCompression(t);
  }

  /** User auth succeeded: delayed compression (zlib@openssh.com) starts now. */
  setAuthenticated(): void {
    this.authenticated = true;
    if (this.delayedCompression.c2s) this.applyCompression('out', 'zlib@openssh.com');
    if (this.delayedCompression.s2c) this.applyCompression('in', 'zlib@openssh.com');
    this.delayedCompression = { c2s: false, s2c: false };
  }

  // ---- ending ----

  /** Sends DISCONNECT (best effort) and closes. */
  disconnect(reason: number = DISCONNECT.BY_APPLICATION, description = 'disconnected by user'): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'running') {
      try {
        this.sendRaw(new Message().addByte(MSG.DISCONNECT).addInt(reason).addString(description).addString('').asBytes());
      } catch {
        // the session is going away anyway
      }
    }
    this.close(null);
  }

  /** A protocol failure: tell the peer why, then close with the error. */
  fail(error: Error): void {
    if (this.phase === 'closed') return;
    const reason = /MAC/.test(error.message) ? DISCONNECT.MAC_ERROR : /algorithm/.test(error.message) ? DISCONNECT.KEY_EXCHANGE_FAILED : DISCONNECT.PROTOCOL_ERROR;
    if (this.phase === 'running') {
      try {
        this.sendRaw(new Message().addByte(MSG.DISCONNECT).addInt(reason).addString(error.message.slice(0, 200)).addString('').asBytes());
      } catch {
        // ignore
      }
    }
    this.close(error);
  }

  private close(error: Error | null): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    if (this.rekeyTimer) clearTimeout(this.rekeyTimer);
    this.rekeyTimer = null;
    this.host.closed(error);
  }
}
