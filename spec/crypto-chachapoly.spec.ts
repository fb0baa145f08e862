import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { SSHException } from '../lib/errors';
import { cipherByName } from '../lib/crypto/ciphers';
import { chacha20Poly1305, chachaIv, ChaChaPolyOpener, ChaChaPolySealer, ChaCha20Js, JS_PAYLOAD_LIMIT } from '../lib/crypto/chachapoly';
import { defaultPoly1305, jsPoly1305, Poly1305, poly1305, wasmPoly1305 } from '../lib/crypto/poly1305';
import type { Poly1305Engine } from '../lib/crypto/poly1305';
import { poly1305WasmBytes } from '../lib/crypto/poly1305-wasm';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s:]/g, ''), 'hex');

const wasm = wasmPoly1305();
const ENGINES: Poly1305Engine[] = [jsPoly1305, ...(wasm ? [wasm] : [])];

function mac(engine: Poly1305Engine, key: Buffer, msg: Buffer): string {
  const out = Buffer.alloc(16);
  engine.macInto(key, msg, out, 0);
  return out.toString('hex');
}

// RFC 8439 A.2 test vector #2's plaintext, also the message of A.3 #2 and #3.
const IETF_TEXT =
  'Any submission to the IETF intended by the Contributor for publication as all or part of an ' +
  'IETF Internet-Draft or RFC and any statement made within the context of an IETF activity is ' +
  'considered an "IETF Contribution". Such statements include oral statements in IETF sessions, ' +
  'as well as written and electronic communications made at any time or place, which are ' +
  'addressed to';
const JABBERWOCKY =
  "'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\n" +
  'All mimsy were the borogoves,\nAnd the mome raths outgrabe.';

/** [name, key (r || s), message, tag]: RFC 8439 section 2.5.2 and appendix A.3. */
const POLY_VECTORS: Array<[string, string, Buffer, string]> = [
  [
    '2.5.2',
    '85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b',
    Buffer.from('Cryptographic Forum Research Group'),
    'a8061dc1305136c6c22b8baf0c0127a9',
  ],
  ['A.3 #1 (all zero)', '00'.repeat(32), Buffer.alloc(64), '00'.repeat(16)],
  [
    'A.3 #2 (r = 0: the tag is s)',
    '00'.repeat(16) + '36e5f6b5c5e06070f0efca96227a863e',
    Buffer.from(IETF_TEXT),
    '36e5f6b5c5e06070f0efca96227a863e',
  ],
  [
    'A.3 #3 (s = 0)',
    '36e5f6b5c5e06070f0efca96227a863e' + '00'.repeat(16),
    Buffer.from(IETF_TEXT),
    'f3477e7cd95417af89a6b8794c310cf0',
  ],
  [
    'A.3 #4',
    '1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0',
    Buffer.from(JABBERWOCKY),
    '4541669a7eaaee61e708dc7cbcc5eb62',
  ],
  [
    'A.3 #5 (partially reduced result not fully reduced)',
    '02' + '00'.repeat(31),
    hex('ff'.repeat(16)),
    '03' + '00'.repeat(15),
  ],
  [
    'A.3 #6 (adding s overflows 2^128)',
    '02' + '00'.repeat(15) + 'ff'.repeat(16),
    hex('02' + '00'.repeat(15)),
    '03' + '00'.repeat(15),
  ],
  [
    'A.3 #7 (all-ones limb with a carry from below)',
    '01' + '00'.repeat(31),
    hex('ff'.repeat(16) + 'f0' + 'ff'.repeat(15) + '11' + '00'.repeat(15)),
    '05' + '00'.repeat(15),
  ],
  [
    'A.3 #8 (result exactly 2^130 - 5)',
    '01' + '00'.repeat(31),
    hex('ff'.repeat(16) + 'fb' + 'fe'.repeat(15) + '01'.repeat(16)),
    '00'.repeat(16),
  ],
  ['A.3 #9 (result exactly 2^130 - 6)', '02' + '00'.repeat(31), hex('fd' + 'ff'.repeat(15)), 'fa' + 'ff'.repeat(15)],
  [
    'A.3 #10 (5*H+L reduction gives a 131-bit intermediate)',
    '0100000000000000' + '0400000000000000' + '00'.repeat(16),
    hex(
      'e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000' +
        '0000000000000000000000000000000001000000000000000000000000000000',
    ),
    '1400000000000000' + '5500000000000000',
  ],
  [
    'A.3 #11 (5*H+L reduction gives a 131-bit final result)',
    '0100000000000000' + '0400000000000000' + '00'.repeat(16),
    hex('e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000' + '00'.repeat(16)),
    '13' + '00'.repeat(15),
  ],
];

