import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateOptions, generateKey, KeyType, signCertificate } from './keys';
import { failStart, LOCALHOST, serverHandle, startDaemon, withPortRetry } from './ports';
import { isRoot, makeTempDir, removeTempDir } from './process';
import { HostKey, SshServer } from './types';
import { ensureTestUser } from './users';
import { OPENSSH10_ROOT, OPENSSH_ROOT } from '../peers';

export const SSHD = '/usr/sbin/sshd';

type List = string | string[];

export interface SshdOptions {
  /**
   * Run OpenSSH 10's sshd (unpacked by .ci/install-openssh10; peer 'openssh10') instead of the
   * system's 9.2. Its sshd-session and sshd-auth are named in the config.
   */
  openssh10?: boolean;
  /** Host keys to generate (default ed25519, ecdsa (nistp256), rsa (3072)). */
  hostKeyTypes?: KeyType[];
  /** KexAlgorithms, Ciphers, MACs, HostKeyAlgorithms, PubkeyAcceptedAlgorithms: a list, or one string as sshd_config takes it ('+alg', '-alg', '^alg' work). */
  kex?: List;
  ciphers?: List;
  macs?: List;
  hostKeyAlgorithms?: List;
  pubkeyAcceptedAlgorithms?: List;
  /** AuthenticationMethods, e.g. 'publickey,password' to require both. */
  authenticationMethods?: string;
  /** RekeyLimit, e.g. '1M' or '1M 10s'. */
  rekeyLimit?: string;
  /** Public key line(s) of user CAs: written to a file, named by TrustedUserCAKeys. */
  trustedUserCAKeys?: string | string[];
  /**
   * Signs every host key with this CA (`caKeyPath`: a private key file) and adds HostCertificate
   * lines. Principals default to ['127.0.0.1', 'localhost'].
   */
  hostCertificate?: { caKeyPath: string } & CertificateOptions;
  clientAliveInterval?: number;
  clientAliveCountMax?: number;
  compression?: boolean;
  passwordAuthentication?: boolean;
  kbdInteractiveAuthentication?: boolean;
  pubkeyAuthentication?: boolean;
  maxAuthTries?: number;
  /** Text sent as the pre-authentication banner (Banner). */
  banner?: string;
  /** The sftp subsystem: 'internal-sftp' (default) or a program such as '/usr/lib/openssh/sftp-server -l DEBUG3'. */
  sftpServer?: string;
  /**
   * X11Forwarding (default off): sshd then listens on 127.0.0.1:6010+ for each x11-req and runs
   * xauth (Debian package xauth) to store the client's cookie before the command.
   */
  x11Forwarding?: boolean;
  /** LogLevel (default DEBUG1). */
  logLevel?: string;
  /** Keys the test user may log in with from the start (more with `authorize`). */
  authorizedKeys?: string[];
  /**
   * More sshd_config lines. sshd keeps the FIRST value of a directive, so lines before the first
   * `Match` go to the top of the file and override the harness's defaults; `Match` blocks go last.
   */
  extraConfig?: string[];
}

export interface SshdServer extends SshServer {
  kind: 'openssh';
  /** The sshd_config in use. */
  configPath: string;
  config: string;
}

const versions = new Map<string, [number, number]>();

