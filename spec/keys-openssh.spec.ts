import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ECDSAKey,
  Ed25519Key,
  Message,
  PKey,
  RSAKey,
  SSH2_CERT_TYPE_HOST,
  SSH2_CERT_TYPE_USER,
  SSHCertificate,
  loadAuthorizedKeysFile,
  parseAuthorizedKeys,
} from '../lib';
import { KEY_TYPES } from './support/key-types';
import { itWithPeers, runPeer } from './support/peers';

// Everything here is checked against OpenSSH's own ssh-keygen (Debian openssh-client).
const KEYGEN = '/usr/bin/ssh-keygen';
const PASS = 'secret passphrase';
const keygen = (...args: string[]) => runPeer(KEYGEN, args);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-keygen-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `ssh-keygen -l` fingerprint of a file: "<bits> SHA256:... comment (TYPE)". */
function keygenFingerprint(path: string): { bits: number; fingerprint: string; type: string } {
  const out = keygen('-l', '-f', path).trim();
  const m = /^(\d+) (\S+) .*\((\w+)\)$/.exec(out);
  if (!m) throw new Error(`unexpected ssh-keygen -l output: ${out}`);
  return { bits: Number(m[1]), fingerprint: m[2], type: m[3] };
}

/** How ssh-keygen can write a private key: format flags and whether it is encrypted. */
const FORMATS: Array<[string, string[]]> = [
  ['openssh', ['-N', '']],
  ['openssh aes256-ctr', ['-N', PASS]],
  ['openssh aes256-cbc', ['-N', PASS, '-Z', 'aes256-cbc']],
  ['openssh aes256-gcm', ['-N', PASS, '-Z', 'aes256-gcm@openssh.com']],
  ['openssh chacha20-poly1305', ['-N', PASS, '-Z', 'chacha20-poly1305@openssh.com']],
  ['openssh aes128-ctr', ['-N', PASS, '-Z', 'aes128-ctr', '-a', '4']],
  ['PEM', ['-N', '', '-m', 'PEM']],
  ['PEM encrypted', ['-N', PASS, '-m', 'PEM']],
  ['PKCS8', ['-N', '', '-m', 'PKCS8']],
  ['PKCS8 encrypted', ['-N', PASS, '-m', 'PKCS8']],
];

describe('keys written by ssh-keygen', () => {
  for (const [name, typeArgs, cls] of KEY_TYPES) {
    itWithPeers(['ssh-keygen'], `${name}: every format loads, with ssh-keygen's fingerprint and bits`, () => {
      for (const [format, formatArgs] of FORMATS) {
        const path = join(dir, `${name}-${format.replace(/ /g, '_')}`);
        keygen('-q', ...typeArgs, ...formatArgs, '-C', `comment ${name}`, '-f', path);
        const encrypted = formatArgs[1] !== '';
        const key = PKey.fromPrivateKeyFile(path, encrypted ? PASS : null);
        const expected = keygenFingerprint(`${path}.pub`);
        expect([format, key.fingerprint]).toEqual([format, expected.fingerprint]);
        expect(key.getBits()).toBe(expected.bits);
        expect(key.algorithmName).toBe(expected.type);
        expect(key).toBeInstanceOf(cls);
        expect(PKey.fromPublicKeyFile(`${path}.pub`).equals(key)).toBe(true);
        // ssh-keygen writes Ed25519 in its own format whatever -m says, and only that format has comments
        const file = readFileSync(path, 'utf8');
        if (file.includes('OPENSSH PRIVATE KEY')) expect(key.comment).toBe(`comment ${name}`);
        const sig = key.signSshData(Buffer.from('x'), key.signatureAlgorithms()[0]);
        expect(PKey.fromPublicKeyFile(`${path}.pub`).verifySshSig(Buffer.from('x'), sig)).toBe(true);
      }
    });
  }
});

