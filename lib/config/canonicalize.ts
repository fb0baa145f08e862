/**
 * Host-name canonicalisation (CanonicalizeHostname, CanonicalDomains, CanonicalizeMaxDots,
 * CanonicalizeFallbackLocal, CanonicalizePermittedCNAMEs) and the address normalisation
 * OpenSSH applies to numeric hosts.
 *
 * Resolution must be synchronous (lookup is), so the default resolver runs `getent ahosts`,
 * which asks the same NSS stack (files, DNS...) as OpenSSH's getaddrinfo, and reports the
 * canonical name getaddrinfo gives (AI_CANONNAME: where CNAMEs lead).
 */

import { spawnSync } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { CouldNotCanonicalize, NotImplementedError } from '../errors';
import { matchPatternList } from './patterns';

export type AddressFamily = 'any' | 'inet' | 'inet6';

/**
 * Whether `name` resolves to an address of the family (`name` has no trailing dot): false, or
 * true, or the canonical name the resolver reports for it (where its CNAMEs lead), which
 * CanonicalizePermittedCNAMEs rules may then substitute for it.
 */
export type HostResolver = (name: string, family: AddressFamily) => boolean | string;

const GETENT_DATABASE: Record<AddressFamily, string> = { any: 'ahosts', inet: 'ahostsv4', inet6: 'ahostsv6' };

/** Resolve through NSS with `getent`; the trailing dot keeps the resolver's search list out. */
export const getentResolver: HostResolver = (name, family) => {
  const r = spawnSync('getent', [GETENT_DATABASE[family], `${name}.`], { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'latin1' });
  if (r.error !== undefined) {
    throw new NotImplementedError(`CanonicalizeHostname without getent(1) (${r.error.message}); pass a resolveHost option`);
  }
  return r.status === 0 && (canonicalNameOf(r.stdout) ?? true);
};

/**
 * The canonical name in `getent ahosts` output: its first line is `address socktype name` when
 * getaddrinfo gave one (the lines after it repeat the address for other socket types).
 */
export function canonicalNameOf(getentOutput: string): string | null {
  const fields = getentOutput.split('\n', 1)[0].trim().split(/\s+/);
  return fields.length >= 3 && fields[2] !== '' ? fields[2].replace(/\.$/, '') : null;
}

/** One CanonicalizePermittedCNAMEs rule: names matching `source` may become a CNAME matching `target`. */
export interface CnameRule {
  source: string;
  target: string;
}

/** The rules of CanonicalizePermittedCNAMEs' words (`none`: no rules; the parser checked the syntax). */
export function cnameRules(words: readonly string[] | undefined): CnameRule[] {
  if (!words || (words.length === 1 && words[0].toLowerCase() === 'none')) return [];
  return words.map((w) => {
    const colon = w.indexOf(':');
    return { source: w.slice(0, colon).toLowerCase(), target: w.slice(colon + 1).toLowerCase() };
  });
}

/**
 * OpenSSH's CNAME rule: `name` becomes `canonical` (the resolver's answer for it) when they
 * differ and a rule's source list matches the name and its target list the canonical name
 * (pattern lists with `!` negation, case-insensitive).
 */
export function followCname(name: string, canonical: boolean | string, rules: readonly CnameRule[]): string {
  if (typeof canonical !== 'string' || canonical === '' || canonical === name) return name;
  const permitted = rules.some((r) => matchPatternList(name, r.source, true) === 1 && matchPatternList(canonical, r.target, true) === 1);
  return permitted ? canonical : name;
}

/** OpenSSH's is_addr_fast: names that are treated as addresses without asking the resolver. */
export function looksLikeAddress(name: string): boolean {
  return name.includes('%') || name.includes(':') || /^[0-9.]*$/.test(name);
}

/**
 * The canonical text of a numeric address (inet_aton forms such as `127.1`, or IPv6 such as
 * `0:0::1`), as getaddrinfo(AI_NUMERICHOST) + getnameinfo print it; null if not numeric.
 */
