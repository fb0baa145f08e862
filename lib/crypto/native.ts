/**
 * The optional native packet ciphers (lib/native/sshcrypto.c, built by lib/native/install.js at
 * install time). node:crypto makes an OpenSSL context per AES-GCM packet and a fresh Buffer per
 * update; the native module re-arms one context per direction and writes where it is told, so a
 * gigabyte costs ~0.2 s of AES-GCM instead of ~0.45 s (bench/chachapoly.js). Every cipher also
 * works without it, through lib/crypto/modes.ts: this module only picks the faster path.
 *
 * PARAMIKO_TS_NATIVE=0 turns it off (read once per thread, when first asked).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_PACKET_LENGTH } from '../transport/packet';
import { badMac } from './modes';
import type { DirectionKeys, Opener, Sealer } from './protection';

/** What lib/native/sshcrypto.c exports (its abiVersion 1). */
interface NativeModule {
  abiVersion: number;
  gcmCreate(key: Uint8Array, nonce: Uint8Array, encrypt: boolean): object;
  gcmSeal(state: object, packet: Uint8Array, out: Uint8Array, offset: number): number;
  gcmOpen(state: object, wire: Uint8Array, out: Uint8Array, offset: number): boolean;
}

const ABI_VERSION = 1;
const GCM_TAG = 16;

let loaded: { module: NativeModule | null; status: string } | null = null;

/** lib/crypto and dist/crypto both sit two levels below the package root. */
export const NATIVE_MODULE_PATH = join(__dirname, '..', '..', 'lib', 'native', 'build', 'Release', 'sshcrypto.node');

function load(): { module: NativeModule | null; status: string } {
  if (process.env.PARAMIKO_TS_NATIVE === '0') return { module: null, status: 'off (PARAMIKO_TS_NATIVE=0)' };
  if (!existsSync(NATIVE_MODULE_PATH)) return { module: null, status: `not built (no ${NATIVE_MODULE_PATH}: see lib/native/install.js)` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const module = require(NATIVE_MODULE_PATH) as NativeModule;
    if (module.abiVersion !== ABI_VERSION) {
      return { module: null, status: `stale build (abi ${module.abiVersion}, want ${ABI_VERSION}): run npm run build` };
    }
    return { module, status: `loaded from ${NATIVE_MODULE_PATH}` };
  } catch (e) {
    return { module: null, status: `failed to load: ${(e as Error).message}` };
  }
}

/** The native module, or null when it is off, not built or does not load. */
export function nativeCrypto(): NativeModule | null {
  loaded ??= load();
  return loaded.module;
}

/** Why the native module is or is not in use (for logs, `paramiko-ts --version` and tests). */
export function nativeCryptoStatus(): string {
  loaded ??= load();
  return loaded.status;
}

/**
 * aes128-gcm@openssh.com / aes256-gcm@openssh.com sealing with one OpenSSL context: each
 * packet's wire bytes (clear length, ciphertext, tag) in one fresh buffer.
 */
export class NativeGcmSealer implements Sealer {
  readonly blockSize = 16;
  readonly lengthExcluded = true;
  readonly macLength = GCM_TAG;
  readonly freshOutput = true;
  private readonly state: object;
  constructor(
    private readonly native: NativeModule,
    keys: DirectionKeys,
  ) {
    this.state = native.gcmCreate(keys.key, keys.iv.subarray(0, 12), true);
  }
  seal(_seq: number, packet: Buffer): Buffer {
    const wire = Buffer.allocUnsafe(packet.length + GCM_TAG);
    this.native.gcmSeal(this.state, packet, wire, 0);
    return wire;
  }
}

export class NativeGcmOpener implements Opener {
  readonly headerLength = 4;
  readonly macLength = GCM_TAG;
  readonly lengthExcluded = true;
  readonly blockSize = 16;
  private readonly state: object;
  private scratch: Buffer | null = null;
  constructor(
    private readonly native: NativeModule,
    keys: DirectionKeys,
  ) {
    this.state = native.gcmCreate(keys.key, keys.iv.subarray(0, 12), false);
  }
  peekLength(_seq: number, header: Buffer): number {
    return header.readUInt32BE(0);
  }
  open(_seq: number, wire: Buffer): Buffer {
    return this.openInto(wire, Buffer.allocUnsafe(wire.length - 4 - GCM_TAG));
  }
  /**
   * Into one buffer for every packet: a fresh 32 KiB buffer per packet is memory the kernel
   * must map on first touch (~7 us a page here) and V8 must collect.
   */
  openTransient(_seq: number, wire: Buffer): Buffer {
    const n = wire.length - 4 - GCM_TAG;
    if (!this.scratch || this.scratch.length < n) {
      this.scratch = Buffer.allocUnsafe(Math.min(Math.max(n, 2 * (this.scratch?.length ?? 0)), MAX_PACKET_LENGTH));
    }
    return this.openInto(wire, this.scratch.subarray(0, n));
  }
  private openInto(wire: Buffer, plain: Buffer): Buffer {
    if (!this.native.gcmOpen(this.state, wire, plain, 0)) throw badMac();
    return plain;
  }
}
