import { chmodSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An echo server in this process, on 127.0.0.1 (or the unix socket `path`, which anyone may
 * connect to): its events run while the test awaits.
 */
export function echoServer(path?: string): Promise<LocalServer> {
  return serveHere((s) => s.pipe(s), path);
}

interface LocalServer {
  /** 0 on a unix socket. */
  port: number;
  close(): Promise<void>;
}

/** A server in this process running `handle` for each connection, on 127.0.0.1 or the unix socket `path`. */
async function serveHere(handle: (s: Socket) => void, path?: string): Promise<LocalServer> {
  const srv = createServer({ allowHalfOpen: true }, handle);
  await new Promise<void>((r) => (path ? srv.listen(path, () => r()) : srv.listen(0, '127.0.0.1', () => r())));
  if (path) chmodSync(path, 0o777);
  return { port: path ? 0 : (srv.address() as AddressInfo).port, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

/**
 * Connects to 127.0.0.1:`port` (or the unix socket at a path), sends `data`, half-closes, and
 * resolves with everything read until the other end closed (a reset or broken pipe counts as
 * the end); rejects with the connect error.
 */
export function roundTrip(port: number | string, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let connected = false;
    const opened = () => {
      connected = true;
      s.end(data);
    };
    const s = typeof port === 'string' ? netConnect({ path: port }, opened) : netConnect(port, '127.0.0.1', opened);
    s.on('data', (d: Buffer) => parts.push(d));
    // Once connected, a reset (TCP) or a broken pipe (a unix socket the other end closed) is the end.
    s.on('error', (e: NodeJS.ErrnoException) => (connected && (e.code === 'ECONNRESET' || e.code === 'EPIPE') ? undefined : reject(e)));
    s.on('close', () => resolve(Buffer.concat(parts)));
  });
}

/**
 * Whether connections to `target` (a port on 127.0.0.1, or a unix socket path) are refused
 * within `timeoutMs`: a listener closed by a cancel that wants no reply goes away a little later.
 */
export async function refusedWithin(target: number | string, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const refused = await roundTrip(target, Buffer.from('x')).then(
      () => false,
      (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED' || e.code === 'ENOENT',
    );
    if (refused || Date.now() > deadline) return refused;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server that speaks first (as SMTP, FTP and SSH servers do): `banner` on connect, then echo. */
function bannerServer(banner: string): Promise<LocalServer> {
  return serveHere((s) => {
    s.write(banner);
    s.pipe(s);
  });
}

/** Connects to 127.0.0.1:`port` and resolves with what arrives before `timeoutMs` while we send nothing. */
export function firstWords(port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = netConnect(port, '127.0.0.1');
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, timeoutMs);
  });
}

/**
 * What a client of the forward that `forward(destPort)` opens hears first, sending nothing, when
 * the destination is a server that greets first ('220 hello first\n'); the forward is closed after.
 */
export async function greetingThrough(forward: (destPort: number) => { port: number; close(): void }): Promise<string> {
  const greeter = await bannerServer('220 hello first\n');
  try {
    const fwd = forward(greeter.port);
    try {
      return await firstWords(fwd.port);
    } finally {
      fwd.close();
    }
  } finally {
    await greeter.close();
  }
}
