import type { AlgorithmPreferences } from '../transport/algorithms';
import { supported } from '../transport/algorithms';

/**
 * Paramiko's SecurityOptions: the algorithm lists of a transport, in preference order.
 * Assignable only before the transport starts; unknown names raise ValueError-like TypeErrors.
 */
export class SecurityOptions {
  constructor(
    private prefs: AlgorithmPreferences,
    private readonly started: () => boolean,
  ) {}

  /** Kinds the user assigned (kept when a server start swaps in the server's defaults). */
  private readonly touched = new Set<keyof AlgorithmPreferences>();

  /** Replaces the lists the user did not assign (a server's defaults differ from a client's). */
  useDefaults(defaults: AlgorithmPreferences): void {
    const next = { ...defaults };
    for (const k of this.touched) next[k] = this.prefs[k];
    this.prefs = next;
  }

  private set(kind: keyof AlgorithmPreferences, value: readonly string[]): void {
    if (this.started()) throw new TypeError('security options cannot change after the transport started');
    if (!Array.isArray(value)) throw new TypeError(`${kind} must be an array of algorithm names`);
    const known = supported(kind);
    const bad = value.filter((v) => !known.includes(v));
    if (bad.length) throw new RangeError(`unknown ${kind}: ${bad.join(', ')}`);
    if (!value.length) throw new RangeError(`at least one ${kind} algorithm is needed`);
    this.prefs = { ...this.prefs, [kind]: [...value] };
    this.touched.add(kind);
  }

  get ciphers(): readonly string[] {
    return this.prefs.ciphers;
  }
  set ciphers(v: readonly string[]) {
    this.set('ciphers', v);
  }
  get digests(): readonly string[] {
    return this.prefs.macs;
  }
  set digests(v: readonly string[]) {
    this.set('macs', v);
  }
  get keyTypes(): readonly string[] {
    return this.prefs.hostKeys;
  }
  set keyTypes(v: readonly string[]) {
    this.set('hostKeys', v);
  }
  get kex(): readonly string[] {
    return this.prefs.kex;
  }
  set kex(v: readonly string[]) {
    this.set('kex', v);
  }
  get compression(): readonly string[] {
    return this.prefs.compression;
  }
  set compression(v: readonly string[]) {
    this.set('compression', v);
  }

  /** Used by Transport.useCompression. */
  setCompression(on: boolean): void {
    this.prefs = { ...this.prefs, compression: on ? ['zlib@openssh.com', 'zlib', 'none'] : ['none'] };
  }

  preferences(): AlgorithmPreferences {
    return { ...this.prefs };
  }
}
