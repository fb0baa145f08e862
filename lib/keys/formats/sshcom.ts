import { createDecipheriv, createHash } from 'node:crypto';
import { PasswordRequiredException, SSHException, UnknownKeyType } from '../../errors';
import { bytesToBigint } from '../../wire/bigint';
import { Message } from '../../wire/message';
import type { Passphrase } from '../pkey';
import { keyClassForType } from '../registry';
import type { LoadedKey } from './openssh';
import { passBytes } from './openssh';
import { decodeSecshBlock, SECSH_PRIVATE } from './rfc4716';

/**
 * ssh.com's private key files (SSH Communications' Tectia; puttygen's `-O private-sshcom`),
 * RSA and DSA. Inside the RFC 4716 armour:
 *
 *   uint32 0x3f6ff9eb, uint32 total length, string key type, string cipher ("none" or
 *   "3des-cbc"), string key data
 *
 * where the key data (decrypted: 3DES-CBC, zero IV, key MD5(pass) || MD5(pass || MD5(pass))
 * cut to 24 bytes) is uint32 length then the numbers, each as a uint32 count of bits and the
 * bytes: RSA e, d, n, u, p, q; DSA a zero uint32 then p, g, q, y, x.
 */
const MAGIC = 0x3f6ff9eb;

/** ssh.com's integer: a bit count, then that many bits in big-endian bytes. */
function bigint(m: Message): bigint {
  const bits = m.getInt();
  return bytesToBigint(m.getBytes(Math.ceil(bits / 8)));
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [m, ((a % m) + m) % m, 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new SSHException('corrupt ssh.com private key: p and q are not coprime');
  return ((s0 % m) + m) % m;
}

function keyData(type: string, cipher: string, sealed: Buffer, password: Passphrase | null): Buffer {
  if (cipher === 'none') return sealed;
  if (cipher !== '3des-cbc') throw new SSHException(`ssh.com private key: unknown cipher ${JSON.stringify(cipher)} (3des-cbc or none)`);
  const pass = passBytes(password);
  if (pass.length === 0) throw new PasswordRequiredException('private key file is encrypted');
  if (sealed.length % 8) throw new SSHException(`corrupt ssh.com private key: ${sealed.length} encrypted bytes are not whole 3DES blocks`);
  const first = createHash('md5').update(pass).digest();
  const key = Buffer.concat([first, createHash('md5').update(pass).update(first).digest()]).subarray(0, 24);
  const decipher = createDecipheriv('des-ede3-cbc', key, Buffer.alloc(8)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(sealed), decipher.final()]);
  // A wrong passphrase shows as a length that does not fit.
  if (plain.length < 4 || plain.readUInt32BE(0) > plain.length - 4) {
    throw new SSHException(`wrong password for private key file (or the file is corrupt): the ${type.split('{')[0]} key data does not decrypt`);
  }
  return plain;
}

export function decodeSshComPrivateKey(text: string, password: Passphrase | null): LoadedKey {
  const { blob, comment } = decodeSecshBlock(text, SECSH_PRIVATE);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(blob)) throw new SSHException('corrupt ssh.com private key: invalid base64');
  const outer = new Message(Buffer.from(blob, 'base64'));
  if (outer.getInt() !== MAGIC) throw new SSHException('not an ssh.com private key: its magic number is missing');
  outer.getInt(); // total length
  const type = outer.getText();
  const cipher = outer.getText();
  const data = new Message(keyData(type, cipher, outer.getString(), password));
  const m = new Message(data.getString());
  const fields = new Message();
  let keyType: string;
  if (type.startsWith('if-modn{sign{rsa')) {
    keyType = 'ssh-rsa';
    const [e, d, n] = [bigint(m), bigint(m), bigint(m)];
    bigint(m); // u: ours is recomputed from p and q
    const [p, q] = [bigint(m), bigint(m)];
    fields.addMpint(n).addMpint(e).addMpint(d).addMpint(modInverse(q, p)).addMpint(p).addMpint(q);
  } else if (type.startsWith('dl-modp{sign{dsa')) {
    keyType = 'ssh-dss';
    if (m.getInt() !== 0) throw new SSHException('corrupt ssh.com DSA private key: unknown predefined group');
    const [p, g, q, y, x] = [bigint(m), bigint(m), bigint(m), bigint(m), bigint(m)];
    fields.addMpint(p).addMpint(q).addMpint(g).addMpint(y).addMpint(x);
  } else {
    throw new UnknownKeyType(type);
  }
  const cls = keyClassForType(keyType)!;
  try {
    return { cls, privateKey: cls.privateFromOpenSSH(keyType, new Message(fields.asBytes())), comment };
  } catch (e) {
    throw new SSHException(`${cipher === 'none' ? 'corrupt ssh.com private key' : 'wrong password for private key file (or the file is corrupt)'}: ${(e as Error).message}`, { cause: e });
  }
}
