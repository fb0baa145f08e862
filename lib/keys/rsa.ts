import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { generateKeyPair } from '../crypto/keygen';
import type { KeyObject } from 'node:crypto';
import { SSHException } from '../errors';
import type { Message } from '../wire/message';
import { PKey } from './pkey';
import type { PKeyOptions } from './pkey';
import { registerKeyClass } from './registry';
import { b64uInt, fromB64uInt, jwkOf } from './jwk';

/** Signature algorithm name -> digest (RFC 8332; ssh-rsa is SHA-1, RFC 4253). */
const RSA_HASHES: Record<string, string> = {
  'rsa-sha2-512': 'sha512',
  'rsa-sha2-256': 'sha256',
  'ssh-rsa': 'sha1',
};
/** OpenSSH refuses RSA keys under 1024 bits (SSH_RSA_MINIMUM_MODULUS_SIZE). */
const MIN_RSA_BITS = 1024;
/** Modulus sizes past this are hostile input, not keys (OpenSSH caps at 16384). */
const MAX_RSA_BITS = 16384;

function rsaKeyFromNumbers(n: bigint, e: bigint, priv?: { d: bigint; p: bigint; q: bigint; iqmp: bigint }): KeyObject {
  const bits = n.toString(2).length;
  if (bits > MAX_RSA_BITS) throw new SSHException(`RSA modulus of ${bits} bits is larger than ${MAX_RSA_BITS}`);
  if (e < 3n || e % 2n === 0n) throw new SSHException('invalid RSA public exponent');
  const jwk: Record<string, string> = { kty: 'RSA', n: b64uInt(n), e: b64uInt(e) };
  try {
    if (!priv) return createPublicKey({ key: jwk, format: 'jwk' });
    if (priv.p * priv.q !== n) throw new SSHException('corrupt RSA private key: p*q is not the modulus');
    Object.assign(jwk, {
      d: b64uInt(priv.d),
      p: b64uInt(priv.p),
      q: b64uInt(priv.q),
      dp: b64uInt(priv.d % (priv.p - 1n)),
      dq: b64uInt(priv.d % (priv.q - 1n)),
      qi: b64uInt(priv.iqmp),
    });
    return createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    if (e instanceof SSHException) throw e;
    throw new SSHException(`invalid RSA key: ${(e as Error).message}`, { cause: e });
  }
}

/** RSA keys: ssh-rsa, signing with rsa-sha2-512, rsa-sha2-256 or (legacy) ssh-rsa. */
export class RSAKey extends PKey {
  static readonly keyTypes = ['ssh-rsa'] as const;
  static readonly nodeKeyType = 'rsa';
  readonly n: bigint;
  readonly e: bigint;

  constructor(options: PKeyOptions) {
    super(options);
    const jwk = jwkOf(this.publicKey);
    this.n = fromB64uInt(jwk.n);
    this.e = fromB64uInt(jwk.e);
  }

  static publicFromBlob(_type: string, m: Message): KeyObject {
    const e = m.getMpint();
    const n = m.getMpint();
    return rsaKeyFromNumbers(n, e);
  }

  static privateFromOpenSSH(_type: string, m: Message): KeyObject {
    const n = m.getMpint();
    const e = m.getMpint();
    const d = m.getMpint();
    const iqmp = m.getMpint();
    const p = m.getMpint();
    const q = m.getMpint();
    return rsaKeyFromNumbers(n, e, { d, p, q, iqmp });
  }

  /** A new RSA key (2048, 3072 or 4096 bits are the usual sizes; OpenSSH's default is 3072). */
  static generate(bits = 3072): RSAKey {
    if (!Number.isInteger(bits) || bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw new SSHException(`RSA key size must be ${MIN_RSA_BITS}-${MAX_RSA_BITS} bits, not ${bits}`);
    }
    const { privateKey } = generateKeyPair({ type: 'rsa', modulusLength: bits, publicExponent: 65537 });
    return new RSAKey({ key: privateKey });
  }

  getName(): string {
    return 'ssh-rsa';
  }

  getBits(): number {
    return this.n.toString(2).length;
  }

  get algorithmName(): string {
    return 'RSA';
  }

  protected writePublicFields(m: Message): void {
    m.addMpint(this.e).addMpint(this.n);
  }

  writeOpenSSHPrivateFields(m: Message): void {
    const jwk = jwkOf(this.privateKey!);
    m.addMpint(this.n).addMpint(this.e).addMpint(fromB64uInt(jwk.d)).addMpint(fromB64uInt(jwk.qi));
    m.addMpint(fromB64uInt(jwk.p)).addMpint(fromB64uInt(jwk.q));
  }

  /** Strongest first; the default when none is named is ssh-rsa, as Paramiko's sign_ssh_data. */
  signatureAlgorithms(): string[] {
    return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  }

  protected signRaw(data: Buffer, algorithm: string): Buffer {
    return sign(RSA_HASHES[algorithm], data, this.privateKey!);
  }

  protected verifyRaw(data: Buffer, algorithm: string, signature: Buffer): boolean {
    // OpenSSH accepts a signature shorter than the modulus (leading zeros dropped); OpenSSL wants
    // it padded to the modulus length.
    const len = Math.ceil(this.getBits() / 8);
    if (signature.length > len) return false;
    const sig = signature.length < len ? Buffer.concat([Buffer.alloc(len - signature.length), signature]) : signature;
    return verify(RSA_HASHES[algorithm], data, this.publicKey, sig);
  }
}
registerKeyClass(RSAKey);
