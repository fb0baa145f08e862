import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * ML-KEM-768 (FIPS 203), the post-quantum half of mlkem768x25519-sha256, OpenSSH's default
 * key exchange from 9.9. Node 20's OpenSSL has no ML-KEM; this follows the standard's
 * algorithms (numbers in the comments are FIPS 203's), with SHA3 and SHAKE from node:crypto.
 *
 * Ring R_q = Z_q[x]/(x^256 + 1), q = 3329, module rank k = 3. Polynomials are kept as
 * Int32Arrays of 256 coefficients in [0, q); vectors and matrices of them in NTT form where
 * the standard multiplies.
 * - KeyGen: A from SHAKE128(rho), s and e from SHAKE256(sigma) (centred binomial, eta = 2);
 *   t = A s + e. Encapsulation key: t || rho. Decapsulation key: s || ek || H(ek) || z.
 * - Encaps: (K, r) = G(m || H(ek)); u = A^T y + e1, v = t^T y + e2 + m (q/2 per bit),
 *   compressed to 10 and 4 bits.
 * - Decaps: decrypt m', re-encrypt and compare; on a mismatch the key is J(z || c) (implicit
 *   rejection), so a bad ciphertext yields a key nobody else has, never an error.
 *
 * Not written to run in constant time (JavaScript gives no such guarantee): the keys of a key
 * exchange live for one exchange.
 */
const N = 256;
const Q = 3329;
const K = 3;
const DU = 10;
const DV = 4;
const POLY_BYTES = 384; // ByteEncode12 of one polynomial

export const MLKEM768_PUBLIC_KEY_BYTES = POLY_BYTES * K + 32; // 1184
export const MLKEM768_SECRET_KEY_BYTES = 2 * POLY_BYTES * K + 96; // 2400
export const MLKEM768_CIPHERTEXT_BYTES = 32 * (DU * K + DV); // 1088
export const MLKEM768_KEY_BYTES = 32;

type Poly = Int32Array;

function powMod(base: number, exp: number): number {
  let r = 1;
  for (let i = 0; i < exp; i++) r = (r * base) % Q;
  return r;
}

function bitRev7(i: number): number {
  let r = 0;
  for (let b = 0; b < 7; b++) r |= ((i >> b) & 1) << (6 - b);
  return r;
}

/** zeta^BitRev7(i) for the NTT, and zeta^(2 BitRev7(i) + 1) for base-case multiplication. */
const ZETAS = Int32Array.from({ length: 128 }, (_, i) => powMod(17, bitRev7(i)));
const GAMMAS = Int32Array.from({ length: 128 }, (_, i) => powMod(17, 2 * bitRev7(i) + 1));
const INV_128 = 3303; // 128^-1 mod q

/** Algorithm 9, in place. */
function ntt(f: Poly): Poly {
  let k = 1;
  for (let len = 128; len >= 2; len >>= 1) {
    for (let start = 0; start < N; start += 2 * len) {
      const zeta = ZETAS[k++];
      for (let j = start; j < start + len; j++) {
        const t = (zeta * f[j + len]) % Q;
        f[j + len] = (f[j] - t + Q) % Q;
        f[j] = (f[j] + t) % Q;
      }
    }
  }
  return f;
}

/** Algorithm 10, in place. */
function invNtt(f: Poly): Poly {
  let k = 127;
  for (let len = 2; len <= 128; len <<= 1) {
    for (let start = 0; start < N; start += 2 * len) {
      const zeta = ZETAS[k--];
      for (let j = start; j < start + len; j++) {
        const t = f[j];
        f[j] = (t + f[j + len]) % Q;
        f[j + len] = (zeta * (f[j + len] - t + Q)) % Q;
      }
    }
  }
  for (let j = 0; j < N; j++) f[j] = (f[j] * INV_128) % Q;
  return f;
}

/** acc += a * b in the NTT domain (Algorithms 11 and 12). */
function multiplyAdd(acc: Poly, a: Poly, b: Poly): void {
  for (let i = 0; i < 128; i++) {
    const a0 = a[2 * i];
    const a1 = a[2 * i + 1];
    const b0 = b[2 * i];
    const b1 = b[2 * i + 1];
    acc[2 * i] = (acc[2 * i] + a0 * b0 + ((a1 * b1) % Q) * GAMMAS[i]) % Q;
    acc[2 * i + 1] = (acc[2 * i + 1] + a0 * b1 + a1 * b0) % Q;
  }
}

/** The sum over j of row[j] * v[j], in the NTT domain. */
function innerProduct(row: Poly[], v: Poly[]): Poly {
  const acc = new Int32Array(N);
  for (let j = 0; j < K; j++) multiplyAdd(acc, row[j], v[j]);
  return acc;
}

function addInto(a: Poly, b: Poly): Poly {
  for (let i = 0; i < N; i++) a[i] = (a[i] + b[i]) % Q;
  return a;
}

/**
 * Algorithm 7: a uniform polynomial in NTT form from SHAKE128(rho || j || i) by rejection of
 * 12-bit values >= q. 840 bytes of output almost always suffice (256 values need ~471 bytes on
 * average); when they do not, a longer output of the same XOF (a prefix-extension) is taken.
 */
