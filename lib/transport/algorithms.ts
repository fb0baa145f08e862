import { IncompatiblePeer } from '../errors';
import { DEFAULT_CIPHERS, supportedCiphers } from '../crypto/ciphers';
// Registers itself with the cipher table; imported here, after the table exists (a cycle otherwise).
import '../crypto/chachapoly';
import { DEFAULT_MACS, MACS } from '../crypto/macs';
import { Message } from '../wire/message';
import { DEFAULT_KEX, INSECURE_KEX, supportedKex } from './kex';
import { MSG } from './constants';
import { randomBytes } from 'node:crypto';

/** The algorithm lists of one side, in preference order (the `preferred_*` of Paramiko). */
export interface AlgorithmPreferences {
  kex: string[];
  hostKeys: string[];
  ciphers: string[];
  macs: string[];
  compression: string[];
}

/**
 * Paramiko's `disabled_algorithms` keys: `kex`, `keys` (host key algorithms), `pubkeys` (user
 * auth signature algorithms), `ciphers`, `macs`, `compression`.
 */
export type DisabledAlgorithms = Partial<Record<'kex' | 'keys' | 'pubkeys' | 'ciphers' | 'macs' | 'compression', string[]>>;

const CERT = '-cert-v01@openssh.com';

/** Host key (signature) algorithms, strongest first; certificate forms after the plain ones. */
export const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];
export const CERT_HOST_KEY_ALGORITHMS = [
  `ssh-ed25519${CERT}`,
  `ecdsa-sha2-nistp256${CERT}`,
  `ecdsa-sha2-nistp384${CERT}`,
  `ecdsa-sha2-nistp521${CERT}`,
  `rsa-sha2-512${CERT}`,
  `rsa-sha2-256${CERT}`,
  `ssh-rsa${CERT}`,
];
/** Host key algorithms of old servers and devices: verified when named, never offered by default (DSA: OpenSSH 7.0 turned it off). */
export const LEGACY_HOST_KEY_ALGORITHMS = ['ssh-dss'];
export const SUPPORTED_COMPRESSION = ['none', 'zlib@openssh.com', 'zlib'];

/** The key type that signs for a host key algorithm: rsa-sha2-512 -> ssh-rsa. */
export function keyTypeOfAlgorithm(alg: string): string {
  const cert = alg.endsWith(CERT);
  const base = cert ? alg.slice(0, -CERT.length) : alg;
  const type = base === 'rsa-sha2-256' || base === 'rsa-sha2-512' ? 'ssh-rsa' : base;
  return cert ? type + CERT : type;
}

/** The signature algorithm inside a host key algorithm: rsa-sha2-512-cert-v01@openssh.com -> rsa-sha2-512. */
export function signatureOfAlgorithm(alg: string): string {
  return alg.endsWith(CERT) ? alg.slice(0, -CERT.length) : alg;
}

export function supported(kind: keyof AlgorithmPreferences): string[] {
  switch (kind) {
    case 'kex':
      return supportedKex();
    case 'hostKeys':
      return [...DEFAULT_HOST_KEY_ALGORITHMS, ...CERT_HOST_KEY_ALGORITHMS, ...LEGACY_HOST_KEY_ALGORITHMS];
    case 'ciphers':
      return supportedCiphers();
    case 'macs':
      return Object.keys(MACS);
    case 'compression':
      return SUPPORTED_COMPRESSION;
  }
}

export function defaultPreferences(compress = false): AlgorithmPreferences {
  return {
    kex: [...DEFAULT_KEX],
    hostKeys: [...DEFAULT_HOST_KEY_ALGORITHMS],
    ciphers: DEFAULT_CIPHERS.filter((c) => supportedCiphers().includes(c)),
    macs: [...DEFAULT_MACS],
    compression: compress ? ['zlib@openssh.com', 'zlib', 'none'] : ['none'],
  };
}

/**
 * What a server offers by default: the client's list without what audits flag as weak today
 * (NIST-curve key exchange, SHA-1 MACs and `ssh-rsa` SHA-1 signatures, as OpenSSH 8.8+ drops
 * the last). ECDSA host key algorithms stay: they are only offered for an ECDSA host key, which
 * the server's owner chose. Compression is offered after `none` (sshd's "delayed").
 */
export function serverDefaultPreferences(compress = false): AlgorithmPreferences {
  const base = defaultPreferences(compress);
  return {
    kex: base.kex.filter((k) => !k.startsWith('ecdh-sha2-nistp')),
    hostKeys: base.hostKeys.filter((k) => k !== 'ssh-rsa'),
    ciphers: base.ciphers,
    macs: base.macs.filter((m) => !m.startsWith('hmac-sha1')),
    compression: compress ? ['none', 'zlib@openssh.com', 'zlib'] : ['none'],
  };
}

