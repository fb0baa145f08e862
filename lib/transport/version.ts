/** Our identification line unless one is given (RFC 4253 4.2: SSH-protoversion-softwareversion). */
export const DEFAULT_LOCAL_VERSION = 'SSH-2.0-paramiko_ts_0.1';
