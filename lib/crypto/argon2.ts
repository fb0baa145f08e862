import { createHash } from 'node:crypto';
import { blake2b } from './blake2b';
import { add, add32, and, extendU, func, get, I32, I64, k32, k64, load64, ltU32, module, mul, PAGE, rotr, set, shl, store64, sub, VOID, wasmApi, xor } from './wasm-asm';
import type { Code, WasmMemory } from './wasm-asm';

/**
 * Argon2 (RFC 9106, version 0x13): Argon2d, Argon2i and Argon2id, for PuTTY's key files.
 *
 * Node 20 has no Argon2. The memory-filling compression G runs in WebAssembly (64-bit words:
 * BlaMka's 32x32-bit products and 64-bit rotations are single instructions there, and no
 * JavaScript number can hold them); the schedule (which blocks G combines) and the BLAKE2b
 * hashing at both ends run here. A file made by puttygen's defaults (8 MiB, passes timed to
 * 100 ms of PuTTY's C) costs a few hundred milliseconds to open.
 */
export type Argon2Type = 'argon2d' | 'argon2i' | 'argon2id';
const TYPE_CODE: Record<Argon2Type, number> = { argon2d: 0, argon2i: 1, argon2id: 2 };
const VERSION = 0x13;

export interface Argon2Options {
  type: Argon2Type;
  /** t: passes over memory. */
  passes: number;
  /** m: memory in KiB (1 KiB blocks). */
  memoryKiB: number;
  /** p: lanes. */
  parallelism: number;
  /** T: bytes of output. */
  tagLength: number;
  /** K: secret value (empty by default). */
  secret?: Uint8Array;
  /** X: associated data (empty by default). */
  associatedData?: Uint8Array;
}

const BLOCK = 1024;
/** Byte addresses in the module's memory: G's scratch R and its copy, three fixed blocks. */
const SCRATCH = 0;
const SAVED = 1024;
const ZERO = 2048;
const INPUT = 3072;
const ADDRESSES = 4096;
const TEMP = 5120;
/** Memory blocks B[lane][column] start here. */
const BASE = 8192;
const ADDRESSES_PER_BLOCK = 128;
const SYNC_POINTS = 4;

// --- the compression function G, in WebAssembly ---

/** BlaMka's a + b + 2 * lo32(a) * lo32(b), on locals. */
function blaMka(a: number, b: number): Code {
  const lo = (i: number) => and(get(i), k64(0xffffffff));
  return add(add(get(a), get(b)), shl(mul(lo(a), lo(b)), k64(1)));
}

/** G of BLAKE2b's round without message words, BlaMka in place of the additions. */
function gb(a: number, b: number, c: number, d: number): Code {
  return [
    ...set(a, blaMka(a, b)),
    ...set(d, rotr(xor(get(d), get(a)), k64(32))),
    ...set(c, blaMka(c, d)),
    ...set(b, rotr(xor(get(b), get(c)), k64(24))),
    ...set(a, blaMka(a, b)),
    ...set(d, rotr(xor(get(d), get(a)), k64(16))),
    ...set(c, blaMka(c, d)),
    ...set(b, rotr(xor(get(b), get(c)), k64(63))),
  ];
}

/** The permutation P on the 16 words of the scratch block at these word indices. */
function permute(words: number[], V: number[]): Code {
  const v = (i: number) => V[i];
  return [
    ...words.flatMap((w, i) => set(V[i], load64(k32(0), SCRATCH + 8 * w))),
    ...gb(v(0), v(4), v(8), v(12)),
    ...gb(v(1), v(5), v(9), v(13)),
    ...gb(v(2), v(6), v(10), v(14)),
    ...gb(v(3), v(7), v(11), v(15)),
    ...gb(v(0), v(5), v(10), v(15)),
    ...gb(v(1), v(6), v(11), v(12)),
    ...gb(v(2), v(7), v(8), v(13)),
    ...gb(v(3), v(4), v(9), v(14)),
    ...words.flatMap((w, i) => store64(k32(0), get(V[i]), SCRATCH + 8 * w)),
  ];
}