/** The version of an sshd (default the system's), from `sshd -V` ("OpenSSH_9.2p1 ..."). */
export function opensshVersion(sshd = SSHD): [number, number] {
  let v = versions.get(sshd);
  if (!v) {
    const r = spawnSync(sshd, ['-V']);
    const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${r.stdout}${r.stderr}`);
    v = m ? [Number(m[1]), Number(m[2])] : [0, 0];
    versions.set(sshd, v);
  }
  return v;
}

const list = (v: List) => (Array.isArray(v) ? v.join(',') : v);
const yn = (b: boolean) => (b ? 'yes' : 'no');

/**
 * Starts OpenSSH's sshd in the foreground on 127.0.0.1:<free port> (`sshd -D -e -f <config>`),
 * with fresh host keys and config in a temp dir. Password and keyboard-interactive logins go
 * through PAM against the system account of `ensureTestUser()`; public keys are read from
 * `<dir>/authorized_keys/<user>` (see `authorize`). Resolves once the port answers with a banner.
 */
export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  const user = ensureTestUser();
  const root = isRoot();
  if (root) {
    // sshd refuses to start without its privilege separation dir.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    chmodSync('/run/sshd', 0o755);
  }
  const prefix = options.openssh10 ? OPENSSH10_ROOT : OPENSSH_ROOT;
  const sshd = `${prefix}${SSHD}`;
  const dir = makeTempDir('sshd');
  try {
    const hostKeys: HostKey[] = [];
    for (const type of options.hostKeyTypes ?? ['ed25519', 'ecdsa', 'rsa']) {
      const k: HostKey = generateKey(join(dir, `ssh_host_${type}_key`), type, { comment: 'pts-test host key' });
      if (options.hostCertificate) {
        const { caKeyPath, ...certOptions } = options.hostCertificate;
        const cert = signCertificate(caKeyPath, k.publicKeyPath!, true, {
          identity: 'pts-test host',
          principals: ['127.0.0.1', 'localhost'],
          ...certOptions,
        });
        k.certificate = cert.line;
        k.certificatePath = cert.path;
      }
      hostKeys.push(k);
    }
    const akDir = join(dir, 'authorized_keys');
    mkdirSync(akDir, { mode: 0o755 });
    chmodSync(akDir, 0o755);
    const authorize = (username: string, line: string) => {
      const key = line.trim();
      if (!key || key.includes('\n')) throw new Error('authorize: expected one public key line');
      // sshd reads the file as the user: it must be world-readable (StrictModes is off).
      const file = join(akDir, username);
      appendFileSync(file, key + '\n', { mode: 0o644 });
      chmodSync(file, 0o644);
    };
    for (const k of options.authorizedKeys ?? []) authorize(user.username, k);

    const top: string[] = [];
    const bottom: string[] = [];
    let inMatch = false;
    for (const l of options.extraConfig ?? []) {
      if (/^\s*match\s/i.test(l)) inMatch = true;
      (inMatch ? bottom : top).push(l);
    }
    const lines = (port: number): string[] => {
      const c: string[] = ['# written by spec/support/servers/sshd.ts', ...top];
      if (options.kex) c.push(`KexAlgorithms ${list(options.kex)}`);
      if (options.ciphers) c.push(`Ciphers ${list(options.ciphers)}`);
      if (options.macs) c.push(`MACs ${list(options.macs)}`);
      if (options.hostKeyAlgorithms) c.push(`HostKeyAlgorithms ${list(options.hostKeyAlgorithms)}`);
      if (options.pubkeyAcceptedAlgorithms) c.push(`PubkeyAcceptedAlgorithms ${list(options.pubkeyAcceptedAlgorithms)}`);
      if (options.authenticationMethods) c.push(`AuthenticationMethods ${options.authenticationMethods}`);
      if (options.rekeyLimit) c.push(`RekeyLimit ${options.rekeyLimit}`);
      if (options.clientAliveInterval !== undefined) c.push(`ClientAliveInterval ${options.clientAliveInterval}`);
      if (options.clientAliveCountMax !== undefined) c.push(`ClientAliveCountMax ${options.clientAliveCountMax}`);
      if (options.compression !== undefined) c.push(`Compression ${yn(options.compression)}`);
      if (options.maxAuthTries !== undefined) c.push(`MaxAuthTries ${options.maxAuthTries}`);
      if (options.trustedUserCAKeys) {
        const cas = Array.isArray(options.trustedUserCAKeys) ? options.trustedUserCAKeys : [options.trustedUserCAKeys];
        const f = join(dir, 'trusted_user_ca_keys');
        writeFileSync(f, cas.map((l) => l.trim() + '\n').join(''), { mode: 0o644 });
        c.push(`TrustedUserCAKeys ${f}`);
      }
      if (options.banner !== undefined) {
        const f = join(dir, 'banner');
        writeFileSync(f, options.banner, { mode: 0o644 });
        c.push(`Banner ${f}`);
      }
      c.push(
        `ListenAddress ${LOCALHOST}`,
        `Port ${port}`,
        ...hostKeys.map((k) => `HostKey ${k.path}`),
        ...hostKeys.filter((k) => k.certificatePath).map((k) => `HostCertificate ${k.certificatePath}`),
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${akDir}/%u`,
        'StrictModes no',
        // PAM checks passwords of real accounts; it needs root.
        `UsePAM ${yn(root)}`,
        `PasswordAuthentication ${yn(options.passwordAuthentication ?? true)}`,
        `KbdInteractiveAuthentication ${yn(options.kbdInteractiveAuthentication ?? true)}`,
        `PubkeyAuthentication ${yn(options.pubkeyAuthentication ?? true)}`,
        'PermitRootLogin prohibit-password',
        `Subsystem sftp ${options.sftpServer ?? 'internal-sftp'}`,
        `LogLevel ${options.logLevel ?? 'DEBUG1'}`,
        'AcceptEnv PTS_*',
        'PermitUserEnvironment no',
        `X11Forwarding ${yn(options.x11Forwarding ?? false)}`,
        ...(options.x11Forwarding ? ['X11UseLocalhost yes', 'X11DisplayOffset 10', 'XAuthLocation /usr/bin/xauth'] : []),
        'AllowTcpForwarding yes',
        'AllowStreamLocalForwarding yes',
        'AllowAgentForwarding yes',
        'GatewayPorts no',
        'MaxStartups 100',
        'MaxSessions 100',
        'PrintMotd no',
        'PrintLastLog no',
        'UseDNS no',
      );
      if (prefix) c.push(`SshdSessionPath ${prefix}/usr/lib/openssh/sshd-session`, `SshdAuthPath ${prefix}/usr/lib/openssh/sshd-auth`);
      // OpenSSH 9.8 penalises sources that fail to authenticate: tests fail on purpose, often.
      const [maj, min] = opensshVersion(sshd);
      if (maj > 9 || (maj === 9 && min >= 8)) c.push('PerSourcePenalties no');
      c.push(...bottom);
      return c;
    };

    return await withPortRetry(async (port) => {
      const config = lines(port).join('\n') + '\n';
      const configPath = join(dir, 'sshd_config');
      writeFileSync(configPath, config, { mode: 0o644 });
      // sshd re-executes itself for every connection: it must be started by absolute path.
      const { peer, banner } = await startDaemon('sshd', sshd, ['-D', '-e', '-f', configPath], join(dir, `sshd-${port}.log`), port);
      const server = Object.assign(
        serverHandle(peer, { kind: 'openssh' as const, port, dir, banner, hostKeys, user }, authorize, () => {
          removeTempDir(dir);
        }),
        { configPath, config },
      ) as SshdServer;
      return server;
    });
  } catch (e) {
    return failStart(null, () => removeTempDir(dir), e);
  }
}
