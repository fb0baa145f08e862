import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SSHConfigDict } from '../../lib/config';
import { expandKeyword, TokenContext } from '../../lib/config/tokens';
import { peerPath } from './peers';

/** What `ssh -G` printed: each lowercased key with its value lines, in order. */
export interface SshGResult {
  status: number | null;
  stderr: string;
  values: Map<string, string[]>;
}

export interface SshGOptions {
  /** `-l user` */
  user?: string;
  /** `-p port` */
  port?: number | string;
  /** The environment of ssh (give HOME a throw-away directory so no real ~/.ssh is read). */
  env: NodeJS.ProcessEnv;
}

/**
 * Run OpenSSH's own resolver: `ssh -G -F <config> [-l user] [-p port] <host>` prints the
 * options it would use, one `key value` line each (multi-valued keys on several lines), and
 * does not connect. With -F, /etc/ssh/ssh_config is not read.
 */
export function sshG(configFile: string, host: string, options: SshGOptions): SshGResult {
  const args = ['-G', '-F', configFile];
  if (options.user !== undefined) args.push('-l', options.user);
  if (options.port !== undefined) args.push('-p', String(options.port));
  args.push(host);
  const r = spawnSync(peerPath('ssh'), args, { env: options.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const values = new Map<string, string[]>();
  if (r.status === 0) {
    for (const line of r.stdout.split('\n')) {
      if (line === '') continue;
      const space = line.indexOf(' ');
      // OpenSSH 9.2 prints one key in mixed case (canonicalizePermittedcnames).
      const key = (space < 0 ? line : line.slice(0, space)).toLowerCase();
      const value = space < 0 ? '' : line.slice(space + 1);
      const list = values.get(key) ?? [];
      list.push(value);
      values.set(key, list);
    }
  }
  return { status: r.status, stderr: r.stderr ?? '', values };
}

/**
 * One case of the corpus. Each `*.config` file of spec/config-corpus names its cases on
 * `#@ lookup <host> [-l user] [-p port]` lines, and `#@ error <host>` where ssh and our lookup
 * must both fail. `inc-*.conf` files are Include fragments, not cases.
 */
export interface CorpusCase {
  file: string;
  kind: 'lookup' | 'error';
  host: string;
  user?: string;
  port?: string;
}

export function corpusCases(dir: string): CorpusCase[] {
  const cases: CorpusCase[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.config')).sort()) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      const m = /^#@ (lookup|error) (\S+)(.*)$/.exec(line);
      if (m === null) continue;
      const c: CorpusCase = { file, kind: m[1] as CorpusCase['kind'], host: m[2] };
      const user = /-l (\S+)/.exec(m[3]);
      const port = /-p (\S+)/.exec(m[3]);
      if (user) c.user = user[1];
      if (port) c.port = port[1];
      cases.push(c);
    }
  }
  return cases;
}

// How our lookup is compared with ssh -G. Every key of our result is compared with what ssh -G
// prints for it (ssh -G also prints many defaults we do not report: those are ignored unless
// the config changed them, see `differences`). Normalisation, where ssh -G prints a value
// differently but equivalently:
// - identityfile, certificatefile, proxycommand, proxyjump: ssh -G prints them unexpanded
//   (OpenSSH expands them only when it connects), so ssh's text is expanded with our expander
//   before comparing. The expander itself is checked against ssh through controlpath,
//   identityagent, userknownhostsfile, remotecommand and the socket forwardings, which ssh -G
//   prints expanded and which use the same token table, and through Match exec;
// - localforward/remoteforward/dynamicforward: ssh -G prints `[host]:port`, and `[socks]:0` for
//   a dynamic remote forward;
// - yes/no flags: ssh -G prints some as true/false; loglevel and syslogfacility in upper case.
// Keys skipped, because ssh -G prints a computed form rather than the configured text (none of
// them is in the corpus today): algorithm lists starting with + - ^ (printed resolved),
// rekeylimit (printed in bytes), time values with units such as `1m` in controlpersist and
// forwardx11timeout (printed in seconds), tunnel (`yes` printed as point-to-point).

const RAW_IN_SSH_G = new Set(['identityfile', 'certificatefile', 'proxycommand', 'proxyjump']);
const FORWARDS = new Set(['localforward', 'remoteforward', 'dynamicforward']);
const UPPERCASED_BY_SSH = new Set(['loglevel', 'syslogfacility']);
const SKIPPED = new Set(['rekeylimit', 'tunnel', 'controlpersist', 'forwardx11timeout']);
const ALGORITHM_LISTS = /^(ciphers|macs|kexalgorithms|hostkeyalgorithms|pubkeyacceptedalgorithms|casignaturealgorithms|hostbasedacceptedalgorithms)$/;

function normalise(key: string, value: string): string {
  if (FORWARDS.has(key)) return value.replace(/[[\]]/g, '').replace(/ socks:0$/, '');
  if (UPPERCASED_BY_SSH.has(key)) return value.toUpperCase();
  if (/^(yes|true)$/i.test(value)) return 'yes';
  if (/^(no|false)$/i.test(value)) return 'no';
  return value;
}

/**
 * Differences between our lookup and ssh -G's output, as readable lines (none when they agree).
 * `baseline` is ssh -G for the same host and flags with an empty config: a key whose value
 * differs from it was set by the config, so our result must have it too.
 */
export function differences(ours: SSHConfigDict, ssh: Map<string, string[]>, baseline: Map<string, string[]>, host: string): string[] {
  const me = os.userInfo();
  const first = (k: string) => ssh.get(k)?.[0] ?? '';
  const ctx: TokenContext = {
    host: first('hostname'),
    originalHost: host,
    port: first('port'),
    remoteUser: first('user'),
    localUser: me.username,
    homeDir: me.homedir,
    uid: String(me.uid),
    localHostname: os.hostname(),
    keyAlias: ssh.get('hostkeyalias')?.[0] ?? host,
  };
  const out: string[] = [];
  for (const key of Object.keys(ours)) {
    const value = ours[key]!;
    const mine = (Array.isArray(value) ? value : [value]).map((v) => normalise(key, v));
    if (SKIPPED.has(key) || (ALGORITHM_LISTS.test(key) && /^[-+^]/.test(mine[0]))) continue;
    let theirs = ssh.get(key);
    if (theirs === undefined) {
      // ssh -G omits a ControlPath of "none".
      if (!(key === 'controlpath' && mine[0] === 'none')) out.push(`${key}: ours ${JSON.stringify(mine)}, ssh -G has none`);
      continue;
    }
    if (RAW_IN_SSH_G.has(key)) theirs = theirs.map((v) => expandKeyword(key, [v], ctx));
    theirs = theirs.map((v) => normalise(key, v));
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
      out.push(`${key}: ours ${JSON.stringify(mine)}, ssh -G ${JSON.stringify(theirs)}`);
    }
  }
  for (const [key, theirs] of ssh) {
    if (ours.has(key) || JSON.stringify(theirs) === JSON.stringify(baseline.get(key))) continue;
    // Derived by ssh rather than configured: the names (compared by the caller), and
    // UpdateHostKeys, which ssh turns off by itself when a RemoteCommand is set.
    if (key === 'host' || key === 'hostname' || key === 'updatehostkeys') continue;
    out.push(`${key}: set by the config per ssh -G ${JSON.stringify(theirs)}, missing from ours`);
  }
  return out;
}
