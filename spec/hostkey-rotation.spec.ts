import { Ed25519Key, ECDSAKey, RSAKey } from '../lib';
import { Message } from '../lib/wire/message';
import { announcedBlobs, announcedToProve, HOSTKEYS_PROVE, proveHostKeys, verifyProofs } from '../lib/transport/hostkey-rotation';

// OpenSSH's UpdateHostKeys, both sides; against OpenSSH's ssh in spec/server-interop.spec.ts, sshd in spec/client-openssh.spec.ts.
describe('host key rotation (hostkeys-00 / hostkeys-prove-00)', () => {
  const ed = Ed25519Key.generate();
  const ec = ECDSAKey.generate({ curve: 'nistp256' });
  const rsa = RSAKey.generate(2048);
  const sessionId = Buffer.alloc(32, 0x5a);
  const ask = (...blobs: Buffer[]) => {
    const m = new Message();
    for (const b of blobs) m.addString(b);
    m.rewind();
    return m;
  };
  const signed = (blob: Buffer) => new Message().addString(HOSTKEYS_PROVE).addString(sessionId).addString(blob).asBytes();

  it('announces each key once', () => {
    expect(announcedBlobs([ed, ec, ed, rsa])).toEqual([ed.asBytes(), ec.asBytes(), rsa.asBytes()]);
  });

  it.each([
    ['ssh-ed25519', 'rsa-sha2-512'],
    ['rsa-sha2-256', 'rsa-sha2-256'],
    ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-512'],
  ])('proves the keys asked for, in order (exchange host key %s: RSA signs with %s)', (negotiated, rsaAlg) => {
    const reply = proveHostKeys(ask(rsa.asBytes(), ec.asBytes()), [ed, ec, rsa], sessionId, negotiated);
    expect(reply).not.toBeNull();
    const m = new Message(reply!);
    const rsaSig = Buffer.from(m.getString());
    const ecSig = Buffer.from(m.getString());
    expect(m.getRemainder()).toHaveLength(0);
    expect(new Message(rsaSig).getText()).toBe(rsaAlg);
    expect(rsa.verifySshSig(signed(rsa.asBytes()), rsaSig)).toBe(true);
    expect(ec.verifySshSig(signed(ec.asBytes()), ecSig)).toBe(true);
    expect(ec.verifySshSig(signed(rsa.asBytes()), ecSig)).toBe(false);
  });

  it('refuses a key that is not ours, an empty request and a malformed one', () => {
    expect(proveHostKeys(ask(ed.asBytes(), Ed25519Key.generate().asBytes()), [ed, ec], sessionId, 'ssh-ed25519')).toBeNull();
    expect(proveHostKeys(ask(), [ed], sessionId, 'ssh-ed25519')).toBeNull();
    const truncated = new Message(Buffer.from([0, 0, 0, 40, 1, 2, 3]));
    expect(proveHostKeys(truncated, [ed], sessionId, 'ssh-ed25519')).toBeNull();
  });
  it('client side: the announced keys to prove leave out the exchange key, repeats and unreadable types; a bad announcement is null', () => {
    const unknown = new Message().addString('ssh-ed448').addString(Buffer.alloc(57)).asBytes();
    expect(announcedToProve(ask(ed.asBytes(), ec.asBytes(), unknown, ec.asBytes(), rsa.asBytes()), ed.asBytes())).toEqual([ec.asBytes(), rsa.asBytes()]);
    expect(announcedToProve(new Message(Buffer.from([0, 0, 0, 9, 1])), ed.asBytes())).toBeNull();
  });

  it('client side: proofs verify key by key; a wrong one, a missing one, SHA-1 RSA after a SHA-2 exchange or extra bytes throw', () => {
    const blobs = [ec.asBytes(), rsa.asBytes()];
    const reply = () => new Message(proveHostKeys(ask(...blobs), [ed, ec, rsa], sessionId, 'ssh-ed25519')!);
    expect(verifyProofs(reply(), blobs, sessionId, 'ssh-ed25519').map((k) => k.fingerprint)).toEqual([ec.fingerprint, rsa.fingerprint]);
    expect(() => verifyProofs(reply(), blobs, Buffer.alloc(32, 1), 'ssh-ed25519')).toThrow(/proof for its ecdsa-sha2-nistp256 host key SHA256:\S+ does not verify/);
    expect(() => verifyProofs(reply(), [...blobs, ed.asBytes()], sessionId, 'ssh-ed25519')).toThrow(/ends before the ssh-ed25519 key/);
    const extra = new Message(Buffer.concat([reply().asBytes(), Buffer.from([0, 0, 0, 0])]));
    expect(() => verifyProofs(extra, blobs, sessionId, 'ssh-ed25519')).toThrow(/4 bytes past the 2 signatures/);
    const sha1 = new Message().addString(rsa.signSshData(signed(rsa.asBytes()), 'ssh-rsa').asBytes());
    sha1.rewind();
    expect(() => verifyProofs(sha1, [rsa.asBytes()], sessionId, 'rsa-sha2-512')).toThrow(/does not verify \(ssh-rsa\)/);
    sha1.rewind();
    expect(verifyProofs(sha1, [rsa.asBytes()], sessionId, 'ssh-rsa')).toHaveLength(1);
  });
});
