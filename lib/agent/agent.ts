import { debug } from '../debug';
import { request, runAsync, runSync, toBuffer, type Op } from '../bridge';
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

type Identities = Array<{ blob: Uint8Array; comment: string }>;
/** The key list `Agent.openOp` fetched, handed to the constructor so it does not ask again. */
const kListed = Symbol('listed identities');
type ListedOptions = AgentOptions & { [kListed]?: Identities };

function socketPathOf(options: AgentOptions): string | null {
  const path = options.socketPath !== undefined ? options.socketPath : process.env.SSH_AUTH_SOCK;
  return path ? path : null;
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
    this.socketPath = socketPathOf(options);
    if (!this.socketPath) return;
    const ids = (options as ListedOptions)[kListed] ?? runSync(Agent.identitiesOp(this.socketPath));
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

  /** The promise twin of `new Agent(options)`: lists the agent's keys without blocking. */
  static openAsync(options: AgentOptions = {}): Promise<Agent> {
    return runAsync(Agent.openOp(options));
  }

  /** @internal `new Agent(options)` as an op, for the twins of the calls that make one. */
  static *openOp(options: AgentOptions = {}): Op<Agent> {
    const path = socketPathOf(options);
    const listed = path ? yield* Agent.identitiesOp(path) : [];
    return new Agent({ ...options, socketPath: path, [kListed]: listed } as ListedOptions);
  }

  private static *identitiesOp(socketPath: string): Op<Identities> {
    return yield* request<Identities>('agent', 'identities', { socketPath }, IDENTITIES_TIMEOUT);
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
