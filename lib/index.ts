/**
 * paramiko-ts: SSH2 for Node.js with Paramiko's API. Every public name is exported from here,
 * as Paramiko exports its classes from the package root.
 */
export * from './errors';
export { Message } from './wire/message';
export * from './keys';
export * from './agent';
export * from './hostkeys';
export * from './config';
export * from './api';
export { SFTPAttributes, SFTPError } from './sftp';
export type { SftpLimits, SftpStatVFS } from './sftp';
export { nativeCryptoStatus } from './crypto/native';
export {
  AUTH_SUCCESSFUL,
  AUTH_PARTIALLY_SUCCESSFUL,
  AUTH_FAILED,
  OPEN_SUCCEEDED,
  OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
  OPEN_FAILED_CONNECT_FAILED,
  OPEN_FAILED_UNKNOWN_CHANNEL_TYPE,
  OPEN_FAILED_RESOURCE_SHORTAGE,
} from './transport/constants';
