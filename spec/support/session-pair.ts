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
): { client: Endpoint; server: Endpoint; pump(): void } {
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
      (fromClient ? s : c).session.receive(d);
    }
  };
  return { client: c, server: s, pump };
}
