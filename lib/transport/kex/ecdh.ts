import { createECDH, createPublicKey, diffieHellman } from 'node:crypto';
import { generateKeyPair } from '../../crypto/keygen';
import type { KeyObject } from 'node:crypto';
import { SSHException } from '../../errors';
import { Message } from '../../wire/message';
import { MSG } from '../constants';
import { SNTRUP761_CIPHERTEXT_BYTES, SNTRUP761_PUBLIC_KEY_BYTES, sntrup761Encapsulate, takeSntrup761KeyPair } from '../../crypto/sntrup761';
import { MLKEM768_CIPHERTEXT_BYTES, MLKEM768_PUBLIC_KEY_BYTES, mlkem768Encapsulate, mlkem768KeyPair } from '../../crypto/mlkem768';
import { digest, exchangeHashPrefix, sharedSecretMpint } from './hash';
import type { KexAlgorithm, KexContext, KexResult, KexRun } from './types';

/** An ephemeral key pair of an elliptic-curve exchange: public bytes and a secret function. */
interface Ephemeral {
  publicBytes: Buffer;
  /** Shared secret as unsigned big-endian bytes; throws SSHException on an invalid peer key. */
  agree(peer: Buffer): Buffer;
}

/** curve25519-sha256 (RFC 8731): X25519 through OpenSSL. */
function x25519(): Ephemeral {
  const { privateKey, jwk } = generateKeyPair({ type: 'x25519' });
  const raw = Buffer.from(jwk.x as string, 'base64url');
  return {
    publicBytes: raw,
    agree(peer: Buffer): Buffer {
      if (peer.length !== 32) throw new SSHException(`curve25519: peer public key is ${peer.length} bytes, expected 32`);
      let peerKey: KeyObject;
      try {
        peerKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peer.toString('base64url') }, format: 'jwk' });
      } catch (e) {
        throw new SSHException(`curve25519: invalid peer public key: ${(e as Error).message}`);
      }
      // RFC 8731 section 3: an all-zero result means a low-order point; abort. OpenSSL 3
      // refuses to derive it; older ones return the zeros.
      let secret: Buffer | null = null;
      try {
        secret = diffieHellman({ privateKey, publicKey: peerKey });
      } catch {
        // the low-order case below
      }
      if (!secret || secret.every((b) => b === 0)) throw new SSHException('curve25519: shared secret is zero (low-order peer key)');
      return secret;
    },
  };
}

/** ecdh-sha2-nistp* (RFC 5656): uncompressed points; OpenSSL validates the peer's point. */
function nist(curve: string): () => Ephemeral {
  return () => {
    const ecdh = createECDH(curve);
    ecdh.generateKeys();
    return {
      publicBytes: ecdh.getPublicKey(),
      agree(peer: Buffer): Buffer {
        if (peer[0] !== 4) throw new SSHException('ecdh: peer point is not uncompressed');
        try {
          return ecdh.computeSecret(peer);
        } catch (e) {
          throw new SSHException(`ecdh: invalid peer point: ${(e as Error).message}`);
        }
      },
    };
  };
}

/**
 * One party's part of an exchange in one round trip (OpenSSH's kexgen: ECDH and the hybrid
 * KEMs): the client offers Q_C, the server answers Q_S, both derive K. K comes back encoded as
 * the exchange hash and key derivation take it (an mpint for ECDH, a string for the hybrids).
 */
interface OneRound {
  /** Client: makes its ephemeral key(s); returns Q_C. */
  offer(): Buffer;
  /** Client: K from the server's Q_S. */
  finish(qs: Buffer): Buffer;
  /** Server: Q_S and K from the client's Q_C. */
  answer(qc: Buffer): { qs: Buffer; k: Buffer };
}

function ecdhRound(make: () => Ephemeral): () => OneRound {
  return () => {
    let eph: Ephemeral | null = null;
    return {
      offer() {
        eph = make();
        return eph.publicBytes;
      },
      finish: (qs) => sharedSecretMpint(eph!.agree(qs)),
      answer(qc) {
        const e = make();
        return { qs: e.publicBytes, k: sharedSecretMpint(e.agree(qc)) };
      },
    };
  };
}

/** The post-quantum half of a hybrid exchange: a KEM whose key pair lives for one exchange. */
interface Kem {
  name: string;
  publicKeyBytes: number;
  ciphertextBytes: number;
  keyPair(): { publicKey: Buffer; decapsulate(ciphertext: Uint8Array): Buffer };
  /** Throws RangeError on a public key the KEM refuses. */
  encapsulate(publicKey: Uint8Array): { ciphertext: Buffer; key: Buffer };
}

const SNTRUP761: Kem = {
  name: 'sntrup761',
  publicKeyBytes: SNTRUP761_PUBLIC_KEY_BYTES,
  ciphertextBytes: SNTRUP761_CIPHERTEXT_BYTES,
  keyPair: takeSntrup761KeyPair,
  encapsulate: sntrup761Encapsulate,
};

const MLKEM768: Kem = {
  name: 'mlkem768',
  publicKeyBytes: MLKEM768_PUBLIC_KEY_BYTES,
  ciphertextBytes: MLKEM768_CIPHERTEXT_BYTES,
  keyPair: () => mlkem768KeyPair(),
  encapsulate: (publicKey) => mlkem768Encapsulate(publicKey),
};

