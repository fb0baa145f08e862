import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { nativeCrypto } from './native';

/**
 * Streamlined NTRU Prime sntrup761, the post-quantum half of OpenSSH's default key exchange
 * from 9.0 to 9.8 (sntrup761x25519-sha512). Node has no NTRU Prime; this follows the NTRU
 * Prime submission's definition (round 3) and the byte formats of its reference code, which
 * OpenSSH carries.
 *
 * Ring R = Z[x]/(x^761 - x - 1); R/3 and R/q with q = 4591. "Small" polynomials have
 * coefficients in {-1, 0, 1}; "short" ones are small with exactly w = 286 nonzero.
 * - Key generation: g small and invertible in R/3, f short; h = g / (3f) in R/q.
 *   Public key: h. Secret: f, 1/g in R/3, plus h, a random rho and Hash4(h) for the KEM.
 * - Encapsulation: r short; c = Round(h r) (each coefficient to the nearest multiple of 3);
 *   ciphertext c || HashConfirm(r); key HashSession(1, r, ciphertext).
 * - Decapsulation: e = 3 f c mod 3, r = e / g in R/3 (a weight other than w gives a fixed
 *   r); re-encrypt r and compare: the key is HashSession(1, r, ...) when the ciphertext
 *   matches, HashSession(0, rho, ...) otherwise (implicit rejection).
 *
 * Inverses use the extended Euclidean algorithm, whose running time depends on the
 * polynomial: only key generation inverts, and its keys live for one key exchange.
 *
 * With the native module (lib/native/sshcrypto.c), products and inverses run there: a key pair
 * took ~25 ms in a process's first key exchange (these loops interpreted until V8 compiles them)
 * and 6-8 ms after; natively its two inversions take ~1.6 ms, the whole pair 4-5 ms the first
 * time and ~3.6 after. The TypeScript below is the same arithmetic, for a process without it.
 */
const P = 761;
const Q = 4591;
const W = 286;
const Q12 = (Q - 1) / 2;
const ROUNDED_M = (Q + 2) / 3; // 1531 values of a rounded coefficient

export const SNTRUP761_SMALL_BYTES = (P + 3) >> 2; // 191
export const SNTRUP761_PUBLIC_KEY_BYTES = 1158;
export const SNTRUP761_ROUNDED_BYTES = 1007;
export const SNTRUP761_CIPHERTEXT_BYTES = SNTRUP761_ROUNDED_BYTES + 32; // 1039
export const SNTRUP761_KEY_BYTES = 32;

type Poly = Int32Array;

/** Centred residue mod q: -2295..2295. */
function fq(x: number): number {
  let r = x % Q;
  if (r > Q12) r -= Q;
  else if (r < -Q12) r += Q;
  return r;
}

/** Centred residue mod 3: -1, 0, 1. */
function f3(x: number): number {
  let r = x % 3;
  if (r > 1) r -= 3;
  else if (r < -1) r += 3;
  return r;
}

/** a * b in Z[x]/(x^p - x - 1), b small, then each coefficient through `freeze`. */
function multiply(a: Poly, b: Poly, freeze: (x: number) => number): Poly {
  const native = nativeCrypto();
  if (!native) return multiplyJs(a, b, freeze);
  const out = new Int32Array(P);
  native.polyMultiply(a, b, out);
  for (let i = 0; i < P; i++) out[i] = freeze(out[i]);
  return out;
}

/** @internal multiply without the native module (exported for the test comparing the two). */
export function multiplyJs(a: Poly, b: Poly, freeze: (x: number) => number): Poly {
  const prod = new Int32Array(2 * P - 1);
  for (let i = 0; i < P; i++) {
    const bi = b[i];
    if (bi === 0) continue;
    for (let j = 0; j < P; j++) prod[i + j] += bi * a[j];
  }
  // x^p = x + 1: fold the top half down, highest degree first
  for (let k = 2 * P - 2; k >= P; k--) {
    prod[k - P] += prod[k];
    prod[k - P + 1] += prod[k];
  }
  const out = new Int32Array(P);
  for (let i = 0; i < P; i++) out[i] = freeze(prod[i]);
  return out;
}

