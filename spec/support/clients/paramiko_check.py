"""Paramiko's SFTPFile.check (the check-file extension) against a server under test
(spec/sftp-check.spec.ts runs it with /usr/bin/python3: Debian's paramiko imports only there).

Spec (JSON, in the file named by the first argument: a test serving on its own blocked main
thread could not feed a pipe): host, port, username, and password or keyPath (an Ed25519 private key);
hostKeyFingerprints (optional: SHA256:... of the keys the server may show); path (the remote
file); cases, each [hash_algorithm, offset, length, block_size]; timeoutMs.
Result (last stdout line, JSON): results, one per case: {"hex": digests} or
{"error": "<exception class>: <message>"}; error (null unless the session itself failed).
"""

import base64
import hashlib
import json
import socket
import sys
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

import paramiko  # noqa: E402


def fingerprint(blob):
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def scenario(spec, result):
    sock = socket.create_connection((spec["host"], spec["port"]), timeout=10)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=10)
        expected = spec.get("hostKeyFingerprints")
        fp = fingerprint(t.get_remote_server_key().asbytes())
        if expected is not None and fp not in expected:
            raise paramiko.SSHException("unexpected host key %s" % fp)
        if spec.get("keyPath"):
            t.auth_publickey(spec["username"], paramiko.Ed25519Key.from_private_key_file(spec["keyPath"]))
        else:
            t.auth_password(spec["username"], spec["password"])
        sftp = paramiko.SFTPClient.from_transport(t)
        sftp.get_channel().settimeout(spec.get("timeoutMs", 60000) / 1000.0)
        results = []
        with sftp.open(spec["path"], "rb") as f:
            for alg, offset, length, block_size in spec["cases"]:
                try:
                    results.append({"hex": f.check(alg, offset, length, block_size).hex()})
                except (IOError, EOFError) as e:
                    results.append({"error": "%s: %s" % (type(e).__name__, e)})
        result["results"] = results
        sftp.close()
    finally:
        t.close()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    result = {"error": None}
    try:
        scenario(spec, result)
    except Exception as e:  # the test prints it
        result["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
