import type { AlgorithmPreferences, DisabledAlgorithms } from '../transport/algorithms';
import { applyDisabled, supported } from '../transport/algorithms';

/**
 * Paramiko's SecurityOptions: the algorithm lists of a transport, in preference order.
 * Assignable only before the transport starts; unknown names raise ValueError-like TypeErrors.
 * As Paramiko's, the lists read back leave out the transport's `disabledAlgorithms`.
 */
export class SecurityOptions {
  constructor(
    private prefs: AlgorithmPreferences,
    private readonly started: () => boolean,
    private readonly disabled: DisabledAlgorithms = {},
  ) {}

  /** One list as the transport will offer it: preferences less the disabled algorithms. */
  private offered(kind: keyof AlgorithmPreferences): readonly string[] {
    return applyDisabled(this.prefs, this.disabled)[kind];
  }

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
    return this.offered('ciphers');
  }
  set ciphers(v: readonly string[]) {
    this.set('ciphers', v);
  }
  get digests(): readonly string[] {
    return this.offered('macs');
  }
  set digests(v: readonly string[]) {
    this.set('macs', v);
  }
  get keyTypes(): readonly string[] {
    return this.offered('hostKeys');
  }
  set keyTypes(v: readonly string[]) {
    this.set('hostKeys', v);
  }
  get kex(): readonly string[] {
    return this.offered('kex');
  }
  set kex(v: readonly string[]) {
    this.set('kex', v);
  }
  get compression(): readonly string[] {
    return this.offered('compression');
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