describe('Poly1305', () => {
  it('has a WebAssembly engine on Node 20', () => {
    expect(wasm?.name).toBe('wasm');
    expect(defaultPoly1305()).toBe(wasm);
    expect(poly1305WasmBytes().subarray(0, 4)).toEqual(Buffer.from('\0asm', 'latin1'));
  });

  for (const engine of ENGINES) {
    describe(`${engine.name} engine`, () => {
      it.each(POLY_VECTORS)('matches RFC 8439 %s', (_name, key, msg, tag) => {
        expect(mac(engine, hex(key), msg)).toBe(tag);
      });

      it('writes the tag at the requested offset and leaves the rest of the buffer alone', () => {
        const [, key, msg, tag] = POLY_VECTORS[0];
        const out = Buffer.alloc(40, 0xee);
        engine.macInto(hex(key), msg, out, 20);
        expect(out.subarray(20, 36).toString('hex')).toBe(tag);
        expect(out.subarray(0, 20).every((b) => b === 0xee)).toBe(true);
        expect(out.subarray(36).every((b) => b === 0xee)).toBe(true);
      });
    });
  }

  it('the JS and WebAssembly engines agree on random keys and messages of every length to 300 bytes', () => {
    for (let n = 0; n <= 300; n++) {
      const key = randomBytes(32);
      const msg = randomBytes(n);
      const want = mac(jsPoly1305, key, msg);
      for (const engine of ENGINES) expect(mac(engine, key, msg)).toBe(want);
    }
  });

  it('the engines agree on all-ones keys and messages, the largest limb values', () => {
    const key = Buffer.alloc(32, 0xff);
    for (const n of [15, 16, 17, 1000, 32768 + 4, 300000]) {
      const msg = Buffer.alloc(n, 0xff);
      const want = mac(jsPoly1305, key, msg);
      for (const engine of ENGINES) expect(mac(engine, key, msg)).toBe(want);
    }
  });

  it('incremental updates in uneven pieces give the one-shot tag', () => {
    const key = randomBytes(32);
    const msg = randomBytes(1000);
    const want = poly1305(key, msg).toString('hex');
    const p = new Poly1305(key);
    for (let i = 0, step = 1; i < msg.length; i += step, step = (step * 7) % 37) {
      p.update(msg.subarray(i, i + step));
    }
    expect(p.digest().toString('hex')).toBe(want);
    // An instance is reusable after init.
    expect(p.init(key).update(msg).digest().toString('hex')).toBe(want);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => poly1305(Buffer.alloc(31), Buffer.alloc(1))).toThrow(RangeError);
    expect(() => new Poly1305(Buffer.alloc(33))).toThrow(RangeError);
  });
});

/** `length` bytes of node's 'chacha20' key stream from the given 16-byte IV. */
function keystream(key: Buffer, iv: Buffer, length = 64): Buffer {
  return createCipheriv('chacha20', key, iv).update(Buffer.alloc(length));
}

const KEY_0_31 = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');

