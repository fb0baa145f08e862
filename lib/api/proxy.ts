/**
 * Paramiko's ProxyCommand: `new ProxyCommand('ssh -W %h:%p jump')` as the `sock` of a Transport
 * or SSHClient.connect. The command runs in the transport worker through `/bin/sh -c`, as
 * OpenSSH runs it, and its stdin/stdout carry the connection; if it dies, the connection fails
 * with ProxyCommandFailure carrying its stderr.
 */
export class ProxyCommand {
  closed = false;
  constructor(readonly commandLine: string) {
    if (!commandLine.trim()) throw new TypeError('ProxyCommand needs a command');
  }

  /** The process belongs to the Transport that uses it and ends with it. */
  close(): void {
    this.closed = true;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
