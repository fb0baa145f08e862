import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigParseError, CouldNotCanonicalize } from '../lib/errors';
import { SSHConfig, SSHConfigDict } from '../lib/config';
import { canonicalNameOf } from '../lib/config/canonicalize';
import type { HostResolver } from '../lib/config';
import { itWithPeers } from './support/peers';
import { corpusCases, differences, sshG } from './support/ssh-g';
import { acceptNewHostKey, rotateKnownHostKeys, algorithmList, algorithmsFromOptions, algorithmsOf, configuredHost, environmentOf, forwardAgentOf, identityAgentOf, keepaliveOf, knownHostsOf, optionsFromConfig, parseConfigTime, parseJumps, proxyOf, refusedPubkeyAlgorithms, rekeyLimitOf } from '../lib/api/client-config';
import { SSHClient } from '../lib/api/client';
import { HostKeys } from '../lib/hostkeys';
import { ECDSAKey, Ed25519Key, type PKey } from '../lib/keys';
import { defaultPreferences, supported } from '../lib/transport/algorithms';

const CORPUS = path.join(__dirname, 'config-corpus');
/** Set in both our process and ssh's environment, for ${VAR} expansion. */
const TEST_VAR = 'PARAMIKO_TS_TEST_VAR';
const me = os.userInfo();

let tmp: string;
/** A throw-away HOME whose .ssh is the corpus directory, so relative Includes find the fragments. */
let home: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paramiko-ts-config-'));
  home = path.join(tmp, 'home');
  fs.mkdirSync(home);
  fs.symlinkSync(CORPUS, path.join(home, '.ssh'));
  process.env[TEST_VAR] = '/run/paramiko-ts-test';
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  delete process.env[TEST_VAR];
});

const fromText = (text: string) => SSHConfig.fromText(text, { homeDir: home, includeDir: path.join(home, '.ssh') });

