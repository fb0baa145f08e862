/** The SSH agent client (Paramiko's `paramiko.agent`): Agent and AgentKey on the main thread. */
export { Agent } from './agent';
export type { AddKeysOptions, AgentOptions } from './agent';
export { AgentKey } from './agent-key';
export { AgentRequestHandler } from './request-handler';
export { AgentServerProxy } from './server-proxy';
