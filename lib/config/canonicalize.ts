/**
 * Host-name canonicalisation (CanonicalizeHostname, CanonicalDomains, CanonicalizeMaxDots,
 * CanonicalizeFallbackLocal) and the address normalisation OpenSSH applies to numeric hosts.
 *
 * Resolution must be synchronous (lookup is), so the default resolver runs `getent ahosts`,
 * which asks the same NSS stack (files, DNS...) as OpenSSH's getaddrinfo.
 * CanonicalizePermittedCNAMEs (following CNAMEs) is not implemented.
 */

import { spawnSync } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { CouldNotCanonicalize, NotImplementedError } from '../errors';

export type AddressFamily = 'any' | 'inet' | 'inet6';

/** Whether `name` resolves to an address of the family. `name` has no trailing dot. */
export type HostResolver = (name: string, family: AddressFamily) => boolean;

const GETENT_DATABASE: Record<AddressFamily, string> = { any: 'ahosts', inet: 'ahostsv4', inet6: 'ahostsv6' };

/** Resolve through NSS with `getent`; the trailing dot keeps the resolver's search list out. */
export const getentResolver: HostResolver = (name, family) => {
  const r = spawnSync('getent', [GETENT_DATABASE[family], `${name}.`], { stdio: ['ignore', 'ignore', 'ignore'] });
  if (r.error !== undefined) {
    throw new NotImplementedError(`CanonicalizeHostname without getent(1) (${r.error.message}); pass a resolveHost option`);
  }
  return r.status === 0;
};

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

function isYes(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  return v === 'yes' || v === 'true';
}

/**
 * Try `hostname.domain` for each domain (stopping at `none`); a name ending in `.` is tried
 * as is. Returns the first that resolves (without a trailing dot). When none does, returns
 * `hostname` if CanonicalizeFallbackLocal is yes (the default), else throws CouldNotCanonicalize.
 */
export function canonicalizeWithDomains(
  hostname: string,
  settings: CanonicalizeSettings,
  domains: readonly string[],
  resolve: HostResolver,
): string {
  const family = (settings.addressfamily?.toLowerCase() ?? 'any') as AddressFamily;
  const fam: AddressFamily = family === 'inet' || family === 'inet6' ? family : 'any';
  if (hostname.endsWith('.')) {
    const bare = hostname.slice(0, -1);
    if (resolve(bare, fam)) return bare;
  } else {
    for (const domain of domains) {
      if (domain.toLowerCase() === 'none') break;
      const candidate = `${hostname}.${domain}`;
      if (resolve(candidate, fam)) return candidate;
    }
  }
  if (isYes(settings.canonicalizefallbacklocal, true)) return hostname;
  throw new CouldNotCanonicalize(`Could not resolve host "${hostname}"`);
}
