import { getBridge } from '../bridge';
import { SSHException } from '../errors';
import { PortForwarder } from '../api/transport';
import type { Transport } from '../api/transport';
import { Agent } from './agent';
import type { AgentKey } from './agent-key';

/**
 * Paramiko's AgentServerProxy, for a server whose client forwards its agent: a local socket
 * (in a fresh 0700 directory) that programs on this machine use as SSH_AUTH_SOCK (`getEnv()`);
 * each connection to it becomes an agent channel to the client (openForwardAgentChannel),
 * joined in the worker. `getKeys()` lists the client's keys through it. The socket and its
 * directory go with `close()` or the transport.
 */
export class AgentServerProxy {
  private readonly path: string;
  /** The worker's listener on `path`: stopped as a forwarder is. */
  private readonly listener: PortForwarder;
  private closed = false;

  constructor(readonly transport: Transport) {
    if (transport.id === null || !transport.isActive()) throw new SSHException('AgentServerProxy needs an active transport');
    const r = getBridge().call<{ forwarder: number; path: string }>('transport', 'agentProxy', { id: transport.id }, 30);
    this.listener = new PortForwarder(transport, r.forwarder, 0);
    this.path = r.path;
  }

  /**
   * Checks that the client takes agent channels (Paramiko opens the proxy's own one here):
   * SSHException ("lost ssh-agent") if it refuses.
   */
  connect(): void {
    let ch;
    try {
      ch = this.transport.openForwardAgentChannel();
    } catch (e) {
      throw new SSHException(`lost ssh-agent: the client refused an agent channel (${(e as Error).message})`, { cause: e });
    }
    ch.close();
  }

  /** The client's agent keys, listed through the proxy's socket. */
  getKeys(): AgentKey[] {
    if (this.closed) throw new SSHException('the agent proxy is closed');
    return new Agent({ socketPath: this.path }).getKeys();
  }

  /** `{ SSH_AUTH_SOCK }` for the environment of programs that should use the client's agent. */
  getEnv(): { SSH_AUTH_SOCK: string } {
    return { SSH_AUTH_SOCK: this.path };
  }

  close(): void {
    this.closed = true;
    this.listener.close();
  }
}
