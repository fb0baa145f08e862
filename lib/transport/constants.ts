/** SSH message numbers (RFC 4250 section 4.1, RFC 8308 for EXT_INFO). */
export const MSG = {
  DISCONNECT: 1,
  IGNORE: 2,
  UNIMPLEMENTED: 3,
  DEBUG: 4,
  SERVICE_REQUEST: 5,
  SERVICE_ACCEPT: 6,
  EXT_INFO: 7,
  KEXINIT: 20,
  NEWKEYS: 21,
  // 30-49 belong to the key exchange method in use
  KEXDH_INIT: 30,
  KEXDH_REPLY: 31,
  KEX_DH_GEX_GROUP: 31,
  KEX_DH_GEX_INIT: 32,
  KEX_DH_GEX_REPLY: 33,
  KEX_DH_GEX_REQUEST: 34,
  USERAUTH_REQUEST: 50,
  USERAUTH_FAILURE: 51,
  USERAUTH_SUCCESS: 52,
  USERAUTH_BANNER: 53,
  // 60-79 belong to the user authentication method in use
  USERAUTH_PK_OK: 60,
  USERAUTH_PASSWD_CHANGEREQ: 60,
  USERAUTH_INFO_REQUEST: 60,
  USERAUTH_INFO_RESPONSE: 61,
  GLOBAL_REQUEST: 80,
  REQUEST_SUCCESS: 81,
  REQUEST_FAILURE: 82,
  CHANNEL_OPEN: 90,
  CHANNEL_OPEN_CONFIRMATION: 91,
  CHANNEL_OPEN_FAILURE: 92,
  CHANNEL_WINDOW_ADJUST: 93,
  CHANNEL_DATA: 94,
  CHANNEL_EXTENDED_DATA: 95,
  CHANNEL_EOF: 96,
  CHANNEL_CLOSE: 97,
  CHANNEL_REQUEST: 98,
  CHANNEL_SUCCESS: 99,
  CHANNEL_FAILURE: 100,
  // OpenSSH's transport-level ping (its PROTOCOL file, section 1.9; ext-info ping@openssh.com)
  PING: 192,
  PONG: 193,
} as const;

/** Disconnect reason codes (RFC 4250 section 4.2.2). */
export const DISCONNECT = {
  HOST_NOT_ALLOWED_TO_CONNECT: 1,
  PROTOCOL_ERROR: 2,
  KEY_EXCHANGE_FAILED: 3,
  RESERVED: 4,
  MAC_ERROR: 5,
  COMPRESSION_ERROR: 6,
  SERVICE_NOT_AVAILABLE: 7,
  PROTOCOL_VERSION_NOT_SUPPORTED: 8,
  HOST_KEY_NOT_VERIFIABLE: 9,
  CONNECTION_LOST: 10,
  BY_APPLICATION: 11,
  TOO_MANY_CONNECTIONS: 12,
  AUTH_CANCELLED_BY_USER: 13,
  NO_MORE_AUTH_METHODS_AVAILABLE: 14,
  ILLEGAL_USER_NAME: 15,
} as const;

/** Channel open failure reasons (RFC 4254 section 5.1), Paramiko's OPEN_* values. */
export const OPEN_SUCCEEDED = 0;
export const OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED = 1;
export const OPEN_FAILED_CONNECT_FAILED = 2;
export const OPEN_FAILED_UNKNOWN_CHANNEL_TYPE = 3;
export const OPEN_FAILED_RESOURCE_SHORTAGE = 4;

/** ServerInterface auth results, Paramiko's values. */
export const AUTH_SUCCESSFUL = 0;
export const AUTH_PARTIALLY_SUCCESSFUL = 1;
export const AUTH_FAILED = 2;

/** Name of a message number, for errors and debug logs. */
export function messageName(n: number): string {
  for (const [k, v] of Object.entries(MSG)) if (v === n) return k;
  return `message ${n}`;
}
