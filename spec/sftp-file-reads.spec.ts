/**
 * SFTPFile.read() to the end over a scripted SFTPClient: which reads it asks the worker for (each
 * becomes one or many READs in flight there), and that every byte comes back in order.
 */
import { randomBytes } from 'node:crypto';
import type { SFTPClient } from '../lib/api/sftp-client';
import { SFTPFile } from '../lib/api/sftp-file';

const KiB = 1024;
const MiB = 1024 * KiB;

/** An SFTPFile over `content`; each worker read answers at most `answer` bytes (a server may answer short). */
function fileOver(content: Buffer, answer = Infinity): { file: SFTPFile; reads: number[] } {
  const reads: number[] = [];
  /* eslint-disable require-yield */
  const sftp = {
    *callOp(method: string, args: { offset: number; length: number }): Generator<never, Buffer> {
      if (method !== 'read') throw new Error(`unexpected call ${method}`);
      reads.push(args.length);
      return content.subarray(args.offset, args.offset + Math.min(args.length, answer));
    },
  } as unknown as SFTPClient;
  /* eslint-enable require-yield */
  return { file: new SFTPFile(sftp, Buffer.from('handle'), 'rb', -1, '/f'), reads };
}

describe('SFTPFile.read() to the end', () => {
  it('asks for the read-ahead first: a small file costs one read and one that finds the end', () => {
    const content = randomBytes(1000);
    const { file, reads } = fileOver(content);
    expect(file.read().equals(content)).toBe(true);
    expect(reads).toEqual([256 * KiB, 256 * KiB]);
    expect(file.read().length).toBe(0);
  });

  it('asks four times as much after each full answer, up to 8 MiB, and returns every byte in order', () => {
    const content = randomBytes(20 * MiB);
    const { file, reads } = fileOver(content);
    expect(file.read().equals(content)).toBe(true);
    expect(reads).toEqual([256 * KiB, MiB, 4 * MiB, 8 * MiB, 8 * MiB, 256 * KiB]);
  });

  it('starts at 8 MiB after prefetch(), and loses nothing to short answers', () => {
    const content = randomBytes(3 * MiB + 5);
    const prefetched = fileOver(content);
    prefetched.file.prefetch();
    expect(prefetched.file.read().equals(content)).toBe(true);
    expect(prefetched.reads[0]).toBe(8 * MiB);
    const short = fileOver(content, 100 * KiB);
    expect(short.file.read().equals(content)).toBe(true);
    expect(Math.max(...short.reads)).toBe(256 * KiB);
  });
});
