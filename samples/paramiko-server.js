#!/usr/bin/env node
// Paramiko's demos/demo_server.py, ported line by line: a server that lets "robey" in with the
// password "foo" (or a listed key), waits for the client's shell request, chats, and closes.
// The differences are syntax, and `listen()` in place of socket/bind/listen.
//
//   node samples/paramiko-server.js [port]     (port 0 picks one; the port is printed)
const {
  AUTH_FAILED,
  AUTH_SUCCESSFUL,
  Ed25519Key,
  Event,
  OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
  OPEN_SUCCEEDED,
  ServerInterface,
  Transport,
  listen,
} = require('paramiko-ts');

// setup logging: NODE_DEBUG=paramiko-ts

const hostKey = Ed25519Key.generate(); // demo_server.py loads test_rsa.key
console.log(`Read key: ${hostKey.getFingerprint().toString('hex')}`);

class Server extends ServerInterface {
  constructor() {
    super();
    this.event = new Event();
  }

  checkChannelRequest(kind, chanid) {
    if (kind === 'session') return OPEN_SUCCEEDED;
    return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED;
  }

  checkAuthPassword(username, password) {
    if (username === 'robey' && password === 'foo') return AUTH_SUCCESSFUL;
    return AUTH_FAILED;
  }

  checkAuthPublickey(username, key) {
    console.log(`Auth attempt with key: ${key.getFingerprint().toString('hex')}`);
    if (username === 'robey' && process.env.ROBEY_KEY && key.getBase64() === process.env.ROBEY_KEY) return AUTH_SUCCESSFUL;
    return AUTH_FAILED;
  }

  getAllowedAuths(username) {
    return 'password,publickey';
  }

  checkChannelShellRequest(channel) {
    this.event.set();
    return true;
  }

  checkChannelPtyRequest(channel, term, width, height, pixelwidth, pixelheight, modes) {
    return true;
  }
}

// now connect
let sock;
try {
  sock = listen('127.0.0.1', Number(process.argv[2] ?? 2200));
} catch (e) {
  console.log(`*** Bind failed: ${e.message}`);
  process.exit(1);
}
console.log(`Listening for connection on port ${sock.getsockname()[1]} ...`);
const [client] = sock.accept();
console.log('Got a connection!');

let t;
try {
  t = new Transport(client);
  t.addServerKey(hostKey);
  const server = new Server();
  try {
    t.startServer({ server });
  } catch (e) {
    console.log('*** SSH negotiation failed.');
    process.exit(1);
  }

  // wait for auth
  const chan = t.accept(20);
  if (chan === null) {
    console.log('*** No channel.');
    process.exit(1);
  }
  console.log('Authenticated!');

  server.event.wait(10);
  if (!server.event.isSet()) {
    console.log('*** Client never asked for a shell.');
    process.exit(1);
  }

  chan.send('\r\n\r\nWelcome to my dorky little BBS!\r\n\r\n');
  chan.send('We are on fire all the time!  Hooray!  Candy corn for everyone!\r\n');
  chan.send('Happy birthday to Robot Dave!\r\n\r\n');
  chan.send('Username: ');
  const f = chan.makefile('rU');
  const username = f.readline().trim();
  chan.send(`\r\nI don't like you, ${username}.\r\n`);
  chan.close();
} catch (e) {
  console.log(`*** Caught exception: ${e.constructor.name}: ${e.message}`);
  try {
    t?.close();
  } catch {}
  process.exit(1);
}
t.close();
sock.close();
