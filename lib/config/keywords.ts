/**
 * The ssh_config keywords whose values need more than "first value wins, one string":
 * how many arguments each takes and how repeated directives combine. Checked against
 * `ssh -G` of OpenSSH 9.2. A keyword missing here is kept leniently (first value wins, its
 * arguments joined by spaces), as Paramiko keeps every keyword, so configs written for newer
 * OpenSSH releases still parse.
 */

export type KeywordKind =
  /** First value wins; exactly one argument. */
  | 'single'
  /** First value wins; one or more arguments, kept joined by single spaces. */
  | 'words'
  /** First value wins; the rest of the line verbatim (run by the shell). */
  | 'command'
  /** Like 'command' but one word; a non-`none` value also locks ProxyCommand out. */
  | 'proxyjump'
  /** Every directive adds one entry (its arguments joined by a space); exact duplicates are dropped. */
  | 'each'
  /** Every argument adds a variable name; `-pattern` removes the names it matches. */
  | 'sendenv'
  /** First directive wins; a list of NAME=VALUE, a repeated NAME keeps its first value. */
  | 'setenv';

export interface KeywordSpec {
  kind: KeywordKind;
  /** For 'each': allowed argument counts. */
  minArgs?: number;
  maxArgs?: number;
}

const SINGLE: KeywordSpec = { kind: 'single' };
const WORDS: KeywordSpec = { kind: 'words' };
const COMMAND: KeywordSpec = { kind: 'command' };

/** Keywords OpenSSH 9.2 rejects with "extra arguments at end of line" after one argument. */
const SINGLE_KEYWORDS = [
  'addressfamily', 'batchmode', 'bindaddress', 'bindinterface', 'canonicalizefallbacklocal',
  'canonicalizehostname', 'canonicalizemaxdots', 'casignaturealgorithms', 'checkhostip', 'ciphers',
  'clearallforwardings', 'compression', 'connectionattempts', 'connecttimeout', 'controlmaster',
  'controlpath', 'controlpersist', 'enableescapecommandline', 'enablesshkeysign', 'escapechar',
  'exitonforwardfailure', 'fingerprinthash', 'forkafterauthentication', 'forwardagent', 'forwardx11',
  'forwardx11timeout', 'forwardx11trusted', 'gatewayports', 'gssapiauthentication',
  'gssapiclientidentity', 'gssapidelegatecredentials', 'gssapikeyexchange', 'gssapikexalgorithms',
  'gssapirenewalforcesrekey', 'gssapiserveridentity', 'gssapitrustdns', 'hashknownhosts',
  'hostbasedacceptedalgorithms', 'hostbasedauthentication', 'hostkeyalgorithms', 'hostkeyalias',
  'hostname', 'identitiesonly', 'identityagent', 'ignoreunknown', 'kbdinteractiveauthentication',
  'kbdinteractivedevices', 'kexalgorithms', 'loglevel', 'macs', 'nohostauthenticationforlocalhost',
  'numberofpasswordprompts', 'passwordauthentication', 'permitlocalcommand', 'pkcs11provider', 'port',
  'preferredauthentications', 'proxyusefdpass', 'pubkeyacceptedalgorithms', 'pubkeyauthentication',
  'requesttty', 'requiredrsasize', 'revokedhostkeys', 'securitykeyprovider', 'serveralivecountmax',
  'serveraliveinterval', 'sessiontype', 'stdinnull', 'streamlocalbindmask', 'streamlocalbindunlink',
  'stricthostkeychecking', 'syslogfacility', 'tcpkeepalive', 'tunnel', 'tunneldevice',
  'updatehostkeys', 'user', 'verifyhostkeydns', 'visualhostkey', 'xauthlocation',
];

/** First value wins, but the value may be several words (lists, or an optional second value). */
const WORDS_KEYWORDS = [
  'addkeystoagent', 'canonicaldomains', 'canonicalizepermittedcnames', 'globalknownhostsfile',
  'ipqos', 'logverbose', 'permitremoteopen', 'rekeylimit', 'userknownhostsfile',
];

const KEYWORDS = new Map<string, KeywordSpec>([
  ...SINGLE_KEYWORDS.map((k): [string, KeywordSpec] => [k, SINGLE]),
  ...WORDS_KEYWORDS.map((k): [string, KeywordSpec] => [k, WORDS]),
  ['proxycommand', COMMAND],
  ['localcommand', COMMAND],
  ['remotecommand', COMMAND],
  ['knownhostscommand', COMMAND],
  ['proxyjump', { kind: 'proxyjump' }],
  ['identityfile', { kind: 'each', minArgs: 1, maxArgs: 1 }],
  ['certificatefile', { kind: 'each', minArgs: 1, maxArgs: 1 }],
  ['localforward', { kind: 'each', minArgs: 2, maxArgs: 2 }],
  // One argument makes a dynamic (SOCKS) remote forward.
  ['remoteforward', { kind: 'each', minArgs: 1, maxArgs: 2 }],
  ['dynamicforward', { kind: 'each', minArgs: 1, maxArgs: 1 }],
  ['sendenv', { kind: 'sendenv' }],
  ['setenv', { kind: 'setenv' }],
]);

/** Old names OpenSSH still accepts, mapped to the option they set (and `ssh -G` prints). */
const ALIASES = new Map<string, string>([
  ['challengeresponseauthentication', 'kbdinteractiveauthentication'],
  ['skeyauthentication', 'kbdinteractiveauthentication'],
  ['tisauthentication', 'kbdinteractiveauthentication'],
  ['dsaauthentication', 'pubkeyauthentication'],
  ['pubkeyacceptedkeytypes', 'pubkeyacceptedalgorithms'],
  ['hostbasedkeytypes', 'hostbasedacceptedalgorithms'],
  ['keepalive', 'tcpkeepalive'],
  // Debian's compatibility names for ServerAliveInterval.
  ['protocolkeepalives', 'serveraliveinterval'],
  ['setuptimeout', 'serveraliveinterval'],
]);

/** Keys whose value in an SSHConfigDict is a list (string[]), in OpenSSH's order. */
export const LIST_KEYS: ReadonlySet<string> = new Set([
  'identityfile', 'certificatefile', 'localforward', 'remoteforward', 'dynamicforward', 'sendenv', 'setenv',
]);

/** The option a (lowercased) keyword sets. */
export function canonicalKeyword(keyword: string): string {
  return ALIASES.get(keyword) ?? keyword;
}

export function keywordSpec(keyword: string): KeywordSpec {
  return KEYWORDS.get(keyword) ?? WORDS;
}
