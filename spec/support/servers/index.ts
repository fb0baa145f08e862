/**
 * Harnesses that start real SSH peers for the test suite (DESIGN.md section 5): OpenSSH sshd,
 * Dropbear, Paramiko and AsyncSSH servers, ssh-agent. Each listens on 127.0.0.1 only, on a port it
 * picks, with throw-away keys and config in a temp dir; `stop()` kills it by PID (and what it
 * started) and removes the dir; a process 'exit' hook and a parent-death signal kill whatever a
 * failed or killed test run left behind. Peers log to a file (`log()`, `waitForLog()`), never to a
 * pipe: the library's blocking calls park the main thread, which could not drain one.
 *
 * ```ts
 * import { hasPeer, itWithPeers } from './support/peers';
 * import { generateKey, SshdServer, startSshd } from './support/servers';
 *
 * let server: SshdServer;
 * beforeAll(async () => {
 *   if (!hasPeer('sshd')) return;                           // itWithPeers reports the missing peer
 *   server = await startSshd({ ciphers: ['aes128-ctr'] });   // throws with sshd's output if it fails
 *   server.authorize(generateKey(join(dir, 'id'), 'ed25519').publicKey);
 * });
 * afterAll(() => server?.stop());
 *
 * itWithPeers(['sshd'], 'logs in', () => {
 *   client.connect(server.host, { port: server.port, username: server.user.username, password: server.user.password });
 * });
 * ```
 *
 * As root (CI), logins are as the system user `pts-test` (password TEST_PASSWORD, home
 * /home/pts-test, shell /bin/sh), created on first use. Not root: the current user, public keys
 * only, and no dropbear.
 */
export { startAgent } from './agent';
export type { AddOptions, Agent, AgentOptions } from './agent';
export { asyncsshClient, dbclientExec, opensshExec, paramikoClient, paramikoExec, plinkExec, sshAudit, terrapinCheck } from './clients';
export type {
  AuditLevel,
  ClientResult,
  ClientTarget,
  DbclientOptions,
  ExecResult,
  OpensshExecOptions,
  OpensshResult,
  ParamikoExecOptions,
  PlinkOptions,
  PtyOptions,
  PtyResult,
  PtyStep,
  PythonClientOptions,
  PythonClientResult,
  SshAuditFinding,
  SshAuditResult,
  TerrapinCheck,
} from './clients';
export { startDropbear } from './dropbear';
export type { DropbearOptions, DropbearServer } from './dropbear';
export { describeKey, fingerprintOf, generateKey, signCertificate, stripComment } from './keys';
export type { CertificateOptions, KeyPair, KeyType } from './keys';
export { freePort, LOCALHOST, readBanner, withPortRetry } from './ports';
export { isRoot, pidAlive } from './process';
export { startAsyncsshServer, startParamikoServer } from './python-servers';
export type { PythonServer, PythonServerOptions } from './python-servers';
export { opensshVersion, startSshd } from './sshd';
export type { SshdOptions, SshdServer } from './sshd';
export { knownHostsName } from './types';
export type { HostKey, SshServer } from './types';
export { ensureTestUser, TEST_PASSWORD, TEST_USERNAME } from './users';
export type { TestUser } from './users';
