'use strict';
// A throw-away OpenSSH sshd on 127.0.0.1 for the benchmarks: fresh ed25519 host and user keys in
// a temp dir, a free port, key login for the current user, `SetEnv HOME=<temp dir>` so the login
// shell's rc files (pyenv and the like) do not slow every command. Plain JS, no build step: the
// test harness's launcher (spec/support/servers/sshd.ts) is TypeScript.
//
//   const sshd = await startSshd();   // { host, port, user, keyPath, knownHostsPath, ... }
//   ...
//   sshd.finishedSessionsCpu();       // CPU seconds of the sessions that have ended (sshd's share of a run)
//   sshd.stop();                      // also done on exit, SIGINT and SIGTERM, always
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const SSHD = '/usr/sbin/sshd';
const running = new Set();

function killAll() {
  for (const s of running) s.stop();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(128 + os.constants.signals[sig]);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves with the server's identification line once the port answers. */
function waitForBanner(port, child, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`sshd exited (${child.exitCode ?? child.signalCode}) before answering`));
        return;
      }
      if (Date.now() > deadline) {
        reject(new Error(`sshd did not answer on 127.0.0.1:${port} within ${timeoutMs} ms`));
        return;
      }
      const s = net.connect(port, '127.0.0.1');
      let buf = '';
      s.setEncoding('latin1');
      s.on('data', (d) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          s.destroy();
          resolve(buf.slice(0, nl).trim());
        }
      });
      s.on('error', () => {
        s.destroy();
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * Starts `sshd -D -e -f <config>`. Options: `ciphers` (sshd_config `Ciphers` value),
 * `extraConfig` (lines), `root` (a folder holding another OpenSSH's usr/sbin/sshd and
 * usr/lib/openssh, as .ci/install-openssh10 unpacks OpenSSH 10). Returns once the port answers
 * with a banner.
 */
async function startSshd(options = {}) {
  if (process.getuid && process.getuid() === 0) {
    // sshd run as root refuses to start without its privilege separation dir.
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-bench-sshd-'));
  let child = null;
  const server = {
    dir,
    host: '127.0.0.1',
    port: 0,
    user: os.userInfo().username,
    child: null,
    stop() {
      if (!running.has(server)) return;
      running.delete(server);
      if (child && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {}
      }
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {}
    },
  };
  running.add(server);
  try {
    const hostKey = path.join(dir, 'ssh_host_ed25519_key');
    const userKey = path.join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pts-bench host', '-f', hostKey]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pts-bench user', '-f', userKey]);
    const authorizedKeys = path.join(dir, 'authorized_keys');
    fs.copyFileSync(userKey + '.pub', authorizedKeys);
    fs.chmodSync(authorizedKeys, 0o644);
    const home = path.join(dir, 'home');
    fs.mkdirSync(home);

    server.port = await freePort();
    const config = [
      '# written by bench/support/sshd.js',
      ...(options.extraConfig ?? []),
      ...(options.ciphers ? [`Ciphers ${options.ciphers}`] : []),
      ...(options.root ? [`SshdSessionPath ${options.root}/usr/lib/openssh/sshd-session`, `SshdAuthPath ${options.root}/usr/lib/openssh/sshd-auth`] : []),
      'ListenAddress 127.0.0.1',
      `Port ${server.port}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'StrictModes no',
      'UsePAM no',
      'LogLevel ERROR',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `SetEnv HOME=${home}`,
      'Subsystem sftp internal-sftp',
      'MaxStartups 100',
      'MaxSessions 100',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      '',
    ].join('\n');
    const configPath = path.join(dir, 'sshd_config');
    fs.writeFileSync(configPath, config, { mode: 0o644 });

    const log = fs.openSync(path.join(dir, 'sshd.log'), 'a');
    // sshd re-executes itself for every connection: it must be started by absolute path.
    child = spawn(options.root ? `${options.root}/usr/sbin/sshd` : SSHD, ['-D', '-e', '-f', configPath], {
      stdio: ['ignore', log, log],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    });
    fs.closeSync(log);
    child.unref();
    server.child = child;
    server.banner = await waitForBanner(server.port, child);

    const hostPub = fs.readFileSync(hostKey + '.pub', 'utf8').trim().split(/\s+/);
    server.hostKeyType = hostPub[0];
    server.hostKeyBase64 = hostPub[1];
    server.hostKeyBlob = Buffer.from(hostPub[1], 'base64');
    server.knownHostsPath = path.join(dir, 'known_hosts');
    fs.writeFileSync(server.knownHostsPath, `[127.0.0.1]:${server.port} ${hostPub[0]} ${hostPub[1]}\n`);
    server.keyPath = userKey;
    server.configPath = configPath;
    /**
     * CPU seconds (user + system) of every connection this sshd has served to the end: its session
     * processes and all they ran (head, internal-sftp), which the listener counts once it has
     * reaped them. Waits up to 5 s for sessions still running (a client that just closed) to end
     * first, so a reading taken right after a run includes that run's session.
     */
    server.finishedSessionsCpu = () => {
      const pid = child.pid;
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 250 && spawnSync('pgrep', ['-P', String(pid)], { stdio: 'ignore' }).status === 0; i++) Atomics.wait(sleeper, 0, 0, 20);
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime, in USER_HZ ticks
    };
    server.log = () => {
      try {
        return fs.readFileSync(path.join(dir, 'sshd.log'), 'utf8');
      } catch {
        return '';
      }
    };
    return server;
  } catch (err) {
    server.stop();
    throw err;
  }
}

module.exports = { startSshd, SSHD };
