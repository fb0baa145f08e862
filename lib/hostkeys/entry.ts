/**
 * One line of a known_hosts file (Paramiko's `HostKeyEntry`), with OpenSSH's optional marker
 * and trailing comment:
 *
 *     [@cert-authority|@revoked] hostnames keytype base64-key [comment]
 */
import { debug } from '../debug';
import { InvalidHostKey, SSHException, UnknownKeyType } from '../errors';
import { PKey } from '../keys';
import { namesMatchHost } from './patterns';


/** The markers sshd(8) defines; any other `@word` makes the line one OpenSSH skips. */
export type HostKeyMarker = '@cert-authority' | '@revoked';
const MARKERS: readonly string[] = ['@cert-authority', '@revoked'];

// Fields are separated by spaces or tabs; the comment runs to the end of the line.
const LINE_RE = /^(?:(@\S*)[ \t]+)?(\S+)[ \t]+(\S+)[ \t]+(\S+)(?:[ \t]+(.*?))?[ \t]*$/;

export interface HostKeyEntryOptions {
  marker?: HostKeyMarker | null;
  comment?: string;
}

export class HostKeyEntry {
  /** Host names and patterns of the line, as written (hashed names stay hashed). */
  hostnames: string[];
  key: PKey | null;
  /** `@cert-authority` (a CA key for the hosts) or `@revoked` (never accept the key); null for a plain host key. */
  marker: HostKeyMarker | null;
  /** The optional text after the key; '' when there is none. */
  comment: string;
  /** The line number it was read from (1-based), when it came from `fromLine` with one. */
  lineno: number | null = null;
  /**
   * The text it was read from and the state it then had: while the entry is unchanged, `toLine`
   * gives back that text exactly (spacing, and a certificate that `key` alone would not carry).
   */
  private source: { text: string; state: string } | null = null;

  constructor(hostnames: string[] | null = null, key: PKey | null = null, options: HostKeyEntryOptions = {}) {
    this.hostnames = hostnames ?? [];
    this.key = key;
    this.marker = options.marker ?? null;
    this.comment = options.comment ?? '';
  }

  /** Paramiko's `valid`: it has host names and a key, so `toLine` can write it. */
  get valid(): boolean {
    return this.hostnames.length > 0 && this.key !== null;
  }

  /**
   * Parses one known_hosts line (surrounding whitespace and a line ending are ignored).
   * Returns null when it is not a host key line: blank, a comment, fewer than three fields, an
   * unknown `@marker`, or a key type the keys layer does not know (the caller keeps such lines
   * as text). Throws `InvalidHostKey` when the key type is known but the base64 or the key blob
   * is corrupt.
   */
  static fromLine(line: string, lineno: number | null = null): HostKeyEntry | null {
    const text = line.replace(/\r?\n$/, '');
    const trimmed = text.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return null;
    const m = LINE_RE.exec(trimmed);
    if (!m) {
      debug('known_hosts line %s: not enough fields', lineno ?? '?');
      return null;
    }
    const [, markerField, names, keyType, b64, comment] = m;
    // A first field starting with '@' is always a marker for OpenSSH, never a host name.
    if ((markerField === undefined && trimmed.startsWith('@')) || (markerField !== undefined && !MARKERS.includes(markerField))) {
      debug('known_hosts line %s: unknown marker %s', lineno ?? '?', markerField);
      return null;
    }
    const key = parseKey(text, keyType, b64, lineno);
    if (key === null) return null;
    const entry = new HostKeyEntry(names.split(','), key, {
      marker: (markerField as HostKeyMarker | undefined) ?? null,
      comment: comment ?? '',
    });
    entry.lineno = lineno;
    entry.source = { text: trimmed, state: entry.state() };
    return entry;
  }

  /**
   * The line to write, ending in '\n'; null when the entry is not valid (Paramiko's
   * `to_line`). An entry read by `fromLine` and not changed since gives back its text.
   */
  toLine(): string | null {
    if (!this.valid) return null;
    if (this.source && this.source.state === this.state()) return this.source.text + '\n';
    const key = this.key as PKey;
    const parts = [this.hostnames.join(','), key.getName(), key.getBase64()];
    if (this.marker) parts.unshift(this.marker);
    if (this.comment) parts.push(this.comment);
    return parts.join(' ') + '\n';
  }

  /**
   * Whether the line's host list selects `hostname`, by OpenSSH's rules: a positive pattern
   * (with '*' and '?') or hashed name matches, no '!pattern' does, case-insensitively.
   * The marker is not considered here.
   */
  matches(hostname: string): boolean {
    return namesMatchHost(this.hostnames, hostname);
  }

  /**
   * A string equal for two entries with the same marker, names, public key and comment (what
   * `HostKeys.load` compares to skip a line it already has).
   */
  identity(): string {
    return this.state();
  }

  private state(): string {
    return JSON.stringify([this.marker, this.hostnames, this.key ? this.key.getBase64() : null, this.comment]);
  }
}

/** The key of a line; null for an unknown key type; InvalidHostKey for a corrupt one. */
function parseKey(line: string, keyType: string, b64: string, lineno: number | null): PKey | null {
  const strict = /^[A-Za-z0-9+/]*={0,2}$/.test(b64) && b64.length % 4 === 0;
  // Decoded even when malformed so that the keys layer says first whether it knows the type:
  // garbage with an unknown type is "not a host key line", not a corrupt key.
  const blob = Buffer.from(b64, 'base64');
  let key: PKey;
  try {
    key = PKey.fromTypeString(keyType, blob);
  } catch (e) {
    if (e instanceof UnknownKeyType) {
      debug('known_hosts line %s: unable to handle key of type %s', lineno ?? '?', keyType);
      return null;
    }
    throw new InvalidHostKey(line, e instanceof Error ? e : new SSHException(String(e)));
  }
  if (!strict) throw new InvalidHostKey(line, new SSHException(`invalid base64 in the ${keyType} key`));
  return key;
}
