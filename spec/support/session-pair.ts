import { Session, SessionOptions } from '../../lib/transport/session';
import type { Message } from '../../lib/wire/message';
import { defaultPreferences } from '../../lib/transport/algorithms';

/** Two Sessions wired back to back in memory: a handshake without any network. */
export interface Endpoint {
  session: Session;
  messages: Array<[number, Buffer]>;
  kexDone: number;
  closed: Error | null | undefined;
  /** Wire bytes this side wrote (for tampering tests). */
  written: Buffer[];
}

export function sessionPair(
  client: Partial<SessionOptions>,
  server: Partial<SessionOptions>,
  tamper?: (fromClient: boolean, data: Buffer) => Buffer,
  /**
   * Deliver as a socket reading into one reused buffer does: pieces of 1-5000 bytes, each
   * passed as transient and the buffer scribbled over after each call.
   */
  transient = false,
): { client: Endpoint; server: Endpoint; pump(): void } {
  const readBuffer = Buffer.alloc(5000);
  let seed = 7;
  const pieceSize = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 5000 + 1;
  const queue: Array<[boolean, Buffer]> = [];
  const make = (isClient: boolean, opts: Partial<SessionOptions>): Endpoint => {
    const ep: Endpoint = { session: null as unknown as Session, messages: [], kexDone: 0, closed: undefined, written: [] };
    ep.session = new Session(
      { role: isClient ? 'client' : 'server', preferences: defaultPreferences(), ...opts },
      {
        write: (d) => {
          // Kept as written, copied only when delivered: a sender that reused a buffer it had
          // handed over (the packet codec's scratch) would corrupt what is still queued.
          ep.written.push(d);
          queue.push([isClient, d]);
        },
        message: (type: number, msg: Message) => ep.messages.push([type, Buffer.from(msg.getRemainder())]),
        kexDone: () => ep.kexDone++,
        closed: (e) => (ep.closed = e),
      },
    );
    return ep;
  };
  const c = make(true, client);
  const s = make(false, server);
  const pump = () => {
    for (let i = 0; queue.length && i < 100000; i++) {
      const [fromClient, written] = queue.shift()!;
      const data = Buffer.from(written);
      const d = tamper ? tamper(fromClient, data) : data;
      const to = (fromClient ? s : c).session;
      if (!transient) {
        to.receive(d);
        continue;
      }
      for (let at = 0; at < d.length; ) {
        const n = d.copy(readBuffer, 0, at, at + pieceSize());
        to.receive(readBuffer.subarray(0, n), true);
        readBuffer.fill(0xee);
        at += n;
      }
    }
  };
  return { client: c, server: s, pump };
}
