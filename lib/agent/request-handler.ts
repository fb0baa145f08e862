import { getBridge } from '../bridge';
import type { Channel } from '../api/channel';

/**
 * Paramiko's AgentRequestHandler: `new AgentRequestHandler(session)` asks for agent forwarding
 * on the session channel (Channel.requestForwardAgent); the server's agent connections are then
 * joined to the local agent (SSH_AUTH_SOCK) inside the transport worker, each for as long as
 * its channel lives.
 */
export class AgentRequestHandler {
  constructor(readonly channel: Channel) {
    channel.requestForwardAgent(this);
  }

  /**
   * As Paramiko's (which stops its proxy threads): agent channels the server opens from now on
   * are refused; connections already forwarded end with their channels.
   */
  close(): void {
    const t = this.channel.transport;
    if (t.id !== null && t.isActive()) getBridge().call('transport', 'stopForwardAgent', { id: t.id }, 10);
  }
}
