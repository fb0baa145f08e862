// Through an HTTP proxy, as Paramiko scripts do it: open a socket to the proxy, ask it to
// CONNECT to the SSH server, read its answer, then hand the socket to SSHClient as `sock`.
// The proxy is a few lines of Node in a child process and the server an embedded SSHServer, so
// that the sample runs anywhere; for a real proxy and host, replace the addresses.
//
//   node samples/http-proxy.js
const { spawn } = require('node:child_process');
const { AutoAddPolicy, MSG_PEEK, SSHClient, SSHServer, createConnection } = require('paramiko-ts');

// A CONNECT proxy (what squid or tinyproxy do), printing its port.
const PROXY = `
  const net = require('node:net');
  net.createServer((client) => {
    client.once('data', (head) => {
      const [, host, port] = /^CONNECT ([^:]+):(\\d+) /.exec(head.toString()) || [];
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection established\\r\\n\\r\\n');
        client.pipe(upstream).pipe(client);
      });
      upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\\r\\n\\r\\n'));
    });
  }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });
`;

/** Reads the proxy's answer up to its blank line, leaving what follows (the server's first bytes) unread. */
function readProxyAnswer(sock) {
  for (;;) {
    const seen = sock.recv(4096, MSG_PEEK);
    if (seen.length === 0) throw new Error('the proxy closed the connection');
    const end = seen.indexOf('\r\n\r\n');
    if (end >= 0) return sock.recv(end + 4).toString('latin1');
  }
}

const proxy = spawn(process.execPath, ['-e', PROXY], { stdio: ['ignore', 'pipe', 'inherit'] });
proxy.stdout.once('data', (line) => {
  const proxyPort = Number(line.toString());
  const server = SSHServer.start({ users: { demo: 'demo' } });
  const client = new SSHClient();
  try {
    const sock = createConnection(['127.0.0.1', proxyPort], 10);
    sock.settimeout(10);
    sock.sendall(`CONNECT ${server.host}:${server.port} HTTP/1.1\r\nHost: ${server.host}:${server.port}\r\n\r\n`);
    const answer = readProxyAnswer(sock);
    if (!/^HTTP\/1\.[01] 200 /.test(answer)) throw new Error(`the proxy refused: ${answer.split('\r\n')[0]}`);

    client.setMissingHostKeyPolicy(new AutoAddPolicy());
    client.connect(server.host, { port: server.port, username: 'demo', password: 'demo', sock, lookForKeys: false, allowAgent: false });
    const [, stdout] = client.execCommand('echo "hello through the proxy"');
    process.stdout.write(stdout.read().toString());
    console.log(`exit status ${stdout.channel.recvExitStatus()}`);
  } finally {
    client.close();
    server.close();
    proxy.kill();
  }
});
