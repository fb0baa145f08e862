import type { KeyObject } from 'node:crypto';
import { bigintToBytes, bigintToFixed, bytesToBigint } from '../wire/bigint';

/** base64url helpers for moving key numbers between SSH encodings and Node's JWK import/export. */
export function b64u(b: Buffer): string {
  return b.toString('base64url');
}

export function b64uInt(n: bigint, length?: number): string {
  return b64u(length === undefined ? bigintToBytes(n) : bigintToFixed(n, length));
}

export function fromB64u(s: string | undefined): Buffer {
  if (s === undefined) throw new Error('JWK field missing');
  return Buffer.from(s, 'base64url');
}

export function fromB64uInt(s: string | undefined): bigint {
  return bytesToBigint(fromB64u(s));
}

/** A KeyObject's JWK with string fields. */
export function jwkOf(key: KeyObject): Record<string, string> {
  return key.export({ format: 'jwk' }) as Record<string, string>;
}
