#!/usr/bin/env node
'use strict';
/**
 * A hostile SSH server for spec/client-hostile.spec.ts: it does the key exchange with the
 * library's own sans-I/O Session (server role, a fresh Ed25519 host key), answers just enough
 * of auth and the connection protocol to bring the client to a chosen point, then misbehaves.
 * Plain JavaScript over dist/, so that it runs as a child process without ts-jest: the test's
 * main thread blocks inside the client's calls, so the server cannot live in the same process.
 *
 *   node fake-server.js <mode> [--cipher NAME] [--mac NAME] [--type N]
 *
 * Listens on 127.0.0.1:<free port> and prints "READY <port>"; then one line per event the
 * tests look for ("UNIMPLEMENTED <seq>", "SENT <type> <seq>"...). Serves any number of
 * connections; exits on SIGTERM/SIGKILL, or when its stdin closes (the test runner died).
 *
 * Modes (what the server does instead of behaving):
 *   http            answers an HTTP error response and closes, as a web server on port 22 would
 *   garbage         sends 1 KiB of binary without a newline, then waits
 *   ssh1            identifies as SSH-1.5, then waits
 *   silent          sends its identification, then nothing (no KEXINIT)
 *   mute            sends nothing at all
 *   badmac          answers SERVICE_REQUEST with a packet whose MAC/tag has one bit flipped
 *   oversize        answers SERVICE_REQUEST with a packet length field of 0x7fffffff
 *   truncated       answers SERVICE_REQUEST with half a packet, then closes the TCP connection
 *   disconnect      answers USERAUTH_REQUEST with SSH_MSG_DISCONNECT
 *   unexpected      answers USERAUTH_REQUEST with a CHANNEL_DATA (no channel exists yet)
 *   unknown         answers USERAUTH_REQUEST with message --type (default 200), then SUCCESS
 *   close-mid-exec  on exec, sends some output and then destroys the TCP connection
 *   no-open-reply   never answers CHANNEL_OPEN
 *   exit-race       on exec: data, EOF, then (a tick later) exit-status 7 and CLOSE
 *   window-overrun  on exec "over N": the client's whole window and N bytes more at once, no
 *                   WINDOW_ADJUST awaited, then exit-status 0, EOF and CLOSE
 *   zlib-cross      (with --compression zlib@openssh.com) answers USERAUTH_REQUEST with an IGNORE,
 *                   then sends USERAUTH_SUCCESS, starting delayed compression, as soon as the
 *                   client sends anything, before reading it (or after 300 ms of silence):
 *                   what a packet the client sent while waiting for the answer meets when it
 *                   crosses the SUCCESS on the wire
 *   zlib-same-read  (with --compression zlib@openssh.com) sends USERAUTH_SUCCESS and, in the same
 *                   TCP segment, the first compressed packets (OpenSSH's hostkeys-00 global
 *                   request and a DEBUG message, as sshd sends right after auth)
 *   kex-fuzz        (with --seed N) flips bytes in the payloads of its key exchange packets
 *                   (KEXINIT, the reply with its host key and signature), drawn from --seed and
 *                   the connection's number; prints "KEX-FUZZED <connection> <n>" per packet changed
 *   fuzz            (with --seed N) on exec, sends 1-40 connection-layer messages drawn from
 *                   --seed and the connection's number: data, window adjusts, channel and global
 *                   requests, opens, stray replies, valid and mutated, then exits the command as
 *                   usual; prints "FUZZED <connection>"
 */
const net = require('node:net');
const path = require('node:path');

const dist = path.join(__dirname, '..', '..', '..', 'dist');
const { Session } = require(path.join(dist, 'transport', 'session.js'));
const { defaultPreferences } = require(path.join(dist, 'transport', 'algorithms.js'));
const { MSG } = require(path.join(dist, 'transport', 'constants.js'));
const { Message } = require(path.join(dist, 'wire', 'message.js'));
const { Ed25519Key } = require(path.join(dist, 'keys', 'ed25519.js'));
const { channelTraffic, seeded } = require('../fuzz.js');

const mode = process.argv[2];
const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const MODES = [
  'http', 'garbage', 'ssh1', 'silent', 'mute', 'badmac', 'oversize', 'truncated', 'disconnect',
  'unexpected', 'unknown', 'close-mid-exec', 'no-open-reply', 'exit-race', 'window-overrun', 'zlib-cross',
  'zlib-same-read', 'fuzz', 'kex-fuzz',
];
if (!MODES.includes(mode)) {
  process.stderr.write(`fake-server: unknown mode ${JSON.stringify(mode)} (one of ${MODES.join(', ')})\n`);
  process.exit(2);
}

