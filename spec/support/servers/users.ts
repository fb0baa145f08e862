import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { isRoot, sleepSync } from './process';

/**
 * The system account tests log in as. Real servers (sshd with PAM, dropbear) authenticate against
 * system accounts, so as root the harness creates a dedicated one; root's password is never touched.
 */
export interface TestUser {
  username: string;
  /** Its login password, or null when the harness could not set one (not root). */
  password: string | null;
  home: string;
  uid: number;
  gid: number;
  shell: string;
}

export const TEST_USERNAME = 'pts-test';
export const TEST_PASSWORD = 'pts-test-Pa55word';
/**
 * The home dir holds nothing but what tests put there (no skeleton rc files), and the login shell
 * is /bin/sh: commands and login shells start fast.
 */
export const TEST_HOME = '/home/pts-test';
const TEST_SHELL = '/bin/sh';

const LOCK_DIR = '/tmp/paramiko-ts-spec.lock';
const LOCK_STALE_MS = 30_000;

/**
 * Runs `fn` holding a machine-wide lock (a directory created atomically): parallel Jest workers
 * create the user and edit shared files one at a time. A lock older than 30 s is taken as stale.
 */
export function withLock<T>(fn: () => T, timeoutMs = 20_000): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(LOCK_DIR).mtimeMs > LOCK_STALE_MS) {
          rmSync(LOCK_DIR, { recursive: true, force: true });
          continue;
        }
      } catch {
        continue; // removed meanwhile
      }
      if (Date.now() > deadline) throw new Error(`could not take the lock ${LOCK_DIR} within ${timeoutMs} ms`);
      sleepSync(20 + Math.random() * 30);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { input, timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function lookup(name: string): TestUser | null {
  const r = run('getent', ['passwd', name]);
  if (r.status !== 0) return null;
  const f = r.stdout.trim().split(':');
  return { username: f[0], password: null, uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
}

let cached: TestUser | null = null;

/**
 * The account tests log in as. As root: the system user `pts-test` (password TEST_PASSWORD, home
 * /home/pts-test, shell /bin/sh), created on first use (useradd), its password set once per process
 * (chpasswd); idempotent across runs and safe across parallel workers. Not root: the current user,
 * with no password (only public-key logins work then, and only against sshd and the Python servers).
 */
export function ensureTestUser(): TestUser {
  if (cached) return cached;
  if (!isRoot()) {
    const u = userInfo();
    cached = { username: u.username, password: null, home: u.homedir, uid: u.uid, gid: u.gid, shell: u.shell ?? TEST_SHELL };
    return cached;
  }
  cached = withLock(() => {
    let u = lookup(TEST_USERNAME);
    if (!u) {
      // -r: a system account (no aging, uid below 1000); -M: no skeleton files; -U: its own group.
      const r = run('useradd', ['-r', '-M', '-U', '-d', TEST_HOME, '-s', TEST_SHELL, '-c', 'paramiko-ts test user', TEST_USERNAME]);
      // 9: already exists (another machine-wide run created it without our lock).
      if (r.status !== 0 && r.status !== 9) throw new Error(`useradd ${TEST_USERNAME} failed (${r.status}): ${r.stderr}`);
      u = lookup(TEST_USERNAME);
      if (!u) throw new Error(`useradd ${TEST_USERNAME} succeeded but getent does not know the user`);
    }
    if (u.home !== TEST_HOME || u.shell !== TEST_SHELL) {
      const r = run('usermod', ['-d', TEST_HOME, '-s', TEST_SHELL, TEST_USERNAME]);
      if (r.status !== 0) throw new Error(`usermod ${TEST_USERNAME} failed: ${r.stderr}`);
      u = { ...u, home: TEST_HOME, shell: TEST_SHELL };
    }
    mkdirSync(u.home, { recursive: true });
    chownSync(u.home, u.uid, u.gid);
    chmodSync(u.home, 0o755);
    const r = run('chpasswd', [], `${TEST_USERNAME}:${TEST_PASSWORD}\n`);
    if (r.status !== 0) throw new Error(`chpasswd for ${TEST_USERNAME} failed: ${r.stderr}`);
    return { ...u, password: TEST_PASSWORD };
  });
  return cached;
}

/**
 * Adds a public key line to `~/.ssh/authorized_keys` in the user's real home (dropbear has no
 * AuthorizedKeysFile option). The file is shared by every server and run: call
 * `removeHomeAuthorizedKeys` when done. Requires root for another user's home.
 */
export function addHomeAuthorizedKey(user: TestUser, line: string): void {
  const key = line.trim();
  if (!key || key.includes('\n')) throw new Error('authorize: expected one public key line');
  withLock(() => {
    const dir = join(user.home, '.ssh');
    const file = join(dir, 'authorized_keys');
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const lines = current.split('\n').filter((l) => l.trim() !== '');
    if (!lines.includes(key)) lines.push(key);
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    // dropbear checks that ~/.ssh and the file belong to the user and are not group/world writable.
    chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o700);
    chownSync(file, user.uid, user.gid);
    chmodSync(file, 0o600);
  });
}

/** Removes the given lines from the user's `~/.ssh/authorized_keys`. */
export function removeHomeAuthorizedKeys(user: TestUser, keys: string[]): void {
  if (keys.length === 0) return;
  const drop = new Set(keys.map((k) => k.trim()));
  withLock(() => {
    const file = join(user.home, '.ssh', 'authorized_keys');
    if (!existsSync(file)) return;
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !drop.has(l.trim()));
    writeFileSync(file, lines.length ? lines.join('\n') + '\n' : '');
  });
}
