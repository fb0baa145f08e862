import {
  SNTRUP761_CIPHERTEXT_BYTES,
  SNTRUP761_PUBLIC_KEY_BYTES,
  sntrup761Encapsulate,
  sntrup761KeyPair,
  takeSntrup761KeyPair,
} from '../lib/crypto/sntrup761';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

// Conformance is checked against OpenSSH (client-openssh.spec.ts and server-interop.spec.ts run
// the sntrup761x25519 key exchange both ways); these check the KEM's own properties.
describe('sntrup761', () => {
  it('a ciphertext for a key decapsulates to the key it carries; sizes are the reference ones', () => {
    for (let i = 0; i < 3; i++) {
      const pair = sntrup761KeyPair();
      expect(pair.publicKey).toHaveLength(SNTRUP761_PUBLIC_KEY_BYTES);
      const { ciphertext, key } = sntrup761Encapsulate(pair.publicKey);
      expect(ciphertext).toHaveLength(SNTRUP761_CIPHERTEXT_BYTES);
      expect(key).toHaveLength(32);
      expect(pair.decapsulate(ciphertext).equals(key)).toBe(true);
    }
  });

  it('without the native module (PARAMIKO_TS_NATIVE=0) the TypeScript arithmetic makes pairs that work the same', () => {
    const script = `
      const s = require('./dist/crypto/sntrup761.js');
      const { nativeCryptoStatus } = require('./dist/crypto/native.js');
      const pair = s.sntrup761KeyPair();
      const { ciphertext, key } = s.sntrup761Encapsulate(pair.publicKey);
      const bad = Buffer.from(ciphertext); bad[5] ^= 1;
      console.log(JSON.stringify({ status: nativeCryptoStatus(), same: pair.decapsulate(ciphertext).equals(key), rejected: !pair.decapsulate(bad).equals(key) }));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: join(__dirname, '..'), env: { ...process.env, PARAMIKO_TS_NATIVE: '0' }, encoding: 'utf8', timeout: 30000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ status: 'off (PARAMIKO_TS_NATIVE=0)', same: true, rejected: true });
  });

  it('an altered ciphertext gives an unrelated key (implicit rejection), the same one each time', () => {
    const pair = sntrup761KeyPair();
    const { ciphertext, key } = sntrup761Encapsulate(pair.publicKey);
    for (const at of [0, 500, SNTRUP761_CIPHERTEXT_BYTES - 1]) {
      const bad = Buffer.from(ciphertext);
      bad[at] ^= 0x01;
      const k = pair.decapsulate(bad);
      expect(k.equals(key)).toBe(false);
      expect(pair.decapsulate(bad).equals(k)).toBe(true);
    }
  });

  it('another key pair cannot open the ciphertext', () => {
    const a = sntrup761KeyPair();
    const b = sntrup761KeyPair();
    const { ciphertext, key } = sntrup761Encapsulate(a.publicKey);
    expect(b.decapsulate(ciphertext).equals(key)).toBe(false);
  });

  it('the pair made ahead for the next exchange is handed out once, never twice', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const pair = takeSntrup761KeyPair();
      seen.add(pair.publicKey.toString('hex'));
      const { ciphertext, key } = sntrup761Encapsulate(pair.publicKey);
      expect(pair.decapsulate(ciphertext).equals(key)).toBe(true);
      if (i % 2) await new Promise((resolve) => setImmediate(resolve)); // let the spare be made
    }
    expect(seen.size).toBe(4);
  });

  it('wrong sizes are refused', () => {
    const pair = sntrup761KeyPair();
    expect(() => sntrup761Encapsulate(pair.publicKey.subarray(1))).toThrow(/must be 1158 bytes/);
    expect(() => pair.decapsulate(Buffer.alloc(10))).toThrow(/must be 1039 bytes/);
  });
});
