import { SSHException } from '../errors';
import { PKey } from '../keys';
import { Message } from '../wire/message';
import { signatureOfAlgorithm } from './algorithms';

/**
 * OpenSSH's host key rotation (its PROTOCOL file, section 2.5): after a login the
 * server names all its host keys in a `hostkeys-00@openssh.com` global request (no reply
 * wanted); a client with UpdateHostKeys asks it to prove the ones it did not know with
 * `hostkeys-prove-00@openssh.com`, and adds them to known_hosts. A server can then gain a new
 * key (or drop an old one) without its users seeing a changed-key warning.
 */
export const HOSTKEYS_ANNOUNCE = 'hostkeys-00@openssh.com';
export const HOSTKEYS_PROVE = 'hostkeys-prove-00@openssh.com';

/** The blobs of the plain host keys, once each (a key's certificate is not announced). */
export function announcedBlobs(hostKeys: readonly PKey[]): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (const key of hostKeys) {
    const blob = key.asBytes();
    const id = blob.toString('base64');
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(blob);
  }
  return out;
}

/** Appends the announcement's body to a GLOBAL_REQUEST: one string per key blob. */
export function fillAnnouncement(m: Message, hostKeys: readonly PKey[]): void {
  for (const blob of announcedBlobs(hostKeys)) m.addString(blob);
}

/**
 * The reply data to a prove request (the rest of its message: a string per key blob): a
 * signature per key, in the order asked, over string "hostkeys-prove-00@openssh.com", string
 * session id, string key blob. RSA keys sign with the host key algorithm of the exchange when it
 * is an RSA one, else rsa-sha2-512 (what OpenSSH's client accepts). Null when a key asked for
 * is not one of ours, or the request is malformed: the caller answers failure.
 */
export function proveHostKeys(request: Message, hostKeys: readonly PKey[], sessionId: Buffer, negotiatedHostKey: string): Buffer | null {
  const ours = new Map<string, PKey>();
  for (const key of hostKeys) ours.set(key.asBytes().toString('base64'), key);
  const reply = new Message();
  try {
    let count = 0;
    while (request.getRemainder().length > 0) {
      const blob = Buffer.from(request.getString());
      const key = ours.get(blob.toString('base64'));
      if (!key) return null;
      let algorithm: string | null = null;
      if (key.getName() === 'ssh-rsa') {
        const kexSig = signatureOfAlgorithm(negotiatedHostKey);
        algorithm = kexSig === 'rsa-sha2-256' || kexSig === 'rsa-sha2-512' || kexSig === 'ssh-rsa' ? kexSig : 'rsa-sha2-512';
      }
      const signed = new Message().addString(HOSTKEYS_PROVE).addString(sessionId).addString(blob).asBytes();
      reply.addString(key.signSshData(signed, algorithm).asBytes());
      count++;
    }
    return count > 0 ? reply.asBytes() : null;
  } catch {
    return null;
  }
}

/**
 * Client side: the key blobs of an announcement (the rest of its message), the host key the
 * exchange verified left out (it is known already), each once. Keys of types we cannot read are
 * left out too, as OpenSSH's client does. Null for a malformed announcement.
 */
export function announcedToProve(request: Message, exchangeKey: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  const seen = new Set<string>([exchangeKey.toString('base64')]);
  try {
    while (request.remaining > 0) {
      const blob = Buffer.from(request.getString());
      const id = blob.toString('base64');
      if (seen.has(id)) continue;
      seen.add(id);
      try {
        PKey.fromBlob(blob);
      } catch {
        continue;
      }
      out.push(blob);
    }
  } catch {
    return null;
  }
  return out;
}

/**
 * Client side: the keys of `blobs` whose signatures in a prove reply (one string per key, in
 * order) verify over string "hostkeys-prove-00@openssh.com", string session id, string key
 * blob. RSA keys must sign with SHA-2 unless the exchange itself used ssh-rsa. Throws
 * SSHException naming the first key that fails: then none of them is to be trusted.
 */
export function verifyProofs(reply: Message, blobs: readonly Buffer[], sessionId: Buffer, negotiatedHostKey: string): PKey[] {
  const keys: PKey[] = [];
  for (const blob of blobs) {
    const key = PKey.fromBlob(blob);
    let sig: Buffer;
    try {
      sig = Buffer.from(reply.getString());
    } catch {
      throw new SSHException(`the server's proof of its host keys ends before the ${key.getName()} key ${key.fingerprint}`);
    }
    const alg = new Message(sig).getText();
    const sha1Ok = signatureOfAlgorithm(negotiatedHostKey) === 'ssh-rsa';
    const signed = new Message().addString(HOSTKEYS_PROVE).addString(sessionId).addString(blob).asBytes();
    if ((alg === 'ssh-rsa' && !sha1Ok) || !key.verifySshSig(signed, sig)) {
      throw new SSHException(`the server's proof for its ${key.getName()} host key ${key.fingerprint} does not verify (${alg})`);
    }
    keys.push(key);
  }
  if (reply.remaining > 0) throw new SSHException(`the server's proof of its host keys has ${reply.remaining} bytes past the ${blobs.length} signatures`);
  return keys;
}
