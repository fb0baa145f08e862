/**
 * What `HostKeys.lookup(hostname)` returns: the host's keys by key type (Paramiko's `SubDict`,
 * a `{keytype: PKey}` dict). It reads like a `ReadonlyMap<string, PKey>`; `set` and `delete`
 * also write through to the `HostKeys` it came from, as Paramiko's sub-dict does.
 */
import type { PKey } from '../keys';

/** The two edits a `HostKeyMap` forwards to its `HostKeys`. */
export interface HostKeyMapOwner {
  add(hostname: string, keytype: string, key: PKey): void;
  /** Removes the host's `keytype` key from the lines that name the host; true if any was. */
  removeHostKeyType(hostname: string, keytype: string): boolean;
}

export class HostKeyMap implements Iterable<[string, PKey]> {
  readonly hostname: string;
  private readonly byType: Map<string, PKey>;
  private readonly owner: HostKeyMapOwner;

  /** @internal Built by `HostKeys.lookup`. */
  constructor(owner: HostKeyMapOwner, hostname: string, byType: Map<string, PKey>) {
    this.owner = owner;
    this.hostname = hostname;
    this.byType = byType;
  }

  get size(): number {
    return this.byType.size;
  }

  get(keytype: string): PKey | undefined {
    return this.byType.get(keytype);
  }

  has(keytype: string): boolean {
    return this.byType.has(keytype);
  }

  /** Key types, in file order (the first line of each type). */
  keys(): string[] {
    return [...this.byType.keys()];
  }

  values(): PKey[] {
    return [...this.byType.values()];
  }

  entries(): Array<[string, PKey]> {
    return [...this.byType.entries()];
  }

  [Symbol.iterator](): Iterator<[string, PKey]> {
    return this.byType.entries();
  }

  /** `hostKeys.add(hostname, keytype, key)`, and this map shows it. */
  set(keytype: string, key: PKey): this {
    this.owner.add(this.hostname, keytype, key);
    this.byType.set(keytype, key);
    return this;
  }

  /**
   * Removes the host's key of this type from the `HostKeys` (from the lines that name this host
   * or its hash; a wildcard line is left alone, so a later lookup can still find a key there).
   */
  delete(keytype: string): boolean {
    const removed = this.owner.removeHostKeyType(this.hostname, keytype);
    return this.byType.delete(keytype) || removed;
  }
}
