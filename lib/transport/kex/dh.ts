import { createDiffieHellman, getDiffieHellman } from 'node:crypto';
import type { DiffieHellman, DiffieHellmanGroup } from 'node:crypto';
import { SSHException } from '../../errors';
import { bigintToBytes, bytesToBigint } from '../../wire/bigint';
import { Message } from '../../wire/message';
import { MSG } from '../constants';
import { digest, exchangeHashPrefix, sharedSecretMpint } from './hash';
import type { KexAlgorithm, KexContext, KexResult, KexRun } from './types';

/** Group exchange bounds we ask for as a client (RFC 8270 raised the minimum to 2048). */
export const GEX_MIN_BITS = 2048;
export const GEX_PREFERRED_BITS = 3072;
export const GEX_MAX_BITS = 8192;

/** The MODP groups of RFC 3526 that Node/OpenSSL has built in, by size: the fallback for GEX. */
const BUILTIN_GROUPS: Array<[number, string]> = [
  [2048, 'modp14'],
  [3072, 'modp15'],
  [4096, 'modp16'],
  [6144, 'modp17'],
  [8192, 'modp18'],
];

/** The built-in group closest to `preferred` within [min, max] (OpenSSH's choose_dh fallback). */
export function builtinGroup(min: number, preferred: number, max: number): { p: bigint; g: bigint } {
  const fits = BUILTIN_GROUPS.filter(([bits]) => bits >= min && bits <= max);
  if (!fits.length) throw new SSHException(`no Diffie-Hellman group between ${min} and ${max} bits`);
  const pick = fits.find(([bits]) => bits >= preferred) ?? fits[fits.length - 1];
  const dh = getDiffieHellman(pick[1]);
  return { p: bytesToBigint(dh.getPrime()), g: bytesToBigint(dh.getGenerator()) };
}

/** Our DH half: key pair, public value as bigint, and the secret from the peer's value. */
class DhParty {
  readonly publicValue: bigint;
  constructor(
    private readonly dh: DiffieHellman | DiffieHellmanGroup,
    private readonly p: bigint,
  ) {
    dh.generateKeys();
    this.publicValue = bytesToBigint(dh.getPublicKey());
  }

  /** K as an mpint string; refuses peer values outside (1, p-1) (RFC 4253 section 8). */
  agree(peer: bigint): Buffer {
    if (peer <= 1n || peer >= this.p - 1n) throw new SSHException('Diffie-Hellman: peer public value out of range');
    return sharedSecretMpint(this.dh.computeSecret(bigintToBytes(peer)));
  }
}

/** diffie-hellman-group* (RFC 4253 section 8, RFC 8268): a fixed group, one INIT, one REPLY. */
class FixedGroupRun implements KexRun {
  private party: DhParty | null = null;
  private readonly p: bigint;
  constructor(
    private readonly ctx: KexContext,
    private readonly hash: string,
    private readonly group: string,
  ) {
    this.p = bytesToBigint(getDiffieHellman(group).getPrime());
  }

  private newParty(): DhParty {
    return new DhParty(getDiffieHellman(this.group), this.p);
  }

  start(): void {
    if (this.ctx.role === 'client') {
      this.party = this.newParty();
      this.ctx.send(new Message().addByte(MSG.KEXDH_INIT).addMpint(this.party.publicValue).asBytes());
    }
  }

  private hashOf(hostKeyBlob: Buffer, e: bigint, f: bigint, k: Buffer): Buffer {
    return digest(this.hash, exchangeHashPrefix(this.ctx, hostKeyBlob).addMpint(e).addMpint(f).addBytes(k).asBytes());
  }

  handle(type: number, msg: Message): KexResult | null {
    if (this.ctx.role === 'client') {
      if (type !== MSG.KEXDH_REPLY || !this.party) throw new SSHException(`key exchange: unexpected message ${type}`);
      const hostKeyBlob = Buffer.from(msg.getString());
      const f = msg.getMpint();
      const signature = Buffer.from(msg.getString());
      const k = this.party.agree(f);
      return { sharedSecret: k, exchangeHash: this.hashOf(hostKeyBlob, this.party.publicValue, f, k), hostKeyBlob, signature };
    }
    if (type !== MSG.KEXDH_INIT) throw new SSHException(`key exchange: unexpected message ${type}`);
    const e = msg.getMpint();
    const party = this.newParty();
    const k = party.agree(e);
    const hostKeyBlob = this.ctx.hostKeyBlob!();
    const h = this.hashOf(hostKeyBlob, e, party.publicValue, k);
    const sig = this.ctx.signExchangeHash!(h);
    this.ctx.send(new Message().addByte(MSG.KEXDH_REPLY).addString(hostKeyBlob).addMpint(party.publicValue).addString(sig).asBytes());
    return { sharedSecret: k, exchangeHash: h, hostKeyBlob };
  }
}

