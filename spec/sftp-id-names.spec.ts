import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdNames } from '../lib/sftp/id-names';

// The names an SFTP server shows for owners (long names, users-groups-by-id@openssh.com); the
// server's use of them is checked with OpenSSH's sftp in spec/sftp-server-interop.spec.ts.
describe('IdNames', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'pts-ids-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads names by id from passwd and group files; the first entry of an id wins; junk lines are skipped', () => {
    writeFileSync(join(dir, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n# a comment\nalice:x:1000:1000::/home/alice:/bin/sh\nalias:x:1000:1000::/:/bin/sh\nbroken\n:x:5:5\nneg:x:-1:0\n');
    writeFileSync(join(dir, 'group'), 'root:x:0:\nstaff:x:50:alice\n');
    const ids = new IdNames(join(dir, 'passwd'), join(dir, 'group'));
    expect([ids.user(0), ids.user(1000), ids.user(5), ids.user(4242)]).toEqual(['root', 'alice', null, null]);
    expect([ids.group(0), ids.group(50), ids.group(1000)]).toEqual(['root', 'staff', null]);
  });

  it('missing files give no names, not an error', () => {
    const ids = new IdNames(join(dir, 'none'), join(dir, 'none'));
    expect([ids.user(0), ids.group(0)]).toEqual([null, null]);
  });
});
