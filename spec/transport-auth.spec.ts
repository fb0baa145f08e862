import { Ed25519Key, RSAKey, PKey } from '../lib';
import { Message } from '../lib/wire/message';
import { defaultPreferences } from '../lib/transport/algorithms';
import { ClientAuth, paramikoAuthResult } from '../lib/transport/auth-client';
import type { AuthOutcome } from '../lib/transport/auth-client';
import { ServerAuth } from '../lib/transport/auth-server';
import type { AuthDecision, ServerAuthPolicy } from '../lib/transport/auth-server';
import { AUTH_FAILED, AUTH_PARTIALLY_SUCCESSFUL, AUTH_SUCCESSFUL, MSG } from '../lib/transport/constants';
import { Session } from '../lib/transport/session';

/** Client and server auth layers over two in-memory Sessions; `pump` moves bytes until quiet. */
function authPair(policy: ServerAuthPolicy) {
  const queue: Array<[boolean, Buffer]> = [];
  let disconnected: string | null = null;
  let serverUser: string | null = null;
  const hostKeys = [Ed25519Key.generate()];
  let server!: ServerAuth;
  let client!: ClientAuth;
  const cs = new Session(
    { role: 'client', preferences: defaultPreferences() },
    {
      write: (d) => queue.push([true, Buffer.from(d)]),
      message: (t, m) => void client.handle(t, m),
      kexDone: () => undefined,
      closed: (e) => {
        disconnected = disconnected ?? e?.message ?? 'closed';
        client.abort(e ?? new Error('closed'));
      },
    },
  );
  const ss = new Session(
    { role: 'server', preferences: defaultPreferences(), hostKeys, serverSigAlgs: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'] },
    {
      write: (d) => queue.push([false, Buffer.from(d)]),
      message: (t, m) => void server.handle(t, m),
      kexDone: () => undefined,
      closed: () => undefined,
    },
  );
  client = new ClientAuth({
    send: (p) => cs.send(p),
    sessionId: () => cs.sessionId!,
    serverSigAlgs: () => cs.serverSigAlgs,
    authenticated: () => cs.setAuthenticated(),
  });
  server = new ServerAuth(
    {
      send: (p) => ss.send(p),
      sessionId: () => ss.sessionId!,
      authenticated: (u) => (serverUser = u),
      disconnect: (_r, text) => {
        disconnected = text;
        ss.disconnect(_r, text);
      },
    },
    policy,
    3,
  );
  const pump = async () => {
    for (let i = 0; i < 200; i++) {
      while (queue.length) {
        const [fromClient, d] = queue.shift()!;
        (fromClient ? ss : cs).receive(d);
      }
      await new Promise((r) => setImmediate(r));
      if (!queue.length) return;
    }
  };
  cs.start();
  ss.start();
  /** Runs an auth call while pumping. */
  const run = async (p: Promise<AuthOutcome>): Promise<AuthOutcome> => {
    let done = false;
    const r = p.finally(() => (done = true));
    r.catch(() => undefined); // handled by the caller, after the pumping
    while (!done) await pump();
    return r;
  };
  return { client, server, pump, run, serverUser: () => serverUser, disconnected: () => disconnected };
}

const alice = Ed25519Key.generate();
const aliceRsa = RSAKey.generate(2048);

function policy(over: Partial<ServerAuthPolicy> = {}): ServerAuthPolicy & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    allowedAuths: () => ['publickey', 'password', 'keyboard-interactive'],
    authNone: () => AUTH_FAILED,
    authPassword: (u, p) => (seen.push(`password ${u}`), u === 'alice' && p === 'secret' ? AUTH_SUCCESSFUL : AUTH_FAILED),
    authPublickey: (u, k, signed) => (seen.push(`publickey ${signed}`), u === 'alice' && (k.equals(alice) || k.equals(aliceRsa)) ? AUTH_SUCCESSFUL : AUTH_FAILED),
    authInteractive: () => ({ name: 'otp', instructions: 'say it', prompts: [['Code: ', false]] }) as AuthDecision,
    authInteractiveResponse: (r) => (r[0] === '123' ? AUTH_SUCCESSFUL : AUTH_FAILED),
    banner: () => 'welcome to the test server\n',
    ...over,
  };
}

