import { SSHException } from '../../errors';
import type { Passphrase } from '../pkey';
import { keyClassOf } from '../registry';
import { decodeOpenSSHPrivateKey } from './openssh';
import type { LoadedKey } from './openssh';
import { decodePemPrivateKey, PEM_PRIVATE_LABELS } from './pem';
import { findPemBlock } from './pem-armor';
import { decodePuttyPrivateKey, isPuttyKeyFile } from './ppk';
import { isSecshBlock, SECSH_PRIVATE, SECSH_PUBLIC } from './rfc4716';
import { decodeSshComPrivateKey } from './sshcom';

/** Refuses input whose size cannot be a key file before reading it as one. */
const MAX_KEY_FILE = 1 << 20;

/**
 * Reads a private key file of any supported format: OpenSSH, PEM PKCS#1 / SEC1 / DSA / PKCS#8,
 * PuTTY's .ppk (versions 2 and 3), ssh.com's SECSH format, plain or encrypted. Errors name the file (when known) and the cause.
 */
export function loadPrivateKeyText(data: string | Buffer, password: Passphrase | null, filename?: string): LoadedKey {
  try {
    return load(data, password);
  } catch (e) {
    if (filename && e instanceof Error && !e.message.startsWith(filename)) e.message = `${filename}: ${e.message}`;
    throw e;
  }
}

function load(data: string | Buffer, password: Passphrase | null): LoadedKey {
  if (data.length > MAX_KEY_FILE) throw new SSHException(`not a private key file: ${data.length} bytes is too large`);
  const text = typeof data === 'string' ? data : data.toString('latin1');
  if (isPuttyKeyFile(text)) return decodePuttyPrivateKey(data, password);
  if (isSecshBlock(text, SECSH_PRIVATE)) return decodeSshComPrivateKey(text, password);
  const block = findPemBlock(text);
  if (!block) throw new SSHException(describeNonPem(text));
  if (block.label === 'OPENSSH PRIVATE KEY') return decodeOpenSSHPrivateKey(block.body, password);
  if (PEM_PRIVATE_LABELS.has(block.label)) {
    const privateKey = decodePemPrivateKey(block, password);
    return { cls: keyClassOf(privateKey), privateKey, comment: '' };
  }
  if (block.label.includes('PUBLIC KEY')) {
    throw new SSHException(`this is a public key (${block.label}), not a private key`);
  }
  throw new SSHException(`not a private key file: unsupported PEM block "${block.label}"`);
}

function describeNonPem(text: string): string {
  const head = text.trimStart();
  if (/^(ssh-|ecdsa-|sk-)\S* [A-Za-z0-9+/=]+/.test(head)) return 'this is a public key line, not a private key';
  if (isSecshBlock(head, SECSH_PUBLIC)) return 'this is a public key (RFC 4716, "---- BEGIN SSH2 PUBLIC KEY ----"), not a private key';
  if (head.length === 0) return 'not a private key file: it is empty';
  return 'not a private key file: no "-----BEGIN ... PRIVATE KEY-----" line';
}
