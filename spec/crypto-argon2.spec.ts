import { createHash } from 'node:crypto';
import { argon2 } from '../lib/crypto/argon2';
import { blake2b } from '../lib/crypto/blake2b';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('BLAKE2b of any length', () => {
  it('RFC 7693 appendix A: BLAKE2b-512("abc")', () => {
    expect(blake2b(Buffer.from('abc'), 64)).toEqual(
      hex(`ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1
           7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923`),
    );
  });

  // Digests of shorter lengths, from Python's hashlib.blake2b(data, digest_size=n).
  it.each([
    [32, '', '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8'],
    [48, 'abc', '6f56a82c8e7ef526dfe182eb5212f7db9df1317e57815dbda46083fc30f54ee6c66ba83be64b302d7cba6ce15bb556f4'],
  ])('length %i of %j', (length, input, expected) => {
    expect(blake2b(Buffer.from(input), length).toString('hex')).toBe(expected);
  });

  // Inputs of one block exactly, one byte over, and many blocks: bytes (7i + 1) mod 256.
  it.each([
    [128, 48, '5e46dce11d70df7473a2bf271ad3c857ee9e8662196f810b91e8e0c878ca0d2fa6e2d317009496f1fa1590f81b0ded1b'],
    [129, 48, '387a5e5594e23c2678e0f439fe5bffce74ddb63248344b51c28f7113bae70456b064f20dac364be26e8ac992e0845480'],
    [1000, 20, 'd504326d07fe639d07dce22f6945f0cc7d6d6972'],
  ])('%i bytes, length %i', (n, length, expected) => {
    const data = Buffer.from(Array.from({ length: n }, (_, i) => (7 * i + 1) & 0xff));
    expect(blake2b(data, length).toString('hex')).toBe(expected);
  });

  it('64 bytes is OpenSSL\'s BLAKE2b-512; lengths outside 1-64 are refused', () => {
    const data = Buffer.alloc(300, 5);
    expect(blake2b(data, 64)).toEqual(createHash('blake2b512').update(data).digest());
    expect(() => blake2b(Buffer.alloc(1), 65)).toThrow(RangeError);
    expect(() => blake2b(Buffer.alloc(1), 0)).toThrow(RangeError);
  });
});

describe('Argon2 (RFC 9106)', () => {
  // RFC 9106 section 5: t=3, m=32 KiB, p=4, T=32, P=32 x 0x01, S=16 x 0x02, K=8 x 0x03, X=12 x 0x04.
  const P = Buffer.alloc(32, 1);
  const S = Buffer.alloc(16, 2);
  const options = { passes: 3, memoryKiB: 32, parallelism: 4, tagLength: 32, secret: Buffer.alloc(8, 3), associatedData: Buffer.alloc(12, 4) };
  it.each([
    ['argon2d', '512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb'],
    ['argon2i', 'c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8'],
    ['argon2id', '0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659'],
  ] as const)('%s test vector', (type, tag) => {
    expect(argon2(P, S, { type, ...options }).toString('hex')).toBe(tag);
  });

  it('tags longer than 64 bytes (PuTTY asks 80) extend the short one consistently', () => {
    const long = argon2(P, S, { type: 'argon2id', ...options, tagLength: 80 });
    expect(long).toHaveLength(80);
    // a different length is a different hash input: no prefix relation
    expect(long.subarray(0, 32).equals(argon2(P, S, { type: 'argon2id', ...options }))).toBe(false);
  });

  it('refuses parameters outside the RFC ranges', () => {
    expect(() => argon2(P, S, { type: 'argon2id', ...options, memoryKiB: 31 })).toThrow(/memory.*must be 32-/);
    expect(() => argon2(P, S, { type: 'argon2id', ...options, passes: 0 })).toThrow(/passes must be/);
    expect(() => argon2(P, S, { type: 'argon2id', ...options, parallelism: 0 })).toThrow(/parallelism must be/);
    expect(() => argon2(P, S, { type: 'argon2x' as 'argon2d', ...options })).toThrow(/unknown Argon2 type/);
  });
});
