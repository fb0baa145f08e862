import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECDSAKey, Ed25519Key, Message, PasswordRequiredException, PKey, RSAKey, SSHException, UnknownKeyType } from '../lib';
import { KEY_TYPES } from './support/key-types';
import { itWithPeers, runPeer } from './support/peers';

// PuTTY's .ppk files, written by PuTTY's own puttygen (Debian putty-tools).
const PUTTYGEN = '/usr/bin/puttygen';
const PASS = 'a ppk passphrase';
/** Argon2 settings small enough for a test (puttygen's default costs ~100 ms of its C per load). */
const QUICK_KDF = 'memory=256,passes=2';
const FIXTURES = join(__dirname, 'fixtures', 'keys');

let dir: string;
let passFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-ppk-'));
  passFile = join(dir, 'passphrase');
  writeFileSync(passFile, PASS);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const puttygen = (...args: string[]) => runPeer(PUTTYGEN, args);

/** puttygen -l: "<type> <bits> SHA256:..." */
function puttygenFingerprint(path: string, encrypted: boolean): { bits: number; fingerprint: string; type: string } {
  const out = puttygen(path, '-l', ...(encrypted ? ['--old-passphrase', passFile] : [])).trim();
  const [type, bits, fingerprint] = out.split(' ');
  return { type, bits: Number(bits), fingerprint };
}

/** The forms puttygen writes: version, encryption and Argon2 flavour. */
const FORMATS: Array<[string, string[], boolean]> = [
  ['v3 plain', [], false],
  ['v3 Argon2id', ['--ppk-param', `kdf=argon2id,${QUICK_KDF}`], true],
  ['v3 Argon2i, 2 lanes', ['--ppk-param', `kdf=argon2i,${QUICK_KDF},parallelism=2`], true],
  ['v3 Argon2d', ['--ppk-param', `kdf=argon2d,${QUICK_KDF}`], true],
  ['v2 plain', ['--ppk-param', 'version=2'], false],
  ['v2 encrypted', ['--ppk-param', 'version=2'], true],
];

