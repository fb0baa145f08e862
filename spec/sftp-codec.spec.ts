import { SFTPAttributes } from '../lib/sftp/attributes';
import { PacketFramer, decodeReply, decodeRequest, encodeReply, encodeRequest, SftpRequest } from '../lib/sftp/codec';
import { ATTR, FX, FXF, FXP, statusFromErrnoCode } from '../lib/sftp/constants';
import { SFTPError, statusError } from '../lib/sftp/errors';
import { readUint64, writeUint64 } from '../lib/sftp/uint64';
import { Message } from '../lib/wire/message';
import { EOFError, IOError, SSHException } from '../lib/errors';

/** A request's packet without its length word (what the framer yields). */
const body = (b: Buffer | Buffer[]): Buffer => {
  const whole = Array.isArray(b) ? Buffer.concat(b) : b;
  expect(whole.readUInt32BE(0)).toBe(whole.length - 4);
  return whole.subarray(4);
};

function fullAttrs(): SFTPAttributes {
  const a = new SFTPAttributes();
  a.st_size = 5 * 2 ** 30 + 7;
  a.st_uid = 1000;
  a.st_gid = 4294967294;
  a.st_mode = 0o100644;
  a.st_atime = 1700000000;
  a.st_mtime = 1700000123;
  a.attr.set('user.x', Buffer.from('value'));
  return a;
}

describe('SFTPAttributes', () => {
  it('round-trips every field, sizes beyond 4 GiB exactly as numbers', () => {
    const a = fullAttrs();
    const b = SFTPAttributes.decode(new Message(a.asBytes()));
    expect(b.st_size).toBe(5 * 2 ** 30 + 7);
    expect(typeof b.st_size).toBe('number');
    expect([b.st_uid, b.st_gid, b.st_mode, b.st_atime, b.st_mtime]).toEqual([1000, 4294967294, 0o100644, 1700000000, 1700000123]);
    expect(b.attr.get('user.x')!.toString()).toBe('value');
    expect(b.asBytes().equals(a.asBytes())).toBe(true);
  });

  it('sends only the fields that are set', () => {
    const a = new SFTPAttributes();
    expect(a.asBytes().toString('hex')).toBe('00000000');
    a.st_mode = 0o755;
    expect(a.flags).toBe(ATTR.PERMISSIONS);
    expect(a.asBytes().toString('hex')).toBe('00000004000001ed');
    a.st_atime = 1; // without st_mtime the pair is not sent
    expect(a.flags).toBe(ATTR.PERMISSIONS);
    const b = SFTPAttributes.decode(new Message(a.asBytes()));
    expect(b.st_size).toBeUndefined();
    expect(b.st_uid).toBeUndefined();
    expect(b.st_atime).toBeUndefined();
  });

  it('decodes a size beyond 2^53 as an exact bigint and encodes it back', () => {
    const m = new Message().addInt(ATTR.SIZE).addInt64(2n ** 60n + 3n);
    const a = SFTPAttributes.decode(new Message(m.asBytes()));
    expect(a.st_size).toBe(2n ** 60n + 3n);
    expect(a.asBytes().equals(m.asBytes())).toBe(true);
  });

  it('refuses a truncated attribute block', () => {
    const bytes = fullAttrs().asBytes();
    expect(() => SFTPAttributes.decode(new Message(bytes.subarray(0, bytes.length - 3)))).toThrow(SSHException);
  });

  it('fromStat takes size, ids, mode and whole-second times', () => {
    const st = require('node:fs').statSync(__filename);
    const a = SFTPAttributes.fromStat(st, 'me');
    expect(a.st_size).toBe(st.size);
    expect(a.st_mode).toBe(st.mode);
    expect(a.st_mtime).toBe(Math.floor(st.mtimeMs / 1000));
    expect(a.filename).toBe('me');
    expect(a.isFile()).toBe(true);
  });

  it('prints an ls -l line as Paramiko does', () => {
    const a = new SFTPAttributes();
    a.st_mode = 0o104755;
    a.st_uid = 0;
    a.st_gid = 0;
    a.st_size = 1234;
    const mtime = new Date(2020, 0, 5, 13, 7).getTime() / 1000;
    a.st_mtime = mtime;
    a.filename = 'prog';
    expect(a.toString(mtime + 60)).toBe('-rwsr-xr-x   1 0        0            1234 05 Jan 13:07 prog');
    expect(a.toString(mtime + 365 * 86400)).toBe('-rwsr-xr-x   1 0        0            1234 05 Jan 2020  prog');
    a.st_mode = 0o41777;
    expect(a.toString(mtime).slice(0, 10)).toBe('drwxrwxrwt');
    a.st_mode = 0o120777;
    expect(a.toString(mtime).slice(0, 10)).toBe('lrwxrwxrwx');
    expect(new SFTPAttributes().toString()).toBe('?---------   1 0        0               0 (unknown date) ?');
  });
});

