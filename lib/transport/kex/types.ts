import type { Message } from '../../wire/message';

/** What one key exchange needs from the transport, and what it produces. */
export interface KexContext {
  readonly role: 'client' | 'server';
  /** Identification strings without CR LF (V_C, V_S) and KEXINIT payloads (I_C, I_S). */
  readonly clientVersion: string;
  readonly serverVersion: string;
  readonly clientKexInit: Buffer;
  readonly serverKexInit: Buffer;
  /** Sends a payload. */
  send(payload: Buffer): void;
  /** Server: the host key blob (K_S) and a signer for the exchange hash. */
  hostKeyBlob?(): Buffer;
  signExchangeHash?(h: Buffer): Buffer;
  /** Server, group exchange: a group for the client's (min, preferred, max) bits. */
  chooseGroup?(min: number, preferred: number, max: number): { p: bigint; g: bigint };
}

/** The outcome: shared secret (as mpint bytes), exchange hash, and (client) the server's proof. */
export interface KexResult {
  /** K encoded as an SSH mpint (with its length prefix), as key derivation hashes it. */
  sharedSecret: Buffer;
  exchangeHash: Buffer;
  hostKeyBlob: Buffer;
  /** Client side: the server's signature over the exchange hash, to verify. */
  signature?: Buffer;
}

/** One run of a key exchange method: started, fed its messages (30-49), until it completes. */
export interface KexRun {
  start(): void;
  /** Handles a message numbered 30-49; returns the result when the exchange is complete. */
  handle(type: number, msg: Message): KexResult | null;
}

export interface KexAlgorithm {
  name: string;
  /** Node digest for the exchange hash and key derivation. */
  hash: string;
  create(ctx: KexContext): KexRun;
}
