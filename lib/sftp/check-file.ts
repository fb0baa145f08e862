/**
 * check-file (draft-ietf-secsh-filexfer-09 section 9.1.2, draft-ietf-secsh-filexfer-extensions-00
 * section 3): the server hashes a range of a file, whole or block by block, so a client can
 * verify a transfer without reading the data back. One definition for the three users: the
 * client engine (request and reply codec), the worker's filesystem server and the main-thread
 * SFTPServer. The hashing is a generator of reads, so the worker drives it asynchronously and
 * SFTPServer synchronously through its SFTPHandle.
 */
import { createHash } from 'node:crypto';
import type { Message } from '../wire/message';
import { FX, SFTP_MAX_MSG_LENGTH } from './constants';
import { SFTPError } from './errors';
import { encodeReply } from './replies';
import { StatusError } from './server-paths';
import type { Uint64 } from './uint64';
import { readUint64 } from './uint64';

export const CHECK_FILE = {
  /** The draft's request on an open handle. */
  HANDLE: 'check-file-handle',
  /** The draft's request on a path. */
  NAME: 'check-file-name',
  /**
   * The name Paramiko's client sends (with a handle, otherwise as check-file-handle) and the
   * only one Paramiko's server answers; both the draft and Paramiko echo it first in the reply.
   */
  LEGACY: 'check-file',
} as const;

/**
 * The VERSION extension pair servers announce: "check-file" with the algorithms they hash, as
 * Paramiko's server does ("md5,sha1"). Clients need not wait for it: they may just ask.
 */
export function checkFileAnnouncement(): [string, string] {
  return [CHECK_FILE.LEGACY, [...CHECK_FILE_HASHES.keys()].join(',')];
}

/** The draft's floor for block-size (0 means one hash over the whole range). */
export const CHECK_FILE_MIN_BLOCK = 256;

/** The server reads the file in pieces of this size (Paramiko's server reads 64 KiB at a time too). */
export const CHECK_FILE_CHUNK = 64 * 1024;

/**
 * Digest bytes one reply may carry: the reply must fit the 256 KiB packet every OpenSSH-style
 * client accepts, less its header (length, type, id, "check-file", the algorithm name).
 */
export const CHECK_FILE_MAX_HASH_BYTES = SFTP_MAX_MSG_LENGTH - 64;

/** The draft's algorithm names (node:crypto's too), with the digest size in bytes. */
export const CHECK_FILE_HASHES: ReadonlyMap<string, number> = new Map([
  ['md5', 16],
  ['sha1', 20],
  ['sha224', 28],
  ['sha256', 32],
  ['sha384', 48],
  ['sha512', 64],
]);

/** The request's fields after its name (the same for all three names). */
export interface CheckFileRequest {
  /** A handle (check-file-handle, check-file) or a path (check-file-name). */
  target: Buffer;
  /** The client's preference list, comma-separated. */
  algorithms: string;
  offset: Uint64;
  /** 0: to the end of the file. */
  length: Uint64;
  /** 0: one hash for the whole range. */
  blockSize: number;
}

export function encodeCheckFileArgs(m: Message, r: CheckFileRequest): void {
  m.addString(r.target).addString(r.algorithms).addInt64(r.offset).addInt64(r.length).addInt(r.blockSize);
}

export function decodeCheckFileArgs(m: Message): CheckFileRequest {
  const target = m.getString('a check-file target');
  const algorithms = m.getText();
  const offset = readUint64(m.getBytes(8), 0);
  const length = readUint64(m.getBytes(8), 0);
  return { target, algorithms, offset, length, blockSize: m.getInt() };
}

/** SSH_FXP_EXTENDED_REPLY: "check-file", the algorithm used, the digests end to end (no length word). */
export function encodeCheckFileReply(id: number, algorithm: string, hashes: Buffer): Buffer {
  return encodeReply.extendedReply(id, (m) => m.addString(CHECK_FILE.LEGACY).addString(algorithm).addBytes(hashes));
}

/**
 * The reply's algorithm and digests. The echoed "check-file" is taken as optional: a reading of
 * the extensions draft sends the algorithm first, and no algorithm is named "check-file".
 */
export function decodeCheckFileReply(m: Message): { algorithm: string; hashes: Buffer } {
  let algorithm = m.getText();
  if (algorithm === CHECK_FILE.LEGACY) algorithm = m.getText();
  const hashes = Buffer.from(m.getRemainder());
  const digestSize = CHECK_FILE_HASHES.get(algorithm);
  if (digestSize && hashes.length % digestSize !== 0) {
    throw new SFTPError(`check-file: ${hashes.length} bytes is not a whole number of ${algorithm} digests (${digestSize} bytes each)`);
  }
  return { algorithm, hashes };
}

/** The first algorithm of the client's list this server supports. */
export function pickHashAlgorithm(list: string): string | undefined {
  return list
    .split(',')
    .map((a) => a.trim())
    .find((a) => CHECK_FILE_HASHES.has(a));
}

