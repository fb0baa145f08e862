/**
 * The optional native packet ciphers (lib/native/sshcrypto.c, built by lib/native/install.js at
 * install time). node:crypto makes an OpenSSL context per AES-GCM packet and a fresh Buffer per
 * update, and has no Poly1305; the native module re-arms one context per direction and writes
 * where it is told, so a gigabyte costs ~0.2 s of AES-GCM instead of ~0.45 s. Every cipher also
 * works without it (lib/crypto/modes.ts, lib/crypto/chachapoly.ts): this only picks the faster path.
 *
 * PARAMIKO_TS_NATIVE=0 turns it off (read once per thread, when first asked).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_PACKET_LENGTH, scratchOf } from '../transport/packet';
import { badMac } from './modes';
import type { DirectionKeys, Opener, Sealer } from './protection';

/** What lib/native/sshcrypto.c exports (its abiVersion 3). */
export interface NativeModule {
  abiVersion: number;
  gcmCreate(key: Uint8Array, nonce: Uint8Array, encrypt: boolean): object;
  gcmSeal(state: object, packet: Uint8Array, out: Uint8Array, offset: number): number;
  gcmOpen(state: object, wire: Uint8Array, out: Uint8Array, offset: number): boolean;
  chachaCreate(key: Uint8Array, encrypt: boolean): object;
  chachaLength(state: object, seq: number, header: Uint8Array): number;
  chachaSeal(state: object, seq: number, packet: Uint8Array, out: Uint8Array, offset: number): number;
  chachaOpen(state: object, seq: number, wire: Uint8Array, out: Uint8Array, offset: number): boolean;
  /** out = a * b in Z[x]/(x^p - x - 1), p = the arrays' length; coefficients not reduced. */
  polyMultiply(a: Int32Array, b: Int32Array, out: Int32Array): void;
  /** out = 1/a in (Z/m)[x]/(x^p - x - 1), coefficients in [0, m), m prime; false if a is not invertible. */
  polyInvert(a: Int32Array, m: number, out: Int32Array): boolean;
}

const ABI_VERSION = 3;

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

/**
 * `make()` with the native module, else `fallback()`: also when the module is there but OpenSSL
 * refuses the cipher (a FIPS-only or stripped-down OpenSSL without ChaCha20 or Poly1305).
 */
export function preferNative<T>(make: (native: NativeModule) => T, fallback: () => T): T {
  const native = nativeCrypto();
  if (native) {
    try {
      return make(native);
    } catch {
      // The module's own checks never fail for keys the exchange derived: OpenSSL said no.
    }
  }
  return fallback();
}

/**
 * The packet ciphers the native module runs, each with a context made from zero keys: the same
 * call the sealer and opener make, so OpenSSL's refusal (and preferNative's fallback) shows.
 */
const NATIVE_CIPHERS: ReadonlyMap<string, (native: NativeModule) => object> = new Map([
  ['aes128-gcm@openssh.com', (native: NativeModule) => native.gcmCreate(Buffer.alloc(16), Buffer.alloc(12), true)],
  ['aes256-gcm@openssh.com', (native: NativeModule) => native.gcmCreate(Buffer.alloc(32), Buffer.alloc(12), true)],
  ['chacha20-poly1305@openssh.com', (native: NativeModule) => native.chachaCreate(Buffer.alloc(64), true)],
]);
const accepted = new WeakMap<NativeModule, Map<string, boolean>>();

/**
 * Whether `native` runs cipher `name`: one of its ciphers, and OpenSSL makes a context for it (a
 * FIPS-only or stripped-down OpenSSL may not). Asked once per module and name.
 * @internal exported for tests, which pass a module that refuses.
 */
export function nativeRuns(native: NativeModule, name: string): boolean {
  const probe = NATIVE_CIPHERS.get(name);
  if (!probe) return false;
  let byName = accepted.get(native);
  if (!byName) accepted.set(native, (byName = new Map()));
  let ok = byName.get(name);
  if (ok === undefined) {
    try {
      probe(native);
      ok = true;
    } catch {
      ok = false;
    }
    byName.set(name, ok);
  }
  return ok;
}

/** Whether packets of cipher `name` go through the native module (for the logs). */
export function runsNatively(name: string): boolean {
  const native = nativeCrypto();
  return native !== null && nativeRuns(native, name);
}

/**
 * Why the native ciphers are or are not in use: "loaded from PATH", "not built (...)", "off
 * (PARAMIKO_TS_NATIVE=0)", "failed to load: ...". Exported from the package root.
 */
