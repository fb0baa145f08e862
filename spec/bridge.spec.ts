/**
 * The bridge between the main thread and the transport worker (DESIGN.md section 2): blocking
 * calls, their promise twins, callbacks in both of the main thread's states, errors that keep
 * their class, and a worker that dies or wedges without hanging anyone. The worker runs the
 * build (dist/); its 'bridge' diagnostics service (lib/worker/services/diagnostics.ts)
 * provides the faults.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Bridge, getBridge, shutdownBridge } from '../lib/bridge';
import {
  AuthenticationException,
  BadAuthenticationType,
  ChannelException,
  IOError,
  SSHException,
  SocketTimeout,
} from '../lib/errors';
import { catchError, deferred } from './support/bridge-helpers';

const bridge = getBridge();

/** Bridges of their own for the tests that kill workers, with short safety timeouts. */
const privateBridges: Bridge[] = [];
function privateBridge(): Bridge {
  const b = new Bridge({ wedgeTimeout: 1, deadlineMargin: 0.2 });
  privateBridges.push(b);
  return b;
}

afterAll(async () => {
  await Promise.all(privateBridges.map((b) => b.close()));
  await shutdownBridge();
});

describe('blocking calls', () => {
  test('call returns the value of the service method', () => {
    expect(bridge.call('bridge', 'ping')).toBe('pong');
    const args = { text: 'héllo', n: 42, list: [1, [2, 3]], nested: { flag: true, none: null } };
    expect(bridge.call('bridge', 'echo', args)).toEqual(args);
  });

  test('arguments and results are structured clones (Map, Date, bigint)', () => {
    const value = bridge.call<{ m: Map<string, number>; d: Date; b: bigint }>('bridge', 'echo', {
      m: new Map([['a', 1]]),
      d: new Date(0),
      b: 2n ** 70n,
    });
    expect(value.m.get('a')).toBe(1);
    expect(value.d.getTime()).toBe(0);
    expect(value.b).toBe(2n ** 70n);
  });

  test('a Uint8Array result arrives as a Buffer', () => {
    const value = bridge.call('bridge', 'echo', Buffer.from('data'));
    expect(Buffer.isBuffer(value)).toBe(true);
    expect((value as Buffer).toString()).toBe('data');
  });

  test('a small view of a large buffer arrives as its own bytes, not with the whole buffer (alone, in an array, as a property)', () => {
    const expected = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i + 100) % 251));
    const args = { size: 16 * 1024 * 1024, at: 100, length: 1000 };
    const bare = bridge.call<Uint8Array>('bridge', 'view', { ...args, shape: 'bare' });
    const [inArray] = bridge.call<[Uint8Array, string]>('bridge', 'view', { ...args, shape: 'array' });
    const { data, eof } = bridge.call<{ data: Uint8Array; eof: boolean }>('bridge', 'view', { ...args, shape: 'object' });
    expect(eof).toBe(true);
    for (const v of [bare, inArray, data]) {
      expect(Buffer.from(v).equals(expected)).toBe(true);
      // Cloned as a view, it would carry all 16 MiB (and took ~60 ms to post).
      expect(v.buffer.byteLength).toBeLessThan(8192);
    }
    // A view of most of its buffer goes as it is.
    const most = bridge.call<Uint8Array>('bridge', 'view', { size: 5000, at: 10, length: 4000, shape: 'bare' });
    expect(most.buffer.byteLength).toBe(5000);
    // The same for a request's arguments (a write of a slice of a large buffer).
    const big = Buffer.alloc(16 * 1024 * 1024);
    expect(bridge.call('bridge', 'bufferBehind', { data: big.subarray(100, 1100) })).toBe(1000);
    expect(bridge.call('bridge', 'bufferBehind', { data: big.subarray(0, big.length - 100) })).toBe(big.length);
  });

  test('an unknown method fails with SSHException naming it', () => {
    const err = catchError(() => bridge.call('bridge', 'noSuchMethod'));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toContain('bridge.noSuchMethod');
    expect(catchError(() => bridge.call('noSuchService', 'ping'))).toBeInstanceOf(SSHException);
    expect(catchError(() => bridge.call('bridge', 'toString'))).toBeInstanceOf(SSHException);
  });

  test('a timeout must be null or a number of seconds >= 0', () => {
    expect(catchError(() => bridge.call('bridge', 'ping', undefined, -1))).toBeInstanceOf(RangeError);
    expect(catchError(() => bridge.call('bridge', 'ping', undefined, Number.NaN))).toBeInstanceOf(RangeError);
    expect(bridge.call('bridge', 'ping', undefined, 0)).toBe('pong');
  });

  test('arguments that cannot be cloned throw on the main thread, and the bridge goes on', () => {
    const err = catchError(() => bridge.call('bridge', 'echo', { f: () => 1 }));
    expect(err.name).toBe('DataCloneError');
    expect(bridge.call('bridge', 'ping')).toBe('pong');
  });

  test('a result that cannot be cloned fails with TypeError instead of never answering', () => {
    const err = catchError(() => bridge.call('bridge', 'unclonable'));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain('cannot be sent');
  });
});