describe('uint64', () => {
  it('reads numbers up to 2^53 - 1 and bigints beyond', () => {
    const b = Buffer.alloc(8);
    writeUint64(b, Number.MAX_SAFE_INTEGER, 0);
    expect(readUint64(b, 0)).toBe(Number.MAX_SAFE_INTEGER);
    writeUint64(b, 2n ** 53n, 0);
    expect(readUint64(b, 0)).toBe(2n ** 53n);
    writeUint64(b, 5 * 2 ** 30, 0);
    expect(b.toString('hex')).toBe('0000000140000000');
    expect(() => writeUint64(b, 2 ** 53, 0)).toThrow(RangeError);
    expect(() => writeUint64(b, -1, 0)).toThrow(RangeError);
  });
});

describe('PacketFramer', () => {
  const packets = [
    encodeRequest.init(3),
    encodeRequest.open(1, '/a', FXF.READ),
    ...encodeRequest.write(2, Buffer.from([0, 0, 0, 1]), 0, Buffer.alloc(70000, 7)),
    encodeRequest.stat(3, 'x'),
  ];
  const stream = Buffer.concat(packets);
  const expected = [body(packets[0]), body(packets[1]), body(Buffer.concat([packets[2], packets[3]])), body(packets[4])];

  it('yields the same packets whatever the chunk boundaries', () => {
    for (const size of [1, 2, 3, 4, 5, 7, 13, 100, 4096, 65536, stream.length]) {
      const f = new PacketFramer();
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) f.push(stream.subarray(i, i + size), (p) => got.push(Buffer.from(p)));
      expect(got).toEqual(expected);
      expect(f.buffered).toBe(0);
    }
    // Random boundaries.
    for (let round = 0; round < 50; round++) {
      const f = new PacketFramer();
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; ) {
        const n = 1 + Math.floor(Math.random() * 9000);
        f.push(stream.subarray(i, i + n), (p) => got.push(Buffer.from(p)));
        i += n;
      }
      expect(got).toEqual(expected);
    }
  });

  it('in copying mode, yields the same packets from chunks that are overwritten after each push', () => {
    const scratch = Buffer.alloc(9000);
    for (let round = 0; round < 60; round++) {
      const f = new PacketFramer(undefined, true);
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; ) {
        // Sizes 1-3 included: the length word itself split across chunks.
        const n = round < 10 ? round + 1 : 1 + Math.floor(Math.random() * 9000);
        const chunk = scratch.subarray(0, Math.min(n, stream.length - i));
        stream.copy(chunk, 0, i);
        f.push(chunk, (p) => got.push(p));
        chunk.fill(0xee);
        i += n;
      }
      expect(got).toEqual(expected);
      expect(f.buffered).toBe(0);
    }
    const f = new PacketFramer(undefined, true);
    const got: Buffer[] = [];
    f.push(stream, (p) => got.push(p));
    expect(got.every((p) => p.buffer !== stream.buffer)).toBe(true);
  });

  it('hands out views, not copies, for packets inside one chunk', () => {
    const f = new PacketFramer();
    const got: Buffer[] = [];
    f.push(stream, (p) => got.push(p));
    expect(got[2].buffer).toBe(stream.buffer);
  });

  it('refuses a length above the limit, and keeps refusing', () => {
    const f = new PacketFramer(1000);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1001, 0);
    expect(() => f.push(head, () => undefined)).toThrow(/1001 bytes exceeds the limit of 1000/);
    expect(() => f.push(encodeRequest.stat(1, 'x'), () => undefined)).toThrow(SFTPError);
    const dflt = new PacketFramer();
    const big = Buffer.from([0x00, 0x04, 0x10, 0x00]); // 266240 = 260 KiB
    expect(() => dflt.push(big.subarray(0, 2), () => undefined)).not.toThrow();
    expect(() => dflt.push(big.subarray(2), () => undefined)).toThrow(/exceeds the limit of 263168/);
  });
});

