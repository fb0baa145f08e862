/**
 * Paramiko's server API run on the test's own (main) thread, for SFTP: a listener on 127.0.0.1,
 * a host key, one client key that publickey auth accepts (written to `clientKeyPath`, with a
 * comment: Paramiko misreads OpenSSH key files whose comment is empty), and `serveOnce` to
 * accept one connection and serve the SFTP subsystem through an SFTPServerInterface.
 */
import * as path from 'node:path';
import {
  AUTH_FAILED,
  AUTH_SUCCESSFUL,
  Ed25519Key,
  Event,
  listen,
  OPEN_SUCCEEDED,
  SFTPServer,
  ServerInterface,
  Transport,
} from '../../../lib';
import type { Channel, Listener, PKey, SFTPServerInterface } from '../../../lib';

/** Accepts sessions and publickey logins with one key only. */
class OneKeyServer extends ServerInterface {
  constructor(private readonly clientKey: PKey) {
    super();
  }
  override checkChannelRequest(): number {
    return OPEN_SUCCEEDED;
  }
  override getAllowedAuths(): string {
    return 'publickey';
  }
  override checkAuthPublickey(_u: string, key: PKey): number {
    return key.equals(this.clientKey) ? AUTH_SUCCESSFUL : AUTH_FAILED;
  }
}

export class MainThreadSftpServer {
  readonly hostKey = Ed25519Key.generate();
  readonly clientKey = Ed25519Key.generate();
  readonly clientKeyPath: string;
  readonly port: number;
  private readonly listener: Listener;

  /** `dir` receives the client key file. */
  constructor(
    dir: string,
    private readonly iface: typeof SFTPServerInterface,
  ) {
    this.clientKey.comment = 'sftp@test';
    this.clientKeyPath = path.join(dir, 'id_ed25519');
    this.clientKey.writePrivateKeyFile(this.clientKeyPath);
    this.listener = listen('127.0.0.1', 0);
    this.port = this.listener.getsockname()[1];
  }

  /**
   * Accepts one connection and serves SFTP until the client's session ends (the subsystem runs
   * inside this wait: callbacks while the main thread is blocked), or `limitMs` passes.
   */
  serveOnce(limitMs: number): void {
    const [sock] = this.listener.accept(20);
    const t = new Transport(sock);
    try {
      t.addServerKey(this.hostKey);
      t.setSubsystemHandler('sftp', SFTPServer, this.iface);
      t.startServer({ server: new OneKeyServer(this.clientKey) });
      const ch: Channel | null = t.accept(20);
      expect(ch).not.toBeNull();
      const deadline = Date.now() + limitMs;
      while (!ch!.closed && Date.now() < deadline) new Event().wait(0.05);
    } finally {
      t.close();
    }
  }

  close(): void {
    this.listener.close();
  }
}
