import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SSHException } from '../lib/errors';
import { GcmOpener, GcmSealer } from '../lib/crypto/modes';
import { NativeChaChaPolyOpener, NativeChaChaPolySealer, NativeGcmOpener, NativeGcmSealer, nativeCrypto, nativeCryptoStatus, nativeRuns, preferNative, runsNatively } from '../lib/crypto/native';
import { ChaChaPolyOpener, ChaChaPolySealer, chacha20Poly1305 } from '../lib/crypto/chachapoly';
import type { DirectionKeys, Opener, Sealer } from '../lib/crypto/protection';
import { PacketReader, PacketWriter, WireArena } from '../lib/transport/packet';
import { ChannelCore } from '../lib/transport/channel';
import type { ChannelSink } from '../lib/transport/channel';
import { compressorFor } from '../lib/transport/compression';
import { invertJs, multiplyJs } from '../lib/crypto/sntrup761';

// The native module is optional for users (no C compiler: node:crypto does the same work), not
// for CI: PARAMIKO_TS_REQUIRE_PEERS (set by .ci/run) makes its absence a failure, not a skip.
const native = nativeCrypto();
const required = process.env.PARAMIKO_TS_REQUIRE_PEERS === '1';
if (!native && !required) {
  console.warn(`native ciphers not tested: ${nativeCryptoStatus()}`);
}
const describeNative = native || required ? describe : describe.skip;

function keys(bytes: number, iv?: Buffer): DirectionKeys {
  return { key: randomBytes(bytes), iv: iv ?? randomBytes(12), macKey: Buffer.alloc(0) };
}

/** A plaintext packet as the codec builds it: length, padding length, payload, padding to 16 (or 8). */
function packet(payloadLength: number, block = 16): Buffer {
  let pad = block - ((1 + payloadLength) % block);
  if (pad < 4) pad += block;
  const p = randomBytes(4 + 1 + payloadLength + pad);
  p.writeUInt32BE(1 + payloadLength + pad, 0);
  p[4] = pad;
  return p;
}

function sealAll(sealer: Sealer, packets: Buffer[]): Buffer[] {
  return packets.map((p, seq) => Buffer.from(sealer.seal(seq, Buffer.from(p))));
}

const SIZES = [0, 1, 11, 12, 27, 100, 1000, 32768, 200000];

