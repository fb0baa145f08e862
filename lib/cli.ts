#!/usr/bin/env node
/**
 * `npx paramiko-ts serve [options]`: the embedded SSHServer from the command line, for trying a
 * client or serving a test fixture. Runs until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { getBridge } from './bridge';
import { SSHServer } from './api/ssh-server';
import type { SSHServerUser } from './api/ssh-server';

const USAGE = `usage: paramiko-ts serve [options]

  --host ADDR              address to listen on (default 127.0.0.1)
  --port N                 port (default 2222; 0 picks a free one)
  --user NAME:PASSWORD     an account with a password (repeatable)
  --user-key NAME:FILE     an account whose authorized_keys file is FILE (repeatable)
  --host-key FILE          a private host key (repeatable; default: generated ed25519 + rsa)
  --auth-methods LIST      methods to pass in turn, e.g. publickey,password
  --banner TEXT            pre-auth banner
  --no-exec                refuse exec and shell requests (and SFTP, unless an --sftp option is given)
  --sftp-root DIR          serve SFTP jailed in DIR (default: the whole filesystem, /)
  --sftp-read-only         SFTP refuses every change
  --no-sftp                refuse the sftp subsystem
  --scp                    serve scp -t / scp -f in the SFTP jail (even with --no-exec)
  --no-forwarding          refuse TCP and unix socket forwarding (ssh -L, -R, -D, -J; on by default with exec)
  --no-agent-forwarding    refuse agent forwarding (ssh -A; on by default with exec)
  --shell PATH             shell for sessions (default $SHELL or /bin/sh)
  --log FILE               append log lines to FILE (they also go to stderr)
`;

function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command !== 'serve') {
    process.stderr.write(command === undefined || command === '--help' || command === '-h' ? USAGE : `unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return command === '--help' || command === '-h' ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '2222' },
      user: { type: 'string', multiple: true, default: [] },
      'user-key': { type: 'string', multiple: true, default: [] },
      'host-key': { type: 'string', multiple: true, default: [] },
      'auth-methods': { type: 'string' },
      banner: { type: 'string' },
      'no-exec': { type: 'boolean', default: false },
      'sftp-root': { type: 'string' },
      'sftp-read-only': { type: 'boolean', default: false },
      'no-sftp': { type: 'boolean', default: false },
      scp: { type: 'boolean', default: false },
      'no-forwarding': { type: 'boolean', default: false },
      'no-agent-forwarding': { type: 'boolean', default: false },
      shell: { type: 'string' },
      log: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const users: Record<string, { password?: string; authorizedKeysFile?: string }> = {};
  for (const spec of values.user ?? []) {
    const i = spec.indexOf(':');
    if (i <= 0) throw new TypeError(`--user wants NAME:PASSWORD, not ${JSON.stringify(spec)}`);
    (users[spec.slice(0, i)] ??= {}).password = spec.slice(i + 1);
  }
  for (const spec of values['user-key'] ?? []) {
    const i = spec.indexOf(':');
    if (i <= 0) throw new TypeError(`--user-key wants NAME:FILE, not ${JSON.stringify(spec)}`);
    (users[spec.slice(0, i)] ??= {}).authorizedKeysFile = spec.slice(i + 1);
  }
  const sftpGiven = values['sftp-root'] !== undefined || values['sftp-read-only'];
  if (values['no-sftp'] && sftpGiven) throw new TypeError('--no-sftp contradicts --sftp-root and --sftp-read-only');
  // Unset: SSHServer's default (on, unless exec is refused).
  let sftp: boolean | { root?: string; readOnly: boolean } | undefined = values['no-sftp'] ? false : sftpGiven ? { root: values['sftp-root'], readOnly: values['sftp-read-only'] } : undefined;
  if (values.scp && sftp === false) throw new TypeError('--scp serves in the SFTP jail: it contradicts --no-sftp');
  // SCP needs the jail even where SFTP would be off by default (--no-exec): the whole filesystem then.
  if (values.scp && sftp === undefined) sftp = true;
  if (!Object.keys(users).length) throw new TypeError('no account: give --user NAME:PASSWORD or --user-key NAME:FILE');
  const server = SSHServer.start({
    host: values.host,
    port: Number(values.port),
    users: users as Record<string, SSHServerUser>,
    hostKeys: values['host-key']?.length ? values['host-key'] : undefined,
    authMethods: values['auth-methods'] ? values['auth-methods'].split(',') : null,
    banner: values.banner ?? null,
    exec: !values['no-exec'],
    sftp,
    scp: values.scp,
    forwarding: values['no-forwarding'] ? false : undefined,
    agentForwarding: values['no-agent-forwarding'] ? false : undefined,
    shell: values.shell,
    logFile: values.log ?? null,
  });
  process.stderr.write(`paramiko-ts: SSH server on ${server.host} port ${server.port}\n`);
  for (const k of server.hostKeys) process.stderr.write(`  host key ${k.getName()} ${k.fingerprint}\n`);
  // The worker is unref'd: keep the process alive, and print the log as it grows.
  let next = 0;
  const timer = setInterval(() => {
    const r = server.logSince(next);
    for (const l of r.lines) process.stderr.write(l + '\n');
    next = r.next;
  }, 500);
  const stop = () => {
    clearInterval(timer);
    server.close();
    void getBridge().close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return -1;
}

try {
  const code = main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
} catch (e) {
  process.stderr.write(`paramiko-ts: ${(e as Error).message}\n`);
  process.exitCode = 2;
}
