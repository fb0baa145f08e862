import { itWithPeers, peerPath, PeerName, runPeer } from './support/peers';

// Every peer DESIGN.md section 5 names must be installed in CI, even those the current tests do
// not use yet: .ci/run installs them, and this makes a broken install fail the run.
describe('the peer harness', () => {
  const versions: Array<[PeerName, string[]]> = [
    ['ssh', ['-V']],
    ['ssh-keygen', ['-?']],
    ['ssh-agent', ['-?']],
    ['sftp', ['-?']],
    ['sshd', ['-?']],
    ['paramiko', ['-c', 'import paramiko; print(paramiko.__version__)']],
    ['asyncssh', ['-c', 'import asyncssh; print(asyncssh.__version__)']],
    ['dropbear', ['-V']],
    ['dbclient', ['-V']],
    ['plink', ['-V']],
    ['puttygen', ['-V']],
    ['ssh-audit', ['-h']],
  ];
  for (const [peer, args] of versions) {
    itWithPeers([peer], `${peer} is installed and runs`, () => {
      // Several of these print usage and exit non-zero on -?: running at all is the check.
      try {
        runPeer(peerPath(peer), args);
      } catch (e) {
        expect(String(e)).toMatch(/exited \d+/);
      }
    });
  }
});
