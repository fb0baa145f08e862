import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { argon2 } from '../../crypto/argon2';
import type { Argon2Type } from '../../crypto/argon2';
import { PasswordRequiredException, SSHException, UnknownKeyType } from '../../errors';
import { Message } from '../../wire/message';
import { keyClassForType } from '../registry';
import type { Passphrase, PKey } from '../pkey';
import { passBytes } from './openssh';
import type { LoadedKey } from './openssh';

/**
 * PuTTY's private key files (.ppk, versions 2 and 3: PuTTY's manual, appendix C).
 *
 * A text file of `Name: value` lines. `Public-Lines: n` and `Private-Lines: n` are followed by
 * n lines of base64: the public key blob as on the wire, and the private fields (per key type,
 * below), padded and, with `Encryption: aes256-cbc`, encrypted. `Private-MAC` authenticates the
 * algorithm, encryption, comment, public blob and padded private plaintext, each as an SSH
 * string:
 * - version 3: HMAC-SHA-256. Encrypted files derive 80 bytes with Argon2 (`Key-Derivation`,
 *   `Argon2-Memory` in KiB, `-Passes`, `-Parallelism`, `-Salt` in hex): the AES-256 key, the
 *   CBC IV and the MAC key, in that order. Unencrypted files use an empty MAC key.
 * - version 2: HMAC-SHA-1 keyed with SHA-1("putty-private-key-file-mac-key" || passphrase)
 *   (an empty passphrase when unencrypted); the AES key is the first 32 bytes of
 *   SHA-1(0,0,0,0 || passphrase) || SHA-1(0,0,0,1 || passphrase), the IV is zero.
 */
const HEADER = /^PuTTY-User-Key-File-(\d+): *(.*)$/;
const V2_MAC_PREFIX = 'putty-private-key-file-mac-key';
const AES_KEY = 32;
const AES_IV = 16;
const V3_MAC_KEY = 32;
/** PuTTY's default is 8 MiB; beyond 1 GiB a file is more likely hostile than careful. */
const MAX_ARGON2_KIB = 1 << 20;
const ARGON2 = new Map<string, Argon2Type>([
  ['Argon2id', 'argon2id'],
  ['Argon2i', 'argon2i'],
  ['Argon2d', 'argon2d'],
]);

/**
 * PPK private fields, rewritten in the layout of OpenSSH's key format so that each key class
 * reads them with the code it uses for OpenSSH files (public fields from the public blob).
 */
const TO_OPENSSH: Record<string, (pub: Message, priv: Message, out: Message) => void> = {
  // public e, n; private d, p, q, iqmp -> n, e, d, iqmp, p, q
  'ssh-rsa': (pub, priv, out) => {
    const e = pub.getMpint();
    const n = pub.getMpint();
    const d = priv.getMpint();
    const p = priv.getMpint();
    const q = priv.getMpint();
    out.addMpint(n).addMpint(e).addMpint(d).addMpint(priv.getMpint()).addMpint(p).addMpint(q);
  },
  // public p, q, g, y; private x
  'ssh-dss': (pub, priv, out) => {
    for (let i = 0; i < 4; i++) out.addMpint(pub.getMpint());
    out.addMpint(priv.getMpint());
  },
  // public curve, point; private scalar
  ecdsa: (pub, priv, out) => {
    out.addString(pub.getString()).addString(pub.getString()).addMpint(priv.getMpint());
  },
  // public key; private the 32-byte seed -> public, seed || public
  'ssh-ed25519': (pub, priv, out) => {
    const publicKey = pub.getString();
    const seed = priv.getString();
    if (seed.length !== 32) throw new SSHException(`corrupt PuTTY key file: Ed25519 private key of ${seed.length} bytes, expected 32`);
    out.addString(publicKey).addString(Buffer.concat([seed, publicKey]));
  },
};

export function isPuttyKeyFile(text: string): boolean {
  return text.trimStart().startsWith('PuTTY-User-Key-File-');
}

