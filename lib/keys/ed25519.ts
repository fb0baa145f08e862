import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { generateKeyPair } from '../crypto/keygen';
import type { KeyObject } from 'node:crypto';
import { SSHException } from '../errors';
import type { Message } from '../wire/message';
import { PKey } from './pkey';
import type { PKeyOptions, Passphrase, PrivateKeyFormat } from './pkey';
import { registerKeyClass } from './registry';
import { b64u, fromB64u, jwkOf } from './jwk';

const PUBLIC_LENGTH = 32;
/** OpenSSH stores the 32-byte seed followed by the 32-byte public key. */
const OPENSSH_SECRET_LENGTH = 64;

function ed25519Key(pub: Buffer, seed?: Buffer): KeyObject {
  if (pub.length !== PUBLIC_LENGTH) throw new SSHException(`invalid Ed25519 public key: ${pub.length} bytes, expected 32`);
  const jwk: Record<string, string> = { kty: 'OKP', crv: 'Ed25519', x: b64u(pub) };
  try {
    if (!seed) return createPublicKey({ key: jwk, format: 'jwk' });
    jwk.d = b64u(seed);
    return createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new SSHException(`invalid Ed25519 key: ${(e as Error).message}`, { cause: e });
  }
}

/** Ed25519 keys: ssh-ed25519 (RFC 8709). */
export class Ed25519Key extends PKey {
  static readonly keyTypes = ['ssh-ed25519'] as const;
  static readonly nodeKeyType = 'ed25519';
  /** The 32-byte public key. */
  readonly publicBytes: Buffer;

  constructor(options: PKeyOptions) {
    super(options);
    this.publicBytes = fromB64u(jwkOf(this.publicKey).x);
  }

  static publicFromBlob(_type: string, m: Message): KeyObject {
    return ed25519Key(m.getString());
  }

  static privateFromOpenSSH(_type: string, m: Message): KeyObject {
    const pub = m.getString();
    const secret = m.getString();
    if (secret.length !== OPENSSH_SECRET_LENGTH) {
      throw new SSHException(`corrupt Ed25519 private key: secret of ${secret.length} bytes, expected 64`);
    }
    if (!secret.subarray(32).equals(pub)) throw new SSHException('corrupt Ed25519 private key: the public halves differ');
    const key = ed25519Key(pub, secret.subarray(0, 32));
    if (!fromB64u(jwkOf(key).x).equals(pub)) {
      throw new SSHException('corrupt Ed25519 private key: the seed does not give the public key');
    }
    return key;
  }

  static generate(): Ed25519Key {
    return new Ed25519Key({ key: generateKeyPair({ type: 'ed25519' }).privateKey });
  }

  getName(): string {
    return 'ssh-ed25519';
  }

  getBits(): number {
    return 256;
  }

  get algorithmName(): string {
    return 'ED25519';
  }

  protected writePublicFields(m: Message): void {
    m.addString(this.publicBytes);
  }

  writeOpenSSHPrivateFields(m: Message): void {
    const seed = fromB64u(jwkOf(this.privateKey!).d);
    m.addString(this.publicBytes).addString(Buffer.concat([seed, this.publicBytes]));
  }

  /**
   * Ed25519 has no traditional PEM form: 'pem' writes OpenSSH's format, as `ssh-keygen -m PEM`
   * does. 'pkcs8' writes PKCS#8, which OpenSSL reads but OpenSSH before 9.6 does not.
   */
  override exportPrivateKey(password: Passphrase | null = null, format: PrivateKeyFormat = 'openssh'): string {
    return super.exportPrivateKey(password, format === 'pem' ? 'openssh' : format);
  }

  signatureAlgorithms(): string[] {
    return ['ssh-ed25519'];
  }

  protected signRaw(data: Buffer): Buffer {
    return sign(null, data, this.privateKey!);
  }

  protected verifyRaw(data: Buffer, _algorithm: string, signature: Buffer): boolean {
    return signature.length === 64 && verify(null, data, this.publicKey, signature);
  }
}
registerKeyClass(Ed25519Key);
