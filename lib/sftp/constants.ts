/**
 * SFTP version 3 numbers (draft-ietf-secsh-filexfer-02) and OpenSSH's extensions
 * (OpenSSH's PROTOCOL file, section 4), plus the mapping between SSH_FX_* status codes and
 * Node's error codes in both directions.
 */
import { constants as osConstants } from 'node:os';

/** The only protocol version spoken: the one OpenSSH, Paramiko and most servers implement. */
export const SFTP_VERSION = 3;

/** Packet types (draft-02 section 3). */
export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/** Names of packet types, for logs and errors. */
export const FXP_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(FXP).map(([name, n]) => [n, `SSH_FXP_${name}`]),
);

/** Status codes (draft-02 section 7). */
export const FX = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** Default messages, the ones OpenSSH's sftp-server sends (status_to_message). */
export const FX_MESSAGES: Record<number, string> = {
  [FX.OK]: 'Success',
  [FX.EOF]: 'End of file',
  [FX.NO_SUCH_FILE]: 'No such file',
  [FX.PERMISSION_DENIED]: 'Permission denied',
  [FX.FAILURE]: 'Failure',
  [FX.BAD_MESSAGE]: 'Bad message',
  [FX.NO_CONNECTION]: 'No connection',
  [FX.CONNECTION_LOST]: 'Connection lost',
  [FX.OP_UNSUPPORTED]: 'Operation unsupported',
};

/** SSH_FXF_* open flags (draft-02 section 6.3). */
export const FXF = {
  READ: 0x01,
  WRITE: 0x02,
  APPEND: 0x04,
  CREAT: 0x08,
  TRUNC: 0x10,
  EXCL: 0x20,
} as const;

/** SSH_FILEXFER_ATTR_* flags (draft-02 section 5); Paramiko's FLAG_* names. */
export const ATTR = {
  SIZE: 0x01,
  UIDGID: 0x02,
  PERMISSIONS: 0x04,
  ACMODTIME: 0x08,
  EXTENDED: 0x80000000,
} as const;

/** statvfs@openssh.com `f_flag` bits. */
export const STATVFS_FLAG = { RDONLY: 0x1, NOSUID: 0x2 } as const;

/** OpenSSH's extension names. */
export const EXT = {
  POSIX_RENAME: 'posix-rename@openssh.com',
  STATVFS: 'statvfs@openssh.com',
  FSTATVFS: 'fstatvfs@openssh.com',
  HARDLINK: 'hardlink@openssh.com',
  FSYNC: 'fsync@openssh.com',
  LSETSTAT: 'lsetstat@openssh.com',
  LIMITS: 'limits@openssh.com',
  EXPAND_PATH: 'expand-path@openssh.com',
  USERS_GROUPS_BY_ID: 'users-groups-by-id@openssh.com',
  COPY_DATA: 'copy-data',
} as const;

/** SFTP's message size ceiling: OpenSSH's SFTP_MAX_MSG_LENGTH, which both its client and server enforce. */
export const SFTP_MAX_MSG_LENGTH = 256 * 1024;

/**
 * What each side accepts as a packet length by default: 256 KiB plus room for the 13-byte
 * header of a DATA reply to a 256 KiB read, which a server announcing max-read 256 KiB sends.
 */
export const DEFAULT_MAX_PACKET = SFTP_MAX_MSG_LENGTH + 1024;

/** Read/write size assumed without limits@openssh.com: OpenSSH's client DEFAULT_COPY_BUFLEN. */
export const DEFAULT_IO_SIZE = 32 * 1024;

/** Requests in flight per transfer: OpenSSH's client default (DEFAULT_NUM_REQUESTS) is 64. */
export const DEFAULT_MAX_IN_FLIGHT = 64;
/**
 * READs in flight for downloads: 32 of OpenSSH's 255 KiB (8 MiB) keep its sftp-server and sshd
 * busy; more only piles replies up in sshd's buffers (measured over loopback against OpenSSH 9.2:
 * 16-32 in flight 510-680 MB/s, 64 about 510, 128 about 230).
 */