function writeTmp(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

// SSHConfig.lookup against OpenSSH's own resolver, `ssh -G`: see spec/support/ssh-g.ts for the
// corpus format and how values are compared (and which keys are normalised or skipped, and why).

describe('SSHConfig.lookup agrees with ssh -G', () => {
  const cases = corpusCases(CORPUS);

  it('has a corpus covering at least 8 config files', () => {
    expect(new Set(cases.map((c) => c.file)).size).toBeGreaterThanOrEqual(8);
  });

  for (const c of cases) {
    const flags = `${c.user ? ` -l ${c.user}` : ''}${c.port ? ` -p ${c.port}` : ''}`;
    itWithPeers(['ssh'], `${c.file}: ${c.kind} ${c.host}${flags}`, () => {
      const file = path.join(CORPUS, c.file);
      const env = { ...process.env, HOME: home };
      const ssh = sshG(file, c.host, { user: c.user, port: c.port, env });
      const baseline = sshG('/dev/null', c.host, { user: c.user, port: c.port, env });
      const config = SSHConfig.fromPath(file, { homeDir: home, includeDir: path.join(home, '.ssh') });
      const run = () => config.lookup(c.host, { user: c.user, port: c.port });
      if (c.kind === 'error') {
        expect(ssh.status).not.toBe(0);
        expect(run).toThrow(CouldNotCanonicalize);
        return;
      }
      expect(ssh.stderr).not.toMatch(/line \d+/);
      expect(ssh.status).toBe(0);
      const ours = run();
      expect(ours.hostname).toBe(ssh.values.get('hostname')?.[0]);
      expect(differences(ours, ssh.values, baseline.values, c.host)).toEqual([]);
    });
  }

  const BAD_CONFIGS: Array<[string, string, number]> = [
    ['a keyword without a value', 'Host x\n  User\n', 2],
    ['an unterminated quote', 'Host x\n  HostName "a.example\n', 2],
    ['two values for a single-valued keyword', 'Host *\n  User a b\n', 2],
    ['an unknown Match attribute', 'Match foo x\n  User u\n', 1],
    ['Match all combined with more', 'Match all host x\n  User u\n', 1],
    ['a Match criterion without its argument', 'Match host\n  User u\n', 1],
    ['an out-of-range port', '\nHost x\n  Port 0\n', 3],
    ['a SetEnv without =', 'Host *\n  SetEnv FOO\n', 2],
    ['an empty quoted value', 'Host *\n  User ""\n', 2],
  ];
  for (const [what, text, line] of BAD_CONFIGS) {
    itWithPeers(['ssh'], `rejects ${what}, as ssh -G does, naming line ${line}`, () => {
      const file = writeTmp('bad.config', text);
      expect(sshG(file, 'x', { env: { ...process.env, HOME: home } }).status).not.toBe(0);
      expect(() => SSHConfig.fromPath(file)).toThrow(new RegExp(`line ${line}\\b`));
      expect(() => SSHConfig.fromText(text)).toThrow(ConfigParseError);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Unit tests (no ssh needed).
// ---------------------------------------------------------------------------------------------

describe('SSHConfig parsing', () => {
  it('a line with no value is a ConfigParseError naming the line and keyword', () => {
    expect(() => SSHConfig.fromText('Host a\n\n  IdentityFile\n')).toThrow(ConfigParseError);
    expect(() => SSHConfig.fromText('Host a\n\n  IdentityFile\n')).toThrow(/line 3: no argument after keyword "identityfile"/);
  });

  it('names the file for fromPath and the line of a bad Match', () => {
    const file = writeTmp('badmatch.config', '# c\nMatch user\n');
    expect(() => SSHConfig.fromPath(file)).toThrow(`${file} line 2: Bad Match condition`);
  });

  it('reads key=value, key = value and key value alike, and lowercases keys', () => {
    const cfg = SSHConfig.fromText('HOST=x\nUser=a\nPORT = 2\n  IdentityFile\t/k\nhostname==odd\n').lookup('x');
    expect({ ...cfg }).toEqual({ user: 'a', port: '2', identityfile: ['/k'], hostname: '=odd' });
  });

  it('unquotes values, but keeps command lines verbatim for the shell', () => {
    const cfg = SSHConfig.fromText(
      'Host *\n  User "a b"\n  IdentityFile /x\\ y\n  HostKeyAlias \'q\'\n  ProxyCommand "nc" %h 22 # c\n',
    ).lookup('h');
    expect(cfg.user).toBe('a b');
    expect(cfg.identityfile).toEqual(['/x y']);
    expect(cfg.hostkeyalias).toBe('q');
    expect(cfg.proxycommand).toBe('"nc" h 22 # c');
  });

  it('ignores comments and blank lines and accepts CRLF line ends', () => {
    const cfg = SSHConfig.fromText('# top\r\n\r\nHost x # comment\r\n  User u # trailing\r\n   # indented\r\n').lookup('x');
    expect({ ...cfg }).toEqual({ user: 'u', hostname: 'x' });
  });

  it('refuses a keyword that would shadow an SSHConfigDict helper', () => {
    expect(() => SSHConfig.fromText('Keys x\n')).toThrow(/line 1: Bad configuration option: keys/);
  });

  it('keeps unknown keywords (first value wins), as Paramiko does', () => {
    expect(SSHConfig.fromText('Host *\n  FutureOption a b\n  FutureOption c\n').lookup('h').futureoption).toBe('a b');
  });

  it('parses text, buffers, file-like objects and line iterables; several parses are several files', () => {
    const config = new SSHConfig();
    config.parse('Host a\n  User first\n');
    config.parse(Buffer.from('User second\nPort 1\n'));
    config.parse({ read: () => 'Port 2\nCompression yes\n' });
    config.parse(['IdentityFile /k\n', 'Host a\n', '  User never\n']);
    expect({ ...config.lookup('a') }).toEqual({ user: 'first', port: '1', compression: 'yes', identityfile: ['/k'], hostname: 'a' });
    expect(SSHConfig.fromFile({ read: () => Buffer.from('Port 7\n') }).lookup('z').port).toBe('7');
  });
});

describe('SSHConfigDict', () => {
  const dict = new SSHConfigDict({ compression: 'YES', forwardagent: 'no', port: ' 2222 ', weird: 'x1', identityfile: ['/a'] });

  it('asBool is true for yes/true in any case and false otherwise', () => {
    expect(dict.asBool('compression')).toBe(true);
    expect(dict.asBool('forwardagent')).toBe(false);
    expect(new SSHConfigDict({ a: 'True' }).asBool('a')).toBe(true);
    expect(() => dict.asBool('missing')).toThrow(RangeError);
    expect(() => dict.asBool('identityfile')).toThrow(TypeError);
  });

  it('asInt parses an integer and refuses anything else', () => {
    expect(dict.asInt('port')).toBe(2222);
    expect(() => dict.asInt('weird')).toThrow(TypeError);
    expect(() => dict.asInt('missing')).toThrow(RangeError);
  });

  it('behaves as a plain record: only config keys are enumerable', () => {
    expect(Object.keys(dict)).toEqual(['compression', 'forwardagent', 'port', 'weird', 'identityfile']);
    expect(dict.keys()).toEqual(Object.keys(dict));
    expect(JSON.parse(JSON.stringify(dict))).toEqual({ ...dict });
    expect(dict['identityfile']).toEqual(['/a']);
    expect(dict.get('weird')).toBe('x1');
    expect(dict.get('missing')).toBeUndefined();
    expect(dict.get('missing', 'fallback')).toBe('fallback');
    expect(dict.has('port')).toBe(true);
    expect(dict.has('asBool')).toBe(false);
    expect(dict).toBeInstanceOf(SSHConfigDict);
  });

  it('is what lookup returns', () => {
    expect(SSHConfig.fromText('').lookup('h')).toBeInstanceOf(SSHConfigDict);
  });
});

describe('SSHConfig.getHostnames', () => {
  it('lists every Host pattern, negated and wildcard ones included, and those of Included files', () => {
    const inc = writeTmp('hosts.inc', 'Host from-include\n');
    const config = fromText(`Host a b\nHost *.example !c\nMatch host d\nHost a\nInclude ${inc}\n`);
    expect(config.getHostnames()).toEqual(new Set(['a', 'b', '*.example', '!c', 'from-include']));
  });
});

describe('lookup semantics', () => {
  it('defaults hostname to the name given, lowercased, and reports port and user only when set', () => {
    expect({ ...SSHConfig.fromText('Host *\n  Compression no\n').lookup('MyHost') }).toEqual({ compression: 'no', hostname: 'myhost' });
  });

  it('lets the caller user and port win, as ssh -l and -p do', () => {
    const cfg = SSHConfig.fromText('Host *\n  User u\n  Port 1\n').lookup('h', { user: 'cli', port: 2022 });
    expect([cfg.user, cfg.port]).toEqual(['cli', '2022']);
  });

  it('drops ProxyCommand none, and ProxyJump locks a later ProxyCommand out', () => {
    const config = SSHConfig.fromText('Host a\n  ProxyCommand none\nHost b\n  ProxyJump j\nHost *\n  ProxyCommand nc %h %p\n');
    expect(config.lookup('a').proxycommand).toBeUndefined();
    expect(config.lookup('b').proxycommand).toBeUndefined();
    expect(config.lookup('b').proxyjump).toBe('j');
    expect(config.lookup('c').proxycommand).toBe('nc c 22');
  });

  it('runs Match exec through the shell only when the earlier criteria hold', () => {
    const marker = path.join(tmp, 'exec-ran');
    const config = SSHConfig.fromText(`Match host other exec "touch ${marker}"\n  User no\nMatch exec "test %h = h"\n  User yes\n`);
    expect(config.lookup('h').user).toBe('yes');
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('token expansion', () => {
  const config = SSHConfig.fromText(
    [
      'Host *',
      '  HostName %h.example',
      '  User remote',
      '  Port 2200',
      '  IdentityFile ~/id_%h_%r_%p_%u_%n_%k_%i_%%',
      '  IdentityFile %d/%l/%L/%C',
      '  ProxyCommand ~/bin/p %h %p %r %n %u %d %x',
      '  LocalCommand run %h %T',
      '  IdentityAgent ~',
      `  ControlPath \${${TEST_VAR}}/cp`,
    ].join('\n'),
  );
  const host = os.hostname();

  it('expands each token as ssh_config(5) TOKENS defines it', () => {
    const cfg = config.lookup('Box', { localUser: 'me', homeDir: '/home/me' });
    const fqdn = 'box.example';
    expect(cfg.hostname).toBe(fqdn);
    const hash = createHash('sha1').update(`${host}${fqdn}2200remote`).digest('hex');
    expect(cfg.identityfile).toEqual([
      `/home/me/id_${fqdn}_remote_2200_me_Box_Box_${me.uid}_%`,
      `/home/me/${host}/${host.split('.')[0]}/${hash}`,
    ]);
  });

  it('applies only %h %n %p %r to ProxyCommand (no ~, %u or %d) and leaves LocalCommand as written', () => {
    const cfg = config.lookup('box', { homeDir: '/home/me' });
    expect(cfg.proxycommand).toBe('~/bin/p box.example 2200 remote box %u %d %x');
    expect(cfg.localcommand).toBe('run %h %T');
  });

  it('expands a bare ~ to the home directory with a slash, and ${VAR} from the environment', () => {
    const cfg = config.lookup('box', { homeDir: '/home/me' });
    expect(cfg.identityagent).toBe('/home/me/');
    expect(cfg.controlpath).toBe(`${process.env[TEST_VAR]}/cp`);
  });

  it('expands %h and %% in HostName; like OpenSSH, a name holding % is taken for an address and not lowercased', () => {
    expect(SSHConfig.fromText('HostName %h-%%\n').lookup('Box').hostname).toBe('Box-%');
    expect(SSHConfig.fromText('HostName %h.Example\n').lookup('Box').hostname).toBe('box.example');
  });

  it('refuses an undefined ${VAR}', () => {
    expect(() => SSHConfig.fromText('ControlPath ${PARAMIKO_TS_UNSET_VARIABLE}/x\n').lookup('h')).toThrow(ConfigParseError);
  });

  it('normalises numeric addresses and keeps them out of lowercasing', () => {
    expect(SSHConfig.fromText('').lookup('127.1').hostname).toBe('127.0.0.1');
    expect(SSHConfig.fromText('').lookup('0:0:0:0:0:FFFF:A00:1').hostname).toBe('::ffff:10.0.0.1');
    expect(SSHConfig.fromText('').lookup('FE80:0:0::1').hostname).toBe('fe80::1');
    expect(SSHConfig.fromText('').lookup('fe80:0::1%eth0').hostname).toBe('fe80::1%eth0');
    expect(SSHConfig.fromText('').lookup('ABCD::').hostname).toBe('ABCD::');
    expect(SSHConfig.fromText('').lookup('017.0x10.1').hostname).toBe('15.16.0.1');
  });
});

describe('Include', () => {
  it('reads files in lexical glob order, relative to includeDir', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'inc-'));
    fs.writeFileSync(path.join(dir, 'b.conf'), 'IdentityFile /b\n');
    fs.writeFileSync(path.join(dir, 'a.conf'), 'IdentityFile /a\nUser from-a\n');
    fs.writeFileSync(path.join(dir, 'c.txt'), 'IdentityFile /c\n');
    const cfg = SSHConfig.fromText('Include *.conf\nUser late\n', { includeDir: dir }).lookup('h');
    expect(cfg.identityfile).toEqual(['/a', '/b']);
    expect(cfg.user).toBe('from-a');
  });

  it('stops a recursion at the depth limit with a ConfigParseError', () => {
    const loop = writeTmp('loop.conf', '');
    fs.writeFileSync(loop, `Include ${loop}\n`);
    expect(() => SSHConfig.fromPath(loop)).toThrow(ConfigParseError);
    expect(() => SSHConfig.fromPath(loop)).toThrow(/too many recursive configuration includes/);
  });

  it('allows 16 levels of nesting, as OpenSSH', () => {
    let previous = writeTmp('nest-16.conf', 'User deepest\n');
    for (let i = 15; i >= 1; i--) previous = writeTmp(`nest-${i}.conf`, `Include ${previous}\n`);
    expect(SSHConfig.fromText(`Include ${previous}\n`).lookup('h').user).toBe('deepest');
  });
});

describe('canonicalisation', () => {
  const known = new Set(['web.corp.example', 'db.corp.example', 'fqdn.example']);
  const asked: string[] = [];
  const resolveHost: HostResolver = (name, family) => {
    asked.push(`${name}/${family}`);
    return known.has(name);
  };
  const text = [
    'Host web db fqdn.example.',
    '  CanonicalizeHostname yes',
    '  CanonicalDomains nowhere.example corp.example',
    'Host strict',
    '  CanonicalizeHostname yes',
    '  CanonicalizeFallbackLocal no',
    '  CanonicalDomains corp.example',
    'Host proxied',
    '  ProxyCommand nc %h %p',
    '  CanonicalizeHostname yes',
    'Host many',
    '  CanonicalizeHostname always',
    '  AddressFamily inet6',
    '  CanonicalizeMaxDots 3',
    '  ProxyJump j',
    '  CanonicalDomains corp.example',
    'Host *.corp.example',
    '  User from-canonical-name',
    'Match canonical',
    '  Port 2022',
  ].join('\n');
  const config = SSHConfig.fromText(text, { resolveHost });
  beforeEach(() => (asked.length = 0));

  it('tries each domain in turn and re-reads the config with the canonical name', () => {
    const cfg = config.lookup('web');
    expect(asked).toEqual(['web.nowhere.example/any', 'web.corp.example/any']);
    expect([cfg.hostname, cfg.user, cfg.port]).toEqual(['web.corp.example', 'from-canonical-name', '2022']);
  });

  it('resolves a name with a trailing dot as it is', () => {
    expect(config.lookup('fqdn.example.').hostname).toBe('fqdn.example');
    expect(asked).toEqual(['fqdn.example/any']);
  });

  it('throws CouldNotCanonicalize when nothing resolves and CanonicalizeFallbackLocal is no', () => {
    expect(() => config.lookup('strict')).toThrow(CouldNotCanonicalize);
  });

  it('leaves proxied names to the proxy unless CanonicalizeHostname is always', () => {
    expect(config.lookup('proxied').hostname).toBe('proxied');
    expect(asked).toEqual([]);
    config.lookup('many');
    expect(asked).toEqual(['many.corp.example/inet6']);
  });

  it('does not canonicalise names with more dots than CanonicalizeMaxDots', () => {
    const c = SSHConfig.fromText('CanonicalizeHostname yes\nCanonicalDomains corp.example\n', { resolveHost });
    expect(c.lookup('a.b.c').hostname).toBe('a.b.c');
    expect(asked).toEqual([]);
  });

  describe('CanonicalizePermittedCNAMEs', () => {
    // name -> what the resolver reports as its canonical name (where its CNAMEs lead)
    const cnames = new Map([
      ['web.corp.example', 'web-01.cdn.example'],
      ['bad.corp.example', 'bad.cdn.example'],
      ['plain.corp.example', 'plain.corp.example'],
      ['a.b.c', 'a.elsewhere.example'],
    ]);
    const questions: string[] = [];
    const resolver: HostResolver = (name) => {
      questions.push(name);
      return cnames.get(name) ?? false;
    };
    const conf = (rules: string, extra = '') =>
      SSHConfig.fromText(
        `Host *.cdn.example\n  User from-cname\nHost *\n  CanonicalizeHostname yes\n  CanonicalDomains corp.example\n  CanonicalizePermittedCNAMEs ${rules}\n${extra}`,
        { resolveHost: resolver },
      );
    beforeEach(() => (questions.length = 0));

    it('follows a CNAME that a rule permits, and re-reads the config with it', () => {
      const cfg = conf('*.corp.example:*.cdn.example').lookup('web');
      expect([cfg.hostname, cfg.user]).toEqual(['web-01.cdn.example', 'from-cname']);
    });

    it('keeps the name when no rule matches both sides, with negation and none honoured', () => {
      expect(conf('*.corp.example:*.other.example').lookup('web').hostname).toBe('web.corp.example');
      expect(conf('*.corp.example:!bad.cdn.example,*.cdn.example').lookup('bad').hostname).toBe('bad.corp.example');
      expect(conf('*.corp.example:!bad.cdn.example,*.cdn.example').lookup('web').hostname).toBe('web-01.cdn.example');
      expect(conf('*.elsewhere:*.cdn.example *.corp.example:*.cdn.example').lookup('web').hostname).toBe('web-01.cdn.example');
      expect(conf('none').lookup('web').hostname).toBe('web.corp.example');
      expect(conf('*:*').lookup('plain').hostname).toBe('plain.corp.example');
    });

    it('resolves a name canonicalisation skipped, follows its CNAME, and fails as ssh -G does when it does not resolve', () => {
      // Two dots: beyond CanonicalizeMaxDots 1, so no domain is tried; the name itself is.
      expect(conf('*:*').lookup('a.b.c').hostname).toBe('a.elsewhere.example');
      expect(questions).toEqual(['a.b.c']);
      expect(() => conf('*:*').lookup('nosuchhost')).toThrow(/Could not resolve hostname nosuchhost/);
      expect(() => conf('*:*').lookup('nosuchhost')).toThrow(CouldNotCanonicalize);
      // Without rules the fallback keeps the name, unresolved.
      expect(conf('none').lookup('nosuchhost').hostname).toBe('nosuchhost');
    });

    it('with CanonicalizeHostname no, resolves but never follows; a proxied name is not asked about', () => {
      const no = (rules: string) => SSHConfig.fromText(`CanonicalizeHostname no\nCanonicalizePermittedCNAMEs ${rules}\n`, { resolveHost: resolver });
      expect(no('*:*').lookup('web.corp.example').hostname).toBe('web.corp.example');
      expect(() => no('*:*').lookup('nosuchhost')).toThrow(CouldNotCanonicalize);
      expect(conf('*:*', '  ProxyJump jump').lookup('web').hostname).toBe('web');
      expect(questions).toEqual(['web.corp.example', 'nosuchhost']);
    });

    it('refuses malformed rules with OpenSSH\'s messages', () => {
      for (const [rules, message] of [
        ['nocolon', 'Invalid permitted CNAME "nocolon"'],
        ['foo:', 'Invalid permitted CNAME "foo:"'],
        ['none x:y', '"none" argument must appear alone'],
      ]) {
        expect(() => conf(rules)).toThrow(ConfigParseError);
        expect(() => conf(rules)).toThrow(message);
      }
    });

    it("reads the canonical name from getent's output", () => {
      expect(canonicalNameOf('10.0.0.7      STREAM web-01.cdn.example\n10.0.0.7      DGRAM  \n')).toBe('web-01.cdn.example');
      expect(canonicalNameOf('10.0.0.7      STREAM\n')).toBeNull();
      expect(canonicalNameOf('')).toBeNull();
    });
  });

  it('canonicalize(hostname, options, domains) follows Paramiko: candidate, fallback, or error', () => {
    expect(config.canonicalize('db', {}, ['x.example', 'corp.example'])).toBe('db.corp.example');
    expect(config.canonicalize('nope', {}, ['corp.example'])).toBe('nope');
    expect(() => config.canonicalize('nope', { canonicalizefallbacklocal: 'no' }, ['corp.example'])).toThrow(CouldNotCanonicalize);
  });
});

describe("SSHClient.connect's sshConfig: what it takes from a lookup", () => {
  it('ProxyJump hops in every form, and garbage refused', () => {
    expect(parseJumps('bastion')).toEqual([{ user: undefined, host: 'bastion', port: undefined }]);
    expect(parseJumps('ops@b1:2222,ssh://root@[::1]:22,[fe80::1]')).toEqual([
      { user: 'ops', host: 'b1', port: 2222 },
      { user: 'root', host: '::1', port: 22 },
      { user: undefined, host: 'fe80::1', port: undefined },
    ]);
    expect(() => parseJumps('a b')).toThrow(/cannot read ProxyJump hop "a b"/);
  });

  it('the first of ProxyJump and ProxyCommand wins; the caller wins over the file; IdentitiesOnly turns off agent and default keys', () => {
    const config = SSHConfig.fromText(['Host j', '  ProxyJump b', '  ProxyCommand nc %h %p', 'Host c', '  ProxyCommand nc %h %p', '  ProxyJump b', 'Host *', '  Port 2200', '  User ada', '  ConnectTimeout 7', '  Compression yes', '  IdentitiesOnly yes', '  IdentityFile /nonexistent/key', `  IdentityFile ${__filename}`].join('\n'));
    expect(proxyOf(config.lookup('j'))).toEqual({ jump: 'b' });
    expect(proxyOf(config.lookup('c'))).toEqual({ command: 'nc c 2200' });
    expect(proxyOf(config.lookup('x'))).toBeNull();
    const o = optionsFromConfig(config.lookup('x'), { username: 'bob', allowAgent: true });
    expect(o).toMatchObject({ port: 2200, username: 'bob', timeout: 7, compress: true, allowAgent: true, lookForKeys: false, keyFilename: [__filename], sshConfig: null });
  });

  it('ServerAliveInterval and ServerAliveCountMax for setKeepalive; 0 or none is off', () => {
    const config = SSHConfig.fromText(['Host a', '  ServerAliveInterval 15', 'Host b', '  ServerAliveInterval 10', '  ServerAliveCountMax 5', 'Host c', '  ServerAliveInterval 0'].join('\n'));
    expect(keepaliveOf(config.lookup('a'))).toEqual({ interval: 15, countMax: 3 });
    expect(keepaliveOf(config.lookup('b'))).toEqual({ interval: 10, countMax: 5 });
    expect(keepaliveOf(config.lookup('c'))).toBeNull();
    expect(keepaliveOf(config.lookup('d'))).toBeNull();
  });

  it("algorithm lists in OpenSSH's syntax: replace, +append, ^first, -remove with wildcards", () => {
    const defaults = ['a1', 'b1', 'b2', 'c1'];
    const known = [...defaults, 'x1'];
    expect(algorithmList('Ciphers', 'b2,a1', defaults, known)).toEqual(['b2', 'a1']);
    expect(algorithmList('Ciphers', '+x1,a1', defaults, known)).toEqual(['a1', 'b1', 'b2', 'c1', 'x1']);
    expect(algorithmList('Ciphers', '^c1,x1', defaults, known)).toEqual(['c1', 'x1', 'a1', 'b1', 'b2']);
    expect(algorithmList('Ciphers', '-b*,nothing-like-it', defaults, known)).toEqual(['a1', 'c1']);
    expect(() => algorithmList('Ciphers', 'a1,aes128-gmc', defaults, known)).toThrow(/Ciphers a1,aes128-gmc: unknown algorithm aes128-gmc/);
    expect(() => algorithmList('Ciphers', '-*', defaults, known)).toThrow(/leaves no algorithm/);
    // Names OpenSSH runs and we do not are left out, as the negotiation would; alone they leave nothing.
    expect(algorithmList('Ciphers', 'rijndael-cbc@lysator.liu.se,a1', defaults, known)).toEqual(['a1']);
    expect(() => algorithmList('MACs', 'umac-64-etm@openssh.com', defaults, known)).toThrow(/leaves no algorithm/);
  });

  it('Ciphers, MACs, KexAlgorithms and HostKeyAlgorithms against our defaults; the legacy ones can be added back', () => {
    const config = SSHConfig.fromText(['Host old', '  KexAlgorithms +diffie-hellman-group1-sha1', '  HostKeyAlgorithms ssh-rsa', '  Ciphers -chacha20*', '  MACs ^hmac-sha1', 'Host device', '  Ciphers +aes128-cbc,3des-cbc', '  MACs +hmac-md5,hmac-sha1-96', 'Host plain'].join('\n'));
    const d = defaultPreferences();
    const got = algorithmsOf(config.lookup('old'));
    expect(got.kex).toEqual([...d.kex, 'diffie-hellman-group1-sha1']);
    expect(got.hostKeys).toEqual(['ssh-rsa']);
    expect(got.ciphers).toEqual(d.ciphers.filter((c) => !c.startsWith('chacha20')));
    expect(got.macs).toEqual(['hmac-sha1', ...d.macs.filter((m) => m !== 'hmac-sha1')]);
    expect(algorithmsOf(config.lookup('plain'))).toEqual({});
    // The legacy ones an old device needs: supported, appended when named.
    expect(algorithmsOf(config.lookup('device'))).toEqual({ ciphers: [...d.ciphers, 'aes128-cbc', '3des-cbc'], macs: [...d.macs, 'hmac-md5', 'hmac-sha1-96'] });
    for (const kind of ['kex', 'hostKeys', 'ciphers', 'macs'] as const) for (const a of got[kind]!) expect(supported(kind)).toContain(a);
  });

  it("connect's algorithm lists (AsyncSSH's names): a list replaces, a string takes OpenSSH's forms; the wrong kind of name raises", () => {
    const d = defaultPreferences();
    expect(algorithmsFromOptions({})).toEqual({});
    expect(algorithmsFromOptions({ encryptionAlgs: '+aes128-cbc', macAlgs: ['hmac-sha1'], kexAlgs: '-sntrup*,mlkem*', serverHostKeyAlgs: '^ssh-rsa', compressionAlgs: ['zlib@openssh.com', 'none'] })).toEqual({
      ciphers: [...d.ciphers, 'aes128-cbc'],
      macs: ['hmac-sha1'],
      kex: d.kex.filter((k) => !k.startsWith('sntrup') && !k.startsWith('mlkem')),
      hostKeys: ['ssh-rsa', ...d.hostKeys.filter((k) => k !== 'ssh-rsa')],
      compression: ['zlib@openssh.com', 'none'],
    });
    expect(() => algorithmsFromOptions({ macAlgs: ['+hmac-md5'] })).toThrow(/use a string for OpenSSH's \+ form/);
    expect(() => algorithmsFromOptions({ encryptionAlgs: ['aes128-gcm'] })).toThrow(/encryptionAlgs aes128-gcm: unknown algorithm/);
  });

  it('SendEnv takes the matching names of this process, SetEnv its own pairs and wins a name both give', () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { PTS_A: 'a', PTS_B: 'b', OTHER_PTS: 'no' });
      const config = SSHConfig.fromText(['Host e', '  SendEnv PTS_? -PTS_?  PTS_A PTS_B', '  SendEnv -PTS_B', '  SetEnv PTS_A=set "PTS_C=with space"'].join('\n'));
      expect(environmentOf(config.lookup('e'))).toEqual({ PTS_A: 'set', PTS_C: 'with space' });
      expect(environmentOf(SSHConfig.fromText('Host *\n  SendEnv PTS_B').lookup('x'))).toEqual({ PTS_B: 'b' });
    } finally {
      for (const k of ['PTS_A', 'PTS_B', 'OTHER_PTS']) if (!(k in saved)) delete process.env[k];
    }
  });

  it('PubkeyAuthentication no, or PreferredAuthentications without publickey: no keys from the file, the agent or ~/.ssh', () => {
    const config = SSHConfig.fromText(['Host p', '  PubkeyAuthentication no', 'Host q', '  PreferredAuthentications keyboard-interactive,password', 'Host *', `  IdentityFile ${__filename}`].join('\n'));
    for (const host of ['p', 'q']) {
      expect(optionsFromConfig(config.lookup(host), {})).toMatchObject({ allowAgent: false, lookForKeys: false, keyFilename: null });
    }
    expect(optionsFromConfig(config.lookup('r'), {})).toMatchObject({ keyFilename: [__filename] });
    // The caller's own key still goes: its options win over the file's.
    expect(optionsFromConfig(config.lookup('p'), { keyFilename: 'k', allowAgent: true })).toMatchObject({ keyFilename: 'k', allowAgent: true });
  });

  it('AddressFamily, BindAddress, TCPKeepAlive (on unless no, as ssh) and RekeyLimit; the caller wins', () => {
    const config = SSHConfig.fromText(
      ['Host six', '  AddressFamily inet6', '  BindAddress 127.0.0.2', '  TCPKeepAlive no', '  RekeyLimit 512K 1h30m', 'Host four', '  AddressFamily INET', '  RekeyLimit default 60', 'Host bad', '  AddressFamily ipx'].join('\n'),
    );
    expect(optionsFromConfig(config.lookup('six'), {})).toMatchObject({ family: 6, localAddr: '127.0.0.2', tcpKeepalive: false, rekeyBytes: 512 * 1024, rekeySeconds: 5400 });
    expect(optionsFromConfig(config.lookup('four'), {})).toMatchObject({ family: 4, tcpKeepalive: true, rekeyBytes: undefined, rekeySeconds: 60 });
    expect(optionsFromConfig(config.lookup('four'), {}).localAddr).toBeUndefined();
    expect(optionsFromConfig(config.lookup('x'), {})).toMatchObject({ family: 0, tcpKeepalive: true });
    expect(optionsFromConfig(config.lookup('six'), { family: 4, localAddr: '127.0.0.3', tcpKeepalive: true, rekeyBytes: 99 })).toMatchObject({ family: 4, localAddr: '127.0.0.3', tcpKeepalive: true, rekeyBytes: 99, rekeySeconds: 5400 });
    expect(() => optionsFromConfig(config.lookup('bad'), {})).toThrow(/AddressFamily ipx: want any, inet or inet6/);
  });

  it('PubkeyAcceptedAlgorithms (or PubkeyAcceptedKeyTypes) becomes disabledAlgorithms.pubkeys; the caller\'s own wins', () => {
    expect(refusedPubkeyAlgorithms('-ssh-rsa*')).toEqual(['ssh-rsa']);
    expect(refusedPubkeyAlgorithms('ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512')).toEqual(['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-256', 'ssh-rsa', 'ssh-dss']);
    expect(refusedPubkeyAlgorithms('+ssh-dss')).toEqual([]);
    expect(refusedPubkeyAlgorithms('+sk-ssh-ed25519@openssh.com')).toEqual([]);
    expect(() => refusedPubkeyAlgorithms('ssh-ed448')).toThrow(/PubkeyAcceptedAlgorithms ssh-ed448: unknown algorithm/);
    const config = SSHConfig.fromText(['Host old', '  PubkeyAcceptedKeyTypes -ecdsa*', 'Host new', '  PubkeyAcceptedAlgorithms ssh-ed25519'].join('\n'));
    expect(optionsFromConfig(config.lookup('old'), { disabledAlgorithms: { ciphers: ['aes128-ctr'] } }).disabledAlgorithms).toEqual({
      ciphers: ['aes128-ctr'],
      pubkeys: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'],
    });
    expect(optionsFromConfig(config.lookup('new'), { disabledAlgorithms: { pubkeys: ['ssh-rsa'] } }).disabledAlgorithms).toEqual({ pubkeys: ['ssh-rsa'] });
    expect(optionsFromConfig(config.lookup('x'), {}).disabledAlgorithms).toBeUndefined();
  });

  it('ConnectionAttempts: 1 unless set; zero or junk raises before connecting; UpdateHostKeys only for yes', () => {
    const config = SSHConfig.fromText(['Host three', '  ConnectionAttempts 3', '  UpdateHostKeys yes', 'Host zero', '  ConnectionAttempts 0', 'Host ask', '  UpdateHostKeys ask'].join('\n'));
    expect(configuredHost(config.lookup('three'))).toMatchObject({ connectionAttempts: 3, updateHostKeys: true });
    expect(configuredHost(config.lookup('ask'))).toMatchObject({ connectionAttempts: 1, updateHostKeys: false });
    expect(() => configuredHost(config.lookup('zero'))).toThrow(/ConnectionAttempts 0: want a whole number from 1/);
  });

  it('RekeyLimit sizes and times as ssh_config(5) writes them', () => {
    expect(rekeyLimitOf('1G')).toEqual({ bytes: 1 << 30, seconds: undefined });
    expect(rekeyLimitOf('16 none')).toEqual({ bytes: 16, seconds: undefined });
    expect(rekeyLimitOf('0 2m')).toEqual({ bytes: undefined, seconds: 120 });
    expect(rekeyLimitOf('4m 1w1d')).toEqual({ bytes: 4 << 20, seconds: 8 * 86400 });
    expect(() => rekeyLimitOf('15')).toThrow(/at least 16/);
    expect(() => rekeyLimitOf('1T')).toThrow(/RekeyLimit 1T/);
    expect(() => rekeyLimitOf('1G soon')).toThrow(/RekeyLimit 1G soon: the time/);
    expect([parseConfigTime('90'), parseConfigTime('1H5S'), parseConfigTime('1h 5s'), parseConfigTime('')]).toEqual([90, 3605, null, null]);
  });

  it('IdentityAgent and ForwardAgent: a path, none, SSH_AUTH_SOCK or $NAME; yes forwards the agent used for login', () => {
    const saved = { sock: process.env.SSH_AUTH_SOCK, other: process.env.PTS_AGENT };
    try {
      process.env.SSH_AUTH_SOCK = '/run/env.sock';
      process.env.PTS_AGENT = '/run/other.sock';
      const config = SSHConfig.fromText(
        [
          'Host path', '  IdentityAgent ~/agent.sock', '  ForwardAgent yes',
          'Host none', '  IdentityAgent none', '  ForwardAgent yes',
          'Host env', '  IdentityAgent SSH_AUTH_SOCK', '  ForwardAgent $PTS_AGENT',
          'Host var', '  IdentityAgent $PTS_AGENT', '  ForwardAgent /run/fwd.sock',
          'Host plain', '  ForwardAgent yes',
          'Host off', '  ForwardAgent no',
        ].join('\n'),
      );
      const both = (h: string) => {
        const d = config.lookup(h);
        return [identityAgentOf(d), forwardAgentOf(d, identityAgentOf(d))];
      };
      expect(both('path')).toEqual([path.join(os.homedir(), 'agent.sock'), path.join(os.homedir(), 'agent.sock')]);
      expect(both('none')).toEqual([null, null]);
      expect(both('env')).toEqual(['/run/env.sock', '/run/other.sock']);
      expect(both('var')).toEqual(['/run/other.sock', '/run/fwd.sock']);
      expect(both('plain')).toEqual([undefined, '/run/env.sock']);
      expect(both('off')).toEqual([undefined, null]);
      // IdentityAgent none keeps the agent out of login unless the caller asks for it.
      expect(optionsFromConfig(config.lookup('none'), {}).allowAgent).toBe(false);
      expect(optionsFromConfig(config.lookup('none'), { allowAgent: true }).allowAgent).toBe(true);
      expect(optionsFromConfig(config.lookup('path'), {}).allowAgent).toBeUndefined();
      delete process.env.SSH_AUTH_SOCK;
      expect(both('plain')).toEqual([undefined, null]);
    } finally {
      for (const [k, v] of [['SSH_AUTH_SOCK', saved.sock], ['PTS_AGENT', saved.other]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('PasswordAuthentication, KbdInteractiveAuthentication (or ChallengeResponseAuthentication), RequestTTY and RemoteCommand', () => {
    const config = SSHConfig.fromText(
      [
        'Host nopw', '  PasswordAuthentication no', '  RequestTTY force', '  RemoteCommand echo %h',
        'Host nokbd', '  ChallengeResponseAuthentication no', '  RequestTTY no', '  RemoteCommand none',
        'Host pref', '  PreferredAuthentications publickey,keyboard-interactive', '  RequestTTY yes',
        'Host odd', '  RequestTTY sometimes',
      ].join('\n'),
    );
    expect(configuredHost(config.lookup('nopw'))).toMatchObject({ password: { password: false, keyboardInteractive: true }, requestTty: 'force', remoteCommand: 'echo nopw' });
    expect(configuredHost(config.lookup('nokbd'))).toMatchObject({ password: { password: true, keyboardInteractive: false }, requestTty: 'no', remoteCommand: null });
    expect(configuredHost(config.lookup('pref'))).toMatchObject({ password: { password: false, keyboardInteractive: true }, requestTty: 'yes' });
    expect(configuredHost(config.lookup('x'))).toMatchObject({ password: { password: true, keyboardInteractive: true }, requestTty: 'auto', remoteCommand: null, forwardAgent: null });
    expect(() => configuredHost(config.lookup('odd'))).toThrow(/RequestTTY sometimes: want auto, no, yes or force/);
  });

  it('StrictHostKeyChecking and the known_hosts files; an accepted key is appended (hashed under HashKnownHosts)', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-known-'));
    try {
      const key = Ed25519Key.generate();
      const other = Ed25519Key.generate();
      const user = path.join(tmp, 'sub', 'known_hosts');
      const global = path.join(tmp, 'global_known_hosts');
      fs.writeFileSync(global, `[h]:2222 ${other.getName()} ${other.getBase64()}`); // no final newline
      const config = SSHConfig.fromText(
        [
          'Host tofu', '  StrictHostKeyChecking accept-new', '  HashKnownHosts yes',
          'Host careful', '  StrictHostKeyChecking ask',
          'Host careless', '  StrictHostKeyChecking off', '  UserKnownHostsFile none',
          'Host odd', '  StrictHostKeyChecking maybe',
          'Host *', `  UserKnownHostsFile ${user} ${path.join(tmp, 'missing')}`, `  GlobalKnownHostsFile ${global}`,
        ].join('\n'),
      );
      const tofu = knownHostsOf(config.lookup('tofu'));
      expect(tofu).toMatchObject({ checking: 'accept', saveTo: user, hashed: true });
      expect(tofu.keys.lookup('[h]:2222')!.get(other.getName())!.equals(other)).toBe(true);
      expect(knownHostsOf(config.lookup('careful')).checking).toBe('reject');
      expect(knownHostsOf(config.lookup('careless'))).toMatchObject({ checking: 'accept', saveTo: null });
      expect(knownHostsOf(config.lookup('x')).checking).toBeNull();
      expect(() => knownHostsOf(config.lookup('odd'))).toThrow(/StrictHostKeyChecking maybe: want yes, accept-new, no or ask/);

      const client = new SSHClient();
      acceptNewHostKey(client, tofu, '[h]:22', key);
      acceptNewHostKey(client, tofu, 'plain', other);
      expect(client.getHostKeys().lookup('[h]:22')!.get(key.getName())!.equals(key)).toBe(true);
      const lines = fs.readFileSync(user, 'utf8').split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(/^\|1\|\S+\|\S+ ssh-ed25519 /);
      expect(new HostKeys(user).lookup('plain')!.get(other.getName())!.equals(other)).toBe(true);
      // A file without a final newline gets one before the new line.
      acceptNewHostKey(client, { ...tofu, saveTo: global, hashed: false }, 'added', key);
      expect(fs.readFileSync(global, 'utf8').split('\n')).toEqual([`[h]:2222 ${other.getName()} ${other.getBase64()}`, `added ${key.getName()} ${key.getBase64()}`, '']);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('UpdateHostKeys rotation: keys taken off and new ones recorded in one atomic rewrite (hashed under HashKnownHosts)', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pts-rotate-'));
    try {
      // The server now offers `kept` and an ECDSA key (`fresh`); its old ECDSA key is gone.
      const [kept, old, fresh, elsewhere] = [Ed25519Key.generate(), ECDSAKey.generate({ bits: 256 }), ECDSAKey.generate({ bits: 256 }), Ed25519Key.generate()];
      const l = (names: string, k: PKey): string => `${names} ${k.getName()} ${k.getBase64()}`;
      const file = path.join(tmp, 'known_hosts');
      const before = ['# a comment stays', l('[h]:22', kept), l('[h]:22', old), l('other', elsewhere)];
      fs.writeFileSync(file, before.join('\n') + '\n');
      const inode = fs.statSync(file).ino;
      const known = { keys: new HostKeys(file), checking: null, saveTo: file, hashed: true };
      rotateKnownHostKeys(known, '[h]:22', (k) => k.equals(kept) || k.equals(fresh), [fresh]);
      const after = fs.readFileSync(file, 'utf8').trim().split('\n');
      // Written to a temp file and renamed over the old one: a reader sees the old file or the new.
      expect(fs.statSync(file).ino).not.toBe(inode);
      expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
      expect(after).not.toContain(before[2]);
      expect(after).toContain(before[3]);
      expect(after).toHaveLength(4);
      expect(after[3]).toMatch(/^\|1\|\S+\|\S+ ecdsa-sha2-nistp256 /);
      const onDisk = new HostKeys(file).lookup('[h]:22')!;
      expect(onDisk.get('ssh-ed25519')!.equals(kept)).toBe(true);
      expect(onDisk.get('ecdsa-sha2-nistp256')!.equals(fresh)).toBe(true);
      // Nothing to take off or add: the file is left as it is.
      const mtime = fs.statSync(file).mtimeMs;
      const ino = fs.statSync(file).ino;
      rotateKnownHostKeys(known, '[h]:22', () => true, []);
      expect(fs.statSync(file)).toMatchObject({ ino, mtimeMs: mtime });
      // No file: nothing is created (the caller appends instead).
      rotateKnownHostKeys({ ...known, saveTo: path.join(tmp, 'missing') }, '[h]:22', () => false, [fresh]);
      expect(fs.existsSync(path.join(tmp, 'missing'))).toBe(false);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

