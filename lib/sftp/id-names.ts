import { readFileSync } from 'node:fs';

/**
 * User and group names by id, from /etc/passwd and /etc/group (Node has no getpwuid): what an
 * SFTP server shows in `ls -l` long names and answers to users-groups-by-id@openssh.com, as
 * OpenSSH's sftp-server does. Read once per process; an id without an entry has no name.
 */
export class IdNames {
  private users: Map<number, string> | null = null;
  private groups: Map<number, string> | null = null;

  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly groupPath = '/etc/group',
  ) {}

  user(uid: number): string | null {
    this.users ??= readIds(this.passwdPath);
    return this.users.get(uid) ?? null;
  }

  group(gid: number): string | null {
    this.groups ??= readIds(this.groupPath);
    return this.groups.get(gid) ?? null;
  }
}

/** name:x:id:... lines; the first name of an id wins (as getpwuid's). */
function readIds(path: string): Map<number, string> {
  const out = new Map<number, string>();
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !f[0] || f[0].startsWith('#')) continue;
    const id = Number(f[2]);
    if (Number.isInteger(id) && id >= 0 && !out.has(id)) out.set(id, f[0]);
  }
  return out;
}

/** The process's table (both files read on first use). */
export const SYSTEM_ID_NAMES = new IdNames();