function modInverse(a: number, m: number): number {
  // m is prime: a^(m-2)
  let result = 1;
  let base = a % m;
  for (let e = m - 2; e > 0; e >>= 1) {
    if (e & 1) result = (result * base) % m;
    base = (base * base) % m;
  }
  return result;
}

function degree(p: Int32Array, from: number): number {
  let d = from;
  while (d >= 0 && p[d] === 0) d--;
  return d;
}

/**
 * 1/a in (Z/m)[x]/(x^p - x - 1) for a prime m, by the extended Euclidean algorithm; null
 * when a is not invertible (possible for m = 3, where x^p - x - 1 factors). Coefficients of
 * the result are centred.
 */
function invert(a: Poly, m: number, centre: (x: number) => number): Poly | null {
  const native = nativeCrypto();
  if (!native) return invertJs(a, m, centre);
  const out = new Int32Array(P);
  if (!native.polyInvert(a, m, out)) return null;
  for (let i = 0; i < P; i++) out[i] = centre(out[i]);
  return out;
}

/** @internal invert without the native module (exported for the test comparing the two). */
export function invertJs(a: Poly, m: number, centre: (x: number) => number): Poly | null {
  const norm = (x: number) => ((x % m) + m) % m;
  let r0 = new Int32Array(P + 1);
  r0[0] = m - 1;
  r0[1] = m - 1;
  r0[P] = 1;
  let r1 = new Int32Array(P + 1);
  for (let i = 0; i < P; i++) r1[i] = norm(a[i]);
  let t0 = new Int32Array(P + 1);
  let t1 = new Int32Array(P + 1);
  t1[0] = 1;
  let d0 = P;
  let d1 = degree(r1, P - 1);
  let e0 = -1;
  let e1 = 0;
  // invariant: r_i = t_i a (mod x^p - x - 1)
  while (d1 > 0) {
    const lead = modInverse(r1[d1], m);
    while (d0 >= d1) {
      // r0 -= c x^s r1 and t0 -= c x^s t1, with c = m - (the factor): only additions to reduce
      const c = m - ((r0[d0] * lead) % m);
      const s = d0 - d1;
      for (let i = 0; i <= d1; i++) r0[i + s] = (r0[i + s] + c * r1[i]) % m;
      for (let i = 0; i <= e1; i++) t0[i + s] = (t0[i + s] + c * t1[i]) % m;
      e0 = Math.max(e0, e1 + s);
      d0 = degree(r0, d0);
    }
    [r0, r1] = [r1, r0];
    [d0, d1] = [d1, d0];
    [t0, t1] = [t1, t0];
    [e0, e1] = [e1, e0];
  }
  if (d1 < 0) return null; // a shares a factor with the modulus
  const scale = modInverse(r1[0], m);
  const out = new Int32Array(P);
  for (let i = 0; i < P; i++) out[i] = centre(t1[i] * scale);
  return out;
}

function random32(count: number): Uint32Array {
  const b = randomBytes(4 * count);
  return new Uint32Array(b.buffer, b.byteOffset, count);
}

/** Uniformly random small polynomial. */
function smallRandom(): Poly {
  const L = random32(P);
  const out = new Int32Array(P);
  for (let i = 0; i < P; i++) out[i] = Math.floor(((L[i] & 0x3fffffff) * 3) / 0x40000000) - 1;
  return out;
}

/** Uniformly random short polynomial: w coefficients ±1 at random places, sorted into place. */
function shortRandom(): Poly {
  const L = random32(P);
  for (let i = 0; i < W; i++) L[i] = (L[i] & ~1) >>> 0; // low bits 0 or 2: -1 or +1
  for (let i = W; i < P; i++) L[i] = ((L[i] & ~3) | 1) >>> 0; // low bits 1: 0
  L.sort();
  const out = new Int32Array(P);
  for (let i = 0; i < P; i++) out[i] = (L[i] & 3) - 1;
  return out;
}

function round3(a: Poly): Poly {
  const out = new Int32Array(P);
  for (let i = 0; i < P; i++) out[i] = a[i] - f3(a[i]);
  return out;
}