/**
 * fill(x, y, dst, keep): dst = G(x, y), or dst ^= G(x, y) when keep is 1 (passes after the
 * first, version 0x13). G: R = x ^ y; P on each row of 16 words, then on each column of word
 * pairs; result P(R) ^ R. Arguments are byte addresses of 1 KiB blocks.
 */
function fillBody(): Code {
  const X = 0, Y = 1, DST = 2, KEEP = 3; // params (i32)
  const I = 4; // i32
  const V = Array.from({ length: 16 }, (_, i) => 5 + i); // i64
  const R = 21, MASK = 22; // i64
  const loop = (body: Code): Code => [
    ...set(I, k32(0)),
    0x02, VOID, 0x03, VOID,
    ...body,
    ...set(I, add32(get(I), k32(8))),
    ...ltU32(get(I), k32(BLOCK)), 0x0d, 0, // br_if loop
    0x0b, 0x0b,
  ];
  const rows: Code = [];
  for (let r = 0; r < 8; r++) rows.push(...permute(Array.from({ length: 16 }, (_, k) => 16 * r + k), V));
  const columns: Code = [];
  for (let c = 0; c < 8; c++) columns.push(...permute(Array.from({ length: 16 }, (_, k) => 2 * c + 16 * (k >> 1) + (k & 1)), V));
  return [
    ...loop([
      ...set(R, xor(load64(add32(get(X), get(I)), 0), load64(add32(get(Y), get(I)), 0))),
      ...store64(get(I), get(R), SCRATCH),
      ...store64(get(I), get(R), SAVED),
    ]),
    ...rows,
    ...columns,
    ...set(MASK, sub(k64(0), extendU(get(KEEP)))),
    ...loop([
      ...store64(
        add32(get(DST), get(I)),
        xor(xor(load64(get(I), SCRATCH), load64(get(I), SAVED)), and(load64(add32(get(DST), get(I)), 0), get(MASK))),
        0,
      ),
    ]),
  ];
}

let compiled: object | null = null;

function compile(): object {
  compiled ??= new (wasmApi().Module)(
    module({
      types: [[0x60, 4, I32, I32, I32, I32, 0]],
      funcs: [0],
      memoryPages: 1,
      exports: [
        ['memory', 0x02, 0],
        ['fill', 0x00, 0],
      ],
      code: [func([[1, I32], [18, I64]], fillBody())],
    }),
  );
  return compiled;
}

// --- the schedule (RFC 9106 section 3) ---

const le32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

/** H' (RFC 9106 section 3.3): a variable-length hash built from BLAKE2b. */
function hPrime(parts: Uint8Array[], length: number): Buffer {
  const input = Buffer.concat([le32(length), ...parts]);
  if (length <= 64) return blake2b(input, length);
  const r = Math.ceil(length / 32) - 2;
  const out = Buffer.alloc(length);
  let v = blake2b(input, 64);
  v.copy(out, 0, 0, 32);
  for (let i = 1; i < r; i++) {
    v = blake2b(v, 64);
    v.copy(out, 32 * i, 0, 32);
  }
  blake2b(v, length - 32 * r).copy(out, 32 * r);
  return out;
}

/** The high 32 bits of the 64-bit product of two uint32s, exactly. */
function mulHi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const lh = al * bh, hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return ah * bh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536);
}

function check(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`Argon2 ${name} must be ${min}-${max}, not ${value}`);
}

