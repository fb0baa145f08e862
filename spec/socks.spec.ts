import { SocksHandshake } from '../lib/wire/socks';
import type { SocksStep } from '../lib/wire/socks';

// The SOCKS server handshake of Transport.forwardSocks; curl through it against sshd in
// spec/client-openssh.spec.ts.
const bytes = (...parts: Array<number[] | string>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** Feeds `input` one byte at a time (the worst split a socket can give); returns every step. */
function byteByByte(input: Buffer): SocksStep[] {
  const hs = new SocksHandshake();
  const steps: SocksStep[] = [];
  for (const b of input) {
    const s = hs.feed(Buffer.from([b]));
    steps.push(s);
    if (s.kind !== 'more') break;
  }
  return steps;
}

describe('SOCKS server handshake', () => {
  it('SOCKS5 with a host name: no-auth chosen, the destination, and the bytes the client sent after it', () => {
    const hs = new SocksHandshake();
    const greeting = hs.feed(bytes([5, 2, 2, 0]));
    expect(greeting).toEqual({ kind: 'more', send: Buffer.from([5, 0]) });
    const step = hs.feed(bytes([5, 1, 0, 3, 11], 'example.org', [0x01, 0xbb], 'GET /'));
    expect(step).toEqual({ kind: 'request', request: { version: 5, host: 'example.org', port: 443 }, rest: Buffer.from('GET /') });
    expect(hs.reply(true)).toEqual(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    expect(hs.reply(false)[1]).toBe(5); // connection refused
  });

  it('SOCKS5 greeting and request in one write, IPv4 and IPv6 addresses', () => {
    const v4 = new SocksHandshake().feed(bytes([5, 1, 0], [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]));
    expect(v4).toEqual({ kind: 'request', request: { version: 5, host: '127.0.0.1', port: 8080 }, rest: Buffer.alloc(0), send: Buffer.from([5, 0]) });
    const v6 = new SocksHandshake().feed(bytes([5, 1, 0], [5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22]));
    expect(v6.kind === 'request' && v6.request).toEqual({ version: 5, host: '2001:db8:0:0:0:0:0:1', port: 22 });
  });

  it('SOCKS4 and SOCKS4a (a host name after the user id), one byte at a time', () => {
    const four = byteByByte(bytes([4, 1, 0, 80, 10, 1, 2, 3], 'user', [0]));
    expect(four.at(-1)).toEqual({ kind: 'request', request: { version: 4, host: '10.1.2.3', port: 80 }, rest: Buffer.alloc(0) });
    expect(four.slice(0, -1).every((s) => s.kind === 'more' && !s.send)).toBe(true);
    const fourA = byteByByte(bytes([4, 1, 0, 80, 0, 0, 0, 1], 'u', [0], 'intranet.example', [0]));
    expect(fourA.at(-1)).toEqual({ kind: 'request', request: { version: 4, host: 'intranet.example', port: 80 }, rest: Buffer.alloc(0) });
    const hs = new SocksHandshake();
    hs.feed(bytes([4, 1, 0, 80, 10, 1, 2, 3, 0]));
    expect(hs.reply(true)).toEqual(Buffer.from([0, 0x5a, 0, 0, 0, 0, 0, 0]));
    expect(hs.reply(false)[1]).toBe(0x5b);
  });

  it('SOCKS5 split anywhere gives the same request', () => {
    const input = bytes([5, 1, 0], [5, 1, 0, 3, 4], 'host', [0, 7], 'tail');
    const steps = byteByByte(input);
    expect(steps.at(-1)).toEqual({ kind: 'request', request: { version: 5, host: 'host', port: 7 }, rest: Buffer.alloc(0) });
    expect(steps.filter((s) => s.send).map((s) => s.send)).toEqual([Buffer.from([5, 0])]);
  });

  it('random and mangled input (seeded): every step is more, a request or a refusal; nothing throws', () => {
    let seed = 20261130;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const valid = [bytes([5, 1, 0], [5, 1, 0, 3, 4], 'host', [0, 80]), bytes([4, 1, 0, 80, 0, 0, 0, 1], 'u', [0], 'h', [0]), bytes([5, 1, 0], [5, 1, 0, 1, 1, 2, 3, 4, 0, 22])];
    for (let i = 0; i < 3000; i++) {
      let input: Buffer;
      if (i % 2) {
        input = Buffer.from(valid[rand(valid.length)]);
        for (let k = rand(4); k >= 0; k--) input[rand(input.length)] = rand(256); // mangled
      } else {
        input = Buffer.from(Array.from({ length: 1 + rand(40) }, () => rand(256)));
        input[0] = [4, 5, rand(256)][rand(3)]; // mostly a SOCKS version first
      }
      const hs = new SocksHandshake();
      for (let at = 0; at < input.length; ) {
        const n = 1 + rand(6);
        const step = hs.feed(input.subarray(at, at + n));
        at += n;
        if (step.kind === 'more') continue;
        if (step.kind === 'request') {
          expect(step.request.host.length).toBeGreaterThan(0);
          expect(step.request.port).toBeGreaterThanOrEqual(0);
          expect(step.request.port).toBeLessThanOrEqual(65535);
        } else {
          expect(typeof step.reason).toBe('string');
        }
        break;
      }
    }
  });

  it('refuses what it cannot serve, with the reply the protocol has', () => {
    expect(new SocksHandshake().feed(bytes([5, 1, 2]))).toEqual({ kind: 'fail', reason: 'SOCKS5 client offers no method without authentication', send: Buffer.from([5, 0xff]) });
    const bind = new SocksHandshake().feed(bytes([5, 1, 0], [5, 2, 0, 1, 1, 2, 3, 4, 0, 80]));
    expect(bind.kind).toBe('fail');
    expect(bind.send).toEqual(Buffer.concat([Buffer.from([5, 0]), Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0])]));
    expect(new SocksHandshake().feed(bytes([5, 1, 0], [5, 1, 0, 9, 0, 0]))).toMatchObject({ kind: 'fail', reason: 'SOCKS5 address type 9 is not supported' });
    expect(new SocksHandshake().feed(bytes([4, 2, 0, 80, 1, 2, 3, 4, 0]))).toMatchObject({ kind: 'fail', send: Buffer.from([0, 0x5b, 0, 0, 0, 0, 0, 0]) });
    expect(new SocksHandshake().feed(bytes('GET / HTTP/1.1\r\n'))).toEqual({ kind: 'fail', reason: 'not a SOCKS client (first byte 71)', send: undefined });
    // A SOCKS4 user id that never ends.
    const hs = new SocksHandshake();
    hs.feed(bytes([4, 1, 0, 80, 1, 2, 3, 4]));
    expect(hs.feed(Buffer.alloc(2000, 0x61))).toMatchObject({ kind: 'fail', reason: 'handshake too long' });
    expect(() => hs.feed(Buffer.from([0]))).toThrow(/already finished/);
  });
});
