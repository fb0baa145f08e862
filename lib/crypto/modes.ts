import { createCipheriv, createDecipheriv, createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import type { Cipher, Decipher, CipherGCM, DecipherGCM, KeyObject } from 'node:crypto';
import { SSHException } from '../errors';
import type { MacAlgorithm } from './macs';
import type { DirectionKeys, Opener, Sealer } from './protection';

/** Before the first NEWKEYS: no encryption, no MAC, 8-byte alignment (RFC 4253 section 6). */
export class PlainSealer implements Sealer {
  readonly blockSize = 8;
  readonly lengthExcluded = false;
  readonly macLength = 0;
  seal(_seq: number, packet: Buffer): Buffer {
    return packet;
  }
}

export class PlainOpener implements Opener {
  readonly headerLength = 4;
  readonly macLength = 0;
  readonly lengthExcluded = false;
  readonly blockSize = 8;
  peekLength(_seq: number, header: Buffer): number {
    return header.readUInt32BE(0);
  }
  open(_seq: number, wire: Buffer): Buffer {
    // A copy, as every opener's output: the wire bytes may sit in a reused read buffer.
    return Buffer.from(wire.subarray(4));
  }
}

function macOf(mac: MacAlgorithm, key: Buffer, seq: number, ...parts: Buffer[]): Buffer {
  const h = createHmac(mac.hash, key);
  const s = Buffer.allocUnsafe(4);
  s.writeUInt32BE(seq >>> 0, 0);
  h.update(s);
  for (const p of parts) h.update(p);
  const d = h.digest();
  // The -96 MACs send the first 12 bytes.
  return d.length === mac.length ? d : d.subarray(0, mac.length);
}

/** The clear length word as its own small buffer (from Node's pool), not a view of the packet. */
function copyHead(packet: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4);
  packet.copy(head, 0, 0, 4);
  return head;
}

export function badMac(): SSHException {
  return new SSHException('packet authentication failed: bad MAC (corrupted or tampered data)');
}

/**
 * A block or stream cipher (AES-CTR) with a separate MAC, either encrypt-and-MAC (MAC over the
 * plaintext, RFC 4253) or encrypt-then-MAC (MAC over the ciphertext, length in clear).
 */
export class CipherMacSealer implements Sealer {
  readonly freshOutput = true;
  readonly lengthExcluded: boolean;
  readonly macLength: number;
  private readonly cipher: Cipher;
  private readonly macKey: Buffer;
  constructor(
    openssl: string,
    readonly blockSize: number,
    keys: DirectionKeys,
    private readonly mac: MacAlgorithm,
  ) {
    this.macKey = keys.macKey;
    this.cipher = createCipheriv(openssl, keys.key, keys.iv);
    this.cipher.setAutoPadding(false);
    this.lengthExcluded = mac.etm;
    this.macLength = mac.length;
  }

  seal(seq: number, packet: Buffer): Buffer {
    return Buffer.concat(this.sealParts(seq, packet));
  }

  sealParts(seq: number, packet: Buffer): Buffer[] {
    if (this.mac.etm) {
      const body = this.cipher.update(packet.subarray(4));
      const head = copyHead(packet);
      return [head, body, macOf(this.mac, this.macKey, seq, head, body)];
    }
    const tag = macOf(this.mac, this.macKey, seq, packet);
    return [this.cipher.update(packet), tag];
  }
}

export class CipherMacOpener implements Opener {
  readonly headerLength: number;
  readonly macLength: number;
  readonly lengthExcluded: boolean;
  private readonly decipher: Decipher;
  private readonly macKey: Buffer;
  /** The first block, decrypted by peekLength (encrypt-and-MAC only). */
  private first: Buffer | null = null;
  constructor(
    openssl: string,
    readonly blockSize: number,
    keys: DirectionKeys,
    private readonly mac: MacAlgorithm,
  ) {
    this.decipher = createDecipheriv(openssl, keys.key, keys.iv);
    this.decipher.setAutoPadding(false);
    this.headerLength = mac.etm ? 4 : blockSize;
    this.macLength = mac.length;
    this.lengthExcluded = mac.etm;
    this.macKey = keys.macKey;
  }

