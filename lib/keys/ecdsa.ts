import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { generateKeyPair } from '../crypto/keygen';
import type { KeyObject } from 'node:crypto';
import { SSHException } from '../errors';
import { Message } from '../wire/message';
import { bigintToFixed, bytesToBigint } from '../wire/bigint';
import { PKey } from './pkey';
import type { PKeyOptions } from './pkey';
import { registerKeyClass } from './registry';
import { b64u, b64uInt, fromB64u, fromB64uInt, jwkOf } from './jwk';

/** The NIST curves of RFC 5656: SSH curve id, JWK curve name, digest, field size in bytes. */
interface Curve {
  id: 'nistp256' | 'nistp384' | 'nistp521';
  jwk: string;
  openssl: string;
  hash: string;
  bits: number;
  size: number;
}
const CURVES: Curve[] = [
  { id: 'nistp256', jwk: 'P-256', openssl: 'prime256v1', hash: 'sha256', bits: 256, size: 32 },
  { id: 'nistp384', jwk: 'P-384', openssl: 'secp384r1', hash: 'sha384', bits: 384, size: 48 },
  { id: 'nistp521', jwk: 'P-521', openssl: 'secp521r1', hash: 'sha512', bits: 521, size: 66 },
];

export type ECDSACurveName = Curve['id'];

function curveById(id: string): Curve {
  const c = CURVES.find((x) => x.id === id);
  if (!c) throw new SSHException(`unsupported ECDSA curve ${JSON.stringify(id)}`);
  return c;
}

/** Key from an SEC1 uncompressed point (0x04 || X || Y) and optionally the private scalar. */
function ecKeyFromPoint(curve: Curve, point: Buffer, d?: bigint): KeyObject {
  if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04) {
    throw new SSHException(`invalid ECDSA ${curve.id} public point (${point.length} bytes, expected an uncompressed point of ${1 + 2 * curve.size})`);
  }
  const jwk: Record<string, string> = {
    kty: 'EC',
    crv: curve.jwk,
    x: b64u(point.subarray(1, 1 + curve.size)),
    y: b64u(point.subarray(1 + curve.size)),
  };
  try {
    if (d === undefined) return createPublicKey({ key: jwk, format: 'jwk' });
    jwk.d = b64uInt(d, curve.size);
    return createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new SSHException(`invalid ECDSA ${curve.id} key (point not on the curve?): ${(e as Error).message}`, { cause: e });
  }
}

/** ECDSA keys on nistp256/384/521: ecdsa-sha2-<curve> (RFC 5656). */
export class ECDSAKey extends PKey {
  static readonly keyTypes = CURVES.map((c) => `ecdsa-sha2-${c.id}`);
  static readonly nodeKeyType = 'ec';
  readonly curve: ECDSACurveName;
  /** The uncompressed public point. */
  readonly point: Buffer;
  private readonly spec: Curve;

  constructor(options: PKeyOptions) {
    super(options);
    const jwk = jwkOf(this.publicKey);
    const spec = CURVES.find((c) => c.jwk === jwk.crv);
    if (!spec) throw new SSHException(`unsupported ECDSA curve ${jwk.crv} (SSH knows nistp256, nistp384, nistp521)`);
    this.spec = spec;
    this.curve = spec.id;
    this.point = Buffer.concat([Buffer.from([4]), fromB64u(jwk.x), fromB64u(jwk.y)]);
  }

  static publicFromBlob(keyType: string, m: Message): KeyObject {
    const curve = curveById(m.getText());
    if (`ecdsa-sha2-${curve.id}` !== keyType) throw new SSHException(`ECDSA key type ${keyType} names curve ${curve.id}`);
    return ecKeyFromPoint(curve, m.getString());
  }

  static privateFromOpenSSH(keyType: string, m: Message): KeyObject {
    const curve = curveById(m.getText());
    if (`ecdsa-sha2-${curve.id}` !== keyType) throw new SSHException(`ECDSA key type ${keyType} names curve ${curve.id}`);
    const point = m.getString();
    return ecKeyFromPoint(curve, point, m.getMpint());
  }

  /** A new key; the curve is 'nistp256' (default), 'nistp384' or 'nistp521', or give `bits`. */
  static generate(options: { curve?: ECDSACurveName; bits?: number } = {}): ECDSAKey {
    const curve = options.bits !== undefined ? CURVES.find((c) => c.bits === options.bits) : curveById(options.curve ?? 'nistp256');
    if (!curve) throw new SSHException(`ECDSA key size must be 256, 384 or 521 bits, not ${options.bits}`);
    const { privateKey } = generateKeyPair({ type: 'ec', namedCurve: curve.openssl });
    return new ECDSAKey({ key: privateKey });
  }

  getName(): string {
    return `ecdsa-sha2-${this.curve}`;
  }

  getBits(): number {
    return this.spec.bits;
  }

  get algorithmName(): string {
    return 'ECDSA';
  }

  protected writePublicFields(m: Message): void {
    m.addString(this.curve).addString(this.point);
  }

  writeOpenSSHPrivateFields(m: Message): void {
    m.addString(this.curve).addString(this.point).addMpint(fromB64uInt(jwkOf(this.privateKey!).d));
  }

  signatureAlgorithms(): string[] {
    return [this.getName()];
  }

  /** The SSH signature body is (mpint r, mpint s); OpenSSL's IEEE P1363 form is r || s. */
  protected signRaw(data: Buffer, _algorithm: string): Buffer {
    const rs = sign(this.spec.hash, data, { key: this.privateKey!, dsaEncoding: 'ieee-p1363' });
    const half = rs.length / 2;
    return new Message()
      .addMpint(bytesToBigint(rs.subarray(0, half)))
      .addMpint(bytesToBigint(rs.subarray(half)))
      .asBytes();
  }

  protected verifyRaw(data: Buffer, _algorithm: string, signature: Buffer): boolean {
    const m = new Message(signature);
    const r = m.getMpint();
    const s = m.getMpint();
    const limit = 1n << BigInt(8 * this.spec.size);
    if (m.remaining || r <= 0n || s <= 0n || r >= limit || s >= limit) return false;
    const rs = Buffer.concat([bigintToFixed(r, this.spec.size), bigintToFixed(s, this.spec.size)]);
    return verify(this.spec.hash, data, { key: this.publicKey, dsaEncoding: 'ieee-p1363' }, rs);
  }
}
registerKeyClass(ECDSAKey);
