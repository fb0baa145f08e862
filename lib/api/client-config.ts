/**
 * SSHClient.connect's `sshConfig` option: what OpenSSH's `ssh alias` takes from ssh_config
 * (AsyncSSH's `config`). Paramiko's connect reads no config (REFERENCE.md pitfall 4), so this
 * applies only when asked.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { SSHConfig } from '../config';
import type { SSHConfigDict } from '../config';
import { matchPattern } from '../config/patterns';
import { SSHException } from '../errors';
import { HostKeys } from '../hostkeys';
import { SSHCertificate, type PKey } from '../keys';
import { defaultPreferences, supported, type AlgorithmPreferences } from '../transport/algorithms';
import type { ConnectOptions, SSHClient } from './client';

/** The config `spec` names: true is ~/.ssh/config (none when it is missing), a string a file. */
export function configOf(spec: NonNullable<ConnectOptions['sshConfig']>): SSHConfig {
  if (spec instanceof SSHConfig) return spec;
  if (typeof spec === 'string') return SSHConfig.fromPath(spec);
  const path = join(homedir(), '.ssh', 'config');
  return existsSync(path) ? SSHConfig.fromPath(path) : new SSHConfig();
}

/** One hop of a ProxyJump: `[user@]host[:port]` or `ssh://[user@]host[:port]` (IPv6 in brackets). */
export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

export function parseJumps(spec: string): JumpHop[] {
  return spec.split(',').map((raw) => {
    const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]\s]+\]|[^:@/\s]+)(?::(\d+))?\/?$/.exec(raw.trim());
    if (!m) throw new SSHException(`cannot read ProxyJump hop ${JSON.stringify(raw)} (want [user@]host[:port])`);
    return { user: m[1], host: m[2].replace(/^\[(.*)\]$/, '$1'), port: m[3] ? Number(m[3]) : undefined };
  });
}

/** How the config says to reach the host: ProxyJump or ProxyCommand, whichever came first (as OpenSSH). */
export function proxyOf(d: SSHConfigDict): { jump: string } | { command: string } | null {
  for (const key of d.keys()) {
    if (key === 'proxyjump' && d.proxyjump) return { jump: d.proxyjump };
    if (key === 'proxycommand' && d.proxycommand) return { command: d.proxycommand };
  }
  return null;
}

const yes = (d: SSHConfigDict, key: string): boolean | undefined => (d.has(key) ? d.asBool(key) : undefined);

/**
 * The connect options for the host `d` describes: the caller's own win (as ssh's command line
 * over its config); the config gives Port, User, IdentityFile (the files that exist),
 * IdentitiesOnly (no agent, no default keys), ConnectTimeout and Compression. `sock` is left to
 * the caller (ProxyJump needs connections).
 */
export function optionsFromConfig(d: SSHConfigDict, o: ConnectOptions): ConnectOptions {
  const out: ConnectOptions = { ...o, sshConfig: null };
  out.port ??= d.port ? Number(d.port) : undefined;
  out.username ??= d.user;
  const publickey = wantsPublickey(d);
  // lookup has expanded `~` and the tokens of IdentityFile already.
  if (out.keyFilename == null && d.identityfile?.length && publickey) {
    const files = d.identityfile.filter((f) => existsSync(f));
    if (files.length) out.keyFilename = files;
  }
  if (yes(d, 'identitiesonly') || !publickey) {
    out.allowAgent ??= false;
    out.lookForKeys ??= false;
  }
  if (!publickey) out.keyFilename ??= null;
  if (identityAgentOf(d) === null) out.allowAgent ??= false;
  if (out.timeout == null && d.connecttimeout) out.timeout = Number(d.connecttimeout);
  out.compress ??= yes(d, 'compression');
  const family = typeof d.addressfamily === 'string' ? d.addressfamily.toLowerCase() : 'any';
  if (!(family in FAMILIES)) throw new SSHException(`AddressFamily ${d.addressfamily}: want any, inet or inet6`);
  out.family ??= FAMILIES[family];
  if (out.localAddr == null && typeof d.bindaddress === 'string') out.localAddr = d.bindaddress;
  // ssh sets SO_KEEPALIVE unless TCPKeepAlive says no.
  out.tcpKeepalive ??= yes(d, 'tcpkeepalive') ?? true;
  const accepted = d.pubkeyacceptedalgorithms;
  if (typeof accepted === 'string' && accepted && !out.disabledAlgorithms?.pubkeys) {
    out.disabledAlgorithms = { ...out.disabledAlgorithms, pubkeys: refusedPubkeyAlgorithms(accepted) };
  }
  if (typeof d.rekeylimit === 'string') {
    const limit = rekeyLimitOf(d.rekeylimit);
    out.rekeyBytes ??= limit.bytes;
    out.rekeySeconds ??= limit.seconds;
  }
  return out;
}

