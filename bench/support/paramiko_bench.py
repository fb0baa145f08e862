#!/usr/bin/python3
"""Paramiko's side of the benchmarks, timed inside Python (interpreter start excluded).

  paramiko_bench.py connect --port P --user U --key K --known-hosts F -n N
      connect + auth + exec `true` + recv_exit_status + close, N times: JSON ms per iteration
  paramiko_bench.py throughput --port P --user U --key K --known-hosts F --size BYTES [--cipher C]
      exec `head -c BYTES /dev/zero`, recv(1 MiB) to EOF: JSON seconds from exec to EOF

Prints one JSON line. Run with /usr/bin/python3: Debian's Paramiko imports only there.
"""
import argparse
import json
import sys
import time

import paramiko


def connect_once(a):
    client = paramiko.SSHClient()
    client.load_host_keys(a.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=a.port,
        username=a.user,
        key_filename=a.key,
        look_for_keys=False,
        allow_agent=False,
    )
    return client


def bench_connect(a):
    samples = []
    for i in range(a.n):
        t0 = time.perf_counter()
        client = connect_once(a)
        _stdin, stdout, _stderr = client.exec_command("true")
        status = stdout.channel.recv_exit_status()
        client.close()
        samples.append((time.perf_counter() - t0) * 1000.0)
        if status != 0:
            raise SystemExit("exit status %d" % status)
    return {"ms": samples, "cipher": negotiated(a)}


def negotiated(a):
    """Kex and cipher, from Paramiko's debug log of one more connection (not timed)."""
    import logging

    lines = []

    class Grab(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    log = logging.getLogger("paramiko")
    handler = Grab()
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.DEBUG)
    try:
        client = connect_once(a)
        t = client.get_transport()
        cipher = "%s %s" % (t.remote_cipher, t.remote_mac)
        client.close()
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    kex = "?"
    for text in lines:
        for line in text.splitlines():
            if line.strip().lower().startswith("kex:"):
                kex = line.split(":", 1)[1].strip()
    return "%s, %s" % (kex, cipher)


def bench_throughput(a):
    sock = ("127.0.0.1", a.port)
    t = paramiko.Transport(sock)
    if a.cipher:
        t.get_security_options().ciphers = (a.cipher,)
    hostkeys = paramiko.HostKeys(a.known_hosts)
    t.start_client()
    key = t.get_remote_server_key()
    if not hostkeys.check("[127.0.0.1]:%d" % a.port, key):
        raise SystemExit("host key mismatch")
    t.auth_publickey(a.user, paramiko.PKey.from_path(a.key) if hasattr(paramiko.PKey, "from_path") else paramiko.Ed25519Key.from_private_key_file(a.key))
    chan = t.open_session()
    t0 = time.perf_counter()
    chan.exec_command("head -c %d /dev/zero" % a.size)
    got = 0
    while True:
        d = chan.recv(1 << 20)
        if not d:
            break
        got += len(d)
    seconds = time.perf_counter() - t0
    status = chan.recv_exit_status()
    cipher = "%s %s" % (t.remote_cipher, t.remote_mac)
    t.close()
    if got != a.size or status != 0:
        raise SystemExit("got %d of %d bytes, exit status %d" % (got, a.size, status))
    return {"seconds": seconds, "bytes": got, "cipher": cipher}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["connect", "throughput"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--known-hosts", required=True)
    p.add_argument("-n", type=int, default=30)
    p.add_argument("--size", type=int, default=1 << 30)
    p.add_argument("--cipher", default=None)
    a = p.parse_args()
    result = bench_connect(a) if a.mode == "connect" else bench_throughput(a)
    result["paramiko"] = paramiko.__version__
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
