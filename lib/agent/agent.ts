import { debug } from '../debug';
import { request, runAsync, runSync, toBuffer, type Op } from '../bridge';
import { SSHException, UnknownKeyType } from '../errors';
import { PKey } from '../keys';
import type { Passphrase } from '../keys/pkey';
import { Message } from '../wire/message';
import { AgentKey } from './agent-key';
import { encodeAddIdentity, encodeLock, encodeRemoveAll, encodeRemoveIdentity, parseSuccess } from './protocol';
import type { AddConstraints } from './protocol';

/** How long a request that changes the agent may take, in seconds (it answers at once). */
const MANAGE_TIMEOUT = 30;

/** addKeys' options: ssh-add's -t and -c, and the passphrase of key files given by path. */
export interface AddKeysOptions extends AddConstraints {
  passphrase?: Passphrase | null;
}

/**
 * A private key as SSH2_AGENTC_ADD_IDENTITY carries it (OpenSSH's PROTOCOL.agent): the key type
 * and the private fields of OpenSSH's key format; for a certificate, the certificate's type and
 * blob, then the private fields less the public ones the certificate holds (RSA's n and e,
 * ECDSA's curve and point; Ed25519 keeps its public key, as OpenSSH writes it).
 */
export function agentKeyFields(key: PKey, withCertificate: boolean): Buffer {
  const fields = new Message();
  key.writeOpenSSHPrivateFields(fields);
  const cert = key.publicBlob;
  if (!withCertificate || !cert) return new Message().addString(key.getName()).addBytes(fields.asBytes()).asBytes();
  const rest = new Message(fields.asBytes());
  const name = key.getName();
  if (name === 'ssh-rsa') {
    rest.getMpint();
    rest.getMpint();
  } else if (name.startsWith('ecdsa-sha2-')) {
    rest.getString();
    rest.getString();
  } else if (name !== 'ssh-ed25519') {
    throw new SSHException(`adding a ${name} certificate to an agent is not supported`);
  }
  return new Message().addString(cert.keyType).addString(cert.keyBlob).addBytes(rest.getRemainder()).asBytes();
}


/**
 * How long listing the keys may take, in seconds. A local agent answers at once; one silent
 * this long is wedged, and `new Agent()` (hence SSHClient.connect) should not hang on it.
 */
const IDENTITIES_TIMEOUT = 30;

export interface AgentOptions {
  /** The agent's UNIX socket; defaults to `process.env.SSH_AUTH_SOCK` as it is now. */
  socketPath?: string | null;
}

type Identities = Array<{ blob: Uint8Array; comment: string }>;
/** The key list `Agent.openOp` fetched, handed to the constructor so it does not ask again. */
const kListed = Symbol('listed identities');
type ListedOptions = AgentOptions & { [kListed]?: Identities };

function socketPathOf(options: AgentOptions): string | null {
  const path = options.socketPath !== undefined ? options.socketPath : process.env.SSH_AUTH_SOCK;
  return path ? path : null;
}

/**
 * Paramiko's `Agent`: the SSH agent named by `SSH_AUTH_SOCK`, and the keys it holds.
 *
 * The constructor lists the keys at once (a blocking call; the socket lives in the transport
 * worker, which opens a connection per request). With no agent running, or SSH_AUTH_SOCK unset
 * or dangling, it still succeeds and `getKeys()` is empty, as in Paramiko. An agent that
 * answers with something other than its key list raises SSHException. Keys of types this
 * library cannot read (e.g. FIDO `sk-*` keys) are left out.
 *
 * The socket path is read here, on the main thread: the worker's `process.env` is a copy taken
 * when it started, so later changes of SSH_AUTH_SOCK would not reach it.
 */
export class Agent {
  /** The agent's socket, or null when SSH_AUTH_SOCK was not set. */
  readonly socketPath: string | null;
  private keys: AgentKey[] = [];
  private isClosed = false;