const FAMILIES: Record<string, 0 | 4 | 6> = { any: 0, inet: 4, inet6: 6 };

/**
 * PubkeyAcceptedAlgorithms (OpenSSH's forms, against every algorithm we sign with): the
 * signature algorithms left out, as `disabledAlgorithms.pubkeys` takes them. A certificate's
 * algorithm goes with its plain one: either in the list keeps both.
 */
export function refusedPubkeyAlgorithms(value: string): string[] {
  const known = supported('hostKeys');
  const accepted = algorithmList('PubkeyAcceptedAlgorithms', value, known, known);
  const plain = (a: string) => a.replace('-cert-v01@openssh.com', '');
  return known.filter((a) => a === plain(a) && !accepted.some((b) => plain(b) === a));
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 };
const TIME_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** An sshd_config/ssh_config time: seconds, or a sequence such as `1h30m` (s, m, h, d, w). */
export function parseConfigTime(text: string): number | null {
  const parts = text.toLowerCase().match(/\d+[smhdw]?/g);
  if (!parts || parts.join('') !== text.toLowerCase()) return null;
  return parts.reduce((sum, p) => sum + Number.parseInt(p, 10) * TIME_UNITS[/[a-z]$/.test(p) ? p.slice(-1) : ''], 0);
}

/**
 * RekeyLimit `bytes [time]`: bytes with an optional K, M or G, `default` for ours; the time as
 * parseConfigTime or `none`/`default` (no limit). undefined: the default.
 */
export function rekeyLimitOf(value: string): { bytes: number | undefined; seconds: number | undefined } {
  const [size, time] = value.trim().split(/\s+/);
  let bytes: number | undefined;
  if (size.toLowerCase() !== 'default') {
    const m = /^(\d+)([kmg]?)$/i.exec(size);
    bytes = m ? Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()] : Number.NaN;
    if (!(bytes === 0 || (bytes >= 16 && Number.isSafeInteger(bytes)))) throw new SSHException(`RekeyLimit ${value}: the size is bytes of at least 16, with K, M or G (or default)`);
    if (bytes === 0) bytes = undefined;
  }
  let seconds: number | undefined;
  if (time !== undefined && !['none', 'default'].includes(time.toLowerCase())) {
    const t = parseConfigTime(time);
    if (t === null) throw new SSHException(`RekeyLimit ${value}: the time is seconds or a form such as 1h30m (or none)`);
    seconds = t || undefined;
  }
  return { bytes, seconds };
}

/** ServerAliveInterval (seconds, 0: off) and ServerAliveCountMax (OpenSSH's default 3), for setKeepalive. */
export function keepaliveOf(d: SSHConfigDict): { interval: number; countMax: number } | null {
  const interval = d.serveraliveinterval ? Number(d.serveraliveinterval) : 0;
  if (!(interval > 0)) return null;
  const countMax = d.serveralivecountmax ? Number(d.serveralivecountmax) : 3;
  return { interval, countMax: Number.isInteger(countMax) && countMax >= 0 ? countMax : 3 };
}

