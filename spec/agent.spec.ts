import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Agent,
  AgentKey,
  AgentRequestHandler,
  AuthenticationException,
  AutoAddPolicy,
  Channel,
  Ed25519Key,
  Message,
  PKey,
  RSAKey,
  SSHClient,
  SSHException,
  Transport,
} from '../lib';
import {
  AgentReplyReader,
  encodeAddIdentity,
  encodeLock,
  encodeSignRequest,
  parseSuccess,
  MAX_AGENT_IDENTITIES,
  parseIdentitiesAnswer,
  parseSignResponse,
  SSH_AGENT_RSA_SHA2_512,
} from '../lib/agent/protocol';
import { blockUntil } from './support/bridge-helpers';
import { hasPeer, itWithPeers } from './support/peers';
import { generateKey, signCertificate, startAgent, startSshd } from './support/servers';
import type { Agent as TestAgent, KeyPair, SshdServer } from './support/servers';

// The client side of ssh-agent: OpenSSH's ssh-agent lists and signs, OpenSSH's sshd checks.

let dir: string;
const savedSock = process.env.SSH_AUTH_SOCK;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pts-agent-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  if (savedSock === undefined) delete process.env.SSH_AUTH_SOCK;
  else process.env.SSH_AUTH_SOCK = savedSock;
});

const frameOf = (body: Buffer) => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};
const identities = (list: Array<[Buffer, string]>) => {
  const m = new Message().addByte(12).addInt(list.length);
  for (const [blob, comment] of list) m.addString(blob).addString(comment);
  return m.asBytes();
};

describe('agent protocol (sans I/O)', () => {
  it('a sign request carries the key blob, the data and the SHA-2 flag for rsa-sha2-512', () => {
    const req = encodeSignRequest(Buffer.from('blob'), Buffer.from('data'), 'rsa-sha2-512');
    const m = new Message(req);
    expect(m.getInt()).toBe(req.length - 4);
    expect(m.getByte()).toBe(13);
    expect(m.getText()).toBe('blob');
    expect(m.getText()).toBe('data');
    expect(m.getInt()).toBe(SSH_AGENT_RSA_SHA2_512);
    // the flags are the last uint32: 2 for rsa-sha2-256, 0 for everything else
    const flags = (alg: string) => encodeSignRequest(Buffer.from('b'), Buffer.from('d'), alg).readUInt32BE(4 + 1 + 5 + 5);
    expect([flags('rsa-sha2-256'), flags('ssh-rsa'), flags('ssh-ed25519'), flags('ecdsa-sha2-nistp256')]).toEqual([2, 0, 0, 0]);
  });

  it('add requests carry the key, the comment and the constraints; lock carries the passphrase; SUCCESS or a named refusal', () => {
    const plain = new Message(encodeAddIdentity(Buffer.from('KEY'), 'c'));
    expect(plain.getInt()).toBe(1 + 3 + 4 + 1);
    expect([plain.getByte(), plain.getBytes(3).toString(), plain.getText(), plain.remaining]).toEqual([17, 'KEY', 'c', 0]);
    const constrained = new Message(encodeAddIdentity(Buffer.from('KEY'), 'c', { lifetime: 600, confirm: true }));
    constrained.getInt();
    expect([constrained.getByte(), constrained.getBytes(3).toString(), constrained.getText()]).toEqual([25, 'KEY', 'c']);
    expect([constrained.getByte(), constrained.getInt(), constrained.getByte(), constrained.remaining]).toEqual([1, 600, 2, 0]);
    const lock = new Message(encodeLock(false, 'pw'));
    lock.getInt();
    expect([lock.getByte(), lock.getText()]).toEqual([23, 'pw']);
    expect(() => parseSuccess(Buffer.from([6]), 'lock')).not.toThrow();
    expect(() => parseSuccess(Buffer.from([5]), 'lock')).toThrow(/the agent refused to lock \(SSH_AGENT_FAILURE\)/);
    expect(() => parseSuccess(Buffer.from([12, 0, 0, 0, 0]), 'lock')).toThrow(/SSH2_AGENT_IDENTITIES_ANSWER, expected SSH_AGENT_SUCCESS/);
    expect(() => parseSuccess(Buffer.from([6, 0]), 'lock')).toThrow(/1 stray bytes/);
  });

  it('the reply reader reassembles a reply split anywhere and refuses oversize or extra bytes', () => {
    const body = identities([[Ed25519Key.generate().asBytes(), 'split']]);
    const framed = frameOf(body);
    const r = new AgentReplyReader();
    for (let i = 0; i < framed.length - 1; i++) expect(r.push(framed.subarray(i, i + 1))).toBeNull();
    expect(r.push(framed.subarray(framed.length - 1))).toEqual(body);
    expect(() => new AgentReplyReader().push(Buffer.from([0, 0x10, 0, 1]))).toThrow(/1048577-byte reply, more than the 262144/);
    expect(() => new AgentReplyReader().push(Buffer.from([0, 0, 0, 0]))).toThrow(/empty message/);
    expect(() => new AgentReplyReader().push(Buffer.concat([framed, Buffer.from([1])]))).toThrow(/1 bytes past its reply/);
  });

  it('identities answers: parsed, and malformed ones named', () => {
    const k = Ed25519Key.generate();
    expect(parseIdentitiesAnswer(identities([[k.asBytes(), 'me@host']]))).toEqual([{ blob: k.asBytes(), comment: 'me@host' }]);
    expect(() => parseIdentitiesAnswer(Buffer.from([5]))).toThrow(/could not get keys from ssh-agent/);
    expect(() => parseIdentitiesAnswer(Buffer.from([14]))).toThrow(/SSH2_AGENT_SIGN_RESPONSE, expected SSH2_AGENT_IDENTITIES_ANSWER/);
    expect(() => parseIdentitiesAnswer(new Message().addByte(12).addInt(MAX_AGENT_IDENTITIES + 1).asBytes())).toThrow(/2049 identities/);
    expect(() => parseIdentitiesAnswer(new Message().addByte(12).addInt(2).addString(k.asBytes()).addString('one').asBytes())).toThrow(
      /malformed identities answer.*truncated/,
    );
    expect(() => parseIdentitiesAnswer(Buffer.concat([identities([[k.asBytes(), 'x']]), Buffer.from([0])]))).toThrow(/1 stray bytes/);
    expect(() => parseIdentitiesAnswer(identities([[Buffer.alloc(0), 'x']]))).toThrow(/empty key blob/);
  });

  it('sign responses: the signature blob, checked against the algorithm asked for', () => {
    const sig = new Message().addString('rsa-sha2-512').addString(Buffer.alloc(8)).asBytes();
    const reply = new Message().addByte(14).addString(sig).asBytes();
    expect(parseSignResponse(reply, 'rsa-sha2-512')).toEqual(sig);
    expect(() => parseSignResponse(reply, 'rsa-sha2-256')).toThrow(/"rsa-sha2-512" signature, not the "rsa-sha2-256" asked for/);
    expect(() => parseSignResponse(Buffer.from([5]), 'ssh-ed25519')).toThrow(/refused to sign/);
    expect(() => parseSignResponse(new Message().addByte(14).addString(Buffer.from([0, 0, 0, 9])).asBytes(), 'x')).toThrow(/malformed sign response/);
  });
});