const signer = (key: PKey) => ({ key, sign: (d: Buffer, alg: string) => Buffer.from(key.signSshData(d, alg).asBytes()) });

describe('ServerAuth against ClientAuth (in memory)', () => {
  it('none lists the methods; password succeeds; the banner arrives first', async () => {
    const p = authPair(policy());
    await p.pump();
    const none = await p.run(p.client.authNone('alice'));
    expect(none).toEqual({ success: false, partial: false, allowed: ['publickey', 'password', 'keyboard-interactive'] });
    expect(p.client.banner).toBe('welcome to the test server\n');
    expect(await p.run(p.client.authPassword('alice', 'nope'))).toMatchObject({ success: false });
    expect(await p.run(p.client.authPassword('alice', 'secret'))).toMatchObject({ success: true });
    expect(p.serverUser()).toBe('alice');
  });

  it('publickey: the signature is verified by the library before the policy is asked', async () => {
    const pol = policy();
    const p = authPair(pol);
    await p.pump();
    expect(await p.run(p.client.authPublickey('alice', signer(aliceRsa)))).toMatchObject({ success: true });
    expect(pol.seen).toEqual(['publickey true']);
  });

  it('a forged signature fails without asking the policy', async () => {
    const pol = policy();
    const p = authPair(pol);
    await p.pump();
    const forger = { key: alice, sign: (_d: Buffer, alg: string) => Buffer.from(new Message().addString(alg).addString(Buffer.alloc(64)).asBytes()) };
    expect(await p.run(p.client.authPublickey('alice', forger))).toMatchObject({ success: false });
    expect(pol.seen).toEqual([]);
  });

  it('keyboard-interactive asks the client handler and checks the answers', async () => {
    const p = authPair(policy());
    await p.pump();
    const asked: string[] = [];
    const r = await p.run(p.client.authInteractive('alice', (name, instructions, prompts) => {
      asked.push(name, instructions, ...prompts.map(([t]) => t));
      return ['123'];
    }));
    expect(r).toMatchObject({ success: true });
    expect(asked).toEqual(['otp', 'say it', 'Code: ']);
  });

  it('partial success lists the next methods, as Paramiko returns them', async () => {
    const p = authPair(policy({ authPublickey: () => AUTH_PARTIALLY_SUCCESSFUL, allowedAuths: () => ['publickey', 'password'] }));
    await p.pump();
    const o = await p.run(p.client.authPublickey('alice', signer(alice)));
    expect(paramikoAuthResult('publickey', o)).toEqual(['publickey', 'password']);
  });

  it('too many failures disconnect the client', async () => {
    const p = authPair(policy());
    await p.pump();
    for (let i = 0; i < 2; i++) await p.run(p.client.authPassword('alice', `wrong ${i}`));
    await expect(p.run(p.client.authPassword('alice', 'wrong again'))).rejects.toThrow();
    expect(p.disconnected()).toMatch(/too many authentication failures/);
  });

  it('password change requests count toward MaxAuthTries: a client cannot go round them without end', async () => {
    const change = { passwordChange: { prompt: 'expired', lang: '' } };
    const asked: string[] = [];
    const p = authPair(policy({ authPassword: () => change, authPasswordChange: (_u, _o, n) => (asked.push(n), change) }));
    await p.pump();
    await expect(p.run(p.client.authPassword('alice', 'old', () => ['old', `new ${asked.length}`]))).rejects.toThrow();
    expect(p.disconnected()).toMatch(/too many authentication failures/);
    // The initial request and two changes asked for another: three attempts, this pair's limit.
    expect(asked).toEqual(['new 0', 'new 1']);
  });

  it('a method the policy does not allow fails with the allowed list', async () => {
    const p = authPair(policy({ allowedAuths: () => ['publickey'] }));
    await p.pump();
    const o = await p.run(p.client.authPassword('alice', 'secret'));
    expect(o).toEqual({ success: false, partial: false, allowed: ['publickey'] });
  });
});
