/**
 * The SFTP layer's engine (sans-I/O): codec, attributes, the client core with its pipelined
 * transfers, and the jailed server core. The Paramiko facade (SFTPClient, SFTPFile) and the
 * worker wiring build on these.
 */
export { SFTPAttributes } from './attributes';
export { SftpClientCore } from './client-core';
export type { SftpClientCoreOptions, SftpLimits, SftpStatVFS } from './client-core';
export * from './codec';
export * from './constants';
export { SFTPError, statusError } from './errors';
export type { RequestContext } from './errors';
export { SftpServerCore, SERVER_LIMITS } from './server-core';
export type { SftpServerCoreOptions } from './server-core';
export { PathJail, StatusError } from './server-paths';
export { download, readRange, upload, verifySize } from './transfer';
export type { DownloadOptions, DownloadSink, Progress, UploadOptions, UploadSource } from './transfer';
export type { Uint64 } from './uint64';
