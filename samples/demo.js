// The demo: what paramiko-ts does today, run as a user would run it, against the installed
// package (`require('paramiko-ts')` resolves to this package's own build). It grows with the
// transport; for now it makes a key of each type, writes and reloads it, signs and verifies.
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { RSAKey, ECDSAKey, Ed25519Key, PKey, Message } = require('paramiko-ts');

const dir = mkdtempSync(join(tmpdir(), 'paramiko-ts-demo-'));
try {
  const keys = [
    Ed25519Key.generate(),
    ECDSAKey.generate({ curve: 'nistp256' }),
    ECDSAKey.generate({ curve: 'nistp384' }),
    ECDSAKey.generate({ curve: 'nistp521' }),
    RSAKey.generate(3072),
  ];
  for (const key of keys) {
    const file = join(dir, key.getName());
    key.comment = 'demo@paramiko-ts';
    key.writePrivateKeyFile(file, 'demo passphrase');
    const loaded = PKey.fromPrivateKeyFile(file, 'demo passphrase');
    const alg = loaded.signatureAlgorithms()[0];
    const sig = loaded.signSshData(Buffer.from('hello'), alg);
    const ok = PKey.fromPublicKeyLine(loaded.toPublicKeyLine()).verifySshSig(Buffer.from('hello'), sig);
    console.log(
      `${String(loaded.getBits()).padStart(4)} ${loaded.fingerprint} ${loaded.comment} (${loaded.algorithmName})` +
        `  signed with ${alg}: ${ok ? 'verified' : 'FAILED'}`,
    );
    if (!ok || !loaded.equals(key)) process.exitCode = 1;
  }
  console.log(`Message round trip: ${new Message(new Message().addString('ok').asBytes()).getText()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
