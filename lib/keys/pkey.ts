import { createHash, createPublicKey, KeyObject } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { readLocalFile } from '../files';
import { SSHException, UnknownKeyType } from '../errors';
import { Message } from '../wire/message';
import { keyClassForNodeType, keyClassForType } from './registry';
import type { KeyClass } from './registry';
import { loadPrivateKeyText } from './formats/load';
import { encodeOpenSSHPrivateKey } from './formats/openssh';
import { encodePemPrivateKey } from './formats/pem';
import { encodePuttyPrivateKey } from './formats/ppk';
import { decodeSecshBlock, isSecshBlock, SECSH_PUBLIC } from './formats/rfc4716';
import { PublicBlob, SSHCertificate, isCertType } from './certificate';

/** Password or passphrase for an encrypted key file. */
export type Passphrase = string | Buffer;

/** Private-key file formats `writePrivateKey` can produce. */
export type PrivateKeyFormat = 'openssh' | 'pem' | 'pkcs8' | 'ppk';

/** Anything with a Python-file-like `read()`. */
export interface ReadableFileLike {
  read(): string | Buffer;
}
/** Anything with a Python-file-like `write()`. */
export interface WritableFileLike {
  write(data: string): unknown;
}

/**
 * How a key is constructed, as Paramiko's `RSAKey(msg=, data=, filename=, password=, file_obj=,
 * key=)`: exactly one source.
 */
export interface PKeyOptions {
  /** A public blob as a Message positioned at its start. */
  msg?: Message;
  /** A public blob. */
  data?: Buffer;
  /** A private-key file. */
  filename?: string;
  /** A private-key file's text in a file-like object. */
  fileObj?: ReadableFileLike;
  /** Password for an encrypted private-key file. */
  password?: Passphrase | null;
  /** A Node KeyObject, private or public. */
  key?: KeyObject;
}

/** Reads a key source given as text, bytes or a file-like object. */
function sourceText(data: string | Buffer | ReadableFileLike): string | Buffer {
  return typeof data === 'string' || Buffer.isBuffer(data) ? data : data.read();
}

/** The class named by a key type string, or UnknownKeyType. */
function classFor(keyType: string, blob: Buffer | null = null): KeyClass {
  const cls = keyClassForType(keyType);
  if (!cls) throw new UnknownKeyType(keyType, blob);
  return cls;
}

/**
 * Base class of SSH keys (Paramiko's `PKey`). A key is a Node `KeyObject` pair: every
 * operation runs in OpenSSL through `node:crypto`. Equality compares public parts only, so a
 * private key equals its public half.
 */
export abstract class PKey {
  /** The public half, always present. */
  protected readonly publicKey: KeyObject;
  /** The private half, or null for a public-only key. */
  protected readonly privateKey: KeyObject | null;
  /** The comment of the file the key came from ('' when none). */
  comment = '';
  /** The certificate loaded with `loadCertificate`, or null. */
  publicBlob: SSHCertificate | null = null;
  private blobCache: Buffer | null = null;

  constructor(options: PKeyOptions = {}) {
    const cls = new.target as unknown as KeyClass;
    const sources = (['msg', 'data', 'filename', 'fileObj', 'key'] as const).filter((k) => options[k] !== undefined);
    if (sources.length !== 1) {
      throw new TypeError(`${cls.name} needs exactly one of msg, data, filename, fileObj, key (got ${sources.join(', ') || 'none'})`);
    }
    let priv: KeyObject | null = null;
    let pub: KeyObject;
    if (options.key) {
      if (options.key.type === 'secret') throw new TypeError('a symmetric KeyObject is not an SSH key');
      if (options.key.asymmetricKeyType !== cls.nodeKeyType) {
        throw new SSHException(`${cls.name} cannot hold a ${options.key.asymmetricKeyType} key`);
      }
      priv = options.key.type === 'private' ? options.key : null;
      pub = priv ? createPublicKey(priv) : options.key;
    } else if (options.msg || options.data) {
      const msg = options.msg ?? new Message(options.data);
      const keyType = msg.getText();
      if (!cls.keyTypes.includes(keyType)) {
        throw new SSHException(`${cls.name} cannot read a key of type ${JSON.stringify(keyType)}`);
      }
      pub = cls.publicFromBlob(keyType, msg);
    } else {
      const text = options.filename !== undefined ? readLocalFile(options.filename) : sourceText(options.fileObj!);
      const loaded = loadPrivateKeyText(text, options.password ?? null, options.filename);
      if (loaded.cls !== cls) {
        throw new SSHException(`not a valid ${cls.name} private key file: it holds a ${loaded.cls.name}`);
      }
      priv = loaded.privateKey;
      pub = createPublicKey(priv);
      this.comment = loaded.comment;
    }
    this.publicKey = pub;
    this.privateKey = priv;
  }

