"""Paramiko's SFTPClient against a server under test (spec/sftp-server-interop.spec.ts runs it
with /usr/bin/python3: Debian's paramiko imports only there).

Spec (JSON on stdin): host, port, username, password, hostKeyFingerprints (SHA256:... of the
keys the server may show), local (a local directory holding "src.bin"), dir (the remote
directory to create and work in), timeoutMs.
Scenario: mkdir dir (0750); put src.bin -> dir/up.bin; get it back with prefetch (get) and read
it again through open + prefetch; stat; create dir/other; rename up.bin onto other (SFTP v3
rename must refuse); posix_rename up.bin onto other (must replace it); mkdir dir/sub;
listdir_attr dir; create and remove dir/gone; normalize ".".
Result (last stdout line, JSON): prefetchSha256, stat {size, mode}, renameError (null when the
rename was wrongly allowed), listdir [[name, size, isDir]], goneAfterRemove, cwd, error.
"""

import hashlib
import os
import stat
import sys
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

from pts_client_common import describe_error, paramiko_sftp, read_spec, run_scenario  # noqa: E402


def scenario(spec, result):
    t, sftp = paramiko_sftp(spec)
    try:
        d = spec["dir"]
        local = spec["local"]
        sftp.mkdir(d, 0o750)
        sftp.put(os.path.join(local, "src.bin"), d + "/up.bin", confirm=True)
        sftp.get(d + "/up.bin", os.path.join(local, "down.bin"))
        with sftp.open(d + "/up.bin", "rb") as f:
            f.prefetch()
            result["prefetchSha256"] = hashlib.sha256(f.read()).hexdigest()
        st = sftp.stat(d + "/up.bin")
        result["stat"] = {"size": st.st_size, "mode": st.st_mode}
        with sftp.open(d + "/other", "wb") as f:
            f.write(b"other")
        try:
            sftp.rename(d + "/up.bin", d + "/other")
            result["renameError"] = None
        except IOError as e:
            result["renameError"] = describe_error(e)
        sftp.posix_rename(d + "/up.bin", d + "/other")
        sftp.mkdir(d + "/sub")
        result["listdir"] = sorted([a.filename, a.st_size, stat.S_ISDIR(a.st_mode)] for a in sftp.listdir_attr(d))
        with sftp.open(d + "/gone", "wb") as f:
            f.write(b"x")
        sftp.remove(d + "/gone")
        result["goneAfterRemove"] = "gone" in sftp.listdir(d)
        result["cwd"] = sftp.normalize(".")
        sftp.close()
    finally:
        t.close()


def main():
    run_scenario(scenario, read_spec(), {"error": None})


if __name__ == "__main__":
    main()
