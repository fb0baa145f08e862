import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isRoot } from './servers/process';

/**
 * The real peers the tests run against (DESIGN.md section 5). In CI (CI=true, or
 * PARAMIKO_TS_REQUIRE_PEERS=1) a missing peer fails its tests; elsewhere those tests print a
 * notice and pass, so a developer without the Debian packages can still run the suite.
 */
export type PeerName =
  | 'ssh'
  | 'ssh-keygen'
  | 'ssh-agent'
  | 'sshd'
  | 'sftp'
  | 'scp'
  | 'paramiko'
  | 'asyncssh'
  | 'python-scp'
  | 'dropbear'
  | 'dbclient'
  | 'plink'
  | 'psftp'
  | 'pscp'
  | 'puttygen'
  | 'ssh-audit'
  | 'xauth'
  | 'curl'
  | 'tinysshd'
  | 'proftpd'
  | 'go'
  | 'openssh10';

/**
 * Where .ci/install-openssh10 unpacks OpenSSH 10 (bookworm-backports) beside the system's 9.2:
 * PARAMIKO_TS_OPENSSH10 names another folder.
 */
export const OPENSSH10_ROOT = process.env.PARAMIKO_TS_OPENSSH10 ?? '/opt/paramiko-ts/openssh10';

/**
 * PARAMIKO_TS_OPENSSH=10: the harness runs OpenSSH 10's sshd, ssh, sftp and sftp-server wherever
 * it would run the system's (a developer's check of the whole suite against it; CI runs the
 * system's 9.2 everywhere and OpenSSH 10 in spec/openssh10.spec.ts). The root its programs sit
 * under: '' for the system's.
 */
export const OPENSSH_ROOT = process.env.PARAMIKO_TS_OPENSSH === '10' ? OPENSSH10_ROOT : '';

/** How to find each peer; the Debian package that brings it is named in the notice. */
const PEERS: Record<PeerName, { path: string; pkg: string; python?: string; install?: string }> = {
  ssh: { path: '/usr/bin/ssh', pkg: 'openssh-client' },
  'ssh-keygen': { path: '/usr/bin/ssh-keygen', pkg: 'openssh-client' },
  'ssh-agent': { path: '/usr/bin/ssh-agent', pkg: 'openssh-client' },
  sftp: { path: '/usr/bin/sftp', pkg: 'openssh-client' },
  scp: { path: '/usr/bin/scp', pkg: 'openssh-client' },
  sshd: { path: '/usr/sbin/sshd', pkg: 'openssh-server' },
  // Debian's Paramiko and AsyncSSH import only under the system interpreter.
  paramiko: { path: '/usr/bin/python3', pkg: 'python3-paramiko', python: 'paramiko' },
  asyncssh: { path: '/usr/bin/python3', pkg: 'python3-asyncssh', python: 'asyncssh' },
  // The `scp` package Paramiko users copy files with (SCPClient over a Paramiko transport).
  'python-scp': { path: '/usr/bin/python3', pkg: 'python3-scp', python: 'scp' },
  dropbear: { path: '/usr/sbin/dropbear', pkg: 'dropbear-bin' },
  dbclient: { path: '/usr/bin/dbclient', pkg: 'dropbear-bin' },
  plink: { path: '/usr/bin/plink', pkg: 'putty-tools' },
  psftp: { path: '/usr/bin/psftp', pkg: 'putty-tools' },
  pscp: { path: '/usr/bin/pscp', pkg: 'putty-tools' },
  puttygen: { path: '/usr/bin/puttygen', pkg: 'putty-tools' },
  'ssh-audit': { path: '/usr/bin/ssh-audit', pkg: 'ssh-audit' },
  // sshd runs it to store the forwarded X11 cookie; without it sshd refuses x11-req.
  xauth: { path: '/usr/bin/xauth', pkg: 'xauth' },
  // A SOCKS client (4, 4a, 5) for Transport.forwardSocks.
  curl: { path: '/usr/bin/curl', pkg: 'curl' },
  // TinySSH: only curve25519/sntrup761, Ed25519 and ChaCha20-Poly1305, an implementation of its own.
  tinysshd: { path: '/usr/sbin/tinysshd', pkg: 'tinysshd' },
  // ProFTPD's mod_sftp: SFTP and SCP of hosting providers, its own SSH implementation.
  proftpd: { path: '/usr/lib/proftpd/mod_sftp.so', pkg: 'proftpd-core proftpd-mod-crypto' },
  // Go's golang.org/x/crypto/ssh and github.com/pkg/sftp (Gitea, Teleport, many cloud SFTP
  // services), built by spec/support/servers/go.ts from Debian's sources: the SFTP package marks
  // the three being there.
  go: { path: '/usr/share/gocode/src/github.com/pkg/sftp/server.go', pkg: 'golang-go golang-golang-x-crypto-dev golang-github-pkg-sftp-dev' },
  // ssh, sshd and sftp of OpenSSH 10 (mlkem768x25519-sha256 by default, no DSA).
  openssh10: { path: `${OPENSSH10_ROOT}/usr/sbin/sshd`, pkg: 'OpenSSH 10 from bookworm-backports', install: '.ci/install-openssh10' },
};

