/**
 * Seeded fuzzing of what peers send: requests to the SFTP server engine and connection-layer
 * messages to the embedded server, valid ones and mutated ones mixed. Each run is the same
 * (xorshift from a fixed seed; FUZZ_SEED and FUZZ_ROUNDS widen it by hand). What must hold
 * whatever arrives: no exception escapes, no promise is left unsettled or rejected unhandled,
 * no descriptor stays open, nothing outside the SFTP root changes, and the server goes on
 * serving a well-behaved client. The SFTP half found an OPEN in flight at the session's end
 * keeping its descriptor; the connection half, log lines forged by a channel type.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SSHServer } from '../lib';
import { SFTPAttributes } from '../lib/sftp/attributes';
import { decodeReply, encodeRequest } from '../lib/sftp/codec';
import { SftpServerCore } from '../lib/sftp/server-core';
import { MSG } from '../lib/transport/constants';
import { Message } from '../lib/wire/message';
import { goodClientWorks, RawClient } from './support/hostile/raw-client';
import { channelTraffic, seeded, type Seeded } from './support/fuzz';
import { cleanup, openFdsUnder, settledFdsUnder, tempDir } from './support/sftp/harness';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 1);


/** Flips bytes, cuts, pads or overwrites a 32-bit field after the first `keep` bytes. */
function mutate(r: Seeded, packet: Buffer, keep: number): Buffer {
  const b = Buffer.from(packet);
  const room = Math.max(1, b.length - keep);
  switch (r.int(4)) {
    case 0:
      for (let i = 1 + r.int(4); i > 0; i--) b[keep + r.int(room)] = r.int(256);
      return b;
    case 1:
      return b.subarray(0, keep + r.int(room));
    case 2:
      return Buffer.concat([b, Buffer.alloc(r.int(64), r.int(256))]);
    default:
      if (b.length >= keep + 4) b.writeUInt32BE(r.u32(), keep + r.int(b.length - keep - 3));
      return b;
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterAll(cleanup);

describe('SftpServerCore under seeded fuzzing', () => {
  const NAMES = ['a', 'd', 'd/f', 'lnk', 'out', 'out/new', 'dangling', '..', '../outside/secret', '/', '/../../etc/passwd', '', '.', 'x'.repeat(300), 'd/../../outside', 'new'];
  const EXTENSIONS = ['posix-rename@openssh.com', 'statvfs@openssh.com', 'fstatvfs@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com', 'lsetstat@openssh.com', 'limits@openssh.com', 'expand-path@openssh.com', 'copy-data', 'check-file-handle', 'check-file-name', 'nope@example.com'];

  function attrs(r: Seeded): SFTPAttributes {
    const a = new SFTPAttributes();
    if (r.next() < 0.5) a.st_mode = r.int(0o177777);
    if (r.next() < 0.3) a.st_size = r.int(1e6);
    if (r.next() < 0.2) [a.st_atime, a.st_mtime] = [r.int(2e9), r.int(2e9)];
    return a;
  }

  /** One request, well formed, on a handle the server gave (mostly) or a made-up one. */
  function request(r: Seeded, id: number, handles: Buffer[]): Buffer {
    const h = (): Buffer => (handles.length && r.next() < 0.8 ? r.pick(handles) : Buffer.from(r.pick(['', 'x', '\0\0\0\0', 'zzzzzzzz'])));
    const p = (): string => r.pick(NAMES);
    const offset = (): bigint => (r.next() < 0.1 ? 2n ** 64n - 1n : BigInt(r.int(100000)));
    switch (r.int(20)) {
      case 0:
        return encodeRequest.open(id, p(), r.int(64), attrs(r));
      case 1:
        return encodeRequest.close(id, h());
      case 2:
        return encodeRequest.read(id, h(), offset(), r.pick([0, 1, 32768, 300000, 0xffffffff]));
      case 3:
        return Buffer.concat(encodeRequest.write(id, h(), offset(), Buffer.alloc(r.int(5000), 0x41)));
      case 4:
        return encodeRequest.lstat(id, p());
      case 5:
        return encodeRequest.fstat(id, h());
      case 6:
        return encodeRequest.setstat(id, p(), attrs(r));
      case 7:
        return encodeRequest.fsetstat(id, h(), attrs(r));
      case 8:
        return encodeRequest.opendir(id, p());
      case 9:
        return encodeRequest.readdir(id, h());
      case 10:
        return encodeRequest.remove(id, p());
      case 11:
        return encodeRequest.mkdir(id, p(), attrs(r));
      case 12:
        return encodeRequest.rmdir(id, p());
      case 13:
        return encodeRequest.rename(id, p(), p());
      case 14:
        return encodeRequest.symlink(id, p(), p());
      case 15:
        return encodeRequest.readlink(id, p());
      default: {
        // Each extension's arguments in their shape (a mutation may still break them).
        const name = r.pick(EXTENSIONS);
        return encodeRequest.extended(id, name, (m) => {
          const alg = (): string => r.pick(['sha256', 'md5,sha1', 'nope']);
          if (name === 'posix-rename@openssh.com' || name === 'hardlink@openssh.com') m.addString(p()).addString(p());
          else if (name === 'statvfs@openssh.com' || name === 'expand-path@openssh.com') m.addString(p());
          else if (name === 'fstatvfs@openssh.com' || name === 'fsync@openssh.com') m.addString(h());
          else if (name === 'lsetstat@openssh.com') attrs(r).encode(m.addString(p()));
          else if (name === 'copy-data') m.addString(h()).addInt64(offset()).addInt64(BigInt(r.int(10000))).addString(h()).addInt64(offset());
          else if (name === 'check-file-handle') m.addString(h()).addString(alg()).addInt64(0n).addInt64(BigInt(r.int(10000))).addInt(r.pick([0, 255, 4096]));
          else if (name === 'check-file-name') m.addString(p()).addString(alg()).addInt64(0n).addInt64(0n).addInt(0);
        });
      }
    }
  }

  it('answers or ends the session on whatever arrives, leaks no descriptor and stays in its root', async () => {
    const base = tempDir('fuzz-');
    const root = path.join(base, 'root');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'S');
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): number => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const fds = openFdsUnder(base);
    const r = seeded(SEED);
    let ended = 0;
    let replies = 0;
    try {
      for (let session = 0; session < 60 * ROUNDS; session++) {
        fs.rmSync(root, { recursive: true, force: true });
        fs.mkdirSync(path.join(root, 'd'), { recursive: true });
        fs.writeFileSync(path.join(root, 'a'), 'hello');
        fs.writeFileSync(path.join(root, 'd', 'f'), 'x'.repeat(5000));
        fs.symlinkSync('a', path.join(root, 'lnk'));
        fs.symlinkSync(outside, path.join(root, 'out'));
        fs.symlinkSync(path.join(outside, 'nope'), path.join(root, 'dangling'));
        const handles: Buffer[] = [];
        let end: Error | null = null;
        const server = new SftpServerCore(
          root,
          (bytes) => {
            replies++;
            const reply = decodeReply(bytes.subarray(4)); // a reply we cannot decode fails the test
            if (reply.kind === 'handle') handles.push(reply.handle);
          },
          { onEnd: (e) => (end = e) },
        );
        server.receive(encodeRequest.init(3));
        for (let id = 1; id <= 100 && !end; id++) {
          let packet = request(r, id, handles);
          if (r.next() < 0.01) {
            // The payload mutated, its length word kept true (a wrong length word only desynchronizes the stream).
            packet = mutate(r, packet, 4);
            packet.writeUInt32BE(packet.length - 4, 0);
          }
          if (r.next() < 0.2 && packet.length > 1) {
            const cut = 1 + r.int(packet.length - 1);
            server.receive(packet.subarray(0, cut));
            server.receive(packet.subarray(cut));
          } else {
            server.receive(packet);
          }
          if (r.next() < 0.3) await turn();
        }
        if (end) ended++;
        // A session still open answers everything; one that ended leaves its requests running,
        // to finish or fail after the end, and what they open must be closed.
        for (let i = 0; i < 500 && !end && server.pending > 0; i++) await new Promise((done) => setTimeout(done, 2));
        await server.end();
        for (let i = 0; i < 500 && server.pending > 0; i++) await new Promise((done) => setTimeout(done, 2));
        expect(server.pending).toBe(0);
        expect(server.openHandles).toBe(0);
        expect(fs.readdirSync(outside)).toEqual(['secret']);
        expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('S');
        expect(fs.readdirSync(base).sort()).toEqual(['outside', 'root']);
      }
      expect(await settledFdsUnder(base, fds)).toBe(fds);
      expect(unhandled).toEqual([]);
      // The mix exercised both paths: sessions served to the end and sessions ended by bad input.
      expect(ended).toBeGreaterThan(5);
      expect(ended).toBeLessThan(60 * ROUNDS);
      expect(replies).toBeGreaterThan(2000 * ROUNDS);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 120_000);
});

describe('SSHServer under seeded fuzzing of the connection layer', () => {
  const PASSWORD = 'pw';
  let server: SSHServer;
  let root: string;
  beforeAll(() => {
    root = tempDir('fuzz-conn-');
    server = SSHServer.start({ users: { alice: PASSWORD }, loginGraceTime: 5, sftp: { root }, shell: '/bin/sh' });
  });
  afterAll(() => server?.close());

  /** A connection-layer message (channel opens and requests, data, global requests, stray transport messages). */
  function message(r: Seeded): Buffer {
    const m = new Message();
    const channel = r.pick([0, 1, 2, 99, 0xffffffff]);
    switch (r.int(9)) {
      case 0: {
        const kind = r.pick(['session', 'direct-tcpip', 'x11', 'forwarded-tcpip', 'direct-streamlocal@openssh.com', 'nope']);
        m.addByte(MSG.CHANNEL_OPEN).addString(kind).addInt(r.int(5)).addInt(r.u32()).addInt(r.u32());
        if (kind === 'direct-tcpip') m.addString(r.pick(['127.0.0.1', '', 'x'.repeat(300)])).addInt(r.pick([0, 1, 65536])).addString('1.2.3.4').addInt(5);
        if (kind === 'direct-streamlocal@openssh.com') m.addString(r.pick(['/nonexistent/sock', '', root])).addString('').addInt(0);
        break;
      }
      case 1: {
        const req = r.pick(['pty-req', 'env', 'exec', 'shell', 'subsystem', 'window-change', 'signal', 'x11-req', 'auth-agent-req@openssh.com', 'exit-status', 'keepalive@openssh.com', 'eow@openssh.com', 'break', 'nope']);
        m.addByte(MSG.CHANNEL_REQUEST).addInt(channel).addString(req).addBoolean(r.next() < 0.5);
        if (req === 'pty-req') m.addString(r.pick(['xterm', '', 'x'.repeat(1000)])).addInt(r.u32()).addInt(r.u32()).addInt(r.u32()).addInt(r.u32()).addString(r.pick([Buffer.alloc(0), Buffer.from([1, 0, 0, 0, 1, 0]), Buffer.from([0])]));
        if (req === 'env') m.addString(r.pick(['LANG', 'LD_PRELOAD', ''])).addString('x');
        if (req === 'exec') m.addString(r.pick(['true', '', 'cat', 'exit 3']));
        if (req === 'subsystem') m.addString(r.pick(['sftp', 'nope', '']));
        if (req === 'window-change') m.addInt(r.u32()).addInt(r.u32()).addInt(r.u32()).addInt(r.u32());
        if (req === 'signal') m.addString(r.pick(['INT', 'KILL', 'NOPE', '']));
        if (req === 'x11-req') m.addBoolean(false).addString('MIT-MAGIC-COOKIE-1').addString('00').addInt(r.u32());
        if (req === 'break') m.addInt(r.u32());
        break;
      }
      case 2:
      case 3:
      case 4:
        channelTraffic(r, m, channel, 40000);
        break;
      case 5:
        m.addByte(r.pick([MSG.CHANNEL_EOF, MSG.CHANNEL_CLOSE, MSG.CHANNEL_SUCCESS, MSG.CHANNEL_FAILURE, MSG.CHANNEL_OPEN_CONFIRMATION, MSG.CHANNEL_OPEN_FAILURE])).addInt(channel);
        if (r.next() < 0.5) m.addInt(r.u32()).addInt(r.u32()).addInt(r.u32());
        break;
      case 6: {
        const req = r.pick(['tcpip-forward', 'cancel-tcpip-forward', 'streamlocal-forward@openssh.com', 'no-more-sessions@openssh.com', 'hostkeys-prove-00@openssh.com', 'nope']);
        m.addByte(MSG.GLOBAL_REQUEST).addString(req).addBoolean(r.next() < 0.7);
        if (req.includes('tcpip')) m.addString(r.pick(['127.0.0.1', '', 'x'])).addInt(r.pick([0, 1, 70000]));
        if (req.startsWith('streamlocal')) m.addString(path.join(root, `sock${r.int(3)}`));
        if (req.startsWith('hostkeys')) m.addString(Buffer.from('garbage'));
        break;
      }
      case 7:
        m.addByte(r.pick([1, 2, 3, 4, 5, 7, 20, 21, 30, 50, 60, 81, 82, 0, 255])).addString(Buffer.alloc(r.int(50), 1));
        break;
      default:
        m.addByte(r.int(256));
        for (let i = r.int(6); i > 0; i--) m.addInt(r.u32());
    }
    const payload = m.asBytes();
    return r.next() < 0.3 ? mutate(r, payload, 1) : payload;
  }

  it('drops or answers every message, never fails internally, and keeps serving', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): number => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const r = seeded(SEED);
    const from = server.logSince(0).next;
    try {
      for (let round = 0; round < 12 * ROUNDS; round++) {
        const raws = await Promise.all(
          Array.from({ length: 4 }, async () => {
            const c = await RawClient.connect(server.port);
            await c.login('alice', PASSWORD);
            return c;
          }),
        );
        try {
          for (const c of raws) {
            if (r.next() < 0.7) c.openSession(0);
            for (let i = 0; i < 25; i++) c.send(message(r));
          }
          await new Promise((done) => setTimeout(done, 50));
        } finally {
          for (const c of raws) c.close();
        }
        if (round % 4 === 3) goodClientWorks(server, 'alice', PASSWORD);
      }
      goodClientWorks(server, 'alice', PASSWORD);
      expect(unhandled).toEqual([]);
      const log = server.logSince(from).lines;
      expect(log.filter((l) => /TypeError|RangeError|ReferenceError|Cannot read|is not a function|internal error/.test(l))).toEqual([]);
      expect(log.length).toBeGreaterThan(48);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }, 120_000);
});
