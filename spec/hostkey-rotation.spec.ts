import { Ed25519Key, ECDSAKey, RSAKey } from '../lib';
import { Message } from '../lib/wire/message';
import { announcedBlobs, HOSTKEYS_PROVE, proveHostKeys } from '../lib/transport/hostkey-rotation';

// OpenSSH's UpdateHostKeys, server side; against OpenSSH's ssh in spec/server-interop.spec.ts.
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
});
