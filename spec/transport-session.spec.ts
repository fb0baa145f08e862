import { Ed25519Key, ECDSAKey, RSAKey, MessageOrderError, SSHException, IncompatiblePeer } from '../lib';
import { Message } from '../lib/wire/message';
import { defaultPreferences } from '../lib/transport/algorithms';
import { MSG } from '../lib/transport/constants';
import { sessionPair } from './support/session-pair';
import { supportedCiphers } from '../lib/crypto/ciphers';
import { DEFAULT_MACS, LEGACY_MACS } from '../lib/crypto/macs';
import { LEGACY_CIPHERS } from '../lib/crypto/ciphers';
import { DEFAULT_KEX, INSECURE_KEX, kexByName } from '../lib/transport/kex';
import { mlkem768KeyPair } from '../lib/crypto/mlkem768';
import { sntrup761KeyPair } from '../lib/crypto/sntrup761';
import { generateKeyPairSync } from 'node:crypto';

const hostKeys = [Ed25519Key.generate(), ECDSAKey.generate({ curve: 'nistp256' }), ECDSAKey.generate({ curve: 'nistp384' }), ECDSAKey.generate({ curve: 'nistp521' }), RSAKey.generate(2048)];

/** A handshake in memory; `transient`: bytes delivered as from a socket's reused read buffer. */
function handshake(over: { kex?: string; hostKey?: string; cipher?: string; mac?: string; compression?: string }, transient = false) {
  const prefs = defaultPreferences();
  if (over.kex) prefs.kex = [over.kex];
  if (over.hostKey) prefs.hostKeys = [over.hostKey];
  if (over.cipher) prefs.ciphers = [over.cipher];
  if (over.mac) prefs.macs = [over.mac];
  if (over.compression) prefs.compression = [over.compression];
  const server = defaultPreferences();
  const preferences = {
    ...server,
    kex: [...DEFAULT_KEX, ...INSECURE_KEX],
    ciphers: [...server.ciphers, ...LEGACY_CIPHERS],
    macs: [...server.macs, ...LEGACY_MACS],
    compression: ['none', 'zlib@openssh.com', 'zlib'],
  };
  const pair = sessionPair({ preferences: prefs }, { hostKeys, serverSigAlgs: ['ssh-ed25519', 'rsa-sha2-512'], preferences }, undefined, transient);
  pair.client.session.start();
  pair.server.session.start();
  pair.pump();
  return pair;
}

/** After kex, a service request crosses and arrives intact (payloads survive protection). */
function exchangeData(pair: ReturnType<typeof handshake>) {
  const big = Buffer.alloc(100_000, 0x61);
  pair.client.session.send(new Message().addByte(MSG.SERVICE_REQUEST).addString('ssh-userauth').asBytes());
  pair.client.session.send(new Message().addByte(MSG.SERVICE_REQUEST).addString(big).asBytes());
  pair.server.session.send(new Message().addByte(MSG.SERVICE_ACCEPT).addString('ssh-userauth').asBytes());
  pair.pump();
  expect(pair.server.messages.map(([t]) => t)).toEqual([MSG.SERVICE_REQUEST, MSG.SERVICE_REQUEST]);
  expect(new Message(pair.server.messages[1][1]).getString()).toEqual(big);
  expect(pair.client.messages.map(([t]) => t)).toEqual([MSG.SERVICE_ACCEPT]);
}

/** A rekey started by `side` in the middle of the stream, then data again. */
function rekeyAndExchange(pair: ReturnType<typeof handshake>, side: 'client' | 'server') {
  pair[side].session.rekey();
  pair.pump();
  expect(pair[side].kexDone).toBe(2);
  pair.client.messages.length = 0;
  pair.server.messages.length = 0;
  exchangeData(pair);
}

