/**
 * How OpenSSH cuts an ssh_config line into words (readconf.c and misc.c, 9.x):
 *
 * - the keyword ends at whitespace or at one `=`; `key=value`, `key = value` and `key value`
 *   are the same line, and only one `=` is skipped (`key==v` has the argument `=v`);
 * - arguments are split with `argv_split` rules: blanks separate words, `"..."` and `'...'`
 *   quote parts of a word, `\"`, `\'`, `\\` and (outside quotes) `\ ` escape one character,
 *   and a `#` at the start of a word ends the line;
 * - commands (ProxyCommand, LocalCommand...) take the rest of the line verbatim instead;
 * - `Match` lines are read word by word with `strdelim`, whose quoting is simpler (a `"`
 *   starts a quoted run that ends the word at the next `"`) and which also splits on `=`.
 */

/** OpenSSH's WHITESPACE set. */
const WHITESPACE = ' \t\r\n';

/** Characters stripped from the end of a line: whitespace and form feed. */
const TRAILING = /[ \t\r\n\f]+$/;

export class LexError extends Error {}

function skipWhitespace(s: string, from: number): number {
  let i = from;
  while (i < s.length && WHITESPACE.includes(s[i])) i++;
  return i;
}

/**
 * One word of `s` by OpenSSH's `strdelim` rules, and what follows it (with the separating
 * blanks and at most one `=` skipped). `rest` is null when the word ran to the end of the
 * string. Throws LexError for a `"` without its closing quote.
 */
export function strdelim(s: string): { word: string; rest: string | null } {
  let cut = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === '=' || WHITESPACE.includes(c)) {
      cut = i;
      break;
    }
  }
  if (cut < 0) return { word: s, rest: null };
  if (s[cut] === '"') {
    const close = s.indexOf('"', cut + 1);
    if (close < 0) throw new LexError('no matching quote');
    return { word: s.slice(0, cut) + s.slice(cut + 1, close), rest: s.slice(skipWhitespace(s, close + 1)) };
  }
  const sawEquals = s[cut] === '=';
  let next = skipWhitespace(s, cut + 1);
  if (!sawEquals && s[next] === '=') next = skipWhitespace(s, next + 1);
  return { word: s.slice(0, cut), rest: s.slice(next) };
}

/** A config line cut into its lowercased keyword and the unparsed text after it. */
export interface KeywordLine {
  keyword: string;
  /** Text after the keyword and its separator; '' when there is none. */
  rest: string;
}

/**
 * The keyword of a line and the text after it, or null for a blank or comment line.
 * Trailing whitespace is removed first, as OpenSSH does, so the rest never ends in a blank.
 */
export function splitKeyword(line: string): KeywordLine | null {
  const text = line.replace(TRAILING, '').slice(skipWhitespace(line, 0));
  if (text === '') return null;
  const { word, rest } = strdelim(text);
  if (word === '' || word.startsWith('#')) return null;
  return { keyword: asciiLower(word), rest: rest === null ? '' : rest.slice(skipWhitespace(rest, 0)) };
}

/**
 * Split arguments by OpenSSH's `argv_split(s, ..., terminate_on_comment=1)` rules.
 * Throws LexError for an unterminated quote.
 */
export function argvSplit(s: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === ' ' || s[i] === '\t') {
      i++;
      continue;
    }
    if (s[i] === '#') break;
    let word = '';
    let quote = '';
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '\\') {
        const next = s[i + 1];
        if (next === "'" || next === '"' || next === '\\' || (quote === '' && next === ' ')) {
          word += next;
          i++;
        } else {
          word += c; // an unrecognised escape stays as written
        }
      } else if (quote === '' && (c === ' ' || c === '\t')) {
        break;
      } else if (quote === '' && (c === '"' || c === "'")) {
        quote = c;
      } else if (quote !== '' && c === quote) {
        quote = '';
      } else {
        word += c;
      }
    }
    if (quote !== '') throw new LexError('invalid quotes');
    words.push(word);
  }
  return words;
}

/**
 * The argument of a command keyword (ProxyCommand, LocalCommand, RemoteCommand,
 * KnownHostsCommand): the rest of the line verbatim, quotes and trailing comments included,
 * after any further blanks and `=` signs, exactly as OpenSSH keeps it for the shell.
 */
export function commandArgument(rest: string): string {
  return rest.replace(/^[ \t\r\n=]+/, '');
}

/** Lowercase ASCII letters only, as C's tolower() in the C locale. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
