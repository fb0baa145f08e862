import type { MacAlgorithm } from './macs';
import { CipherMacOpener, CipherMacSealer, GcmOpener, GcmSealer } from './modes';
import { NativeGcmOpener, NativeGcmSealer, preferNative } from './native';
import type { DirectionKeys, Opener, Sealer } from './protection';

/**
 * Packet ciphers by wire name (RFC 4344 for CTR, RFC 5647 and OpenSSH's PROTOCOL for GCM,
 * PROTOCOL.chacha20poly1305). AEAD ciphers carry their own integrity, so the negotiated MAC is
 * ignored for them, as OpenSSH does.
 */
export interface CipherAlgorithm {
  name: string;
  keyLength: number;
  ivLength: number;
  blockSize: number;
  aead: boolean;
  createSealer(keys: DirectionKeys, mac: MacAlgorithm | null): Sealer;
  createOpener(keys: DirectionKeys, mac: MacAlgorithm | null): Opener;
}

function needMac(name: string, mac: MacAlgorithm | null): MacAlgorithm {
  if (!mac) throw new Error(`cipher ${name} needs a MAC`);
  return mac;
}

function ctr(bits: number): CipherAlgorithm {
  const name = `aes${bits}-ctr`;
  const openssl = `aes-${bits}-ctr`;
  return {
    name,
    keyLength: bits / 8,
    ivLength: 16,
    blockSize: 16,
    aead: false,
    createSealer: (keys, mac) => new CipherMacSealer(openssl, 16, keys, needMac(name, mac)),
    createOpener: (keys, mac) => new CipherMacOpener(openssl, 16, keys, needMac(name, mac)),
  };
}

/**
 * CBC (RFC 4253 section 6.3), for old servers and network devices that offer nothing newer:
 * one cipher context per direction chains its blocks across packets, as the RFC requires.
 * Supported, never offered unless named (LEGACY_CIPHERS; OpenSSH dropped them from its
 * defaults in 6.7 for the plaintext-recovery attack on CBC in SSH).
 */
function cbc(name: string, openssl: string, keyLength: number, blockSize: number): CipherAlgorithm {
  return {
    name,
    keyLength,
    ivLength: blockSize,
    blockSize,
    aead: false,
    createSealer: (keys, mac) => new CipherMacSealer(openssl, blockSize, keys, needMac(name, mac)),
    createOpener: (keys, mac) => new CipherMacOpener(openssl, blockSize, keys, needMac(name, mac)),
  };
}

function gcm(bits: number): CipherAlgorithm {
  const openssl = `aes-${bits}-gcm`;
  return {
    name: `aes${bits}-gcm@openssh.com`,
    keyLength: bits / 8,
    ivLength: 12,
    blockSize: 16,
    aead: true,
    // One OpenSSL context per direction when the native module is built (lib/crypto/native.ts).
    createSealer: (keys) => preferNative<Sealer>((n) => new NativeGcmSealer(n, keys), () => new GcmSealer(openssl, keys)),
    createOpener: (keys) => preferNative<Opener>((n) => new NativeGcmOpener(n, keys), () => new GcmOpener(openssl, keys)),
  };
}

const registry = new Map<string, CipherAlgorithm>();
for (const c of [ctr(128), ctr(192), ctr(256), gcm(128), gcm(256)]) registry.set(c.name, c);
for (const bits of [128, 192, 256]) registry.set(`aes${bits}-cbc`, cbc(`aes${bits}-cbc`, `aes-${bits}-cbc`, bits / 8, 16));
registry.set('3des-cbc', cbc('3des-cbc', 'des-ede3-cbc', 24, 8));

/** Ciphers we run for old peers but never offer unless named (see cbc). */
export const LEGACY_CIPHERS = ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc'];

/** Adds a cipher implemented in its own module (chacha20-poly1305). */
export function registerCipher(c: CipherAlgorithm): void {
  registry.set(c.name, c);
}

export function cipherByName(name: string): CipherAlgorithm | undefined {
  return registry.get(name);
}

export function supportedCiphers(): string[] {
  return [...registry.keys()];
}

/**
 * Our default order: AES-GCM first because OpenSSL runs it at several GB/s (issue 3's
 * measurements), then chacha20-poly1305 (a JavaScript Poly1305 makes it slower here), then CTR.
 * OpenSSH puts chacha20 first; both orders negotiate the same set.
 */
export const DEFAULT_CIPHERS = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
];
