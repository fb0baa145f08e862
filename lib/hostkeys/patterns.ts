/**
 * Host name matching for known_hosts lines, following OpenSSH (sshd(8), "SSH_KNOWN_HOSTS FILE
 * FORMAT", and ssh-keygen -F, which share the matcher): a comma-separated list of patterns where
 * '*' and '?' are wildcards, a leading '!' negates (a negated match vetoes the whole line), and a
 * name may be a hashed `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`. Matching is done on the
 * lowercased host name, as OpenSSH lowercases the name it looks up.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The prefix of a hashed host name (OpenSSH's HASH_MAGIC). */
export const HASH_MAGIC = '|1|';
/** The salt and the MAC of a hashed name are both SHA-1 sized: 20 bytes. */
const SHA1_LEN = 20;

/**
 * ASCII-only lowercasing, as OpenSSH's tolower(): String.prototype.toLowerCase would also fold
 * non-ASCII letters (and can change the length), giving names that hash differently.
 */
export function lowerAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * Glob match of the whole string `s` against `pattern` ('*' any run, '?' any one character).
 * Greedy with one backtrack point, so the cost is O(len(s) * len(pattern)) at worst, never
 * exponential (a regex built from the pattern could be).
 */
export function matchPattern(s: string, pattern: string): boolean {
  let si = 0;
  let pi = 0;
  let starPi = -1; // position of the last '*' seen in the pattern
  let starSi = 0; // where in `s` that '*' currently stops
  while (si < s.length) {
    const pc = pattern[pi];
    if (pi < pattern.length && (pc === '?' || pc === s[si])) {
      si++;
      pi++;
    } else if (pi < pattern.length && pc === '*') {
      starPi = pi++;
      starSi = si;
    } else if (starPi >= 0) {
      pi = starPi + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

export function isHashedName(name: string): boolean {
  return name.startsWith(HASH_MAGIC);
}

/** Splits `|1|salt|mac` into its decoded parts; null when it is not well formed. */
function parseHashedName(name: string): { salt: Buffer; mac: Buffer } | null {
  const parts = name.split('|');
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== '1') return null;
  const salt = decodeBase64(parts[2]);
  const mac = decodeBase64(parts[3]);
  if (!salt || !mac || salt.length !== SHA1_LEN || mac.length !== SHA1_LEN) return null;
  return { salt, mac };
}

function decodeBase64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  return Buffer.from(s, 'base64');
}

/**
 * Paramiko's `HostKeys.hash_host`: `|1|base64(salt)|base64(HMAC-SHA1(salt, hostname))`.
 * `salt` is 20 bytes, given as a Buffer, as its base64, or as a whole hashed name whose salt is
 * reused (to recompute an existing entry); a random salt when omitted. The name is hashed as
 * given: pass it lowercased to get what `ssh` and `ssh-keygen -H` write.
 */
export function hashHost(hostname: string, salt?: Buffer | string | null): string {
  let saltBytes: Buffer;
  if (salt === undefined || salt === null) {
    saltBytes = randomBytes(SHA1_LEN);
  } else if (Buffer.isBuffer(salt)) {
    saltBytes = salt;
  } else {
    const b64 = isHashedName(salt) ? salt.split('|')[2] ?? '' : salt;
    const decoded = decodeBase64(b64);
    if (!decoded) throw new TypeError(`hashHost: the salt is not valid base64: ${JSON.stringify(b64)}`);
    saltBytes = decoded;
  }
  if (saltBytes.length !== SHA1_LEN) {
    throw new RangeError(`hashHost: the salt must be ${SHA1_LEN} bytes, got ${saltBytes.length}`);
  }
  const mac = createHmac('sha1', saltBytes).update(hostname, 'utf8').digest();
  return `${HASH_MAGIC}${saltBytes.toString('base64')}|${mac.toString('base64')}`;
}

/** True when the hashed `name` is the hash of `host` (compared in constant time). */
export function hashedNameMatches(name: string, host: string): boolean {
  const parsed = parseHashedName(name);
  if (!parsed) return false;
  const mac = createHmac('sha1', parsed.salt).update(host, 'utf8').digest();
  return timingSafeEqual(mac, parsed.mac);
}

/**
 * Whether `hostname` is selected by the `names` of one known_hosts line: some positive pattern
 * or hashed name matches and no negated pattern does (OpenSSH's match_hostname() returning 1).
 * A hashed name given as `hostname` (as `HostKeys.keys()` lists them) matches only itself.
 */
export function namesMatchHost(names: readonly string[], hostname: string): boolean {
  if (isHashedName(hostname)) return names.includes(hostname);
  const host = lowerAscii(hostname);
  let positive = false;
  for (const name of names) {
    if (name.startsWith('!')) {
      if (matchPattern(host, lowerAscii(name.slice(1)))) return false;
    } else if (isHashedName(name)) {
      positive ||= hashedNameIsHost(name, hostname, host);
    } else if (!positive) {
      positive = matchPattern(host, lowerAscii(name));
    }
  }
  return positive;
}

/**
 * Whether `name`, one entry of a line's host list, stands for exactly `hostname`: the same
 * literal name (case-insensitively) or its hash. A pattern only by its own text, never by what
 * it matches, and never a negation; this is what `add` and `delete` edit.
 */
export function nameIsHost(name: string, hostname: string): boolean {
  if (isHashedName(hostname)) return name === hostname;
  const host = lowerAscii(hostname);
  if (isHashedName(name)) return hashedNameIsHost(name, hostname, host);
  return !name.startsWith('!') && lowerAscii(name) === host;
}

/**
 * A hashed name stands for the lowercased host (what ssh and `ssh-keygen -H` hash) or for the
 * host as given (what `ssh-keygen -F` hashes, and Paramiko's `hash_host` of a mixed-case name).
 */
function hashedNameIsHost(name: string, hostname: string, lowered: string): boolean {
  return hashedNameMatches(name, lowered) || (lowered !== hostname && hashedNameMatches(name, hostname));
}
