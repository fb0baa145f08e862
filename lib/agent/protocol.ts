/**
 * The client side of the ssh-agent protocol (draft-miller-ssh-agent, OpenSSH's PROTOCOL.agent),
 * sans I/O: requests as bytes to write, replies parsed from bytes read. The two requests
 * Paramiko's Agent makes (list the identities, sign with one of them) and the ones that manage
 * the agent, as ssh-add and AsyncSSH's agent client make them (add and remove keys, lock).
 *
 * Every message on the socket is `uint32 length` followed by `length` bytes: a type byte and
 * the fields of that type. One request gets exactly one reply, in order.
 */
import { SSHException } from '../errors';
import { Message } from '../wire/message';

export const SSH_AGENT_FAILURE = 5;
export const SSH2_AGENTC_REQUEST_IDENTITIES = 11;
export const SSH2_AGENT_IDENTITIES_ANSWER = 12;
export const SSH2_AGENTC_SIGN_REQUEST = 13;
export const SSH2_AGENT_SIGN_RESPONSE = 14;
export const SSH_AGENT_SUCCESS = 6;
export const SSH2_AGENTC_ADD_IDENTITY = 17;
export const SSH2_AGENTC_REMOVE_IDENTITY = 18;
export const SSH2_AGENTC_REMOVE_ALL_IDENTITIES = 19;
export const SSH_AGENTC_LOCK = 22;
export const SSH_AGENTC_UNLOCK = 23;
export const SSH2_AGENTC_ADD_ID_CONSTRAINED = 25;
export const SSH_AGENT_CONSTRAIN_LIFETIME = 1;
export const SSH_AGENT_CONSTRAIN_CONFIRM = 2;

/** Flags of SIGN_REQUEST: an RSA key signs with SHA-2 instead of ssh-rsa's SHA-1 (RFC 8332). */
export const SSH_AGENT_RSA_SHA2_256 = 2;
export const SSH_AGENT_RSA_SHA2_512 = 4;

/** Largest reply we read: OpenSSH's own client limit (MAX_AGENT_REPLY_LEN in authfd.c). */
export const MAX_AGENT_REPLY = 256 * 1024;
/** Most identities we accept in one answer: OpenSSH's MAX_AGENT_IDENTITIES. */
export const MAX_AGENT_IDENTITIES = 2048;
/** Largest request we send: ssh-agent drops a client whose message exceeds AGENT_MAX_LEN. */
export const MAX_AGENT_REQUEST = 256 * 1024;

const NAMES: Record<number, string> = {
  [SSH_AGENT_FAILURE]: 'SSH_AGENT_FAILURE',
  [SSH_AGENT_SUCCESS]: 'SSH_AGENT_SUCCESS',
  [SSH2_AGENT_IDENTITIES_ANSWER]: 'SSH2_AGENT_IDENTITIES_ANSWER',
  [SSH2_AGENT_SIGN_RESPONSE]: 'SSH2_AGENT_SIGN_RESPONSE',
};

/** One key the agent holds: its public blob (a key or a certificate) and its comment. */
export interface AgentIdentity {
  blob: Buffer;
  comment: string;
}

/** Prefixes a message body (type byte + fields) with its length. */
function frame(body: Buffer): Buffer {
  if (body.length > MAX_AGENT_REQUEST) {
    throw new SSHException(`agent request of ${body.length} bytes exceeds the agent's ${MAX_AGENT_REQUEST}-byte limit`);
  }
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** SSH2_AGENTC_REQUEST_IDENTITIES, framed. */
export function encodeRequestIdentities(): Buffer {
  return frame(Buffer.from([SSH2_AGENTC_REQUEST_IDENTITIES]));
}

/** The SIGN_REQUEST flags that make an agent produce `algorithm` (0 for all but rsa-sha2-*). */
export function signFlags(algorithm: string): number {
  if (algorithm === 'rsa-sha2-256') return SSH_AGENT_RSA_SHA2_256;
  if (algorithm === 'rsa-sha2-512') return SSH_AGENT_RSA_SHA2_512;
  return 0;
}

/** SSH2_AGENTC_SIGN_REQUEST for `algorithm` over `data` with the identity `blob`, framed. */
export function encodeSignRequest(blob: Buffer, data: Buffer, algorithm: string): Buffer {
  const m = new Message().addByte(SSH2_AGENTC_SIGN_REQUEST).addString(blob).addString(data).addInt(signFlags(algorithm));
  return frame(m.asBytes());
}

/** Constraints of an added key (ssh-add's -t and -c). */
export interface AddConstraints {
  /** Seconds the agent keeps the key. */
  lifetime?: number | null;
  /** The agent asks its user (ssh-askpass) before each use. */
  confirm?: boolean;
}

/**
 * SSH2_AGENTC_ADD_IDENTITY, or ADD_ID_CONSTRAINED with constraints, framed. `key` is the key
 * type and its private fields as the agent reads them (see agentKeyFields in agent.ts).
 */
export function encodeAddIdentity(key: Buffer, comment: string, constraints: AddConstraints = {}): Buffer {
  const { lifetime, confirm } = constraints;
  const constrained = (lifetime !== undefined && lifetime !== null) || Boolean(confirm);
  const m = new Message().addByte(constrained ? SSH2_AGENTC_ADD_ID_CONSTRAINED : SSH2_AGENTC_ADD_IDENTITY).addBytes(key).addString(comment);
  if (lifetime !== undefined && lifetime !== null) m.addByte(SSH_AGENT_CONSTRAIN_LIFETIME).addInt(lifetime);
  if (confirm) m.addByte(SSH_AGENT_CONSTRAIN_CONFIRM);
  return frame(m.asBytes());
}

/** SSH2_AGENTC_REMOVE_IDENTITY of the identity `blob` (a key or certificate blob), framed. */
export function encodeRemoveIdentity(blob: Buffer): Buffer {
  return frame(new Message().addByte(SSH2_AGENTC_REMOVE_IDENTITY).addString(blob).asBytes());
}

/** SSH2_AGENTC_REMOVE_ALL_IDENTITIES, framed. */
export function encodeRemoveAll(): Buffer {
  return frame(Buffer.from([SSH2_AGENTC_REMOVE_ALL_IDENTITIES]));
}

/** SSH_AGENTC_LOCK or SSH_AGENTC_UNLOCK with `passphrase`, framed. */
export function encodeLock(lock: boolean, passphrase: string): Buffer {
  return frame(new Message().addByte(lock ? SSH_AGENTC_LOCK : SSH_AGENTC_UNLOCK).addString(passphrase).asBytes());
}

/** The answer to an add, remove or lock request: SUCCESS, else an SSHException saying what was refused. */
export function parseSuccess(body: Buffer, what: string): void {
  const m = replyOf(body, SSH_AGENT_SUCCESS, `the agent refused to ${what} (SSH_AGENT_FAILURE)`);
  if (m.remaining) throw new SSHException(`malformed success answer from the agent: ${m.remaining} stray bytes`);
}

/** Reads the type byte of a reply, refusing anything but `expected` (FAILURE gets `failure`). */
function replyOf(body: Buffer, expected: number, failure: string): Message {
  const m = new Message(body);
  const type = m.getByte();
  if (type === SSH_AGENT_FAILURE) throw new SSHException(failure);
  if (type !== expected) {
    throw new SSHException(`the agent answered with message type ${NAMES[type] ?? type}, expected ${NAMES[expected]}`);
  }
  return m;
}

/** Wraps a decoding error of a reply in an SSHException that says which reply was bad. */
function malformed<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw new SSHException(`malformed ${what} from the agent: ${(e as Error).message}`, { cause: e });
  }
}