describeNative('native AES-GCM (lib/native/sshcrypto.c)', () => {
  const n = native!;

  test('is loaded (CI builds it: a failed build must not pass as the node:crypto fallback)', () => {
    expect(native).not.toBeNull();
    expect(nativeCryptoStatus()).toMatch(/^loaded from /);
  });

  for (const bits of [128, 256]) {
    const openssl = `aes-${bits}-gcm`;
    test(`aes${bits}-gcm: the same wire bytes as node:crypto, packet after packet, and each opens the other's`, () => {
      // The invocation counter's low bytes at ff: the carry into the next bytes is exercised.
      const k = keys(bits / 8, Buffer.from('0102030405060708090afffe', 'hex'));
      const packets = SIZES.map((size) => packet(size));
      const ours = sealAll(new NativeGcmSealer(n, k), packets);
      const nodes = sealAll(new GcmSealer(openssl, k), packets);
      expect(ours.map((w) => w.toString('hex'))).toEqual(nodes.map((w) => w.toString('hex')));
      const openers: Array<[Opener, Opener]> = [
        [new NativeGcmOpener(n, k), new GcmOpener(openssl, k)],
        [new GcmOpener(openssl, k), new NativeGcmOpener(n, k)],
      ];
      for (const [a, b] of openers) {
        packets.forEach((p, seq) => {
          expect(a.open(seq, ours[seq]).equals(p.subarray(4))).toBe(true);
          expect(b.open(seq, nodes[seq]).equals(p.subarray(4))).toBe(true);
        });
      }
    });
  }

  test('the invocation counter wraps at 2^64 and leaves the fixed field alone (RFC 5647 7.1), as node:crypto does', () => {
    const k = keys(16, Buffer.from('aabbccdd' + 'ff'.repeat(8), 'hex'));
    const packets = [packet(5), packet(6), packet(7)];
    expect(sealAll(new NativeGcmSealer(n, k), packets)).toEqual(sealAll(new GcmSealer('aes-128-gcm', k), packets));
  });

  test('a changed bit anywhere (length, ciphertext, tag) or a skipped packet fails with SSHException', () => {
    const k = keys(16);
    const wire = sealAll(new NativeGcmSealer(n, k), [packet(100), packet(100)]);
    for (const at of [0, 3, 4, 50, wire[0].length - 16, wire[0].length - 1]) {
      const bad = Buffer.from(wire[0]);
      bad[at] ^= 0x01;
      expect(() => new NativeGcmOpener(n, k).open(0, bad)).toThrow(SSHException);
      expect(() => new NativeGcmOpener(n, k).openTransient(0, bad)).toThrow(/bad MAC/);
    }
    // The second packet under the first packet's nonce: a replay or a dropped packet.
    expect(() => new NativeGcmOpener(n, k).open(0, wire[1])).toThrow(SSHException);
    const opener = new NativeGcmOpener(n, k);
    opener.open(0, wire[0]);
    expect(opener.open(1, wire[1]).length).toBe(wire[1].length - 20);
  });

  test('openTransient reuses one buffer; open returns memory of its own', () => {
    const k = keys(16);
    const p = [packet(300), packet(300), packet(300), packet(300)];
    const wire = sealAll(new NativeGcmSealer(n, k), p);
    const o = new NativeGcmOpener(n, k);
    const first = o.openTransient(0, wire[0]);
    expect(first.equals(p[0].subarray(4))).toBe(true);
    const second = o.openTransient(1, wire[1]);
    expect(second.buffer).toBe(first.buffer);
    expect(second.equals(p[1].subarray(4))).toBe(true);
    const third = o.open(2, wire[2]);
    o.openTransient(3, wire[3]);
    expect(third.equals(p[2].subarray(4))).toBe(true);
  });

  /** The module's errors come from the main realm: Jest's TypeError is another class. */
  function typeError(fn: () => unknown, message: RegExp): void {
    let thrown: Error | null = null;
    try {
      fn();
    } catch (e) {
      thrown = e as Error;
    }
    expect(thrown?.name).toBe('TypeError');
    expect(thrown?.message).toMatch(message);
  }

  test("a caller's mistakes are TypeErrors from the module, not a crash", () => {
    const k = keys(16);
    const sealState = n.gcmCreate(k.key, k.iv, true);
    const openState = n.gcmCreate(k.key, k.iv, false);
    typeError(() => n.gcmCreate(Buffer.alloc(15), k.iv, true), /key of 16 or 32 bytes/);
    typeError(() => n.gcmCreate(k.key, Buffer.alloc(8), true), /nonce of 12/);
    typeError(() => n.gcmSeal(openState, packet(10), Buffer.alloc(100), 0), /gcmSeal\(sealState/);
    typeError(() => n.gcmOpen(sealState, Buffer.alloc(40), Buffer.alloc(100), 0), /gcmOpen\(openState/);
    typeError(() => n.gcmSeal(sealState, packet(10), Buffer.alloc(20), 0), /output too small/);
    typeError(() => n.gcmSeal(sealState, packet(10), Buffer.alloc(64), 60), /output too small/);
    typeError(() => n.gcmOpen(openState, Buffer.alloc(19), Buffer.alloc(100), 0), /too short/);
    typeError(() => n.gcmOpen(openState, Buffer.alloc(52), Buffer.alloc(31), 0), /output too small/);
    typeError(() => n.gcmOpen({}, Buffer.alloc(52), Buffer.alloc(64), 0), /gcmOpen\(openState/);
    // A GCM state is not a ChaCha20 one, nor the other way round.
    typeError(() => n.chachaOpen(openState, 0, Buffer.alloc(52), Buffer.alloc(64), 0), /chachaOpen\(openState/);
    const chachaSeal = n.chachaCreate(randomBytes(64), true);
    typeError(() => n.gcmSeal(chachaSeal, packet(10), Buffer.alloc(100), 0), /gcmSeal\(sealState/);
    typeError(() => n.chachaCreate(randomBytes(32), true), /key of 64 bytes/);
    typeError(() => n.chachaSeal(chachaSeal, 0, packet(10, 8), Buffer.alloc(20), 0), /output too small/);
    typeError(() => n.chachaLength(chachaSeal, 0, Buffer.alloc(4)), /chachaLength\(openState/);
  });

  test('a cipher OpenSSL refuses (a FIPS-only build without ChaCha20) falls back to the node:crypto classes', () => {
    expect(preferNative((m) => m === n, () => false)).toBe(true);
    expect(
      preferNative(
        () => {
          throw new TypeError('chachaCreate: OpenSSL has no ChaCha20 or Poly1305');
        },
        () => 'fallback',
      ),
    ).toBe('fallback');
    // And the log's "(native)" follows what OpenSSL accepts, not the module's list of ciphers.
    for (const name of ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com']) expect(runsNatively(name)).toBe(true);
    expect(runsNatively('aes128-ctr')).toBe(false);
    const noChaCha = Object.create(n, {
      chachaCreate: {
        value: () => {
          throw new TypeError('chachaCreate: OpenSSL has no ChaCha20 or Poly1305');
        },
      },
    });
    expect(nativeRuns(noChaCha, 'chacha20-poly1305@openssh.com')).toBe(false);
    expect(nativeRuns(noChaCha, 'aes256-gcm@openssh.com')).toBe(true);
  });

  test('seals into and opens from views of a SharedArrayBuffer at an offset', () => {
    const k = keys(32);
    const p = packet(1000);
    const shared = new Uint8Array(new SharedArrayBuffer(4096), 100, 3000);
    const written = n.gcmSeal(n.gcmCreate(k.key, k.iv, true), p, shared, 7);
    expect(written).toBe(p.length + 16);
    const wire = Buffer.from(shared.subarray(7, 7 + written));
    expect(wire.equals(new GcmSealer('aes-256-gcm', k).seal(0, Buffer.from(p)))).toBe(true);
    const out = new Uint8Array(new SharedArrayBuffer(2048), 16, 2000);
    expect(n.gcmOpen(n.gcmCreate(k.key, k.iv, false), wire, out, 3)).toBe(true);
    expect(Buffer.from(out.subarray(3, 3 + p.length - 4)).equals(p.subarray(4))).toBe(true);
  });

  test('chacha20-poly1305: the same wire bytes as ours over node:crypto (checked against known answers in crypto-chachapoly.spec.ts), each opening the other\'s', () => {
    const k = keys(64);
    const seqs = [0, 1, 2, 255, 256, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    const ours = new NativeChaChaPolySealer(n, k);
    const js = new ChaChaPolySealer(k);
    const nativeOpener = new NativeChaChaPolyOpener(n, k);
    const jsOpener = new ChaChaPolyOpener(k);
    let i = 0;
    for (const size of [0, 1, 11, 12, 63, 64, 1000, 1024, 1100, 32768, 200000]) {
      const p = packet(size, 8);
      const seq = seqs[i++ % seqs.length];
      const wire = ours.seal(seq, Buffer.from(p));
      expect(wire.equals(js.seal(seq, Buffer.from(p)))).toBe(true);
      expect(nativeOpener.peekLength(seq, wire.subarray(0, 4))).toBe(p.length - 4);
      expect(nativeOpener.open(seq, wire).equals(p.subarray(4))).toBe(true);
      expect(nativeOpener.openTransient(seq, wire).equals(p.subarray(4))).toBe(true);
      expect(jsOpener.open(seq, wire).equals(p.subarray(4))).toBe(true);
    }
    // The cipher table hands out the native classes when the module is loaded.
    expect(chacha20Poly1305.createSealer(k, null)).toBeInstanceOf(NativeChaChaPolySealer);
    expect(chacha20Poly1305.createOpener(k, null)).toBeInstanceOf(NativeChaChaPolyOpener);
    expect(() => chacha20Poly1305.createOpener(keys(32), null)).toThrow(/needs a 64-byte key/);
  });

  test('chacha20-poly1305: a changed bit anywhere or the wrong sequence number fails with SSHException, decrypting nothing', () => {
    const k = keys(64);
    const p = packet(100, 8);
    const wire = new NativeChaChaPolySealer(n, k).seal(42, Buffer.from(p));
    for (const at of [0, 3, 4, 50, wire.length - 16, wire.length - 1]) {
      const bad = Buffer.from(wire);
      bad[at] ^= 0x80;
      const plain = Buffer.alloc(wire.length - 20);
      expect(n.chachaOpen(n.chachaCreate(k.key, false), 42, bad, plain, 0)).toBe(false);
      expect(plain.equals(Buffer.alloc(plain.length))).toBe(true);
      expect(() => new NativeChaChaPolyOpener(n, k).open(42, bad)).toThrow(SSHException);
    }
    expect(() => new NativeChaChaPolyOpener(n, k).open(43, wire)).toThrow(/bad MAC/);
  });

  test('the packet reader marks payloads from openTransient as transient, unless it inflates them', () => {
    const k = keys(16);
    const writer = new PacketWriter();
    writer.setProtection(new NativeGcmSealer(n, k), false);
    const reader = new PacketReader();
    reader.setProtection(new NativeGcmOpener(n, k), false);
    reader.push(Buffer.concat([writer.encode(Buffer.from('\x5ehello')), writer.encode(Buffer.from('\x5eworld'))]));
    const a = reader.next()!;
    expect(reader.transient).toBe(true);
    expect(a.toString('latin1')).toBe('\x5ehello');
    const b = reader.next()!;
    expect(b.toString('latin1')).toBe('\x5eworld');
    expect(a.toString('latin1')).toBe('\x5eworld'); // the same memory: why only channel data takes it
    writer.setCompression(compressorFor('zlib', 'compress'));
    reader.setCompression(compressorFor('zlib', 'decompress'));
    reader.push(writer.encode(Buffer.from('\x5ecompressed')));
    expect(reader.next()!.toString('latin1')).toBe('\x5ecompressed');
    expect(reader.transient).toBe(false);
  });
});

describe('WireArena: sealed packets in reused memory', () => {
  test('hands out packets one after the other, grows when full, and starts over when rewound', () => {
    const arena = new WireArena();
    const a = arena.take(10000);
    const b = arena.take(6000);
    expect(b.buffer === a.buffer).toBe(true);
    expect(b.byteOffset).toBe(a.byteOffset + 10000);
    const c = arena.take(1000); // past 16 KiB: a new, larger buffer; a and b keep theirs
    expect(c.buffer === a.buffer).toBe(false);
    expect(c.buffer.byteLength).toBeGreaterThanOrEqual(32 * 1024);
    arena.rewind();
    expect(arena.take(500).byteOffset).toBe(c.byteOffset);
    const huge = arena.take(600 * 1024); // bigger than the largest buffer: one of its own size
    expect(huge.length).toBe(600 * 1024);
  });

  test('full 512 KiB buffers set aside before a rewind serve again after it, never before', () => {
    const arena = new WireArena();
    const packet = 32 * 1024 + 64;
    const seen: ArrayBufferLike[] = [];
    // Grow to 512 KiB buffers, then fill three more of them without a rewind.
    for (let i = 0; i < 200; i++) {
      const p = arena.take(packet);
      if (p.buffer.byteLength === 512 * 1024 && !seen.includes(p.buffer)) seen.push(p.buffer);
    }
    expect(seen.length).toBeGreaterThanOrEqual(4);
    // Not rewound: a buffer taken now is one never handed out before.
    const before = new Set(seen);
    const fresh: ArrayBufferLike[] = [];
    for (let i = 0; i < 40; i++) {
      const p = arena.take(packet);
      if (!fresh.includes(p.buffer)) fresh.push(p.buffer);
    }
    expect(fresh.filter((b) => before.has(b) && b !== seen[seen.length - 1])).toEqual([]);
    arena.rewind();
    // After the rewind: the current buffer from its start, then the ones set aside.
    const again: ArrayBufferLike[] = [];
    for (let i = 0; i < 60; i++) {
      const p = arena.take(packet);
      if (!again.includes(p.buffer)) again.push(p.buffer);
    }
    const all = new Set([...seen, ...fresh]);
    expect(again.length).toBeGreaterThan(1);
    expect(again.every((b) => all.has(b))).toBe(true);
  });

  describeNative('with a native sealer', () => {
    test('the packet writer seals into it, packets that open as sealed; without sealInto it is not used', () => {
      const k = keys(16);
      const arenaWriter = new PacketWriter();
      arenaWriter.setProtection(new NativeGcmSealer(nativeCrypto()!, k), false);
      arenaWriter.arena = new WireArena();
      const payloads = [Buffer.from('\x5eone'), Buffer.alloc(2000, 1), Buffer.from('\x5etwo')];
      const fromArena = payloads.map((p) => arenaWriter.encodeParts(p));
      expect(fromArena.every((parts) => parts.length === 1)).toBe(true);
      expect(fromArena[1][0].buffer === fromArena[0][0].buffer).toBe(true);
      const reader = new PacketReader();
      reader.setProtection(new NativeGcmOpener(nativeCrypto()!, k), false);
      reader.push(Buffer.concat(fromArena.map((parts) => parts[0])));
      for (const p of payloads) expect(reader.next()!.equals(p)).toBe(true);
      const nodeWriter = new PacketWriter();
      nodeWriter.setProtection(new GcmSealer('aes-128-gcm', k), false);
      nodeWriter.arena = new WireArena();
      expect(nodeWriter.encodeParts(Buffer.from('\x5eone')).length).toBe(3); // length, body, tag
    });
  });
});

describe('channel data from a reused buffer', () => {
  function sink(copiesData: boolean, got: Buffer[]): ChannelSink {
    return { copiesData, data: (c) => got.push(c), eof: () => undefined, closed: () => undefined, writable: () => undefined };
  }

  test('a sink that keeps what it is given gets a copy; one that copies gets the bytes as they are', () => {
    for (const copies of [false, true]) {
      const core = new ChannelCore(0, 'session', 1 << 20, 32768, () => undefined);
      core.opened(5, 1 << 20, 32768);
      const got: Buffer[] = [];
      core.sink = sink(copies, got);
      const reused = Buffer.from('first');
      core.onData(reused, 0, true);
      reused.write('XXXXX');
      expect(got[0].toString() === 'first').toBe(!copies);
      core.onData(reused, 0, false);
      expect(got[1]).toBe(reused);
    }
  });

  test('data held before a sink is attached is a copy, transient or not', () => {
    const core = new ChannelCore(0, 'session', 1 << 20, 32768, () => undefined);
    core.opened(5, 1 << 20, 32768);
    const reused = Buffer.from('early');
    core.onData(reused, 0, true);
    reused.write('XXXXX');
    const got: Buffer[] = [];
    core.sink = sink(true, got);
    expect(got.map(String)).toEqual(['early']);
  });
});

describeNative("native sntrup761 arithmetic (polyMultiply, polyInvert) against the TypeScript's", () => {
  const P = 761;
  const Q = 4591;
  /** Centred residue of x mod m. */
  const centred = (m: number) => (x: number) => {
    const r = ((x % m) + m) % m;
    return r > (m - 1) / 2 ? r - m : r;
  };
  const small = () => Int32Array.from(randomBytes(P), (b) => (b % 3) - 1);
  const throughNative = (m: number) => (a: Int32Array): Int32Array | null => {
    const out = new Int32Array(P);
    return native!.polyInvert(a, m, out) ? out.map(centred(m)) : null;
  };

  test('inverses mod 3 and mod q are the same polynomials, and invert', () => {
    for (let round = 0; round < 12; round++) {
      const g = small();
      expect(throughNative(3)(g)).toEqual(invertJs(g, 3, centred(3)));
      const f3 = small().map((c) => 3 * c);
      const inv = throughNative(Q)(f3);
      expect(inv).toEqual(invertJs(f3, Q, centred(Q)));
      // (3f) * inv = 1 in R/q
      const product = new Int32Array(P);
      native!.polyMultiply(inv!, f3.map((c) => c / 3), product);
      expect(Array.from(product.map(centred(Q)).map((c) => centred(Q)(3 * c)))).toEqual([1, ...new Array(P - 1).fill(0)]);
    }
  });

  test('products are the same, unreduced, for coefficients as large as the key exchange makes', () => {
    for (let round = 0; round < 12; round++) {
      const a = Int32Array.from({ length: P }, () => Math.floor(Math.random() * Q) - (Q - 1) / 2);
      const b = small();
      const out = new Int32Array(P);
      native!.polyMultiply(a, b, out);
      expect(out).toEqual(multiplyJs(a, b, (x) => x));
    }
  });

  test('a polynomial sharing a factor with the modulus (0) is not invertible; bad arguments throw TypeError', () => {
    const zero = new Int32Array(P);
    expect(native!.polyInvert(zero, 3, new Int32Array(P))).toBe(false);
    expect(invertJs(zero, 3, centred(3))).toBeNull();
    // (the module's TypeError is the main realm's, not the test's: matched by name and message)
    const thrown = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
      return 'nothing thrown';
    };
    expect(thrown(() => native!.polyInvert(zero, 3, new Int32Array(P - 1)))).toMatch(/^TypeError: polyInvert\(a/);
    expect(thrown(() => native!.polyInvert(zero, 65536, new Int32Array(P)))).toMatch(/^TypeError: polyInvert\(a/);
    expect(thrown(() => native!.polyMultiply(zero, new Uint32Array(P) as unknown as Int32Array, new Int32Array(P)))).toMatch(/^TypeError: polyMultiply\(a/);
  });
});

describe('PARAMIKO_TS_NATIVE=0: the node:crypto path end to end', () => {
  test('a client and our server in a process with the module off agree on AES-GCM and move 4 MiB both ways', () => {
    const script = `
      const { nativeCryptoStatus } = require('./dist/crypto/native.js');
      const { AutoAddPolicy, SSHClient, SSHServer } = require('./dist/index.js');
      const server = SSHServer.start({ users: { u: 'p' } });
      const client = new SSHClient();
      try {
        client.setMissingHostKeyPolicy(new AutoAddPolicy());
        client.connect(server.host, { port: server.port, username: 'u', password: 'p', lookForKeys: false, allowAgent: false,
          disabledAlgorithms: { ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'] } });
        const n = client.getTransport().getNegotiated();
        // wc reads all of stdin before head writes: neither direction waits on the other's window.
        const [stdin, stdout] = client.execCommand('wc -c; head -c 4194304 /dev/zero');
        stdin.write(Buffer.alloc(4194304, 7));
        stdin.close();
        const out = stdout.read();
        const nl = out.indexOf(10);
        console.log(JSON.stringify({ status: nativeCryptoStatus(), ciphers: [n.cipherC2S, n.cipherS2C], counted: out.subarray(0, nl).toString().trim(), zeros: out.subarray(nl + 1).equals(Buffer.alloc(4194304)) }));
      } finally {
        client.close();
        server.close();
      }
    `;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: join(__dirname, '..'),
      env: { ...process.env, PARAMIKO_TS_NATIVE: '0' },
      encoding: 'utf8',
      timeout: 60000,
    });
    expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(result.status).toBe('off (PARAMIKO_TS_NATIVE=0)');
    expect(result.ciphers).toEqual(['aes128-gcm@openssh.com', 'aes128-gcm@openssh.com']);
    expect(result.counted).toBe('4194304');
    expect(result.zeros).toBe(true);
  });
});