  // ---- loading ----

  /**
   * Loads a private key from text, bytes or a file-like object. Called on a subclass, it
   * insists on that type (`RSAKey.fromPrivateKey` refuses an Ed25519 key), as Paramiko does.
   */
  static fromPrivateKey<T extends PKey>(
    this: abstract new (o: PKeyOptions) => T,
    data: string | Buffer | ReadableFileLike,
    password: Passphrase | null = null,
  ): T {
    const loaded = loadPrivateKeyText(sourceText(data), password);
    return finishLoad(this, loaded);
  }

  /** Loads a private key from a file (see `fromPrivateKey`). */
  static fromPrivateKeyFile<T extends PKey>(
    this: abstract new (o: PKeyOptions) => T,
    filename: string,
    password: Passphrase | null = null,
  ): T {
    const loaded = loadPrivateKeyText(readLocalFile(filename), password, filename);
    return finishLoad(this, loaded);
  }

  /**
   * Loads a private key of any type from a path, and the certificate beside it
   * (`<path>-cert.pub`) when there is one, as Paramiko's `PKey.from_path`.
   */
  static fromPath(path: string, passphrase: Passphrase | null = null): PKey {
    const key = PKey.fromPrivateKeyFile(path, passphrase);
    const certPath = `${path}-cert.pub`;
    if (existsSync(certPath)) key.loadCertificate(certPath);
    return key;
  }

  /**
   * A public key from its type name and wire blob. A certificate type gives the certified key
   * with the certificate attached as `publicBlob`.
   */
  static fromTypeString(keyType: string, keyBytes: Buffer): PKey {
    if (isCertType(keyType)) {
      const cert = SSHCertificate.fromBlob(keyBytes);
      const key = cert.key;
      key.publicBlob = cert;
      return key;
    }
    const cls = classFor(keyType, keyBytes);
    const msg = new Message(keyBytes);
    const inner = msg.getText();
    if (inner !== keyType) {
      throw new SSHException(`key blob holds a ${JSON.stringify(inner)} key, not ${JSON.stringify(keyType)}`);
    }
    msg.rewind();
    const key = new cls({ msg });
    if (msg.remaining) throw new SSHException(`${msg.remaining} stray bytes after the ${keyType} key blob`);
    return key;
  }

  /** A public key from its wire blob (the type is read from the blob). */
  static fromBlob(blob: Buffer): PKey {
    const keyType = new Message(blob).getText();
    return PKey.fromTypeString(keyType, blob);
  }

  /** A public key from the base64 of its wire blob. */
  static fromBase64(b64: string): PKey {
    return PKey.fromBlob(decodeBase64Strict(b64));
  }

  /**
   * A public key from one line of a `.pub` or `authorized_keys` file
   * (`[options] type base64 [comment]`). Use `parseAuthorizedKeysLine` to keep the options.
   */
  static fromPublicKeyLine(line: string): PKey {
    const { keyType, blob, comment } = splitPublicKeyLine(line);
    const key = PKey.fromTypeString(keyType, blob);
    key.comment = comment;
    return key;
  }

