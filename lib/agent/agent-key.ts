import type { KeyObject } from 'node:crypto';
import { getBridge, toBuffer } from '../bridge';
import { SSHException, UnknownKeyType } from '../errors';
import { PKey } from '../keys';
import { keyClassForType, knownKeyTypes } from '../keys/registry';
import { Message } from '../wire/message';
import type { Agent } from './agent';

/**
 * A key held by an SSH agent (Paramiko's `AgentKey`): the public half is here, the private half
 * stays in the agent, which signs on request.
 *
 * It is a real `PKey` subclass, so it passes `instanceof PKey` and every public-half method
 * works as on any key (`getName`, `asBytes`, `getBase64`, `getBits`, `fingerprint`,
 * `getFingerprint`, `verifySshSig`, `equals`, `identifiers`). They delegate to `innerKey`, the
 * ordinary public key (RSAKey, ECDSAKey...) parsed from the agent's blob. A certificate held in
 * the agent (`*-cert-v01@openssh.com`) is modelled as PKey models a loaded certificate: the key
 * is the certified key and `publicBlob` is the certificate (Paramiko's `get_name()` returns the
 * certificate type there; ours returns the key type and `identifiers()` lists both).
 *
 * Signing (`signSshData`) is a blocking call to the agent through the transport worker. Writing
 * the private key is impossible, as in Paramiko.
 */
export class AgentKey extends PKey {
  /**
   * The base constructor reads the public blob through `new.target`: as that class, AgentKey
   * reads every key type the registry knows, through the registered class of the type.
   */
  static get keyTypes(): readonly string[] {
    return knownKeyTypes();
  }

  static publicFromBlob(keyType: string, msg: Message): KeyObject {
    const cls = keyClassForType(keyType);
    if (!cls) throw new UnknownKeyType(keyType);
    return cls.publicFromBlob(keyType, msg);
  }

  /** The agent this key came from. */
  readonly agent: Agent;
  /** The identity blob exactly as the agent listed it (a certificate blob for a certificate). */
  readonly blob: Buffer;
  /** The public key: an RSAKey, ECDSAKey, Ed25519Key or DSSKey (with the certificate as publicBlob). */
  readonly innerKey: PKey;

  /** Paramiko's `AgentKey(agent, blob, comment="")`. UnknownKeyType for a type we cannot read. */
  constructor(agent: Agent, blob: Buffer, comment = '') {
    const inner = PKey.fromBlob(blob);
    super({ data: inner.asBytes() });
    this.agent = agent;
    this.blob = blob;
    this.innerKey = inner;
    this.comment = comment;
    this.publicBlob = inner.publicBlob;
  }

  getName(): string {
    return this.innerKey.getName();
  }

  getBits(): number {
    return this.innerKey.getBits();
  }

  get algorithmName(): string {
    return this.innerKey.algorithmName;
  }

  override asBytes(): Buffer {
    return this.innerKey.asBytes();
  }

  protected writePublicFields(m: Message): void {
    const blob = new Message(this.innerKey.asBytes());
    blob.getText();
    m.addBytes(blob.getRemainder());
  }

  writeOpenSSHPrivateFields(): void {
    throw new SSHException('the private half of an agent key stays in the agent');
  }

  signatureAlgorithms(): string[] {
    return this.innerKey.signatureAlgorithms();
  }

  /** True, as Paramiko: the agent holds the private key. */
  override canSign(): boolean {
    return true;
  }

  /**
   * Has the agent sign `data`; returns the SSH signature blob as a Message, as PKey does. The
   * default algorithm is PKey's (ssh-rsa for RSA, as Paramiko asks the agent with no flags);
   * 'rsa-sha2-256' / 'rsa-sha2-512' set the agent's SHA-2 flags. Waits as long as the agent
   * takes (a key added with `ssh-add -c` waits for the user's confirmation).
   */
  override signSshData(data: Buffer | string, algorithm?: string | null): Message {
    const algs = this.signatureAlgorithms();
    const alg = algorithm ?? algs[algs.length - 1];
    if (!algs.includes(alg)) {
      throw new SSHException(`${this.getName()} keys cannot make ${JSON.stringify(alg)} signatures (they make ${algs.join(', ')})`);
    }
    const sig = getBridge().call<Buffer>(
      'agent',
      'sign',
      { socketPath: agentSocketOf(this), blob: this.blob, data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data, algorithm: alg },
      null,
    );
    return new Message(toBuffer(sig) as Buffer);
  }

  override verifySshSig(data: Buffer | string, msg: Message | Buffer): boolean {
    return this.innerKey.verifySshSig(data, msg);
  }

  protected signRaw(): Buffer {
    throw new SSHException('an agent key signs through signSshData');
  }

  protected verifyRaw(data: Buffer, algorithm: string, signature: Buffer): boolean {
    return this.innerKey.verifySshSig(data, new Message().addString(algorithm).addString(signature));
  }
}

/** The socket of the agent holding `key`, for the worker to sign with; SSHException once the agent is closed. */
export function agentSocketOf(key: AgentKey): string {
  const path = key.agent.socketPath;
  if (key.agent.closed || !path) throw new SSHException('the SSH agent of this key was closed');
  return path;
}