/** Reads a .ppk file. `data` as given by the caller: a Buffer's bytes are used as they are. */
export function decodePuttyPrivateKey(data: string | Buffer, password: Passphrase | null): LoadedKey {
  const file = PpkFile.parse(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  const keyType = new Message(file.publicBlob).getText();
  if (keyType !== file.algorithm) {
    throw new SSHException(`corrupt PuTTY key file: its header says ${file.algorithm} but its public key is ${keyType}`);
  }
  const encrypted = file.encryption !== 'none';
  const pass = passBytes(password);
  if (encrypted && pass.length === 0) throw new PasswordRequiredException('private key file is encrypted');

  const keys = file.version === 3 ? v3Keys(file, encrypted, pass) : v2Keys(encrypted, pass);
  let plain = file.privateBlob;
  if (encrypted) {
    if (plain.length === 0 || plain.length % 16) {
      throw new SSHException(`corrupt PuTTY key file: encrypted private part of ${plain.length} bytes is not a whole number of AES blocks`);
    }
    const decipher = createDecipheriv('aes-256-cbc', keys.cipherKey, keys.iv).setAutoPadding(false);
    plain = Buffer.concat([decipher.update(plain), decipher.final()]);
  }

  const macInput = new Message()
    .addString(file.algorithm)
    .addString(file.encryption)
    .addString(file.comment)
    .addString(file.publicBlob)
    .addString(plain)
    .asBytes();
  const mac = createHmac(file.version === 3 ? 'sha256' : 'sha1', keys.macKey).update(macInput).digest();
  if (mac.length !== file.mac.length || !timingSafeEqual(mac, file.mac)) {
    throw new SSHException(
      encrypted
        ? 'wrong password for private key file (or the file was altered): its Private-MAC does not verify'
        : 'corrupt PuTTY key file: its Private-MAC does not verify (the file was altered)',
    );
  }
  return { ...keyFromBlobs(keyType, file.publicBlob, plain), comment: file.comment.toString('utf8') };
}

interface FileKeys {
  cipherKey: Buffer;
  iv: Buffer;
  macKey: Buffer;
}

function v3Keys(file: PpkFile, encrypted: boolean, pass: Buffer): FileKeys {
  if (!encrypted) return { cipherKey: Buffer.alloc(0), iv: Buffer.alloc(0), macKey: Buffer.alloc(0) };
  const flavour = file.field('Key-Derivation');
  const type = ARGON2.get(flavour);
  if (!type) throw new SSHException(`PuTTY key file: unknown Key-Derivation ${JSON.stringify(flavour)} (Argon2id, Argon2i or Argon2d)`);
  const memory = file.number('Argon2-Memory', 8, MAX_ARGON2_KIB);
  const passes = file.number('Argon2-Passes', 1, 0xffffffff);
  const parallelism = file.number('Argon2-Parallelism', 1, 0xffffff);
  if (memory < 8 * parallelism) throw new SSHException(`PuTTY key file: Argon2-Memory ${memory} is below 8 KiB per lane (${parallelism} lanes)`);
  const salt = file.hex('Argon2-Salt');
  let out: Buffer;
  try {
    out = argon2(pass, salt, { type, passes, memoryKiB: memory, parallelism, tagLength: AES_KEY + AES_IV + V3_MAC_KEY });
  } catch (e) {
    // WebAssembly could not have the memory (the file asks up to 1 GiB)
    throw new SSHException(`PuTTY key file: Argon2 with ${memory} KiB failed: ${(e as Error).message}`, { cause: e });
  }
  return {
    cipherKey: out.subarray(0, AES_KEY),
    iv: out.subarray(AES_KEY, AES_KEY + AES_IV),
    macKey: out.subarray(AES_KEY + AES_IV),
  };
}

function v2Keys(encrypted: boolean, pass: Buffer): FileKeys {
  const macKey = createHash('sha1').update(V2_MAC_PREFIX).update(pass).digest();
  if (!encrypted) return { cipherKey: Buffer.alloc(0), iv: Buffer.alloc(0), macKey };
  const block = (n: number) => createHash('sha1').update(Buffer.from([0, 0, 0, n])).update(pass).digest();
  return { cipherKey: Buffer.concat([block(0), block(1)]).subarray(0, AES_KEY), iv: Buffer.alloc(AES_IV), macKey };
}

function keyFromBlobs(keyType: string, publicBlob: Buffer, privateBlob: Buffer): Omit<LoadedKey, 'comment'> {
  const pub = new Message(publicBlob);
  pub.getText();
  const cls = keyClassForType(keyType);
  const convert = TO_OPENSSH[keyType.startsWith('ecdsa-sha2-') ? 'ecdsa' : keyType];
  if (!cls || !convert) throw new UnknownKeyType(keyType, publicBlob);
  const fields = new Message();
  convert(pub, new Message(privateBlob), fields);
  const privateKey = cls.privateFromOpenSSH(keyType, new Message(fields.asBytes()));
  if (!new cls({ key: privateKey }).asBytes().equals(publicBlob)) {
    throw new SSHException('corrupt PuTTY key file: the private part does not match the public key');
  }
  return { cls, privateKey };
}

/**
 * OpenSSH's private fields (as the key classes write them) back to PPK's: the inverse of
 * TO_OPENSSH, for writing.
 */
const FROM_OPENSSH: Record<string, (fields: Message, out: Message) => void> = {
  // n, e, d, iqmp, p, q -> d, p, q, iqmp
  'ssh-rsa': (f, out) => {
    f.getMpint();
    f.getMpint();
    const d = f.getMpint();
    const iqmp = f.getMpint();
    out.addMpint(d).addMpint(f.getMpint()).addMpint(f.getMpint()).addMpint(iqmp);
  },
  // p, q, g, y, x -> x
  'ssh-dss': (f, out) => {
    for (let i = 0; i < 4; i++) f.getMpint();
    out.addMpint(f.getMpint());
  },
  // curve, point, scalar -> scalar
  ecdsa: (f, out) => {
    f.getString();
    f.getString();
    out.addMpint(f.getMpint());
  },
  // public, seed || public -> seed
  'ssh-ed25519': (f, out) => {
    f.getString();
    out.addString(f.getString().subarray(0, 32));
  },
};

/** Argon2 settings we write: PuTTY's memory and flavour, passes for ~100 ms here (as puttygen aims). */
const WRITE_ARGON2 = { type: 'argon2id' as const, memoryKiB: 8192, passes: 21, parallelism: 1 };

/** A .ppk (version 3) for `key`; encrypted with aes256-cbc under Argon2id when a password is given. */
export function encodePuttyPrivateKey(key: PKey, password: Passphrase | null, comment: string): string {
  const keyType = key.getName();
  const convert = FROM_OPENSSH[keyType.startsWith('ecdsa-sha2-') ? 'ecdsa' : keyType];
  if (!convert) throw new UnknownKeyType(keyType);
  if (/[\r\n]/.test(comment)) throw new SSHException('a PuTTY key comment cannot hold a line break');
  const fields = new Message();
  key.writeOpenSSHPrivateFields(fields);
  const priv = new Message();
  convert(new Message(fields.asBytes()), priv);
  let plain = priv.asBytes();
  const pass = passBytes(password);
  const encrypted = pass.length > 0;
  const encryption = encrypted ? 'aes256-cbc' : 'none';
  const header: string[] = [];
  let macKey: Buffer = Buffer.alloc(0);
  let sealed = plain;
  if (encrypted) {
    plain = Buffer.concat([plain, randomBytes((16 - (plain.length % 16)) % 16)]);
    const salt = randomBytes(16);
    const out = argon2(pass, salt, { ...WRITE_ARGON2, tagLength: AES_KEY + AES_IV + V3_MAC_KEY });
    macKey = out.subarray(AES_KEY + AES_IV);
    const cipher = createCipheriv('aes-256-cbc', out.subarray(0, AES_KEY), out.subarray(AES_KEY, AES_KEY + AES_IV)).setAutoPadding(false);
    sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    header.push(
      'Key-Derivation: Argon2id',
      `Argon2-Memory: ${WRITE_ARGON2.memoryKiB}`,
      `Argon2-Passes: ${WRITE_ARGON2.passes}`,
      `Argon2-Parallelism: ${WRITE_ARGON2.parallelism}`,
      `Argon2-Salt: ${salt.toString('hex')}`,
    );
  }
  const publicBlob = key.asBytes();
  const commentBytes = Buffer.from(comment, 'utf8');
  const mac = createHmac('sha256', macKey)
    .update(new Message().addString(keyType).addString(encryption).addString(commentBytes).addString(publicBlob).addString(plain).asBytes())
    .digest('hex');
  const lines = (b: Buffer) => b.toString('base64').match(/.{1,64}/g) ?? [];
  const pub = lines(publicBlob);
  const sec = lines(sealed);
  return [
    `PuTTY-User-Key-File-3: ${keyType}`,
    `Encryption: ${encryption}`,
    `Comment: ${comment}`,
    `Public-Lines: ${pub.length}`,
    ...pub,
    ...header,
    `Private-Lines: ${sec.length}`,
    ...sec,
    `Private-MAC: ${mac}`,
    '',
  ].join('\n');
}

/** The outer, textual layer of a .ppk file. */
class PpkFile {
  readonly encryption: string;
  readonly comment: Buffer;
  readonly publicBlob: Buffer;
  readonly privateBlob: Buffer;
  readonly mac: Buffer;

  private constructor(
    readonly version: number,
    readonly algorithm: string,
    private readonly fields: Map<string, string>,
    blobs: Map<string, Buffer>,
  ) {
    this.encryption = this.field('Encryption');
    if (this.encryption !== 'none' && this.encryption !== 'aes256-cbc') {
      throw new SSHException(`PuTTY key file: unknown Encryption ${JSON.stringify(this.encryption)} (aes256-cbc or none)`);
    }
    this.comment = Buffer.from(this.field('Comment'), 'latin1');
    const blob = (name: string) => {
      const b = blobs.get(name);
      if (!b) throw new SSHException(`corrupt PuTTY key file: no ${name} line`);
      return b;
    };
    this.publicBlob = blob('Public-Lines');
    this.privateBlob = blob('Private-Lines');
    this.mac = this.hex('Private-MAC');
  }

  static parse(bytes: Buffer): PpkFile {
    // Header values are bytes (a comment may be UTF-8): latin1 keeps each byte as one char.
    const lines = bytes.toString('latin1').trimStart().split(/\r\n|\r|\n/);
    const head = HEADER.exec(lines[0]);
    if (!head) throw new SSHException('not a PuTTY key file: no "PuTTY-User-Key-File-" line');
    const version = Number(head[1]);
    if (version !== 2 && version !== 3) {
      throw new SSHException(`PuTTY key file version ${head[1]} is not supported (2 and 3 are): re-save it with a current puttygen`);
    }
    const fields = new Map<string, string>();
    const blobs = new Map<string, Buffer>();
    let i = 1;
    while (i < lines.length) {
      const line = lines[i++];
      if (line.trim() === '') continue;
      const colon = line.indexOf(':');
      if (colon < 0) throw new SSHException(`corrupt PuTTY key file: line ${i} is not "Name: value"`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).replace(/^ /, '');
      if (fields.has(name)) throw new SSHException(`corrupt PuTTY key file: ${name} appears twice`);
      fields.set(name, value);
      if (name === 'Public-Lines' || name === 'Private-Lines') {
        const count = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
        if (!(count <= lines.length - i)) throw new SSHException(`corrupt PuTTY key file: ${name}: ${value} but ${lines.length - i} lines follow`);
        const text = lines.slice(i, i + count).join('');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
          throw new SSHException(`corrupt PuTTY key file: invalid base64 after ${name}`);
        }
        blobs.set(name, Buffer.from(text, 'base64'));
        i += count;
      }
    }
    return new PpkFile(version, head[2], fields, blobs);
  }

  field(name: string): string {
    const v = this.fields.get(name);
    if (v === undefined) throw new SSHException(`corrupt PuTTY key file: no ${name} line`);
    return v;
  }

  number(name: string, min: number, max: number): number {
    const v = this.field(name);
    const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max)) throw new SSHException(`PuTTY key file: ${name} ${JSON.stringify(v)} is outside ${min}-${max}`);
    return n;
  }

  hex(name: string): Buffer {
    const v = this.field(name);
    if (!/^([0-9a-fA-F]{2})+$/.test(v)) throw new SSHException(`corrupt PuTTY key file: ${name} is not hex`);
    return Buffer.from(v, 'hex');
  }
}