  /**
   * A public key from a `.pub` file: OpenSSH's one line, the RFC 4716 block that
   * `ssh-keygen -e` and PuTTYgen write (`---- BEGIN SSH2 PUBLIC KEY ----`), or a PEM public key
   * (`-----BEGIN PUBLIC KEY-----` / `RSA PUBLIC KEY`, from `ssh-keygen -e -m PKCS8|PEM` or OpenSSL).
   */
  static fromPublicKeyFile(filename: string): PKey {
    const text = readLocalFile(filename, 'utf8');
    if (isSecshBlock(text, SECSH_PUBLIC)) {
      try {
        const { blob, comment } = decodeSecshBlock(text, SECSH_PUBLIC);
        const key = PKey.fromBase64(blob);
        key.comment = comment;
        return key;
      } catch (e) {
        if (e instanceof Error) e.message = `${filename}: ${e.message}`;
        throw e;
      }
    }
    const pem = /-----BEGIN (RSA )?PUBLIC KEY-----/.exec(text);
    if (pem) {
      // SubjectPublicKeyInfo or PKCS#1 (`ssh-keygen -e -m PKCS8` / `-m PEM`, openssl pkey -pubout)
      let key: KeyObject;
      try {
        key = createPublicKey({ key: text.slice(pem.index), format: 'pem' });
      } catch (e) {
        throw new SSHException(`${filename}: corrupt ${pem[0].slice(11, -5)} (${(e as Error).message})`, { cause: e });
      }
      const cls = keyClassForNodeType(key.asymmetricKeyType);
      if (!cls) throw new UnknownKeyType(key.asymmetricKeyType ?? null);
      return new cls({ key });
    }
    const line = text.split('\n').find((l) => l.trim() && !l.trim().startsWith('#'));
    if (!line) throw new SSHException(`${filename}: no public key in the file`);
    return PKey.fromPublicKeyLine(line);
  }

  // ---- the public half ----

  /** The SSH key type name, e.g. 'ssh-ed25519'. */
  abstract getName(): string;
  /** The size in bits (modulus for RSA and DSA, curve size for ECDSA, 256 for Ed25519). */
  abstract getBits(): number;
  /** Short algorithm name as `ssh-keygen -l` prints it: 'RSA', 'ECDSA', 'ED25519', 'DSA'. */
  abstract get algorithmName(): string;
  /** Writes the public fields after the type name. */
  protected abstract writePublicFields(m: Message): void;
  /** Writes the private fields of an OpenSSH private-key file section (after the type name). */
  abstract writeOpenSSHPrivateFields(m: Message): void;
  /** Signature algorithm names this key can produce, preferred first. */
  abstract signatureAlgorithms(): string[];
  /** Signs with the given algorithm, returning the raw signature bytes. */
  protected abstract signRaw(data: Buffer, algorithm: string): Buffer;
  /** Checks raw signature bytes made with the given algorithm. */
  protected abstract verifyRaw(data: Buffer, algorithm: string, signature: Buffer): boolean;

  /** The SSH wire encoding of the public key (Paramiko's `asbytes()`). */
  asBytes(): Buffer {
    if (!this.blobCache) {
      const m = new Message().addString(this.getName());
      this.writePublicFields(m);
      this.blobCache = Buffer.from(m.asBytes());
    }
    return this.blobCache;
  }

  getBase64(): string {
    return this.asBytes().toString('base64');
  }

  /** Raw MD5 of the public blob (16 bytes), as Paramiko's `get_fingerprint()`. */
  getFingerprint(): Buffer {
    return createHash('md5').update(this.asBytes()).digest();
  }

  /** `SHA256:<base64>` as `ssh-keygen -l` prints it. */
  get fingerprint(): string {
    return 'SHA256:' + createHash('sha256').update(this.asBytes()).digest('base64').replace(/=+$/, '');
  }

  /** The public key line for a `.pub` or `authorized_keys` file. */
  toPublicKeyLine(comment: string = this.comment): string {
    return `${this.getName()} ${this.getBase64()}${comment ? ' ' + comment : ''}`;
  }

  /** The key's Node KeyObject (public half). */
  get publicKeyObject(): KeyObject {
    return this.publicKey;
  }

  canSign(): boolean {
    return this.privateKey !== null;
  }

  /** Equal when the public parts are (private halves and comments are ignored). */
  equals(other: unknown): boolean {
    return other instanceof PKey && this.asBytes().equals(other.asBytes());
  }

  /** The names this key is known by in algorithm negotiation: its type, and its cert type if any. */
  identifiers(): string[] {
    return this.publicBlob ? [this.getName(), this.publicBlob.keyType] : [this.getName()];
  }

  /**
   * Attaches an OpenSSH certificate (a `-cert.pub` path, or its text) whose key must be this key.
   * A value without whitespace is a path (certificate text is `type base64...`): IOError if it
   * cannot be read.
   */
  loadCertificate(value: string): void {
    const text = /\s/.test(value.trim()) ? value : readLocalFile(value, 'utf8');
    const cert = SSHCertificate.fromString(text);
    if (!cert.key.equals(this)) {
      throw new SSHException(`PublicBlob type ${cert.keyType} incompatible with key type ${this.getName()}: the certificate is for another key`);
    }
    this.publicBlob = cert;
  }

