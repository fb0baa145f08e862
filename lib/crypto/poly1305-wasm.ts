/**
 * Poly1305 in WebAssembly, assembled here from TypeScript: no .wasm file, no build tool
 * (wabt's wat2wasm is not a dependency), and the bytes cannot drift from this source.
 *
 * WebAssembly has 64-bit integers, which JavaScript arithmetic lacks: the accumulator is five
 * 26-bit limbs (poly1305-donna-32's radix), each limb product a 64-bit i64.mul, 25 per block
 * against 36 float multiplications plus Math.floor carries in poly1305.ts. Measured on Node 20
 * x64 over 32 KiB: 1.8 GB/s, about 4x the pure-JS engine (bench/chachapoly.js prints both).
 * The multiplications bound it (25 per 16 bytes at one per cycle is 1.9 GB/s at 3 GHz); wider
 * limbs would need 128-bit products, which WebAssembly lacks. Two-lane SIMD
 * (i64x2.extmul_low_i32x4_u, blocks interleaved with r^2) is the remaining idea, not tried:
 * the lane shuffles it needs would eat into what it saves.
 *
 * Module interface: memory [0..32) key, [32..48) tag, [64..) message. The export
 * `mac(full, tail)` absorbs the `full` bytes (a multiple of 16) at 64 as 16-byte blocks and,
 * when `tail` is 1, one more block at 64 + full that the caller padded (1 byte, zeros), then
 * writes the tag.
 */
import type { Poly1305Engine } from './poly1305';
import { add, add32, and, call, extendU, func, gget, gset, gtU32, I32, I64, k32, k64, leU32, load64, ltU, module, mul, PAGE, or, set, get, shl, shrS, shrU, store64, sub, sum, VOID, wasmApi, xor } from './wasm-asm';
import type { Code, WasmMemory } from './wasm-asm';

const KEY = 0;
const TAG = 32;
const DATA = 64;
/** OpenSSH's largest packet (PACKET_MAX_SIZE, 256 KiB) fits without growing memory. */
const INITIAL_PAGES = 5;

const M26 = 0x3ffffff;
const m26 = (v: Code): Code => and(v, k64(M26));
const shr = (v: Code, n: number): Code => shrU(v, k64(n));
const lsh = (v: Code, n: number): Code => shl(v, k64(n));

// Globals: accumulator h0..h4, clamped r0..r4, s as two 64-bit words, r^2 mod p.
const GH = [0, 1, 2, 3, 4];
const GR = [5, 6, 7, 8, 9];
const GPAD = [10, 11];
const GR2 = [12, 13, 14, 15, 16];
const GLOBALS = 17;

// Function indices.
const F_INIT = 0;
const F_BLOCKS = 1;
const F_FINISH = 2;
const F_MAC = 3;

type Limb = (i: number) => Code;

/**
 * d_k of the product a * b mod p: the sum over i + j = k of a_i b_j, plus over i + j = k + 5
 * of a_i (5 b_j), since 2^130 = 5 mod p. `b5(j)` is 5 * b_j.
 */
function product(a: Limb, b: Limb, b5: Limb, k: number): Code {
  return sum(...[0, 1, 2, 3, 4].map((i) => (i <= k ? mul(a(i), b(k - i)) : mul(a(i), b5(k + 5 - i)))));
}

/** Carries the five sums in locals D into 26-bit limbs in locals H (h1 may keep a small excess). */
function carryInto(D: number[], H: number[], C: number): Code {
  const code: Code = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) code.push(...set(D[i], add(get(D[i]), get(C))));
    code.push(...set(C, shr(get(D[i]), 26)), ...set(H[i], m26(get(D[i]))));
  }
  code.push(
    ...set(H[0], add(get(H[0]), mul(get(C), k64(5)))),
    ...set(C, shr(get(H[0]), 26)),
    ...set(H[0], m26(get(H[0]))),
    ...set(H[1], add(get(H[1]), get(C))),
  );
  return code;
}

/** The five 26-bit limbs of the 16-byte block at ptr + off (two 64-bit loads), plus hibit. */
function blockLimbs(ptr: Code, off: number, LO: number, HI: number, hibit: Code): { load: Code; limb: Limb } {
  const limbs = [
    m26(get(LO)),
    m26(shr(get(LO), 26)),
    m26(or(shr(get(LO), 52), lsh(get(HI), 12))),
    m26(shr(get(HI), 14)),
    or(shr(get(HI), 40), hibit),
  ];
  return { load: [...set(LO, load64(ptr, off)), ...set(HI, load64(ptr, off + 8))], limb: (i) => limbs[i] };
}

