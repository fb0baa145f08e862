/**
 * SFTPFile.read() to the end over a scripted SFTPClient: which reads it asks the worker for (each
 * becomes one or many READs in flight there), and that every byte comes back in order.
 */
import { randomBytes } from 'node:crypto';
import type { SFTPClient } from '../lib/api/sftp-client';
import { SFTPFile } from '../lib/api/sftp-file';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * An SFTPFile over `content`; each worker read answers at most `answer` bytes (a server may answer
 * short). As the worker's: a read longer than `requestSize` is many READs, and says when one of
 * them met the end; a read of one READ says so only when it got nothing.
 */
function fileOver(content: Buffer, answer = Infinity, requestSize = 255 * KiB): { file: SFTPFile; reads: number[]; grow(to: Buffer): void } {
  const reads: number[] = [];
  /* eslint-disable require-yield */
  const sftp = {
    *callOp(method: string, args: { offset: number; length: number }): Generator<never, { data: Buffer; eof: boolean }> {
      if (method !== 'read') throw new Error(`unexpected call ${method}`);
      reads.push(args.length);
      const data = content.subarray(args.offset, args.offset + Math.min(args.length, answer));
      const metEnd = args.length > requestSize && data.length < args.length && args.offset + data.length === content.length;
      return { data, eof: data.length === 0 || metEnd };
    },
  } as unknown as SFTPClient;
  /* eslint-enable require-yield */
  return { file: new SFTPFile(sftp, Buffer.from('handle'), 'rb', -1, '/f'), reads, grow: (to) => (content = to) };
}

describe('SFTPFile.read() to the end', () => {
  it('asks for the read-ahead first: a small file costs one read, and one that finds the end unless the first met it', () => {
    const content = randomBytes(1000);
    // 256 KiB is two of sshd's READs: the worker met the end.
    const { file, reads } = fileOver(content);
    expect(file.read().equals(content)).toBe(true);
    expect(reads).toEqual([256 * KiB]);
    // A later call asks again (the file may have grown).
    expect(file.read().length).toBe(0);
    expect(reads).toEqual([256 * KiB, 256 * KiB]);
    // One READ answered short: only the next says where the file ends.
    const single = fileOver(content, Infinity, MiB);
    expect(single.file.read().equals(content)).toBe(true);
    expect(single.reads).toEqual([256 * KiB, 256 * KiB]);
  });

  it('reads on where a file grew after a read that met its end', () => {
    const content = randomBytes(300 * KiB);
    const { file, reads, grow } = fileOver(content.subarray(0, 1000));
    expect(file.read().equals(content.subarray(0, 1000))).toBe(true);
    expect(reads).toEqual([256 * KiB]);
    grow(content);
    expect(file.read().equals(content.subarray(1000))).toBe(true);
    expect(file.read().length).toBe(0);
  });

  it('asks four times as much after each full answer, up to 8 MiB, and returns every byte in order', () => {
    const content = randomBytes(20 * MiB);
    const { file, reads } = fileOver(content);
    expect(file.read().equals(content)).toBe(true);
    // The last read met the end: none only to hear it again.
    expect(reads).toEqual([256 * KiB, MiB, 4 * MiB, 8 * MiB, 8 * MiB]);
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
