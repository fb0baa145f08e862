/**
 * The tree walk of a recursive get (lib/api/sftp-tree.ts) against a fake SFTP host: each level's
 * directories are listed in one batch (a round trip per level for a far server, not one per
 * directory), directories come before their contents, and every file is handed over once.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSync } from '../lib/bridge';
import type { Op } from '../lib/bridge';
import { SFTPAttributes } from '../lib/sftp/attributes';
import { getTree } from '../lib/api/sftp-tree';
import { batchSlots, batchWeight } from '../lib/sftp/transfer';
import type { TreeHost } from '../lib/api/sftp-tree';

const DIR = 0o040755;
const FILE = 0o100644;

/** Remote paths and their modes (a file's size is its path's length). */
const TREE: Record<string, number> = {
  '/r': DIR,
  '/r/a': DIR,
  '/r/b': DIR,
  '/r/top.txt': FILE,
  '/r/a/deep': DIR,
  '/r/a/deep/x.bin': FILE,
  '/r/b/y.bin': FILE,
  '/r/b/z.bin': FILE,
  '/r/b/empty': DIR,
};

function attrsOf(path: string, name?: string): SFTPAttributes {
  const a = new SFTPAttributes();
  a.st_mode = TREE[path];
  a.st_size = TREE[path] === FILE ? path.length : 4096;
  a.st_atime = 1_700_000_000;
  a.st_mtime = 1_700_000_000;
  if (name !== undefined) a.filename = name;
  return a;
}

// eslint-disable-next-line require-yield
function* done<T>(value: T): Op<T> {
  return value;
}

function fakeHost(listed: string[][], moved: Array<{ remote: string; local: string; size: number }>): TreeHost {
  const unused = (what: string) => (): never => {
    throw new Error(`${what} was not expected`);
  };
  return {
    statOp: (_op, path) => done(attrsOf(path)),
    listdirsAttrOp: (paths) => {
      listed.push(paths);
      return done(paths.map((dir) => Object.keys(TREE).filter((p) => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes('/')).map((p) => attrsOf(p, p.slice(dir.length + 1)))));
    },
    readlinkOp: unused('readlink'),
    realpathOp: unused('realpath'),
    makeDirsOp: unused('makeDirs'),
    symlinkOp: unused('symlink'),
    removeOp: unused('remove'),
    setstatOp: unused('setstat'),
    transferFilesOp: (_direction, files) => {
      moved.push(...files);
      return done(files.reduce((n, f) => n + f.size, 0));
    },
  };
}

describe('a recursive get walks the remote tree a level at a time', () => {
  let local: string;
  beforeEach(() => {
    local = fs.mkdtempSync(join(tmpdir(), 'pts-sftp-tree-'));
  });
  afterEach(() => fs.rmSync(local, { recursive: true, force: true }));

  it('lists each level of directories in one batch and hands every file over once', () => {
    const listed: string[][] = [];
    const moved: Array<{ remote: string; local: string; size: number }> = [];
    const bytes = runSync(getTree(fakeHost(listed, moved), '/r', join(local, 'copy'), null, {}));
    expect(listed).toEqual([['/r'], ['/r/a', '/r/b'], ['/r/a/deep', '/r/b/empty']]);
    const files = ['/r/top.txt', '/r/a/deep/x.bin', '/r/b/y.bin', '/r/b/z.bin'];
    expect(moved.map((f) => f.remote).sort()).toEqual([...files].sort());
    expect(moved.find((f) => f.remote === '/r/a/deep/x.bin')!.local).toBe(join(local, 'copy', 'a', 'deep', 'x.bin'));
    expect(bytes).toBe(files.reduce((n, f) => n + f.length, 0));
    for (const d of ['copy', 'copy/a', 'copy/a/deep', 'copy/b', 'copy/b/empty']) expect(fs.statSync(join(local, d)).isDirectory()).toBe(true);
  });
});

describe('the slots of a batch of whole files', () => {
  it('keeps to half the handles a server announces, and weighs files by size', () => {
    expect(batchSlots(32, 0)).toBe(32);
    expect(batchSlots(32, 1024)).toBe(32);
    expect(batchSlots(32, 20)).toBe(10);
    expect(batchSlots(32, 1)).toBe(1);
    expect([0, 1, 256 * 1024, 256 * 1024 + 1, 3 << 20, 4 << 20].map((n) => batchWeight(n, 32))).toEqual([1, 1, 1, 2, 12, 32]);
    expect(batchWeight(3 << 20, 8)).toBe(8);
  });
});
