/**
 * One lookup, in the steps of OpenSSH's ssh.c and readconf.c (9.2):
 *
 * 1. first pass over the files: Host lines match the name as given, Match lines see what has
 *    been obtained so far; the caller's user and port (ssh's -l and -p) come first and so win;
 * 2. HostName gets its %h expanded and becomes the target; it is lowercased unless it is an
 *    address; numeric addresses are normalised (`127.1` -> `127.0.0.1`), and CanonicalizeHostname
 *    may replace it with a fully qualified name;
 * 3. if a `Match final` line was seen or canonicalisation is on, a second (final) pass runs
 *    over the same files with Host lines matching the new target; values from the first pass
 *    still win, list keys keep adding;
 * 4. tokens, `~` and `${VAR}` are expanded in the keys that take them.
 */

import { spawnSync } from 'node:child_process';
import { ConfigParseError, CouldNotCanonicalize } from '../errors';
import { addressFamilyOf, canonicalAddress, cnameRules, followCname, HostResolver, looksLikeAddress, resolveWithDomains } from './canonicalize';
import { ConfigValue, setConfigValue, SSHConfigDict } from './config-dict';
import { LIST_KEYS } from './keywords';
import { asciiLower } from './lexer';
import { LocalIdentity } from './local';
import { evaluateMatch, requestsFinalPass } from './match';
import { OptionState } from './options';
import { ConfigFile, SourceRef } from './parser';
import { hostLineMatches } from './patterns';
import { expandHostname, expandKeyword, expandTokens, MATCH_EXEC_TOKENS, TokenContext } from './tokens';

/** What the caller knows about the connection (OpenSSH's command line). */
export interface LookupOptions {
  /** Remote user, as `ssh -l`: wins over User in the config. */
  user?: string;
  /** Remote port, as `ssh -p`: wins over Port in the config. */
  port?: number | string;
  /** Local user name for %u and `Match localuser` (default: the running user). */
  localUser?: string;
  /** Home directory for %d and `~` (default: the local user's, from the password database). */
  homeDir?: string;
}

export interface LookupEnvironment {
  files: readonly ConfigFile[];
  local: LocalIdentity;
  resolveHost: HostResolver;
}

/** %p when no Port is set: the IANA ssh port, OpenSSH's default. */
const DEFAULT_PORT = '22';

interface Pass {
  /** What Host lines match: the name as given in the first pass, the target in the final one. */
  hostForHostLines: string;
  originalHost: string;
  finalPass: boolean;
  /** Set when a `Match final` line is met. */
  wantFinal: boolean;
  /** The Match target host in the current state. */
  matchHost(): string;
}

export function lookup(env: LookupEnvironment, hostname: string, options: LookupOptions): SSHConfigDict {
  const state = new OptionState();
  if (options.user !== undefined) state.apply('user', [options.user]);
  if (options.port !== undefined) state.apply('port', [String(options.port)]);

  const first: Pass = {
    hostForHostLines: hostname,
    originalHost: hostname,
    finalPass: false,
    wantFinal: false,
    matchHost: () => {
      const configured = state.value('hostname');
      return configured === undefined ? hostname : expandHostname(configured, hostname);
    },
  };
  runPass(env, state, first);

  let host = hostname;
  const configured = state.value('hostname');
  if (configured !== undefined) {
    host = expandHostname(configured, hostname);
    state.replace('hostname', [host]);
  }
  const isAddress = looksLikeAddress(host) || canonicalAddress(host) !== null;
  if (!isAddress) host = asciiLower(host);
  const mode = canonicalizeMode(state.value('canonicalizehostname'));
  host = canonicalizeTarget(env, state, host, mode);

  if (first.wantFinal || mode !== 'no') {
    state.replace('hostname', [host]);
    runPass(env, state, {
      hostForHostLines: host,
      originalHost: hostname,
      finalPass: true,
      wantFinal: false,
      matchHost: () => state.value('hostname') ?? host,
    });
  }
  return buildDict(env, state, hostname, host);
}

function canonicalizeMode(value: string | undefined): 'no' | 'yes' | 'always' {
  const v = value?.toLowerCase();
  if (v === 'yes' || v === 'true') return 'yes';
  if (v === 'always') return 'always';
  return 'no';
}

function isUnsetOrNone(value: string | undefined): boolean {
  return value === undefined || value.toLowerCase() === 'none';
}

/**
 * OpenSSH's resolve_canonicalize, then its CNAME step: with CanonicalizePermittedCNAMEs rules, a
 * name canonicalisation left as it was is resolved itself (an error if it does not resolve, as
 * `ssh -G` exits then) and its CNAME followed when a rule permits (never with
 * CanonicalizeHostname no).
 */
