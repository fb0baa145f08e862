#!/usr/bin/env node
/**
 * Throughput of chacha20-poly1305@openssh.com against AES-GCM, seal + peekLength + open per
 * packet, as the packet codec runs them. Runs the compiled library: `npm run build` first, then
 * `node bench/chachapoly.js [seconds per case, default 1]`.
 *
 * MB/s counts payload bytes (10^6 bytes per MB) through one seal and one open (a round trip),
 * or through one seal alone (one direction of a connection). Each figure
 * is given twice: by wall-clock time, and by this process's CPU time, which holds steadier
 * when other jobs share the machine (everything here runs synchronously on this thread).
 */
'use strict';
const os = require('node:os');
const path = require('node:path');
const { createCipheriv, randomBytes } = require('node:crypto');

const dist = path.join(__dirname, '..', 'dist', 'crypto');
let chacha, modes, poly, native;
try {
  chacha = require(path.join(dist, 'chachapoly.js'));
  modes = require(path.join(dist, 'modes.js'));
  poly = require(path.join(dist, 'poly1305.js'));
  native = require(path.join(dist, 'native.js'));
} catch (err) {
  console.error(`cannot load dist/crypto (${err.message}): run \`npm run build\` first`);
  process.exit(1);
}

const SECONDS = Number(process.argv[2]) || 1;

/** A plaintext packet whose padding_length || payload || padding aligns to `block`. */
function packet(payloadLength, block) {
  let pad = block - ((1 + payloadLength) % block);
  if (pad < 4) pad += block;
  const p = randomBytes(4 + 1 + payloadLength + pad);
  p.writeUInt32BE(1 + payloadLength + pad, 0);
  p[4] = pad;
  return p;
}

/** Runs `fn` repeatedly for about SECONDS; returns operations per second of wall and CPU time. */
function rate(fn) {
  for (let i = 0; i < 200; i++) fn(i);
  let n = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  const budget = BigInt(Math.round(SECONDS * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 50; i++) fn(n++);
    elapsed = process.hrtime.bigint() - start;
  }
  const cpu = process.cpuUsage(cpuStart);
  return { wall: n / (Number(elapsed) / 1e9), cpu: n / ((cpu.user + cpu.system) / 1e6) };
}

/** seal alone, per packet. */
function seals(sealer, plain) {
  return rate((seq) => sealer.seal(seq, Buffer.from(plain)));
}

/** seal + peekLength + open per packet (into the opener's reused buffer where it has one, as the codec does for channel data). */
function roundTrips(sealer, opener, plain) {
  const open = (opener.openTransient ?? opener.open).bind(opener);
  return rate((seq) => {
    const wire = sealer.seal(seq, Buffer.from(plain));
    opener.peekLength(seq, wire.subarray(0, opener.headerLength));
    open(seq, wire);
  });
}

function cases() {
  const out = [];
  const chachaKeys = { key: randomBytes(64), iv: Buffer.alloc(0), macKey: Buffer.alloc(0) };
  const engines = [poly.wasmPoly1305(), poly.jsPoly1305].filter(Boolean);
  for (const engine of engines) {
    out.push({
      name: `chacha20-poly1305@openssh.com (${engine.name} Poly1305)`,
      block: 8,
      sealer: new chacha.ChaChaPolySealer(chachaKeys, engine),
      opener: new chacha.ChaChaPolyOpener(chachaKeys, engine),
    });
  }
  const n = native.nativeCrypto();
  if (n) {
    out.push({
      name: 'chacha20-poly1305@openssh.com (native)',
      block: 8,
      sealer: new native.NativeChaChaPolySealer(n, chachaKeys),
      opener: new native.NativeChaChaPolyOpener(n, chachaKeys),
    });
  }
  for (const bits of [128, 256]) {
    const keys = { key: randomBytes(bits / 8), iv: randomBytes(12), macKey: Buffer.alloc(0) };
    out.push({
      name: `aes${bits}-gcm@openssh.com (node:crypto)`,
      block: 16,
      sealer: new modes.GcmSealer(`aes-${bits}-gcm`, keys),
      opener: new modes.GcmOpener(`aes-${bits}-gcm`, { ...keys, iv: Buffer.from(keys.iv) }),
    });
    if (n) {
      out.push({
        name: `aes${bits}-gcm@openssh.com (native)`,
        block: 16,
        sealer: new native.NativeGcmSealer(n, keys),
        opener: new native.NativeGcmOpener(n, keys),
      });
    }
  }
  return out;
}

function mbps(bytesPerOp, r) {
  const f = (ops) => ((bytesPerOp * ops) / 1e6).toFixed(0).padStart(6);
  return `${f(r.wall)} MB/s  (${f(r.cpu)} per CPU second)`;
}

function kpps(r) {
  const f = (ops) => (ops / 1000).toFixed(0).padStart(6);
  return `${f(r.wall)} k packets/s  (${f(r.cpu)} per CPU second)`;
}

const load = os.loadavg()[0].toFixed(1);
console.log(`Node ${process.version}, OpenSSL ${process.versions.openssl}, ${SECONDS} s per case, load average ${load}`);
console.log(`native ciphers: ${native.nativeCryptoStatus()}\n`);

const BIG = 32768;
console.log('seal + open, 32 KiB payload per packet:');
for (const c of cases()) {
  console.log(`  ${c.name.padEnd(48)} ${mbps(BIG, roundTrips(c.sealer, c.opener, packet(BIG, c.block)))}`);
}

console.log('\nseal only, 32 KiB payload per packet:');
for (const c of cases()) {
  console.log(`  ${c.name.padEnd(48)} ${mbps(BIG, seals(c.sealer, packet(BIG, c.block)))}`);
}

console.log('\nseal + open, 64-byte payload (interactive traffic):');
for (const c of cases()) {
  console.log(`  ${c.name.padEnd(48)} ${kpps(roundTrips(c.sealer, c.opener, packet(64, c.block)))}`);
}

console.log('\nthe parts, 32 KiB:');
const msg = randomBytes(BIG);
const key32 = randomBytes(32);
const tag = Buffer.alloc(16);
for (const engine of [poly.wasmPoly1305(), poly.jsPoly1305].filter(Boolean)) {
  console.log(`  ${`Poly1305 (${engine.name})`.padEnd(48)} ${mbps(BIG, rate(() => engine.macInto(key32, msg, tag, 0)))}`);
}
const iv = Buffer.alloc(16);
const chachaRate = rate(() => createCipheriv('chacha20', key32, iv).update(msg));
console.log(`  ${"ChaCha20 (node:crypto 'chacha20')".padEnd(48)} ${mbps(BIG, chachaRate)}`);