/**
 * A KEM + X25519 hybrid (OpenSSH's sntrup761x25519-sha512, default from 9.0 to 9.8, and
 * mlkem768x25519-sha256, default from 9.9): Q_C is the KEM public key then an X25519 key, Q_S
 * a ciphertext for it then the server's X25519 key; K is the string of HASH(KEM key || X25519
 * secret). Breaking it takes breaking both.
 */
function hybridRound(kem: Kem, hash: string): () => OneRound {
  const label = `${kem.name}x25519`;
  const combine = (kemKey: Buffer, ecdhSecret: Buffer) =>
    new Message().addString(digest(hash, Buffer.concat([kemKey, ecdhSecret]))).asBytes();
  const expect = (what: string, b: Buffer, length: number) => {
    if (b.length !== length) throw new SSHException(`${label}: ${what} has ${b.length} bytes, expected ${length}`);
  };
  return () => {
    let pair: ReturnType<Kem['keyPair']> | null = null;
    let eph: Ephemeral | null = null;
    return {
      offer() {
        pair = kem.keyPair();
        eph = x25519();
        return Buffer.concat([pair.publicKey, eph.publicBytes]);
      },
      finish(qs) {
        expect("the server's reply", qs, kem.ciphertextBytes + 32);
        const kemKey = pair!.decapsulate(qs.subarray(0, kem.ciphertextBytes));
        return combine(kemKey, eph!.agree(qs.subarray(kem.ciphertextBytes)));
      },
      answer(qc) {
        expect("the client's key share", qc, kem.publicKeyBytes + 32);
        let sealed: { ciphertext: Buffer; key: Buffer };
        try {
          sealed = kem.encapsulate(qc.subarray(0, kem.publicKeyBytes));
        } catch (e) {
          throw new SSHException(`${label}: the client's ${kem.name} key is invalid: ${(e as Error).message}`);
        }
        const e = x25519();
        return { qs: Buffer.concat([sealed.ciphertext, e.publicBytes]), k: combine(sealed.key, e.agree(qc.subarray(kem.publicKeyBytes))) };
      },
    };
  };
}

/** The run every one-round exchange shares: one INIT, one REPLY (messages 30 and 31). */
class OneRoundRun implements KexRun {
  private round: OneRound | null = null;
  private qc: Buffer | null = null;
  constructor(
    private readonly ctx: KexContext,
    private readonly hash: string,
    private readonly make: () => OneRound,
  ) {}

  start(): void {
    if (this.ctx.role === 'client') {
      this.round = this.make();
      this.qc = this.round.offer();
      this.ctx.send(new Message().addByte(MSG.KEXDH_INIT).addString(this.qc).asBytes());
    }
  }

  private hashOf(hostKeyBlob: Buffer, qc: Buffer, qs: Buffer, k: Buffer): Buffer {
    const m = exchangeHashPrefix(this.ctx, hostKeyBlob).addString(qc).addString(qs).addBytes(k);
    return digest(this.hash, m.asBytes());
  }

  handle(type: number, msg: Message): KexResult | null {
    if (this.ctx.role === 'client') {
      if (type !== MSG.KEXDH_REPLY || !this.round || !this.qc) throw new SSHException(`key exchange: unexpected message ${type}`);
      const hostKeyBlob = Buffer.from(msg.getString());
      const qs = msg.getString();
      const signature = Buffer.from(msg.getString());
      const k = this.round.finish(qs);
      return { sharedSecret: k, exchangeHash: this.hashOf(hostKeyBlob, this.qc, qs, k), hostKeyBlob, signature };
    }
    if (type !== MSG.KEXDH_INIT) throw new SSHException(`key exchange: unexpected message ${type}`);
    const qc = msg.getString();
    const { qs, k } = this.make().answer(qc);
    const hostKeyBlob = this.ctx.hostKeyBlob!();
    const h = this.hashOf(hostKeyBlob, qc, qs, k);
    const sig = this.ctx.signExchangeHash!(h);
    this.ctx.send(new Message().addByte(MSG.KEXDH_REPLY).addString(hostKeyBlob).addString(qs).addString(sig).asBytes());
    return { sharedSecret: k, exchangeHash: h, hostKeyBlob };
  }
}

function oneRound(name: string, hash: string, make: () => OneRound): KexAlgorithm {
  return { name, hash, create: (ctx) => new OneRoundRun(ctx, hash, make) };
}

function hybrid(name: string, kem: Kem, hash: string): KexAlgorithm {
  return oneRound(name, hash, hybridRound(kem, hash));
}

export const ECDH_ALGORITHMS: KexAlgorithm[] = [
  hybrid('mlkem768x25519-sha256', MLKEM768, 'sha256'),
  hybrid('sntrup761x25519-sha512', SNTRUP761, 'sha512'),
  hybrid('sntrup761x25519-sha512@openssh.com', SNTRUP761, 'sha512'),
  oneRound('curve25519-sha256', 'sha256', ecdhRound(x25519)),
  oneRound('curve25519-sha256@libssh.org', 'sha256', ecdhRound(x25519)),
  oneRound('ecdh-sha2-nistp256', 'sha256', ecdhRound(nist('prime256v1'))),
  oneRound('ecdh-sha2-nistp384', 'sha384', ecdhRound(nist('secp384r1'))),
  oneRound('ecdh-sha2-nistp521', 'sha512', ecdhRound(nist('secp521r1'))),
];
