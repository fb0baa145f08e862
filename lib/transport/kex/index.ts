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

/** Strongest first, as OpenSSH 9.x orders them (without the post-quantum hybrids). */
export const DEFAULT_KEX = [
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