  constructor(options: AgentOptions = {}) {
    this.socketPath = socketPathOf(options);
    if (!this.socketPath) return;
    this.keys = this.agentKeys((options as ListedOptions)[kListed] ?? runSync(Agent.identitiesOp(this.socketPath)));
  }

  /** The listed identities as AgentKeys, less those of types this library cannot read. */
  private agentKeys(ids: Identities): AgentKey[] {
    const keys: AgentKey[] = [];
    for (const { blob, comment } of ids) {
      try {
        keys.push(new AgentKey(this, Buffer.from(toBuffer(blob) as Buffer), comment));
      } catch (e) {
        if (!(e instanceof UnknownKeyType)) {
          throw new SSHException(`the SSH agent listed a malformed key (${comment || 'no comment'}): ${(e as Error).message}`, { cause: e });
        }
        debug('agent key %j skipped: %s', comment, (e as Error).message);
      }
    }
    return keys;
  }

  /** The promise twin of `new Agent(options)`: lists the agent's keys without blocking. */
  static openAsync(options: AgentOptions = {}): Promise<Agent> {
    return runAsync(Agent.openOp(options));
  }

  /** @internal `new Agent(options)` as an op, for the twins of the calls that make one. */
  static *openOp(options: AgentOptions = {}): Op<Agent> {
    const path = socketPathOf(options);
    const listed = path ? yield* Agent.identitiesOp(path) : [];
    return new Agent({ ...options, socketPath: path, [kListed]: listed } as ListedOptions);
  }

  private static *identitiesOp(socketPath: string): Op<Identities> {
    return yield* request<Identities>('agent', 'identities', { socketPath }, IDENTITIES_TIMEOUT);
  }

  /**
   * Beyond Paramiko (AsyncSSH's add_keys, ssh-add): adds private keys, or key files by path (a
   * `-cert.pub` beside one goes with it), to the agent. A key with a certificate is added twice,
   * as ssh-add does: plain and certified. `lifetime` (seconds) and `confirm` constrain them. The
   * key list (`getKeys`) is read again afterwards. SSHException when the agent refuses one (a
   * locked agent refuses all): the keys before it stay added.
   */
  addKeys(keys: PKey | string | Array<PKey | string>, options: AddKeysOptions = {}): void {
    runSync(this.addKeysOp(keys, options));
  }

  /** The promise twin of addKeys. */
  addKeysAsync(keys: PKey | string | Array<PKey | string>, options: AddKeysOptions = {}): Promise<void> {
    return runAsync(this.addKeysOp(keys, options));
  }

  private *addKeysOp(keys: PKey | string | Array<PKey | string>, options: AddKeysOptions): Op<void> {
    const path = this.managed('add keys to');
    const list = (Array.isArray(keys) ? keys : [keys]).map((k) => (typeof k === 'string' ? PKey.fromPath(k, options.passphrase ?? null) : k));
    for (const key of list) {
      if (key instanceof AgentKey || !key.canSign()) throw new SSHException(`only a private key can be added to an agent, not the public ${key.getName()} key ${key.fingerprint}`);
    }
    const constraints = { lifetime: options.lifetime, confirm: options.confirm };
    if (constraints.lifetime != null && !(Number.isInteger(constraints.lifetime) && constraints.lifetime > 0 && constraints.lifetime <= 0xffffffff)) {
      throw new TypeError(`lifetime must be a whole number of seconds, not ${constraints.lifetime}`);
    }
    try {
      for (const key of list) {
        for (const cert of key.publicBlob ? [false, true] : [false]) {
          const what = `add the ${cert ? `${key.publicBlob!.keyType} certificate` : `${key.getName()} key`} ${key.fingerprint}`;
          parseSuccess(yield* this.requestOp(path, encodeAddIdentity(agentKeyFields(key, cert), key.comment, constraints)), what);
        }
      }
    } finally {
      yield* this.refreshOp(path);
    }
  }

