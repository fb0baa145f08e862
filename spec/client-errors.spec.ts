import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { IOError, NotImplementedError, NoValidConnectionsError, SSHClient, SSHException, Transport } from '../lib';
import { catchError } from './support/bridge-helpers';

/** A port nothing listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('connection errors', () => {
  it('a refused connection raises NoValidConnectionsError with the errno code and each address', async () => {
    const port = await closedPort();
    const c = new SSHClient();
    let err: unknown;
    try {
      c.connect('127.0.0.1', { port, username: 'nobody', lookForKeys: false, allowAgent: false, timeout: 5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoValidConnectionsError);
    const e = err as NoValidConnectionsError;
    expect(e.code).toBe('ECONNREFUSED');
    expect([...e.errors.keys()]).toEqual([`127.0.0.1:${port}`]);
    expect(e.message).toMatch(/Unable to connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  it('a host name that does not resolve raises IOError with the resolver\'s code, naming the host', () => {
    // RFC 6761: .invalid never resolves.
    const c = new SSHClient();
    let err: unknown;
    try {
      c.connect('no-such-host.invalid', { port: 22, username: 'nobody', lookForKeys: false, allowAgent: false, timeout: 5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IOError);
    expect(['ENOTFOUND', 'EAI_AGAIN']).toContain((err as IOError).code);
    expect((err as Error).message).toContain('"no-such-host.invalid"');
  });

  it('rekey and dial options are checked when the Transport is made; a family the host has no address of is an IOError', () => {
    expect(() => new Transport(['127.0.0.1', 22], { rekeyBytes: 8 })).toThrow(/rekeyBytes must be an integer of at least 16, not 8/);
    expect(() => new Transport(['127.0.0.1', 22], { rekeySeconds: -1 })).toThrow(/rekeySeconds must be a number of seconds/);
    expect(() => new Transport(['127.0.0.1', 22], { family: 5 as 4 })).toThrow(/family must be 4, 6 or 0/);
    expect(() => new Transport(['127.0.0.1', 22], { localAddr: 'localhost' })).toThrow(/localAddr must be an IP address/);
    expect(() => new Transport(['127.0.0.1', 22], { localAddr: ['127.0.0.1', 70000] })).toThrow(/localAddr's port must be 0-65535/);
    const c = new SSHClient();
    const err = catchError(() => c.connect('127.0.0.1', { port: 22, family: 6, username: 'nobody', lookForKeys: false, allowAgent: false, timeout: 5 }));
    expect(err).toBeInstanceOf(IOError);
    expect((err as IOError).message).toMatch(/127\.0\.0\.1 has no IPv6 address/);
  });

  it("Paramiko's Transport calls we do not implement say so by name (NotImplementedError)", () => {
    const t = new Transport('127.0.0.1:22');
    const calls: Array<[() => unknown, RegExp]> = [
      [() => t.setGssHost('kdc'), /GSS-API/],
      [() => t.authGssapiWithMic('u'), /GSS-API authentication/],
      [() => t.authGssapiKeyex('u'), /GSS-API key exchange/],
      [() => t.atfork(), /atfork/],
    ];
    for (const [call, name] of calls) {
      expect(call).toThrow(NotImplementedError);
      expect(call).toThrow(name);
    }
  });

  it('a sock the worker cannot take over is refused by name, a Node stream with the reason and what to pass instead', () => {
    const stream = new PassThrough();
    for (const call of [() => new Transport(stream as never), () => new SSHClient().connect('h', { sock: stream as never })]) {
      expect(call).toThrow(NotImplementedError);
      expect(call).toThrow(/over a Node stream \(PassThrough\): its events run on this thread, which blocks in every call; pass 'host:port'.*createConnection.*ProxyCommand/);
    }
    const partial = catchError(() => new Transport({ send() {}, recv() {} } as never));
    expect(partial).toBeInstanceOf(TypeError);
    expect(partial.message).toMatch(/^Transport over an object \(Object\) lacking settimeout, close: pass 'host:port'.*Python's socket calls/);
    expect(() => new SSHClient().connect('h', { sock: 42 as never })).toThrow(/^SSHClient.connect over a number: pass/);
  });

  it('calls on a transport that was never started say there is no session', () => {
    const t = new Transport(['127.0.0.1', 22]);
    expect(t.isActive()).toBe(false);
    expect(() => t.openSession()).toThrow(SSHException);
    expect(() => t.getRemoteServerKey()).toThrow(/No existing session/);
  });

  it('security options refuse unknown algorithms', () => {
    const t = new Transport('127.0.0.1:22');
    expect(() => (t.getSecurityOptions().ciphers = ['rot13'])).toThrow(/unknown ciphers: rot13/);
    t.getSecurityOptions().ciphers = ['aes256-ctr'];
    expect(t.getSecurityOptions().ciphers).toEqual(['aes256-ctr']);
  });
});
