import { createHash } from 'node:crypto';
import {
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SECRET_KEY_BYTES,
  mlkem768Encapsulate,
  mlkem768KeyPair,
} from '../lib/crypto/mlkem768';

/**
 * The accumulated known-answer test of FIPS 203 (final) implementations (C2SP's CCTV procedure,
 * as Go's crypto/internal/fips140/mlkem runs it): one SHAKE-128 stream of the empty input gives,
 * per test, the key seed d || z, the message m and a random ciphertext; ek, the ciphertext and
 * key of Encaps(ek, m), and the key Decaps gives for the random ciphertext go into one SHAKE-128
 * whose 32-byte output is published (100 tests; 10 000 with PARAMIKO_TS_LONG_KAT=1).
 */
const ACCUMULATED: Record<number, string> = {
  100: '1114b1b6699ed191734fa339376afa7e285c9e6acf6ff0177d346696ce564415',
  10000: '8a518cc63da366322a8e7a818c7a0d63483cb3528d34a4cf42f35d5ad73f22fc',
};

describe('ML-KEM-768', () => {
  it('matches the accumulated FIPS 203 known answers', () => {
    const tests = process.env.PARAMIKO_TS_LONG_KAT ? 10000 : 100;
    const draw = 64 + 32 + MLKEM768_CIPHERTEXT_BYTES;
    const rng = createHash('shake128', { outputLength: tests * draw }).update('').digest();
    expect(rng.subarray(0, 16).toString('hex')).toBe('7f9c2ba4e88f827d616045507605853e');
    const out = createHash('shake128', { outputLength: 32 });
    for (let i = 0; i < tests; i++) {
      const at = i * draw;
      const pair = mlkem768KeyPair(rng.subarray(at, at + 32), rng.subarray(at + 32, at + 64));
      out.update(pair.publicKey);
      const { ciphertext, key } = mlkem768Encapsulate(pair.publicKey, rng.subarray(at + 64, at + 96));
      out.update(ciphertext).update(key);
      expect(pair.decapsulate(ciphertext).equals(key)).toBe(true);
      out.update(pair.decapsulate(rng.subarray(at + 96, at + draw)));
    }
    expect(out.digest('hex')).toBe(ACCUMULATED[tests]);
  });

  it('sizes are the standard ones; the decapsulation key is s || ek || H(ek) || z', () => {
    const z = Buffer.alloc(32, 7);
    const pair = mlkem768KeyPair(Buffer.alloc(32, 1), z);
    expect(pair.publicKey).toHaveLength(MLKEM768_PUBLIC_KEY_BYTES);
    expect(pair.secretKey).toHaveLength(MLKEM768_SECRET_KEY_BYTES);
    expect(pair.secretKey.subarray(1152, 1152 + 1184).equals(pair.publicKey)).toBe(true);
    expect(pair.secretKey.subarray(2336, 2368).equals(createHash('sha3-256').update(pair.publicKey).digest())).toBe(true);
    expect(pair.secretKey.subarray(2368).equals(z)).toBe(true);
    const { ciphertext, key } = mlkem768Encapsulate(pair.publicKey);
    expect(ciphertext).toHaveLength(MLKEM768_CIPHERTEXT_BYTES);
    expect(key).toHaveLength(32);
  });

  it('an altered ciphertext gives J(z || c), not an error (implicit rejection)', () => {
    const z = Buffer.alloc(32, 9);
    const pair = mlkem768KeyPair(undefined, z);
    const { ciphertext, key } = mlkem768Encapsulate(pair.publicKey);
    for (const at of [0, 700, MLKEM768_CIPHERTEXT_BYTES - 1]) {
      const bad = Buffer.from(ciphertext);
      bad[at] ^= 0x10;
      const k = pair.decapsulate(bad);
      expect(k.equals(key)).toBe(false);
      expect(k.equals(createHash('shake256', { outputLength: 32 }).update(z).update(bad).digest())).toBe(true);
    }
  });

  it('refuses an encapsulation key with an unreduced coefficient, and wrong sizes', () => {
    const pair = mlkem768KeyPair();
    for (const at of [0, 383, 1151]) {
      const bad = Buffer.from(pair.publicKey);
      // a coefficient of 0xfff (>= q = 3329) at the 12-bit slot that covers byte `at`
      const slot = Math.floor((at * 8) / 12);
      const bit = slot * 12;
      for (let b = bit; b < bit + 12; b++) bad[b >> 3] |= 1 << (b & 7);
      expect(() => mlkem768Encapsulate(bad)).toThrow(/not reduced modulo q/);
    }
    expect(() => mlkem768Encapsulate(pair.publicKey.subarray(1))).toThrow(/must be 1184 bytes/);
    expect(() => pair.decapsulate(Buffer.alloc(10))).toThrow(/must be 1088 bytes/);
  });

  it('another key pair cannot open the ciphertext', () => {
    const a = mlkem768KeyPair();
    const { ciphertext, key } = mlkem768Encapsulate(a.publicKey);
    expect(mlkem768KeyPair().decapsulate(ciphertext).equals(key)).toBe(false);
  });
});