  /**
   * AsyncSSH's remove_keys (ssh-add -d): removes these keys (PKeys or AgentKeys; a key with a
   * certificate, the certificate too, as ssh-add) from the agent; SSHException for one it does
   * not hold.
   */
  removeKeys(keys: PKey | Array<PKey>): void {
    runSync(this.removeKeysOp(keys));
  }

  /** The promise twin of removeKeys. */
  removeKeysAsync(keys: PKey | Array<PKey>): Promise<void> {
    return runAsync(this.removeKeysOp(keys));
  }

  private *removeKeysOp(keys: PKey | Array<PKey>): Op<void> {
    const path = this.managed('remove keys from');
    try {
      for (const key of Array.isArray(keys) ? keys : [keys]) {
        const blobs = key instanceof AgentKey ? [key.blob] : [key.asBytes(), ...(key.publicBlob ? [key.publicBlob.keyBlob] : [])];
        for (const blob of blobs) parseSuccess(yield* this.requestOp(path, encodeRemoveIdentity(blob)), `remove the ${key.getName()} key ${key.fingerprint}`);
      }
    } finally {
      yield* this.refreshOp(path);
    }
  }

  /** AsyncSSH's remove_all (ssh-add -D): every key leaves the agent. */
  removeAll(): void {
    runSync(this.removeAllOp());
  }

  /** The promise twin of removeAll. */
  removeAllAsync(): Promise<void> {
    return runAsync(this.removeAllOp());
  }

  private *removeAllOp(): Op<void> {
    const path = this.managed('remove keys from');
    parseSuccess(yield* this.requestOp(path, encodeRemoveAll()), 'remove all keys');
    yield* this.refreshOp(path);
  }

  /** AsyncSSH's lock (ssh-add -x): the agent lists and signs nothing until unlocked with `passphrase`. */
  lock(passphrase: string): void {
    runSync(this.lockOp(true, passphrase));
  }

  /** The promise twin of lock. */
  lockAsync(passphrase: string): Promise<void> {
    return runAsync(this.lockOp(true, passphrase));
  }

  /** AsyncSSH's unlock (ssh-add -X); SSHException for a wrong passphrase (or an agent not locked). */
  unlock(passphrase: string): void {
    runSync(this.lockOp(false, passphrase));
  }

  /** The promise twin of unlock. */
  unlockAsync(passphrase: string): Promise<void> {
    return runAsync(this.lockOp(false, passphrase));
  }

  private *lockOp(lock: boolean, passphrase: string): Op<void> {
    const path = this.managed(lock ? 'lock' : 'unlock');
    parseSuccess(yield* this.requestOp(path, encodeLock(lock, passphrase)), lock ? 'lock (already locked?)' : 'unlock (wrong passphrase, or not locked)');
    yield* this.refreshOp(path);
  }

  /** The socket of an open agent that can be changed; SSHException naming `what` otherwise. */
  private managed(what: string): string {
    if (this.isClosed) throw new SSHException(`cannot ${what} a closed Agent`);
    if (!this.socketPath) throw new SSHException(`cannot ${what} the SSH agent: SSH_AUTH_SOCK is not set (or pass socketPath)`);
    return this.socketPath;
  }

  private *requestOp(socketPath: string, bytes: Buffer): Op<Buffer> {
    return Buffer.from(toBuffer(yield* request<Uint8Array>('agent', 'request', { socketPath, request: bytes }, MANAGE_TIMEOUT)) as Buffer);
  }

  /** Reads the key list again after a change. */
  private *refreshOp(socketPath: string): Op<void> {
    this.keys = this.agentKeys(yield* Agent.identitiesOp(socketPath));
  }

  /** The agent's keys, in the agent's order (Paramiko's tuple, as an array); [] once closed. */
  getKeys(): AgentKey[] {
    return [...this.keys];
  }

  /** Forgets the keys; an AgentKey of a closed Agent can no longer sign. */
  close(): void {
    this.isClosed = true;
    this.keys = [];
  }

  get closed(): boolean {
    return this.isClosed;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
