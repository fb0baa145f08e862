// A typical Paramiko script, ported line by line: only the syntax changed.
//
// Python:
//   import paramiko, sys
//   client = paramiko.SSHClient()
//   client.load_system_host_keys()
//   client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
//   client.connect(host, port=port, username=user, key_filename=key, look_for_keys=False)
//   stdin, stdout, stderr = client.exec_command('uname -s; echo to-stderr >&2; exit 3')
//   for line in stdout:
//       print('out:', line.strip('\n'))
//   print('err:', stderr.read().decode().strip())
//   print('status:', stdout.channel.recv_exit_status())
//   stdin, stdout, stderr = client.exec_command('tr a-z A-Z')
//   stdin.write('shout this\n')
//   stdin.close()
//   print(stdout.read().decode().strip())
//   client.close()
//
// Run: node samples/paramiko-port.js HOST PORT USER KEYFILE
const { SSHClient, AutoAddPolicy } = require('paramiko-ts');

const [host, port, user, key] = process.argv.slice(2);
const client = new SSHClient();
client.loadSystemHostKeys();
client.setMissingHostKeyPolicy(new AutoAddPolicy());
client.connect(host, { port: Number(port), username: user, keyFilename: key, lookForKeys: false });
let [stdin, stdout, stderr] = client.execCommand('uname -s; echo to-stderr >&2; exit 3');
for (const line of stdout) {
  console.log('out:', line.replace(/\n$/, ''));
}
console.log('err:', stderr.read().toString().trim());
console.log('status:', stdout.channel.recvExitStatus());
[stdin, stdout, stderr] = client.execCommand('tr a-z A-Z');
stdin.write('shout this\n');
stdin.close();
console.log(stdout.read().toString().trim());
client.close();
