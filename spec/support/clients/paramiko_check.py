"""Paramiko's SFTPFile.check (the check-file extension) against a server under test
(spec/sftp-check.spec.ts runs it with /usr/bin/python3: Debian's paramiko imports only there).

Spec (JSON, in the file named by the first argument: a test serving on its own blocked main
thread could not feed a pipe): host, port, username, and password or keyPath (an Ed25519 private key);
hostKeyFingerprints (optional: SHA256:... of the keys the server may show); path (the remote
file); cases, each [hash_algorithm, offset, length, block_size]; timeoutMs.
Result (last stdout line, JSON): results, one per case: {"hex": digests} or
{"error": "<exception class>: <message>"}; error (null unless the session itself failed).
"""

import json
import sys
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

from pts_client_common import describe_error, paramiko_sftp, run_scenario  # noqa: E402


def scenario(spec, result):
    t, sftp = paramiko_sftp(spec, host_key_required=False)
    try:
        results = []
        with sftp.open(spec["path"], "rb") as f:
            for alg, offset, length, block_size in spec["cases"]:
                try:
                    results.append({"hex": f.check(alg, offset, length, block_size).hex()})
                except (IOError, EOFError) as e:
                    results.append({"error": describe_error(e)})
        result["results"] = results
        sftp.close()
    finally:
        t.close()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    run_scenario(scenario, spec, {"error": None})


if __name__ == "__main__":
    main()