describe('errors cross the thread as themselves', () => {
  test('the class, message and own properties are kept', () => {
    const auth = catchError(() =>
      bridge.call('bridge', 'throw', { className: 'BadAuthenticationType', args: ['no way', ['publickey', 'password']] }),
    );
    expect(auth).toBeInstanceOf(BadAuthenticationType);
    expect(auth).toBeInstanceOf(AuthenticationException);
    expect(auth).toBeInstanceOf(SSHException);
    expect(auth.name).toBe('BadAuthenticationType');
    expect(auth.message).toBe('no way (allowed types: ["publickey","password"])');
    expect((auth as BadAuthenticationType).allowedTypes).toEqual(['publickey', 'password']);

    const io = catchError(() =>
      bridge.call('bridge', 'throw', { className: 'IOError', args: ['No such file', { code: 'ENOENT', errno: 2, filename: '/x' }] }),
    ) as IOError;
    expect(io).toBeInstanceOf(IOError);
    expect([io.code, io.errno, io.filename]).toEqual(['ENOENT', 2, '/x']);

    const chan = catchError(() => bridge.call('bridge', 'throw', { className: 'ChannelException', args: [2, 'Connect failed'] }));
    expect(chan).toBeInstanceOf(ChannelException);
    expect([(chan as ChannelException).code, (chan as ChannelException).text]).toEqual([2, 'Connect failed']);

    const type = catchError(() => bridge.call('bridge', 'throw', { className: 'TypeError', args: ['bad type'] }));
    expect(type).toBeInstanceOf(TypeError);
    expect(type.message).toBe('bad type');
  });

  test('extra properties assigned to an error travel too; uncloneable ones are left behind', () => {
    const err = catchError(() =>
      bridge.call('bridge', 'throw', { className: 'SSHException', args: ['x'], props: { detail: { offered: ['a', 'b'] }, raw: Buffer.from('ab') } }),
    ) as SSHException & { detail: unknown; raw: unknown };
    expect(err.detail).toEqual({ offered: ['a', 'b'] });
    expect(Buffer.isBuffer(err.raw)).toBe(true);
  });

  test('the cause is kept', () => {
    const err = catchError(() =>
      bridge.call('bridge', 'throw', { className: 'SSHException', args: ['outer', { cause: new RangeError('inner') }] }),
    );
    expect(err.cause).toBeInstanceOf(RangeError);
    expect((err.cause as Error).message).toBe('inner');
  });

  test("the worker's stack follows the caller's", () => {
    const err = catchError(() => bridge.call('bridge', 'throw', { className: 'SSHException', args: ['with a stack'] }));
    const stack = err.stack!;
    expect(stack.startsWith('SSHException: with a stack\n')).toBe(true);
    const [local, remote] = stack.split('\n    --- in the transport worker ---\n');
    expect(local).toContain('bridge.spec.ts');
    expect(remote).toContain('diagnostics.js');
    expect(remote).not.toContain('handleRequest');
  });
});

describe('timeouts', () => {
  test("a service's own timeout raises SocketTimeout", () => {
    const err = catchError(() => bridge.call('bridge', 'sleep', { ms: 60000 }, 0.05));
    expect(err).toBeInstanceOf(SocketTimeout);
    expect(err.stack).toContain('--- in the transport worker ---');
  });

  test('a service that never answers is cut off at the deadline with SocketTimeout; the worker lives on', () => {
    const b = privateBridge();
    const err = catchError(() => b.call('bridge', 'hang', undefined, 0.05));
    expect(err).toBeInstanceOf(SocketTimeout);
    expect(err.message).toContain('bridge.hang');
    expect(b.call('bridge', 'ping')).toBe('pong');
  });

  test('callAsync is cut off at its deadline too', async () => {
    const b = privateBridge();
    await expect(b.callAsync('bridge', 'hang', undefined, 0)).rejects.toBeInstanceOf(SocketTimeout);
    expect(b.call('bridge', 'ping')).toBe('pong');
  });

  test('a timeout longer than a Node timer can hold does not fire early', async () => {
    expect(await bridge.callAsync('bridge', 'sleep', { ms: 20 }, 1e9)).toBe(20);
    expect(bridge.call('bridge', 'sleep', { ms: 20 }, 1e9)).toBe(20);
  });

  test('the caller giving up aborts the signal of the service', async () => {
    const b = privateBridge();
    // sleep rejects with the abort reason when its signal fires; the bridge drops that answer.
    expect(catchError(() => b.call('bridge', 'sleep', { ms: 60000 }, 0))).toBeInstanceOf(SocketTimeout);
    expect(b.call('bridge', 'ping')).toBe('pong');
  });
});

