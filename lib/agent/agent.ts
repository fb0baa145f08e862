import { debug } from '../debug';
import { getBridge, toBuffer } from '../bridge';
import { SSHException, UnknownKeyType } from '../errors';
import { AgentKey } from './agent-key';


/**
 * How long listing the keys may take, in seconds. A local agent answers at once; one silent
 * this long is wedged, and `new Agent()` (hence SSHClient.connect) should not hang on it.
 */
const IDENTITIES_TIMEOUT = 30;

export interface AgentOptions {
  /** The agent's UNIX socket; defaults to `process.env.SSH_AUTH_SOCK` as it is now. */
  socketPath?: string | null;
}

/**
 * Paramiko's `Agent`: the SSH agent named by `SSH_AUTH_SOCK`, and the keys it holds.
 *
 * The constructor lists the keys at once (a blocking call; the socket lives in the transport
 * worker, which opens a connection per request). With no agent running, or SSH_AUTH_SOCK unset
 * or dangling, it still succeeds and `getKeys()` is empty, as in Paramiko. An agent that
 * answers with something other than its key list raises SSHException. Keys of types this
 * library cannot read (e.g. FIDO `sk-*` keys) are left out.
 *
 * The socket path is read here, on the main thread: the worker's `process.env` is a copy taken
 * when it started, so later changes of SSH_AUTH_SOCK would not reach it.
 */
export class Agent {
  /** The agent's socket, or null when SSH_AUTH_SOCK was not set. */
  readonly socketPath: string | null;
  private keys: AgentKey[] = [];
  private isClosed = false;

  constructor(options: AgentOptions = {}) {
    const path = options.socketPath !== undefined ? options.socketPath : process.env.SSH_AUTH_SOCK;
    this.socketPath = path ? path : null;
    if (!this.socketPath) return;
    const ids = getBridge().call<Array<{ blob: Uint8Array; comment: string }>>('agent', 'identities', { socketPath: this.socketPath }, IDENTITIES_TIMEOUT);
    for (const { blob, comment } of ids) {
      try {
        this.keys.push(new AgentKey(this, Buffer.from(toBuffer(blob) as Buffer), comment));
      } catch (e) {
        if (!(e instanceof UnknownKeyType)) {
          throw new SSHException(`the SSH agent listed a malformed key (${comment || 'no comment'}): ${(e as Error).message}`, { cause: e });
        }
        debug('agent key %j skipped: %s', comment, (e as Error).message);
      }
    }
  }

  /** The agent's keys, in the agent's order (Paramiko's tuple, as an array); [] once closed. */
  getKeys(): AgentKey[] {
    return [...this.keys];
  }

  /** Forgets the keys; an AgentKey of a closed Agent can no longer sign. */
  close(): void {
    this.isClosed = true;
    this.keys = [];
  }

  get closed(): boolean {
    return this.isClosed;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
