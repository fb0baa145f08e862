import { DSSKey, ECDSAKey, Ed25519Key, RSAKey } from '../../lib';

/**
 * Every key type, with the `-t`/`-b` flags that make it in both ssh-keygen and puttygen, and
 * the class that must load it.
 */
export const KEY_TYPES: Array<[string, string[], Function]> = [
  ['ed25519', ['-t', 'ed25519'], Ed25519Key],
  ['ecdsa256', ['-t', 'ecdsa', '-b', '256'], ECDSAKey],
  ['ecdsa384', ['-t', 'ecdsa', '-b', '384'], ECDSAKey],
  ['ecdsa521', ['-t', 'ecdsa', '-b', '521'], ECDSAKey],
  ['rsa', ['-t', 'rsa', '-b', '2048'], RSAKey],
  ['dsa', ['-t', 'dsa', '-b', '1024'], DSSKey],
];
