'use strict';
// An SSH server whose sftp subsystem answers INIT and then never answers anything: the test of
// SFTP timeouts runs it as a child process. Prints "port N", serves one connection.
const path = require('node:path');
const dist = path.join(__dirname, '..', '..', '..', 'dist');
const { listen, Transport, ServerInterface, SubsystemHandler, Ed25519Key, Event, AUTH_SUCCESSFUL, OPEN_SUCCEEDED } = require(dist);
const { encodeReply } = require(path.join(dist, 'sftp', 'replies.js'));

class AnyPassword extends ServerInterface {
  checkChannelRequest() {
    return OPEN_SUCCEEDED;
  }
  getAllowedAuths() {
    return 'password';
  }
  checkAuthPassword() {
    return AUTH_SUCCESSFUL;
  }
}

class Stall extends SubsystemHandler {
  startSubsystem(_name, _transport, channel) {
    let answered = false;
    for (;;) {
      const d = channel.recv(65536);
      if (d.length === 0) return;
      if (!answered) {
        answered = true;
        channel.sendall(encodeReply.version(3, []));
      }
    }
  }
}

const listener = listen('127.0.0.1', 0);
process.stdout.write(`port ${listener.getsockname()[1]}\n`);
const [sock] = listener.accept(60);
const t = new Transport(sock);
t.addServerKey(Ed25519Key.generate());
t.setSubsystemHandler('sftp', Stall);
t.startServer({ server: new AnyPassword() });
const ch = t.accept(30);
while (ch && !ch.closed && t.isActive()) new Event().wait(0.1);
t.close();
listener.close();
