import { readLocalFile } from '../files';
import { SSHException } from '../errors';
import { PKey, splitPublicKeyLine } from './pkey';

/**
 * One line of an `authorized_keys` file (sshd(8), AUTHORIZED_KEYS FILE FORMAT):
 * `[options] keytype base64 [comment]`, where options are comma-separated `name` or
 * `name="value"` items (a value may hold commas, spaces and `\"`).
 */
export interface AuthorizedKey {
  /** Option name (lowercase) -> value, or true for a flag. Repeated options (`permitopen`) keep the last; `all` has every value. */
  options: Map<string, string | true>;
  /** Every option in file order, repeated ones included. */
  allOptions: Array<[string, string | true]>;
  key: PKey;
  comment: string;
  lineNumber?: number;
}

/** Reads the options prefix; returns it and the rest of the line. */
function splitOptions(line: string): { options: Array<[string, string | true]>; rest: string } {
  const options: Array<[string, string | true]> = [];
  let i = 0;
  for (;;) {
    const name = /^[A-Za-z0-9-]+/.exec(line.slice(i));
    if (!name) throw new SSHException(`bad option at column ${i + 1}`);
    i += name[0].length;
    let value: string | true = true;
    if (line[i] === '=') {
      if (line[i + 1] !== '"') throw new SSHException(`option ${name[0]} needs a quoted value`);
      i += 2;
      let v = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && line[i + 1] === '"') i++;
        v += line[i++];
      }
      if (i >= line.length) throw new SSHException(`option ${name[0]}: missing closing quote`);
      i++;
      value = v;
    }
    options.push([name[0].toLowerCase(), value]);
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] === ' ' || line[i] === '\t') return { options, rest: line.slice(i).trim() };
    throw new SSHException(`bad option list at column ${i + 1}`);
  }
}

const KEY_TYPE = /^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$/;

/**
 * Parses one `authorized_keys` line. Returns null for blank and comment lines; throws
 * SSHException naming the problem for a line it cannot read.
 */
export function parseAuthorizedKeysLine(line: string, lineNumber?: number): AuthorizedKey | null {
  const text = line.trim();
  if (!text || text.startsWith('#')) return null;
  try {
    const first = text.split(/\s+/, 1)[0];
    let allOptions: Array<[string, string | true]> = [];
    let rest = text;
    if (!KEY_TYPE.test(first)) ({ options: allOptions, rest } = splitOptions(text));
    const { keyType, blob, comment } = splitPublicKeyLine(rest);
    const key = PKey.fromTypeString(keyType, blob);
    key.comment = comment;
    return { options: new Map(allOptions), allOptions, key, comment, lineNumber };
  } catch (e) {
    const where = lineNumber === undefined ? '' : `line ${lineNumber}: `;
    throw new SSHException(`authorized_keys ${where}${(e as Error).message}`, { cause: e });
  }
}

/**
 * Parses a whole `authorized_keys` text. Lines it cannot read are reported in `errors` and
 * skipped, as sshd skips them, so one bad line does not lock everyone out.
 */
export function parseAuthorizedKeys(text: string): { keys: AuthorizedKey[]; errors: SSHException[] } {
  const keys: AuthorizedKey[] = [];
  const errors: SSHException[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    try {
      const entry = parseAuthorizedKeysLine(line, i + 1);
      if (entry) keys.push(entry);
    } catch (e) {
      errors.push(e as SSHException);
    }
  });
  return { keys, errors };
}

export function loadAuthorizedKeysFile(path: string): { keys: AuthorizedKey[]; errors: SSHException[] } {
  return parseAuthorizedKeys(readLocalFile(path, 'utf8'));
}
