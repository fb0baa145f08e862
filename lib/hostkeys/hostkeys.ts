/**
 * Paramiko's `HostKeys`: the keys of an OpenSSH known_hosts file, with dict-like access by host
 * name. Beyond Paramiko (which matches exact or hashed names only) it follows OpenSSH's rules:
 * '*'/'?' wildcards, '!negation', `[host]:port` names, case-insensitive matching, and the
 * `@cert-authority` / `@revoked` markers.
 *
 * Choices where Paramiko and OpenSSH differ, or Paramiko is silent:
 * - Lines are kept in file order, and lines it cannot use (comments, blanks, unknown key types,
 *   corrupt keys, unknown markers) are kept as text, skipped by lookups and written back by
 *   `save`. An unchanged line is written back byte for byte, and combined `a,b` lines stay
 *   combined (Paramiko's docs say its save splits them, "arguably a bug"; its code does not).
 * - `load` appends (merges) without going through `add`, whatever Paramiko's docs say: several
 *   keys of one type for a host are legitimate (key rotation, a wildcard line and an exact one),
 *   and `check` accepts any of them, as ssh does. A line equal to one already loaded is
 *   skipped, so loading a file twice is harmless. `lookup` gives the first key of each type,
 *   in file order; `add` is what replaces.
 * - `@revoked` is global: a key on any `@revoked` line is never returned or accepted, whatever
 *   host patterns that line has (sshd(8): "must not ever be accepted"; ssh itself applies only
 *   the revoked lines that match the host, which is weaker).
 * - `@cert-authority` keys are never host keys; `lookupCertAuthorities` gives them.
 */
import { debug } from '../debug';
import type { PKey } from '../keys';
import { HostKeyEntry } from './entry';
import { readLines, writeFileAtomic } from './file';
import { HostKeyMap, type HostKeyMapOwner } from './map';
import { hashHost as hashHostName, nameIsHost } from './patterns';


/** A line of the file: a parsed entry, or text kept as it was. */
type Line = HostKeyEntry | string;

export class HostKeys implements Iterable<[string, HostKeyMap]>, HostKeyMapOwner {
  private lines: Line[] = [];

  /** Loads `filename` when given (an `IOError` if it cannot be read, as Paramiko). */
  constructor(filename?: string | null) {
    if (filename !== undefined && filename !== null) this.load(filename);
  }

  /**
   * Paramiko's `hash_host`: `|1|base64(salt)|base64(HMAC-SHA1(salt, hostname))`, with a random
   * 20-byte salt unless one is given (a Buffer, its base64, or a hashed name to reuse the salt
   * of). The name is hashed as given; lowercase it to get what ssh and `ssh-keygen -H` write.
   */
  static hashHost(hostname: string, salt?: Buffer | string | null): string {
    return hashHostName(hostname, salt);
  }

  /**
   * Adds the lines of an OpenSSH known_hosts file after the ones already here. Throws `IOError`
   * (with `code`, `errno`, `filename`) when the file cannot be read. A bad line never aborts
   * the load: it is kept as text, skipped by lookups and written back by `save`.
   */
  load(filename: string): void {
    const fileLines = readLines(filename);
    // What is already here, to skip repeats in O(1) (a known_hosts can have many thousand lines).
    const id = (l: Line): string => (typeof l === 'string' ? 'text:' + l : 'entry:' + l.identity());
    const seen = new Set<string>(this.lines.map(id));
    fileLines.forEach((text, i) => {
      let entry: HostKeyEntry | null = null;
      try {
        entry = HostKeyEntry.fromLine(text, i + 1);
      } catch (e) {
        debug('%s:%d: %s', filename, i + 1, (e as Error).message);
      }
      if (entry === null) {
        // Comments and blank lines always stay; other unreadable lines once.
        const unique = text.trim() === '' || text.trim().startsWith('#');
        if (unique || !seen.has(id(text))) this.lines.push(text);
        seen.add(id(text));
      } else if (!seen.has(id(entry))) {
        this.lines.push(entry);
        seen.add(id(entry));
      }
    });
  }

