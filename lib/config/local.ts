/**
 * Facts about the local side that ssh_config tokens refer to: the local user, its home
 * directory and uid (from the password database, as OpenSSH's getpwuid, not $HOME), and the
 * machine's host name (gethostname, which is what OpenSSH uses for %l and %C).
 */

import { spawnSync } from 'node:child_process';
import * as os from 'node:os';

export interface LocalIdentity {
  user: string;
  home: string;
  uid: number;
  hostname: string;
}

/** The running user's identity; `overrides` replace single fields (e.g. a lookup's localUser). */
export function localIdentity(overrides: { user?: string; home?: string } = {}): LocalIdentity {
  let user: string;
  let home: string;
  let uid: number;
  try {
    const info = os.userInfo();
    ({ username: user, homedir: home, uid } = info);
  } catch {
    // No password-database entry (e.g. an arbitrary uid in a container): fall back to the environment.
    user = process.env.USER ?? process.env.LOGNAME ?? 'unknown';
    home = os.homedir();
    uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  }
  if (overrides.user !== undefined && overrides.user !== user && overrides.home === undefined) {
    home = homeOf(overrides.user) ?? home;
  }
  return {
    user: overrides.user ?? user,
    home: overrides.home ?? home,
    uid,
    hostname: os.hostname(),
  };
}

/** The home directory of a named user from the password database, or null if unknown. */
export function homeOf(user: string): string | null {
  try {
    if (os.userInfo().username === user) return os.userInfo().homedir;
  } catch {
    // fall through to getent
  }
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8' });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  const fields = r.stdout.split('\n')[0].split(':');
  return fields.length >= 7 ? fields[5] : null;
}
