/**
 * SSHClient.connect's `sshConfig` option: what OpenSSH's `ssh alias` takes from ssh_config
 * (AsyncSSH's `config`). Paramiko's connect reads no config (REFERENCE.md pitfall 4), so this
 * applies only when asked.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SSHConfig } from '../config';
import type { SSHConfigDict } from '../config';
import { SSHException } from '../errors';
import type { ConnectOptions } from './client';

/** The config `spec` names: true is ~/.ssh/config (none when it is missing), a string a file. */
export function configOf(spec: NonNullable<ConnectOptions['sshConfig']>): SSHConfig {
  if (spec instanceof SSHConfig) return spec;
  if (typeof spec === 'string') return SSHConfig.fromPath(spec);
  const path = join(homedir(), '.ssh', 'config');
  return existsSync(path) ? SSHConfig.fromPath(path) : new SSHConfig();
}

/** One hop of a ProxyJump: `[user@]host[:port]` or `ssh://[user@]host[:port]` (IPv6 in brackets). */
export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

export function parseJumps(spec: string): JumpHop[] {
  return spec.split(',').map((raw) => {
    const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]\s]+\]|[^:@/\s]+)(?::(\d+))?\/?$/.exec(raw.trim());
    if (!m) throw new SSHException(`cannot read ProxyJump hop ${JSON.stringify(raw)} (want [user@]host[:port])`);
    return { user: m[1], host: m[2].replace(/^\[(.*)\]$/, '$1'), port: m[3] ? Number(m[3]) : undefined };
  });
}

/** How the config says to reach the host: ProxyJump or ProxyCommand, whichever came first (as OpenSSH). */
export function proxyOf(d: SSHConfigDict): { jump: string } | { command: string } | null {
  for (const key of d.keys()) {
    if (key === 'proxyjump' && d.proxyjump) return { jump: d.proxyjump };
    if (key === 'proxycommand' && d.proxycommand) return { command: d.proxycommand };
  }
  return null;
}

const yes = (d: SSHConfigDict, key: string): boolean | undefined => (d.has(key) ? d.asBool(key) : undefined);

/**
 * The connect options for the host `d` describes: the caller's own win (as ssh's command line
 * over its config); the config gives Port, User, IdentityFile (the files that exist),
 * IdentitiesOnly (no agent, no default keys), ConnectTimeout and Compression. `sock` is left to
 * the caller (ProxyJump needs connections).
 */
export function optionsFromConfig(d: SSHConfigDict, o: ConnectOptions): ConnectOptions {
  const out: ConnectOptions = { ...o, sshConfig: null };
  out.port ??= d.port ? Number(d.port) : undefined;
  out.username ??= d.user;
  if (out.keyFilename == null && d.identityfile?.length) {
    const files = d.identityfile.map((f) => (f.startsWith('~/') ? join(homedir(), f.slice(2)) : f)).filter((f) => existsSync(f));
    if (files.length) out.keyFilename = files;
  }
  if (yes(d, 'identitiesonly')) {
    out.allowAgent ??= false;
    out.lookForKeys ??= false;
  }
  if (out.timeout == null && d.connecttimeout) out.timeout = Number(d.connecttimeout);
  out.compress ??= yes(d, 'compression');
  return out;
}

/** ServerAliveInterval (seconds, 0: off) and ServerAliveCountMax (OpenSSH's default 3), for setKeepalive. */
export function keepaliveOf(d: SSHConfigDict): { interval: number; countMax: number } | null {
  const interval = d.serveraliveinterval ? Number(d.serveraliveinterval) : 0;
  if (!(interval > 0)) return null;
  const countMax = d.serveralivecountmax ? Number(d.serveralivecountmax) : 3;
  return { interval, countMax: Number.isInteger(countMax) && countMax >= 0 ? countMax : 3 };
}