/** The identities of an SSH2_AGENT_IDENTITIES_ANSWER body (type byte included). */
export function parseIdentitiesAnswer(body: Buffer): AgentIdentity[] {
  const m = replyOf(body, SSH2_AGENT_IDENTITIES_ANSWER, 'could not get keys from ssh-agent: it answered SSH_AGENT_FAILURE');
  return malformed('identities answer', () => {
    const n = m.getInt();
    if (n > MAX_AGENT_IDENTITIES) throw new SSHException(`${n} identities, more than the ${MAX_AGENT_IDENTITIES} accepted`);
    const out: AgentIdentity[] = [];
    for (let i = 0; i < n; i++) {
      const blob = Buffer.from(m.getString(`the key blob of identity ${i}`));
      if (blob.length === 0) throw new SSHException(`identity ${i} has an empty key blob`);
      const comment = m.getString(`the comment of identity ${i}`).toString('utf8');
      out.push({ blob, comment });
    }
    if (m.remaining) throw new SSHException(`${m.remaining} stray bytes after ${n} identities`);
    return out;
  });
}

/**
 * The signature blob (string algorithm, string signature) of an SSH2_AGENT_SIGN_RESPONSE body,
 * checked to be of the `algorithm` asked for: an agent that ignores the RSA flags answers
 * ssh-rsa, which a server that asked for SHA-2 would refuse with a less helpful message.
 */
export function parseSignResponse(body: Buffer, algorithm: string): Buffer {
  const m = replyOf(body, SSH2_AGENT_SIGN_RESPONSE, 'the agent refused to sign with this key (SSH_AGENT_FAILURE)');
  const sig = malformed('sign response', () => {
    const blob = m.getString('the signature blob');
    if (m.remaining) throw new SSHException(`${m.remaining} stray bytes after the signature`);
    const inner = new Message(blob);
    inner.getText();
    inner.getString('the signature');
    if (inner.remaining) throw new SSHException(`${inner.remaining} stray bytes inside the signature blob`);
    return Buffer.from(blob);
  });
  const got = new Message(sig).getText();
  if (got !== algorithm) {
    throw new SSHException(`the agent made a ${JSON.stringify(got)} signature, not the ${JSON.stringify(algorithm)} asked for`);
  }
  return sig;
}

/**
 * Collects the bytes of one framed reply as they arrive. `push` returns the body (type byte
 * onward) once it is complete, or null while more is needed.
 */
export class AgentReplyReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private want: number | null = null;

  push(chunk: Buffer): Buffer | null {
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.want === null && this.have >= 4) {
      const head = Buffer.concat(this.chunks);
      this.chunks = [head];
      const n = head.readUInt32BE(0);
      if (n === 0) throw new SSHException('the agent sent an empty message');
      if (n > MAX_AGENT_REPLY) throw new SSHException(`the agent sent a ${n}-byte reply, more than the ${MAX_AGENT_REPLY} accepted`);
      this.want = 4 + n;
    }
    if (this.want === null || this.have < this.want) return null;
    // One request, one reply: more bytes than the reply means the agent is out of step.
    if (this.have > this.want) throw new SSHException(`the agent sent ${this.have - this.want} bytes past its reply`);
    return Buffer.concat(this.chunks).subarray(4);
  }

  /** Bytes received so far (to tell "closed before answering" from "closed mid-reply"). */
  get received(): number {
    return this.have;
  }
}