// --- encodings (the reference code's Encode/Decode: mixed-radix, two coefficients at a time) ---

function encode(R: number[], M: number[], out: number[]): void {
  if (R.length === 1) {
    let r = R[0];
    for (let m = M[0]; m > 1; m = (m + 255) >> 8) {
      out.push(r & 0xff);
      r >>= 8;
    }
    return;
  }
  const R2: number[] = [];
  const M2: number[] = [];
  let i = 0;
  for (; i < R.length - 1; i += 2) {
    let m = M[i] * M[i + 1];
    let r = R[i] + R[i + 1] * M[i];
    while (m >= 16384) {
      out.push(r & 0xff);
      r = Math.floor(r / 256);
      m = (m + 255) >> 8;
    }
    R2.push(r);
    M2.push(m);
  }
  if (i < R.length) {
    R2.push(R[i]);
    M2.push(M[i]);
  }
  encode(R2, M2, out);
}

function decode(S: Uint8Array, at: number, M: number[]): number[] {
  if (M.length === 1) {
    const m = M[0];
    if (m === 1) return [0];
    if (m <= 256) return [S[at] % m];
    return [(S[at] + (S[at + 1] << 8)) % m];
  }
  const bottomR: number[] = [];
  const bottomT: number[] = [];
  const M2: number[] = [];
  let i = 0;
  for (; i < M.length - 1; i += 2) {
    const m = M[i] * M[i + 1];
    if (m > 256 * 16383) {
      bottomT.push(65536);
      bottomR.push(S[at] + 256 * S[at + 1]);
      at += 2;
      M2.push((((m + 255) >> 8) + 255) >> 8);
    } else if (m >= 16384) {
      bottomT.push(256);
      bottomR.push(S[at]);
      at += 1;
      M2.push((m + 255) >> 8);
    } else {
      bottomT.push(1);
      bottomR.push(0);
      M2.push(m);
    }
  }
  if (i < M.length) M2.push(M[i]);
  const R2 = decode(S, at, M2);
  const out: number[] = [];
  for (i = 0; i < M.length - 1; i += 2) {
    const r = bottomR[i >> 1] + bottomT[i >> 1] * R2[i >> 1];
    out.push(r % M[i]);
    out.push(Math.floor(r / M[i]) % M[i + 1]);
  }
  if (i < M.length) out.push(R2[i >> 1]);
  return out;
}

function rqEncode(h: Poly): Buffer {
  const out: number[] = [];
  encode(Array.from(h, (c) => c + Q12), new Array<number>(P).fill(Q), out);
  return Buffer.from(out);
}

function rqDecode(s: Uint8Array): Poly {
  return Int32Array.from(decode(s, 0, new Array<number>(P).fill(Q)), (v) => v - Q12);
}

function roundedEncode(c: Poly): Buffer {
  const out: number[] = [];
  encode(Array.from(c, (v) => ((v + Q12) * 10923) >> 15), new Array<number>(P).fill(ROUNDED_M), out);
  return Buffer.from(out);
}

function roundedDecode(s: Uint8Array): Poly {
  return Int32Array.from(decode(s, 0, new Array<number>(P).fill(ROUNDED_M)), (v) => v * 3 - Q12);
}

function smallEncode(f: Poly): Buffer {
  const out = Buffer.alloc(SNTRUP761_SMALL_BYTES);
  for (let i = 0; i < P; i++) out[i >> 2] |= (f[i] + 1) << (2 * (i & 3));
  return out;
}

// --- hashes: the first 32 bytes of SHA-512 over a prefix byte and the input ---

function hashPrefix(b: number, ...parts: Uint8Array[]): Buffer {
  const h = createHash('sha512').update(Buffer.from([b]));
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, 32);
}

function confirmHash(rEnc: Buffer, cache: Buffer): Buffer {
  return hashPrefix(2, hashPrefix(3, rEnc), cache);
}

function sessionKey(b: number, y: Buffer, ciphertext: Uint8Array): Buffer {
  return hashPrefix(b, hashPrefix(3, y), ciphertext);
}

