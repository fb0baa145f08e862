/**
 * ssh_config PATTERNS: `*` matches any run of characters, `?` exactly one, everything else
 * itself (no character classes, unlike glob). A pattern-list is comma-separated, each entry
 * optionally negated with `!`; a negated match rejects the whole list.
 */

import { asciiLower } from './lexer';

/** Whether `text` matches the wildcard `pattern` (case-sensitive, whole string). */
export function matchPattern(text: string, pattern: string): boolean {
  // Iterative wildcard match with backtracking to the last `*`: linear in practice and
  // free of the exponential blow-up of naive recursion on patterns like `*a*a*a*b`.
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      t++;
      p++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * OpenSSH's match_pattern_list: 1 when an entry matches, -1 when a negated entry matches
 * (which wins over everything), 0 otherwise. With `lower`, the patterns are lowercased (the
 * caller lowercases `text`), as for host names.
 */
export function matchPatternList(text: string, list: string, lower = false): -1 | 0 | 1 {
  let positive = false;
  for (let entry of list.split(',')) {
    const negated = entry.startsWith('!');
    if (negated) entry = entry.slice(1);
    if (lower) entry = asciiLower(entry);
    if (matchPattern(text, entry)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

/** OpenSSH's match_hostname: a case-insensitive pattern-list match. */
export function matchHostname(host: string, list: string): boolean {
  return matchPatternList(asciiLower(host), list, true) === 1;
}

/**
 * Whether a `Host` line applies: each whitespace-separated pattern is matched on its own
 * (commas are not separators here, unlike `Match host`), case-sensitively, and any matching
 * `!pattern` rejects the line.
 */
export function hostLineMatches(host: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const entry of patterns) {
    const negated = entry.startsWith('!');
    if (matchPattern(host, negated ? entry.slice(1) : entry)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}
