#!/usr/bin/python3
"""Paramiko's column of bench/operation-latency.js: the same everyday operations, one at a time,
each round on a fresh connection, timed inside Python (interpreter start excluded).

  paramiko_ops.py --port P --user U --key K --dir D --rounds N [--warm W]

`D` holds `small` (1000 bytes) and `many` (1000 names), as the Node side prepares them. Prints
one JSON line: operation name -> median milliseconds, named as the Node side names them. Run with
/usr/bin/python3: Debian's Paramiko imports only there.
"""
import argparse
import json
import os
import statistics
import time

import paramiko


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warm", type=int, default=200)
    a = p.parse_args()
    small = os.path.join(a.dir, "small")
    many = os.path.join(a.dir, "many")
    samples = {}

    def timed(name, fn):
        t = time.perf_counter()
        r = fn()
        samples.setdefault(name, []).append((time.perf_counter() - t) * 1000)
        return r

    for n in range(a.rounds):
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        timed("connect + auth", lambda: client.connect(
            "127.0.0.1", port=a.port, username=a.user, key_filename=a.key, allow_agent=False, look_for_keys=False))

        def exec_true():
            _, out, _ = client.exec_command("true")
            out.read()
            return out.channel.recv_exit_status()
        timed("exec true + status", exec_true)
        timed("exec echo, read()", lambda: client.exec_command("echo hi")[1].read())
        sftp = timed("openSftp", client.open_sftp)
        timed("sftp stat", lambda: sftp.stat(small))
        timed("listdir (1000 names)", lambda: sftp.listdir(many))
        timed("get 1 KB", lambda: sftp.get(small, os.path.join(a.dir, "pgot-%d" % n)))
        timed("put 1 KB", lambda: sftp.put(small, os.path.join(a.dir, "pput-%d" % n)))

        def open_read_close():
            f = sftp.open(small, "r")
            f.read()
            f.close()
        timed("open, read(), close 1 KB", open_read_close)
        sftp.close()
        shell = client.invoke_shell()
        shell.settimeout(10)

        def shell_echo():
            shell.send("echo MARK$((1+1))\n")
            text = b""
            while b"MARK2" not in text:
                text += shell.recv(4096)
        timed("shell start + echo", shell_echo)
        shell.close()
        timed("close", client.close)
    # Warm: each SFTP operation --warm times back to back on one connection, median of the last half.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=a.port, username=a.user, key_filename=a.key, allow_agent=False, look_for_keys=False)
    sftp = client.open_sftp()

    def warm(name, fn):
        t = []
        for i in range(a.warm):
            t0 = time.perf_counter()
            fn(i)
            t.append((time.perf_counter() - t0) * 1000)
        samples.setdefault(name + ", warm", []).extend(t[a.warm // 2:])

    def open_read_close_warm(_):
        f = sftp.open(small, "r")
        f.read()
        f.close()
    warm("sftp stat", lambda i: sftp.stat(small))
    warm("get 1 KB", lambda i: sftp.get(small, os.path.join(a.dir, "pwgot-%d" % (i % 8))))
    warm("put 1 KB", lambda i: sftp.put(small, os.path.join(a.dir, "pwput-%d" % (i % 8))))
    warm("open, read(), close 1 KB", open_read_close_warm)
    client.close()
    print(json.dumps({name: statistics.median(s) for name, s in samples.items()}))


if __name__ == "__main__":
    main()