/** How to install a peer, for the messages. */
const installHint = (n: PeerName) => PEERS[n].install ?? `apt-get install ${PEERS[n].pkg}`;

export const peersRequired = (): boolean =>
  (Boolean(process.env.CI) && process.env.CI !== 'false') || process.env.PARAMIKO_TS_REQUIRE_PEERS === '1';

const found = new Map<PeerName, boolean>();

/** Whether a peer is installed (cached). */
export function hasPeer(name: PeerName): boolean {
  let ok = found.get(name);
  if (ok === undefined) {
    const p = PEERS[name];
    ok = existsSync(p.path);
    if (ok && p.python) ok = spawnSync(p.path, ['-c', `import ${p.python}`], { stdio: 'ignore' }).status === 0;
    found.set(name, ok);
  }
  return ok;
}

/** The executable of a peer. */
export function peerPath(name: PeerName): string {
  return PEERS[name].path;
}

/** Every peer that is missing, with its package. */
export function missingPeers(): string[] {
  return (Object.keys(PEERS) as PeerName[]).filter((n) => !hasPeer(n)).map((n) => `${n} (${PEERS[n].pkg})`);
}

/**
 * `it` for a test that needs real peers. When one is missing: fails in CI, prints a notice and
 * passes elsewhere (never a silent skip).
 */
export function itWithPeers(peers: PeerName[], name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  const missing = peers.filter((p) => !hasPeer(p));
  if (missing.length === 0) {
    it(name, fn, timeout);
  } else if (peersRequired()) {
    it(name, () => {
      throw new Error(`peer missing: ${missing.map((m) => `${m} (${installHint(m)})`).join(', ')}`);
    });
  } else {
    it(name, () => {
      console.warn(`NOTICE: not run, peer missing: ${missing.map((m) => `${m} (${PEERS[m].pkg})`).join(', ')}: ${name}`);
    });
  }
}

/**
 * itWithPeers for a peer that runs only as root (Dropbear logs users in by uid and reads
 * /etc/shadow): not being root counts as the peer missing, so CI fails and a developer sees
 * the notice, instead of the test being skipped.
 */
export function itWithRootPeers(peers: PeerName[], name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  if (isRoot() || peers.some((p) => !hasPeer(p))) return itWithPeers(peers, name, fn, timeout);
  it(name, () => {
    if (peersRequired()) throw new Error(`${peers.join(', ')} needs root (run the tests as root)`);
    console.warn(`NOTICE: not run, ${peers.join(', ')} needs root: ${name}`);
  });
}

/** Runs a peer command; throws with its stderr when it fails. */
export function runPeer(cmd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { input: options.input, env: options.env ?? process.env, cwd: options.cwd, timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
  }
  return r.stdout.toString();
}
