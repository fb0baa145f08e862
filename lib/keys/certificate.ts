import { readLocalFile } from '../files';
import { SSHException, UnknownKeyType } from '../errors';
import { Message } from '../wire/message';
import { keyClassForType } from './registry';
import type { PKey } from './pkey';

const CERT_SUFFIX = '-cert-v01@openssh.com';
/** Certificate types (PROTOCOL.certkeys). */
export const SSH2_CERT_TYPE_USER = 1;
export const SSH2_CERT_TYPE_HOST = 2;
/** valid_before of a certificate that never expires. */
const FOREVER = 0xffffffffffffffffn;

export function isCertType(keyType: string): boolean {
  return keyType.endsWith(CERT_SUFFIX);
}

/** The key type a certificate type certifies: 'ssh-ed25519-cert-v01@openssh.com' -> 'ssh-ed25519'. */
export function certBaseType(certType: string): string {
  return certType.slice(0, -CERT_SUFFIX.length);
}

function splitLine(text: string): { keyType: string; blob: Buffer; comment: string } {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  if (!line) throw new SSHException('no public key or certificate in the text');
  const [keyType, b64, ...rest] = line.split(/\s+/);
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new SSHException(`invalid base64 in ${keyType} line`);
  return { keyType, blob: Buffer.from(b64, 'base64'), comment: rest.join(' ') };
}

/**
 * A public key type, blob and comment as found in a `.pub` line (Paramiko's `PublicBlob`).
 * Certificates parse further into `SSHCertificate`.
 */
export class PublicBlob {
  constructor(
    readonly keyType: string,
    readonly keyBlob: Buffer,
    readonly comment: string = '',
  ) {
    const inner = new Message(keyBlob).getText();
    if (inner !== keyType) {
      throw new SSHException(`PublicBlob type ${JSON.stringify(keyType)} does not match the blob's ${JSON.stringify(inner)}`);
    }
  }

  /** From a `.pub` / `-cert.pub` line. */
  static fromString(text: string): PublicBlob {
    const { keyType, blob, comment } = splitLine(text);
    return isCertType(keyType) ? SSHCertificate.fromBlob(blob, comment) : new PublicBlob(keyType, blob, comment);
  }

  static fromFile(filename: string): PublicBlob {
    return PublicBlob.fromString(readLocalFile(filename, 'utf8'));
  }

  /** From a Message holding a blob (the type is read from it). */
  static fromMessage(msg: Message): PublicBlob {
    const blob = msg.getRemainder();
    const keyType = new Message(blob).getText();
    return isCertType(keyType) ? SSHCertificate.fromBlob(blob) : new PublicBlob(keyType, blob);
  }

  asBytes(): Buffer {
    return this.keyBlob;
  }

  toString(): string {
    return `${this.keyType} ${this.keyBlob.toString('base64')}${this.comment ? ' ' + this.comment : ''}`;
  }

  equals(other: unknown): boolean {
    return other instanceof PublicBlob && this.keyBlob.equals(other.keyBlob);
  }
}

/** An OpenSSH certificate (`<type>-cert-v01@openssh.com`, PROTOCOL.certkeys) with its fields. */
export class SSHCertificate extends PublicBlob {
  /** The certified public key. */
  readonly key: PKey;
  readonly nonce: Buffer;
  readonly serial: bigint;
  /** SSH2_CERT_TYPE_USER (1) or SSH2_CERT_TYPE_HOST (2). */
  readonly certType: number;
  readonly keyId: string;
  /** Principals (user or host names); empty means any. */
  readonly validPrincipals: string[];
  /** Seconds since the epoch. */
  readonly validAfter: bigint;
  /** Seconds since the epoch; 2^64-1 means forever. */
  readonly validBefore: bigint;
  /** Critical options, e.g. force-command, source-address: name -> value ('' for flags). */
  readonly criticalOptions: Map<string, string>;
  /** Extensions, e.g. permit-pty: name -> value ('' for flags). */
  readonly extensions: Map<string, string>;
  /** The CA's public key. */
  readonly signatureKey: PKey;
  /** The CA's signature blob (string algorithm, string signature). */
  readonly signature: Buffer;
  /** The bytes the signature covers (everything before the signature). */
  readonly signedData: Buffer;

