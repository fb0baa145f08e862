"""Paramiko's client (Transport + one session channel) as a reference client for the tests; run by
spec/support/servers/clients.ts with /usr/bin/python3 (Debian's paramiko imports only there).

Spec (JSON on stdin):
  host, port, username; password; kbdint (keyboard-interactive, every prompt answered with the
  password); keyFile (+ keyPassphrase): publickey first, then the password if the server asks for
  more (partial success); kex / ciphers / macs / hostKeyAlgorithms: lists to restrict to;
  timeoutMs;
  mode "exec": command, input (base64), pty (bool), term, cols, rows;
  mode "shell": term, cols, rows, steps (see pts_client_common.py).
Result (last stdout line, JSON): stdout / stderr (base64; shell: the terminal output in stdout),
status (null when none came), hostKeyType (the key's type), hostKeyAlgorithm (negotiated),
hostKeyFingerprint (SHA256:...), kex, cipher, mac, error ("ExceptionName: message") or null,
timedOut.
"""

import socket
import sys
import threading
import time
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

from pts_client_common import (  # noqa: E402
    Output,
    StepError,
    b64,
    describe_error,
    drain,
    fingerprint_sha256,
    read_spec,
    run_scenario,
    run_steps,
)

import paramiko  # noqa: E402


def load_key(path, passphrase):
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey, paramiko.DSSKey):
        try:
            return cls.from_private_key_file(path, password=passphrase)
        except Exception as e:  # noqa: BLE001
            errors.append(describe_error(e))
    raise ValueError("cannot load key %s: %s" % (path, "; ".join(errors)))


class RecordingTransport(paramiko.Transport):
    """Notes the negotiated key exchange (Paramiko forgets it once the exchange is done)."""

    def _parse_kex_init(self, m):
        super()._parse_kex_init(m)
        engine = self.kex_engine
        if getattr(self, "pts_kex", None) is None:
            self.pts_kex = next((n for n, c in self._kex_info.items() if type(engine) is c and n in self.preferred_kex), None)


def restrict(transport, spec):
    opts = transport.get_security_options()
    if spec.get("kex"):
        opts.kex = tuple(spec["kex"])
    if spec.get("ciphers"):
        opts.ciphers = tuple(spec["ciphers"])
    if spec.get("macs"):
        opts.digests = tuple(spec["macs"])
    if spec.get("hostKeyAlgorithms"):
        opts.key_types = tuple(spec["hostKeyAlgorithms"])


def authenticate(t, spec):
    user = spec["username"]
    password = spec.get("password")
    remaining = None
    if spec.get("keyFile"):
        remaining = t.auth_publickey(user, load_key(spec["keyFile"], spec.get("keyPassphrase")))
        if not remaining or t.is_authenticated():
            return
        if password is None:
            raise paramiko.AuthenticationException("publickey: partial success, more needed: %s" % remaining)
    if password is None:
        raise paramiko.AuthenticationException("no password or key given")
    if spec.get("kbdint") or (remaining and "password" not in remaining and "keyboard-interactive" in remaining):
        t.auth_interactive(user, lambda title, instructions, prompts: [password for _ in prompts])
    else:
        t.auth_password(user, password)


def scenario(spec, result):
    deadline = time.monotonic() + spec.get("timeoutMs", 30000) / 1000.0
    sock = socket.create_connection((spec["host"], spec["port"]), timeout=10)
    t = RecordingTransport(sock)
    try:
        restrict(t, spec)
        t.start_client(timeout=max(1.0, deadline - time.monotonic()))
        key = t.get_remote_server_key()
        result["hostKeyType"] = key.get_name()
        result["hostKeyFingerprint"] = fingerprint_sha256(key.asbytes())
        result["hostKeyAlgorithm"] = getattr(t, "host_key_type", None)
        result["kex"] = getattr(t, "pts_kex", None)
        result["cipher"] = getattr(t, "local_cipher", None)
        result["mac"] = getattr(t, "local_mac", None)
        authenticate(t, spec)
        ch = t.open_session(timeout=max(1.0, deadline - time.monotonic()))
        term = spec.get("term", "xterm")
        cols, rows = int(spec.get("cols", 80)), int(spec.get("rows", 24))
        if spec.get("mode") == "shell":
            ch.get_pty(term, width=cols, height=rows)
            ch.invoke_shell()
            out = Output()

            def read_some(timeout):
                ch.settimeout(max(0.01, timeout))
                try:
                    data = ch.recv(65536)
                except socket.timeout:
                    return b""
                return data if data else None

            try:
                run_steps(
                    spec.get("steps"),
                    ch.sendall,
                    read_some,
                    lambda c, r: ch.resize_pty(width=c, height=r),
                    ch.shutdown_write,
                    out,
                    deadline,
                )
                if not drain(read_some, out, deadline):
                    result["timedOut"] = True
            except StepError as e:
                result["error"] = str(e)
            result["stdout"] = b64(out.data)
        else:
            if spec.get("pty"):
                ch.get_pty(term, width=cols, height=rows)
            ch.exec_command(spec.get("command", ""))
            import base64

            data = base64.b64decode(spec.get("input") or "")
            if data:
                ch.sendall(data)
            ch.shutdown_write()
            ch.settimeout(max(1.0, deadline - time.monotonic()))
            err = []
            # stderr on its own thread: neither stream may stall the other.
            reader = threading.Thread(target=lambda: err.append(ch.makefile_stderr("rb").read()), daemon=True)
            reader.start()
            try:
                out = ch.makefile("rb").read()
            except socket.timeout:
                out = b""
                result["timedOut"] = True
            reader.join(max(0.0, deadline - time.monotonic()))
            result["stdout"] = b64(out)
            result["stderr"] = b64(err[0] if err else b"")
        if ch.status_event.wait(max(0.0, deadline - time.monotonic())):
            status = ch.recv_exit_status()
            result["status"] = None if status == -1 else status
        elif not result["error"]:
            result["timedOut"] = True
    finally:
        t.close()


def main():
    run_scenario(scenario, read_spec(), {"stdout": "", "stderr": "", "status": None, "error": None, "timedOut": False})


main()
