import net from 'node:net';
import { once, PeerProcess, PeerStartError, sleep } from './process';
import { authorizeArgs, knownHostsText } from './types';
import type { SshServer } from './types';

export const LOCALHOST = '127.0.0.1';
/** How long a peer may take to start answering with its SSH banner. */
export const READY_TIMEOUT_MS = 10_000;

/**
 * A port that was free a moment ago: bind port 0 on 127.0.0.1, read it, close. Another process may
 * take it before the peer binds it, so peers are started through `withPortRetry`.
 */
export function freePort(host = LOCALHOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Picks a port and runs `start(port)`; when the peer fails because the port was taken meanwhile
 * (a PeerStartError with addressInUse), tries again with a new port.
 */
export async function withPortRetry<T>(start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (e) {
      last = e;
      if (!(e instanceof PeerStartError && e.addressInUse)) throw e;
    }
  }
  throw last;
}

/** How a probe greets: `speakFirst` sends our identification on connecting (TinySSH waits for it). */
export interface BannerOptions {
  speakFirst?: boolean;
}

const PROBE_IDENTIFICATION = 'SSH-2.0-pts_probe\r\n';

/**
 * One attempt: connect, read lines until one starts with "SSH-". Resolves with that line, or null
 * when the connection was refused/reset or no banner came in time.
 */
export function readBanner(host: string, port: number, timeoutMs = 2000, { speakFirst = false }: BannerOptions = {}): Promise<string | null> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const sock = net.connect({ host, port });
    if (speakFirst) sock.once('connect', () => sock.write(PROBE_IDENTIFICATION));
    const finish = (v: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (v) {
        // Answer with a banner of our own before leaving, so servers log a plain "connection
        // closed" rather than a banner error with a stack trace (Paramiko does).
        sock.end(speakFirst ? '' : PROBE_IDENTIFICATION);
        sock.once('close', () => undefined);
        setTimeout(() => sock.destroy(), 200).unref();
      } else {
        sock.destroy();
      }
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        if (line.startsWith('SSH-')) return finish(line);
      }
      if (buf.length > 8192) finish(null);
    });
  });
}

/**
 * Polls the peer's port until it answers with an `SSH-2.0-` (or `SSH-1.99-`) banner. Throws a
 * PeerStartError carrying the peer's output when the peer exits first or `timeoutMs` passes.
 */
export async function waitForBanner(peer: PeerProcess, host: string, port: number, timeoutMs = READY_TIMEOUT_MS, options: BannerOptions = {}): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void peer.exited.then(() => (exited = true));
  for (;;) {
    if (exited || !peer.running) throw new PeerStartError(peer, `exited (${peer.child.signalCode ?? peer.child.exitCode}) before answering on ${host}:${port}`);
    const banner = await readBanner(host, port, Math.max(200, Math.min(2000, deadline - Date.now())), options);
    if (banner && /^SSH-(2\.0|1\.99)-/.test(banner)) return banner;
    if (banner) throw new PeerStartError(peer, `answered with an unexpected banner: ${banner}`);
    if (Date.now() > deadline) throw new PeerStartError(peer, `did not answer with an SSH banner on ${host}:${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The environment daemons are started with. */
const DAEMON_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

/**
 * Starts a daemon that serves SSH on `port` (logging to `logPath`) and waits for its banner; a
 * daemon that gives none is stopped again and the error raised. `stdinPipe`: it gets a pipe that
 * closes when the runner dies.
 */
export async function startDaemon(
  name: string,
  cmd: string,
  args: string[],
  logPath: string,
  port: number,
  options: { stdinPipe?: boolean; banner?: BannerOptions } = {},
): Promise<{ peer: PeerProcess; banner: string }> {
  const peer = new PeerProcess(name, cmd, args, logPath, { env: DAEMON_ENV, stdinPipe: options.stdinPipe });
  try {
    return { peer, banner: await waitForBanner(peer, LOCALHOST, port, undefined, options.banner) };
  } catch (e) {
    await peer.stop(500);
    throw e;
  }
}

/**
 * After a failed start: stop the peer and rethrow. Keeps start functions from leaking a half-started
 * process or its temp dir.
 */
export async function failStart(peer: PeerProcess | null, cleanup: () => void, err: unknown): Promise<never> {
  if (peer) await peer.stop(500);
  cleanup();
  throw err;
}

/**
 * The handle every start function returns, built once: the fields, `authorize`, `knownHosts`,
 * logs, an idempotent `stop` that runs `cleanup` after the process is gone, and a live `running`.
 * Each launcher adds its own fields with Object.assign (a spread would freeze `running`).
 */
export function serverHandle(
  peer: PeerProcess,
  base: Pick<SshServer, 'kind' | 'port' | 'dir' | 'banner' | 'hostKeys' | 'user'>,
  authorize: (username: string, publicKeyLine: string) => void,
  cleanup: () => void,
): SshServer {
  const { port, hostKeys, user } = base;
  return {
    ...base,
    host: LOCALHOST,
    pid: peer.pid,
    authorize: (a: string, b?: string) => authorize(...authorizeArgs(user.username, a, b)),
    knownHosts: () => knownHostsText(LOCALHOST, port, hostKeys),
    log: () => peer.log(),
    waitForLog: (pattern: RegExp, timeoutMs = 5000) => peer.waitForLine(pattern, timeoutMs),
    stop: once(async () => {
      await peer.stop();
      cleanup();
    }),
    get running() {
      return peer.running;
    },
  } as SshServer;
}
