import { SSHException } from '../../errors';

// The `bcrypt-pbkdf` package is a port of OpenBSD's bcrypt_pbkdf.c, the KDF of OpenSSH's key
// format. node:crypto has no Blowfish-based KDF; this one takes ~300 ms for ssh-keygen's default
// 16 rounds on the reference machine (docs/dependencies.md), once per key load.
// Loaded with the first encrypted key (it brings tweetnacl): a script whose keys have no
// passphrase does not load it, on either thread.
type BcryptPbkdf = { pbkdf(pass: Uint8Array, passlen: number, salt: Uint8Array, saltlen: number, key: Uint8Array, keylen: number, rounds: number): number };
let loaded: BcryptPbkdf | null = null;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = (): BcryptPbkdf => (loaded ??= require('bcrypt-pbkdf') as BcryptPbkdf);

/** Salt lengths OpenSSH accepts are 16 bytes in practice; anything past 1 MiB is hostile. */
const MAX_SALT = 1 << 20;

/** bcrypt_pbkdf (OpenBSD): `keyLength` bytes from a password, salt and round count. */
export function bcryptPbkdf(password: Buffer, salt: Buffer, keyLength: number, rounds: number): Buffer {
  if (password.length === 0) throw new SSHException('bcrypt-pbkdf needs a non-empty password');
  if (salt.length === 0 || salt.length > MAX_SALT) throw new SSHException(`bcrypt-pbkdf: bad salt length ${salt.length}`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new SSHException(`bcrypt-pbkdf: bad round count ${rounds}`);
  if (keyLength < 1 || keyLength > 1024) throw new SSHException(`bcrypt-pbkdf: bad key length ${keyLength}`);
  const out = new Uint8Array(keyLength);
  if (bcrypt().pbkdf(password, password.length, salt, salt.length, out, keyLength, rounds) !== 0) {
    throw new SSHException('bcrypt-pbkdf failed');
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
