import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { debug } from '../../debug';
import { SocketTimeout, SSHException } from '../../errors';
import type { CallContext, Service } from '../../bridge/worker-side';
import {
  AgentReplyReader,
  encodeRequestIdentities,
  encodeSignRequest,
  parseIdentitiesAnswer,
  parseSignResponse,
} from '../../agent/protocol';
import type { AgentIdentity } from '../../agent/protocol';


/** How long an agent exchange may take: the caller's deadline, and its abort signal. */
export interface AgentCallLimits {
  /** Seconds; null waits as long as the agent takes (a confirm-before-use key waits for a human). */
  timeout: number | null;
  signal?: AbortSignal;
}

/** Node's error when the socket cannot be reached at all (no agent: ENOENT, ECONNREFUSED...). */
class AgentUnreachable extends Error {}

/**
 * One exchange with the agent at `path`: connect, write `request`, read one framed reply,
 * close. A connection per exchange keeps no state between calls, so a restarted agent or a
 * changed SSH_AUTH_SOCK is picked up, and nothing leaks when a main-thread Agent is dropped.
 */
function agentExchange(path: string, request: Buffer, limits: AgentCallLimits): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const reader = new AgentReplyReader();
    let connected = false;
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const sock: Socket = createConnection({ path });
    const finish = (err: Error | null, body?: Buffer) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      if (err) reject(err);
      else resolve(body!);
    };
    const onAbort = () => finish(new SSHException('agent request abandoned: the caller gave up'));
    if (limits.signal?.aborted) return finish(new SSHException('agent request abandoned: the caller gave up'));
    limits.signal?.addEventListener('abort', onAbort);
    if (limits.timeout !== null) {
      timer = setTimeout(() => finish(new SocketTimeout(`the SSH agent at ${path} did not answer within ${limits.timeout} s`)), limits.timeout * 1000);
    }
    sock.on('connect', () => {
      connected = true;
      sock.write(request);
    });
    sock.on('data', (chunk: Buffer) => {
      try {
        const body = reader.push(chunk);
        if (body) finish(null, body);
      } catch (e) {
        finish(e as Error);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (!connected) finish(new AgentUnreachable(`${e.code ?? 'error'}: ${e.message}`));
      else finish(new SSHException(`lost the SSH agent at ${path}: ${e.message}`, { cause: e }));
    });
    sock.on('close', () => {
      const when = reader.received ? `in the middle of its reply (${reader.received} bytes)` : 'without answering';
      finish(new SSHException(`lost the SSH agent at ${path}: it closed the connection ${when}`));
    });
  });
}

/** The agent's identities; [] when no agent listens at `path` (Paramiko's Agent() then has no keys). */
export async function agentIdentities(path: string, limits: AgentCallLimits): Promise<AgentIdentity[]> {
  let body: Buffer;
  try {
    body = await agentExchange(path, encodeRequestIdentities(), limits);
  } catch (e) {
    if (!(e instanceof AgentUnreachable)) throw e;
    debug('no SSH agent at %s (%s): no agent keys', path, e.message);
    return [];
  }
  return parseIdentitiesAnswer(body);
}

/**
 * Has the agent sign `data` with the identity `blob` (a key or certificate blob, as the agent
 * listed it), producing an `algorithm` signature; returns the signature blob.
 */
export async function agentSign(path: string, blob: Buffer, data: Buffer, algorithm: string, limits: AgentCallLimits): Promise<Buffer> {
  return parseSignResponse(await agentRequest(path, encodeSignRequest(blob, data, algorithm), limits), algorithm);
}

/** One request the main thread encoded (add, remove, lock...): the agent's reply body. */
export async function agentRequest(path: string, request: Buffer, limits: AgentCallLimits): Promise<Buffer> {
  try {
    return await agentExchange(path, request, limits);
  } catch (e) {
    if (e instanceof AgentUnreachable) throw new SSHException(`cannot reach the SSH agent at ${path} (${e.message})`);
    throw e;
  }
}

const limitsOf = (ctx: CallContext): AgentCallLimits => ({ timeout: ctx.remaining(), signal: ctx.signal });

/** 'agent': the ssh-agent client (the main thread's Agent and AgentKey are handles onto it). */
export const agent: Service = {
  name: 'agent',
  methods: {
    identities: (a: { socketPath: string }, ctx: CallContext) => agentIdentities(a.socketPath, limitsOf(ctx)),

    sign: (a: { socketPath: string; blob: Uint8Array; data: Uint8Array; algorithm: string }, ctx: CallContext) =>
      agentSign(a.socketPath, Buffer.from(a.blob), Buffer.from(a.data), a.algorithm, limitsOf(ctx)),

    request: (a: { socketPath: string; request: Uint8Array }, ctx: CallContext) => agentRequest(a.socketPath, Buffer.from(a.request), limitsOf(ctx)),
  },
};
