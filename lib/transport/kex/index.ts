import { DH_ALGORITHMS } from './dh';
import { ECDH_ALGORITHMS } from './ecdh';
import type { KexAlgorithm } from './types';

export type { KexAlgorithm, KexContext, KexResult, KexRun } from './types';
export { deriveKey } from './hash';

const registry = new Map<string, KexAlgorithm>([...ECDH_ALGORITHMS, ...DH_ALGORITHMS].map((k) => [k.name, k]));

export function kexByName(name: string): KexAlgorithm | undefined {
  return registry.get(name);
}

export function supportedKex(): string[] {
  return [...registry.keys()];
}

/**
 * Strongest first, as OpenSSH 9.9 and later order them: the post-quantum hybrids
 * mlkem768x25519 and sntrup761x25519 (under its IETF name and OpenSSH's), then the elliptic
 * curves and the finite-field groups.
 */
export const DEFAULT_KEX = [
  'mlkem768x25519-sha256',
  'sntrup761x25519-sha512',
  'sntrup761x25519-sha512@openssh.com',
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
];

/** Known but off by default: enable by listing them (or through disabledAlgorithms's inverse). */
export const INSECURE_KEX = ['diffie-hellman-group-exchange-sha1', 'diffie-hellman-group14-sha1', 'diffie-hellman-group1-sha1'];