  peekLength(_seq: number, header: Buffer): number {
    if (this.mac.etm) return header.readUInt32BE(0);
    this.first = this.decipher.update(header.subarray(0, this.blockSize));
    return this.first.readUInt32BE(0);
  }

  open(seq: number, wire: Buffer): Buffer {
    const end = wire.length - this.macLength;
    const tag = wire.subarray(end);
    if (this.mac.etm) {
      const expect = macOf(this.mac, this.macKey, seq, wire.subarray(0, end));
      if (!timingSafeEqual(expect, tag)) throw badMac();
      return this.decipher.update(wire.subarray(4, end));
    }
    const rest = this.decipher.update(wire.subarray(this.blockSize, end));
    const plain = Buffer.concat([this.first!, rest]);
    this.first = null;
    if (!timingSafeEqual(macOf(this.mac, this.macKey, seq, plain), tag)) throw badMac();
    return plain.subarray(4);
  }
}

/** The 12-byte GCM nonce: 4 fixed bytes and a 64-bit invocation counter (RFC 5647 section 7.1). */
function nextNonce(iv: Buffer): void {
  // A big-endian increment of bytes 4-11, wrapping at 2^64 (no BigInt per packet).
  for (let i = 11; i >= 4; i--) {
    iv[i] = (iv[i] + 1) & 0xff;
    if (iv[i] !== 0) return;
  }
}

const GCM_TAG = 16;

/** aes128-gcm@openssh.com / aes256-gcm@openssh.com: the length is the AAD, in clear. */
export class GcmSealer implements Sealer {
  readonly blockSize = 16;
  readonly lengthExcluded = true;
  readonly macLength = GCM_TAG;
  readonly freshOutput = true;
  private readonly iv: Buffer;
  /** A KeyObject spares OpenSSL a copy of the key in each packet's createCipheriv. */
  private readonly key: KeyObject;
  constructor(
    private readonly openssl: string,
    keys: DirectionKeys,
  ) {
    this.iv = Buffer.from(keys.iv.subarray(0, 12));
    this.key = createSecretKey(keys.key);
  }
  seal(seq: number, packet: Buffer): Buffer {
    return Buffer.concat(this.sealParts(seq, packet));
  }

  sealParts(_seq: number, packet: Buffer): Buffer[] {
    const c = createCipheriv(this.openssl as 'aes-128-gcm', this.key, this.iv, { authTagLength: GCM_TAG }) as CipherGCM;
    const head = copyHead(packet);
    c.setAAD(head);
    const body = c.update(packet.subarray(4));
    c.final();
    nextNonce(this.iv);
    return [head, body, c.getAuthTag()];
  }
}

export class GcmOpener implements Opener {
  readonly headerLength = 4;
  readonly macLength = GCM_TAG;
  readonly lengthExcluded = true;
  readonly blockSize = 16;
  private readonly iv: Buffer;
  private readonly key: KeyObject;
  constructor(
    private readonly openssl: string,
    keys: DirectionKeys,
  ) {
    this.iv = Buffer.from(keys.iv.subarray(0, 12));
    this.key = createSecretKey(keys.key);
  }
  peekLength(_seq: number, header: Buffer): number {
    return header.readUInt32BE(0);
  }
  open(_seq: number, wire: Buffer): Buffer {
    const d = createDecipheriv(this.openssl as 'aes-128-gcm', this.key, this.iv, { authTagLength: GCM_TAG }) as DecipherGCM;
    const end = wire.length - GCM_TAG;
    d.setAAD(wire.subarray(0, 4));
    d.setAuthTag(wire.subarray(end));
    const plain = d.update(wire.subarray(4, end));
    try {
      d.final();
    } catch {
      throw badMac();
    }
    nextNonce(this.iv);
    return plain;
  }
}
