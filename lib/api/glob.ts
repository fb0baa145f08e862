/**
 * Glob patterns as a shell expands them (AsyncSSH's SFTPClient.glob, Python's glob), over any
 * tree that can be listed: the server's (SFTPClient.glob, mget) or this machine's (mput).
 */
import type { Op } from '../bridge';
import { joinRemote } from './sftp-tree';

/** One entry of a listing, as the walk needs it. */
export interface GlobEntry {
  name: string;
  /** A directory (a link to one counts only as a link). */
  dir: boolean;
  link: boolean;
}

/** What a glob walks. */
export interface GlobTree {
  /** The entries of `dir` ('' is the current directory); none when it cannot be listed (missing, not a directory, refused). */
  listOp(dir: string): Op<GlobEntry[]>;
  /** Whether `path` exists, following links when `dirsOnly` (then only a directory counts), not otherwise. */
  probeOp(path: string, dirsOnly: boolean): Op<boolean>;
}

/**
 * A test of one name against one part of a glob pattern (fnmatch's rules within a name: `*`,
 * `?`, `[...]` and `[!...]`); hidden names only when the part starts with ".".
 */
export function globMatcher(part: string): (name: string) => boolean {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = part.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = part.slice(i + 1, close);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (x) => `\\${x}`)}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, (x) => `\\${x}`);
  }
  const rx = new RegExp(`^${re}$`, 's');
  const hiddenOk = part.startsWith('.');
  return (name) => (hiddenOk || !name.startsWith('.')) && rx.test(name);
}

/** Whether a pattern part has wildcards. */
export const hasWildcards = (part: string): boolean => /[*?[]/.test(part);

/**
 * The paths of `tree` matching `pattern`, sorted: `*`, `?` and `[...]` within a name, `**` for
 * any depth of directories (not through links, not into hidden ones); a part without wildcards
 * must exist; a trailing "/" keeps directories only. Relative patterns give relative paths.
 */
export function* globWalk(pattern: string, tree: GlobTree): Op<string[]> {
  const parts = pattern.split('/').filter((p) => p !== '');
  if (parts.length === 0) return pattern.startsWith('/') ? ['/'] : [];
  let bases = [pattern.startsWith('/') ? '/' : ''];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const last = i === parts.length - 1;
    const next = new Set<string>();
    for (const base of bases) {
      if (part === '**') {
        next.add(base);
        for (const dir of yield* subdirectories(tree, base)) next.add(dir);
      } else if (!hasWildcards(part)) {
        next.add(joinRemote(base, part));
      } else {
        const match = globMatcher(part);
        for (const e of yield* tree.listOp(base)) {
          // On the way down only directories (or links, maybe to one) can lead further.
          if (match(e.name) && (last || e.dir || e.link)) next.add(joinRemote(base, e.name));
        }
      }
    }
    bases = [...next];
  }
  const dirsOnly = pattern.endsWith('/');
  const out: string[] = [];
  for (const path of bases) {
    // Wildcard matches came from listings; literal parts and ** are checked here.
    if (path !== '' && (yield* tree.probeOp(path, dirsOnly))) out.push(path);
  }
  return out.sort();
}

/** Every directory under `dir` (not through links, not hidden ones), for `**`. */
function* subdirectories(tree: GlobTree, dir: string): Op<string[]> {
  const out: string[] = [];
  for (const e of yield* tree.listOp(dir)) {
    if (!e.dir || e.name.startsWith('.')) continue;
    const sub = joinRemote(dir, e.name);
    out.push(sub, ...(yield* subdirectories(tree, sub)));
  }
  return out;
}