describe("node:crypto 'chacha20' as OpenSSH's ChaCha20", () => {
  it('takes its IV as a 32-bit little-endian counter and a 96-bit nonce (RFC 8439 2.3.2)', () => {
    const iv = Buffer.concat([hex('01000000'), hex('000000090000004a00000000')]);
    expect(keystream(KEY_0_31, iv).toString('hex')).toBe(
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' +
        'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e',
    );
  });

  it('encrypts across block boundaries (RFC 8439 2.4.2, the sunscreen text)', () => {
    const iv = Buffer.concat([hex('01000000'), hex('000000000000004a00000000')]);
    const plain = Buffer.from(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    expect(createCipheriv('chacha20', KEY_0_31, iv).update(plain).toString('hex')).toBe(
      '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357' +
        '1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736' +
        '5af90bbf74a35be6b40b8eedf2785e42874d',
    );
  });

  // An RFC 8439 nonce 00000000 || n8 puts n8 in state words 14-15 and zero in word 13: the same
  // state as DJB's ChaCha20 with 64-bit nonce n8. So RFC vectors whose nonce is
  // 000000000000000000000002 are OpenSSH's ChaCha20 for sequence number 2.
  it('chachaIv(counter, seq) is the original ChaCha20 with nonce = seq as 64-bit big-endian (RFC 8439 A.1 #5)', () => {
    expect(keystream(Buffer.alloc(32), chachaIv(0, 2)).toString('hex')).toBe(
      'c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c78a970e0e955c14f3a88e741b97c286f7' +
        '5f8fc299e8148362fa198a39531bed6d',
    );
  });

  it('gives the Poly1305 key of counter 0 for seq 2 (RFC 8439 A.4 #2)', () => {
    const key = hex('00'.repeat(31) + '01');
    expect(keystream(key, chachaIv(0, 2)).subarray(0, 32).toString('hex')).toBe(
      'ecfa254f845f647473d3cb140da9e87606cb33066c447b87bc2666dde3fbb739',
    );
  });

  it('starts the payload at counter 1 for seq 2 (RFC 8439 A.2 #2, first two blocks)', () => {
    const key = hex('00'.repeat(31) + '01');
    const plain = Buffer.from(IETF_TEXT);
    const cipher = createCipheriv('chacha20', key, chachaIv(1, 2)).update(plain);
    expect(cipher.subarray(0, 32).toString('hex')).toBe('a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec');
    expect(cipher.subarray(352).toString('hex')).toBe('7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221');
  });

  it('ChaCha20Js gives block 0 for nonce = seq: the length mask and the Poly1305 key (RFC 8439 A.1, A.4)', () => {
    const zero = new ChaCha20Js(Buffer.alloc(32));
    expect(zero.mask(0).toString(16)).toBe('76b8e0ad'); // A.1 #1
    expect(zero.mask(2).toString(16)).toBe('c2c64d37'); // A.1 #5
    expect(zero.block0(2, Buffer.alloc(64), 64).toString('hex')).toBe(
      'c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c78a970e0e955c14f3a88e741b97c286f7' +
        '5f8fc299e8148362fa198a39531bed6d',
    );
    const one = new ChaCha20Js(hex('00'.repeat(31) + '01'));
    expect(one.block0(2, Buffer.alloc(32)).toString('hex')).toBe(
      'ecfa254f845f647473d3cb140da9e87606cb33066c447b87bc2666dde3fbb739', // A.4 #2
    );
  });

  it('ChaCha20Js encrypts from counter 1 like RFC 8439 A.2 #2 (nonce 0...02 = seq 2)', () => {
    const out = Buffer.alloc(IETF_TEXT.length);
    new ChaCha20Js(hex('00'.repeat(31) + '01')).xor(2, 1, Buffer.from(IETF_TEXT), out, 0);
    expect(out.subarray(0, 32).toString('hex')).toBe('a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec');
    expect(out.subarray(352).toString('hex')).toBe('7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221');
  });

  it('ChaCha20Js agrees with node:crypto for random keys, sequence numbers, counters and lengths', () => {
    for (let i = 0; i < 100; i++) {
      const key = randomBytes(32);
      const js = new ChaCha20Js(key);
      for (const seq of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, randomBytes(4).readUInt32LE(0)]) {
        const block0 = keystream(key, chachaIv(0, seq));
        expect(js.block0(seq, Buffer.alloc(64), 64).equals(block0)).toBe(true);
        expect(js.mask(seq)).toBe(block0.readUInt32BE(0));
        const counter = i % 3;
        const src = randomBytes((i * 37 + seq) % 300);
        const dst = Buffer.alloc(src.length + 3);
        js.xor(seq, counter, src, dst, 3);
        const want = createCipheriv('chacha20', key, chachaIv(counter, seq)).update(src);
        expect(dst.subarray(3).equals(want)).toBe(true);
      }
    }
  });

  it('carries the block counter from word 12 into word 13, a 64-bit counter as in the original', () => {
    const key = randomBytes(32);
    const across = keystream(key, chachaIv(0xffffffff, 7), 128);
    expect(across.subarray(0, 64)).toEqual(keystream(key, chachaIv(0xffffffff, 7)));
    expect(across.subarray(64)).toEqual(keystream(key, chachaIv(0x100000000, 7)));
  });
});

