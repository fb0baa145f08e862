import { createHash } from 'node:crypto';
import { Message } from '../../wire/message';
import type { KexContext } from './types';

/** The exchange hash's common prefix: V_C, V_S, I_C, I_S, K_S (RFC 4253 section 8). */
export function exchangeHashPrefix(ctx: KexContext, hostKeyBlob: Buffer): Message {
  return new Message()
    .addString(ctx.clientVersion)
    .addString(ctx.serverVersion)
    .addString(ctx.clientKexInit)
    .addString(ctx.serverKexInit)
    .addString(hostKeyBlob);
}

export function digest(hash: string, data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

/** K as an SSH mpint string (length-prefixed), from unsigned big-endian bytes. */
export function sharedSecretMpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const body = unsigned.subarray(i);
  return new Message().addString(body.length && body[0] & 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body).asBytes();
}

/**
 * Key derivation (RFC 4253 section 7.2): HASH(K || H || letter || session_id), extended with
 * HASH(K || H || K1 || ...) until `length` bytes.
 */
export function deriveKey(hash: string, k: Buffer, h: Buffer, letter: string, sessionId: Buffer, length: number): Buffer {
  let out = createHash(hash).update(k).update(h).update(letter).update(sessionId).digest();
  while (out.length < length) {
    out = Buffer.concat([out, createHash(hash).update(k).update(h).update(out).digest()]);
  }
  return out.subarray(0, length);
}