/**
 * A fake agent in a child process (the main thread blocks in bridge calls, so it cannot serve a
 * socket itself): answers each request type with fixed bytes, then hangs up if `close` is set
 * (and at once for a type it has no answer for).
 */
type FakeReply = { data?: Buffer; close?: boolean };
async function fakeAgent(replies: Record<number, FakeReply>): Promise<{ path: string; stop(): Promise<void> }> {
  const path = join(dir, `fake-${Math.random().toString(36).slice(2)}.sock`);
  const table = Object.fromEntries(Object.entries(replies).map(([k, v]) => [k, { hex: (v.data ?? Buffer.alloc(0)).toString('hex'), close: !!v.close }]));
  const script = `
    const net = require('net');
    const [path, table] = [process.argv[1], JSON.parse(process.argv[2])];
    net.createServer((c) => {
      let buf = Buffer.alloc(0);
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const r = table[buf[4]];
          buf = buf.subarray(4 + buf.readUInt32BE(0));
          if (!r) return c.destroy();
          c.write(Buffer.from(r.hex, 'hex'));
          if (r.close) return c.end();
        }
      });
      c.on('error', () => {});
    }).listen(path);`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script, path, JSON.stringify(table)], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ path }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 400) throw new Error('the fake agent did not start');
    await new Promise((r) => setTimeout(r, 25));
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    path,
    stop: () => {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

describe('Agent against a misbehaving agent', () => {
  it('no agent: SSH_AUTH_SOCK unset, dangling, or not a socket gives no keys', () => {
    delete process.env.SSH_AUTH_SOCK;
    expect(new Agent().socketPath).toBeNull();
    expect(new Agent().getKeys()).toEqual([]);
    process.env.SSH_AUTH_SOCK = join(dir, 'no-such.sock');
    expect(new Agent().getKeys()).toEqual([]);
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'not a socket');
    process.env.SSH_AUTH_SOCK = file;
    expect(new Agent().getKeys()).toEqual([]);
  });

  it('a refused, oversize, truncated or missing answer raises SSHException naming the problem', async () => {
    const answer = frameOf(identities([[Ed25519Key.generate().asBytes(), 'x']]));
    const fakes = await Promise.all([
      fakeAgent({ 11: { data: frameOf(Buffer.from([5])) } }),
      fakeAgent({ 11: { data: Buffer.from([0, 0x40, 0, 0, 12]) } }),
      fakeAgent({}),
      fakeAgent({ 11: { data: answer.subarray(0, 20), close: true } }),
      fakeAgent({ 11: { data: frameOf(Buffer.from([12, 0, 0])) } }),
    ]);
    try {
      const [failing, huge, hangup, partial, short] = fakes.map((f) => f.path);
      expect(() => new Agent({ socketPath: failing })).toThrow(/could not get keys from ssh-agent/);
      expect(() => new Agent({ socketPath: huge })).toThrow(/4194304-byte reply/);
      expect(() => new Agent({ socketPath: hangup })).toThrow(/closed the connection without answering/);
      expect(() => new Agent({ socketPath: partial })).toThrow(/closed the connection in the middle of its reply \(20 bytes\)/);
      expect(() => new Agent({ socketPath: short })).toThrow(/malformed identities answer from the agent: truncated message/);
      expect(() => new Agent({ socketPath: short })).toThrow(SSHException);
    } finally {
      await Promise.all(fakes.map((f) => f.stop()));
    }
  });

  it('skips key types it cannot read, and checks what the agent signs', async () => {
    const ed = Ed25519Key.generate();
    const rsa = RSAKey.generate(2048);
    const sk = new Message().addString('sk-ssh-ed25519@openssh.com').addString(Buffer.alloc(32)).addString('ssh:').asBytes();
    const list = identities([[sk, 'fido'], [ed.asBytes(), 'ed'], [rsa.asBytes(), 'rsa']]);
    // The agent signs everything with a valid ssh-rsa signature, whatever was asked.
    const wrong = new Message().addByte(14).addString(rsa.signSshData(Buffer.from('x'), 'ssh-rsa').asBytes()).asBytes();
    const fake = await fakeAgent({ 11: { data: frameOf(list) }, 13: { data: frameOf(wrong) } });
    const refusing = await fakeAgent({ 11: { data: frameOf(list) }, 13: { data: frameOf(Buffer.from([5])) } });
    try {
      const keys = new Agent({ socketPath: fake.path }).getKeys();
      expect(keys.map((k) => [k.getName(), k.comment])).toEqual([
        ['ssh-ed25519', 'ed'],
        ['ssh-rsa', 'rsa'],
      ]);
      expect(keys[1].signSshData(Buffer.from('x'), 'ssh-rsa').getText()).toBe('ssh-rsa');
      expect(() => keys[1].signSshData(Buffer.from('x'), 'rsa-sha2-512')).toThrow(/"ssh-rsa" signature, not the "rsa-sha2-512" asked for/);
      expect(() => keys[0].signSshData(Buffer.from('x'))).toThrow(/"ssh-rsa" signature, not the "ssh-ed25519"/);
      expect(() => keys[0].signSshData(Buffer.from('x'), 'rsa-sha2-512')).toThrow(/ssh-ed25519 keys cannot make "rsa-sha2-512"/);
      const refused = new Agent({ socketPath: refusing.path }).getKeys()[0];
      expect(() => refused.signSshData(Buffer.from('x'))).toThrow(/refused to sign/);
      // a closed Agent's keys cannot sign; the agent going away is an SSHException too
      const agent = new Agent({ socketPath: fake.path });
      const key = agent.getKeys()[0];
      agent.close();
      expect(agent.getKeys()).toEqual([]);
      expect(() => key.signSshData(Buffer.from('x'))).toThrow(/was closed/);
      const live = new Agent({ socketPath: fake.path }).getKeys()[0];
      await fake.stop(); // its socket file stays, with no one listening
      expect(() => live.signSshData(Buffer.from('x'))).toThrow(/cannot reach the SSH agent/);
    } finally {
      await fake.stop();
      await refusing.stop();
    }
  });
});