describe('RFC 4716 public keys (ssh-keygen -e and -i)', () => {
  itWithPeers(['ssh-keygen'], 'every key type exported by ssh-keygen -e loads; ssh-keygen -i reads the same key', () => {
    for (const [name, typeArgs] of KEY_TYPES) {
      const path = join(dir, `rfc4716-${name}`);
      keygen('-q', ...typeArgs, '-N', '', '-C', `rfc ${name}`, '-f', path);
      writeFileSync(`${path}.rfc`, keygen('-e', '-f', `${path}.pub`));
      const key = PKey.fromPublicKeyFile(`${path}.rfc`);
      expect([name, key.equals(PKey.fromPublicKeyFile(`${path}.pub`))]).toEqual([name, true]);
      expect(key.comment).toMatch(/converted by .* from OpenSSH/);
      expect(keygen('-i', '-f', `${path}.rfc`).trim()).toBe(`${key.getName()} ${key.getBase64()}`);
    }
  });
});

describe('PEM public keys (ssh-keygen -e -m PKCS8 and -m PEM)', () => {
  itWithPeers(['ssh-keygen'], 'load as the same key, the one ssh-keygen -i turns them back into', () => {
    // OpenSSH 9.2 exports Ed25519 in neither form.
    for (const [name, typeArgs] of KEY_TYPES.filter(([n]) => n !== 'ed25519')) {
      const path = join(dir, `pem-pub-${name}`);
      keygen('-q', ...typeArgs, '-N', '', '-f', path);
      const expected = PKey.fromPublicKeyFile(`${path}.pub`);
      for (const format of name === 'rsa' ? ['PKCS8', 'PEM'] : ['PKCS8']) {
        const pem = `${path}.${format}`;
        writeFileSync(pem, keygen('-e', '-m', format, '-f', `${path}.pub`));
        const key = PKey.fromPublicKeyFile(pem);
        expect([name, format, key.equals(expected)]).toEqual([name, format, true]);
        expect(key.canSign()).toBe(false);
        expect(keygen('-i', '-m', format, '-f', pem).trim()).toBe(`${key.getName()} ${key.getBase64()}`);
      }
    }
  });
});

