import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/**
 * Throw-away keys made with OpenSSH's ssh-keygen (or dropbearkey) for the harnesses and the tests:
 * host keys, client keys, CAs and certificates.
 */

export const SSH_KEYGEN = '/usr/bin/ssh-keygen';
export const DROPBEARKEY = '/usr/bin/dropbearkey';

/** Key kinds: `ecdsa` is nistp256. */
export type KeyType = 'ed25519' | 'ecdsa' | 'ecdsa384' | 'ecdsa521' | 'rsa' | 'rsa2048' | 'rsa4096' | 'dsa';

/** ssh-keygen's -t and -b for each kind. */
export const KEYGEN_ARGS: Record<KeyType, string[]> = {
  ed25519: ['-t', 'ed25519'],
  ecdsa: ['-t', 'ecdsa', '-b', '256'],
  ecdsa384: ['-t', 'ecdsa', '-b', '384'],
  ecdsa521: ['-t', 'ecdsa', '-b', '521'],
  rsa: ['-t', 'rsa', '-b', '3072'],
  rsa2048: ['-t', 'rsa', '-b', '2048'],
  rsa4096: ['-t', 'rsa', '-b', '4096'],
  dsa: ['-t', 'dsa'],
};

export interface KeyPair {
  type: KeyType;
  /** The private key file (OpenSSH format unless asked otherwise). */
  path: string;
  publicKeyPath: string;
  /** "ssh-ed25519 AAAA..." (no comment). */
  publicKey: string;
  /** The wire name: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ssh-dss. */
  algorithm: string;
  /** "SHA256:..." as ssh-keygen -l prints it. */
  fingerprint: string;
}

function runTool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString() + r.stderr.toString();
}

/** "SHA256:<base64 without padding>" of a public key line's blob. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1], 'base64');
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** "type base64" of a public key line (drops the comment and anything else). */
export function stripComment(publicKeyLine: string): string {
  const [t, b] = publicKeyLine.trim().split(/\s+/);
  return `${t} ${b}`;
}

/**
 * Generates a key pair with ssh-keygen at `path` (+ `path.pub`).
 * `format`: 'openssh' (default), 'pem' (PKCS#1/SEC1), 'pkcs8'.
 */
export function generateKey(
  path: string,
  type: KeyType = 'ed25519',
  options: { passphrase?: string; comment?: string; format?: 'openssh' | 'pem' | 'pkcs8' } = {},
): KeyPair {
  const args = ['-q', ...KEYGEN_ARGS[type], '-N', options.passphrase ?? '', '-C', options.comment ?? 'pts-test key', '-f', path];
  if (options.format === 'pem') args.push('-m', 'PEM');
  if (options.format === 'pkcs8') args.push('-m', 'PKCS8');
  runTool(SSH_KEYGEN, args);
  return describeKey(path, type, `${path}.pub`);
}

/** A KeyPair for an existing private key whose public half is in `publicKeyPath`. */
export function describeKey(path: string, type: KeyType, publicKeyPath: string): KeyPair {
  const publicKey = stripComment(readFileSync(publicKeyPath, 'utf8'));
  return { type, path, publicKeyPath, publicKey, algorithm: publicKey.split(' ')[0], fingerprint: fingerprintOf(publicKey) };
}

/**
 * Generates a dropbear-format private key with dropbearkey; the public line is written to
 * `path.pub` by the caller's choice (returned in any case).
 */
export function generateDropbearKey(path: string, type: KeyType): Omit<KeyPair, 'publicKeyPath'> & { publicKeyPath: string | null } {
  const spec: Record<KeyType, string[]> = {
    ed25519: ['-t', 'ed25519'],
    ecdsa: ['-t', 'ecdsa', '-s', '256'],
    ecdsa384: ['-t', 'ecdsa', '-s', '384'],
    ecdsa521: ['-t', 'ecdsa', '-s', '521'],
    rsa: ['-t', 'rsa', '-s', '3072'],
    rsa2048: ['-t', 'rsa', '-s', '2048'],
    rsa4096: ['-t', 'rsa', '-s', '4096'],
    dsa: ['-t', 'dss'],
  };
  runTool(DROPBEARKEY, [...spec[type], '-f', path]);
  const out = runTool(DROPBEARKEY, ['-y', '-f', path]);
  const line = out.split('\n').find((l) => /^(ssh-|ecdsa-)/.test(l));
  if (!line) throw new Error(`dropbearkey -y printed no public key line:\n${out}`);
  const publicKey = stripComment(line);
  return { type, path, publicKeyPath: null, publicKey, algorithm: publicKey.split(' ')[0], fingerprint: fingerprintOf(publicKey) };
}

export interface CertificateOptions {
  /** -I: the key id logged by the server. Default 'pts-test'. */
  identity?: string;
  /** -n: principals (user names for user certificates, host names for host certificates). */
  principals?: string[];
  /** -V: validity interval, e.g. '-5m:+1h' (default: forever). */
  validity?: string;
  /** -z: serial number. */
  serial?: number;
  /** -O options (user certificates), e.g. ['no-pty', 'force-command=/bin/true']. */
  options?: string[];
  /** -t: signature algorithm for RSA CAs, e.g. 'rsa-sha2-512'. */
  signatureAlgorithm?: string;
}

/**
 * Signs `publicKeyPath` with the CA private key `caKeyPath` (ssh-keygen -s). `host` makes a host
 * certificate (-h). Returns the certificate path (`<key>-cert.pub`) and its line.
 */
export function signCertificate(
  caKeyPath: string,
  publicKeyPath: string,
  host: boolean,
  options: CertificateOptions = {},
): { path: string; line: string } {
  const args = ['-q', '-s', caKeyPath, '-I', options.identity ?? 'pts-test'];
  if (host) args.push('-h');
  if (options.principals?.length) args.push('-n', options.principals.join(','));
  if (options.validity) args.push('-V', options.validity);
  if (options.serial !== undefined) args.push('-z', String(options.serial));
  for (const o of options.options ?? []) args.push('-O', o);
  if (options.signatureAlgorithm) args.push('-t', options.signatureAlgorithm);
  args.push(publicKeyPath);
  runTool(SSH_KEYGEN, args);
  const path = publicKeyPath.replace(/\.pub$/, '') + '-cert.pub';
  if (!existsSync(path)) throw new Error(`ssh-keygen -s did not write ${path}`);
  return { path, line: readFileSync(path, 'utf8').trim() };
}