/** c || HashConfirm for a short r: the ciphertext, and r's encoding. */
function hide(r: Poly, h: Poly, cache: Buffer): { ciphertext: Buffer; rEnc: Buffer } {
  const rEnc = smallEncode(r);
  const c = roundedEncode(round3(multiply(h, r, fq)));
  return { ciphertext: Buffer.concat([c, confirmHash(rEnc, cache)]), rEnc };
}

export interface Sntrup761KeyPair {
  publicKey: Buffer;
  /** The shared key for a ciphertext made for publicKey (32 bytes; never throws). */
  decapsulate(ciphertext: Uint8Array): Buffer;
}

export function sntrup761KeyPair(): Sntrup761KeyPair {
  let g: Poly;
  let ginv: Poly | null;
  do {
    g = smallRandom();
    ginv = invert(g, 3, f3);
  } while (!ginv);
  const v = ginv;
  const f = shortRandom();
  const f3q = Int32Array.from(f, (c) => 3 * c);
  const finv = invert(f3q, Q, fq)!; // R/q is a field and 3f is not 0
  const h = multiply(finv, g, fq);
  const publicKey = rqEncode(h);
  const rho = randomBytes(SNTRUP761_SMALL_BYTES);
  const cache = hashPrefix(4, publicKey);
  return {
    publicKey,
    decapsulate(ciphertext: Uint8Array): Buffer {
      if (ciphertext.length !== SNTRUP761_CIPHERTEXT_BYTES) throw new RangeError(`sntrup761 ciphertext must be ${SNTRUP761_CIPHERTEXT_BYTES} bytes, not ${ciphertext.length}`);
      const c = roundedDecode(ciphertext.subarray(0, SNTRUP761_ROUNDED_BYTES));
      const cf3 = Int32Array.from(multiply(c, f, fq), (x) => fq(3 * x));
      const e = Int32Array.from(cf3, f3);
      const ev = multiply(e, v, f3);
      let weight = 0;
      for (let i = 0; i < P; i++) weight += ev[i] & 1;
      const r = weight === W ? ev : Int32Array.from({ length: P }, (_, i) => (i < W ? 1 : 0));
      const again = hide(r, h, cache); // h's coefficients are those the public key encodes
      const same = timingSafeEqual(again.ciphertext, ciphertext);
      return same ? sessionKey(1, again.rEnc, ciphertext) : sessionKey(0, rho, ciphertext);
    },
  };
}

/**
 * A fresh key pair for one key exchange. Generation costs 4-5 ms (the inversions), so the next
 * one is made ahead, when the event loop is next idle, and handed out once: a script that opens
 * connection after connection does not wait for it. No pair is ever given twice.
 */
let spare: Sntrup761KeyPair | null = null;
let refilling = false;
export function takeSntrup761KeyPair(): Sntrup761KeyPair {
  const pair = spare ?? sntrup761KeyPair();
  spare = null;
  prepareSntrup761KeyPair();
  return pair;
}

/**
 * Makes the spare pair when the event loop is next idle, if there is none: a client calls it
 * as it sends its version, so the generation overlaps the wait for the server's (one round
 * trip, more than the generation on any remote link).
 */
export function prepareSntrup761KeyPair(): void {
  if (spare || refilling) return;
  refilling = true;
  setImmediate(() => {
    refilling = false;
    spare ??= sntrup761KeyPair();
  }).unref();
}

/** A ciphertext for `publicKey` and the shared key it carries. */
export function sntrup761Encapsulate(publicKey: Uint8Array): { ciphertext: Buffer; key: Buffer } {
  if (publicKey.length !== SNTRUP761_PUBLIC_KEY_BYTES) throw new RangeError(`sntrup761 public key must be ${SNTRUP761_PUBLIC_KEY_BYTES} bytes, not ${publicKey.length}`);
  const h = rqDecode(publicKey);
  const { ciphertext, rEnc } = hide(shortRandom(), h, hashPrefix(4, publicKey));
  return { ciphertext, key: sessionKey(1, rEnc, ciphertext) };
}
