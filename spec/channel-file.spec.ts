/**
 * ChannelFile's read side (Python's BufferedFile semantics) over a scripted source: the chunks
 * a channel's recv() would return, in order, then EOF.
 */
import type { Channel } from '../lib/api/channel';
import { ChannelFile } from '../lib/api/channel-file';
import { GrowingBuffer } from '../lib/api/growing-buffer';
import { IncompleteReadError, SocketTimeout, SSHException } from '../lib/errors';
import { catchError } from './support/bridge-helpers';
import { encodeTerminalModes } from '../lib/api/terminal-modes';

/**
 * A ChannelFile whose channel returns `chunks` from recv() (and recvIntoOp, as much of the next
 * chunk as fits), then empty Buffers; counts the calls. Call number `failAt` (of either) throws
 * a SocketTimeout instead, as a recv that waited too long.
 */
function fileOver(chunks: Array<string | Buffer>, mode = 'r', failAt = -1): { file: ChannelFile; recvCalls: () => number } {
  const queue = chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c));
  let calls = 0;
  const next = () => {
    if (++calls === failAt) throw new SocketTimeout('no data within 1 s');
  };
  // The bodies recv() and recvAsync() share: generators that here never have to wait.
  /* eslint-disable require-yield */
  const channel = {
    *recvOp(): Generator<never, Buffer> {
      next();
      return queue.shift() ?? Buffer.alloc(0);
    },
    *recvIntoOp(target: Uint8Array): Generator<never, number> {
      next();
      const head = queue.shift();
      if (!head) return 0;
      const n = Math.min(head.length, target.length);
      target.set(head.subarray(0, n));
      if (n < head.length) queue.unshift(head.subarray(n));
      return n;
    },
  } as unknown as Channel;
  /* eslint-enable require-yield */
  return { file: new ChannelFile(channel, mode), recvCalls: () => calls };
}

/** `count` chunks of `size` bytes, each filled with its index (mod 256). */
function numbered(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, i & 0xff));
}