describe('Agent and AgentKey against OpenSSH ssh-agent and sshd', () => {
  let agent: TestAgent;
  let certAgent: TestAgent;
  let sshd: SshdServer;
  const keys: Record<string, KeyPair> = {};
  const certKeys: Record<string, KeyPair> = {};

  beforeAll(async () => {
    if (!hasPeer('ssh-agent') || !hasPeer('sshd')) return;
    for (const t of ['ed25519', 'ecdsa', 'rsa'] as const) keys[t] = generateKey(join(dir, `id_${t}`), t, { comment: `agent-${t}` });
    const ca = generateKey(join(dir, 'ca'), 'ed25519');
    sshd = await startSshd({
      authorizedKeys: Object.values(keys).map((k) => k.publicKey),
      trustedUserCAKeys: ca.publicKey,
      logLevel: 'DEBUG2',
    });
    agent = await startAgent();
    for (const t of ['ed25519', 'ecdsa', 'rsa']) agent.add(keys[t].path);
    // Certificates only: their plain keys are not in authorized_keys. ssh-add adds the key and
    // then `<key>-cert.pub` beside it.
    certAgent = await startAgent();
    for (const t of ['ed25519', 'rsa'] as const) {
      certKeys[t] = generateKey(join(dir, `cert_${t}`), t, { comment: `cert-${t}` });
      signCertificate(ca.path, certKeys[t].publicKeyPath, false, { principals: [sshd.user.username] });
      certAgent.add(certKeys[t].path);
    }
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await certAgent?.stop();
    await sshd?.stop();
  });

  function transport(): Transport {
    const t = new Transport([sshd.host, sshd.port]);
    t.startClient();
    return t;
  }

  itWithPeers(['ssh-agent', 'sshd'], "agent forwarding (AgentRequestHandler): ssh-add -l on the server lists the local agent's keys", () => {
    process.env.SSH_AUTH_SOCK = agent.socketPath;
    const keys = new Agent({ socketPath: agent.socketPath }).getKeys();
    const t = transport();
    try {
      t.authPublickey(sshd.user.username, keys[0]);
      const chan = t.openSession();
      new AgentRequestHandler(chan);
      chan.execCommand('ssh-add -l');
      const out = chan.makefile().read().toString();
      for (const k of keys) expect(out).toContain(k.fingerprint);
      expect(chan.recvExitStatus()).toBe(0);
      // A connection that did not ask has no agent there (ssh-add: 2, cannot connect). Within
      // one connection sshd keeps forwarding for every later session once one asked.
      const t2 = transport();
      try {
        t2.authPublickey(sshd.user.username, keys[0]);
        const plain = t2.openSession();
        plain.execCommand('ssh-add -l >/dev/null 2>&1; echo "status $?"');
        expect(plain.makefile().read().toString()).toBe('status 2\n');
      } finally {
        t2.close();
      }
      // No local agent: said before asking the server.
      delete process.env.SSH_AUTH_SOCK;
      const third = t.openSession();
      expect(() => third.requestForwardAgent()).toThrow(/SSH_AUTH_SOCK is not set/);
    } finally {
      t.close();
    }
  });

  itWithPeers(['ssh-agent', 'sshd'], "sshConfig's IdentityAgent logs in with that agent's keys; ForwardAgent forwards it (or another) on every session, as ssh", () => {
    delete process.env.SSH_AUTH_SOCK;
    process.env.PTS_OTHER_AGENT = certAgent.socketPath;
    const config = join(dir, 'agent_config');
    const host = (name: string, ...extra: string[]) => [`Host ${name}`, `  HostName ${sshd.host}`, `  Port ${sshd.port}`, `  User ${sshd.user.username}`, '  StrictHostKeyChecking no', '  UserKnownHostsFile none', ...extra.map((l) => `  ${l}`)];
    writeFileSync(
      config,
      [
        ...host('fwd', `IdentityAgent ${agent.socketPath}`, 'ForwardAgent yes'),
        ...host('other', `IdentityAgent ${agent.socketPath}`, 'ForwardAgent $PTS_OTHER_AGENT'),
        ...host('login', `IdentityAgent ${agent.socketPath}`),
        ...host('none', 'IdentityAgent none'),
      ].join('\n'),
    );
    const connect = (alias: string): SSHClient => {
      const c = new SSHClient();
      c.connect(alias, { sshConfig: config, lookForKeys: false, timeout: 10 });
      return c;
    };
    const listed = (out: string): string[] => out.split('\n').filter(Boolean).map((l) => l.split(' ')[1]).sort();
    const ours = new Agent({ socketPath: agent.socketPath }).getKeys().map((k) => k.fingerprint).sort();
    const theirs = new Agent({ socketPath: certAgent.socketPath }).getKeys().map((k) => k.fingerprint);
    try {
      // SSH_AUTH_SOCK is unset: the login and the forwarded agent are the file's.
      const fwd = connect('fwd');
      try {
        const [, out] = fwd.execCommand('ssh-add -l');
        expect(listed(out.read().toString())).toEqual(ours);
        expect(fwd.run('ssh-add -l', { check: true }).stdout).toContain(ours[0]);
        const shell = fwd.invokeShell();
        shell.settimeout(10);
        shell.send('ssh-add -l >/dev/null && echo "agent there"; exit\n');
        expect(shell.makefile().read().toString()).toContain('agent there');
      } finally {
        fwd.close();
      }
      // ForwardAgent $NAME: another agent goes to the server than the one that logged in.
      const other = connect('other');
      try {
        const out = other.run('ssh-add -l').stdout as string;
        expect(listed(out)).toEqual([...theirs].sort());
        for (const f of ours) expect(out).not.toContain(f);
      } finally {
        other.close();
      }
      // No ForwardAgent: nothing forwarded (ssh-add: 2, no agent).
      const login = connect('login');
      try {
        expect(login.run('ssh-add -l >/dev/null 2>&1; echo "status $?"').stdout).toBe('status 2\n');
      } finally {
        login.close();
      }
      // Without a config, AsyncSSH's agentPath and agentForwarding do the same; the caller's choice wins over the file's.
      const direct = new SSHClient();
      try {
        direct.setMissingHostKeyPolicy(new AutoAddPolicy());
        direct.connect(sshd.host, { port: sshd.port, username: sshd.user.username, agentPath: agent.socketPath, agentForwarding: true, lookForKeys: false, timeout: 10 });
        expect(listed(direct.run('ssh-add -l').stdout as string)).toEqual(ours);
      } finally {
        direct.close();
      }
      const unforwarded = new SSHClient();
      try {
        unforwarded.connect('fwd', { sshConfig: config, lookForKeys: false, timeout: 10, agentForwarding: false });
        expect(unforwarded.run('ssh-add -l >/dev/null 2>&1; echo "status $?"').stdout).toBe('status 2\n');
      } finally {
        unforwarded.close();
      }
      // IdentityAgent none: no agent at all, even with SSH_AUTH_SOCK set.
      process.env.SSH_AUTH_SOCK = agent.socketPath;
      expect(() => connect('none')).toThrow(/No authentication methods available/);
    } finally {
      delete process.env.PTS_OTHER_AGENT;
    }
  });

  itWithPeers(['ssh-agent', 'sshd'], "addKeys, removeKeys, removeAll, lock and unlock (ssh-add's jobs) against ssh-agent; every key added signs a login", async () => {
    const fresh = await startAgent();
    try {
      const a = new Agent({ socketPath: fresh.socketPath });
      expect(a.getKeys()).toEqual([]);
      // A PKey and key files by path; each with its comment. Then logins with each: the private fields arrived whole.
      a.addKeys([PKey.fromPath(keys.ed25519.path), keys.ecdsa.path, keys.rsa.path]);
      const listed = fresh.list().map((l) => l.split(' ').slice(0, 3).join(' '));
      expect(listed.sort()).toEqual(['ed25519', 'ecdsa', 'rsa'].map((t) => `${keys[t].publicKey.trim()} agent-${t}`).sort());
      expect(a.getKeys().map((k) => k.comment)).toEqual(['agent-ed25519', 'agent-ecdsa', 'agent-rsa']);
      for (const k of a.getKeys()) {
        const t = transport();
        try {
          expect(t.authPublickey(sshd.user.username, k)).toEqual([]);
        } finally {
          t.close();
        }
      }
      // A key with its certificate goes in twice, as ssh-add adds it; the certificate logs in on the CA alone.
      const ca = join(dir, 'ca');
      const ecdsaCert = generateKey(join(dir, 'add_cert_ecdsa'), 'ecdsa', { comment: 'cert-ecdsa' });
      signCertificate(ca, ecdsaCert.publicKeyPath, false, { principals: [sshd.user.username] });
      a.addKeys([certKeys.ed25519.path, certKeys.rsa.path, ecdsaCert.path]);
      const certs = a.getKeys().filter((k) => k.publicBlob);
      expect(certs.map((k) => k.publicBlob!.keyType).sort()).toEqual(['ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ssh-ed25519-cert-v01@openssh.com', 'ssh-rsa-cert-v01@openssh.com']);
      expect(a.getKeys()).toHaveLength(9);
      for (const k of certs) {
        const t = transport();
        try {
          expect(t.authPublickey(sshd.user.username, k)).toEqual([]);
        } finally {
          t.close();
        }
      }
      // removeKeys: an AgentKey; a PKey with its certificate takes both out; a key not held is refused.
      a.removeKeys(a.getKeys().find((k) => k.comment === 'agent-rsa')!);
      a.removeKeys(PKey.fromPath(certKeys.ed25519.path));
      expect(a.getKeys()).toHaveLength(6);
      expect(fresh.list().some((l) => l.includes('agent-rsa'))).toBe(false);
      expect(() => a.removeKeys(PKey.fromPath(keys.rsa.path))).toThrow(/the agent refused to remove the ssh-rsa key SHA256:/);
      // lock: the agent lists nothing and takes nothing until unlocked with the same passphrase.
      a.lock('sesame');
      expect(a.getKeys()).toEqual([]);
      expect(() => a.addKeys(keys.rsa.path)).toThrow(/the agent refused to add the ssh-rsa key/);
      expect(() => a.unlock('open up')).toThrow(/refused to unlock/);
      a.unlock('sesame');
      expect(a.getKeys()).toHaveLength(6);
      // lifetime: the agent drops the key by itself.
      a.removeAll();
      expect(a.getKeys()).toEqual([]);
      expect(fresh.list()).toEqual([]);
      // 3 s: a loaded CI machine once took over a second between the add and the list.
      a.addKeys(keys.ed25519.path, { lifetime: 3 });
      expect(a.getKeys()).toHaveLength(1);
      blockUntil(() => fresh.list().length === 0, 15);
      expect(fresh.list()).toEqual([]);
      // What cannot be added, and an Agent with no socket.
      expect(() => a.addKeys(PKey.fromBlob(Buffer.from(keys.ed25519.publicKey.split(' ')[1], 'base64')))).toThrow(/only a private key can be added/);
      expect(() => a.addKeys(new Agent({ socketPath: agent.socketPath }).getKeys()[0])).toThrow(/only a private key can be added/);
      expect(() => a.addKeys(keys.ed25519.path, { lifetime: 0.5 })).toThrow(TypeError);
      expect(() => new Agent({ socketPath: null }).removeAll()).toThrow(/SSH_AUTH_SOCK is not set/);
    } finally {
      await fresh.stop();
    }
  });

  itWithPeers(['ssh-agent', 'sshd'], "agent forwarding with a handler function (Paramiko's form): it gets each agent channel, no local agent needed", () => {
    const keys = new Agent({ socketPath: agent.socketPath }).getKeys();
    delete process.env.SSH_AUTH_SOCK;
    const t = transport();
    try {
      t.authPublickey(sshd.user.username, keys[0]);
      const chan = t.openSession();
      const got: Channel[] = [];
      expect(chan.requestForwardAgent((ch: Channel) => got.push(ch))).toBe(true);
      chan.execCommand('ssh-add -l; echo "status $?"');
      // The handler runs on this thread while it blocks in a call.
      blockUntil(() => got.length > 0, 20);
      expect(got).toHaveLength(1);
      const agentChan = got[0];
      expect(agentChan.kind).toBe('auth-agent@openssh.com');
      agentChan.settimeout(20);
      // ssh-add -l asks for the identities (SSH2_AGENTC_REQUEST_IDENTITIES, 11): answer none.
      let request = Buffer.alloc(0);
      while (request.length < 5) {
        const more = agentChan.recv(5 - request.length);
        if (!more.length) break;
        request = Buffer.concat([request, more]);
      }
      expect([...request]).toEqual([0, 0, 0, 1, 11]);
      agentChan.sendall(Buffer.from([0, 0, 0, 5, 12, 0, 0, 0, 0]));
      chan.settimeout(20);
      expect(chan.makefile().read().toString()).toBe('The agent has no identities.\nstatus 1\n');
    } finally {
      t.close();
    }
  });

  itWithPeers(['ssh-agent', 'sshd'], "agent forwarding that comes and goes (our SSHServer's proxy socket, the client's handler and its channels) leaves nothing in the worker", () => {
    // In a child with --expose-gc, as the come-and-go test of spec/ssh-server.spec.ts: each
    // round forwards the agent to a session of an SSHServer of the child, where ssh-add lists
    // the keys through the server's proxy socket, a channel back and the client's handler.
    const script = `
      const { AgentRequestHandler, AutoAddPolicy, SSHClient, SSHServer } = require('./dist/index.js');
      const { getBridge } = require('./dist/bridge');
      const fs = require('node:fs');
      const server = SSHServer.start({ users: { u: 'p' }, shell: '/bin/sh' });
      const fds = fs.readdirSync('/proc/self/fd').length;
      const outputs = new Set();
      try {
        for (let i = 0; i < 8; i++) {
          const c = new SSHClient();
          c.setMissingHostKeyPolicy(new AutoAddPolicy());
          c.connect(server.host, { port: server.port, username: 'u', password: 'p', allowAgent: false, lookForKeys: false });
          const chan = c.getTransport().openSession();
          new AgentRequestHandler(chan);
          chan.execCommand('ssh-add -l');
          chan.settimeout(20);
          outputs.add(chan.makefile().read().toString().split('\\n').filter(Boolean).length);
          if (i % 2) chan.close();
          c.close();
        }
        const live = () => getBridge().call('bridge', 'live', {}, 10);
        let n = live();
        for (let waited = 0; Object.keys(n).length > 0 && waited < 1000; waited += 50) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
          n = live();
        }
        console.log(JSON.stringify({ live: n, keysListed: [...outputs], fds: fs.readdirSync('/proc/self/fd').length - fds }));
      } finally {
        server.close();
      }
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], {
      cwd: join(__dirname, '..'),
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, SSH_AUTH_SOCK: agent.socketPath },
    });
    expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: null, stderr: '' });
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ live: {}, keysListed: [Object.keys(keys).length], fds: 0 });
  });

  itWithPeers(['ssh-agent', 'sshd'], 'new Agent() lists the keys of SSH_AUTH_SOCK: types, fingerprints, comments', () => {
    process.env.SSH_AUTH_SOCK = agent.socketPath;
    using a = new Agent();
    expect(a.socketPath).toBe(agent.socketPath);
    const got = a.getKeys();
    expect(got.map((k) => [k.getName(), k.fingerprint, k.comment])).toEqual([
      ['ssh-ed25519', keys.ed25519.fingerprint, 'agent-ed25519'],
      ['ecdsa-sha2-nistp256', keys.ecdsa.fingerprint, 'agent-ecdsa'],
      ['ssh-rsa', keys.rsa.fingerprint, 'agent-rsa'],
    ]);
    expect(got.map((k) => k.getBits())).toEqual([256, 256, 3072]);
    for (const [k, t] of got.map((k, i) => [k, ['ed25519', 'ecdsa', 'rsa'][i]] as const)) {
      expect(k).toBeInstanceOf(PKey);
      expect(k).toBeInstanceOf(AgentKey);
      expect(k.canSign()).toBe(true);
      expect(k.publicBlob).toBeNull();
      const pub = PKey.fromPublicKeyFile(keys[t].publicKeyPath);
      expect(k.equals(pub)).toBe(true);
      expect(pub.equals(k)).toBe(true);
      expect(k.asBytes()).toEqual(pub.asBytes());
      expect(k.getBase64()).toBe(pub.getBase64());
      expect(k.getFingerprint()).toEqual(pub.getFingerprint());
      expect(`${k.getName()} ${k.getBase64()}`).toBe(keys[t].publicKey);
    }
    expect(a.getKeys()).not.toBe(got); // a copy, as a tuple cannot be changed
    a.close();
    expect(a.getKeys()).toEqual([]);
  });

  itWithPeers(['ssh-agent'], 'a key added to or removed from the agent shows at the next new Agent()', () => {
    const other = generateKey(join(dir, 'id_other'), 'ed25519');
    const before = new Agent({ socketPath: agent.socketPath }).getKeys().length;
    agent.add(other.path);
    expect(new Agent({ socketPath: agent.socketPath }).getKeys().map((k) => k.fingerprint)).toContain(other.fingerprint);
    agent.remove(other.path);
    expect(new Agent({ socketPath: agent.socketPath }).getKeys()).toHaveLength(before);
  });

  itWithPeers(['ssh-agent'], 'agent signatures verify with the public key (RSA with each algorithm)', () => {
    const data = Buffer.from('the data to sign');
    for (const k of new Agent({ socketPath: agent.socketPath }).getKeys()) {
      const pub = PKey.fromPublicKeyLine(k.toPublicKeyLine());
      const algs = k.getName() === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [undefined];
      for (const alg of algs) {
        const sig = k.signSshData(data, alg);
        expect(sig.getText()).toBe(alg ?? k.getName());
        expect(k.verifySshSig(data, sig)).toBe(true);
        expect(pub.verifySshSig(data, sig)).toBe(true);
        expect(pub.verifySshSig(Buffer.from('other data'), sig)).toBe(false);
      }
    }
    // Paramiko's default for RSA: no flags, an ssh-rsa signature
    const rsa = new Agent({ socketPath: agent.socketPath }).getKeys()[2];
    expect(rsa.signSshData('text').getText()).toBe('ssh-rsa');
  });

  itWithPeers(['ssh-agent', 'sshd'], 'Transport.authPublickey with each agent key authenticates (RSA as rsa-sha2-512)', async () => {
    for (const k of new Agent({ socketPath: agent.socketPath }).getKeys()) {
      const t = transport();
      try {
        expect(t.authPublickey(sshd.user.username, k)).toEqual([]);
        expect(t.isAuthenticated()).toBe(true);
        const chan = t.openSession();
        chan.execCommand('echo agent');
        expect(chan.makefile().read().toString()).toBe('agent\n');
        chan.close();
      } finally {
        t.close();
      }
    }
    await sshd.waitForLog(new RegExp(`Accepted publickey for ${sshd.user.username} .*RSA SHA256`));
    expect(sshd.log()).toMatch(/attempting public key rsa-sha2-512 /);
    expect(sshd.log()).not.toMatch(/attempting public key (ssh-rsa|rsa-sha2-256) /);
  });

  itWithPeers(['ssh-agent', 'sshd'], 'a key the server does not know fails with AuthenticationException', () => {
    const t = transport();
    try {
      const stranger = new Agent({ socketPath: certAgent.socketPath }).getKeys().find((k) => !k.publicBlob)!;
      expect(() => t.authPublickey(sshd.user.username, stranger)).toThrow(AuthenticationException);
      expect(t.isAuthenticated()).toBe(false);
    } finally {
      t.close();
    }
  });

  itWithPeers(['ssh-agent', 'sshd'], 'user certificates held by the agent authenticate against TrustedUserCAKeys', async () => {
    const got = new Agent({ socketPath: certAgent.socketPath }).getKeys();
    // ssh-add adds each key, then its certificate
    expect(got.map((k) => k.identifiers().join(' '))).toEqual([
      'ssh-ed25519',
      'ssh-ed25519 ssh-ed25519-cert-v01@openssh.com',
      'ssh-rsa',
      'ssh-rsa ssh-rsa-cert-v01@openssh.com',
    ]);
    const certs = got.filter((k) => k.publicBlob);
    expect(certs.map((k) => k.fingerprint)).toEqual([certKeys.ed25519.fingerprint, certKeys.rsa.fingerprint]);
    for (const k of certs) {
      expect(k.publicBlob!.keyType).toBe(`${k.getName()}-cert-v01@openssh.com`);
      const t = transport();
      try {
        expect(t.authPublickey(sshd.user.username, k)).toEqual([]);
        expect(t.isAuthenticated()).toBe(true);
      } finally {
        t.close();
      }
    }
    await sshd.waitForLog(/Accepted publickey .*RSA-CERT SHA256:\S+ ID pts-test/);
    expect(sshd.log()).toMatch(/Accepted publickey .*ED25519-CERT SHA256:\S+ ID pts-test/);
    // the RSA certificate signs with SHA-2 too (the agent's flags apply to certificate identities)
    expect(sshd.log()).toMatch(/attempting public key rsa-sha2-512-cert-v01@openssh.com /);
  });

  itWithPeers(['ssh-agent', 'sshd'], 'SSHClient.connect with only the agent authenticates; allowAgent: false does not use it', () => {
    process.env.SSH_AUTH_SOCK = agent.socketPath;
    const connect = (options: Record<string, unknown> = {}) => {
      const c = new SSHClient();
      c.setMissingHostKeyPolicy(AutoAddPolicy);
      c.connect(sshd.host, { port: sshd.port, username: sshd.user.username, lookForKeys: false, ...options });
      return c;
    };
    using c = connect();
    const [, out] = c.execCommand('echo via-agent');
    expect(out.read().toString()).toBe('via-agent\n');
    expect(() => connect({ allowAgent: false })).toThrow(SSHException);
    expect(() => connect({ allowAgent: false })).toThrow(/No authentication methods available/);
    // no agent at all: nothing to try either
    delete process.env.SSH_AUTH_SOCK;
    expect(() => connect()).toThrow(AuthenticationException);
  });

  itWithPeers(['ssh-agent', 'sshd'], 'SSHClient skips agent keys the server refuses and goes on to the next', () => {
    // certAgent lists the plain ed25519 key first (not authorized), then its certificate
    process.env.SSH_AUTH_SOCK = certAgent.socketPath;
    using c = new SSHClient();
    c.setMissingHostKeyPolicy(AutoAddPolicy);
    c.connect(sshd.host, { port: sshd.port, username: sshd.user.username, lookForKeys: false });
    expect(c.getTransport()!.isAuthenticated()).toBe(true);
  });
});
