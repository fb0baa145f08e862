import { createCipheriv, createDecipheriv } from 'node:crypto';
import { openKeyFileSection, sealKeyFileSection } from '../../crypto/chachapoly';
import { SSHException } from '../../errors';

/**
 * Ciphers OpenSSH may use to encrypt the private section of its key format (`ssh-keygen -Z`),
 * mapped to OpenSSL names. The 16-byte tag of GCM and of chacha20-poly1305 follows the
 * encrypted section in the file.
 */
interface KeyFileCipher {
  /** The OpenSSL cipher; '' for none, 'chacha20-poly1305' for OpenSSH's own construction. */
  openssl: string;
  keyLength: number;
  ivLength: number;
  blockSize: number;
  tagLength: number;
}

const CHACHA = 'chacha20-poly1305';

const CIPHERS: Record<string, KeyFileCipher> = {
  none: { openssl: '', keyLength: 0, ivLength: 0, blockSize: 8, tagLength: 0 },
  'aes128-ctr': { openssl: 'aes-128-ctr', keyLength: 16, ivLength: 16, blockSize: 16, tagLength: 0 },
  'aes192-ctr': { openssl: 'aes-192-ctr', keyLength: 24, ivLength: 16, blockSize: 16, tagLength: 0 },
  'aes256-ctr': { openssl: 'aes-256-ctr', keyLength: 32, ivLength: 16, blockSize: 16, tagLength: 0 },
  'aes128-cbc': { openssl: 'aes-128-cbc', keyLength: 16, ivLength: 16, blockSize: 16, tagLength: 0 },
  'aes192-cbc': { openssl: 'aes-192-cbc', keyLength: 24, ivLength: 16, blockSize: 16, tagLength: 0 },
  'aes256-cbc': { openssl: 'aes-256-cbc', keyLength: 32, ivLength: 16, blockSize: 16, tagLength: 0 },
  'aes128-gcm@openssh.com': { openssl: 'aes-128-gcm', keyLength: 16, ivLength: 12, blockSize: 16, tagLength: 16 },
  'aes256-gcm@openssh.com': { openssl: 'aes-256-gcm', keyLength: 32, ivLength: 12, blockSize: 16, tagLength: 16 },
  'chacha20-poly1305@openssh.com': { openssl: CHACHA, keyLength: 64, ivLength: 0, blockSize: 8, tagLength: 16 },
};

export function keyFileCipher(name: string): KeyFileCipher {
  const c = CIPHERS[name];
  if (c) return c;
  throw new SSHException(`unknown cipher ${JSON.stringify(name)} in OpenSSH private key file`);
}

/** Encrypts the private section; for GCM the tag is appended. Padding is the caller's. */
export function encryptSection(c: KeyFileCipher, key: Buffer, iv: Buffer, plain: Buffer): Buffer {
  if (!c.openssl) return plain;
  if (c.openssl === CHACHA) return sealKeyFileSection(key, plain);
  const cipher = createCipheriv(c.openssl, key, iv);
  cipher.setAutoPadding(false);
  const out: Buffer[] = [cipher.update(plain), cipher.final()];
  if (c.tagLength) out.push((cipher as unknown as { getAuthTag(): Buffer }).getAuthTag());
  return Buffer.concat(out);
}

/** Decrypts the private section; returns null when a GCM tag does not verify. */
export function decryptSection(c: KeyFileCipher, key: Buffer, iv: Buffer, data: Buffer, tag: Buffer | null): Buffer | null {
  if (!c.openssl) return data;
  if (c.openssl === CHACHA) return openKeyFileSection(key, data, tag!);
  const decipher = createDecipheriv(c.openssl, key, iv);
  decipher.setAutoPadding(false);
  if (c.tagLength) (decipher as unknown as { setAuthTag(t: Uint8Array): void }).setAuthTag(tag!);
  try {
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    return null;
  }
}