/** Argon2 of a password and salt: `tagLength` bytes. */
export function argon2(password: Uint8Array, salt: Uint8Array, options: Argon2Options): Buffer {
  const { passes, memoryKiB, parallelism: lanes, tagLength } = options;
  const type = TYPE_CODE[options.type];
  if (type === undefined) throw new RangeError(`unknown Argon2 type ${JSON.stringify(options.type)}`);
  check('parallelism', lanes, 1, 0xffffff);
  check('tag length', tagLength, 4, 0xffffffff);
  check('memory (KiB)', memoryKiB, 8 * lanes, 0x3fffff); // 4 GiB of WebAssembly memory at most
  check('passes', passes, 1, 0xffffffff);
  const secret = options.secret ?? new Uint8Array(0);
  const data = options.associatedData ?? new Uint8Array(0);

  const h0 = createHash('blake2b512');
  for (const n of [lanes, tagLength, memoryKiB, passes, VERSION, type]) h0.update(le32(n));
  for (const field of [password, salt, secret, data]) h0.update(le32(field.length)).update(field);
  const seed = h0.digest();

  const segment = Math.floor(memoryKiB / (SYNC_POINTS * lanes));
  const columns = segment * SYNC_POINTS;
  const blocks = columns * lanes;

  const instance = new (wasmApi().Instance)(compile(), {});
  const memory = instance.exports.memory as WasmMemory;
  const fill = instance.exports.fill as (x: number, y: number, dst: number, keep: number) => void;
  memory.grow(Math.ceil((BASE + blocks * BLOCK) / PAGE) - 1);
  const heap = new Uint8Array(memory.buffer);
  const words = new DataView(memory.buffer);
  const at = (lane: number, column: number) => BASE + BLOCK * (lane * columns + column);

  for (let lane = 0; lane < lanes; lane++) {
    heap.set(hPrime([seed, le32(0), le32(lane)], BLOCK), at(lane, 0));
    heap.set(hPrime([seed, le32(1), le32(lane)], BLOCK), at(lane, 1));
  }

  const inputWord = (i: number, v: number) => words.setBigUint64(INPUT + 8 * i, BigInt(v), true);
  for (let pass = 0; pass < passes; pass++) {
    for (let slice = 0; slice < SYNC_POINTS; slice++) {
      for (let lane = 0; lane < lanes; lane++) {
        const independent = type === TYPE_CODE.argon2i || (type === TYPE_CODE.argon2id && pass === 0 && slice < 2);
        let counter = 0;
        const nextAddresses = () => {
          inputWord(6, ++counter);
          fill(ZERO, INPUT, TEMP, 0);
          fill(ZERO, TEMP, ADDRESSES, 0);
        };
        if (independent) {
          heap.fill(0, INPUT, INPUT + BLOCK);
          [pass, lane, slice, blocks, passes, type].forEach((v, i) => inputWord(i, v));
        }
        const first = pass === 0 && slice === 0 ? 2 : 0;
        if (independent && first !== 0) nextAddresses();
        for (let index = first; index < segment; index++) {
          const column = slice * segment + index;
          const prev = at(lane, column === 0 ? columns - 1 : column - 1);
          let pseudo: number;
          if (independent) {
            if (index % ADDRESSES_PER_BLOCK === 0) nextAddresses();
            pseudo = ADDRESSES + 8 * (index % ADDRESSES_PER_BLOCK);
          } else {
            pseudo = prev;
          }
          const j1 = words.getUint32(pseudo, true);
          const j2 = words.getUint32(pseudo + 4, true);
          const refLane = pass === 0 && slice === 0 ? lane : j2 % lanes;
          const sameLane = refLane === lane;
          // How many blocks may be referenced (RFC 9106 section 3.4.1.2), then J1 mapped onto them.
          let area: number;
          if (pass === 0) {
            if (slice === 0) area = index - 1;
            else area = slice * segment + (sameLane ? index - 1 : index === 0 ? -1 : 0);
          } else {
            area = columns - segment + (sameLane ? index - 1 : index === 0 ? -1 : 0);
          }
          const relative = area - 1 - mulHi(area, mulHi(j1, j1));
          const start = pass === 0 || slice === SYNC_POINTS - 1 ? 0 : (slice + 1) * segment;
          fill(prev, at(refLane, (start + relative) % columns), at(lane, column), pass > 0 ? 1 : 0);
        }
      }
    }
  }

  const final = Buffer.from(heap.subarray(at(0, columns - 1), at(0, columns - 1) + BLOCK));
  for (let lane = 1; lane < lanes; lane++) {
    const last = at(lane, columns - 1);
    for (let i = 0; i < BLOCK; i++) final[i] ^= heap[last + i];
  }
  heap.fill(0);
  return hPrime([final], tagLength);
}
