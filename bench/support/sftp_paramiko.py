#!/usr/bin/python3
"""Paramiko's side of bench/sftp-throughput.js, timed inside Python (interpreter start, connect
and auth excluded).

  sftp_paramiko.py get|put --port P --user U --key K --known-hosts F --remote PATH --local PATH [--cipher C]

`get` is SFTPClient.get (which prefetches: many READs in flight), `put` is SFTPClient.put
(pipelined WRITEs, confirm=True: a stat afterwards). Prints one JSON line: seconds from the
call to its return, the byte count, the negotiated cipher. Run with /usr/bin/python3: Debian's
Paramiko imports only there.
"""
import argparse
import json
import sys
import time

import paramiko


def main():
    p = argparse.ArgumentParser()
    p.add_argument("direction", choices=["get", "put"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--known-hosts", required=True)
    p.add_argument("--remote", required=True)
    p.add_argument("--local", required=True)
    p.add_argument("--cipher", default=None)
    a = p.parse_args()

    t = paramiko.Transport(("127.0.0.1", a.port))
    if a.cipher:
        t.get_security_options().ciphers = (a.cipher,)
    t.start_client()
    key = t.get_remote_server_key()
    if not paramiko.HostKeys(a.known_hosts).check("[127.0.0.1]:%d" % a.port, key):
        raise SystemExit("host key mismatch")
    t.auth_publickey(a.user, paramiko.Ed25519Key.from_private_key_file(a.key))
    sftp = paramiko.SFTPClient.from_transport(t)
    t0 = time.perf_counter()
    if a.direction == "get":
        sftp.get(a.remote, a.local)
    else:
        sftp.put(a.local, a.remote)
    seconds = time.perf_counter() - t0
    size = sftp.stat(a.remote).st_size
    cipher = "%s %s" % (t.remote_cipher, t.remote_mac)
    sftp.close()
    t.close()
    sys.stdout.write(json.dumps({"seconds": seconds, "bytes": size, "cipher": cipher, "paramiko": paramiko.__version__}) + "\n")


if __name__ == "__main__":
    main()
