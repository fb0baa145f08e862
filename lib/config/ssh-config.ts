/**
 * Paramiko's SSHConfig (paramiko.config), evaluated by OpenSSH's rules; see lookup.ts for
 * the order of evaluation and parser.ts for the syntax.
 *
 * ```ts
 * const config = SSHConfig.fromPath(path.join(os.homedir(), '.ssh', 'config'));
 * const cfg = config.lookup('build-host');
 * client.connect(cfg.hostname!, { port: cfg.has('port') ? cfg.asInt('port') : 22, username: cfg.user });
 * ```
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canonicalizeWithDomains, CanonicalizeSettings, getentResolver, HostResolver } from './canonicalize';
import { ConfigValue, SSHConfigDict } from './config-dict';
import { localIdentity } from './local';
import { lookup, LookupOptions } from './lookup';
import { ConfigFile, hostPatterns, parseConfig } from './parser';

export interface SSHConfigOptions {
  /**
   * What `~` means in Include paths. Default: `os.homedir()` ($HOME), which is what OpenSSH's
   * glob(3) uses for Include.
   */
  homeDir?: string;
  /**
   * Where relative Include paths are looked for. Default: `<homeDir>/.ssh`, OpenSSH's rule
   * for user configuration files (system files would use /etc/ssh).
   */
  includeDir?: string;
  /**
   * Resolver for CanonicalizeHostname: false, true, or the name's canonical name (for
   * CanonicalizePermittedCNAMEs). Default: `getent ahosts` (the system's NSS).
   */
  resolveHost?: HostResolver;
}

/** Something `parse` accepts: text, bytes, a file-like object with read(), or lines. */
export type ConfigSource = string | Buffer | { read(): string | Buffer } | Iterable<string>;

function sourceText(source: ConfigSource): string {
  if (typeof source === 'string') return source;
  if (Buffer.isBuffer(source)) return source.toString('utf8');
  if (typeof (source as { read?: unknown }).read === 'function') {
    const data = (source as { read(): string | Buffer }).read();
    return typeof data === 'string' ? data : data.toString('utf8');
  }
  // Lines, as a Python file object iterates; each may or may not keep its newline.
  return Array.from(source as Iterable<string>, (line) => line.replace(/\n$/, '')).join('\n');
}

export class SSHConfig {
  private readonly files: ConfigFile[] = [];
  private readonly homeDir: string;
  private readonly includeDir: string;
  private readonly resolveHost: HostResolver;

  constructor(options: SSHConfigOptions = {}) {
    this.homeDir = options.homeDir ?? os.homedir();
    this.includeDir = options.includeDir ?? path.join(this.homeDir, '.ssh');
    this.resolveHost = options.resolveHost ?? getentResolver;
  }

  /** A config parsed from text. */
  static fromText(text: string, options?: SSHConfigOptions): SSHConfig {
    const config = new SSHConfig(options);
    config.parse(text);
    return config;
  }

  /** A config read from a file (relative Includes still resolve against includeDir, as OpenSSH). */
  static fromPath(file: string, options?: SSHConfigOptions): SSHConfig {
    const config = new SSHConfig(options);
    config.parseText(fs.readFileSync(file, 'utf8'), file);
    return config;
  }

  /** A config read from a file-like object with `read()`. */
  static fromFile(file: { read(): string | Buffer }, options?: SSHConfigOptions): SSHConfig {
    const config = new SSHConfig(options);
    config.parse(file);
    return config;
  }

  /**
   * Add a config. Several calls act as several files read in order (a user's config, then the
   * system one): each starts outside any Host block, and earlier values win.
   */
  parse(source: ConfigSource): void {
    this.parseText(sourceText(source), 'config');
  }

  private parseText(text: string, name: string): void {
    this.files.push(parseConfig(text, name, { homeDir: this.homeDir, includeDir: this.includeDir }));
  }

  /**
   * The options for `hostname`, as OpenSSH would use them: keys lowercased, the first value
   * obtained wins, list keys accumulate, `hostname` always present (default: the name given,
   * lowercased), tokens expanded, and `proxycommand`/`proxyjump` left out when "none".
   */
  lookup(hostname: string, options: LookupOptions = {}): SSHConfigDict {
    const local = localIdentity({ user: options.localUser, home: options.homeDir });
    return lookup({ files: this.files, local, resolveHost: this.resolveHost }, hostname, options);
  }

  /** Every pattern written on a Host line (negated ones with their `!`), Include files too. */
  getHostnames(): Set<string> {
    const names = new Set<string>();
    for (const file of this.files) hostPatterns(file, names);
    return names;
  }

  /**
   * CanonicalizeHostname's search: the first `hostname.domain` that resolves (a name ending in
   * `.` is tried as is), else `hostname` when `options.canonicalizefallbacklocal` is yes (the
   * default), else CouldNotCanonicalize. `options.addressfamily` picks IPv4/IPv6 lookups.
   */
  canonicalize(
    hostname: string,
    options: SSHConfigDict | Record<string, ConfigValue | undefined>,
    domains: readonly string[],
  ): string {
    const pick = (key: keyof CanonicalizeSettings): string | undefined => {
      const value = options[key];
      return typeof value === 'string' ? value : undefined;
    };
    const settings: CanonicalizeSettings = {
      canonicalizefallbacklocal: pick('canonicalizefallbacklocal'),
      addressfamily: pick('addressfamily'),
    };
    return canonicalizeWithDomains(hostname, settings, domains, this.resolveHost);
  }
}