  /**
   * Writes every line, in order, to `filename` (mode 0600), replacing it atomically: a failed
   * save raises `IOError` and leaves the old file as it was.
   */
  save(filename: string): void {
    const out: string[] = [];
    for (const line of this.lines) {
      if (typeof line === 'string') out.push(line + '\n');
      else {
        const text = line.toLine();
        if (text !== null) out.push(text);
      }
    }
    writeFileAtomic(filename, out.join(''));
  }

  /**
   * Records `key` as the `keytype` key of `hostname` (Paramiko's `add`). It replaces the key of
   * that type on the lines that name this host exactly or by its hash, in place; a line that
   * names other hosts too is split so they keep their key. Lines matching only by wildcard are
   * left alone. With no such line, `hostname keytype key` is appended.
   */
  add(hostname: string, keytype: string, key: PKey): void {
    let replaced = false;
    for (let i = 0; i < this.lines.length; i++) {
      const e = this.lines[i];
      if (!isPlain(e) || e.key?.getName() !== keytype) continue;
      const idx = e.hostnames.findIndex((n) => nameIsHost(n, hostname));
      if (idx < 0) continue;
      if (replaced) {
        // A second line for the same host and type would keep the old key acceptable.
        i -= this.dropName(i, idx);
        continue;
      }
      const name = e.hostnames[idx]; // kept as written: a hashed name stays hashed
      if (e.hostnames.length === 1) {
        e.key = key;
      } else {
        e.hostnames.splice(idx, 1);
        this.lines.splice(i + 1, 0, new HostKeyEntry([name], key));
        i++;
      }
      replaced = true;
    }
    if (!replaced) this.lines.push(new HostKeyEntry([hostname], key));
  }

  /**
   * The host's keys by type, or null when there are none (Paramiko's `lookup`). Plain lines only
   * (`@cert-authority` keys are in `lookupCertAuthorities`), matched by OpenSSH's rules; the
   * first line of each key type wins; a revoked key is never returned.
   */
  lookup(hostname: string): HostKeyMap | null {
    const byType = new Map<string, PKey>();
    const revoked = this.revokedKeys();
    for (const e of this.matchingEntries(hostname)) {
      if (e.marker !== null || !e.key) continue;
      const type = e.key.getName();
      if (!byType.has(type) && !revoked.has(e.key.getBase64())) byType.set(type, e.key);
    }
    return byType.size ? new HostKeyMap(this, hostname, byType) : null;
  }

  /**
   * Whether `key` is a known, not revoked, host key of `hostname`. Any matching plain line with
   * this key will do, as ssh accepts it (Paramiko compares only the first key of each type).
   */
  check(hostname: string, key: PKey): boolean {
    if (this.isRevoked(key)) return false;
    return this.matchingEntries(hostname).some((e) => e.marker === null && e.key !== null && e.key.equals(key));
  }

  /** The CA keys (`@cert-authority` lines) trusted for `hostname`, in file order, revoked ones left out. */
  lookupCertAuthorities(hostname: string): PKey[] {
    const out: PKey[] = [];
    const revoked = this.revokedKeys();
    for (const e of this.matchingEntries(hostname)) {
      if (e.marker !== '@cert-authority' || !e.key) continue;
      const k = e.key;
      if (!revoked.has(k.getBase64()) && !out.some((o) => o.equals(k))) out.push(k);
    }
    return out;
  }

  /** Whether `key` is on a `@revoked` line (any line: revocation is not per host). */
  isRevoked(key: PKey): boolean {
    return this.revokedKeys().has(key.getBase64());
  }

  /**
   * Every line whose host list selects `hostname`, markers included, in file order: what
   * `ssh-keygen -F hostname` prints. Revocation is not applied here.
   */
  matchingEntries(hostname: string): HostKeyEntry[] {
    return this.hostKeyEntries().filter((e) => e.valid && e.matches(hostname));
  }

  /** All parsed lines, in order (kept text lines left out). */
  hostKeyEntries(): HostKeyEntry[] {
    return this.lines.filter((l): l is HostKeyEntry => typeof l !== 'string');
  }

  /** Forgets every line. */
  clear(): void {
    this.lines = [];
  }

  // ---- dict-like access (Paramiko's MutableMapping, with Map's method names) ----

