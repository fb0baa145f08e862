import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PasswordRequiredException, SSHException, UnknownKeyType } from '../../errors';
import { Message } from '../../wire/message';
import { keyClassForType } from '../registry';
import type { KeyClass } from '../registry';
import type { Passphrase, PKey } from '../pkey';
import { bcryptPbkdf } from './kdf';
import { decryptSection, encryptSection, keyFileCipher } from './ciphers';
import { pemArmor } from './pem-armor';

/**
 * OpenSSH's private key format (PROTOCOL.key in OpenSSH's source tree):
 *
 *   "openssh-key-v1\0" string ciphername, string kdfname, string kdfoptions, uint32 nkeys,
 *   string publickey[nkeys], string encrypted   (+ 16-byte tag for GCM ciphers)
 *
 * where `encrypted` holds uint32 checkint twice, then per key its type, private fields and
 * comment, then padding bytes 1, 2, 3... to the cipher's block size.
 */
const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
/** ssh-keygen's defaults: `-Z aes256-ctr`, `-a 16`, 16-byte salt. */
const DEFAULT_CIPHER = 'aes256-ctr';
const DEFAULT_ROUNDS = 16;
const SALT_LENGTH = 16;

export interface LoadedKey {
  cls: KeyClass;
  privateKey: KeyObject;
  comment: string;
}

/** The passphrase's bytes; empty for none. */
export function passBytes(p: Passphrase | null | undefined): Buffer {
  if (p === null || p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

export function decodeOpenSSHPrivateKey(data: Buffer, password: Passphrase | null): LoadedKey {
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SSHException('not an OpenSSH private key: the "openssh-key-v1" magic is missing');
  }
  const m = new Message(data.subarray(MAGIC.length));
  const cipherName = m.getText();
  const kdfName = m.getText();
  const kdfOptions = m.getString();
  const nkeys = m.getInt();
  if (nkeys !== 1) throw new SSHException(`OpenSSH private key file holds ${nkeys} keys; only files with one key are supported`);
  const publicBlob = m.getString();
  const encrypted = m.getString();
  const cipher = keyFileCipher(cipherName);
  const tag = cipher.tagLength ? m.getBytes(cipher.tagLength) : null;

  let plain: Buffer | null;
  if (cipherName === 'none') {
    if (kdfName !== 'none') throw new SSHException(`OpenSSH private key: kdf ${kdfName} without a cipher`);
    plain = encrypted;
  } else {
    if (kdfName !== 'bcrypt') throw new SSHException(`OpenSSH private key: unknown kdf ${JSON.stringify(kdfName)}`);
    if (passBytes(password).length === 0) {
      throw new PasswordRequiredException('private key file is encrypted');
    }
    const ko = new Message(kdfOptions);
    const salt = ko.getString();
    const rounds = ko.getInt();
    const material = bcryptPbkdf(passBytes(password), salt, cipher.keyLength + cipher.ivLength, rounds);
    if (encrypted.length % cipher.blockSize) {
      throw new SSHException(`corrupt OpenSSH private key: encrypted section is not a multiple of ${cipher.blockSize} bytes`);
    }
    plain = decryptSection(cipher, material.subarray(0, cipher.keyLength), material.subarray(cipher.keyLength), encrypted, tag);
    if (!plain) throw new SSHException('wrong password for private key file (its authentication tag does not verify)');
  }

  const p = new Message(plain);
  const check1 = p.getInt();
  const check2 = p.getInt();
  if (check1 !== check2) {
    throw new SSHException(
      cipherName === 'none'
        ? 'corrupt OpenSSH private key: check values differ'
        : 'wrong password for private key file (or the file is corrupt): check values differ',
    );
  }
  const keyType = p.getText();
  const cls = keyClassForType(keyType);
  if (!cls) throw new UnknownKeyType(keyType);
  const privateKey = cls.privateFromOpenSSH(keyType, p);
  const comment = p.getText();
  const padding = p.getRemainder();
  for (let i = 0; i < padding.length; i++) {
    if (padding[i] !== ((i + 1) & 0xff)) throw new SSHException('corrupt OpenSSH private key: bad padding');
  }
  const key = new cls({ key: privateKey });
  if (!key.asBytes().equals(publicBlob)) {
    throw new SSHException('corrupt OpenSSH private key: the private part does not match the public key');
  }
  return { cls, privateKey, comment };
}

export function encodeOpenSSHPrivateKey(key: PKey, password: Passphrase | null, comment: string): string {
  const usePass = passBytes(password).length > 0;
  const cipherName = usePass ? DEFAULT_CIPHER : 'none';
  const cipher = keyFileCipher(cipherName);
  const check = randomBytes(4).readUInt32BE(0);
  const body = new Message().addInt(check).addInt(check).addString(key.getName());
  key.writeOpenSSHPrivateFields(body);
  body.addString(comment);
  // OpenSSH's own padding: 1, 2, 3... up to the block size, none when already aligned (AsyncSSH
  // refuses a full block). Paramiko misreads an aligned section that ends in an empty comment
  // (it takes the comment length's 0 byte for a padding length); ssh-keygen's files with
  // `-C ''` have the same problem there. Give keys a comment when Paramiko must read them.
  for (let i = 1; body.asBytes().length % cipher.blockSize; i++) body.addByte(i);

  const out = new Message().addBytes(MAGIC).addString(cipherName);
  if (usePass) {
    const salt = randomBytes(SALT_LENGTH);
    const material = bcryptPbkdf(passBytes(password), salt, cipher.keyLength + cipher.ivLength, DEFAULT_ROUNDS);
    const sealed = encryptSection(cipher, material.subarray(0, cipher.keyLength), material.subarray(cipher.keyLength), body.asBytes());
    out.addString('bcrypt').addString(new Message().addString(salt).addInt(DEFAULT_ROUNDS).asBytes());
    out.addInt(1).addString(key.asBytes());
    out.addString(sealed.subarray(0, sealed.length - cipher.tagLength)).addBytes(sealed.subarray(sealed.length - cipher.tagLength));
  } else {
    out.addString('none').addString('').addInt(1).addString(key.asBytes()).addString(body.asBytes());
  }
  return pemArmor('OPENSSH PRIVATE KEY', out.asBytes());
}