/**
 * Whether the config lets ssh use an authentication method: its `<Name>Authentication` is not
 * no, and PreferredAuthentications (when given) lists it.
 */
function allowsMethod(d: SSHConfigDict, method: 'publickey' | 'password' | 'keyboard-interactive'): boolean {
  const keyword = { publickey: 'pubkeyauthentication', password: 'passwordauthentication', 'keyboard-interactive': 'kbdinteractiveauthentication' }[method];
  if (d.has(keyword) && !yes(d, keyword)) return false;
  // ChallengeResponseAuthentication is the older name of KbdInteractiveAuthentication.
  if (method === 'keyboard-interactive' && !d.has(keyword) && d.has('challengeresponseauthentication') && !yes(d, 'challengeresponseauthentication')) return false;
  const preferred = d.preferredauthentications;
  return typeof preferred !== 'string' || preferred.split(',').includes(method);
}

/** PubkeyAuthentication no, or a PreferredAuthentications without publickey: no keys from the file, the agent or ~/.ssh. */
function wantsPublickey(d: SSHConfigDict): boolean {
  return allowsMethod(d, 'publickey');
}

/**
 * IdentityAgent: the agent's socket path; null for `none`; undefined when the file does not say
 * (SSH_AUTH_SOCK). `SSH_AUTH_SOCK` and `$NAME` name an environment variable, as ssh.
 */
export function identityAgentOf(d: SSHConfigDict): string | null | undefined {
  const v = typeof d.identityagent === 'string' ? d.identityagent : undefined;
  if (v === undefined) return undefined;
  if (v.toLowerCase() === 'none') return null;
  if (v === 'SSH_AUTH_SOCK') return process.env.SSH_AUTH_SOCK ?? null;
  if (v.startsWith('$')) return process.env[v.slice(1)] ?? null;
  return v;
}

/**
 * ForwardAgent: the socket to forward (yes: the IdentityAgent's, else SSH_AUTH_SOCK's; or a path
 * or `$NAME` of its own), null for no or when there is no agent to forward.
 */
export function forwardAgentOf(d: SSHConfigDict, identityAgent: string | null | undefined): string | null {
  const v = typeof d.forwardagent === 'string' ? d.forwardagent : 'no';
  const lower = v.toLowerCase();
  if (['no', 'false', 'off'].includes(lower)) return null;
  if (['yes', 'true', 'on'].includes(lower)) return (identityAgent === undefined ? process.env.SSH_AUTH_SOCK : identityAgent) || null;
  if (v.startsWith('$')) return process.env[v.slice(1)] || null;
  return v.replace(/^~(?=\/|$)/, homedir());
}

/** RequestTTY as ssh reads it: auto unless the file says no, yes, force (or true/false). */
function requestTtyOf(d: SSHConfigDict): ConfiguredHost['requestTty'] {
  const v = typeof d.requesttty === 'string' ? d.requesttty.toLowerCase() : 'auto';
  const named: Record<string, ConfiguredHost['requestTty']> = { auto: 'auto', no: 'no', false: 'no', yes: 'yes', true: 'yes', force: 'force' };
  if (!(v in named)) throw new SSHException(`RequestTTY ${d.requesttty}: want auto, no, yes or force`);
  return named[v];
}

/** Where a host's keys are on record and what to do with one that is not (StrictHostKeyChecking, UserKnownHostsFile). */
export interface KnownHostsConfig {
  /** The keys of UserKnownHostsFile and GlobalKnownHostsFile (OpenSSH's defaults when the file names none). */
  keys: HostKeys;
  /** StrictHostKeyChecking: 'accept' for no / accept-new, 'reject' for yes / ask, null when the file does not say. */
  checking: 'accept' | 'reject' | null;
  /** Where an accepted key is recorded: the first UserKnownHostsFile (null: `none`). */
  saveTo: string | null;
  /** HashKnownHosts: the name is recorded hashed. */
  hashed: boolean;
}

