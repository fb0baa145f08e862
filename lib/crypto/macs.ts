/** MAC algorithms (RFC 4253 section 6.4, RFC 6668, OpenSSH's -etm variants in PROTOCOL). */
export interface MacAlgorithm {
  name: string;
  /** Node/OpenSSL digest name for HMAC. */
  hash: string;
  keyLength: number;
  /** Length of the MAC on the wire. */
  length: number;
  /** Encrypt-then-MAC: the MAC covers the ciphertext and the length travels in clear. */
  etm: boolean;
}

/** `length`: the bytes of the HMAC sent, when fewer than the digest (the -96 MACs send 12). */
function hmac(name: string, hash: string, size: number, etm: boolean, length = size): MacAlgorithm {
  return { name, hash, keyLength: size, length, etm };
}

export const MACS: Record<string, MacAlgorithm> = Object.fromEntries(
  [
    hmac('hmac-sha2-256-etm@openssh.com', 'sha256', 32, true),
    hmac('hmac-sha2-512-etm@openssh.com', 'sha512', 64, true),
    hmac('hmac-sha2-256', 'sha256', 32, false),
    hmac('hmac-sha2-512', 'sha512', 64, false),
    hmac('hmac-sha1-etm@openssh.com', 'sha1', 20, true),
    hmac('hmac-sha1', 'sha1', 20, false),
    // Legacy (LEGACY_MACS): for old servers and devices only, never offered unless named.
    hmac('hmac-sha1-96', 'sha1', 20, false, 12),
    hmac('hmac-sha1-96-etm@openssh.com', 'sha1', 20, true, 12),
    hmac('hmac-md5', 'md5', 16, false),
    hmac('hmac-md5-etm@openssh.com', 'md5', 16, true),
    hmac('hmac-md5-96', 'md5', 16, false, 12),
    hmac('hmac-md5-96-etm@openssh.com', 'md5', 16, true, 12),
  ].map((m) => [m.name, m]),
);

/** MACs we run for old peers but never offer unless named (RFC 4253's truncated and MD5 HMACs). */
export const LEGACY_MACS = ['hmac-sha1-96', 'hmac-sha1-96-etm@openssh.com', 'hmac-md5', 'hmac-md5-etm@openssh.com', 'hmac-md5-96', 'hmac-md5-96-etm@openssh.com'];

/** OpenSSH's order: ETM first, SHA-2 before SHA-1. */
export const DEFAULT_MACS = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
  'hmac-sha1-etm@openssh.com',
  'hmac-sha1',
];
