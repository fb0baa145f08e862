import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SSHException } from '../errors';
import type { Message } from '../wire/message';
import { bigintToFixed, bytesToBigint } from '../wire/bigint';
import { PKey } from './pkey';
import type { PKeyOptions, Passphrase, PrivateKeyFormat } from './pkey';
import { registerKeyClass } from './registry';
import { DerReader, TAG_BIT_STRING, TAG_OCTET_STRING, derInteger, derOid, derSequence, derTLV } from './der';

const DSA_OID = '1.2.840.10040.4.1';
/** ssh-dss signatures are r || s, 20 bytes each (FIPS 186-2, 160-bit q). */
const DSS_HALF = 20;
const MAX_DSA_BITS = 10000;

interface DsaParams {
  p: bigint;
  q: bigint;
  g: bigint;
}

function algorithmIdentifier({ p, q, g }: DsaParams): Buffer {
  return derSequence(derOid(DSA_OID), derSequence(derInteger(p), derInteger(q), derInteger(g)));
}

function dsaKey(params: DsaParams, y: bigint, x?: bigint): KeyObject {
  if (params.p.toString(2).length > MAX_DSA_BITS) throw new SSHException('DSA modulus too large');
  try {
    if (x === undefined) {
      const spki = derSequence(algorithmIdentifier(params), derTLV(TAG_BIT_STRING, Buffer.concat([Buffer.from([0]), derInteger(y)])));
      return createPublicKey({ key: spki, format: 'der', type: 'spki' });
    }
    const pkcs8 = derSequence(derInteger(0n), algorithmIdentifier(params), derTLV(TAG_OCTET_STRING, derInteger(x)));
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    if (readPublic(createPublicKey(key)).y !== y) throw new SSHException('corrupt DSA private key: x does not give y');
    return key;
  } catch (e) {
    if (e instanceof SSHException) throw e;
    throw new SSHException(`invalid DSA key: ${(e as Error).message}`, { cause: e });
  }
}

function readPublic(key: KeyObject): DsaParams & { y: bigint } {
  const spki = new DerReader(key.export({ format: 'der', type: 'spki' }) as Buffer).sequence();
  const alg = spki.sequence();
  alg.next();
  const params = alg.sequence();
  const p = params.integer();
  const q = params.integer();
  const g = params.integer();
  const bits = spki.next(TAG_BIT_STRING).body;
  const y = new DerReader(bits.subarray(1)).integer();
  return { p, q, g, y };
}

/**
 * Legacy DSA keys (ssh-dss): loaded, verified and able to sign for old servers, but never
 * generated or written. OpenSSH disabled ssh-dss by default in 7.0 and Paramiko 4.0 removed it.
 */
export class DSSKey extends PKey {
  static readonly keyTypes = ['ssh-dss'] as const;
  static readonly nodeKeyType = 'dsa';
  readonly p: bigint;
  readonly q: bigint;
  readonly g: bigint;
  readonly y: bigint;

  constructor(options: PKeyOptions) {
    super(options);
    ({ p: this.p, q: this.q, g: this.g, y: this.y } = readPublic(this.publicKey));
  }

  static publicFromBlob(_type: string, m: Message): KeyObject {
    const p = m.getMpint();
    const q = m.getMpint();
    const g = m.getMpint();
    return dsaKey({ p, q, g }, m.getMpint());
  }

  static privateFromOpenSSH(_type: string, m: Message): KeyObject {
    const p = m.getMpint();
    const q = m.getMpint();
    const g = m.getMpint();
    const y = m.getMpint();
    return dsaKey({ p, q, g }, y, m.getMpint());
  }

  getName(): string {
    return 'ssh-dss';
  }

  getBits(): number {
    return this.p.toString(2).length;
  }

  get algorithmName(): string {
    return 'DSA';
  }

  protected writePublicFields(m: Message): void {
    m.addMpint(this.p).addMpint(this.q).addMpint(this.g).addMpint(this.y);
  }

  writeOpenSSHPrivateFields(): void {
    throw new SSHException('DSSKey is for loading and verifying legacy keys: paramiko-ts does not write DSA keys');
  }

  override exportPrivateKey(_password?: Passphrase | null, _format?: PrivateKeyFormat): string {
    throw new SSHException('DSSKey is for loading and verifying legacy keys: paramiko-ts does not write DSA keys');
  }

  signatureAlgorithms(): string[] {
    return ['ssh-dss'];
  }

  protected signRaw(data: Buffer): Buffer {
    return sign('sha1', data, { key: this.privateKey!, dsaEncoding: 'ieee-p1363' });
  }

  protected verifyRaw(data: Buffer, _algorithm: string, signature: Buffer): boolean {
    if (signature.length !== 2 * DSS_HALF) return false;
    // Normalise through bigint so a q shorter than 160 bits still gets OpenSSL's expected width.
    const width = Math.ceil(this.q.toString(2).length / 8);
    const r = bytesToBigint(signature.subarray(0, DSS_HALF));
    const s = bytesToBigint(signature.subarray(DSS_HALF));
    try {
      const rs = Buffer.concat([bigintToFixed(r, width), bigintToFixed(s, width)]);
      return verify('sha1', data, { key: this.publicKey, dsaEncoding: 'ieee-p1363' }, rs);
    } catch {
      return false;
    }
  }
}
registerKeyClass(DSSKey);