const words = (v: unknown): string[] | null => (typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : null);

/** The known_hosts files as ssh reads them for this host (files that do not exist are skipped). */
export function knownHostsOf(d: SSHConfigDict): KnownHostsConfig {
  const home = (f: string) => join(homedir(), '.ssh', f);
  const user = words(d.userknownhostsfile) ?? [home('known_hosts'), home('known_hosts2')];
  const global = words(d.globalknownhostsfile) ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];
  const keys = new HostKeys();
  for (const f of [...user, ...global]) if (f !== 'none' && existsSync(f)) keys.load(f);
  const strict = typeof d.stricthostkeychecking === 'string' ? d.stricthostkeychecking.toLowerCase() : null;
  let checking: KnownHostsConfig['checking'] = null;
  if (strict === 'no' || strict === 'off' || strict === 'false' || strict === 'accept-new') checking = 'accept';
  else if (strict === 'yes' || strict === 'true' || strict === 'ask') checking = 'reject';
  else if (strict !== null) throw new SSHException(`StrictHostKeyChecking ${strict}: want yes, accept-new, no or ask`);
  return { keys, checking, saveTo: user[0] === 'none' ? null : user[0], hashed: d.has('hashknownhosts') && d.asBool('hashknownhosts') };
}

/** The config keyword of each algorithm list. */
const ALGORITHM_KEYWORDS: ReadonlyArray<[keyword: string, name: string, kind: keyof AlgorithmPreferences]> = [
  ['kexalgorithms', 'KexAlgorithms', 'kex'],
  ['hostkeyalgorithms', 'HostKeyAlgorithms', 'hostKeys'],
  ['ciphers', 'Ciphers', 'ciphers'],
  ['macs', 'MACs', 'macs'],
];

/**
 * Names OpenSSH knows that paramiko-ts does not run: a config written for ssh may list them, and
 * they are left out as the negotiation would; any other unknown name is a mistake and raises.
 */
const OPENSSH_ONLY = new Set([
  'rijndael-cbc@lysator.liu.se',
  ...['umac-64@openssh.com', 'umac-128@openssh.com'].flatMap((m) => [m, m.replace(/(@openssh\.com)?$/, '-etm@openssh.com')]),
  'ssh-dss-cert-v01@openssh.com',
  ...['sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'].flatMap((k) => [k, k.replace(/(@openssh\.com)?$/, '-cert-v01@openssh.com')]),
  'webauthn-sk-ecdsa-sha2-nistp256@openssh.com',
]);

/**
 * One algorithm list in OpenSSH's syntax against our defaults: a list replaces them, `+list`
 * appends, `^list` puts first, `-list` removes (wildcards allowed, as OpenSSH).
 */
export function algorithmList(keyword: string, value: string, defaults: readonly string[], known: readonly string[]): string[] {
  const op = '+-^'.includes(value[0]) ? value[0] : '';
  const names = value.slice(op.length).split(',').filter(Boolean);
  let list: string[];
  if (op === '-') {
    list = defaults.filter((a) => !names.some((p) => matchPattern(a, p)));
  } else {
    const bad = names.filter((a) => !known.includes(a) && !OPENSSH_ONLY.has(a));
    if (bad.length) throw new SSHException(`${keyword} ${value}: unknown algorithm ${bad.join(', ')} (known here: ${known.join(', ')})`);
    const ours = names.filter((a) => known.includes(a));
    if (op === '+') list = [...defaults, ...ours.filter((a) => !defaults.includes(a))];
    else if (op === '^') list = [...ours, ...defaults.filter((a) => !ours.includes(a))];
    else list = ours;
  }
  if (!list.length) throw new SSHException(`${keyword} ${value}: leaves no algorithm paramiko-ts runs (known here: ${known.join(', ')})`);
  return list;
}

