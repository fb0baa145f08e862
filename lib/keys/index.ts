/** The keys layer: every key class registers itself on import, so import keys from here. */
export { PKey, decodeBase64Strict, splitPublicKeyLine } from './pkey';
export type { PKeyOptions, Passphrase, PrivateKeyFormat, ReadableFileLike, WritableFileLike } from './pkey';
export { RSAKey } from './rsa';
export { ECDSAKey } from './ecdsa';
export type { ECDSACurveName } from './ecdsa';
export { Ed25519Key } from './ed25519';
export { DSSKey } from './dss';
export { PublicBlob, SSHCertificate, SSH2_CERT_TYPE_HOST, SSH2_CERT_TYPE_USER, isCertType, certBaseType } from './certificate';
export { bcryptPbkdf } from './formats/kdf';
export { knownKeyTypes } from './registry';
export { parseAuthorizedKeysLine, parseAuthorizedKeys, loadAuthorizedKeysFile } from './authorized-keys';
export type { AuthorizedKey } from './authorized-keys';