/** diffie-hellman-group-exchange-* (RFC 4419): the server picks the group. */
class GroupExchangeRun implements KexRun {
  private party: DhParty | null = null;
  private group: { p: bigint; g: bigint } | null = null;
  private request = { min: GEX_MIN_BITS, n: GEX_PREFERRED_BITS, max: GEX_MAX_BITS };
  constructor(
    private readonly ctx: KexContext,
    private readonly hash: string,
  ) {}

  start(): void {
    if (this.ctx.role === 'client') {
      const { min, n, max } = this.request;
      this.ctx.send(new Message().addByte(MSG.KEX_DH_GEX_REQUEST).addInt(min).addInt(n).addInt(max).asBytes());
    }
  }

  private newParty(p: bigint, g: bigint): DhParty {
    return new DhParty(createDiffieHellman(bigintToBytes(p), bigintToBytes(g)), p);
  }

  private hashOf(hostKeyBlob: Buffer, e: bigint, f: bigint, k: Buffer): Buffer {
    const { min, n, max } = this.request;
    const m = exchangeHashPrefix(this.ctx, hostKeyBlob).addInt(min).addInt(n).addInt(max);
    m.addMpint(this.group!.p).addMpint(this.group!.g).addMpint(e).addMpint(f).addBytes(k);
    return digest(this.hash, m.asBytes());
  }

  handle(type: number, msg: Message): KexResult | null {
    return this.ctx.role === 'client' ? this.client(type, msg) : this.server(type, msg);
  }

  private client(type: number, msg: Message): KexResult | null {
    if (type === MSG.KEX_DH_GEX_GROUP && !this.group) {
      const p = msg.getMpint();
      const g = msg.getMpint();
      const bits = p.toString(2).length;
      if (bits < this.request.min || bits > this.request.max) {
        throw new SSHException(`group exchange: server sent a ${bits}-bit group, outside ${this.request.min}-${this.request.max}`);
      }
      if (g <= 1n || g >= p - 1n) throw new SSHException('group exchange: bad generator');
      this.group = { p, g };
      this.party = this.newParty(p, g);
      this.ctx.send(new Message().addByte(MSG.KEX_DH_GEX_INIT).addMpint(this.party.publicValue).asBytes());
      return null;
    }
    if (type === MSG.KEX_DH_GEX_REPLY && this.party) {
      const hostKeyBlob = Buffer.from(msg.getString());
      const f = msg.getMpint();
      const signature = Buffer.from(msg.getString());
      const k = this.party.agree(f);
      return { sharedSecret: k, exchangeHash: this.hashOf(hostKeyBlob, this.party.publicValue, f, k), hostKeyBlob, signature };
    }
    throw new SSHException(`group exchange: unexpected message ${type}`);
  }

  private server(type: number, msg: Message): KexResult | null {
    if (type === MSG.KEX_DH_GEX_REQUEST && !this.group) {
      const min = msg.getInt();
      const n = msg.getInt();
      const max = msg.getInt();
      if (min > n || n > max || max < 1024) throw new SSHException(`group exchange: bad request ${min}/${n}/${max}`);
      this.request = { min, n, max };
      this.group = (this.ctx.chooseGroup ?? builtinGroup)(min, n, max);
      this.ctx.send(new Message().addByte(MSG.KEX_DH_GEX_GROUP).addMpint(this.group.p).addMpint(this.group.g).asBytes());
      return null;
    }
    if (type === MSG.KEX_DH_GEX_INIT && this.group) {
      const e = msg.getMpint();
      const party = this.newParty(this.group.p, this.group.g);
      const k = party.agree(e);
      const hostKeyBlob = this.ctx.hostKeyBlob!();
      const h = this.hashOf(hostKeyBlob, e, party.publicValue, k);
      const sig = this.ctx.signExchangeHash!(h);
      this.ctx.send(new Message().addByte(MSG.KEX_DH_GEX_REPLY).addString(hostKeyBlob).addMpint(party.publicValue).addString(sig).asBytes());
      return { sharedSecret: k, exchangeHash: h, hostKeyBlob };
    }
    throw new SSHException(`group exchange: unexpected message ${type}`);
  }
}

function fixed(name: string, hash: string, group: string): KexAlgorithm {
  return { name, hash, create: (ctx) => new FixedGroupRun(ctx, hash, group) };
}

export const DH_ALGORITHMS: KexAlgorithm[] = [
  { name: 'diffie-hellman-group-exchange-sha256', hash: 'sha256', create: (ctx) => new GroupExchangeRun(ctx, 'sha256') },
  fixed('diffie-hellman-group16-sha512', 'sha512', 'modp16'),
  fixed('diffie-hellman-group18-sha512', 'sha512', 'modp18'),
  fixed('diffie-hellman-group14-sha256', 'sha256', 'modp14'),
  // Legacy, off unless enabled: SHA-1 and 1024-bit groups (RFC 9142 deprecates them).
  { name: 'diffie-hellman-group-exchange-sha1', hash: 'sha1', create: (ctx) => new GroupExchangeRun(ctx, 'sha1') },
  fixed('diffie-hellman-group14-sha1', 'sha1', 'modp14'),
  fixed('diffie-hellman-group1-sha1', 'sha1', 'modp2'),
];