/** Ciphers, MACs, KexAlgorithms and HostKeyAlgorithms as the file sets them (only those it sets). */
export function algorithmsOf(d: SSHConfigDict): Partial<AlgorithmPreferences> {
  const defaults = defaultPreferences();
  const out: Partial<AlgorithmPreferences> = {};
  for (const [keyword, name, kind] of ALGORITHM_KEYWORDS) {
    const value = d[keyword];
    if (typeof value === 'string' && value) out[kind] = algorithmList(name, value, defaults[kind], supported(kind));
  }
  return out;
}

/** ConnectOptions' algorithm lists (AsyncSSH's names) and the kind each sets. */
const OPTION_LISTS: ReadonlyArray<[option: 'kexAlgs' | 'serverHostKeyAlgs' | 'encryptionAlgs' | 'macAlgs' | 'compressionAlgs', kind: keyof AlgorithmPreferences]> = [
  ['kexAlgs', 'kex'],
  ['serverHostKeyAlgs', 'hostKeys'],
  ['encryptionAlgs', 'ciphers'],
  ['macAlgs', 'macs'],
  ['compressionAlgs', 'compression'],
];

/**
 * The algorithm lists connect's options give (AsyncSSH's kex_algs, encryption_algs...): a list
 * replaces our defaults; a string is OpenSSH's form (`+aes128-cbc` appends, `-ssh-rsa` removes,
 * `^name` puts first, else a comma list). Unknown names raise, before connecting.
 */
export function algorithmsFromOptions(o: Partial<Record<(typeof OPTION_LISTS)[number][0], string | string[] | null>>): Partial<AlgorithmPreferences> {
  const defaults = defaultPreferences();
  const out: Partial<AlgorithmPreferences> = {};
  for (const [option, kind] of OPTION_LISTS) {
    const value = o[option];
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) ? value.join(',') : value;
    if (Array.isArray(value) && '+-^'.includes(text[0] ?? '')) throw new SSHException(`${option}: a list names algorithms; use a string for OpenSSH's ${text[0]} form`);
    out[kind] = algorithmList(option, text, defaults[kind], supported(kind));
  }
  return out;
}

/**
 * SendEnv (the names of this process's environment that match) then SetEnv: the variables sent
 * on every session channel, as ssh does (SetEnv last, so it wins a name both give).
 */
export function environmentOf(d: SSHConfigDict): Record<string, string> {
  const env: Record<string, string> = {};
  const patterns = d.sendenv ?? [];
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && patterns.some((p) => matchPattern(name, p))) env[name] = value;
  }
  for (const pair of d.setenv ?? []) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** What the config decides for a connection beyond its ConnectOptions. */
export interface ConfiguredHost {
  /** HostKeyAlias: the name the host key is looked up and recorded under. */
  hostKeyAlias: string | null;
  knownHosts: KnownHostsConfig;
  algorithms: Partial<AlgorithmPreferences>;
  /** CertificateFile: each is used with the identity key it certifies. */
  certificates: string[];
  environment: Record<string, string>;
  keepalive: { interval: number; countMax: number } | null;
  /** IdentityAgent: the agent's socket (null: none; undefined: SSH_AUTH_SOCK). */
  identityAgent: string | null | undefined;
  /** ForwardAgent: the agent socket forwarded on every session channel, or null. */
  forwardAgent: string | null;
  /** PasswordAuthentication / KbdInteractiveAuthentication (and PreferredAuthentications): how a password may be sent. */
  password: { password: boolean; keyboardInteractive: boolean };
  /** RequestTTY: auto (a pty for invokeShell only), no, yes (when this process's stdin is a terminal), force. */
  requestTty: 'auto' | 'no' | 'yes' | 'force';
  /** RemoteCommand: what invokeShell runs instead of the login shell. */
  remoteCommand: string | null;
  /** UpdateHostKeys yes: host keys the server proves are added to the first UserKnownHostsFile (ask counts as no: nobody to ask). */
  updateHostKeys: boolean;
  /** ConnectionAttempts: TCP connections tried, a second apart, before giving up (ssh's default 1). */
  connectionAttempts: number;
}

