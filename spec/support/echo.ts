import { connect as netConnect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** An echo server on 127.0.0.1 in this process: its events run while the test awaits. */
export async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const srv = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { port: (srv.address() as AddressInfo).port, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

/**
 * Connects to 127.0.0.1:`port`, sends `data`, half-closes, and resolves with everything read
 * until the other end closed (a reset counts as the end); rejects with the connect error.
 */
export function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let connected = false;
    const s = netConnect(port, '127.0.0.1', () => {
      connected = true;
      s.end(data);
    });
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => (connected && e.code === 'ECONNRESET' ? undefined : reject(e)));
    s.on('close', () => resolve(Buffer.concat(parts)));
  });
}
