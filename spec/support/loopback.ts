/**
 * This library's server transports on a listener of 127.0.0.1, with one host key: for specs
 * that serve a ServerInterface to peers, or to this library's own client in the same thread.
 * Create it in beforeAll, `closeTransports()` after each test, `close()` after all.
 */
import { Ed25519Key, Event, listen, Socket, Transport } from '../../lib';
import type { Listener, ServerInterface } from '../../lib';

export class Loopback {
  readonly hostKey = Ed25519Key.generate();
  readonly listener: Listener = listen('127.0.0.1', 0);
  readonly port = this.listener.getsockname()[1];
  private readonly transports: Transport[] = [];

  /** Closes `t` with the others in closeTransports(). */
  track<T extends Transport>(t: T): T {
    this.transports.push(t);
    return t;
  }

  /**
   * Accepts the next connection and starts a server transport on it with `server`: blocks until
   * the key exchange is done, or with an `event`, returns at once and sets it then.
   */
  serve(server: ServerInterface, event: Event | null = null): Transport {
    const [sock, addr] = this.listener.accept(20);
    if (addr[0] !== '127.0.0.1') throw new Error(`a connection from ${addr[0]}, not 127.0.0.1`);
    const st = this.track(new Transport(sock));
    st.addServerKey(this.hostKey);
    st.startServer(event, server);
    return st;
  }

  /**
   * This library's client connected to a server transport serving `server`, both driven by
   * this thread: connect first (the kernel queues it), accept, start the server without waiting,
   * then the client's blocking calls carry both sides. Returns after the key exchange.
   */
  pair(server: ServerInterface): { st: Transport; ct: Transport } {
    const sock = Socket.createConnection(['127.0.0.1', this.port], 10);
    const started = new Event();
    const st = this.serve(server, started);
    const ct = this.track(new Transport(sock));
    ct.startClient({ timeout: 10 });
    if (!started.wait(10)) throw new Error('the server transport did not finish its key exchange');
    return { st, ct };
  }

  closeTransports(): void {
    for (const t of this.transports.splice(0)) t.close();
  }

  close(): void {
    this.closeTransports();
    this.listener.close();
  }
}