function sampleNtt(seed: Buffer): Poly {
  for (let length = 840; ; length *= 2) {
    const stream = createHash('shake128', { outputLength: length }).update(seed).digest();
    const a = new Int32Array(N);
    let j = 0;
    for (let o = 0; o + 3 <= length && j < N; o += 3) {
      const d1 = stream[o] | ((stream[o + 1] & 0x0f) << 8);
      const d2 = (stream[o + 1] >> 4) | (stream[o + 2] << 4);
      if (d1 < Q) a[j++] = d1;
      if (d2 < Q && j < N) a[j++] = d2;
    }
    if (j === N) return a;
  }
}

/** The matrix A-hat: A[i][j] = SampleNTT(rho || j || i); `transpose` gives A^T. */
function expandMatrix(rho: Buffer, transpose: boolean): Poly[][] {
  const seed = Buffer.alloc(34);
  rho.copy(seed);
  const rows: Poly[][] = [];
  for (let i = 0; i < K; i++) {
    const row: Poly[] = [];
    for (let j = 0; j < K; j++) {
      seed[32] = transpose ? i : j;
      seed[33] = transpose ? j : i;
      row.push(sampleNtt(seed));
    }
    rows.push(row);
  }
  return rows;
}

/** PRF_2(s, b) then SamplePolyCBD_2 (Algorithm 8): each nibble gives one coefficient. */
function sampleCbd(s: Buffer, b: number): Poly {
  const bytes = createHash('shake256', { outputLength: 128 }).update(s).update(Buffer.of(b)).digest();
  const f = new Int32Array(N);
  for (let i = 0; i < 128; i++) {
    const x = bytes[i];
    f[2 * i] = ((x & 1) + ((x >> 1) & 1) - ((x >> 2) & 1) - ((x >> 3) & 1) + Q) % Q;
    f[2 * i + 1] = (((x >> 4) & 1) + ((x >> 5) & 1) - ((x >> 6) & 1) - ((x >> 7) & 1) + Q) % Q;
  }
  return f;
}

