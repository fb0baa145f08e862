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

  /** As Paramiko's: nothing left to stop here (each forwarded connection ends with its channel). */
  close(): void {}
}
