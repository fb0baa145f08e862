import { createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PasswordRequiredException, SSHException } from '../../errors';
import type { Passphrase, PrivateKeyFormat } from '../pkey';
import type { PemBlock } from './pem-armor';

/** PEM labels of the private-key forms OpenSSL reads (PKCS#1, SEC1, DSA, PKCS#8). */
export const PEM_PRIVATE_LABELS = new Set([
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
  'DSA PRIVATE KEY',
  'PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
]);

/** Encryption when writing: AES-128-CBC for the traditional DEK-Info form (as Paramiko and
 * ssh-keygen -m PEM write), AES-256-CBC under PBES2 for PKCS#8. */
const TRADITIONAL_CIPHER = 'aes-128-cbc';
const PKCS8_CIPHER = 'aes-256-cbc';

/**
 * Loads a PEM private key through OpenSSL, which reads PKCS#1, SEC1, traditional DSA, PKCS#8,
 * encrypted PKCS#8 and the legacy `Proc-Type: 4,ENCRYPTED` / `DEK-Info` form.
 */
export function decodePemPrivateKey(block: PemBlock, password: Passphrase | null): KeyObject {
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY' || /ENCRYPTED/.test(block.headers.get('Proc-Type') ?? '');
  if (encrypted && (password === null || password === undefined || password.length === 0)) {
    throw new PasswordRequiredException('private key file is encrypted');
  }
  try {
    return createPrivateKey({
      key: block.text,
      format: 'pem',
      passphrase: encrypted ? (password as string | Buffer) : undefined,
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (encrypted) {
      throw new SSHException(`wrong password for private key file (or the file is corrupt): ${err.message}`, { cause: e });
    }
    throw new SSHException(`corrupt ${block.label} file: OpenSSL cannot read it (${err.message})`, { cause: e });
  }
}

/** Writes a private KeyObject as PEM: traditional (PKCS#1 / SEC1) or PKCS#8. */
export function encodePemPrivateKey(key: KeyObject, format: Exclude<PrivateKeyFormat, 'openssh'>, password: Passphrase | null): string {
  const hasPass = password !== null && password !== undefined && password.length > 0;
  let type: 'pkcs1' | 'sec1' | 'pkcs8' = 'pkcs8';
  if (format === 'pem') {
    if (key.asymmetricKeyType === 'rsa') type = 'pkcs1';
    else if (key.asymmetricKeyType === 'ec') type = 'sec1';
  } else if (format !== 'pkcs8') {
    throw new SSHException(`unknown private key format ${JSON.stringify(format)} (use 'openssh', 'pem' or 'pkcs8')`);
  }
  if (!hasPass) return key.export({ type, format: 'pem' }) as string;
  const cipher = type === 'pkcs8' ? PKCS8_CIPHER : TRADITIONAL_CIPHER;
  return key.export({ type, format: 'pem', cipher, passphrase: password as string | Buffer }) as string;
}
