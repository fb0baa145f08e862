"""Shared by the reference-client scripts in this directory (spec/support/servers/clients.ts runs
them): reading the JSON spec, writing the JSON result line, and running a pty "script" (steps).

The module has a name no standard module has: a script's own directory comes first on sys.path.

Steps (JSON list), run in order against an interactive session:
  {"line": "text"}                 send text + "\\n"
  {"send": "text"}                 send text as is
  {"expect": "text", "timeoutMs": n}  wait until the output (after the previous match) contains text
  {"resize": [cols, rows]}         change the terminal size (window-change)
  {"sleep": ms}
  {"eof": true}                    close the input side
"""

import base64
import json
import sys
import time

DEFAULT_EXPECT_MS = 10000


def read_spec():
    data = sys.stdin.read()
    return json.loads(data) if data.strip() else {}


def b64(data):
    return base64.b64encode(data or b"").decode("ascii")


def emit(result):
    # One line, the last on stdout: the TypeScript side parses it.
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def fingerprint_sha256(blob):
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def describe_error(e):
    return "%s: %s" % (type(e).__name__, e)


def run_scenario(scenario, spec, result):
    """Runs scenario(spec, result); an exception becomes result["error"] ("Name: message"), and
    the result line is printed either way."""
    try:
        scenario(spec, result)
    except Exception as e:  # noqa: BLE001 (the test reads it)
        result["error"] = describe_error(e)
    emit(result)


def paramiko_sftp(spec, host_key_required=True):
    """Paramiko's Transport to spec's host and port, its host key checked against spec's
    hostKeyFingerprints (SHA256:...; optional unless host_key_required), logged in as spec's
    username with keyPath (an Ed25519 private key) or password, and an SFTPClient on it whose
    requests time out after spec's timeoutMs (default 60 s). Returns (transport, sftp); the
    caller closes the transport."""
    import socket

    import paramiko

    sock = socket.create_connection((spec["host"], spec["port"]), timeout=10)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=10)
        expected = spec["hostKeyFingerprints"] if host_key_required else spec.get("hostKeyFingerprints")
        fp = fingerprint_sha256(t.get_remote_server_key().asbytes())
        if expected is not None and fp not in expected:
            raise paramiko.SSHException("unexpected host key %s" % fp)
        if spec.get("keyPath"):
            t.auth_publickey(spec["username"], paramiko.Ed25519Key.from_private_key_file(spec["keyPath"]))
        else:
            t.auth_password(spec["username"], spec["password"])
        sftp = paramiko.SFTPClient.from_transport(t)
        sftp.get_channel().settimeout(spec.get("timeoutMs", 60000) / 1000.0)
        return t, sftp
    except BaseException:
        t.close()
        raise


class StepError(Exception):
    pass


class Output:
    """Everything read so far, and where the next `expect` starts looking."""

    def __init__(self):
        self.data = b""
        self.cursor = 0

    def add(self, chunk):
        self.data += chunk

    def find(self, needle):
        i = self.data.find(needle, self.cursor)
        if i >= 0:
            self.cursor = i + len(needle)
            return True
        return False


def run_steps(steps, send, read_some, resize, eof, out, deadline, settle_after_resize=0.0):
    """Runs the steps synchronously.

    send(bytes); read_some(timeout_seconds) -> bytes (b"" when nothing came), None at EOF;
    resize(cols, rows); eof(). Raises StepError when an `expect` is not met (or the session ended).
    """
    for step in steps or []:
        if "line" in step:
            send(step["line"].encode("utf-8") + b"\n")
        elif "send" in step:
            send(step["send"].encode("utf-8"))
        elif "expect" in step:
            needle = step["expect"].encode("utf-8")
            limit = min(deadline, time.monotonic() + step.get("timeoutMs", DEFAULT_EXPECT_MS) / 1000.0)
            while not out.find(needle):
                left = limit - time.monotonic()
                if left <= 0:
                    raise StepError("expect %r: not seen in time" % step["expect"])
                chunk = read_some(min(left, 0.5))
                if chunk is None:
                    if out.find(needle):
                        break
                    raise StepError("expect %r: the session ended first" % step["expect"])
                out.add(chunk)
        elif "resize" in step:
            cols, rows = step["resize"]
            resize(int(cols), int(rows))
            if settle_after_resize:
                time.sleep(settle_after_resize)
        elif "sleep" in step:
            time.sleep(step["sleep"] / 1000.0)
        elif step.get("eof"):
            eof()
        else:
            raise StepError("unknown step %r" % (step,))


def drain(read_some, out, deadline):
    """Reads until EOF; False when the deadline came first."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        chunk = read_some(min(left, 0.5))
        if chunk is None:
            return True
        out.add(chunk)
