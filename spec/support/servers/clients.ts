import { spawn } from 'node:child_process';

/**
 * Reference clients (OpenSSH's ssh, Paramiko's client) run against a started server: the harness's
 * own tests use them, and other tests can compare this library's results with theirs.
 */

export interface ExecResult {
  /** Exit status of the remote command as the client reports it (ssh: 255 on connection/auth errors). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Target {
  host: string;
  port: number;
  user: { username: string };
}

function run(cmd: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface OpensshExecOptions {
  /** Private key file (-i, with IdentitiesOnly). */
  identity?: string;
  /** Default: the server's test user. */
  username?: string;
  /** Check the host key against this known_hosts file (StrictHostKeyChecking yes); default: no checking. */
  knownHostsFile?: string;
  /** An agent socket to use (IdentityAgent); default: none. */
  agentSocket?: string;
  /** More -o options, e.g. ['Ciphers=aes128-ctr'] (they take precedence over the defaults). */
  options?: string[];
  input?: string | Buffer;
  timeoutMs?: number;
}

/**
 * `ssh -F /dev/null -o BatchMode=yes ... -p <port> <user>@127.0.0.1 <command>` (OpenSSH's client,
 * non-interactive: passwords are not possible here, use paramikoExec).
 */
export function opensshExec(server: Target, command: string, options: OpensshExecOptions = {}): Promise<ExecResult> {
  // ssh keeps the first value of an option: the caller's come first.
  const args = ['-F', '/dev/null'];
  for (const o of options.options ?? []) args.push('-o', o);
  args.push('-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10');
  if (options.knownHostsFile) {
    args.push('-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${options.knownHostsFile}`);
  } else {
    args.push('-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null');
  }
  args.push('-o', `IdentityAgent=${options.agentSocket ?? 'none'}`);
  if (options.identity) args.push('-o', 'IdentitiesOnly=yes', '-i', options.identity);
  args.push('-p', String(server.port), `${options.username ?? server.user.username}@${server.host}`, command);
  return run('/usr/bin/ssh', args, { input: options.input, timeoutMs: options.timeoutMs, env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8', TERM: 'xterm' } });
}

export interface ParamikoExecOptions {
  username?: string;
  /** Password auth (or the answer to keyboard-interactive prompts with `interactive`). */
  password?: string;
  /** Use keyboard-interactive (answering every prompt with `password`) instead of password auth. */
  interactive?: boolean;
  /** Private key file for publickey auth. */
  keyFilename?: string;
  input?: string | Buffer;
  timeoutMs?: number;
}

const PARAMIKO_CLIENT = `
import base64, json, sys, traceback, warnings
warnings.filterwarnings('ignore')
import paramiko

def load_key(path):
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey, paramiko.DSSKey):
        try:
            return cls.from_private_key_file(path)
        except Exception:
            pass
    raise ValueError('cannot load key ' + path)

try:
    a = json.loads(sys.argv[1])
    t = paramiko.Transport((a['host'], a['port']))
    t.start_client(timeout=15)
    if a.get('key'):
        t.auth_publickey(a['user'], load_key(a['key']))
    elif a.get('interactive'):
        t.auth_interactive(a['user'], lambda title, instructions, prompts: [a['password'] for _ in prompts])
    else:
        t.auth_password(a['user'], a['password'])
    ch = t.open_session()
    ch.exec_command(a['command'])
    data = base64.b64decode(a['input'])
    if data:
        ch.sendall(data)
    ch.shutdown_write()
    out = ch.makefile('rb').read()
    err = ch.makefile_stderr('rb').read()
    status = ch.recv_exit_status()
    t.close()
    print(json.dumps({'status': status, 'stdout': base64.b64encode(out).decode(), 'stderr': base64.b64encode(err).decode()}))
except Exception as e:
    print(json.dumps({'error': '%s: %s' % (type(e).__name__, e), 'trace': traceback.format_exc()}))
`;

/**
 * Runs `command` through Paramiko's client (Transport, then one session channel): the way to test
 * password and keyboard-interactive logins, which ssh in batch mode cannot do. Rejects when the
 * connection or authentication fails, with Paramiko's exception name and message.
 */
export async function paramikoExec(server: Target, command: string, options: ParamikoExecOptions = {}): Promise<ExecResult> {
  const input = options.input === undefined ? '' : Buffer.from(options.input).toString('base64');
  const spec = {
    host: server.host,
    port: server.port,
    user: options.username ?? server.user.username,
    password: options.password,
    interactive: options.interactive ?? false,
    key: options.keyFilename,
    command,
    input,
  };
  const r = await run('/usr/bin/python3', ['-W', 'ignore', '-c', PARAMIKO_CLIENT.replace(/^\n/, ''), JSON.stringify(spec)], {
    timeoutMs: options.timeoutMs,
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let j: { status: number; stdout: string; stderr: string; error?: string; trace?: string };
  try {
    j = JSON.parse(last);
  } catch {
    throw new Error(`paramiko client failed (exit ${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
  }
  // Connection and authentication failures reject, with Paramiko's exception: "AuthenticationException: ...".
  if (j.error) throw new Error(`paramiko client: ${j.error}`);
  return { status: j.status, signal: null, stdout: Buffer.from(j.stdout, 'base64').toString('utf8'), stderr: Buffer.from(j.stderr, 'base64').toString('utf8') };
}
