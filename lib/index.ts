/**
 * paramiko-ts: SSH2 for Node.js with Paramiko's API. Every public name is exported from here,
 * as Paramiko exports its classes from the package root.
 */
export * from './errors';
export { Message } from './wire/message';
export * from './keys';
export * from './hostkeys';
export * from './config';
