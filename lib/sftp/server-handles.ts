/**
 * The server's open handles: a bounded table of files and directories, each with a queue
 * that keeps its requests in order. READs of one handle run concurrently (positional I/O
 * makes them independent); every other request on the handle (WRITE, CLOSE, FSTAT...) waits
 * for those before it and holds back those after it, so a pipelined WRITE, WRITE, READ,
 * CLOSE behaves as if run one by one. Different handles do not wait for each other.
 */
import type { Dir } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { FileWriter } from '../files';

const noop = (): void => undefined;

export class OrderedQueue {
  private lastExclusive: Promise<unknown> = Promise.resolve();
  private readonly shared = new Set<Promise<unknown>>();
  /** Requests queued so far: unchanged since a request was queued means it is still the last. */
  queued = 0;

  /** Runs `fn` after the requests before it that it must follow; `shared` ones overlap each other. */
  run<T>(shared: boolean, fn: () => Promise<T>): Promise<T> {
    this.queued++;
    if (shared) {
      const p = this.lastExclusive.then(fn);
      const settled = p.then(noop, noop);
      this.shared.add(settled);
      void settled.then(() => this.shared.delete(settled));
      return p;
    }
    const before = this.shared.size ? Promise.all([this.lastExclusive, ...this.shared]) : this.lastExclusive;
    this.shared.clear();
    const p = before.then(fn);
    this.lastExclusive = p.then(noop, noop);
    return p;
  }
}

export interface FileEntry {
  kind: 'file';
  fh: FileHandle;
  /** Real path at open time (for fstatvfs). */
  realPath: string;
  readable: boolean;
  writable: boolean;
  queue: OrderedQueue;
  /** WRITEs gathered to go in one system call, while later ones may still join (server-core). */
  gathering?: WriteRun;
  /** How the WRITEs are written, made at the first (a regular file's on the worker's thread). */
  writer?: FileWriter;
}

/** Consecutive WRITEs of one handle, written together. */
export interface WriteRun {
  /** File offset of the first byte. */
  offset: number;
  bytes: number;
  parts: Buffer[];
  /** `OrderedQueue.queued` just after the run was queued: others may join while it is unchanged. */
  queuedAt: number;
  /** Settles when the run is written. */
  written: Promise<void>;
}

export interface DirEntry {
  kind: 'dir';
  dir: Dir;
  realPath: string;
  /** Whether `.` and `..` went out with the first batch. */
  dotsSent: boolean;
  queue: OrderedQueue;
}

export type HandleEntry = FileEntry | DirEntry;

/** Handles are 4-byte counters; one is never reused within a session (2^32 opens). */
export class HandleTable {
  private readonly entries = new Map<number, HandleEntry>();
  private counter = 0;
  /** Set by drain: the session ended, and an open still in progress must not add its handle. */
  private drained = false;

  constructor(readonly maxHandles: number) {}

  get size(): number {
    return this.entries.size;
  }

  get full(): boolean {
    return this.entries.size >= this.maxHandles;
  }

  /**
   * Records an open file or directory and returns its handle; null when the table is full or
   * the session has ended meanwhile (the open ran while others filled it, or ran past the end),
   * in which case the entry is released here, so no descriptor is left open.
   */
  add(entry: HandleEntry): Buffer | null {
    if (this.drained || this.full) {
      void releaseEntry(entry);
      return null;
    }
    this.counter = (this.counter + 1) >>> 0;
    const h = Buffer.allocUnsafe(4);
    h.writeUInt32BE(this.counter, 0);
    this.entries.set(this.counter, entry);
    return h;
  }

  get(handle: Buffer): HandleEntry | undefined {
    return handle.length === 4 ? this.entries.get(handle.readUInt32BE(0)) : undefined;
  }

  /** Removes a handle from the table (later requests on it fail) and returns its entry. */
  take(handle: Buffer): HandleEntry | undefined {
    const e = this.get(handle);
    if (e) this.entries.delete(handle.readUInt32BE(0));
    return e;
  }

  /** Empties the table, returning what was open (to close at session end). */
  drain(): HandleEntry[] {
    this.drained = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}

/** Releases an entry's OS resource, ignoring errors (session teardown). */
export async function releaseEntry(e: HandleEntry): Promise<void> {
  try {
    if (e.kind === 'file') await e.fh.close();
    else await e.dir.close();
  } catch {
    // already closed or failing: nothing left to release
  }
}