/** What to hash, validated: the chosen algorithm and the range [start, end). */
export interface CheckFilePlan {
  algorithm: string;
  start: number;
  /** Infinity: to the end of the file. */
  end: number;
  /** 0: one hash over the range. */
  blockSize: number;
  /** The file's size when the server knows it (bounds the reply before any reading). */
  size?: number;
}

/**
 * Checks a request as a server must before reading anything; throws a StatusError with the
 * status to answer. `size` is the file's size when known.
 */
export function planCheckFile(req: CheckFileRequest, size?: number): CheckFilePlan {
  const algorithm = pickHashAlgorithm(req.algorithms);
  if (!algorithm) {
    // FAILURE as Paramiko's server answers; OP_UNSUPPORTED would read as "no check-file at all".
    throw new StatusError(FX.FAILURE, `No supported hash algorithm in "${req.algorithms}" (supported: ${[...CHECK_FILE_HASHES.keys()].join(', ')})`);
  }
  if (req.blockSize !== 0 && req.blockSize < CHECK_FILE_MIN_BLOCK) {
    throw new StatusError(FX.FAILURE, `Block size ${req.blockSize} is below the minimum of ${CHECK_FILE_MIN_BLOCK}`);
  }
  // Offsets beyond 2^53 are beyond any real file; a length that large means "all of it".
  if (typeof req.offset === 'bigint' || (size !== undefined && req.offset > size)) {
    throw new StatusError(FX.EOF, 'Start offset is beyond the end of the file');
  }
  const start = req.offset;
  const end = req.length === 0 || typeof req.length === 'bigint' || !Number.isSafeInteger(start + req.length) ? Infinity : start + req.length;
  const plan: CheckFilePlan = { algorithm, start, end, blockSize: req.blockSize, size };
  if (size !== undefined) {
    const n = Math.min(end, size) - start;
    const digests = req.blockSize === 0 ? 1 : Math.ceil(n / req.blockSize);
    if (digests * CHECK_FILE_HASHES.get(algorithm)! > CHECK_FILE_MAX_HASH_BYTES) throw tooManyDigests();
  }
  return plan;
}

const tooManyDigests = (): StatusError =>
  new StatusError(FX.FAILURE, 'Too many blocks for one reply: ask for a larger block size or a shorter range');

/** One read the hashing needs: up to `length` bytes at `offset`. */
export interface CheckFileRead {
  offset: number;
  length: number;
}

/**
 * The hashing, as a generator of reads: each yielded read is answered with its data (shorter
 * at the end of the file; empty or null at EOF). Returns the digests end to end: one per
 * block, the last block possibly short; with block size 0 exactly one, over all the range
 * (over nothing for an empty range). Throws StatusError(FAILURE) when the digests would not
 * fit one reply.
 */
export function* hashFileRange(plan: CheckFilePlan, chunk = CHECK_FILE_CHUNK): Generator<CheckFileRead, Buffer, Buffer | null> {
  const digestSize = CHECK_FILE_HASHES.get(plan.algorithm)!;
  const blockLen = plan.blockSize || Infinity;
  const digests: Buffer[] = [];
  let digestBytes = 0;
  const finish = (h: ReturnType<typeof createHash>): void => {
    digestBytes += digestSize;
    if (digestBytes > CHECK_FILE_MAX_HASH_BYTES) throw tooManyDigests();
    digests.push(h.digest());
  };
  let hash = createHash(plan.algorithm);
  let inBlock = 0;
  let pos = plan.start;
  while (pos < plan.end) {
    const want = Math.min(chunk, plan.end - pos, blockLen - inBlock);
    const data = yield { offset: pos, length: want };
    // The end of the file: a range running past it covers what there is. (Without the size, a
    // start past the end cannot be told from one at the end: both hash an empty range.)
    if (!data || data.length === 0) break;
    const taken = data.length > want ? data.subarray(0, want) : data;
    hash.update(taken);
    pos += taken.length;
    inBlock += taken.length;
    if (inBlock === blockLen) {
      finish(hash);
      hash = createHash(plan.algorithm);
      inBlock = 0;
    }
  }
  if (inBlock > 0 || plan.blockSize === 0) finish(hash);
  return Buffer.concat(digests);
}

/** Drives hashFileRange with a synchronous reader. */
export function hashFileRangeSync(plan: CheckFilePlan, read: (offset: number, length: number) => Buffer | null): Buffer {
  const steps = hashFileRange(plan);
  for (let r = steps.next(); ; ) {
    if (r.done) return r.value;
    r = steps.next(read(r.value.offset, r.value.length));
  }
}

/** Drives hashFileRange with an asynchronous reader, yielding to the event loop before each read. */
export async function hashFileRangeAsync(plan: CheckFilePlan, read: (offset: number, length: number) => Promise<Buffer | null>): Promise<Buffer> {
  const steps = hashFileRange(plan);
  for (let r = steps.next(); ; ) {
    if (r.done) return r.value;
    // A large range must not hold the worker: other sessions' packets get their turn between chunks.
    await new Promise<void>((resolve) => setImmediate(resolve));
    r = steps.next(await read(r.value.offset, r.value.length));
  }
}