/** Signature algorithms a server verifies in publickey auth, for ext-info's server-sig-algs. */
export const SERVER_SIG_ALGS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'];

/** Legacy algorithms that exist but are never offered unless named. */
export const INSECURE = { kex: INSECURE_KEX };

/** Removes `disabled` from the preferences (Paramiko's disabled_algorithms). */
export function applyDisabled(prefs: AlgorithmPreferences, disabled: DisabledAlgorithms | undefined): AlgorithmPreferences {
  if (!disabled) return prefs;
  const drop = (list: string[], names?: string[]) => (names ? list.filter((a) => !names.includes(a)) : list);
  return {
    kex: drop(prefs.kex, disabled.kex),
    hostKeys: drop(prefs.hostKeys, disabled.keys),
    ciphers: drop(prefs.ciphers, disabled.ciphers),
    macs: drop(prefs.macs, disabled.macs),
    compression: drop(prefs.compression, disabled.compression),
  };
}

/** Refuses names we cannot run, so a typo fails before connecting. */
export function validatePreferences(prefs: AlgorithmPreferences): void {
  for (const kind of Object.keys(prefs) as Array<keyof AlgorithmPreferences>) {
    const known = supported(kind);
    const bad = prefs[kind].filter((a) => !known.includes(a));
    if (bad.length) throw new TypeError(`unknown ${kind} algorithm(s): ${bad.join(', ')} (supported: ${known.join(', ')})`);
    if (!prefs[kind].length) throw new TypeError(`no ${kind} algorithm left to offer`);
  }
}

/** A parsed SSH_MSG_KEXINIT (RFC 4253 section 7.1). */
export interface KexInit {
  kex: string[];
  hostKeys: string[];
  ciphersC2S: string[];
  ciphersS2C: string[];
  macsC2S: string[];
  macsS2C: string[];
  compressionC2S: string[];
  compressionS2C: string[];
  firstKexPacketFollows: boolean;
}

export function encodeKexInit(p: AlgorithmPreferences, extraKex: string[]): Buffer {
  const m = new Message().addByte(MSG.KEXINIT).addBytes(randomBytes(16));
  m.addList([...p.kex, ...extraKex]).addList(p.hostKeys);
  m.addList(p.ciphers).addList(p.ciphers).addList(p.macs).addList(p.macs);
  m.addList(p.compression).addList(p.compression).addList([]).addList([]);
  return m.addBoolean(false).addInt(0).asBytes();
}

export function decodeKexInit(payload: Buffer): KexInit {
  const m = new Message(payload);
  m.getByte();
  m.getBytes(16);
  const init: KexInit = {
    kex: m.getList(),
    hostKeys: m.getList(),
    ciphersC2S: m.getList(),
    ciphersS2C: m.getList(),
    macsC2S: m.getList(),
    macsS2C: m.getList(),
    compressionC2S: m.getList(),
    compressionS2C: m.getList(),
    firstKexPacketFollows: false,
  };
  m.getList();
  m.getList();
  init.firstKexPacketFollows = m.getBoolean();
  m.getInt();
  return init;
}

/**
 * The first client algorithm the server also lists (RFC 4253 section 7.1), or IncompatiblePeer.
 * `runnable`: what we can run of this kind; those the peer offers that we did not (legacy ones,
 * off by default) are named in the error, with how to allow them.
 */
export function choose(what: string, client: string[], server: string[], ourRole: 'client' | 'server', runnable: readonly string[] = []): string {
  const pick = client.find((a) => server.includes(a));
  if (pick === undefined) {
    const [ours, theirs] = ourRole === 'client' ? [client, server] : [server, client];
    const peer = ourRole === 'client' ? 'server' : 'client';
    const couldRun = theirs.filter((a) => runnable.includes(a));
    const hint = couldRun.length
      ? `; paramiko-ts can run ${couldRun.join(', ')} but does not offer ${couldRun.length === 1 ? 'it' : 'them'} unless named (legacy): add ${couldRun.length === 1 ? 'it' : 'one'} to the security options (getSecurityOptions()) or, with sshConfig, to the ssh_config list ("+${couldRun[0]}")`
      : '';
    throw new IncompatiblePeer(`no matching ${what} algorithm: we offered [${ours.join(', ')}], the ${peer} offered [${theirs.join(', ')}]${hint}`);
  }
  return pick;
}