describe('authenticated key-file ciphers', () => {
  itWithPeers(['ssh-keygen'], 'chacha20-poly1305 and AES-GCM sections: the right passphrase loads, a wrong one fails the tag', () => {
    for (const cipher of ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com']) {
      const path = join(dir, `tag-${cipher}`);
      keygen('-q', '-t', 'ed25519', '-N', PASS, '-Z', cipher, '-C', 'tagged', '-f', path);
      expect(PKey.fromPrivateKeyFile(path, PASS).fingerprint).toBe(keygenFingerprint(`${path}.pub`).fingerprint);
      expect(() => PKey.fromPrivateKeyFile(path, 'not the passphrase')).toThrow(/authentication tag does not verify/);
      // one flipped bit in the sealed section (its last bytes precede the 16-byte tag)
      const text = readFileSync(path, 'utf8');
      const body = Buffer.from(text.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
      body[body.length - 20] ^= 1;
      const armored = `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
      expect(() => PKey.fromPrivateKey(armored, PASS)).toThrow(/authentication tag does not verify/);
    }
  });
});

describe('keys we write', () => {
  const ours: Array<[string, PKey]> = [
    ['ed25519', Ed25519Key.generate()],
    ['ecdsa256', ECDSAKey.generate({ curve: 'nistp256' })],
    ['ecdsa384', ECDSAKey.generate({ curve: 'nistp384' })],
    ['ecdsa521', ECDSAKey.generate({ curve: 'nistp521' })],
    ['rsa', RSAKey.generate(2048)],
  ];
  for (const [name, key] of ours) {
    itWithPeers(['ssh-keygen'], `${name}: load in ssh-keygen -y in every format, plain and encrypted`, () => {
      key.comment = `ours ${name}`;
      for (const format of ['openssh', 'pem', 'pkcs8'] as const) {
        // OpenSSH 9.2 cannot read Ed25519 PKCS#8 (9.6 can): checked by OpenSSL in keys.spec.ts.
        if (name === 'ed25519' && format === 'pkcs8') continue;
        for (const password of [null, PASS]) {
          const path = join(dir, `ours-${name}-${format}-${password ? 'enc' : 'plain'}`);
          key.writePrivateKeyFile(path, password, format);
          const pub = keygen('-y', '-P', password ?? '', '-f', path).trim();
          expect(PKey.fromPublicKeyLine(pub).equals(key)).toBe(true);
          expect(pub.split(' ').slice(0, 2).join(' ')).toBe(`${key.getName()} ${key.getBase64()}`);
        }
      }
      writeFileSync(join(dir, `ours-${name}.pub`), key.toPublicKeyLine() + '\n');
      expect(keygenFingerprint(join(dir, `ours-${name}.pub`)).fingerprint).toBe(key.fingerprint);
    });
  }
});

/**
 * SSHSIG (OpenSSH's PROTOCOL.sshsig) wraps an ordinary SSH signature, so `ssh-keygen -Y`
 * checks our signatures and makes signatures for us to check, for every key type.
 */
function sshsigSignedData(namespace: string, message: Buffer): Buffer {
  return new Message()
    .addBytes(Buffer.from('SSHSIG'))
    .addString(namespace)
    .addString('')
    .addString('sha512')
    .addString(createHash('sha512').update(message).digest())
    .asBytes();
}

describe('signatures against ssh-keygen -Y (SSHSIG)', () => {
  const message = Buffer.from('a message signed for paramiko-ts\n');
  for (const [name, typeArgs] of KEY_TYPES.filter(([n]) => n !== 'dsa')) {
    itWithPeers(['ssh-keygen'], `${name}: ssh-keygen verifies ours and we verify ssh-keygen's`, () => {
      const path = join(dir, `sig-${name}`);
      keygen('-q', ...typeArgs, '-N', '', '-f', path);
      const key = PKey.fromPrivateKeyFile(path);
      writeFileSync(join(dir, 'msg'), message);

      // theirs -> ours
      keygen('-Y', 'sign', '-q', '-f', path, '-n', 'file', join(dir, 'msg'));
      const armored = readFileSync(join(dir, 'msg.sig'), 'utf8');
      const blob = new Message(Buffer.from(armored.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64'));
      expect(blob.getBytes(6).toString()).toBe('SSHSIG');
      expect(blob.getInt()).toBe(1);
      expect(PKey.fromBlob(blob.getString()).equals(key)).toBe(true);
      const ns = blob.getText();
      blob.getString();
      expect(blob.getText()).toBe('sha512');
      const sig = blob.getString();
      expect(key.verifySshSig(sshsigSignedData(ns, message), sig)).toBe(true);
      expect(key.verifySshSig(sshsigSignedData(ns, Buffer.from('other')), sig)).toBe(false);
      rmSync(join(dir, 'msg.sig'));

      // ours -> theirs, with the strongest algorithm we offer
      const ourSig = key.signSshData(sshsigSignedData('file', message), key.signatureAlgorithms()[0]);
      const out = new Message()
        .addBytes(Buffer.from('SSHSIG'))
        .addInt(1)
        .addString(key.asBytes())
        .addString('file')
        .addString('')
        .addString('sha512')
        .addString(ourSig.asBytes());
      const b64 = out.asBytes().toString('base64').replace(/.{1,76}/g, '$&\n');
      writeFileSync(join(dir, 'ours.sig'), `-----BEGIN SSH SIGNATURE-----\n${b64}-----END SSH SIGNATURE-----\n`);
      writeFileSync(join(dir, 'allowed'), `signer ${key.getName()} ${key.getBase64()}\n`);
      const verified = runPeer(KEYGEN, ['-Y', 'verify', '-f', join(dir, 'allowed'), '-I', 'signer', '-n', 'file', '-s', join(dir, 'ours.sig')], {
        input: message,
      });
      expect(verified).toMatch(/Good "file" signature for signer/);
    });
  }
});

describe('OpenSSH certificates', () => {
  itWithPeers(['ssh-keygen'], 'a user certificate parses into its fields and verifies', () => {
    const ca = join(dir, 'ca');
    const user = join(dir, 'user');
    keygen('-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', ca);
    keygen('-q', '-t', 'ed25519', '-N', '', '-f', user);
    keygen('-q', '-s', ca, '-I', 'alice@example', '-n', 'alice,deploy', '-z', '42', '-V', '20250101:20350101',
      '-O', 'force-command=/bin/true', '-O', 'no-port-forwarding', `${user}.pub`);
    const cert = SSHCertificate.fromFile(`${user}-cert.pub`);
    expect(cert.keyType).toBe('ssh-ed25519-cert-v01@openssh.com');
    expect(cert.certType).toBe(SSH2_CERT_TYPE_USER);
    expect(cert.keyId).toBe('alice@example');
    expect(cert.serial).toBe(42n);
    expect(cert.validPrincipals).toEqual(['alice', 'deploy']);
    expect(cert.criticalOptions.get('force-command')).toBe('/bin/true');
    expect([...cert.extensions.keys()].sort()).toEqual(['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-pty', 'permit-user-rc']);
    expect(cert.signatureKey.equals(PKey.fromPublicKeyFile(`${ca}.pub`))).toBe(true);
    expect(cert.signatureAlgorithm).toBe('rsa-sha2-512');
    expect(cert.key.equals(PKey.fromPublicKeyFile(`${user}.pub`))).toBe(true);
    expect(cert.verify()).toBe(true);
    expect(cert.isValidAt(new Date('2030-01-01T00:00:00Z'))).toBe(true);
    expect(cert.isValidAt(new Date('2036-01-01T00:00:00Z'))).toBe(false);
    expect(cert.allowsPrincipal('deploy')).toBe(true);
    expect(cert.allowsPrincipal('root')).toBe(false);

    // validity as ssh-keygen -L prints it
    const listing = keygen('-L', '-f', `${user}-cert.pub`);
    expect(listing).toMatch(/Serial: 42/);
    expect(listing).toMatch(/Key ID: "alice@example"/);
    expect(new Date(Number(cert.validAfter) * 1000).getFullYear()).toBe(2025);

    // a flipped byte in the signed part breaks the signature
    const blob = Buffer.from(cert.keyBlob);
    blob[blob.indexOf(Buffer.from('alice@example'))] ^= 0x20;
    expect(SSHCertificate.fromBlob(blob).verify()).toBe(false);
  });

  itWithPeers(['ssh-keygen'], 'host certificates of every key type, and PKey.fromPath loads the -cert.pub beside a key', () => {
    const ca = join(dir, 'hostca');
    keygen('-q', '-t', 'ed25519', '-N', '', '-f', ca);
    for (const [name, typeArgs] of KEY_TYPES.filter(([n]) => n !== 'dsa')) {
      const host = join(dir, `host-${name}`);
      keygen('-q', ...typeArgs, '-N', '', '-f', host);
      keygen('-q', '-s', ca, '-h', '-I', 'host', '-n', 'server.example', `${host}.pub`);
      const key = PKey.fromPath(host);
      expect(key.publicBlob).not.toBeNull();
      const cert = key.publicBlob!;
      expect(cert.certType).toBe(SSH2_CERT_TYPE_HOST);
      expect(cert.validPrincipals).toEqual(['server.example']);
      expect(cert.verify()).toBe(true);
      expect(cert.isValidAt()).toBe(true);
      expect(key.identifiers()).toEqual([key.getName(), `${key.getName()}-cert-v01@openssh.com`]);
      // the certificate as a public key type
      const viaType = PKey.fromTypeString(cert.keyType, cert.keyBlob);
      expect(viaType.equals(key)).toBe(true);
      expect(viaType.publicBlob?.keyId).toBe('host');
    }
  });

  itWithPeers(['ssh-keygen'], 'loadCertificate refuses a certificate for another key', () => {
    const ca = join(dir, 'ca-other');
    const user = join(dir, 'user-other');
    keygen('-q', '-t', 'ed25519', '-N', '', '-f', ca);
    keygen('-q', '-t', 'ed25519', '-N', '', '-f', user);
    keygen('-q', '-s', ca, '-I', 'x', `${user}.pub`);
    expect(() => Ed25519Key.generate().loadCertificate(`${user}-cert.pub`)).toThrow(/for another key/);
    const own = PKey.fromPrivateKeyFile(user);
    own.loadCertificate(readFileSync(`${user}-cert.pub`, 'utf8'));
    expect(own.publicBlob?.keyId).toBe('x');
  });
});

describe('authorized_keys', () => {
  itWithPeers(['ssh-keygen'], 'lines with options parse to the keys ssh-keygen -l lists', () => {
    const keys = [Ed25519Key.generate(), ECDSAKey.generate(), RSAKey.generate(1024)];
    const lines = [
      '# a comment',
      '',
      `${keys[0].toPublicKeyLine('plain@host')}`,
      `command="echo \\"hi, there\\"",no-pty,from="10.0.0.0/8,!10.1.*" ${keys[1].toPublicKeyLine('opts@host')}`,
      `cert-authority,principals="alice,bob" ${keys[2].toPublicKeyLine()}`,
    ];
    const path = join(dir, 'authorized_keys');
    writeFileSync(path, lines.join('\n') + '\n');
    const listed = keygen('-l', '-f', path).trim().split('\n').map((l) => l.split(' ')[1]);
    const { keys: parsed, errors } = loadAuthorizedKeysFile(path);
    expect(errors).toEqual([]);
    expect(parsed.map((e) => e.key.fingerprint)).toEqual(listed);
    expect(parsed[0].options.size).toBe(0);
    expect(parsed[0].comment).toBe('plain@host');
    expect(parsed[1].options.get('command')).toBe('echo "hi, there"');
    expect(parsed[1].options.get('no-pty')).toBe(true);
    expect(parsed[1].options.get('from')).toBe('10.0.0.0/8,!10.1.*');
    expect(parsed[1].lineNumber).toBe(4);
    expect(parsed[2].options.get('principals')).toBe('alice,bob');
  });

  it('a bad line is reported with its number and does not hide the others', () => {
    const good = Ed25519Key.generate().toPublicKeyLine();
    const { keys, errors } = parseAuthorizedKeys(`no-pty,command="unterminated ${good}\n${good}\nssh-ed25519 !!!\n`);
    expect(keys).toHaveLength(1);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/line 1: option command: missing closing quote/),
      expect.stringMatching(/line 3: invalid base64/),
    ]);
  });
});