/** Everything the config says about the host `d` describes; a bad algorithm list or StrictHostKeyChecking raises here, before connecting. */
export function configuredHost(d: SSHConfigDict): ConfiguredHost {
  const identityAgent = identityAgentOf(d);
  return {
    hostKeyAlias: typeof d.hostkeyalias === 'string' ? d.hostkeyalias : null,
    knownHosts: knownHostsOf(d),
    algorithms: algorithmsOf(d),
    certificates: (d.certificatefile ?? []).filter((f) => existsSync(f)),
    environment: environmentOf(d),
    keepalive: keepaliveOf(d),
    identityAgent,
    forwardAgent: forwardAgentOf(d, identityAgent),
    password: { password: allowsMethod(d, 'password'), keyboardInteractive: allowsMethod(d, 'keyboard-interactive') },
    requestTty: requestTtyOf(d),
    remoteCommand: typeof d.remotecommand === 'string' && d.remotecommand.toLowerCase() !== 'none' ? d.remotecommand : null,
    updateHostKeys: typeof d.updatehostkeys === 'string' && d.updatehostkeys.toLowerCase() === 'yes',
    connectionAttempts: connectionAttemptsOf(d),
  };
}

/** ConnectionAttempts (1 when unset); anything but a whole number from 1 raises, as ssh refuses it. */
function connectionAttemptsOf(d: SSHConfigDict): number {
  if (d.connectionattempts === undefined) return 1;
  const n = Number(d.connectionattempts);
  if (!Number.isInteger(n) || n < 1 || n > 10000) throw new SSHException(`ConnectionAttempts ${d.connectionattempts}: want a whole number from 1`);
  return n;
}

/** `key` with the first of `certificates` that certifies it attached (the key as it is when none does). */
export function withCertificate(key: PKey, certificates: readonly string[]): PKey {
  for (const path of certificates) {
    const text = readFileSync(path, 'utf8');
    if (SSHCertificate.fromString(text).key.equals(key)) {
      key.loadCertificate(text);
      break;
    }
  }
  return key;
}

/**
 * StrictHostKeyChecking no / accept-new for a host not on record: its key is kept for this client
 * and appended to the first UserKnownHostsFile (hashed under HashKnownHosts), as ssh does.
 */
export function acceptNewHostKey(client: SSHClient, known: KnownHostsConfig, name: string, key: PKey): void {
  client.getHostKeys().add(name, key.getName(), key);
  const file = known.saveTo;
  if (!file) return;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const before = existsSync(file) ? readFileSync(file) : null;
  const unterminated = before !== null && before.length > 0 && before[before.length - 1] !== 0x0a;
  appendFileSync(file, `${unterminated ? '\n' : ''}${recordedName(known, name)} ${key.getName()} ${key.getBase64()}\n`);
}

/**
 * UpdateHostKeys' rotation in the first UserKnownHostsFile: the keys on record for `name` that
 * `keep` refuses are taken off its own lines and `fresh` ones recorded, in one atomic rewrite
 * (a crash in between never leaves the host with neither its old keys nor its new ones). The
 * client's own copy of the keys is updated by the caller.
 */
export function rotateKnownHostKeys(known: KnownHostsConfig, name: string, keep: (k: PKey) => boolean, fresh: readonly PKey[]): void {
  const file = known.saveTo;
  if (!file || !existsSync(file)) return;
  const onDisk = new HostKeys(file);
  const gone = onDisk.removeKeysNotOffered(name, keep);
  for (const key of fresh) onDisk.add(recordedName(known, name), key.getName(), key);
  if (gone.length || fresh.length) onDisk.save(file);
}

/** The host's name as a new known_hosts line gives it: hashed under HashKnownHosts. */
function recordedName(known: KnownHostsConfig, name: string): string {
  return known.hashed ? HostKeys.hashHost(name) : name;
}
