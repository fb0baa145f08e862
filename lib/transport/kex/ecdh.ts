import { createECDH, createPublicKey, diffieHellman } from 'node:crypto';
import { generateKeyPair } from '../../crypto/keygen';
import type { KeyObject } from 'node:crypto';
import { SSHException } from '../../errors';
import { Message } from '../../wire/message';
import { MSG } from '../constants';
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
      const secret = diffieHellman({ privateKey, publicKey: peerKey });
      // RFC 8731 section 3: an all-zero result means a low-order point; abort.
      if (secret.every((b) => b === 0)) throw new SSHException('curve25519: shared secret is zero (low-order peer key)');
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

/** The shape every ECDH-style exchange shares (OpenSSH's kexgen): one INIT, one REPLY. */
class EcdhRun implements KexRun {
  private eph: Ephemeral | null = null;
  constructor(
    private readonly ctx: KexContext,
    private readonly hash: string,
    private readonly make: () => Ephemeral,
  ) {}

  start(): void {
    if (this.ctx.role === 'client') {
      this.eph = this.make();
      this.ctx.send(new Message().addByte(MSG.KEXDH_INIT).addString(this.eph.publicBytes).asBytes());
    }
  }

  private hashOf(hostKeyBlob: Buffer, qc: Buffer, qs: Buffer, k: Buffer): Buffer {
    const m = exchangeHashPrefix(this.ctx, hostKeyBlob).addString(qc).addString(qs).addBytes(k);
    return digest(this.hash, m.asBytes());
  }

  handle(type: number, msg: Message): KexResult | null {
    if (this.ctx.role === 'client') {
      if (type !== MSG.KEXDH_REPLY || !this.eph) throw new SSHException(`key exchange: unexpected message ${type}`);
      const hostKeyBlob = Buffer.from(msg.getString());
      const qs = msg.getString();
      const signature = Buffer.from(msg.getString());
      const k = sharedSecretMpint(this.eph.agree(qs));
      return { sharedSecret: k, exchangeHash: this.hashOf(hostKeyBlob, this.eph.publicBytes, qs, k), hostKeyBlob, signature };
    }
    if (type !== MSG.KEXDH_INIT) throw new SSHException(`key exchange: unexpected message ${type}`);
    const qc = msg.getString();
    const eph = this.make();
    const k = sharedSecretMpint(eph.agree(qc));
    const hostKeyBlob = this.ctx.hostKeyBlob!();
    const h = this.hashOf(hostKeyBlob, qc, eph.publicBytes, k);
    const sig = this.ctx.signExchangeHash!(h);
    this.ctx.send(new Message().addByte(MSG.KEXDH_REPLY).addString(hostKeyBlob).addString(eph.publicBytes).addString(sig).asBytes());
    return { sharedSecret: k, exchangeHash: h, hostKeyBlob };
  }
}

function ecdhAlgorithm(name: string, hash: string, make: () => Ephemeral): KexAlgorithm {
  return { name, hash, create: (ctx) => new EcdhRun(ctx, hash, make) };
}

export const ECDH_ALGORITHMS: KexAlgorithm[] = [
  ecdhAlgorithm('curve25519-sha256', 'sha256', x25519),
  ecdhAlgorithm('curve25519-sha256@libssh.org', 'sha256', x25519),
  ecdhAlgorithm('ecdh-sha2-nistp256', 'sha256', nist('prime256v1')),
  ecdhAlgorithm('ecdh-sha2-nistp384', 'sha384', nist('secp384r1')),
  ecdhAlgorithm('ecdh-sha2-nistp521', 'sha512', nist('secp521r1')),
];
