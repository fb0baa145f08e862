import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';

/** The key types this module generates, with the options `generateKeyPairSync` takes for each. */
export type KeyGenSpec =
  | { type: 'rsa'; modulusLength: number; publicExponent?: number }
  | { type: 'ec'; namedCurve: string }
  | { type: 'ed25519' }
  | { type: 'x25519' };

/**
 * A fresh private key that shares nothing with the job that generated it, and its JWK (which
 * holds the public fields too: `n`/`e`, `x`/`y`).
 *
 * Why not `generateKeyPairSync(type).privateKey`: in Node 20 the job object that makes the keys
 * shares a native mutex with the KeyObjects it returns, and its destructor takes that mutex when
 * the garbage collector frees the job. If that collection runs while the same thread holds the
 * mutex in an operation that allocates (exporting the key as JWK, for example), the thread waits
 * on itself forever. The job is garbage as soon as `generateKeyPairSync` returns, so this hung
 * the demo about one run in ten (a 3072-bit RSA host key, then its JWK export).
 *
 * Asking the job for JWK encodings of both halves (made while the job is alive) and importing
 * the private one gives a KeyObject with a mutex of its own. JWK rather than DER: OpenSSL 3's DER
 * encoders and decoders cost ~10x more, and X25519 keys are made for every key exchange.
 */
export function generateKeyPair(spec: KeyGenSpec): { privateKey: KeyObject; jwk: JsonWebKey } {
  const { type, ...options } = spec;
  // @types/node has no overload for JWK encodings, which Node has taken since 15.9.
  const generate = generateKeyPairSync as unknown as (type: string, options: object) => { privateKey: JsonWebKey; publicKey: JsonWebKey };
  const { privateKey: jwk } = generate(type, { ...options, publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } });
  return { privateKey: createPrivateKey({ key: jwk, format: 'jwk' }), jwk };
}