describe('callbacks', () => {
  test('a callback is serviced while the main thread is blocked in a call', () => {
    const off = bridge.onCallback('double', (n: number) => n * 2);
    try {
      expect(bridge.call('bridge', 'callbackRoundtrip', { kind: 'double', payload: 21 })).toBe(42);
    } finally {
      off();
    }
  });

  test("a callback handler's error reaches the worker as its class, and comes back", () => {
    const off = bridge.onCallback('refuse', () => {
      throw new AuthenticationException('refused on the main thread');
    });
    try {
      const err = catchError(() => bridge.call('bridge', 'callbackRoundtrip', { kind: 'refuse' }));
      expect(err).toBeInstanceOf(AuthenticationException);
      expect(err.message).toBe('refused on the main thread');
      expect(err.stack).toContain('--- in the transport worker ---');
      expect(err.stack).toContain('--- in the main thread (callback) ---');
    } finally {
      off();
    }
  });

  test('a callback nobody handles fails with SSHException naming its kind', () => {
    const err = catchError(() => bridge.call('bridge', 'callbackRoundtrip', { kind: 'unhandled-kind' }));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toContain('unhandled-kind');
  });

  test('a callback handler may itself make blocking calls (nested waits)', () => {
    const off = bridge.onCallback('depth', (n: number): number =>
      n === 0 ? 0 : 1 + (bridge.call('bridge', 'callbackRoundtrip', { kind: 'depth', payload: n - 1 }) as number),
    );
    try {
      expect(bridge.call('bridge', 'callbackRoundtrip', { kind: 'depth', payload: 8 })).toBe(8);
    } finally {
      off();
    }
  });

  test('a callback arrives through the event loop while the main thread is idle', async () => {
    const seen = deferred<unknown>();
    const answered = deferred<unknown>();
    const offs = [
      bridge.onCallback('idle', (payload) => {
        seen.resolve(payload);
        return 'answer from an idle main thread';
      }),
      bridge.onCallback('idle:answer', (report) => answered.resolve(report)),
    ];
    try {
      expect(bridge.call('bridge', 'callbackLater', { kind: 'idle', payload: { hello: 'main' }, delayMs: 20 })).toBeNull();
      expect(await seen.promise).toEqual({ hello: 'main' });
      expect(await answered.promise).toEqual({ ok: true, answer: 'answer from an idle main thread' });
    } finally {
      offs.forEach((off) => off());
    }
  });

  test('a callback handler run from the event loop may make blocking calls', async () => {
    const answered = deferred<unknown>();
    const offs = [
      bridge.onCallback('idle-nested', () => bridge.call('bridge', 'echo', 'from a nested call')),
      bridge.onCallback('idle-nested:answer', (report) => answered.resolve(report)),
    ];
    try {
      bridge.call('bridge', 'callbackLater', { kind: 'idle-nested', delayMs: 10 });
      expect(await answered.promise).toEqual({ ok: true, answer: 'from a nested call' });
    } finally {
      offs.forEach((off) => off());
    }
  });

  test('an async callback handler is awaited when the main thread is idle', async () => {
    const off = bridge.onCallback('slow', async (n: number) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return n + 1;
    });
    try {
      expect(await bridge.callAsync('bridge', 'callbackRoundtrip', { kind: 'slow', payload: 1 })).toBe(2);
    } finally {
      off();
    }
  });

  test('a handler returning a promise while the main thread is blocked fails clearly instead of deadlocking', () => {
    const off = bridge.onCallback('async-while-blocked', async () => 'too late');
    try {
      const err = catchError(() => bridge.call('bridge', 'callbackRoundtrip', { kind: 'async-while-blocked' }));
      expect(err).toBeInstanceOf(SSHException);
      expect(err.message).toContain('make the handler synchronous');
    } finally {
      off();
    }
  });

  test('onCallback replaces a handler, and its remover only removes its own', () => {
    const offFirst = bridge.onCallback('which', () => 'first');
    const offSecond = bridge.onCallback('which', () => 'second');
    try {
      expect(bridge.call('bridge', 'callbackRoundtrip', { kind: 'which' })).toBe('second');
      offFirst();
      expect(bridge.call('bridge', 'callbackRoundtrip', { kind: 'which' })).toBe('second');
    } finally {
      offSecond();
    }
    expect(catchError(() => bridge.call('bridge', 'callbackRoundtrip', { kind: 'which' }))).toBeInstanceOf(SSHException);
  });
});