describe('key files other implementations read', () => {
  // Padding as OpenSSH writes it (none when the section is aligned): AsyncSSH refuses a full
  // block of padding, and Paramiko misreads an aligned section whose comment is empty (as it does
  // ssh-keygen's). With a comment, as ssh-keygen always gives, both read every key we write.
  const write = (comment: string) => {
    const files: Array<[string, string]> = [];
    for (let i = 0; i < 24; i++) {
      const key = i % 3 === 0 ? Ed25519Key.generate() : i % 3 === 1 ? ECDSAKey.generate({ curve: 'nistp256' }) : RSAKey.generate(1024);
      key.comment = comment;
      const path = join(dir, `interop-${comment ? 'c' : 'n'}-${i}`);
      key.writePrivateKeyFile(path);
      files.push([path, ['Ed25519Key', 'ECDSAKey', 'RSAKey'][i % 3]]);
    }
    return files;
  };

  itWithPeers(['paramiko'], 'Paramiko loads every key we write with a comment', () => {
    const script = `import json, sys, paramiko\nbad = []\nfor path, cls in json.loads(sys.argv[1]):\n    try:\n        getattr(paramiko, cls).from_private_key_file(path)\n    except Exception as e:\n        bad.append('%s: %s' % (path, e))\nprint(json.dumps(bad))\n`;
    const out = runPeer('/usr/bin/python3', ['-c', script, JSON.stringify(write('pts@test'))]);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual([]);
  });

  itWithPeers(['asyncssh'], 'AsyncSSH loads every key we write, with a comment or without', () => {
    const script = `import json, sys, asyncssh\nbad = []\nfor path, cls in json.loads(sys.argv[1]):\n    try:\n        asyncssh.read_private_key(path)\n    except Exception as e:\n        bad.append('%s: %s' % (path, e))\nprint(json.dumps(bad))\n`;
    const out = runPeer('/usr/bin/python3', ['-c', script, JSON.stringify([...write('pts@test'), ...write('')])]);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual([]);
  });
});