describe('PuTTY .ppk files written by puttygen', () => {
  for (const [name, typeArgs, cls] of KEY_TYPES) {
    itWithPeers(['puttygen'], `${name}: every version and encryption loads with puttygen's fingerprint, and signs`, () => {
      const source = join(dir, `${name}.ppk`);
      puttygen(...typeArgs, '-C', `ppk ${name} é`, '-o', source, '--new-passphrase', '/dev/null');
      puttygen(source, '-O', 'private-openssh-new', '-o', `${source}.openssh`);
      const openssh = PKey.fromPrivateKeyFile(`${source}.openssh`);
      // PuTTYgen's public key file is RFC 4716's block
      puttygen(source, '-O', 'public', '-o', `${source}.pub`);
      const pub = PKey.fromPublicKeyFile(`${source}.pub`);
      expect(pub.equals(openssh)).toBe(true);
      expect(pub.comment).toBe(`ppk ${name} é`);
      for (const [format, formatArgs, encrypted] of FORMATS) {
        const path = join(dir, `${name}-${format.replace(/\W+/g, '_')}.ppk`);
        puttygen(source, '-P', '--new-passphrase', encrypted ? passFile : '/dev/null', '-o', path, ...formatArgs);
        const key = PKey.fromPrivateKeyFile(path, encrypted ? PASS : null);
        const expected = puttygenFingerprint(path, encrypted);
        expect([format, key.fingerprint]).toEqual([format, expected.fingerprint]);
        // puttygen counts Ed25519 as 255 bits; Paramiko and ssh-keygen say 256, as we do
        expect([format, key.getBits()]).toEqual([format, name === 'ed25519' ? 256 : expected.bits]);
        expect(key.getName()).toBe(expected.type);
        expect(key).toBeInstanceOf(cls);
        expect(key.comment).toBe(`ppk ${name} é`);
        expect(key.equals(openssh)).toBe(true);
        const sig = key.signSshData(Buffer.from('signed'), key.signatureAlgorithms()[0]);
        expect(openssh.verifySshSig(Buffer.from('signed'), sig)).toBe(true);
        if (encrypted) {
          expect(() => PKey.fromPrivateKeyFile(path)).toThrow(PasswordRequiredException);
          expect(() => PKey.fromPrivateKeyFile(path, 'not it')).toThrow(/wrong password/);
        }
      }
    });
  }

  itWithPeers(['puttygen', 'ssh-keygen'], 'ssh.com (SECSH) private keys that puttygen exports load, plain and 3DES-encrypted; ssh-keygen -i agrees', () => {
    for (const [name, typeArgs] of KEY_TYPES.filter(([n]) => n === 'rsa' || n === 'dsa')) {
      const source = join(dir, `sshcom-${name}.ppk`);
      puttygen(...typeArgs, '-C', `sshcom ${name}`, '-o', source, '--new-passphrase', '/dev/null');
      const plain = join(dir, `sshcom-${name}`);
      puttygen(source, '-O', 'private-sshcom', '-o', plain);
      const encrypted = join(dir, `sshcom-${name}-enc`);
      puttygen(source, '-O', 'private-sshcom', '-o', encrypted, '-P', '--new-passphrase', passFile);
      const expected = puttygenFingerprint(source, false).fingerprint;
      const key = PKey.fromPrivateKeyFile(plain);
      expect([name, key.fingerprint, key.comment]).toEqual([name, expected, `sshcom ${name}`]);
      expect(PKey.fromPrivateKeyFile(encrypted, PASS).fingerprint).toBe(expected);
      expect(() => PKey.fromPrivateKeyFile(encrypted)).toThrow(PasswordRequiredException);
      expect(() => PKey.fromPrivateKeyFile(encrypted, 'not it')).toThrow(/wrong password/);
      const converted = runPeer('/usr/bin/ssh-keygen', ['-i', '-f', plain]);
      expect(PKey.fromPrivateKey(converted).equals(key)).toBe(true);
      const sig = key.signSshData(Buffer.from('sshcom'), key.signatureAlgorithms()[0]);
      expect(PKey.fromPrivateKey(converted).verifySshSig(Buffer.from('sshcom'), sig)).toBe(true);
    }
  });

  itWithPeers(['puttygen'], "puttygen's default Argon2 settings (8 MiB, passes timed to 100 ms of its C) load", () => {
    const path = join(dir, 'default-kdf.ppk');
    puttygen('-t', 'ed25519', '-o', path, '--new-passphrase', passFile);
    expect(readFileSync(path, 'utf8')).toContain('Argon2-Memory: 8192');
    expect(PKey.fromPrivateKeyFile(path, PASS).fingerprint).toBe(puttygenFingerprint(path, true).fingerprint);
  });

  itWithPeers(['puttygen'], 'a class refuses a .ppk of another type, and RSAKey loads an RSA one', () => {
    const path = join(dir, 'rsa-class.ppk');
    puttygen('-t', 'rsa', '-b', '2048', '-o', path, '--new-passphrase', '/dev/null');
    expect(RSAKey.fromPrivateKeyFile(path)).toBeInstanceOf(RSAKey);
    expect(() => Ed25519Key.fromPrivateKeyFile(path)).toThrow(SSHException);
  });

  itWithPeers(['puttygen'], 'an altered file fails its MAC; bad structure is named', () => {
    const path = join(dir, 'altered.ppk');
    puttygen('-t', 'ed25519', '-C', 'original', '-o', path, '--new-passphrase', '/dev/null');
    const text = readFileSync(path, 'utf8');
    // the comment is covered by the MAC, so is the public key
    expect(() => PKey.fromPrivateKey(text.replace('Comment: original', 'Comment: edited'))).toThrow(/Private-MAC does not verify/);
    const other = join(dir, 'other.ppk');
    puttygen('-t', 'ed25519', '-o', other, '--new-passphrase', '/dev/null');
    const otherPublic = /Public-Lines: 2\n(.*\n.*\n)/.exec(readFileSync(other, 'utf8'))![1];
    expect(() => PKey.fromPrivateKey(text.replace(/(Public-Lines: 2\n)(.*\n.*\n)/, `$1${otherPublic}`))).toThrow(/Private-MAC does not verify/);
    // CR LF line ends are read as PuTTY reads them
    expect(PKey.fromPrivateKey(text.replace(/\n/g, '\r\n')).comment).toBe('original');
    expect(() => PKey.fromPrivateKey(text.replace('PuTTY-User-Key-File-3', 'PuTTY-User-Key-File-1'))).toThrow(/version 1 is not supported/);
    expect(() => PKey.fromPrivateKey(text.replace('Public-Lines: 2', 'Public-Lines: 99'))).toThrow(/Public-Lines: 99 but \d+ lines follow/);
    expect(() => PKey.fromPrivateKey(text.replace(/Private-MAC: .*\n/, ''))).toThrow(/no Private-MAC line/);
    expect(() => PKey.fromPrivateKey(text.replace('Encryption: none', 'Encryption: aes128-ctr'))).toThrow(/unknown Encryption "aes128-ctr"/);
    expect(() => PKey.fromPrivateKey(text.replace('ssh-ed25519', 'ssh-ed448'))).toThrow(/header says ssh-ed448/);
  });

  itWithPeers(['puttygen'], 'hostile Argon2 parameters are refused before any memory is spent', () => {
    const path = join(dir, 'hostile.ppk');
    puttygen('-t', 'ed25519', '-o', path, '--new-passphrase', passFile, '--ppk-param', QUICK_KDF);
    const text = readFileSync(path, 'utf8');
    expect(() => PKey.fromPrivateKey(text.replace(/Argon2-Memory: \d+/, 'Argon2-Memory: 4294967295'), PASS)).toThrow(/Argon2-Memory "4294967295" is outside/);
    expect(() => PKey.fromPrivateKey(text.replace(/Argon2-Passes: \d+/, 'Argon2-Passes: 0'), PASS)).toThrow(/Argon2-Passes "0" is outside/);
    expect(() => PKey.fromPrivateKey(text.replace('Key-Derivation: Argon2id', 'Key-Derivation: scrypt'), PASS)).toThrow(/unknown Key-Derivation "scrypt"/);
  });
});