describe('promise twins', () => {
  test('callAsync resolves with the same method through the same path', async () => {
    expect(await bridge.callAsync('bridge', 'ping')).toBe('pong');
    expect(await bridge.callAsync('bridge', 'sleep', { ms: 5 })).toBe(5);
  });

  test("callAsync rejects with the service's error class and the caller's stack", async () => {
    const err = await bridge.callAsync('bridge', 'throw', { className: 'ChannelException', args: [1, 'prohibited'] }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(ChannelException);
    expect(err!.stack).toContain('bridge.spec.ts');
    expect(err!.stack).toContain('--- in the transport worker ---');
  });

  test('many concurrent callAsync each get their own answer', async () => {
    const n = 1000;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 3 === 0 ? bridge.callAsync('bridge', 'sleep', { ms: i % 17 }).then(() => i) : bridge.callAsync('bridge', 'echo', i),
      ),
    );
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  test('a blocking call while promise calls are pending leaves their answers to them', async () => {
    const early = bridge.callAsync('bridge', 'sleep', { ms: 5 });
    const late = bridge.callAsync('bridge', 'echo', 'late');
    // Blocks past the promise calls' answers: its wait loop receives them and settles them.
    expect(bridge.call('bridge', 'sleep', { ms: 50 })).toBe(50);
    expect(await early).toBe(5);
    expect(await late).toBe('late');
  });
});

describe('a dead worker wakes every waiter', () => {
  test.each(['throw', 'reject', 'exit'])('a blocked call without timeout wakes when the worker dies (%s)', (mode) => {
    const b = privateBridge();
    const err = catchError(() => b.call('bridge', 'crash', { mode, delayMs: 10 }, null));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toMatch(/^transport worker died: /);
    if (mode === 'exit') expect(err.message).toContain('exited with code 3');
    else expect((err.cause as Error).name).toBe('RangeError');
  });

  test('a wedged worker is found by its heartbeat, terminated, and replaced at the next call', () => {
    const b = privateBridge();
    b.start();
    const before = b.generation;
    const err = catchError(() => b.call('bridge', 'crash', { mode: 'wedge', delayMs: 10 }, null));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toContain('no heartbeat');
    expect(b.running).toBe(false);
    expect(b.call('bridge', 'ping')).toBe('pong');
    expect(b.generation).toBe(before + 1);
  });

  test('a death fails the pending promise calls of an idle main thread', async () => {
    const b = privateBridge();
    const pending = [b.callAsync('bridge', 'hang'), b.callAsync('bridge', 'sleep', { ms: 60000 })];
    const crash = b.callAsync('bridge', 'crash', { mode: 'throw', delayMs: 10 });
    for (const p of [...pending, crash]) {
      await expect(p).rejects.toThrow(/^transport worker died: uncaught exception: RangeError: diagnostic crash/);
    }
    expect(await b.callAsync('bridge', 'ping')).toBe('pong');
  });

  test('a wedge fails the pending promise calls of an idle main thread', async () => {
    const b = privateBridge();
    await expect(b.callAsync('bridge', 'crash', { mode: 'wedge', delayMs: 10 })).rejects.toThrow(/no heartbeat/);
  });

  test('a blocked call wakes when the worker dies during a nested call, and so do the outer ones', () => {
    const b = privateBridge();
    b.onCallback('die', () => b.call('bridge', 'crash', { mode: 'exit', delayMs: 5 }));
    const err = catchError(() => b.call('bridge', 'callbackRoundtrip', { kind: 'die' }));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toMatch(/^transport worker died: /);
  });

  test('death listeners hear of it with the error the waiters got', () => {
    const b = privateBridge();
    const heard: Error[] = [];
    const off = b.onDeath((err) => heard.push(err));
    const err = catchError(() => b.call('bridge', 'crash', { mode: 'exit', delayMs: 5 }));
    off();
    expect(heard).toHaveLength(1);
    expect(heard[0]).toBeInstanceOf(SSHException);
    expect(heard[0].message).toBe(err.message);
  });

  /**
   * Runs `fn` with a bridge to a worker script of our own: the worker side started (`ws`), then
   * `body`. The script's folder is removed afterwards; the bridge is closed with the others.
   */
  function withWorkerScript(body: string, fn: (b: Bridge) => void): void {
    const dir = mkdtempSync(path.join(tmpdir(), 'pts-bridge-'));
    try {
      const workerSide = path.resolve(__dirname, '..', 'dist', 'bridge', 'worker-side.js');
      const script = path.join(dir, 'worker.js');
      writeFileSync(script, `const ws = require(${JSON.stringify(workerSide)});\nws.startWorkerSide(require('node:worker_threads').workerData);\n${body}`);
      const b = new Bridge({ workerPath: script, wedgeTimeout: null });
      privateBridges.push(b);
      fn(b);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('a worker that fails while loading its services wakes the first call with the cause', () => {
    withWorkerScript("throw new TypeError('a service module failed to load');\n", (b) => {
      const err = catchError(() => b.call('bridge', 'ping', undefined, null));
      expect(err).toBeInstanceOf(SSHException);
      expect(err.message).toContain('a service module failed to load');
      expect(err.cause).toBeInstanceOf(TypeError);
    });
  });

  test("a worker loads each service's module at its first request; one that fails to load fails only its calls", () => {
    const b = privateBridge();
    // A fresh worker answering its diagnostics has loaded no other service's module.
    const info = b.call<{ services: string[]; loaded: string[] }>('bridge', 'info');
    expect(info.services).toEqual(expect.arrayContaining(['bridge', 'transport', 'sockets', 'agent', 'sftp', 'embedded']));
    expect(info.loaded).toEqual(['bridge']);
    expect(catchError(() => b.call('sftp', 'noSuchMethod')).message).toContain('no method sftp.noSuchMethod');
    expect(b.call<{ loaded: string[] }>('bridge', 'info').loaded.sort()).toEqual(['bridge', 'sftp']);

    withWorkerScript(
      "let tries = 0;\n" +
        "ws.registerService('broken', () => { tries++; throw new TypeError('module of broken failed to load, try ' + tries); });\n" +
        "ws.registerService('good', () => ({ ping: () => 'pong ' + tries }));\n" +
        'ws.markRunning();\n',
      (lazy) => {
        const err = catchError(() => lazy.call('broken', 'ping', undefined, 10));
        expect(err).toBeInstanceOf(TypeError);
        expect(err.message).toBe('module of broken failed to load, try 1');
        expect(lazy.call('good', 'ping', undefined, 10)).toBe('pong 1');
        // Not remembered as loaded: the next call tries again.
        expect(catchError(() => lazy.call('broken', 'ping', undefined, 10)).message).toBe('module of broken failed to load, try 2');
        expect(lazy.running).toBe(true);
      },
    );
  });

  test('a missing worker script fails the call at once', () => {
    const b = new Bridge({ workerPath: path.join(tmpdir(), 'no-such-dir-pts', 'main.js') });
    const err = catchError(() => b.call('bridge', 'ping'));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toContain('transport worker script is missing');
  });

  test('close() fails pending calls, stops the thread, and a later call starts a new one', async () => {
    const b = privateBridge();
    const first = b.call<{ generation: number }>('bridge', 'info').generation;
    const pending = b.callAsync('bridge', 'hang').then(() => null, (err: Error) => err);
    await b.close();
    expect((await pending)?.message).toBe('transport worker died: the bridge was closed');
    expect(b.running).toBe(false);
    expect(b.call<{ generation: number }>('bridge', 'info').generation).toBe(first + 1);
  });

  test('waitUntil returns once its condition holds, false at its timeout, and throws on death', () => {
    const b = privateBridge();
    let flag = false;
    b.onCallback('set-flag', () => {
      flag = true;
    });
    b.call('bridge', 'callbackLater', { kind: 'set-flag', delayMs: 10 });
    // The callback is serviced inside the wait, which then sees the condition hold.
    expect(b.waitUntil(() => flag, null)).toBe(true);
    expect(b.waitUntil(() => false, 0.01)).toBe(false);
    b.callAsync('bridge', 'crash', { mode: 'exit', delayMs: 5 }).catch(() => undefined);
    const err = catchError(() => b.waitUntil(() => false, null));
    expect(err).toBeInstanceOf(SSHException);
    expect(err.message).toMatch(/^transport worker died: /);
  });
});
