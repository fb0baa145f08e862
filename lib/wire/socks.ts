/**
 * The server side of a SOCKS handshake (SOCKS4, its 4a extension, and SOCKS5 of RFC 1928 with
 * no authentication), as dynamic forwarding (`ssh -D`, AsyncSSH's forward_socks) speaks it:
 * CONNECT only. Bytes in, bytes out, no socket: the worker feeds it what the local client sends
 * until it names a destination, opens the channel, then sends `reply(ok)`.
 */

/** What the client asked for: a host name or address and a port. */
export interface SocksRequest {
  version: 4 | 5;
  host: string;
  port: number;
}

export type SocksStep =
  | { kind: 'more'; send?: Buffer }
  | { kind: 'request'; request: SocksRequest; rest: Buffer; send?: Buffer }
  | { kind: 'fail'; reason: string; send?: Buffer };

/** More than any greeting or request needs (a SOCKS5 domain is at most 255 bytes). */
const MAX_HANDSHAKE_BYTES = 1024;

const SOCKS5_NO_AUTH = 0x00;
const SOCKS5_NO_ACCEPTABLE_METHOD = 0xff;
const SOCKS_CONNECT = 0x01;
/** SOCKS5 reply codes (RFC 1928 section 6). */
export const SOCKS5_SUCCEEDED = 0x00;
export const SOCKS5_GENERAL_FAILURE = 0x01;
export const SOCKS5_CONNECTION_REFUSED = 0x05;
const SOCKS5_COMMAND_NOT_SUPPORTED = 0x07;
const SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED = 0x08;
/** SOCKS4 reply codes. */
const SOCKS4_GRANTED = 0x5a;
const SOCKS4_REJECTED = 0x5b;

function socks5Reply(code: number): Buffer {
  // The bound address is of no use through a channel: zeros, as OpenSSH's ssh -D sends.
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

export class SocksHandshake {
  private buf: Buffer = Buffer.alloc(0);
  private stage: 'greeting' | 'request5' | 'done' = 'greeting';
  private version: 4 | 5 = 5;

  /** Feeds bytes from the client; the step says what to send back and whether it is done. */
  feed(data: Buffer): SocksStep {
    if (this.stage === 'done') throw new Error('SOCKS handshake already finished');
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const step = this.stage === 'greeting' ? this.greeting() : this.request5();
    if (step.kind === 'more' && this.buf.length > MAX_HANDSHAKE_BYTES) return this.fail('handshake too long');
    return step;
  }

  /** The reply to send once the destination answered: granted or refused. */
  reply(ok: boolean): Buffer {
    if (this.version === 4) return Buffer.from([0, ok ? SOCKS4_GRANTED : SOCKS4_REJECTED, 0, 0, 0, 0, 0, 0]);
    return socks5Reply(ok ? SOCKS5_SUCCEEDED : SOCKS5_CONNECTION_REFUSED);
  }

  private fail(reason: string, send?: Buffer): SocksStep {
    this.stage = 'done';
    return { kind: 'fail', reason, send };
  }

  private greeting(): SocksStep {
    const b = this.buf;
    if (b.length < 1) return { kind: 'more' };
    if (b[0] === 4) return this.request4();
    if (b[0] !== 5) return this.fail(`not a SOCKS client (first byte ${b[0]})`);
    if (b.length < 2 || b.length < 2 + b[1]) return { kind: 'more' };
    const methods = b.subarray(2, 2 + b[1]);
    this.buf = b.subarray(2 + b[1]);
    if (!methods.includes(SOCKS5_NO_AUTH)) {
      return this.fail('SOCKS5 client offers no method without authentication', Buffer.from([5, SOCKS5_NO_ACCEPTABLE_METHOD]));
    }
    this.stage = 'request5';
    const chosen = Buffer.from([5, SOCKS5_NO_AUTH]);
    const next = this.request5();
    return next.kind === 'more' ? { kind: 'more', send: chosen } : { ...next, send: Buffer.concat([chosen, next.send ?? Buffer.alloc(0)]) };
  }

  /** SOCKS4: VER CMD PORT(2) IP(4) USERID NUL, and for 4a (IP 0.0.0.x, x > 0) HOST NUL. */
  private request4(): SocksStep {
    this.version = 4;
    const b = this.buf;
    if (b.length < 9) return { kind: 'more' };
    const userEnd = b.indexOf(0, 8);
    if (userEnd < 0) return { kind: 'more' };
    let host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
    let end = userEnd + 1;
    if (b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] !== 0) {
      const hostEnd = b.indexOf(0, end);
      if (hostEnd < 0) return { kind: 'more' };
      host = b.subarray(end, hostEnd).toString('latin1');
      end = hostEnd + 1;
    }
    if (b[1] !== SOCKS_CONNECT) return this.fail(`SOCKS4 command ${b[1]} is not supported (CONNECT only)`, this.reply(false));
    if (!host) return this.fail('SOCKS4a request without a host name', this.reply(false));
    this.stage = 'done';
    return { kind: 'request', request: { version: 4, host, port: b.readUInt16BE(2) }, rest: b.subarray(end) };
  }

  /** SOCKS5: VER CMD RSV ATYP ADDR PORT(2). */
  private request5(): SocksStep {
    const b = this.buf;
    if (b.length < 5) return { kind: 'more' };
    if (b[0] !== 5) return this.fail(`SOCKS5 request with version ${b[0]}`, socks5Reply(SOCKS5_GENERAL_FAILURE));
    let host: string;
    let at: number;
    switch (b[3]) {
      case 1: // IPv4
        if (b.length < 10) return { kind: 'more' };
        host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
        at = 8;
        break;
      case 3: // a domain name, length first
        if (b.length < 5 + b[4] + 2) return { kind: 'more' };
        host = b.subarray(5, 5 + b[4]).toString('latin1');
        at = 5 + b[4];
        break;
      case 4: {
        // IPv6
        if (b.length < 22) return { kind: 'more' };
        const groups: string[] = [];
        for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(4 + 2 * i).toString(16));
        host = groups.join(':');
        at = 20;
        break;
      }
      default:
        return this.fail(`SOCKS5 address type ${b[3]} is not supported`, socks5Reply(SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED));
    }
    if (b[1] !== SOCKS_CONNECT) return this.fail(`SOCKS5 command ${b[1]} is not supported (CONNECT only)`, socks5Reply(SOCKS5_COMMAND_NOT_SUPPORTED));
    if (!host) return this.fail('SOCKS5 request with an empty host name', socks5Reply(SOCKS5_GENERAL_FAILURE));
    this.stage = 'done';
    return { kind: 'request', request: { version: 5, host, port: b.readUInt16BE(at) }, rest: b.subarray(at + 2) };
  }
}
