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

function hmac(name: string, hash: string, size: number, etm: boolean): MacAlgorithm {
  return { name, hash, keyLength: size, length: size, etm };
}

export const MACS: Record<string, MacAlgorithm> = Object.fromEntries(
  [
    hmac('hmac-sha2-256-etm@openssh.com', 'sha256', 32, true),
    hmac('hmac-sha2-512-etm@openssh.com', 'sha512', 64, true),
    hmac('hmac-sha2-256', 'sha256', 32, false),
    hmac('hmac-sha2-512', 'sha512', 64, false),
    hmac('hmac-sha1-etm@openssh.com', 'sha1', 20, true),
    hmac('hmac-sha1', 'sha1', 20, false),
  ].map((m) => [m.name, m]),
);

/** OpenSSH's order: ETM first, SHA-2 before SHA-1. */
export const DEFAULT_MACS = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
  'hmac-sha1-etm@openssh.com',
  'hmac-sha1',
];