describe('requests', () => {
  const h = Buffer.from('hndl');
  const attrs = fullAttrs();
  const cases: Array<[string, Buffer | Buffer[], Partial<SftpRequest> & Record<string, unknown>]> = [
    ['open', encodeRequest.open(1, '/f', FXF.WRITE | FXF.CREAT, attrs), { kind: 'open', id: 1, path: '/f', pflags: FXF.WRITE | FXF.CREAT }],
    ['close', encodeRequest.close(2, h), { kind: 'close', id: 2, handle: h }],
    ['read', encodeRequest.read(3, h, 5 * 2 ** 30, 32768), { kind: 'read', id: 3, handle: h, offset: 5 * 2 ** 30, length: 32768 }],
    ['lstat', encodeRequest.lstat(4, 'l'), { kind: 'lstat', id: 4, path: 'l' }],
    ['fstat', encodeRequest.fstat(5, h), { kind: 'fstat', id: 5, handle: h }],
    ['setstat', encodeRequest.setstat(6, 'p', attrs), { kind: 'setstat', id: 6, path: 'p' }],
    ['fsetstat', encodeRequest.fsetstat(7, h, attrs), { kind: 'fsetstat', id: 7, handle: h }],
    ['opendir', encodeRequest.opendir(8, 'd'), { kind: 'opendir', id: 8, path: 'd' }],
    ['readdir', encodeRequest.readdir(9, h), { kind: 'readdir', id: 9, handle: h }],
    ['remove', encodeRequest.remove(10, 'r'), { kind: 'remove', id: 10, path: 'r' }],
    ['mkdir', encodeRequest.mkdir(11, 'm', attrs), { kind: 'mkdir', id: 11, path: 'm' }],
    ['rmdir', encodeRequest.rmdir(12, 'm'), { kind: 'rmdir', id: 12, path: 'm' }],
    ['realpath', encodeRequest.realpath(13, '.'), { kind: 'realpath', id: 13, path: '.' }],
    ['stat', encodeRequest.stat(14, 's'), { kind: 'stat', id: 14, path: 's' }],
    ['rename', encodeRequest.rename(15, 'a', 'b'), { kind: 'rename', id: 15, oldPath: 'a', newPath: 'b' }],
    ['readlink', encodeRequest.readlink(16, 'l'), { kind: 'readlink', id: 16, path: 'l' }],
    ['symlink', encodeRequest.symlink(17, 'target', 'link'), { kind: 'symlink', id: 17, targetPath: 'target', linkPath: 'link' }],
    ['write', encodeRequest.write(18, h, 7, Buffer.from('data')), { kind: 'write', id: 18, handle: h, offset: 7, data: Buffer.from('data') }],
  ];
  it.each(cases)('%s encodes and decodes back', (_name, bytes, want) => {
    const req = decodeRequest(body(bytes));
    expect(req).toMatchObject(want);
    if ('attrs' in req) expect(req.attrs.asBytes().equals(attrs.asBytes())).toBe(true);
  });

  it('puts the symlink target first, in OpenSSH order (draft-02 has the link first)', () => {
    const b = body(encodeRequest.symlink(1, 'T', 'L'));
    expect(b.toString('latin1')).toBe('\x14\x00\x00\x00\x01\x00\x00\x00\x01T\x00\x00\x00\x01L');
  });

  it('builds a large WRITE as header + the caller buffer, without copying the data', () => {
    const data = Buffer.alloc(32768, 1);
    const parts = encodeRequest.write(1, h, 0, data);
    expect(parts).toHaveLength(2);
    expect(parts[1]).toBe(data);
    expect(parts[0].readUInt32BE(0)).toBe(parts[0].length - 4 + data.length);
    expect(encodeRequest.write(1, h, 0, Buffer.alloc(10))).toHaveLength(1);
  });

  it('decodes INIT with extensions, EXTENDED with its payload, and unknown types', () => {
    const init = decodeRequest(body(encodeRequest.init(3, [['x@y', '1']])));
    expect(init).toMatchObject({ kind: 'init', version: 3 });
    const ext = decodeRequest(body(encodeRequest.extended(9, 'statvfs@openssh.com', (m) => m.addString('/'))));
    expect(ext).toMatchObject({ kind: 'extended', id: 9, name: 'statvfs@openssh.com' });
    expect((ext as { payload: Message }).payload.getText()).toBe('/');
    const unknown = Buffer.from([99, 0, 0, 0, 42]);
    expect(decodeRequest(unknown)).toEqual({ kind: 'unknown', id: 42, type: 99 });
  });

  it('throws on a truncated request', () => {
    const b = body(encodeRequest.open(1, '/file', FXF.READ));
    expect(() => decodeRequest(b.subarray(0, b.length - 2))).toThrow(SSHException);
  });
});