export const DEFAULT_READS_IN_FLIGHT = 32;

const E = osConstants.errno;

/** The errno number of a Node error code on this system ('EEXIST' -> 17 on Linux). */
export function errnoOf(code: string): number | undefined {
  return (E as Record<string, number | undefined>)[code];
}

/** How a non-OK, non-EOF status surfaces as a Node-style error code and errno. */
export const FX_TO_ERRNO: Record<number, { code: string; errno: number } | undefined> = {
  [FX.NO_SUCH_FILE]: { code: 'ENOENT', errno: E.ENOENT },
  [FX.PERMISSION_DENIED]: { code: 'EACCES', errno: E.EACCES },
  // SSH_FX_FAILURE is generic (OpenSSH sends it for EEXIST, ENOTEMPTY, EISDIR...): no errno,
  // the server's message is all there is.
  [FX.FAILURE]: undefined,
  [FX.BAD_MESSAGE]: { code: 'EBADMSG', errno: E.EBADMSG },
  [FX.NO_CONNECTION]: { code: 'ENOTCONN', errno: E.ENOTCONN },
  [FX.CONNECTION_LOST]: { code: 'ECONNRESET', errno: E.ECONNRESET },
  [FX.OP_UNSUPPORTED]: { code: 'ENOSYS', errno: E.ENOSYS },
};

/** Server side: an errno code to a status, as OpenSSH's errno_to_portable does. */
export function statusFromErrnoCode(code: string | undefined): number {
  switch (code) {
    case undefined:
      return FX.FAILURE;
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EBADF':
    case 'ELOOP':
      return FX.NO_SUCH_FILE;
    case 'EPERM':
    case 'EACCES':
    case 'EFAULT':
    case 'EROFS':
      return FX.PERMISSION_DENIED;
    case 'ENAMETOOLONG':
    case 'EINVAL':
      return FX.BAD_MESSAGE;
    case 'ENOSYS':
    case 'EOPNOTSUPP':
      return FX.OP_UNSUPPORTED;
    default:
      return FX.FAILURE;
  }
}

/**
 * Server side: the text sent with a status, from the errno code. It is the strerror text
 * without the path, because Node's own messages name the real (unjailed) path.
 */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EEXIST: 'File exists',
  ENOTEMPTY: 'Directory not empty',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EROFS: 'Read-only file system',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  EDQUOT: 'Disk quota exceeded',
  EXDEV: 'Invalid cross-device link',
  EBUSY: 'Device or resource busy',
  EMLINK: 'Too many links',
  EFBIG: 'File too large',
  EBADF: 'Bad file descriptor',
  ENOSYS: 'Function not implemented',
  EOPNOTSUPP: 'Operation not supported',
  EIO: 'Input/output error',
};

export function messageFromErrnoCode(code: string | undefined, status: number): string {
  return (code && ERRNO_TEXT[code]) || FX_MESSAGES[status] || 'Failure';
}

/**
 * Client side: the errno behind a status, from the server's text when that is exactly the
 * strerror text (case and a trailing period aside) of an errno which that status stands for,
 * as servers that pass the OS's error on send it (this package's, AsyncSSH's, ProFTPD's;
 * OpenSSH says only "Failure", "No such file"...). SFTP v3 has no status for EEXIST,
 * ENOTEMPTY, EISDIR (all FAILURE) or ENOTDIR (NO_SUCH_FILE): this is where they show. Else
 * the status's own errno, if it has one.
 */
export function errnoOfStatus(status: number, text: string): { code: string; errno: number } | undefined {
  const code = TEXT_TO_ERRNO.get(text.trim().replace(/\.$/, '').toLowerCase());
  const errno = code === undefined ? undefined : E[code as keyof typeof E];
  if (code !== undefined && errno !== undefined && statusFromErrnoCode(code) === status) return { code, errno };
  return FX_TO_ERRNO[status];
}
const TEXT_TO_ERRNO = new Map(Object.entries(ERRNO_TEXT).map(([code, text]) => [text.toLowerCase(), code]));
