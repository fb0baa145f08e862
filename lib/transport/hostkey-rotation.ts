import type { PKey } from '../keys';
import { Message } from '../wire/message';
import { signatureOfAlgorithm } from './algorithms';

/**
 * OpenSSH's host key rotation, server side (its PROTOCOL file, section 2.5): after a login the
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
