/**
 * The part of glob(3) that `Include` needs: `*`, `?` and `[...]` in any path component,
 * `\` escapes, no match for a leading dot unless the pattern has one, results sorted, and
 * no result (rather than an error) when nothing matches. Node 20 has no fs.globSync.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

const MAGIC = /[*?[]/;

/** Whether a name matches one glob component (fnmatch without FNM_PERIOD handling). */
export function fnmatch(name: string, pattern: string): boolean {
  return matchFrom(name, 0, pattern, 0);
}

function matchFrom(name: string, n: number, pat: string, p: number): boolean {
  while (p < pat.length) {
    const c = pat[p];
    if (c === '*') {
      while (pat[p] === '*') p++;
      if (p === pat.length) return true;
      for (let k = n; k <= name.length; k++) if (matchFrom(name, k, pat, p)) return true;
      return false;
    }
    if (n >= name.length) return false;
    if (c === '?') {
      n++;
      p++;
    } else if (c === '[') {
      const cls = readClass(pat, p);
      if (cls === null) {
        // An unterminated `[` is an ordinary character.
        if (name[n] !== '[') return false;
        n++;
        p++;
      } else {
        if (cls.test(name[n]) === cls.negated) return false;
        n++;
        p = cls.end;
      }
    } else {
      const literal = c === '\\' && p + 1 < pat.length ? pat[p + 1] : c;
      if (name[n] !== literal) return false;
      n++;
      p += c === '\\' && p + 1 < pat.length ? 2 : 1;
    }
  }
  return n === name.length;
}

interface CharClass {
  negated: boolean;
  end: number;
  test(ch: string): boolean;
}

function readClass(pat: string, start: number): CharClass | null {
  let i = start + 1;
  const negated = pat[i] === '!' || pat[i] === '^';
  if (negated) i++;
  const ranges: Array<[string, string]> = [];
  let first = true;
  while (i < pat.length && (pat[i] !== ']' || first)) {
    first = false;
    let lo = pat[i];
    if (lo === '\\' && i + 1 < pat.length) lo = pat[++i];
    let hi = lo;
    if (pat[i + 1] === '-' && i + 2 < pat.length && pat[i + 2] !== ']') {
      hi = pat[i + 2];
      i += 2;
    }
    ranges.push([lo, hi]);
    i++;
  }
  if (i >= pat.length) return null;
  return { negated, end: i + 1, test: (ch) => ranges.some(([lo, hi]) => lo <= ch && ch <= hi) };
}

function unescape(component: string): string {
  return component.replace(/\\(.)/g, '$1');
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Paths matching an absolute glob pattern, sorted; [] when none. */
export function globSync(pattern: string): string[] {
  const parts = pattern.split('/');
  let bases = [parts[0] === '' ? '/' : parts[0]];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i];
    if (part === '') continue;
    const next: string[] = [];
    for (const base of bases) {
      if (!MAGIC.test(part)) {
        next.push(path.join(base, unescape(part)));
        continue;
      }
      let names: string[];
      try {
        names = fs.readdirSync(base);
      } catch {
        continue;
      }
      for (const name of names) {
        if (name.startsWith('.') && !part.startsWith('.')) continue;
        if (fnmatch(name, part)) next.push(path.join(base, name));
      }
    }
    bases = next;
  }
  return bases.filter(exists).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
