/** known_hosts: Paramiko's `paramiko.hostkeys` with OpenSSH's matching rules and markers. */
export { HostKeys } from './hostkeys';
export { HostKeyEntry, type HostKeyMarker, type HostKeyEntryOptions } from './entry';
export { HostKeyMap } from './map';
export { hashHost, matchPattern } from './patterns';