/** A plaintext binary packet (RFC 4253 section 6) with length-excluded 8-byte alignment. */
function packet(payload: Buffer, fill = 0x5a): Buffer {
  let pad = 8 - ((1 + payload.length) % 8);
  if (pad < 4) pad += 8;
  const p = Buffer.alloc(4 + 1 + payload.length + pad, fill);
  p.writeUInt32BE(1 + payload.length + pad, 0);
  p[4] = pad;
  payload.copy(p, 5);
  return p;
}

const KEY64 = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
const keys = (key = KEY64) => ({ key, iv: Buffer.alloc(0), macKey: Buffer.alloc(0) });

/** What the packet codec does: peek at the length, then open the whole packet. */
function receive(opener: ChaChaPolyOpener, seq: number, wire: Buffer): Buffer {
  const length = opener.peekLength(seq, wire.subarray(0, opener.headerLength));
  expect(4 + length + opener.macLength).toBe(wire.length);
  return opener.open(seq, wire);
}

/*
 * Known answers for the whole construction, from an independent model: DJB's ChaCha20 and
 * Poly1305 written out in plain Python integers, following PROTOCOL.chacha20poly1305 (K_2 =
 * key[0:32] for the payload and the Poly1305 key from counter 0, K_1 = key[32:64] for the
 * length, nonce = seq as 64-bit big-endian, payload from counter 1), with each tag
 * cross-checked against the `cryptography` package's Poly1305 (OpenSSL). The model:
 *
 *   def chacha_block(key, counter, nonce8):   # state words 12-13 counter, 14-15 nonce
 *       st = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] + list(struct.unpack('<8I', key)) \
 *           + [counter & 0xffffffff, counter >> 32] + list(struct.unpack('<2I', nonce8))
 *       ...20 rounds (RFC 8439 2.3), add st, struct.pack('<16I', ...)
 *   def poly1305(key, msg):                   # RFC 8439 2.5.1 with Python integers
 *   def seal(key64, seq, packet):
 *       nonce = struct.pack('>Q', seq)
 *       enc_len = chacha_xor(key64[32:], 0, nonce, packet[:4])
 *       poly_key = chacha_block(key64[:32], 0, nonce)[:32]
 *       enc_body = chacha_xor(key64[:32], 1, nonce, packet[4:])
 *       return enc_len + enc_body + poly1305(poly_key, enc_len + enc_body)
 *
 * with key64 = bytes(range(64)), run under /usr/bin/python3 (cryptography 38). The third,
 * larger packet is given by its formula and its wire bytes by SHA-256 and their two ends.
 */
const KATS: Array<{ name: string; seq: number; plain: string; wire: string }> = [
  {
    name: 'SSH_MSG_SERVICE_REQUEST "ssh-userauth", seq 3',
    seq: 3,
    plain: '0000001806050000000c7373682d7573657261757468a0a1a2a3a4a5',
    wire: 'fb1a929286401cbb3246d702e0628979de95f73613b4ec66627efbe21607235a97eefcbc227b2c6821b7901a',
  },
  {
    name: '200-byte payload, seq 2^32 - 1',
    seq: 0xffffffff,
    plain:
      '000000d00700070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9e0e7eef5fc030a11181f262d343b4249' +
      '50575e656c737a81888f969da4abb2b9c0c7ced5dce3eaf1f8ff060d141b222930373e454c535a61686f767d848b9299a0a7aeb5bc' +
      'c3cad1d8dfe6edf4fb020910171e252c333a41484f565d646b727980878e959ca3aab1b8bfc6cdd4dbe2e9f0f7fe050c131a21282f' +
      '363d444b525960676e757c838a91989fa6adb4bbc2c9d0d7dee5ecf3fa01080f161d242b323940474e555c636a71b0b1b2b3b4b5b6',
    wire:
      'b90ee4600e920b95bb18f7c8a70e94f43fd259cc7fca4e684aa348e2f38c49f69323dde919ba3e630ea94eb2f3583dd43b2bcadacb' +
      '810acc072b4c26928730fdf8faf308e2d061de768242642a1ce30ea07308389622fc15a32047fbbae448fe93c18a3aa2a308024b78' +
      '60fc2192968609e2b40973ad8a10eb4a3bc19bc2444229fb3a0e3b75b02eba95cc4d9377c37dd0e79ce0fe0dd67ee6e81c1b78a0f2' +
      'fc41cb301c1065ac94f7ec0a6f6b038fc47c341377b8b483048526a63db0ed7d47df567429199c65701712ee91ec6ff2304da89a34' +
      '249dd58bd3b6ef9ebc30935ebb94f6f8',
  },
];

