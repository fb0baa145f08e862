import { randomInt } from 'node:crypto';
import { SSHException } from '../../errors';

/** One safe-prime group of an OpenSSH moduli file. */
export interface ModuliGroup {
  /** Size in bits (the file's field is one less: the bit index of the top bit). */
  bits: number;
  g: bigint;
  p: bigint;
}

/**
 * Parses OpenSSH's moduli(5) format: `time type tests tries size generator modulus`, one group
 * per line, `#` comments. Only safe primes (type 2) that passed tests are kept, as sshd does.
 */
export function parseModuli(text: string): ModuliGroup[] {
  const groups: ModuliGroup[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f.length < 7) continue;
    const [, type, tests, , size, gen, modulus] = f;
    // Type 2: safe prime; tests must include more than the sieve (bit 0x01).
    if (type !== '2' || (Number(tests) & ~1) === 0 || !/^[0-9a-fA-F]+$/.test(modulus) || !/^\d+$/.test(gen)) continue;
    groups.push({ bits: Number(size) + 1, g: BigInt(gen), p: BigInt('0x' + modulus) });
  }
  return groups;
}

/**
 * sshd's choice for a group-exchange request: among the groups within [min, max], those of the
 * smallest size at least `preferred` (else the largest below it), one of them at random.
 */
export function chooseModuliGroup(groups: ModuliGroup[], min: number, preferred: number, max: number): { p: bigint; g: bigint } {
  const fits = groups.filter((x) => x.bits >= min && x.bits <= max);
  if (!fits.length) throw new SSHException(`no Diffie-Hellman group between ${min} and ${max} bits in the moduli`);
  const above = fits.filter((x) => x.bits >= preferred);
  const size = above.length ? Math.min(...above.map((x) => x.bits)) : Math.max(...fits.map((x) => x.bits));
  const best = fits.filter((x) => x.bits === size);
  const pick = best[randomInt(best.length)];
  return { p: pick.p, g: pick.g };
}

/** A server's group chooser from a moduli file's text; undefined (the built-in groups) when it has none. */
export function moduliChooser(text: string | null | undefined): ((min: number, n: number, max: number) => { p: bigint; g: bigint }) | undefined {
  const groups = text ? parseModuli(text) : [];
  return groups.length ? (min, n, max) => chooseModuliGroup(groups, min, n, max) : undefined;
}