/** Bytes requested from Buffer.allocUnsafe (what Buffer.concat also allocates through) while `fn` runs. */
function allocatedDuring(fn: () => void): number {
  let total = 0;
  const real = Buffer.allocUnsafe;
  const spy = jest.spyOn(Buffer, 'allocUnsafe').mockImplementation((size: number) => {
    total += size;
    return real(size);
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return total;
}

describe('ChannelFile reading', () => {
  it('read(n) returns exactly n bytes across chunks, then the rest, then empty at EOF', () => {
    const { file } = fileOver(['ab', 'cdef', 'g', 'hij']);
    expect(file.read(3).toString()).toBe('abc');
    expect(file.read(5).toString()).toBe('defgh');
    expect(file.read(10).toString()).toBe('ij');
    const eof = file.read(4);
    expect(Buffer.isBuffer(eof)).toBe(true);
    expect(eof.length).toBe(0);
    expect(file.read().length).toBe(0);
  });

  it('read(n) asks the channel only until n bytes are there', () => {
    const { file, recvCalls } = fileOver(['abc', 'def', 'ghi']);
    expect(file.read(4).toString()).toBe('abcd');
    expect(recvCalls()).toBe(2);
    expect(file.read(2).toString()).toBe('ef');
    expect(recvCalls()).toBe(2);
  });

  it('read() and a negative size read to EOF, after what is buffered', () => {
    const big = Buffer.alloc(300_000, 7);
    const { file } = fileOver(['x\n', 'yz', big, 'end']);
    expect(file.readline()).toBe('x\n');
    const rest = file.read();
    expect(rest.length).toBe(2 + big.length + 3);
    expect(rest.subarray(0, 2).toString()).toBe('yz');
    expect(rest.subarray(2, 2 + big.length).equals(big)).toBe(true);
    expect(rest.subarray(-3).toString()).toBe('end');
    expect(fileOver(['a', 'b']).file.read(-1).toString()).toBe('ab');
  });

  it('a large read over many chunks returns every byte in order, joining them once', () => {
    const chunks = Array.from({ length: 500 }, (_, i) => Buffer.alloc(1000 + (i % 7), i & 0xff));
    const whole = Buffer.concat(chunks);
    const { file } = fileOver(chunks);
    // Joining as chunks arrive (the buffer so far plus each new chunk) would allocate and copy
    // ~chunks/2 times the result: quadratic in the size read.
    const allocated = allocatedDuring(() => {
      expect(file.read(whole.length - 10).equals(whole.subarray(0, whole.length - 10))).toBe(true);
    });
    expect(allocated).toBeLessThanOrEqual(whole.length);
    expect(file.read().equals(whole.subarray(whole.length - 10))).toBe(true);
  });

  it('read() of a large output to EOF gathers it in one buffer that grows in place, every byte in order', () => {
    const chunks = numbered(40, 300_000); // 12 MB, past the point where read() stops joining chunks
    const whole = Buffer.concat(chunks);
    const { file } = fileOver([Buffer.from('head\n'), ...chunks]);
    expect(file.readline()).toBe('head\n');
    const all = file.read();
    expect(all.equals(whole)).toBe(true);
    const memory = all.buffer as ArrayBuffer & { resizable?: boolean };
    expect([memory.resizable, memory.byteLength]).toEqual([true, whole.length]); // grown in place, trimmed to its size
    expect(file.read().length).toBe(0);
  });

  it('read() to EOF also gathers from a source that only gives chunks', () => {
    const chunks = numbered(30, 250_000);
    const spy = jest.spyOn(GrowingBuffer.prototype, 'room').mockReturnValue(null);
    try {
      expect(fileOver(chunks).file.read().equals(Buffer.concat(chunks))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('a timeout in the middle of a large read() to EOF loses nothing: the next read() has it all', () => {
    const chunks = numbered(40, 300_000);
    const whole = Buffer.concat(chunks);
    const { file } = fileOver(chunks, 'r', 30);
    expect(() => file.read()).toThrow(SocketTimeout);
    expect(file.read(5).equals(whole.subarray(0, 5))).toBe(true);
    expect(file.read().equals(whole.subarray(5))).toBe(true);
  });

  it('readline finds lines across chunk boundaries, keeps the newline, and gives the last line without one', () => {
    const { file } = fileOver(['fir', 'st\nsec', 'ond\n', '\n', 'thi', 'rd', ' has no newline']);
    expect(file.readline()).toBe('first\n');
    expect(file.readline()).toBe('second\n');
    expect(file.readline()).toBe('\n');
    expect(file.readline()).toBe('third has no newline');
    expect(file.readline()).toBe('');
  });

  it('readline(size) stops at size bytes; a negative size does not limit', () => {
    const { file } = fileOver(['abc', 'defgh\nij\n']);
    expect(file.readline(4)).toBe('abcd');
    expect(file.readline(100)).toBe('efgh\n');
    expect(file.readline(0)).toBe('');
    expect(file.readline(-1)).toBe('ij\n');
  });

  it('a line spanning many chunks comes back whole, joined once', () => {
    const parts = Array.from({ length: 300 }, () => 'x'.repeat(997));
    const { file } = fileOver([...parts, '\nnext\n']);
    const allocated = allocatedDuring(() => expect(file.readline()).toBe(`${parts.join('')}\n`));
    expect(allocated).toBeLessThanOrEqual(300 * 997 + 1);
    expect(file.readline()).toBe('next\n');
  });

  it('text mode decodes UTF-8 split across chunks; binary mode gives Buffers', () => {
    const text = Buffer.from('ünï\ncode\n');
    const { file } = fileOver([text.subarray(0, 1), text.subarray(1, 4), text.subarray(4)]);
    expect(file.readlines()).toEqual(['ünï\n', 'code\n']);
    const bin = fileOver(['a\nb', '\n'], 'rb').file;
    const lines = [...bin];
    expect(lines.every((l) => Buffer.isBuffer(l))).toBe(true);
    expect(lines.map((l) => l.toString())).toEqual(['a\n', 'b\n']);
  });

  it('readinto fills the start of a buffer and returns the count, 0 at EOF', () => {
    const { file } = fileOver(['abc', 'de']);
    const buf = Buffer.alloc(4, 0x2e);
    expect(file.readinto(buf)).toBe(4);
    expect(buf.toString()).toBe('abcd');
    expect(file.readinto(buf)).toBe(1);
    expect(buf.toString()).toBe('ebcd'); // only the first byte is written
    expect(file.readinto(new Uint8Array(8))).toBe(0);
  });

  it('readlines(sizehint) stops after the line that reaches the hint', () => {
    const { file } = fileOver(['aa\nbb\ncc\ndd\n']);
    expect(file.readlines(4)).toEqual(['aa\n', 'bb\n']);
    expect(file.readlines()).toEqual(['cc\n', 'dd\n']);
  });

  it('mixes read(n), readline and read() over one stream without losing or repeating bytes', () => {
    const { file } = fileOver(['12', '34\n56', '7\n8', '9']);
    expect(file.read(1).toString()).toBe('1');
    expect(file.readline()).toBe('234\n');
    expect(file.read(2).toString()).toBe('56');
    expect(file.readline()).toBe('7\n');
    expect(file.read().toString()).toBe('89');
  });
});

describe('ChannelFile.readUntil and readExactly (AsyncSSH\'s readuntil, readexactly)', () => {
  it('reads through the first separator, split across chunks anywhere, and leaves the rest', () => {
    const { file } = fileOver(['login', ': ', 'user\nPass', 'word: ', 'x$ ', 'tail']);
    expect(file.readUntil(': ')).toBe('login: ');
    expect(file.readUntil(Buffer.from('word: '))).toBe('user\nPassword: ');
    expect(file.readUntil('$ ')).toBe('x$ ');
    expect(file.read()).toEqual(Buffer.from('tail'));
  });

  it('a list of separators: the one that ends first wins; a RegExp matches the text (UTF-8)', () => {
    const { file } = fileOver(['router# sh', 'ow ver\r\nIOS 15\r\nrouter#', ' é> done']);
    expect(file.readUntil(['\r\n', '#'])).toBe('router#');
    expect(file.readUntil([/IOS \d+/, '#'])).toBe(' show ver\r\nIOS 15');
    expect(file.readUntil(/[#>] ?$/m)).toBe('\r\nrouter#');
    expect(file.readUntil(/é>/)).toBe(' é>');
    expect(file.read().toString()).toBe(' done');
  });

  it("binary mode gives Buffers; at EOF without a match, IncompleteReadError with what came", () => {
    const { file } = fileOver([Buffer.from([1, 2, 0xff]), Buffer.from([0, 9])], 'rb');
    expect(file.readUntil(Buffer.from([0xff, 0]))).toEqual(Buffer.from([1, 2, 0xff, 0]));
    const err = catchError(() => file.readUntil('never'));
    expect(err).toBeInstanceOf(IncompleteReadError);
    expect((err as IncompleteReadError).partial).toEqual(Buffer.from([9]));
    expect((err as IncompleteReadError).message).toMatch(/ended after 1 bytes, before a separator \("never"\)/);
    expect(file.read()).toEqual(Buffer.alloc(0));
  });

  it('a timeout keeps what came for the next call; past the limit, an error and nothing consumed', () => {
    const { file } = fileOver(['abc', 'def', 'ghi$ '], 'r', 3);
    expect(() => file.readUntil('$ ')).toThrow(SocketTimeout);
    expect(file.readUntil('$ ')).toBe('abcdefghi$ ');
    const big = fileOver(numbered(10, 1000)).file;
    expect(() => big.readUntil('x', { limit: 2500 })).toThrow(SSHException);
    expect(big.read().length).toBe(10_000);
    expect(() => big.readUntil('')).toThrow(TypeError);
    expect(() => big.readUntil([])).toThrow(TypeError);
  });

  it('a prompt after many small chunks: each byte is searched and copied once, not once per chunk', () => {
    const chunks = [...Array.from({ length: 2000 }, (_, i) => Buffer.alloc(100, 0x41 + (i % 26))), 'router> ', 'more'];
    for (const separator of ['router> ', /router> /]) {
      const { file } = fileOver(chunks);
      const concat = jest.spyOn(Buffer, 'concat');
      const toString = jest.spyOn(Buffer.prototype, 'toString');
      try {
        const got = file.readUntil(separator) as string;
        expect(got.length).toBe(200_000 + 8);
        expect(got.endsWith('router> ')).toBe(true);
        // Joining everything on each new chunk (as before) copied ~200 MB here.
        const copied = concat.mock.results.reduce((n, r) => n + (r.value as Buffer).length, 0);
        expect(copied).toBeLessThan(2 * got.length + 1000);
        // Decoded once in all, plus the search for the match's byte offset (log2 of the size).
        expect(toString.mock.calls.length).toBeLessThan(40);
      } finally {
        concat.mockRestore();
        toString.mockRestore();
      }
      expect(file.read().toString()).toBe('more');
    }
  });

  it('a character split across chunks still matches a RegExp', () => {
    const e = Buffer.from('é>');
    const { file } = fileOver([Buffer.from('x'), e.subarray(0, 1), e.subarray(1), Buffer.from(' y')]);
    expect(file.readUntil(/é>/)).toBe('xé>');
    expect(file.read().toString()).toBe(' y');
    // An invalid byte decodes to one U+FFFD (three bytes if re-encoded): the match ends where it should.
    const bad = fileOver([Buffer.from([0xff, 0x61]), Buffer.from('b> rest')], 'rb').file;
    expect(bad.readUntil(/ab> /)).toEqual(Buffer.from([0xff, 0x61, 0x62, 0x3e, 0x20]));
    expect(bad.read().toString()).toBe('rest');
  });

  it('readExactly: n bytes across chunks, or IncompleteReadError with the short rest at EOF', () => {
    const { file } = fileOver(['ab', 'cdef', 'g']);
    expect(file.readExactly(3).toString()).toBe('abc');
    expect(file.readExactly(0).length).toBe(0);
    const err = catchError(() => file.readExactly(10));
    expect(err).toBeInstanceOf(IncompleteReadError);
    expect((err as IncompleteReadError).partial.toString()).toBe('defg');
    expect(() => file.readExactly(-1)).toThrow(TypeError);
  });
});

describe('ChannelFile promise twins', () => {
  it('readAsync, readlineAsync, readlinesAsync and for await give what the blocking calls give', async () => {
    const { file } = fileOver(['12', '34\n56', '7\n8', '9\nlast']);
    expect((await file.readAsync(1)).toString()).toBe('1');
    expect(await file.readlineAsync()).toBe('234\n');
    expect((await file.readAsync(2)).toString()).toBe('56');
    const lines: Array<string | Buffer> = [];
    for await (const line of file) lines.push(line);
    expect(lines).toEqual(['7\n', '89\n', 'last']);
    expect((await file.readAsync()).length).toBe(0);
    expect(await fileOver(['a\nb\n', 'c\n']).file.readlinesAsync(3)).toEqual(['a\n', 'b\n']);
  });

  it('an error of the source rejects the twin, as it throws from the blocking call', async () => {
    const channel = {
      // eslint-disable-next-line require-yield
      *recvOp(): Generator<never, Buffer> {
        throw new Error('the channel broke');
      },
    } as unknown as Channel;
    const file = new ChannelFile(channel);
    await expect(file.readAsync()).rejects.toThrow('the channel broke');
    expect(() => file.read()).toThrow('the channel broke');
  });
});

describe('GrowingBuffer', () => {
  const pieces = numbered(50, 777);
  const whole = Buffer.concat(pieces);

  test.each([
    ['in place', undefined],
    ['past a small reservation', 10_000],
    ['without a reservation', null],
  ] as const)('gathers appended and written-in-place bytes in order (%s)', (_, reservation) => {
    const g = new GrowingBuffer(reservation);
    pieces.forEach((p, i) => {
      if (i % 2) return g.append(p);
      // Written in place where there is room, in parts no larger than asked for.
      let at = 0;
      while (at < p.length) {
        const room = g.room(p.length - at);
        if (!room) {
          g.append(p.subarray(at));
          break;
        }
        expect(room.length).toBeLessThanOrEqual(p.length - at);
        const n = Math.min(room.length, 300);
        room.set(p.subarray(at, at + n));
        g.commit(n);
        at += n;
      }
    });
    expect(g.length).toBe(whole.length);
    expect(g.finish().equals(whole)).toBe(true);
  });

  test('an empty one finishes as an empty Buffer', () => {
    expect(new GrowingBuffer().finish().length).toBe(0);
    expect(new GrowingBuffer(null).finish().length).toBe(0);
  });
});

describe('terminal modes (RFC 4254 section 8)', () => {
  it('encode by name or opcode as opcode + uint32, end with TTY_OP_END; bad ones are TypeErrors', () => {
    expect(encodeTerminalModes(null)).toEqual(Buffer.from([0]));
    expect(encodeTerminalModes({ echo: false, 72: 1, TTY_OP_ISPEED: 38400 })).toEqual(
      Buffer.from([72, 0, 0, 0, 1, 53, 0, 0, 0, 0, 128, 0, 0, 0x96, 0, 0]),
    );
    expect(() => encodeTerminalModes({ ECHOO: 1 })).toThrow(/unknown terminal mode "ECHOO"/);
    expect(() => encodeTerminalModes({ 160: 1 })).toThrow(TypeError);
    expect(() => encodeTerminalModes({ ECHO: -1 })).toThrow(/needs a uint32 value/);
  });
});