/** init(): reads the key at KEY, clamps r into 26-bit limbs, computes r^2, keeps s, zeroes h. */
function initBody(): Code {
  const LO = 0, HI = 1;
  const R = [2, 3, 4, 5, 6];
  const S = [7, 8, 9, 10, 11]; // 5 * R; S[0] unused
  const D = [12, 13, 14, 15, 16];
  const R2 = [17, 18, 19, 20, 21];
  const C = 22;
  const r: Limb = (i) => get(R[i]);
  return [
    ...set(LO, and(load64(k32(0), KEY), k64(0x0ffffffc0fffffffn))),
    ...set(HI, and(load64(k32(0), KEY + 8), k64(0x0ffffffc0ffffffcn))),
    ...set(R[0], m26(get(LO))),
    ...set(R[1], m26(shr(get(LO), 26))),
    ...set(R[2], m26(or(shr(get(LO), 52), lsh(get(HI), 12)))),
    ...set(R[3], m26(shr(get(HI), 14))),
    ...set(R[4], shr(get(HI), 40)),
    ...[1, 2, 3, 4].flatMap((j) => set(S[j], mul(r(j), k64(5)))),
    ...[0, 1, 2, 3, 4].flatMap((k) => set(D[k], product(r, r, (j) => get(S[j]), k))),
    ...carryInto(D, R2, C),
    ...R.flatMap((l, i) => gset(GR[i], get(l))),
    ...R2.flatMap((l, i) => gset(GR2[i], get(l))),
    ...gset(GPAD[0], load64(k32(0), KEY + 16)),
    ...gset(GPAD[1], load64(k32(0), KEY + 24)),
    ...GH.flatMap((g) => gset(g, k64(0))),
  ];
}

/**
 * blocks(ptr, len, hibit): h = (h + block) * r mod p for each 16-byte block, two blocks per
 * iteration as h = (h + m1) * r^2 + m2 * r: the same 25 multiplications per block but one
 * carry chain per two, and two independent product sums for the CPU to overlap (measured
 * about 10% over one block per iteration). Bounds:
 * (h + m1)_i < 2^27 and 5 * r^2_j < 2^28.4, m2_i < 2^26 and 5 * r_j < 2^28.4, so each d_k
 * stays below 5 * 2^55.4 + 5 * 2^54.4 < 2^58.3.
 */
function blocksBody(): Code {
  const PTR = 0, LEN = 1, HIBIT = 2; // params
  const H = [3, 4, 5, 6, 7];
  const R = [8, 9, 10, 11, 12];
  const S = [13, 14, 15, 16, 17]; // 5 * R
  const R2 = [18, 19, 20, 21, 22];
  const S2 = [23, 24, 25, 26, 27]; // 5 * R2
  const N = [28, 29, 30, 31, 32]; // the second block's limbs
  const D = [33, 34, 35, 36, 37];
  const LO = 38, HI = 39, C = 40;
  const END = 41; // i32
  const h: Limb = (i) => get(H[i]);
  const r: Limb = (i) => get(R[i]);
  const s: Limb = (i) => get(S[i]);
  const r2: Limb = (i) => get(R2[i]);
  const s2: Limb = (i) => get(S2[i]);
  const n: Limb = (i) => get(N[i]);
  const first = blockLimbs(get(PTR), 0, LO, HI, get(HIBIT));
  const second = blockLimbs(get(PTR), 16, LO, HI, get(HIBIT));
  return [
    ...H.flatMap((l, i) => set(l, gget(GH[i]))),
    ...R.flatMap((l, i) => set(l, gget(GR[i]))),
    ...R2.flatMap((l, i) => set(l, gget(GR2[i]))),
    ...[1, 2, 3, 4].flatMap((j) => [...set(S[j], mul(r(j), k64(5))), ...set(S2[j], mul(r2(j), k64(5)))]),
    ...set(END, add32(get(PTR), get(LEN))),
    0x02, VOID, // block: pairs of blocks
    0x03, VOID, // loop
    ...gtU32(add32(get(PTR), k32(32)), get(END)), 0x0d, 1, // br_if fewer than 32 bytes left
    ...first.load,
    ...[0, 1, 2, 3, 4].flatMap((i) => set(H[i], add(h(i), first.limb(i)))),
    ...second.load,
    ...[0, 1, 2, 3, 4].flatMap((i) => set(N[i], second.limb(i))),
    ...[0, 1, 2, 3, 4].flatMap((k) => set(D[k], add(product(h, r2, s2, k), product(n, r, s, k)))),
    ...carryInto(D, H, C),
    ...set(PTR, add32(get(PTR), k32(32))),
    0x0c, 0, // br to the loop
    0x0b, // end loop
    0x0b, // end block
    ...leU32(add32(get(PTR), k32(16)), get(END)), 0x04, VOID, // if one block is left
    ...first.load,
    ...[0, 1, 2, 3, 4].flatMap((i) => set(H[i], add(h(i), first.limb(i)))),
    ...[0, 1, 2, 3, 4].flatMap((k) => set(D[k], product(h, r, s, k))),
    ...carryInto(D, H, C),
    0x0b, // end if
    ...H.flatMap((l, i) => gset(GH[i], get(l))),
  ];
}