export function nativeCryptoStatus(): string {
  loaded ??= load();
  return loaded.status;
}

/** Bytes appended to a packet by both ciphers: the GCM tag, the Poly1305 tag. */
const TAG = 16;

/** A native sealer: each packet's wire bytes (length, ciphertext, tag) in one fresh buffer. */
abstract class NativeSealer implements Sealer {
  /** `state`: the module's context for this direction (gcmCreate, chachaCreate). */
  constructor(
    protected readonly native: NativeModule,
    protected readonly state: object,
  ) {}
  readonly lengthExcluded = true;
  readonly macLength = TAG;
  readonly freshOutput = true;
  abstract readonly blockSize: number;
  abstract sealInto(seq: number, packet: Buffer, out: Buffer): void;
  seal(seq: number, packet: Buffer): Buffer {
    const wire = Buffer.allocUnsafe(packet.length + TAG);
    this.sealInto(seq, packet, wire);
    return wire;
  }
}

/** A native opener, with the reused buffer of openTransient. */
abstract class NativeOpener implements Opener {
  constructor(
    protected readonly native: NativeModule,
    protected readonly state: object,
  ) {}
  readonly headerLength = 4;
  readonly macLength = TAG;
  readonly lengthExcluded = true;
  abstract readonly blockSize: number;
  private scratch: Buffer | null = null;
  abstract peekLength(seq: number, header: Buffer): number;
  /** Writes the plaintext of `wire` into `plain`; false when the tag does not verify. */
  protected abstract openInto(seq: number, wire: Buffer, plain: Buffer): boolean;

  open(seq: number, wire: Buffer): Buffer {
    return this.opened(seq, wire, Buffer.allocUnsafe(wire.length - 4 - TAG));
  }
  /**
   * Into one buffer for every packet: a fresh 32 KiB buffer per packet is memory the kernel
   * must map on first touch (~7 us a page here) and V8 must collect.
   */
  openTransient(seq: number, wire: Buffer): Buffer {
    const n = wire.length - 4 - TAG;
    this.scratch = scratchOf(this.scratch, n, MAX_PACKET_LENGTH);
    return this.opened(seq, wire, this.scratch.subarray(0, n));
  }
  private opened(seq: number, wire: Buffer, plain: Buffer): Buffer {
    if (!this.openInto(seq, wire, plain)) throw badMac();
    return plain;
  }
}

/** aes128-gcm@openssh.com / aes256-gcm@openssh.com with one OpenSSL context per direction. */
export class NativeGcmSealer extends NativeSealer {
  readonly blockSize = 16;
  constructor(native: NativeModule, keys: DirectionKeys) {
    super(native, native.gcmCreate(keys.key, keys.iv.subarray(0, 12), true));
  }
  sealInto(_seq: number, packet: Buffer, out: Buffer): void {
    this.native.gcmSeal(this.state, packet, out, 0);
  }
}

export class NativeGcmOpener extends NativeOpener {
  readonly blockSize = 16;
  constructor(native: NativeModule, keys: DirectionKeys) {
    super(native, native.gcmCreate(keys.key, keys.iv.subarray(0, 12), false));
  }
  peekLength(_seq: number, header: Buffer): number {
    return header.readUInt32BE(0);
  }
  protected openInto(_seq: number, wire: Buffer, plain: Buffer): boolean {
    return this.native.gcmOpen(this.state, wire, plain, 0);
  }
}

/** chacha20-poly1305@openssh.com: ChaCha20 contexts for K_1 and K_2, and a Poly1305 context. */
export class NativeChaChaPolySealer extends NativeSealer {
  readonly blockSize = 8;
  constructor(native: NativeModule, keys: DirectionKeys) {
    super(native, native.chachaCreate(keys.key, true));
  }
  sealInto(seq: number, packet: Buffer, out: Buffer): void {
    this.native.chachaSeal(this.state, seq >>> 0, packet, out, 0);
  }
}

export class NativeChaChaPolyOpener extends NativeOpener {
  readonly blockSize = 8;
  constructor(native: NativeModule, keys: DirectionKeys) {
    super(native, native.chachaCreate(keys.key, false));
  }
  peekLength(seq: number, header: Buffer): number {
    return this.native.chachaLength(this.state, seq >>> 0, header);
  }
  protected openInto(seq: number, wire: Buffer, plain: Buffer): boolean {
    return this.native.chachaOpen(this.state, seq >>> 0, wire, plain, 0);
  }
}