/** 1500 payload bytes (i * 13 + 1) mod 256 and padding c0..ca: the OpenSSL payload path. */
function largeKatPacket(): Buffer {
  const payload = Buffer.from(Array.from({ length: 1500 }, (_, i) => (i * 13 + 1) & 0xff));
  const padding = Buffer.from(Array.from({ length: 11 }, (_, i) => 0xc0 + i));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(1 + payload.length + padding.length, 0);
  head[4] = padding.length;
  return Buffer.concat([head, payload, padding]);
}
const LARGE_KAT = {
  seq: 1000,
  wireSha256: '6f170cc8b0d64e2ebf98dc8d290a3e8110066bae14f95c7589caeb9d26588af5',
  wireFirst16: '44a4573397812660ebdf349ce46b8a0b',
  wireLast16: '7dd4e065a2f80018ef357205c4792e11', // the tag
};

describe('chacha20-poly1305@openssh.com', () => {
  it('is registered with the cipher table under its wire name', () => {
    expect(cipherByName('chacha20-poly1305@openssh.com')).toBe(chacha20Poly1305);
    expect(chacha20Poly1305).toMatchObject({ keyLength: 64, ivLength: 0, blockSize: 8, aead: true });
    const sealer = chacha20Poly1305.createSealer(keys(), null);
    const opener = chacha20Poly1305.createOpener(keys(), null);
    expect(sealer).toMatchObject({ blockSize: 8, lengthExcluded: true, macLength: 16 });
    expect(opener).toMatchObject({ headerLength: 4, blockSize: 8, lengthExcluded: true, macLength: 16 });
  });

  for (const engine of ENGINES) {
    describe(`with the ${engine.name} Poly1305`, () => {
      it.each(KATS)('seals $name to the independent model\'s wire bytes and opens them', ({ seq, plain, wire }) => {
        const sealed = new ChaChaPolySealer(keys(), engine).seal(seq, hex(plain));
        expect(sealed.toString('hex')).toBe(wire);
        const opened = receive(new ChaChaPolyOpener(keys(), engine), seq, hex(wire));
        expect(opened.toString('hex')).toBe(plain.slice(8));
      });

      it('seals a 1500-byte payload, encrypted by OpenSSL, to the independent model\'s wire bytes', () => {
        const plain = largeKatPacket();
        expect(plain.length - 4).toBeGreaterThan(JS_PAYLOAD_LIMIT);
        const wire = new ChaChaPolySealer(keys(), engine).seal(LARGE_KAT.seq, Buffer.from(plain));
        expect(wire.length).toBe(plain.length + 16);
        expect(wire.subarray(0, 16).toString('hex')).toBe(LARGE_KAT.wireFirst16);
        expect(wire.subarray(-16).toString('hex')).toBe(LARGE_KAT.wireLast16);
        expect(createHash('sha256').update(wire).digest('hex')).toBe(LARGE_KAT.wireSha256);
        expect(receive(new ChaChaPolyOpener(keys(), engine), LARGE_KAT.seq, wire).equals(plain.subarray(4))).toBe(true);
      });
    });
  }

  it('round-trips packets of many sizes and sequence numbers, across the two Poly1305 engines', () => {
    const key = randomBytes(64);
    const sealers = ENGINES.map((e) => new ChaChaPolySealer(keys(key), e));
    const openers = ENGINES.map((e) => new ChaChaPolyOpener(keys(key), e));
    const sizes = [0, 1, 2, 3, 7, 8, 11, 12, 15, 16, 27, 63, 64, 65, 200, 1000, 1011, 1018, 1026, 4096, 32768, 262000];
    const seqs = [0, 1, 2, 255, 256, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    let i = 0;
    for (const size of sizes) {
      for (const seq of seqs) {
        const plain = packet(randomBytes(size));
        const sealer = sealers[i % sealers.length];
        const opener = openers[(i + 1) % openers.length];
        i++;
        const wire = sealer.seal(seq, Buffer.from(plain));
        expect(wire.length).toBe(plain.length + 16);
        // The payload must really be encrypted (the length too, for a nonzero key stream byte).
        if (size >= 16) expect(wire.subarray(5, 5 + size).equals(plain.subarray(5, 5 + size))).toBe(false);
        // Buffer.equals: jest's toEqual walks a 256 KiB buffer byte by byte, for seconds.
        expect(receive(opener, seq, wire).equals(plain.subarray(4))).toBe(true);
      }
    }
  });

  it('uses a fresh key stream per sequence number', () => {
    const sealer = new ChaChaPolySealer(keys());
    const plain = packet(Buffer.alloc(64));
    expect(sealer.seal(1, Buffer.from(plain))).not.toEqual(sealer.seal(2, Buffer.from(plain)));
    expect(sealer.seal(1, Buffer.from(plain))).toEqual(sealer.seal(1, Buffer.from(plain)));
  });

  it('takes the sequence number modulo 2^32, as the uint32 on the wire wraps', () => {
    const sealer = new ChaChaPolySealer(keys());
    const plain = packet(Buffer.from('wrap'));
    expect(sealer.seal(0x100000000, Buffer.from(plain))).toEqual(sealer.seal(0, Buffer.from(plain)));
  });

  it('peekLength keeps no state: it can be repeated, and open does not depend on it', () => {
    const wire = new ChaChaPolySealer(keys()).seal(9, packet(Buffer.from('hello')));
    const opener = new ChaChaPolyOpener(keys());
    expect(opener.peekLength(9, wire.subarray(0, 4))).toBe(wire.length - 20);
    expect(opener.peekLength(9, wire.subarray(0, 4))).toBe(wire.length - 20);
    expect(opener.peekLength(10, wire.subarray(0, 4))).not.toBe(wire.length - 20);
    expect(opener.open(9, wire).subarray(1, 6).toString()).toBe('hello');
  });

  describe('rejects a tampered packet with SSHException', () => {
    const plain = packet(Buffer.from('the payload under test, long enough for a second block'));
    const wire = new ChaChaPolySealer(keys()).seal(42, Buffer.from(plain));
    const regions: Array<[string, number[]]> = [
      ['length', [0, 1, 2, 3]],
      ['padding length', [4]],
      ['payload', [5, 20, wire.length - 17]],
      ['tag', [wire.length - 16, wire.length - 1]],
    ];
    it.each(regions)('a flipped bit in the %s', (_what, offsets) => {
      for (const at of offsets) {
        for (const bit of [0x01, 0x80]) {
          const bad = Buffer.from(wire);
          bad[at] ^= bit;
          const opener = new ChaChaPolyOpener(keys());
          opener.peekLength(42, bad.subarray(0, 4));
          expect(() => opener.open(42, bad)).toThrow(SSHException);
          expect(() => opener.open(42, bad)).toThrow(/bad Poly1305 tag/);
        }
      }
    });

    it('the wrong sequence number (a replayed or reordered packet)', () => {
      expect(() => new ChaChaPolyOpener(keys()).open(43, Buffer.from(wire))).toThrow(SSHException);
    });

    it('a different main key K_2; a different header key K_1 garbles only the length', () => {
      const otherMain = Buffer.from(KEY64);
      otherMain[0] ^= 1;
      expect(() => new ChaChaPolyOpener(keys(otherMain)).open(42, Buffer.from(wire))).toThrow(SSHException);
      const otherHeader = Buffer.from(KEY64);
      otherHeader[63] ^= 1;
      const opener = new ChaChaPolyOpener(keys(otherHeader));
      expect(opener.peekLength(42, wire.subarray(0, 4))).not.toBe(plain.length - 4);
      expect(opener.open(42, Buffer.from(wire))).toEqual(plain.subarray(4));
    });

    it('a packet shorter than its tag', () => {
      expect(() => new ChaChaPolyOpener(keys()).open(42, wire.subarray(0, 10))).toThrow(SSHException);
    });
  });

  it('refuses a key that is not 64 bytes', () => {
    expect(() => new ChaChaPolySealer(keys(Buffer.alloc(32)))).toThrow(SSHException);
    expect(() => new ChaChaPolyOpener(keys(Buffer.alloc(65)))).toThrow(SSHException);
  });
});
