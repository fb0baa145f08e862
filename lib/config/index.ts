/**
 * paramiko.config: SSHConfig and SSHConfigDict, evaluated by OpenSSH's rules. Its errors,
 * ConfigParseError and CouldNotCanonicalize, live in lib/errors.ts with the others.
 */

export { SSHConfig } from './ssh-config';
export type { SSHConfigOptions, ConfigSource } from './ssh-config';
export { SSHConfigDict } from './config-dict';
export type { ConfigValue, KnownConfigKeys, SSHConfigDictMethods, SSHConfigDictConstructor } from './config-dict';
export type { LookupOptions } from './lookup';
export { getentResolver } from './canonicalize';
export type { AddressFamily, HostResolver } from './canonicalize';
export { expandTokens, connectionHash } from './tokens';
export type { TokenContext } from './tokens';