function canonicalizeTarget(env: LookupEnvironment, state: OptionState, host: string, mode: string): string {
  const address = canonicalAddress(host);
  // OpenSSH keeps the name as written when only the case differs (strcasecmp).
  if (address !== null) return address.toLowerCase() === host.toLowerCase() ? host : address;
  if (looksLikeAddress(host)) return host;
  // Names a proxy will resolve are left alone unless CanonicalizeHostname is "always".
  const direct = isUnsetOrNone(state.value('proxycommand')) && isUnsetOrNone(state.value('proxyjump'));
  if (!direct && mode !== 'always') return host;
  const settings = {
    canonicalizefallbacklocal: state.value('canonicalizefallbacklocal'),
    addressfamily: state.value('addressfamily'),
  };
  const cnames = cnameRules(state.words('canonicalizepermittedcnames'));
  if (mode !== 'no') {
    const maxDots = Number.parseInt(state.value('canonicalizemaxdots') ?? '1', 10);
    const dots = host.split('.').length - 1;
    const domains = host.endsWith('.') ? [] : dots > (Number.isNaN(maxDots) ? 1 : maxDots) ? null : (state.words('canonicaldomains') ?? []);
    const resolved = domains && resolveWithDomains(host, settings, domains, env.resolveHost, cnames);
    if (resolved) return resolved;
  }
  if (cnames.length === 0) return host;
  const bare = host.replace(/\.$/, '');
  const answer = env.resolveHost(bare, addressFamilyOf(settings));
  if (answer === false) throw new CouldNotCanonicalize(`Could not resolve hostname ${bare}`);
  return mode === 'no' ? host : followCname(host, answer, cnames);
}

function runPass(env: LookupEnvironment, state: OptionState, pass: Pass): void {
  for (const file of env.files) walk(env, state, pass, file, true, false);
}

/**
 * Apply a file's options. An included file starts with its includer's state and its own
 * Host/Match lines do not leak back; a file included from an inactive block is only read
 * ("never match"), as OpenSSH does.
 */
function walk(env: LookupEnvironment, state: OptionState, pass: Pass, file: ConfigFile, active: boolean, neverMatch: boolean): void {
  let on = active;
  for (const item of file.items) {
    switch (item.type) {
      case 'host':
        on = !neverMatch && hostLineMatches(pass.hostForHostLines, item.patterns);
        break;
      case 'match':
        if (requestsFinalPass(item.criteria)) pass.wantFinal = true;
        on = !neverMatch && evaluateMatch(item.criteria, {
          host: pass.matchHost(),
          originalHost: pass.originalHost,
          user: state.value('user') ?? env.local.user,
          localUser: env.local.user,
          finalPass: pass.finalPass,
          exec: (command) => runMatchExec(command, matchExecContext(env, state, pass), item.source),
        });
        break;
      case 'option':
        if (on) state.apply(item.key, item.args);
        break;
      case 'include':
        for (const included of item.files) walk(env, state, pass, included, on, neverMatch || !on);
        break;
    }
  }
}

function matchExecContext(env: LookupEnvironment, state: OptionState, pass: Pass): TokenContext {
  const host = pass.matchHost();
  return {
    host,
    originalHost: pass.originalHost,
    port: state.value('port') ?? DEFAULT_PORT,
    remoteUser: state.value('user') ?? env.local.user,
    localUser: env.local.user,
    homeDir: env.local.home,
    uid: String(env.local.uid),
    localHostname: env.local.hostname,
    keyAlias: state.value('hostkeyalias') ?? host,
  };
}

/** `Match exec`: run through the user's shell as OpenSSH does, stdin and stdout on /dev/null. */
function runMatchExec(command: string, ctx: TokenContext, source: SourceRef): boolean {
  const expanded = expandTokens(command, MATCH_EXEC_TOKENS, ctx);
  const shell = process.env.SHELL || '/bin/sh';
  const r = spawnSync(shell, ['-c', expanded], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.error !== undefined) {
    throw new ConfigParseError(`${source.file} line ${source.line}: match exec '${expanded}' error: ${r.error.message}`);
  }
  return r.status === 0;
}

function buildDict(env: LookupEnvironment, state: OptionState, hostArg: string, host: string): SSHConfigDict {
  const alias = state.value('hostkeyalias');
  const ctx: TokenContext = {
    host,
    originalHost: hostArg,
    port: state.value('port') ?? DEFAULT_PORT,
    remoteUser: state.value('user') ?? env.local.user,
    localUser: env.local.user,
    homeDir: env.local.home,
    uid: String(env.local.uid),
    localHostname: env.local.hostname,
    // OpenSSH lowercases HostKeyAlias before using it.
    keyAlias: alias === undefined ? hostArg : asciiLower(alias),
  };
  const dict = new SSHConfigDict();
  for (const key of state.keys()) {
    let value: ConfigValue;
    if (LIST_KEYS.has(key)) {
      const entries = state.entries(key) ?? [];
      if (entries.length === 0) continue;
      value = entries.map((words) => expandKeyword(key, words, ctx));
    } else if (key === 'hostname') {
      value = host;
    } else if (key === 'hostkeyalias') {
      value = ctx.keyAlias;
    } else {
      const words = state.words(key)!;
      // "none" disables a proxy; like Paramiko, the key is then left out.
      if ((key === 'proxycommand' || key === 'proxyjump') && isUnsetOrNone(words.join(' '))) continue;
      value = expandKeyword(key, words, ctx);
    }
    setConfigValue(dict, key, value);
  }
  if (!dict.has('hostname')) setConfigValue(dict, 'hostname', host);
  return dict;
}