/** ByteEncode_d (Algorithm 5): d-bit values, least significant bit first. */
function encodeInto(f: Poly, d: number, out: Buffer, at: number): void {
  let acc = 0;
  let bits = 0;
  let o = at;
  for (let i = 0; i < N; i++) {
    acc |= f[i] << bits;
    bits += d;
    while (bits >= 8) {
      out[o++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  }
}

/** ByteDecode_d (Algorithm 6), without reduction: callers check or reduce. */
function decode(src: Uint8Array, at: number, d: number): Poly {
  const f = new Int32Array(N);
  const mask = (1 << d) - 1;
  let acc = 0;
  let bits = 0;
  let o = at;
  for (let i = 0; i < N; i++) {
    while (bits < d) {
      acc |= src[o++] << bits;
      bits += 8;
    }
    f[i] = acc & mask;
    acc >>>= d;
    bits -= d;
  }
  return f;
}

/** Compress_d: round(2^d x / q) mod 2^d (q is odd, so x 2^d / q never ends in exactly .5). */
function compress(f: Poly, d: number): Poly {
  const mask = (1 << d) - 1;
  return f.map((x) => Math.floor((x * (1 << d) + (Q >> 1)) / Q) & mask);
}

/** Decompress_d: round(q y / 2^d), halves rounded up. */
function decompress(f: Poly, d: number): Poly {
  return f.map((y) => (y * Q + (1 << (d - 1))) >> d);
}

const sha3 = (alg: 'sha3-256' | 'sha3-512', ...parts: Uint8Array[]): Buffer => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The parsed encapsulation key: t-hat and A^T, as K-PKE.Encrypt uses them. */
interface EncryptionKey {
  bytes: Buffer;
  t: Poly[];
  aT: Poly[][];
  hash: Buffer; // H(ek)
}

/** Type and modulus checks of ML-KEM.Encaps (section 7.2): every coefficient below q. */
function parseEncapsulationKey(ek: Uint8Array): EncryptionKey {
  if (ek.length !== MLKEM768_PUBLIC_KEY_BYTES) throw new RangeError(`ML-KEM-768 encapsulation key must be ${MLKEM768_PUBLIC_KEY_BYTES} bytes, not ${ek.length}`);
  const bytes = Buffer.from(ek);
  const t: Poly[] = [];
  for (let i = 0; i < K; i++) {
    const p = decode(bytes, i * POLY_BYTES, 12);
    if (p.some((c) => c >= Q)) throw new RangeError('ML-KEM-768 encapsulation key has a coefficient not reduced modulo q');
    t.push(p);
  }
  const rho = bytes.subarray(POLY_BYTES * K);
  return { bytes, t, aT: expandMatrix(rho, true), hash: sha3('sha3-256', bytes) };
}

/** K-PKE.Encrypt (Algorithm 14) with randomness r. */
function encrypt(key: EncryptionKey, m: Uint8Array, r: Buffer): Buffer {
  let n = 0;
  const y = Array.from({ length: K }, () => ntt(sampleCbd(r, n++)));
  const e1 = Array.from({ length: K }, () => sampleCbd(r, n++));
  const e2 = sampleCbd(r, n++);
  const out = Buffer.alloc(MLKEM768_CIPHERTEXT_BYTES);
  for (let i = 0; i < K; i++) {
    const u = addInto(invNtt(innerProduct(key.aT[i], y)), e1[i]);
    encodeInto(compress(u, DU), DU, out, i * 32 * DU);
  }
  const mu = decompress(decode(m, 0, 1), 1);
  const v = addInto(addInto(invNtt(innerProduct(key.t, y)), e2), mu);
  encodeInto(compress(v, DV), DV, out, K * 32 * DU);
  return out;
}

/** K-PKE.Decrypt (Algorithm 15): the 32-byte message. */
function decrypt(s: Poly[], c: Uint8Array): Buffer {
  const u = Array.from({ length: K }, (_, i) => ntt(decompress(decode(c, i * 32 * DU, DU), DU)));
  const v = decompress(decode(c, K * 32 * DU, DV), DV);
  const su = invNtt(innerProduct(s, u));
  const w = v.map((x, i) => (x - su[i] + Q) % Q);
  const m = Buffer.alloc(32);
  encodeInto(compress(w, 1), 1, m, 0);
  return m;
}

export interface MlKem768KeyPair {
  /** The encapsulation key ek (1184 bytes). */
  publicKey: Buffer;
  /** The decapsulation key dk in the standard's encoding (2400 bytes). */
  secretKey: Buffer;
  /** The shared key for a ciphertext made for publicKey (32 bytes; never throws on content). */
  decapsulate(ciphertext: Uint8Array): Buffer;
}

/**
 * ML-KEM.KeyGen (Algorithms 16 and 19). `d` and `z` are the 32-byte seeds (random by
 * default; given, they make the pair reproducible, as the standard's tests need).
 */
export function mlkem768KeyPair(d: Uint8Array = randomBytes(32), z: Uint8Array = randomBytes(32)): MlKem768KeyPair {
  if (d.length !== 32 || z.length !== 32) throw new RangeError('ML-KEM-768 key generation seeds are 32 bytes each');
  const g = sha3('sha3-512', d, Buffer.of(K));
  const rho = g.subarray(0, 32);
  const sigma = g.subarray(32);
  const a = expandMatrix(rho, false);
  let n = 0;
  const s = Array.from({ length: K }, () => ntt(sampleCbd(sigma, n++)));
  const e = Array.from({ length: K }, () => ntt(sampleCbd(sigma, n++)));
  const ekBytes = Buffer.alloc(MLKEM768_PUBLIC_KEY_BYTES);
  const t = a.map((row, i) => addInto(innerProduct(row, s), e[i]));
  t.forEach((p, i) => encodeInto(p, 12, ekBytes, i * POLY_BYTES));
  rho.copy(ekBytes, POLY_BYTES * K);
  const dkPke = Buffer.alloc(POLY_BYTES * K);
  s.forEach((p, i) => encodeInto(p, 12, dkPke, i * POLY_BYTES));
  const ek: EncryptionKey = { bytes: ekBytes, t, aT: expandMatrix(rho, true), hash: sha3('sha3-256', ekBytes) };
  const zCopy = Buffer.from(z);
  return {
    publicKey: ekBytes,
    secretKey: Buffer.concat([dkPke, ekBytes, ek.hash, zCopy]),
    decapsulate(ciphertext: Uint8Array): Buffer {
      // ML-KEM.Decaps (Algorithms 18 and 21)
      if (ciphertext.length !== MLKEM768_CIPHERTEXT_BYTES) throw new RangeError(`ML-KEM-768 ciphertext must be ${MLKEM768_CIPHERTEXT_BYTES} bytes, not ${ciphertext.length}`);
      const m = decrypt(s, ciphertext);
      const kr = sha3('sha3-512', m, ek.hash);
      const again = encrypt(ek, m, kr.subarray(32));
      const rejected = createHash('shake256', { outputLength: 32 }).update(zCopy).update(ciphertext).digest();
      return timingSafeEqual(again, ciphertext) ? kr.subarray(0, 32) : rejected;
    },
  };
}

/**
 * ML-KEM.Encaps (Algorithms 17 and 20): a ciphertext for `publicKey` and the shared key it
 * carries. A key of the wrong size or with unreduced coefficients is refused (RangeError).
 * `m` is the 32-byte message (random by default).
 */
export function mlkem768Encapsulate(publicKey: Uint8Array, m: Uint8Array = randomBytes(32)): { ciphertext: Buffer; key: Buffer } {
  if (m.length !== 32) throw new RangeError('ML-KEM-768 encapsulation randomness is 32 bytes');
  const ek = parseEncapsulationKey(publicKey);
  const kr = sha3('sha3-512', m, ek.hash);
  return { ciphertext: encrypt(ek, m, kr.subarray(32)), key: kr.subarray(0, 32) };
}