export function canonicalAddress(name: string): string | null {
  const v4 = parseInetAton(name);
  if (v4 !== null) return v4.join('.');
  // An IPv6 scope (`%eth0`) is kept as written.
  const zone = name.indexOf('%');
  const address = zone < 0 ? name : name.slice(0, zone);
  if (isIPv6(address)) return formatIPv6(parseIPv6(address)) + (zone < 0 ? '' : name.slice(zone));
  return null;
}

/** inet_aton: 1 to 4 parts (decimal, 0octal, 0xhex), the last one filling the remaining bytes. */
function parseInetAton(name: string): number[] | null {
  const parts = name.split('.');
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    else if (/^0[0-7]*$/.test(part)) value = parseInt(part, 8);
    else if (/^[1-9][0-9]*$/.test(part)) value = parseInt(part, 10);
    else return null;
    values.push(value);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255)) return null;
  const room = 4 - values.length;
  if (last >= 2 ** (8 * room)) return null;
  const tail: number[] = [];
  for (let i = room - 1; i >= 0; i--) tail.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return [...values, ...tail];
}

function parseIPv6(text: string): number[] {
  let head = text;
  let v4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    v4 = text.slice(lastColon + 1).split('.').map(Number);
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const l = words(left);
  const r = right === undefined ? [] : words(right);
  const groups = [...l, ...new Array(8 - l.length - r.length).fill(0), ...r];
  if (v4.length === 4) {
    groups[6] = v4[0] * 256 + v4[1];
    groups[7] = v4[2] * 256 + v4[3];
  }
  return groups;
}

/** glibc inet_ntop: longest run (≥ 2) of zero groups as `::`, and the IPv4-compatible forms. */
function formatIPv6(groups: number[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (bestLen < 2) best = -1;
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (best === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff))) {
    const v4 = `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
    return bestLen === 6 ? `::${v4}` : `::ffff:${v4}`;
  }
  if (best < 0) return hex(0, 8);
  return `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** The settings canonicalisation reads, as strings from the config (absent = default). */
export interface CanonicalizeSettings {
  canonicalizefallbacklocal?: string;
  addressfamily?: string;
}

/** The address family AddressFamily asks for. */
export function addressFamilyOf(settings: CanonicalizeSettings): AddressFamily {
  const family = settings.addressfamily?.toLowerCase();
  return family === 'inet' || family === 'inet6' ? family : 'any';
}

function isYes(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  return v === 'yes' || v === 'true';
}

/**
 * Try `hostname.domain` for each domain (stopping at `none`); a name ending in `.` is tried
 * as is. Returns the first that resolves (without a trailing dot; its CNAME instead when a
 * `cnames` rule permits). When none does, returns null if CanonicalizeFallbackLocal is yes
 * (the default: the caller keeps `hostname`), else throws CouldNotCanonicalize.
 */
export function resolveWithDomains(
  hostname: string,
  settings: CanonicalizeSettings,
  domains: readonly string[],
  resolve: HostResolver,
  cnames: readonly CnameRule[] = [],
): string | null {
  const family = addressFamilyOf(settings);
  const candidates = hostname.endsWith('.') ? [hostname.slice(0, -1)] : [];
  if (candidates.length === 0) {
    for (const domain of domains) {
      if (domain.toLowerCase() === 'none') break;
      candidates.push(`${hostname}.${domain}`);
    }
  }
  for (const candidate of candidates) {
    const answer = resolve(candidate, family);
    if (answer !== false) return followCname(candidate, answer, cnames);
  }
  if (isYes(settings.canonicalizefallbacklocal, true)) return null;
  throw new CouldNotCanonicalize(`Could not resolve host "${hostname}"`);
}

/** resolveWithDomains, with the fallback to `hostname` itself (Paramiko's canonicalize). */
export function canonicalizeWithDomains(
  hostname: string,
  settings: CanonicalizeSettings,
  domains: readonly string[],
  resolve: HostResolver,
  cnames: readonly CnameRule[] = [],
): string {
  return resolveWithDomains(hostname, settings, domains, resolve, cnames) ?? hostname;
}