  private constructor(keyType: string, blob: Buffer, comment: string) {
    super(keyType, blob, comment);
    const m = new Message(blob);
    m.getText();
    this.nonce = m.getString();
    const base = certBaseType(keyType);
    const cls = keyClassForType(base);
    if (!cls) throw new UnknownKeyType(keyType, blob);
    this.key = new cls({ key: cls.publicFromBlob(base, m) });
    this.serial = m.getInt64();
    this.certType = m.getInt();
    if (this.certType !== SSH2_CERT_TYPE_USER && this.certType !== SSH2_CERT_TYPE_HOST) {
      throw new SSHException(`certificate of unknown type ${this.certType} (1 is user, 2 is host)`);
    }
    this.keyId = m.getText();
    this.validPrincipals = readStrings(m.getString());
    this.validAfter = m.getInt64();
    this.validBefore = m.getInt64();
    this.criticalOptions = readOptions(m.getString(), 'critical option');
    this.extensions = readOptions(m.getString(), 'extension');
    m.getString(); // reserved
    const caBlob = m.getString();
    this.signedData = blob.subarray(0, m.position);
    this.signature = m.getString();
    if (m.remaining) throw new SSHException(`${m.remaining} stray bytes after the certificate`);
    const caType = new Message(caBlob).getText();
    if (isCertType(caType)) throw new SSHException('certificate signed by another certificate: a CA key must be a plain key');
    const caCls = keyClassForType(caType);
    if (!caCls) throw new UnknownKeyType(caType, caBlob);
    this.signatureKey = new caCls({ data: caBlob });
  }

  static fromBlob(blob: Buffer, comment = ''): SSHCertificate {
    const keyType = new Message(blob).getText();
    if (!isCertType(keyType)) throw new SSHException(`not a certificate: ${JSON.stringify(keyType)}`);
    return new SSHCertificate(keyType, blob, comment);
  }

  static override fromString(text: string): SSHCertificate {
    const { keyType, blob, comment } = splitLine(text);
    if (!isCertType(keyType)) throw new SSHException(`not a certificate: ${JSON.stringify(keyType)}`);
    return SSHCertificate.fromBlob(blob, comment);
  }

  static override fromFile(filename: string): SSHCertificate {
    return SSHCertificate.fromString(readLocalFile(filename, 'utf8'));
  }

  /** The CA signature algorithm (e.g. 'rsa-sha2-512', 'ssh-ed25519'). */
  get signatureAlgorithm(): string {
    return new Message(this.signature).getText();
  }

  /** Whether the CA's signature over the certificate verifies. */
  verify(): boolean {
    return this.signatureKey.verifySshSig(this.signedData, this.signature);
  }

  /** Whether `when` (default now) lies in [validAfter, validBefore). */
  isValidAt(when: Date = new Date()): boolean {
    const t = BigInt(Math.floor(when.getTime() / 1000));
    return t >= this.validAfter && (this.validBefore === FOREVER || t < this.validBefore);
  }

  /** Whether `principal` may use the certificate (an empty principal list allows any). */
  allowsPrincipal(principal: string): boolean {
    return this.validPrincipals.length === 0 || this.validPrincipals.includes(principal);
  }
}

function readStrings(data: Buffer): string[] {
  const m = new Message(data);
  const out: string[] = [];
  while (m.remaining) out.push(m.getText());
  return out;
}

/** name/data pairs; data, when not empty, is itself a string (PROTOCOL.certkeys). */
function readOptions(data: Buffer, what: string): Map<string, string> {
  const m = new Message(data);
  const out = new Map<string, string>();
  while (m.remaining) {
    const name = m.getText();
    if (out.has(name)) throw new SSHException(`certificate repeats the ${what} ${JSON.stringify(name)}`);
    const value = m.getString();
    out.set(name, value.length ? new Message(value).getText() : '');
  }
  return out;
}
