/**
 * A small WebAssembly assembler: the binary encoding (WebAssembly core specification 1.0,
 * chapter 5) of the instructions our hand-written modules use, so that a module is built from
 * TypeScript at load time (no .wasm file, no build tool, bytes that cannot drift from their
 * source). Each instruction helper returns the bytes of a complete expression.
 */

export type Code = number[];

/** Bytes in a page of WebAssembly memory. */
export const PAGE = 65536;

export function uleb(n: number): Code {
  const out: Code = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(v: bigint): Code {
  const out: Code = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

export const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()];
export const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body];
export const name = (s: string): Code => vec([...Buffer.from(s, 'utf8')].map((b) => [b]));

export const I32 = 0x7f;
export const I64 = 0x7e;
export const VOID = 0x40;

// Instructions, by opcode.
export const get = (i: number): Code => [0x20, ...uleb(i)];
export const set = (i: number, v: Code): Code => [...v, 0x21, ...uleb(i)];
export const gget = (i: number): Code => [0x23, ...uleb(i)];
export const gset = (i: number, v: Code): Code => [...v, 0x24, ...uleb(i)];
export const k64 = (v: bigint | number): Code => [0x42, ...sleb(BigInt(v))];
export const k32 = (v: number): Code => [0x41, ...sleb(BigInt(v))];
export const bin = (op: number) => (a: Code, b: Code): Code => [...a, ...b, op];
export const add = bin(0x7c);
export const sub = bin(0x7d);
export const mul = bin(0x7e);
export const and = bin(0x83);
export const or = bin(0x84);
export const xor = bin(0x85);
export const shl = bin(0x86);
export const shrS = bin(0x87);
export const shrU = bin(0x88);
export const ltU = bin(0x54);
export const add32 = bin(0x6a);
export const gtU32 = bin(0x4b);
export const leU32 = bin(0x4d);
export const ltU32 = bin(0x49);
export const extendU = (v: Code): Code => [...v, 0xad];
export const load64 = (addr: Code, offset: number): Code => [...addr, 0x29, 3, ...uleb(offset)];
export const store64 = (addr: Code, v: Code, offset: number): Code => [...addr, ...v, 0x37, 3, ...uleb(offset)];
export const call = (f: number): Code => [0x10, ...uleb(f)];
export const sum = (...xs: Code[]): Code => xs.reduce((acc, x) => add(acc, x));

export const rotr = bin(0x8a);
export const wrap = (v: Code): Code => [...v, 0xa7];

/** A function body: groups of [count, type] locals, then the code. */
export function func(localGroups: Array<[number, number]>, body: Code): Code {
  const content = [...vec(localGroups.map(([n, t]) => [...uleb(n), t])), ...body, 0x0b];
  return [...uleb(content.length), ...content];
}

/** A module from its sections' contents (types, functions, memory, globals, exports, code). */
export function module(sections: { types: Code[]; funcs: number[]; memoryPages: number; globals?: Code[]; exports: Array<[string, number, number]>; code: Code[] }): Uint8Array {
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vec(sections.types)),
    ...section(3, vec(sections.funcs.map((t) => uleb(t)))),
    ...section(5, vec([[0x00, ...uleb(sections.memoryPages)]])),
    ...(sections.globals ? section(6, vec(sections.globals)) : []),
    ...section(7, vec(sections.exports.map(([n, kind, index]) => [...name(n), kind, ...uleb(index)]))),
    ...section(10, vec(sections.code)),
  ]);
}

// The few WebAssembly JS API members used here (TypeScript's lib.dom has them, our lib does not).
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/** The runtime's WebAssembly API; throws when there is none. */
export function wasmApi(): WasmApi {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!api) throw new Error('WebAssembly is not available');
  return api;
}
