"""AsyncSSH's client as a reference client for the tests; run by spec/support/servers/clients.ts
with /usr/bin/python3 (Debian's asyncssh imports only there).

Spec (JSON on stdin): the same as paramiko_client.py's: host, port, username, password, kbdint,
keyFile (+ keyPassphrase), newPassword (AsyncSSH only: answers a password-change request),
kex / ciphers / macs / hostKeyAlgorithms, timeoutMs; mode "exec"
(command, input base64, pty, term, cols, rows) or "shell" (term, cols, rows, steps).
Nothing from ~/.ssh, no agent, no known_hosts check, no ssh config.
Result (last stdout line, JSON): stdout, stderr (base64), status, exitSignal, hostKeyType,
hostKeyFingerprint, kex, cipher, mac, error, timedOut; passwordChangePrompts with newPassword.
"""

import asyncio
import base64
import sys
import time
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

from pts_client_common import DEFAULT_EXPECT_MS, Output, b64, describe_error, emit, read_spec  # noqa: E402

import asyncssh  # noqa: E402
import asyncssh.connection  # noqa: E402

# The negotiated key exchange is not exposed: note what the connection chooses.
chosen = {}
_choose_alg = asyncssh.connection.SSHConnection._choose_alg


def _recording_choose_alg(self, alg_type, local_algs, remote_algs):
    alg = _choose_alg(self, alg_type, local_algs, remote_algs)
    chosen.setdefault(alg_type, alg.decode("ascii") if isinstance(alg, bytes) else alg)
    return alg


asyncssh.connection.SSHConnection._choose_alg = _recording_choose_alg


def decode(v):
    return v.decode("ascii") if isinstance(v, bytes) else v


async def run_steps(proc, steps, out, deadline):
    """The asyncio twin of pts_client_common.run_steps (returns an error string or None)."""

    async def read_some(timeout):
        try:
            data = await asyncio.wait_for(proc.stdout.read(65536), max(0.01, timeout))
        except asyncio.TimeoutError:
            return b""
        return data if data else None

    for step in steps or []:
        if "line" in step:
            proc.stdin.write(step["line"].encode("utf-8") + b"\n")
        elif "send" in step:
            proc.stdin.write(step["send"].encode("utf-8"))
        elif "expect" in step:
            needle = step["expect"].encode("utf-8")
            limit = min(deadline, time.monotonic() + step.get("timeoutMs", DEFAULT_EXPECT_MS) / 1000.0)
            while not out.find(needle):
                left = limit - time.monotonic()
                if left <= 0:
                    return "expect %r: not seen in time" % step["expect"]
                chunk = await read_some(min(left, 0.5))
                if chunk is None:
                    return "expect %r: the session ended first" % step["expect"]
                out.add(chunk)
        elif "resize" in step:
            cols, rows = step["resize"]
            proc.change_terminal_size(int(cols), int(rows))
        elif "sleep" in step:
            await asyncio.sleep(step["sleep"] / 1000.0)
        elif step.get("eof"):
            proc.stdin.write_eof()
        else:
            return "unknown step %r" % (step,)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        chunk = await read_some(min(left, 0.5))
        if chunk is None:
            return None
        out.add(chunk)


async def session(spec, result, deadline):
    kwargs = dict(
        port=spec["port"],
        username=spec["username"],
        known_hosts=None,
        agent_path=None,
        config=None,
        client_keys=None,
        connect_timeout=10,
        login_timeout=max(1.0, deadline - time.monotonic()),
    )
    if spec.get("password") is not None:
        kwargs["password"] = spec["password"]
    if spec.get("newPassword") is not None:
        # An expired password (RFC 4252 section 8): answer the server's change requests.
        result["passwordChangePrompts"] = []

        class ChangingClient(asyncssh.SSHClient):
            def password_change_requested(self, prompt, lang):
                result["passwordChangePrompts"].append(prompt)
                return (spec["password"], spec["newPassword"])

        kwargs["client_factory"] = ChangingClient
    if spec.get("keyFile"):
        kwargs["client_keys"] = [asyncssh.read_private_key(spec["keyFile"], spec.get("keyPassphrase"))]
    if spec.get("kbdint"):
        kwargs["preferred_auth"] = "keyboard-interactive"
    for name, opt in (("kex", "kex_algs"), ("ciphers", "encryption_algs"), ("macs", "mac_algs"), ("hostKeyAlgorithms", "server_host_key_algs")):
        if spec.get(name):
            kwargs[opt] = spec[name]
    async with asyncssh.connect(spec["host"], **kwargs) as conn:
        key = conn.get_server_host_key()
        if key is not None:
            result["hostKeyType"] = decode(key.get_algorithm())
            result["hostKeyFingerprint"] = key.get_fingerprint("sha256")
        result["kex"] = chosen.get("key exchange")
        result["cipher"] = decode(conn.get_extra_info("send_cipher"))
        result["mac"] = decode(conn.get_extra_info("send_mac"))
        term = spec.get("term", "xterm")
        size = (int(spec.get("cols", 80)), int(spec.get("rows", 24)))
        if spec.get("mode") == "shell":
            proc = await conn.create_process(term_type=term, term_size=size, encoding=None)
            out = Output()
            err = await run_steps(proc, spec.get("steps"), out, deadline)
            result["stdout"] = b64(out.data)
            if err == "timeout":
                result["timedOut"] = True
                return
            if err:
                result["error"] = err
                return
            await asyncio.wait_for(proc.wait_closed(), max(0.1, deadline - time.monotonic()))
            result["status"] = proc.exit_status
            result["exitSignal"] = proc.exit_signal[0] if proc.exit_signal else None
        else:
            pty = dict(term_type=term, term_size=size) if spec.get("pty") else {}
            data = base64.b64decode(spec.get("input") or "")
            r = await asyncio.wait_for(
                conn.run(spec.get("command", ""), input=data, encoding=None, check=False, **pty),
                max(0.1, deadline - time.monotonic()),
            )
            result["stdout"] = b64(r.stdout)
            result["stderr"] = b64(r.stderr)
            result["status"] = r.exit_status
            result["exitSignal"] = r.exit_signal[0] if r.exit_signal else None


async def main():
    spec = read_spec()
    deadline = time.monotonic() + spec.get("timeoutMs", 30000) / 1000.0
    result = {"stdout": "", "stderr": "", "status": None, "error": None, "timedOut": False}
    try:
        await asyncio.wait_for(session(spec, result, deadline), max(0.1, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        result["timedOut"] = True
    except Exception as e:  # noqa: BLE001
        result["error"] = describe_error(e)
    emit(result)


asyncio.run(main())
