/**
 * ssh_config TOKENS (`%h`, `%C`...), `~` and `${VAR}` expansion, per keyword as ssh_config(5)
 * lists them for OpenSSH 9.2.
 *
 * Keywords that OpenSSH expands only when it uses them, with run-time tokens we cannot know
 * here (LocalCommand: %T; KnownHostsCommand: %f %H %I %K %t), are left verbatim, as `ssh -G`
 * prints them. An unknown token is left as written (Paramiko's leniency; OpenSSH would stop).
 */

import { createHash } from 'node:crypto';
import { ConfigParseError } from '../errors';
import { homeOf } from './local';

/** Everything a token can stand for. */
export interface TokenContext {
  /** %h: the remote host name (after HostName and canonicalisation). */
  host: string;
  /** %n: the host name as given by the caller. */
  originalHost: string;
  /** %p */
  port: string;
  /** %r */
  remoteUser: string;
  /** %u */
  localUser: string;
  /** %d and `~` */
  homeDir: string;
  /** %i */
  uid: string;
  /** %l: gethostname(); %L is its part before the first dot. */
  localHostname: string;
  /** %k: HostKeyAlias if set, else the original host name. */
  keyAlias: string;
}

/** How one keyword is expanded. */
interface ExpansionRule {
  /** Token letters accepted (`%` is always accepted). */
  tokens: string;
  /** Expand a leading `~` or `~user`. */
  tilde?: boolean;
  /** Expand `${VAR}` from the environment. */
  env?: boolean;
  /** Each whitespace-separated word is a separate value (UserKnownHostsFile). */
  perWord?: boolean;
  /** Only words that are Unix-socket paths (contain `/`) are expanded (forwardings). */
  socketPathsOnly?: boolean;
}

/** ssh_config(5) TOKENS: "CertificateFile, ControlPath, IdentityAgent, IdentityFile, ..." */
const DEFAULT_TOKENS = 'CdhikLlnpru';

/** "ProxyCommand and ProxyJump accept the tokens %%, %h, %n, %p, and %r." */
const PROXY_TOKENS = 'hnpr';

const RULES: Readonly<Record<string, ExpansionRule>> = {
  certificatefile: { tokens: DEFAULT_TOKENS, tilde: true, env: true },
  controlpath: { tokens: DEFAULT_TOKENS, tilde: true, env: true },
  identityagent: { tokens: DEFAULT_TOKENS, tilde: true, env: true },
  identityfile: { tokens: DEFAULT_TOKENS, tilde: true, env: true },
  userknownhostsfile: { tokens: DEFAULT_TOKENS, tilde: true, env: true, perWord: true },
  remotecommand: { tokens: DEFAULT_TOKENS },
  localforward: { tokens: DEFAULT_TOKENS, env: true, socketPathsOnly: true },
  remoteforward: { tokens: DEFAULT_TOKENS, env: true, socketPathsOnly: true },
  proxycommand: { tokens: PROXY_TOKENS },
  proxyjump: { tokens: PROXY_TOKENS },
  // HostName (%h and %% only) is expanded by the lookup itself right after the first pass,
  // because Match and canonicalisation need the result.
};

/** Tokens of `Match exec` (the same set as the path keywords). */
export const MATCH_EXEC_TOKENS = DEFAULT_TOKENS;

/** Keys that `expandKeyword` changes. */
export const EXPANDED_KEYS: ReadonlySet<string> = new Set(Object.keys(RULES));

/** %C: SHA-1 of %l%h%p%r in hex, OpenSSH's ssh_connection_hash. */
export function connectionHash(ctx: TokenContext): string {
  return createHash('sha1').update(ctx.localHostname + ctx.host + ctx.port + ctx.remoteUser).digest('hex');
}

function tokenValue(letter: string, ctx: TokenContext): string {
  switch (letter) {
    case 'C': return connectionHash(ctx);
    case 'd': return ctx.homeDir;
    case 'h': return ctx.host;
    case 'i': return ctx.uid;
    case 'k': return ctx.keyAlias;
    case 'L': return ctx.localHostname.split('.')[0];
    case 'l': return ctx.localHostname;
    case 'n': return ctx.originalHost;
    case 'p': return ctx.port;
    case 'r': return ctx.remoteUser;
    case 'u': return ctx.localUser;
    default: throw new Error(`no such token %${letter}`);
  }
}

/**
 * Expand `%x` tokens (those in `letters`, plus `%%`) and, with `env`, `${VAR}`, in one scan
 * as OpenSSH's percent_dollar_expand does, so text produced by one is never re-read.
 */
export function expandTokens(text: string, letters: string, ctx: TokenContext, env = false): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (env && c === '$' && text[i + 1] === '{') {
      const end = text.indexOf('}', i + 2);
      if (end < 0) throw new ConfigParseError(`environment variable expansion not terminated in "${text}"`);
      const name = text.slice(i + 2, end);
      const value = process.env[name];
      if (value === undefined) throw new ConfigParseError(`env var \${${name}} has no value (in "${text}")`);
      out += value;
      i = end;
    } else if (c === '%' && i + 1 < text.length) {
      const letter = text[i + 1];
      if (letter === '%') out += '%';
      else if (letters.includes(letter)) out += tokenValue(letter, ctx);
      else out += c + letter;
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

/** HostName's expansion: %h (the host name as given) and %% only. */
export function expandHostname(value: string, hostArg: string): string {
  return value.replace(/%([%h])/g, (_, letter: string) => (letter === '%' ? '%' : hostArg));
}

/** `~/x` and `~` to the home directory, `~user/x` to that user's (OpenSSH's tilde_expand_filename). */
export function expandTilde(path: string, ctx: Pick<TokenContext, 'homeDir' | 'localUser'>): string {
  if (!path.startsWith('~')) return path;
  const slash = path.indexOf('/');
  const name = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const tail = slash < 0 ? '' : path.slice(slash + 1);
  let home: string | null;
  if (name === '' || name === ctx.localUser) home = ctx.homeDir;
  else home = homeOf(name);
  if (home === null) throw new ConfigParseError(`tilde expansion: no such user "${name}" (in "${path}")`);
  // As OpenSSH, a bare `~` becomes the home directory with a trailing slash.
  return `${home.replace(/\/+$/, '')}/${tail}`;
}

function expandWord(word: string, rule: ExpansionRule, ctx: TokenContext): string {
  if (rule.socketPathsOnly && !word.includes('/')) return word;
  const tilded = rule.tilde ? expandTilde(word, ctx) : word;
  return expandTokens(tilded, rule.tokens, ctx, rule.env === true);
}

/**
 * Expand one value of `key` (for multi-word values, the words as parsed). Keys without a
 * rule come back joined and unchanged.
 */
export function expandKeyword(key: string, words: readonly string[], ctx: TokenContext): string {
  const rule = RULES[key];
  if (rule === undefined) return words.join(' ');
  if (rule.perWord || rule.socketPathsOnly) return words.map((w) => expandWord(w, rule, ctx)).join(' ');
  return expandWord(words.join(' '), rule, ctx);
}