describe('Session handshakes between our own endpoints (in memory)', () => {
  it.each([...DEFAULT_KEX, ...INSECURE_KEX])('kex %s', (kex) => {
    const pair = handshake({ kex });
    expect(pair.client.closed).toBeUndefined();
    expect(pair.client.kexDone).toBe(1);
    expect(pair.server.kexDone).toBe(1);
    expect(pair.client.session.negotiated!.kex).toBe(kex);
    expect(pair.client.session.sessionId).toEqual(pair.server.session.sessionId);
    exchangeData(pair);
  }, 30000);

  it.each(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'])(
    'host key %s is verified by the client',
    (hostKey) => {
      const pair = handshake({ hostKey });
      expect(pair.client.session.negotiated!.hostKey).toBe(hostKey);
      expect(pair.client.session.remoteHostKey).not.toBeNull();
      exchangeData(pair);
    },
  );

  const aead = supportedCiphers().filter((c) => c.includes('gcm') || c.includes('chacha'));
  const withMac = supportedCiphers().filter((c) => !aead.includes(c));
  const matrix: Array<[string, string]> = [...aead.map((c): [string, string] => [c, '(aead)'])];
  for (const c of withMac) for (const m of DEFAULT_MACS) matrix.push([c, m]);
  // The legacy MACs (truncated and MD5 HMACs) with a stream and a block cipher.
  for (const c of ['aes128-ctr', '3des-cbc']) for (const m of LEGACY_MACS) matrix.push([c, m]);
  it.each(matrix)('cipher %s with MAC %s', (cipher, mac) => {
    const pair = handshake({ cipher, mac: mac === '(aead)' ? undefined : mac });
    expect(pair.client.session.negotiated!.cipherC2S).toBe(cipher);
    if (mac !== '(aead)') expect(pair.client.session.negotiated!.macC2S).toBe(mac);
    exchangeData(pair);
    rekeyAndExchange(pair, 'client');
  });

  it('a peer offering only legacy algorithms we do not offer: the error names them and how to allow them', () => {
    const prefs = defaultPreferences();
    const pair = sessionPair({ preferences: prefs }, { hostKeys, preferences: { ...prefs, ciphers: ['aes256-cbc', '3des-cbc', 'blowfish-cbc'] } });
    pair.client.session.start();
    pair.server.session.start();
    pair.pump();
    expect(pair.client.closed).toBeInstanceOf(IncompatiblePeer);
    expect((pair.client.closed as Error).message).toMatch(
      /no matching cipher \(client to server\) algorithm: .*the server offered \[aes256-cbc, 3des-cbc, blowfish-cbc\]; paramiko-ts can run aes256-cbc, 3des-cbc but does not offer them unless named \(legacy\).*"\+aes256-cbc"/,
    );
  });

  it.each(['zlib', 'zlib@openssh.com'])('compression %s', (compression) => {
    const pair = handshake({ compression });
    pair.client.session.setAuthenticated();
    pair.server.session.setAuthenticated();
    exchangeData(pair);
    const total = pair.client.written.reduce((n, b) => n + b.length, 0);
    expect(total).toBeLessThan(20_000); // 100 kB of 'a' compressed
  });

  it('strict kex is agreed by default and resets sequence numbers', () => {
    const pair = handshake({});
    expect(pair.client.session.strict).toBe(true);
    expect(pair.server.session.strict).toBe(true);
  });

  it('ext-info: the server sends server-sig-algs after its first NEWKEYS', () => {
    const pair = handshake({});
    expect(pair.client.session.serverSigAlgs).toEqual(['ssh-ed25519', 'rsa-sha2-512']);
  });

  it('ext-info offers ping@openssh.com; a PING is answered with its data once authenticated, not before', () => {
    const pair = handshake({});
    expect(pair.client.session.peerExtensions.get('ping@openssh.com')?.toString()).toBe('0');
    const ping = (data: string) => {
      const before = pair.server.written.length;
      pair.client.session.send(new Message().addByte(MSG.PING).addString(data).asBytes());
      pair.pump();
      return pair.server.written.length - before;
    };
    expect(ping('pre-auth')).toBe(0); // as sshd: no answer before the user is authenticated
    pair.server.session.setAuthenticated();
    pair.client.session.setAuthenticated();
    const logged: string[] = [];
    pair.client.session.hexdump = true;
    (pair.client.session as unknown as { host: { log?: (l: string) => void } }).host.log = (l) => logged.push(l);
    expect(ping('chaff')).toBeGreaterThan(0); // one packet, in a few writes
    // the client got a PONG carrying the same data, and took it as a transport message
    expect(logged.slice(2)).toEqual(['IN PONG (10 bytes)', expect.stringMatching(/^00000000  c1 00 00 00 05 63 68 61 66 66 +\.\.\.\.\.chaff$/)]);
    expect(pair.client.messages).toEqual([]);
    expect(pair.client.closed).toBeUndefined();
  });

  it('a key exchange message outside a key exchange is answered UNIMPLEMENTED and the session goes on, as OpenSSH', () => {
    const pair = handshake({});
    const logged: string[] = [];
    (pair.client.session as unknown as { host: { log?: (l: string) => void } }).host.log = (l) => logged.push(l);
    pair.client.session.send(new Message().addByte(31).addString('stray').asBytes());
    pair.pump();
    expect(pair.server.closed).toBeUndefined();
    expect(pair.client.closed).toBeUndefined();
    expect(logged).toContainEqual(expect.stringMatching(/^peer says message #\d+ is unimplemented$/));
    exchangeData(pair);
  });

  it("the peer's version and KEXINIT arriving before start() wait: our identification line still goes first", () => {
    // As over a channel that already holds what our own server sent on accept (a jump host).
    const pair = sessionPair({ preferences: defaultPreferences() }, { hostKeys, serverSigAlgs: ['ssh-ed25519'], preferences: defaultPreferences() });
    pair.server.session.start();
    pair.pump();
    expect(pair.client.written).toHaveLength(0);
    pair.client.session.start();
    expect(pair.client.written[0].toString('latin1')).toMatch(/^SSH-2\.0-paramiko_ts\S*\r\n$/);
    pair.pump();
    expect([pair.client.closed, pair.server.closed]).toEqual([undefined, undefined]);
    expect([pair.client.kexDone, pair.server.kexDone]).toEqual([1, 1]);
  });

  it('no common algorithm fails with IncompatiblePeer naming both lists', () => {
    const prefs = defaultPreferences();
    prefs.ciphers = ['aes192-ctr'];
    const pair = sessionPair({ preferences: prefs }, { hostKeys, preferences: { ...defaultPreferences(), ciphers: ['aes128-gcm@openssh.com'] } });
    pair.client.session.start();
    pair.server.session.start();
    pair.pump();
    expect(pair.client.closed).toBeInstanceOf(IncompatiblePeer);
    expect(pair.client.closed!.message).toMatch(/no matching cipher \(client to server\) algorithm: we offered \[aes192-ctr\], the server offered \[aes128-gcm@openssh.com\]/);
    expect(pair.server.closed).toBeInstanceOf(SSHException);
  });

  it('a flipped bit on the wire fails with a MAC error and a disconnect', () => {
    let n = 0;
    let flipped = false;
    // AES-GCM (the default) packets go out whole (native module) or as pieces (length, body, tag:
    // node:crypto): flip the last bit of the first tag or ciphertext after the handshake.
    const pair = sessionPair({}, { hostKeys }, (fromClient, data) => {
      if (fromClient && ++n >= 5 && !flipped && data.length >= 16) {
        data[data.length - 1] ^= 1;
        flipped = true;
      }
      return data;
    });
    pair.client.session.start();
    pair.server.session.start();
    pair.pump();
    pair.client.session.send(new Message().addByte(MSG.SERVICE_REQUEST).addString('x').asBytes());
    pair.client.session.send(new Message().addByte(MSG.SERVICE_REQUEST).addString('y').asBytes());
    pair.pump();
    expect(flipped).toBe(true);
    expect(pair.server.closed?.message).toMatch(/bad MAC|authentication failed/);
    expect(pair.client.closed?.message).toMatch(/disconnected/);
  });

  it('strict kex: a message slipped in before KEXINIT (Terrapin) is refused', () => {
    let injected = false;
    const pair = sessionPair({}, { hostKeys }, (fromClient, data) => {
      // after the server's identification line, inject an IGNORE packet ahead of KEXINIT
      if (!fromClient && !injected && data.toString('latin1').startsWith('SSH-')) {
        injected = true;
        const ignore = Buffer.from('0000000c0a02000000000000000000000000', 'hex'); // len 12, pad 10, IGNORE
        return Buffer.concat([data, ignore.subarray(0, 16)]);
      }
      return data;
    });
    pair.client.session.start();
    pair.server.session.start();
    pair.pump();
    expect(pair.client.closed).toBeInstanceOf(MessageOrderError);
  });

  it('garbage instead of an identification line is refused by the server', () => {
    const pair = sessionPair({}, { hostKeys }, (fromClient, data) => (fromClient && data.toString().startsWith('SSH-') ? Buffer.from('GET / HTTP/1.1\r\n') : data));
    pair.client.session.start();
    pair.server.session.start();
    pair.pump();
    expect(pair.server.closed?.message).toMatch(/not an SSH client/);
  });
});

describe('Session buffers', () => {
  it.each(['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr'])(
    'bytes received into a reused read buffer (transient), %s: handshake, data, rekey',
    (cipher) => {
      const pair = handshake({ cipher }, true);
      expect(pair.client.kexDone).toBe(1);
      expect(pair.client.session.negotiated!.cipherS2C).toBe(cipher);
      exchangeData(pair);
      rekeyAndExchange(pair, 'server');
    },
  );

  it.each(['none', 'zlib'])('sendFilled: a payload written in place arrives intact, during a key exchange too (compression %s)', (compression) => {
    const pair = handshake({ compression });
    pair.client.session.setAuthenticated();
    pair.server.session.setAuthenticated();
    const data = Buffer.alloc(30000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const fill = (into: Buffer) => {
      into[0] = MSG.CHANNEL_DATA;
      data.copy(into, 1);
    };
    pair.client.session.sendFilled(1 + data.length, fill);
    pair.client.session.rekey();
    pair.client.session.sendFilled(1 + data.length, fill); // queued until the exchange ends
    pair.pump();
    expect(pair.client.kexDone).toBe(2);
    expect(pair.server.messages.map(([t]) => t)).toEqual([MSG.CHANNEL_DATA, MSG.CHANNEL_DATA]);
    for (const [, body] of pair.server.messages) expect(body).toEqual(data);
  });

  it('rekeySeconds: a new key exchange starts that long after each one ends, until the session closes', async () => {
    const pair = sessionPair({ preferences: defaultPreferences(), rekeySeconds: 0.05 }, { hostKeys, preferences: defaultPreferences() });
    const logged: string[] = [];
    pair.client.session['host'].log = (line: string) => logged.push(line);
    pair.client.session.start();
    pair.server.session.start();
    pair.pump();
    expect(pair.client.kexDone).toBe(1);
    for (const want of [2, 3]) {
      await new Promise((r) => setTimeout(r, 80));
      pair.pump();
      expect(pair.client.kexDone).toBe(want);
    }
    expect(logged.filter((l) => l === 'rekeying: time limit reached')).toHaveLength(2);
    expect(pair.server.kexDone).toBe(3); // the server never asked
    pair.client.session.disconnect(11, 'bye');
    await new Promise((r) => setTimeout(r, 80));
    pair.pump();
    expect(pair.client.kexDone).toBe(3);
  });

  it('a payload queued during a key exchange is copied: the caller may reuse its buffer', () => {
    const pair = handshake({});
    pair.client.session.setAuthenticated();
    pair.server.session.setAuthenticated();
    pair.client.session.rekey();
    expect(pair.client.session.inKex).toBe(true);
    const reused = new Message().addByte(MSG.SERVICE_REQUEST).addString('first').asBytes();
    pair.client.session.send(reused);
    // The caller builds its next payload in the same buffer before the exchange ends.
    reused.fill(0x7a, 1);
    pair.pump();
    expect(pair.client.kexDone).toBe(2);
    expect(pair.server.messages.map(([t]) => t)).toEqual([MSG.SERVICE_REQUEST]);
    expect(new Message(pair.server.messages[0][1]).getString().toString()).toBe('first');
  });
});

describe('X25519 and hybrid post-quantum key exchanges refuse bad keys from the peer', () => {
  /** A server-side run of `kex`, fed one KEXDH_INIT carrying `qc`. */
  function serverAnswer(kex: string, qc: Buffer): Buffer[] {
    const sent: Buffer[] = [];
    const run = kexByName(kex)!.create({
      role: 'server',
      clientVersion: 'SSH-2.0-a',
      serverVersion: 'SSH-2.0-b',
      clientKexInit: Buffer.alloc(1),
      serverKexInit: Buffer.alloc(1),
      send: (p) => sent.push(p),
      hostKeyBlob: () => hostKeys[0].asBytes(),
      signExchangeHash: (h) => hostKeys[0].signSshData(h).asBytes(),
    });
    run.start();
    const msg = new Message().addByte(MSG.KEXDH_INIT).addString(qc);
    msg.rewind();
    msg.getByte();
    run.handle(MSG.KEXDH_INIT, msg);
    return sent;
  }
  const x25519Public = () => Buffer.from(generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');

  it('mlkem768x25519: an encapsulation key with a coefficient not below q (FIPS 203 modulus check)', () => {
    const ek = mlkem768KeyPair().publicKey;
    expect(serverAnswer('mlkem768x25519-sha256', Buffer.concat([ek, x25519Public()]))).toHaveLength(1); // the untouched key is answered
    ek[0] = 0xff;
    ek[1] |= 0x0f; // the first 12-bit coefficient: 4095
    expect(() => serverAnswer('mlkem768x25519-sha256', Buffer.concat([ek, x25519Public()]))).toThrow(
      new SSHException("mlkem768x25519: the client's mlkem768 key is invalid: ML-KEM-768 encapsulation key has a coefficient not reduced modulo q"),
    );
  });

  it('curve25519: a low-order (all-zero) key is refused as such, not as an OpenSSL error', () => {
    expect(() => serverAnswer('curve25519-sha256', Buffer.alloc(32))).toThrow(new SSHException('curve25519: shared secret is zero (low-order peer key)'));
  });

  it.each([
    ['mlkem768x25519-sha256', 1184 + 32],
    ['sntrup761x25519-sha512', 1158 + 32],
  ])('%s: keys of the wrong length, and an all-zero X25519 key', (kex, length) => {
    const label = kex.split('-')[0];
    expect(() => serverAnswer(kex, Buffer.alloc(length - 1))).toThrow(new SSHException(`${label}: the client's key share has ${length - 1} bytes, expected ${length}`));
    const kem = kex.startsWith('mlkem') ? mlkem768KeyPair().publicKey : sntrup761KeyPair().publicKey;
    expect(() => serverAnswer(kex, Buffer.concat([kem, Buffer.alloc(32)]))).toThrow(new SSHException('curve25519: shared secret is zero (low-order peer key)'));
  });
});