/** finish(): full reduction mod 2^130 - 5, plus s, tag stored at TAG. */
function finishBody(): Code {
  const H = [0, 1, 2, 3, 4];
  const G = [5, 6, 7, 8, 9];
  const C = 10, KEEP_H = 11, LO = 12;
  const h = (i: number) => get(H[i]);
  const code: Code = [...H.flatMap((l, i) => set(l, gget(GH[i])))];
  const carryFrom = (i: number): Code => [
    ...set(C, shr(h(i), 26)),
    ...set(H[i], m26(h(i))),
    ...set(H[i + 1], add(h(i + 1), get(C))),
  ];
  // h1 may hold a carry from the last block; propagate, fold 2^130 into h0, propagate again.
  code.push(...carryFrom(1), ...carryFrom(2), ...carryFrom(3));
  code.push(
    ...set(C, shr(h(4), 26)),
    ...set(H[4], m26(h(4))),
    ...set(H[0], add(h(0), mul(get(C), k64(5)))),
  );
  code.push(...carryFrom(0), ...carryFrom(1), ...carryFrom(2), ...carryFrom(3));
  // g = h + 5 - 2^130; h >= p exactly when g is not negative.
  code.push(...set(G[0], add(h(0), k64(5))));
  for (let i = 0; i < 4; i++) {
    code.push(...set(C, shr(get(G[i]), 26)), ...set(G[i], m26(get(G[i]))), ...set(G[i + 1], add(h(i + 1), get(C))));
  }
  code.push(...set(G[4], sub(get(G[4]), k64(1 << 26))));
  code.push(...set(KEEP_H, shrS(get(G[4]), k64(63)))); // all ones when h < p
  for (let i = 0; i < 5; i++) {
    code.push(...set(H[i], or(and(h(i), get(KEEP_H)), and(get(G[i]), xor(get(KEEP_H), k64(-1))))));
  }
  // Pack into 128 bits and add s modulo 2^128.
  const lo = or(or(h(0), lsh(h(1), 26)), lsh(h(2), 52));
  const hi = or(or(shr(h(2), 12), lsh(h(3), 14)), lsh(h(4), 40));
  code.push(
    ...set(LO, add(lo, gget(GPAD[0]))),
    ...store64(k32(0), get(LO), TAG),
    ...store64(k32(0), sum(hi, gget(GPAD[1]), extendU(ltU(get(LO), gget(GPAD[0])))), TAG + 8),
  );
  return code;
}

/** mac(full, tail): the whole one-shot computation over the message at DATA. */
function macBody(): Code {
  const FULL = 0, TAIL = 1;
  return [
    ...call(F_INIT),
    ...k32(DATA), ...get(FULL), ...k64(1 << 24), ...call(F_BLOCKS), // 2^128 = bit 24 of limb 4
    ...get(TAIL), 0x04, VOID, // if tail
    ...add32(k32(DATA), get(FULL)), ...k32(16), ...k64(0), ...call(F_BLOCKS),
    0x0b,
    ...call(F_FINISH),
  ];
}

/** The module's bytes. */
export function poly1305WasmBytes(): Uint8Array {
  return module({
    types: [
      [0x60, 0, 0], // 0: () -> ()
      [0x60, 3, I32, I32, I64, 0], // 1: (i32, i32, i64) -> ()
      [0x60, 2, I32, I32, 0], // 2: (i32, i32) -> ()
    ],
    funcs: [0, 1, 0, 2], // init, blocks, finish, mac
    memoryPages: INITIAL_PAGES,
    globals: Array.from({ length: GLOBALS }, () => [I64, 0x01, ...k64(0), 0x0b]),
    exports: [
      ['memory', 0x02, 0],
      ['mac', 0x00, F_MAC],
    ],
    code: [
      func([[23, I64]], initBody()),
      func([[38, I64], [1, I32]], blocksBody()),
      func([[13, I64]], finishBody()),
      func([], macBody()),
    ],
  });
}

/** Instantiates the module; throws when the runtime has no WebAssembly. */
export function createWasmPoly1305(): Poly1305Engine {
  const api = wasmApi();
  const instance = new api.Instance(new api.Module(poly1305WasmBytes()), {});
  const memory = instance.exports.memory as WasmMemory;
  const mac = instance.exports.mac as (full: number, tail: number) => void;
  let heap = new Uint8Array(memory.buffer);
  return {
    name: 'wasm',
    macInto(key, msg, out, offset) {
      if (key.length !== 32) throw new RangeError(`Poly1305 key must be 32 bytes, got ${key.length}`);
      const n = msg.length;
      const need = DATA + n + 16;
      if (need > heap.length) {
        memory.grow(Math.ceil((need - heap.length) / PAGE));
        heap = new Uint8Array(memory.buffer);
      }
      heap.set(key.subarray(0, 32), KEY);
      heap.set(msg, DATA);
      const full = n & ~15;
      const tail = n - full;
      if (tail > 0) {
        heap[DATA + n] = 1;
        heap.fill(0, DATA + n + 1, DATA + full + 16);
      }
      mac(full, tail > 0 ? 1 : 0);
      out.set(heap.subarray(TAG, TAG + 16), offset);
      heap.fill(0, KEY, KEY + 32);
    },
  };
}
