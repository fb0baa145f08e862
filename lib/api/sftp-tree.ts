/**
 * Whole directory trees through SFTPClient.get/put with `recurse` (AsyncSSH's get/put with
 * recurse=True; ssh2-sftp-client's downloadDir/uploadDir): the tree is listed first, then its
 * directories are made, its files copied in one batch in the worker (several small files at
 * once: they are bound by round trips), its links recreated, and with `preserve` modes and
 * times set, a directory's after its contents (writing into it changes its mtime).
 */
import { lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, chmodSync, utimesSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { Op } from '../bridge';
import { ioErrorFrom } from '../files';
import { IOError } from '../errors';
import { SFTPAttributes } from '../sftp/attributes';
import { errnoOf } from '../sftp/constants';
import type { TransferCallback } from './sftp-client';

/** The options of a recursive get or put (also read by a plain one: `preserve`). */
export interface TreeOptions {
  /** Copy a directory with everything under it (the destination is that directory). */
  recurse?: boolean;
  /** Set the copies' permissions and access/modification times to the originals'. */
  preserve?: boolean;
  /** Copy what symbolic links point to instead of recreating the links (loops are refused). */
  followSymlinks?: boolean;
}

/** One entry of a tree, relative to its root ('' is the root itself). */
interface Entry {
  rel: string;
  kind: 'dir' | 'file' | 'link';
  /** Permission bits, times (seconds) and size, from whichever side is the source. */
  mode: number;
  atime: number;
  mtime: number;
  size: number;
  /** A link's target, as written. */
  target?: string;
}

/** What the tree transfers need of SFTPClient (its ops, as the generator twins use them). */
export interface TreeHost {
  statOp(op: 'stat' | 'lstat', path: string): Op<SFTPAttributes>;
  /** Listings of several directories, in the order given (no `.` or `..`), several at once. */
  listdirsAttrOp(paths: string[]): Op<SFTPAttributes[][]>;
  readlinkOp(path: string): Op<string>;
  realpathOp(path: string): Op<string>;
  /** Makes the directories of each level that are not there, a level at a time (parents first). */
  makeDirsOp(levels: Array<Array<{ path: string; mode: number }>>): Op<void>;
  symlinkOp(source: string, dest: string): Op<void>;
  removeOp(path: string): Op<void>;
  setstatOp(path: string, attrs: Record<string, number>): Op<void>;
  /** Whole-file transfers of many files, several at once in the worker; resolves with the bytes moved. */
  transferFilesOp(direction: 'get' | 'put', files: Array<{ remote: string; local: string; size: number }>, callback: TransferCallback | null): Op<number>;
}

const S_IFMT = 0o170000;
const kindOf = (mode: number): Entry['kind'] | null =>
  (mode & S_IFMT) === 0o040000 ? 'dir' : (mode & S_IFMT) === 0o100000 ? 'file' : (mode & S_IFMT) === 0o120000 ? 'link' : null;
/** A remote path joined from `dir` and `name`, either of them possibly '' (nothing to add). */
export function joinRemote(dir: string, name: string): string {
  if (name === '') return dir;
  if (dir === '') return name;
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** A remote file's entry (`rel` '' for one alone): permission bits, times and size from its attributes. */
export function fromAttrs(rel: string, a: SFTPAttributes): Omit<Entry, 'kind'> {
  return { rel, mode: (a.st_mode ?? 0o644) & 0o7777, atime: Number(a.st_atime ?? 0), mtime: Number(a.st_mtime ?? 0), size: Number(a.st_size ?? 0) };
}

/** A local file's entry, from its fs.Stats. */
export function fromStats(rel: string, st: Stats): Omit<Entry, 'kind'> {
  return { rel, mode: st.mode & 0o7777, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000), size: st.size };
}

/** `preserve` on this machine: the copy at `path` gets the original's permissions and times. */
export function preserveLocal(path: string, e: Pick<Entry, 'mode' | 'atime' | 'mtime'>): void {
  local('preserve the mode and times of', path, () => {
    chmodSync(path, e.mode);
    utimesSync(path, e.atime, e.mtime);
  });
}

/** `preserve` on the server: the SETSTAT attributes giving the copy the original's permissions and times. */
export function preservedAttrs(e: Pick<Entry, 'mode' | 'atime' | 'mtime'>): Record<string, number> {
  return { st_mode: e.mode, st_atime: e.atime, st_mtime: e.mtime };
}

/** The files of a tree as the worker's batch takes them: remote and local paths, and sizes. */
function filesOf(entries: Entry[], remote: string, localRoot: string): Array<{ remote: string; local: string; size: number }> {
  return entries.filter((e) => e.kind === 'file').map((e) => ({ remote: joinRemote(remote, e.rel), local: join(localRoot, e.rel), size: e.size }));
}

function loopError(path: string, real: string): IOError {
  return new IOError(`ELOOP: a link loop at ${path} (back to ${real})`, { code: 'ELOOP', errno: errnoOf('ELOOP'), filename: path });
}

function notADirectory(call: 'get' | 'put', path: string): IOError {
  return new IOError(`ENOTDIR: not a directory, ${call} '${path}' (recurse copies a directory)`, { code: 'ENOTDIR', errno: errnoOf('ENOTDIR'), filename: path });
}

/**
 * A remote tree, a level at a time: each level's directories are listed together (one batch in
 * the worker), so a tree far away costs a round trip per level, not one per directory.
 * Directories come before what is in them.
 */
function* remoteTree(host: TreeHost, root: string, follow: boolean): Op<Entry[]> {
  const out: Entry[] = [];
  const seen = new Set<string>();
  let level: Array<{ rel: string; attrs: SFTPAttributes }> = [{ rel: '', attrs: yield* host.statOp('stat', root) }];
  while (level.length) {
    const dirs: string[] = [];
    for (const item of level) {
      const { rel } = item;
      let { attrs } = item;
      const path = joinRemote(root, rel);
      let kind = kindOf(attrs.st_mode ?? 0);
      if (kind === 'link' && follow) {
        attrs = yield* host.statOp('stat', path);
        kind = kindOf(attrs.st_mode ?? 0);
      }
      if (kind === 'link') {
        out.push({ ...fromAttrs(rel, attrs), kind, target: yield* host.readlinkOp(path) });
        continue;
      }
      if (kind === 'file') {
        out.push({ ...fromAttrs(rel, attrs), kind });
        continue;
      }
      if (kind !== 'dir') continue; // sockets, devices, FIFOs: nothing to copy
      if (follow) {
        const real = yield* host.realpathOp(path);
        if (seen.has(real)) throw loopError(path, real);
        seen.add(real);
      }
      out.push({ ...fromAttrs(rel, attrs), kind });
      dirs.push(rel);
    }
    const listings = dirs.length ? yield* host.listdirsAttrOp(dirs.map((rel) => joinRemote(root, rel))) : [];
    level = listings.flatMap((children, i) => children.map((child) => ({ rel: joinRemote(dirs[i], child.filename!), attrs: child })));
  }
  return out;
}

function localTree(root: string, follow: boolean): Entry[] {
  const out: Entry[] = [];
  const seen = new Set<string>();
  const visit = (rel: string, st: Stats): void => {
    const path = rel === '' ? root : join(root, rel);
    if (st.isSymbolicLink() && follow) st = statSync(path);
    if (st.isSymbolicLink()) return void out.push({ ...fromStats(rel, st), kind: 'link', target: readlinkSync(path) });
    if (st.isFile()) return void out.push({ ...fromStats(rel, st), kind: 'file' });
    if (!st.isDirectory()) return;
    if (follow) {
      const real = realpathSync(path);
      if (seen.has(real)) throw loopError(path, real);
      seen.add(real);
    }
    out.push({ ...fromStats(rel, st), kind: 'dir' });
    for (const name of readdirSync(path).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      visit(childRel, lstatSync(join(root, childRel)));
    }
  };
  try {
    visit('', statSync(root));
  } catch (e) {
    throw (e as NodeJS.ErrnoException).code && !(e instanceof IOError) ? ioErrorFrom(e, 'cannot read', (e as NodeJS.ErrnoException).path ?? root) : e;
  }
  return out;
}

/** A local operation's error as an IOError naming its path. */
function local<T>(action: string, path: string, op: () => T): T {
  try {
    return op();
  } catch (e) {
    throw (e as NodeJS.ErrnoException).code && !(e instanceof IOError) ? ioErrorFrom(e, `cannot ${action}`, path) : e;
  }
}

/** get with recurse: the remote tree at `remote` becomes the local directory `localRoot`. */
export function* getTree(host: TreeHost, remote: string, localRoot: string, callback: TransferCallback | null, o: TreeOptions): Op<number> {
  const entries = yield* remoteTree(host, remote, Boolean(o.followSymlinks));
  if (entries[0]?.kind !== 'dir') throw notADirectory('get', remote);
  for (const e of entries) {
    const dst = e.rel === '' ? localRoot : join(localRoot, e.rel);
    if (e.kind === 'dir') local('make directory', dst, () => mkdirSync(dst, { recursive: true }));
  }
  const files = filesOf(entries, remote, localRoot);
  const moved = yield* host.transferFilesOp('get', files, callback);
  for (const e of entries) {
    if (e.kind !== 'link') continue;
    const dst = join(localRoot, e.rel);
    local('make link', dst, () => {
      rmSync(dst, { force: true });
      symlinkSync(e.target!, dst);
    });
  }
  if (o.preserve) {
    // Deepest first: setting a directory's times before its contents were written would not last.
    for (const e of [...entries].reverse()) {
      if (e.kind !== 'link') preserveLocal(e.rel === '' ? localRoot : join(localRoot, e.rel), e);
    }
  }
  return moved;
}

/** put with recurse: the local tree at `localRoot` becomes the remote directory `remote`. */
export function* putTree(host: TreeHost, localRoot: string, remote: string, callback: TransferCallback | null, o: TreeOptions): Op<number> {
  const entries = localTree(localRoot, Boolean(o.followSymlinks));
  if (entries[0]?.kind !== 'dir') throw notADirectory('put', localRoot);
  // Level by level (parents first), each level's directories at once; an existing directory
  // is merged into, as mkdir -p would.
  const levels: Array<Array<{ path: string; mode: number }>> = [];
  for (const e of entries) {
    if (e.kind !== 'dir') continue;
    const depth = e.rel === '' ? 0 : e.rel.split('/').length;
    (levels[depth] ??= []).push({ path: joinRemote(remote, e.rel), mode: e.mode | 0o700 });
  }
  yield* host.makeDirsOp(levels.filter(Boolean));
  const files = filesOf(entries, remote, localRoot);
  const moved = yield* host.transferFilesOp('put', files, callback);
  for (const e of entries) {
    if (e.kind !== 'link') continue;
    // A link or file of that name from an earlier copy is replaced, as a local ln -sf would.
    const dst = joinRemote(remote, e.rel);
    const there = yield* existingKind(host, dst);
    if (there === 'link' || there === 'file') yield* host.removeOp(dst);
    yield* host.symlinkOp(e.target!, dst);
  }
  if (o.preserve) {
    for (const e of [...entries].reverse()) {
      if (e.kind === 'link') continue;
      yield* host.setstatOp(joinRemote(remote, e.rel), preservedAttrs(e));
    }
  }
  return moved;
}

/** The kind of what is at remote `path` (not following a final link), or null when nothing is. */
function* existingKind(host: TreeHost, path: string): Op<Entry['kind'] | null> {
  try {
    return kindOf((yield* host.statOp('lstat', path)).st_mode ?? 0);
  } catch (e) {
    if ((e as IOError).code === 'ENOENT') return null;
    throw e;
  }
}