  /** `lookup(hostname)`, but `undefined` rather than null when unknown, as `Map.get`. */
  get(hostname: string): HostKeyMap | undefined {
    return this.lookup(hostname) ?? undefined;
  }

  has(hostname: string): boolean {
    return this.lookup(hostname) !== null;
  }

  /**
   * Removes `hostname` from every plain line that names it exactly or by its hash (a line naming
   * other hosts too keeps them). Wildcard lines and marker lines are left alone, so `has` can
   * still be true afterwards. Returns whether anything was removed.
   */
  delete(hostname: string): boolean {
    return this.removeHost(hostname, null);
  }

  /** @internal Used by `HostKeyMap.delete`. */
  removeHostKeyType(hostname: string, keytype: string): boolean {
    return this.removeHost(hostname, (k) => k.getName() === keytype);
  }

  /**
   * @internal UpdateHostKeys: takes `hostname` off the plain lines that name it exactly or by
   * its hash and hold a key `offered` rejects (a line naming other hosts too keeps them;
   * wildcard and marker lines are left alone). Returns the keys it took the host off.
   */
  removeKeysNotOffered(hostname: string, offered: (key: PKey) => boolean): PKey[] {
    const gone: PKey[] = [];
    this.removeHost(hostname, (k) => {
      if (offered(k)) return false;
      if (!gone.some((g) => g.equals(k))) gone.push(k);
      return true;
    });
    return gone;
  }

  /**
   * The names of the plain lines (patterns and hashed names as written, negations left out),
   * each once, in file order, as Paramiko's `keys()`; only those that `lookup` finds keys for.
   */
  keys(): string[] {
    const seen = new Set<string>();
    for (const e of this.hostKeyEntries()) {
      if (e.marker !== null || !e.valid) continue;
      for (const n of e.hostnames) if (!n.startsWith('!')) seen.add(n);
    }
    return [...seen].filter((n) => this.lookup(n) !== null);
  }

  values(): HostKeyMap[] {
    return this.entries().map(([, v]) => v);
  }

  entries(): Array<[string, HostKeyMap]> {
    const out: Array<[string, HostKeyMap]> = [];
    for (const n of this.keys()) {
      const m = this.lookup(n);
      if (m) out.push([n, m]);
    }
    return out;
  }

  get size(): number {
    return this.keys().length;
  }

  /** `[hostname, keysByType]` pairs, as a Map iterates (Python iterates the names: use `keys()`). */
  [Symbol.iterator](): Iterator<[string, HostKeyMap]> {
    return this.entries()[Symbol.iterator]();
  }

  // ---- internals ----

  /** The base64 public blobs of the `@revoked` lines. */
  private revokedKeys(): Set<string> {
    const out = new Set<string>();
    for (const e of this.hostKeyEntries()) if (e.marker === '@revoked' && e.key) out.add(e.key.getBase64());
    return out;
  }

  /** Takes `hostname` off the plain lines naming it whose key `which` selects (every one without it). */
  private removeHost(hostname: string, which: ((key: PKey) => boolean) | null): boolean {
    let removed = false;
    for (let i = 0; i < this.lines.length; i++) {
      const e = this.lines[i];
      if (!isPlain(e)) continue;
      const idx = e.hostnames.findIndex((n) => nameIsHost(n, hostname));
      if (idx < 0 || (which !== null && (!e.key || !which(e.key)))) continue;
      this.dropName(i, idx);
      removed = true;
      i--; // index i again: the same line (it may name the host twice) or, if it went, the next
    }
    return removed;
  }

  /**
   * Removes name `idx` of line `i`, and the line itself when no positive name is left.
   * Returns 1 if the line went, 0 if not, for the caller's index.
   */
  private dropName(i: number, idx: number): number {
    const e = this.lines[i] as HostKeyEntry;
    e.hostnames.splice(idx, 1);
    if (e.hostnames.some((n) => !n.startsWith('!'))) return 0;
    this.lines.splice(i, 1);
    return 1;
  }
}

function isPlain(line: Line): line is HostKeyEntry {
  return typeof line !== 'string' && line.marker === null;
}