describe('replies', () => {
  it('round-trip status, handle, data, name, attrs and extended', () => {
    const st = decodeReply(body(encodeReply.status(1, FX.NO_SUCH_FILE, 'gone')));
    expect(st).toEqual({ kind: 'status', id: 1, code: FX.NO_SUCH_FILE, message: 'gone', lang: '' });
    expect(decodeReply(body(encodeReply.handle(2, Buffer.from('h'))))).toEqual({ kind: 'handle', id: 2, handle: Buffer.from('h') });
    const a = fullAttrs();
    a.filename = 'f';
    a.longname = 'long f';
    const name = decodeReply(body(encodeReply.name(3, [a, a])));
    expect(name.kind).toBe('name');
    if (name.kind === 'name') {
      expect(name.names.map((n) => [n.filename, n.longname, n.st_size])).toEqual([
        ['f', 'long f', a.st_size],
        ['f', 'long f', a.st_size],
      ]);
    }
    const at = decodeReply(body(encodeReply.attrs(4, a)));
    expect(at.kind === 'attrs' && at.attrs.st_mode).toBe(0o100644);
    const ext = decodeReply(body(encodeReply.extendedReply(5, (m) => m.addInt64(7))));
    expect(ext.kind === 'extended' && ext.payload.getInt64()).toBe(7n);
    const ver = decodeReply(body(encodeReply.version(3, [['limits@openssh.com', '1']])));
    expect(ver).toEqual({ kind: 'version', version: 3, extensions: new Map([['limits@openssh.com', '1']]) });
  });

  it('gives DATA as a view of the packet', () => {
    const pkt = body(encodeReply.data(6, Buffer.from('payload')));
    const r = decodeReply(pkt);
    expect(r.kind === 'data' && r.data.toString()).toBe('payload');
    expect(r.kind === 'data' && r.data.buffer).toBe(pkt.buffer);
  });

  it('accepts a STATUS without message (draft-00 servers)', () => {
    const pkt = Buffer.from([FXP.STATUS, 0, 0, 0, 1, 0, 0, 0, FX.FAILURE]);
    expect(decodeReply(pkt)).toMatchObject({ kind: 'status', code: FX.FAILURE, message: 'Failure' });
  });

  it('refuses a NAME whose count the packet cannot hold', () => {
    const pkt = Buffer.from([FXP.NAME, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    expect(() => decodeReply(pkt)).toThrow(SFTPError);
  });
});

describe('status mapping', () => {
  it("writes the control characters of a server's message out: the error may be printed to a terminal", () => {
    const e = statusError(FX.FAILURE, 'no\x1b[2J\nway C:\\x', { syscall: 'mkdir', path: '/d' }) as IOError & { serverMessage: string };
    expect(e.message).toBe("no\\x1b[2J\\nway C:\\x, mkdir '/d'");
    expect(e.serverMessage).toBe('no\x1b[2J\nway C:\\x'); // kept as sent
  });

  it('maps statuses to Node-style errors with code, errno and path', () => {
    const e = statusError(FX.NO_SUCH_FILE, 'No such file', { syscall: 'open', path: '/x' }) as IOError & Record<string, unknown>;
    expect(e).toBeInstanceOf(IOError);
    expect(e.message).toBe("ENOENT: no such file, open '/x'");
    expect([e.code, e.errno, e.path, e.syscall, e.status]).toEqual(['ENOENT', 2, '/x', 'open', FX.NO_SUCH_FILE]);
    expect((statusError(FX.PERMISSION_DENIED, 'Permission denied', { syscall: 'stat', path: 'p' }) as IOError).code).toBe('EACCES');
    expect((statusError(FX.OP_UNSUPPORTED, 'nope', { syscall: 'x' }) as IOError).code).toBe('ENOSYS');
    // SSH_FX_FAILURE carries an errno only where the server's text is exactly a strerror text
    // (OpenSSH says "Failure" for EEXIST, ENOTEMPTY and EISDIR alike; other servers pass the
    // OS's text on).
    const f = statusError(FX.FAILURE, 'File exists', { syscall: 'rename', path: 'a', dest: 'b' }) as IOError;
    expect([f.code, f.errno, f.message]).toEqual(['EEXIST', 17, "EEXIST: file exists, rename 'a' -> 'b'"]);
    expect((statusError(FX.FAILURE, 'directory not empty.', { syscall: 'rmdir', path: 'd' }) as IOError).code).toBe('ENOTEMPTY');
    expect((statusError(FX.FAILURE, 'Is a directory', { syscall: 'remove', path: 'd' }) as IOError).code).toBe('EISDIR');
    for (const text of ['Failure', '', 'File exists: /x', 'rename failed', 'Permission denied']) {
      const g = statusError(FX.FAILURE, text, { syscall: 'rename', path: 'a' }) as IOError;
      expect([g.code, g.errno]).toEqual([undefined, undefined]);
    }
    // The same for the statuses that stand for several errnos; a text of another status's errno
    // does not override the status.
    expect((statusError(FX.NO_SUCH_FILE, 'Not a directory', { syscall: 'opendir', path: 'f' }) as IOError).code).toBe('ENOTDIR');
    expect((statusError(FX.PERMISSION_DENIED, 'Read-only file system', { syscall: 'open', path: 'f' }) as IOError).code).toBe('EROFS');
    expect((statusError(FX.NO_SUCH_FILE, 'File exists', { syscall: 'open', path: 'f' }) as IOError).code).toBe('ENOENT');
    expect(statusError(FX.EOF, 'End of file', { syscall: 'read' })).toBeInstanceOf(EOFError);
  });

  it('maps errno codes to statuses as OpenSSH does', () => {
    expect(statusFromErrnoCode('ENOENT')).toBe(FX.NO_SUCH_FILE);
    expect(statusFromErrnoCode('ENOTDIR')).toBe(FX.NO_SUCH_FILE);
    expect(statusFromErrnoCode('EACCES')).toBe(FX.PERMISSION_DENIED);
    expect(statusFromErrnoCode('EEXIST')).toBe(FX.FAILURE);
    expect(statusFromErrnoCode('ENOSYS')).toBe(FX.OP_UNSUPPORTED);
    expect(statusFromErrnoCode('EINVAL')).toBe(FX.BAD_MESSAGE);
  });
});