  // ---- signatures ----

  /**
   * Signs `data`, returning the SSH signature blob (string algorithm, string signature) as a
   * Message. `algorithm` picks among `signatureAlgorithms()` (rsa-sha2-256 / rsa-sha2-512 /
   * ssh-rsa for RSA keys).
   */
  signSshData(data: Buffer | string, algorithm?: string | null): Message {
    if (!this.privateKey) throw new SSHException(`cannot sign with a public ${this.getName()} key`);
    const algs = this.signatureAlgorithms();
    const alg = algorithm ?? algs[algs.length - 1];
    if (!algs.includes(alg)) {
      throw new SSHException(`${this.getName()} keys cannot make ${JSON.stringify(alg)} signatures (they make ${algs.join(', ')})`);
    }
    const sig = this.signRaw(toBuffer(data), alg);
    return new Message().addString(alg).addString(sig);
  }

  /** Checks an SSH signature blob (a Message or its bytes) over `data`. Never throws on bad input. */
  verifySshSig(data: Buffer | string, msg: Message | Buffer): boolean {
    try {
      const m = Buffer.isBuffer(msg) ? new Message(msg) : new Message(msg.asBytes());
      const alg = m.getText();
      const sig = m.getString();
      if (m.remaining) return false;
      if (!this.signatureAlgorithms().includes(alg)) return false;
      return this.verifyRaw(toBuffer(data), alg, sig);
    } catch {
      return false;
    }
  }

  // ---- writing ----

  /**
   * The private key as file text: OpenSSH format by default (as `ssh-keygen` writes), 'pem'
   * for the traditional PKCS#1 / SEC1 form (PKCS#8 for Ed25519, which has no other), or
   * 'pkcs8'. Encrypted when a password is given.
   */
  exportPrivateKey(password: Passphrase | null = null, format: PrivateKeyFormat = 'openssh'): string {
    if (!this.privateKey) throw new SSHException(`cannot write a public ${this.getName()} key as a private key`);
    if (format === 'openssh') return encodeOpenSSHPrivateKey(this, password, this.comment);
    if (format === 'ppk') return encodePuttyPrivateKey(this, password, this.comment);
    return encodePemPrivateKey(this.privateKey, format, password);
  }

  /** Writes the private key to a file-like object (see `exportPrivateKey`). */
  writePrivateKey(fileObj: WritableFileLike, password: Passphrase | null = null, format: PrivateKeyFormat = 'openssh'): void {
    fileObj.write(this.exportPrivateKey(password, format));
  }

  /** Writes the private key to a file created with mode 0600 (see `exportPrivateKey`). */
  writePrivateKeyFile(filename: string, password: Passphrase | null = null, format: PrivateKeyFormat = 'openssh'): void {
    const text = this.exportPrivateKey(password, format);
    const fd = openSync(filename, 'w', 0o600);
    try {
      fchmodSync(fd, 0o600); // an existing file keeps its mode on open: tighten it
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  }

  /** The private KeyObject (for the transport and agent layers). */
  get privateKeyObject(): KeyObject | null {
    return this.privateKey;
  }
}

function toBuffer(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function finishLoad<T extends PKey>(
  target: abstract new (o: PKeyOptions) => T,
  loaded: ReturnType<typeof loadPrivateKeyText>,
): T {
  if ((target as unknown) !== PKey && (loaded.cls as unknown) !== target) {
    throw new SSHException(`not a valid ${target.name} private key file: it holds a ${loaded.cls.name}`);
  }
  const key = new loaded.cls({ key: loaded.privateKey }) as T;
  key.comment = loaded.comment;
  return key;
}

/** Strict base64: only the alphabet and trailing '=', so garbage is refused rather than skipped. */
export function decodeBase64Strict(b64: string): Buffer {
  const s = b64.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) {
    throw new SSHException(`invalid base64 in key data: ${JSON.stringify(s.slice(0, 40))}`);
  }
  return Buffer.from(s, 'base64');
}

/** Splits `type base64 [comment]` (no options) into its parts. */
export function splitPublicKeyLine(line: string): { keyType: string; blob: Buffer; comment: string } {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) throw new SSHException(`not a public key line: ${JSON.stringify(line.slice(0, 60))}`);
  const [keyType, b64, ...rest] = parts;
  return { keyType, blob: decodeBase64Strict(b64), comment: rest.join(' ') };
}