describe('.ppk files we write', () => {
  const ours: Array<[string, PKey]> = [
    ['ed25519', Ed25519Key.generate()],
    ['ecdsa256', ECDSAKey.generate({ curve: 'nistp256' })],
    ['ecdsa521', ECDSAKey.generate({ curve: 'nistp521' })],
    ['rsa', RSAKey.generate(2048)],
  ];
  for (const [name, key] of ours) {
    itWithPeers(['puttygen'], `${name}: puttygen opens ours, plain and Argon2-encrypted, and exports the same key`, () => {
      key.comment = `ours ${name} é`;
      for (const password of [null, PASS]) {
        const path = join(dir, `ours-${name}-${password ? 'enc' : 'plain'}.ppk`);
        key.writePrivateKeyFile(path, password, 'ppk');
        const text = readFileSync(path, 'utf8');
        expect(text.startsWith(`PuTTY-User-Key-File-3: ${key.getName()}\nEncryption: ${password ? 'aes256-cbc' : 'none'}\nComment: ours ${name} é\n`)).toBe(true);
        // puttygen decrypts and checks the MAC to export the private key
        const exported = `${path}.openssh`;
        puttygen(path, '-O', 'private-openssh-new', '-o', exported, ...(password ? ['--old-passphrase', passFile] : []));
        expect(PKey.fromPrivateKeyFile(exported, password).equals(key)).toBe(true); // it keeps the passphrase
        expect(puttygenFingerprint(path, Boolean(password)).fingerprint).toBe(key.fingerprint);
        const back = PKey.fromPrivateKeyFile(path, password);
        expect(back.equals(key)).toBe(true);
        expect(back.comment).toBe(`ours ${name} é`);
      }
    });
  }

  it('a comment with a line break is refused; a public key cannot be written', () => {
    const key = Ed25519Key.generate();
    key.comment = 'two\nlines';
    expect(() => key.exportPrivateKey(null, 'ppk')).toThrow(/line break/);
    expect(() => PKey.fromBlob(key.asBytes()).exportPrivateKey(null, 'ppk')).toThrow(/public/);
  });
});

describe('PuTTY .ppk without puttygen', () => {
  // Written by puttygen 0.78 (passphrase below), with the fingerprints `puttygen -l` printed.
  const FIXTURE_PASS = 'fixture passphrase';
  it.each([
    ['ppk-v3-ed25519.ppk', 'SHA256:N9H3IwulDJsXG7X/YQ2q+8Sl8p77cgrsQzH4gf2RQ8w', 'ppk v3 fixture'],
    ['ppk-v2-ecdsa.ppk', 'SHA256:iymP48jAuslO1qVoHhJLhLlCQkvL9bLQxBEhTNepdOo', 'ppk v2 fixture'],
  ])('%s loads with its fingerprint and comment', (file, fingerprint, comment) => {
    const key = PKey.fromPrivateKeyFile(join(FIXTURES, file), FIXTURE_PASS);
    expect(key.fingerprint).toBe(fingerprint);
    expect(key.comment).toBe(comment);
    expect(() => PKey.fromPrivateKeyFile(join(FIXTURES, file), 'wrong')).toThrow(/wrong password/);
  });

  it('an unknown key type in a well-formed file raises UnknownKeyType', () => {
    // The MAC is checked before the key type is looked up: compute it (an empty key when unencrypted).
    const pub = new Message().addString('ssh-ed448').addString(Buffer.alloc(57, 1)).asBytes();
    const priv = new Message().addString(Buffer.alloc(57, 2)).asBytes();
    const macInput = new Message().addString('ssh-ed448').addString('none').addString('c').addString(pub).addString(priv).asBytes();
    const mac = createHmac('sha256', Buffer.alloc(0)).update(macInput).digest('hex');
    const file = [
      'PuTTY-User-Key-File-3: ssh-ed448',
      'Encryption: none',
      'Comment: c',
      'Public-Lines: 1',
      pub.toString('base64'),
      'Private-Lines: 1',
      priv.toString('base64'),
      `Private-MAC: ${mac}`,
      '',
    ].join('\n');
    expect(() => PKey.fromPrivateKey(file)).toThrow(UnknownKeyType);
  });
});