const hostKey = Ed25519Key.generate();
const preferences = defaultPreferences();
if (opt('cipher')) preferences.ciphers = [opt('cipher')];
if (opt('mac')) preferences.macs = [opt('mac')];
if (opt('compression')) preferences.compression = [opt('compression')];

const say = (line) => process.stdout.write(line + '\n');
const msg = (type) => new Message().addByte(type);

/** Identification-stage modes: no SSH at all, or not SSH 2. */
function rawMode(sock) {
  switch (mode) {
    case 'http':
      sock.end('HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return true;
    case 'garbage': {
      const junk = Buffer.alloc(1024);
      for (let i = 0; i < junk.length; i++) junk[i] = 0x80 + ((i * 37) & 0x7f); // never '\n'
      sock.write(junk);
      return true;
    }
    case 'ssh1':
      sock.write('SSH-1.5-old\r\n');
      return true;
    case 'silent':
      sock.write('SSH-2.0-fake_silent\r\n');
      return true;
    case 'mute':
      return true;
  }
  return false;
}

let connections = 0;

/** The fuzz of connection number `connection`: repeatable from --seed. */
const randomFor = (connection) => seeded(Number(opt('seed', '1')) * 7919 + connection * 104729);

/** A connection-layer message for the client's channel `theirs` (or another), perhaps mutated. */
function fuzzMessage(r, theirs) {
  const channel = r.next() < 0.9 ? theirs : r.pick([theirs + 1, 99, 0xffffffff]);
  const m = new Message();
  switch (r.int(10)) {
    case 0:
    case 1:
    case 2:
      channelTraffic(r, m, channel, 40000);
      break;
    case 3: {
      const req = r.pick(['exit-status', 'exit-signal', 'keepalive@openssh.com', 'eow@openssh.com', 'xon-xoff', 'nope']);
      m.addByte(MSG.CHANNEL_REQUEST).addInt(channel).addString(req).addBoolean(r.next() < 0.5);
      if (req === 'exit-status') m.addInt(r.u32());
      if (req === 'exit-signal') m.addString(r.pick(['TERM', 'KILL', '', 'x'.repeat(500)])).addBoolean(r.next() < 0.5).addString('core?').addString('');
      if (req === 'xon-xoff') m.addBoolean(true);
      break;
    }
    case 4:
      m.addByte(r.pick([MSG.CHANNEL_SUCCESS, MSG.CHANNEL_FAILURE, MSG.CHANNEL_EOF, MSG.CHANNEL_OPEN_CONFIRMATION, MSG.CHANNEL_OPEN_FAILURE])).addInt(channel);
      if (r.next() < 0.5) m.addInt(r.u32()).addInt(r.u32()).addInt(r.u32());
      break;
    case 5: {
      const kind = r.pick(['forwarded-tcpip', 'x11', 'auth-agent@openssh.com', 'session', 'nope']);
      m.addByte(MSG.CHANNEL_OPEN).addString(kind).addInt(100 + r.int(5)).addInt(r.u32()).addInt(r.u32());
      if (kind === 'forwarded-tcpip') m.addString('127.0.0.1').addInt(r.int(70000)).addString('1.2.3.4').addInt(5);
      if (kind === 'x11') m.addString('1.2.3.4').addInt(6000);
      break;
    }
    case 6: {
      const req = r.pick(['hostkeys-00@openssh.com', 'keepalive@openssh.com', 'nope']);
      m.addByte(MSG.GLOBAL_REQUEST).addString(req).addBoolean(r.next() < 0.5);
      if (req.startsWith('hostkeys')) m.addString(r.next() < 0.5 ? hostKey.asBytes() : Buffer.from('garbage blob'));
      break;
    }
    case 7:
      m.addByte(r.pick([MSG.IGNORE, MSG.DEBUG, MSG.UNIMPLEMENTED, MSG.REQUEST_SUCCESS, MSG.REQUEST_FAILURE]));
      if (r.next() < 0.5) m.addBoolean(true).addString('\x1b[31mdebug text\n').addString('');
      else m.addInt(r.u32());
      break;
    case 8:
      m.addByte(r.pick([MSG.SERVICE_ACCEPT, MSG.USERAUTH_SUCCESS, MSG.USERAUTH_FAILURE, MSG.USERAUTH_BANNER, 60, 99 + r.int(30), 200 + r.int(56)])).addString('x');
      break;
    default:
      m.addByte(r.int(256));
      for (let i = r.int(5); i > 0; i--) m.addInt(r.u32());
  }
  const b = Buffer.from(m.asBytes());
  if (r.next() < 0.1) {
    const k = r.int(3);
    if (k === 0) for (let i = 1 + r.int(3); i > 0; i--) b[1 + r.int(Math.max(1, b.length - 1))] = r.int(256);
    else if (k === 1) return b.subarray(0, 1 + r.int(b.length));
    else if (b.length > 5) b.writeUInt32BE(r.u32(), 1 + r.int(b.length - 4));
  }
  return b;
}

function serve(sock) {
  sock.on('error', () => undefined);
  const connection = connections++;
  if (rawMode(sock)) return;

  let session;
  let kexed = false;
  const kexFuzz = randomFor(connection);
  /** Writes a payload protected with the session's current keys (its private writer). */
  const encode = (payload) => session.writer.encode(payload);
  const send = (payload) => session.send(payload);
  const seqOut = () => session.writer.seq;

  session = new Session(
    { role: 'server', preferences, hostKeys: [hostKey], localVersion: 'SSH-2.0-fake_hostile' },
    {
      write: (d) => {
        if (mode === 'kex-fuzz' && !kexed && d.length > 6 && !d.subarray(0, 4).equals(Buffer.from('SSH-')) && kexFuzz.next() < 0.7) {
          // A plaintext packet of the first exchange: its payload changed, its length word kept.
          d = Buffer.from(d);
          const n = 1 + kexFuzz.int(4);
          for (let i = 0; i < n; i++) d[5 + kexFuzz.int(d.length - 5)] = kexFuzz.int(256);
          say(`KEX-FUZZED ${connection} ${n}`);
        }
        if (!sock.destroyed) sock.write(d);
      },
      message: (type, m) => onMessage(type, m),
      kexDone: () => {
        kexed = true;
      },
      closed: () => sock.end(),
      log: (text) => {
        const u = /peer says message #(\d+) is unimplemented/.exec(text);
        if (u) say(`UNIMPLEMENTED ${u[1]}`);
      },
    },
  );
  /** zlib-cross: called with the client's next bytes before the session reads them. */
  let beforeNextRead = null;
  sock.on('data', (d) => {
    if (beforeNextRead) {
      const f = beforeNextRead;
      beforeNextRead = null;
      f();
    }
    session.receive(d);
  });
  sock.on('close', () => session.isClosed || session.disconnect());
  session.start();


  function onMessage(type, m) {
    switch (type) {
      case MSG.SERVICE_REQUEST:
        return onServiceRequest(m);
      case MSG.USERAUTH_REQUEST:
        return onAuth(m);
      case MSG.CHANNEL_OPEN:
        return onChannelOpen(m);
      case MSG.CHANNEL_REQUEST:
        return onChannelRequest(m);
      case MSG.CHANNEL_CLOSE: {
        // Answer a CLOSE unless ours went first (RFC 4254 section 5.3: one CLOSE each way).
        const ours = m.getInt();
        if (channels.has(ours) && !closeSent.has(ours)) send(closeMsg(ours));
        channels.delete(ours);
        closeSent.delete(ours);
        return;
      }
      default:
        return; // window adjusts, data, EOF, global requests: ignored
    }
  }

  function onServiceRequest(m) {
    const name = m.getText();
    const accept = msg(MSG.SERVICE_ACCEPT).addString(name).asBytes();
    switch (mode) {
      case 'badmac': {
        const wire = encode(accept);
        wire[wire.length - 1] ^= 0x01; // the last byte of the MAC or AEAD tag
        sock.write(wire);
        say('SENT badmac');
        return;
      }
      case 'oversize': {
        const wire = Buffer.alloc(64, 0x41);
        wire.writeUInt32BE(0x7fffffff, 0);
        sock.write(wire);
        say('SENT oversize');
        return;
      }
      case 'truncated': {
        const wire = encode(accept);
        sock.end(wire.subarray(0, Math.floor(wire.length / 2)));
        say('SENT truncated');
        return;
      }
    }
    send(accept);
  }

  function onAuth(m) {
    m.getText(); // user
    m.getText(); // service
    const method = m.getText();
    switch (mode) {
      case 'disconnect':
        send(msg(MSG.DISCONNECT).addInt(2).addString('fake server says go away\x1b[2J').addString('').asBytes());
        return;
      case 'unexpected':
        send(msg(MSG.CHANNEL_DATA).addInt(0).addString('surprise').asBytes());
        say('SENT unexpected');
        return;
      case 'unknown': {
        const type = Number(opt('type', '200'));
        say(`SENT ${type} ${seqOut()}`);
        send(msg(type).addString('what is this').asBytes());
        break; // then succeed: a client that follows RFC 4253 11.4 carries on
      }
    }
    if (mode === 'zlib-cross' && method === 'password') {
      send(msg(MSG.IGNORE).addString('').asBytes());
      const succeed = (why) => {
        clearTimeout(timer);
        beforeNextRead = null;
        send(msg(MSG.USERAUTH_SUCCESS).asBytes());
        session.setAuthenticated(); // zlib@openssh.com: both directions compress from here
        say(`SUCCESS ${why}`);
      };
      const timer = setTimeout(() => succeed('after silence'), 300);
      beforeNextRead = () => succeed('crossing client data');
      return;
    }
    if (mode === 'zlib-same-read' && method === 'password') {
      sock.cork(); // one segment: the client reads SUCCESS and what follows in one go
      send(msg(MSG.USERAUTH_SUCCESS).asBytes());
      session.setAuthenticated();
      send(msg(MSG.GLOBAL_REQUEST).addString('hostkeys-00@openssh.com').addBoolean(false).addString(hostKey.asBytes()).asBytes());
      send(msg(MSG.DEBUG).addBoolean(false).addString('compressed from here').addString('').asBytes());
      process.nextTick(() => sock.uncork());
      say('SENT success+compressed');
      return;
    }
    if (method !== 'password') {
      send(msg(MSG.USERAUTH_FAILURE).addList(['password']).addBoolean(false).asBytes());
      return;
    }
    send(msg(MSG.USERAUTH_SUCCESS).asBytes());
    session.setAuthenticated();
  }

  /** Our channel id -> the client's. */
  const channels = new Map();
  /** The client's channel id -> the window it gave. */
  const windows = new Map();
  /** Our channels we sent CLOSE for. */
  const closeSent = new Set();
  let nextId = 0;
  const closeMsg = (ours) => {
    closeSent.add(ours);
    return msg(MSG.CHANNEL_CLOSE).addInt(channels.get(ours)).asBytes();
  };

  function onChannelOpen(m) {
    m.getText(); // kind
    const theirs = m.getInt();
    windows.set(theirs, m.getInt());
    if (mode === 'no-open-reply') {
      say('IGNORED open');
      return;
    }
    const ours = nextId++;
    channels.set(ours, theirs);
    send(msg(MSG.CHANNEL_OPEN_CONFIRMATION).addInt(theirs).addInt(ours).addInt(2 << 20).addInt(32768).asBytes());
  }

  function onChannelRequest(m) {
    const ours = m.getInt();
    const theirs = channels.get(ours);
    const kind = m.getText();
    const wantReply = m.getBoolean();
    if (wantReply) send(msg(MSG.CHANNEL_SUCCESS).addInt(theirs).asBytes());
    if (kind !== 'exec') return;
    const command = m.getText();
    const data = (text) => msg(MSG.CHANNEL_DATA).addInt(theirs).addString(text).asBytes();
    if (mode === 'fuzz') {
      const r = randomFor(connection);
      for (let i = 1 + r.int(40); i > 0 && !sock.destroyed && !session.isClosed; i--) send(fuzzMessage(r, theirs));
      say(`FUZZED ${connection}`);
      if (!sock.destroyed && !session.isClosed) {
        send(msg(MSG.CHANNEL_REQUEST).addInt(theirs).addString('exit-status').addBoolean(false).addInt(0).asBytes());
        send(msg(MSG.CHANNEL_EOF).addInt(theirs).asBytes());
        send(closeMsg(ours));
      }
    } else if (mode === 'close-mid-exec') {
      send(data('partial output\n'));
      setTimeout(() => {
        say('DESTROYED');
        sock.destroy();
      }, 200);
    } else if (mode === 'window-overrun') {
      let left = windows.get(theirs) + Number(command.split(' ')[1]);
      for (let i = 0; left > 0; i++, left -= 32768) send(data(Buffer.alloc(Math.min(left, 32768), i & 0xff)));
      say('OVERRUN sent');
      send(msg(MSG.CHANNEL_REQUEST).addInt(theirs).addString('exit-status').addBoolean(false).addInt(0).asBytes());
      send(msg(MSG.CHANNEL_EOF).addInt(theirs).asBytes());
      send(closeMsg(ours));
    } else if (mode === 'exit-race') {
      send(data('x'));
      send(msg(MSG.CHANNEL_EOF).addInt(theirs).asBytes());
      setImmediate(() => {
        send(msg(MSG.CHANNEL_REQUEST).addInt(theirs).addString('exit-status').addBoolean(false).addInt(7).asBytes());
        send(closeMsg(ours));
      });
    } else {
      send(data('hello\n'));
      send(msg(MSG.CHANNEL_REQUEST).addInt(theirs).addString('exit-status').addBoolean(false).addInt(0).asBytes());
      send(msg(MSG.CHANNEL_EOF).addInt(theirs).asBytes());
      send(closeMsg(ours));
    }
  }
}

const server = net.createServer({ noDelay: true }, serve);
server.listen({ host: '127.0.0.1', port: 0 }, () => say(`READY ${server.address().port}`));
// The test runner kills us; should it die first, stdin closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
