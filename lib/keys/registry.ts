import type { KeyObject } from 'node:crypto';
import { UnknownKeyType } from '../errors';
import type { Message } from '../wire/message';
import type { PKey, PKeyOptions } from './pkey';

/**
 * What the format layer needs from a key class: its SSH type names and how to read its public
 * blob and its fields in an OpenSSH private-key file. One entry per class, registered by the
 * class's own module, so adding a key type is one file.
 */
export interface KeyClass {
  new (options: PKeyOptions): PKey;
  /** SSH key type names this class handles (e.g. all three ECDSA curves). */
  readonly keyTypes: readonly string[];
  /** Node's `asymmetricKeyType` for this class ('rsa', 'ec', 'ed25519', 'dsa'). */
  readonly nodeKeyType: string;
  /** Reads the fields after the type name of a public blob. */
  publicFromBlob(keyType: string, msg: Message): KeyObject;
  /** Reads the private fields of an OpenSSH private-key file section (after the type name). */
  privateFromOpenSSH(keyType: string, msg: Message): KeyObject;
}

const byType = new Map<string, KeyClass>();
const byNodeType = new Map<string, KeyClass>();

export function registerKeyClass(cls: KeyClass): void {
  for (const t of cls.keyTypes) byType.set(t, cls);
  byNodeType.set(cls.nodeKeyType, cls);
}

export function keyClassForType(keyType: string): KeyClass | undefined {
  return byType.get(keyType);
}

export function keyClassForNodeType(nodeType: string | undefined): KeyClass | undefined {
  return nodeType === undefined ? undefined : byNodeType.get(nodeType);
}

export function knownKeyTypes(): string[] {
  return [...byType.keys()];
}

/** Our class for a KeyObject that OpenSSL loaded (UnknownKeyType for e.g. X448 or DH keys). */
export function keyClassOf(key: KeyObject): KeyClass {
  const cls = keyClassForNodeType(key.asymmetricKeyType);
  if (!cls) throw new UnknownKeyType(key.asymmetricKeyType ?? null);
  return cls;
}
