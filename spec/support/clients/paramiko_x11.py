"""Paramiko's client asking for X11 forwarding (Channel.request_x11), then taking the x11 channel
the server opens; run by spec/x11.spec.ts with /usr/bin/python3 (Debian's paramiko).

Spec (JSON on stdin):
  host, port, username, password, timeoutMs;
  requests: a list, one session channel each; an entry is {} for Paramiko's defaults or any of
    screen, protocol, cookie, single (request_x11's keyword arguments);
  accept: after the requests (and a "ready@pts-test" global request saying they are done, so the
    server opens no x11 channel before Paramiko takes it), wait for one x11 channel, read one line from it, answer
    "reply:" + that line, then read until EOF;
  handler: take the channel through a request_x11 handler (which sees the originator address)
    instead of Transport.accept().
Result (last stdout line, JSON): requests (per request: cookie (str) or error), x11 (received
line, base64), origin ([addr, port], handler mode), error ("ExceptionName: message") or null.
"""

import queue
import socket
import sys
import time
import warnings

sys.dont_write_bytecode = True
warnings.filterwarnings("ignore")

from pts_client_common import b64, describe_error, read_spec, run_scenario  # noqa: E402

import paramiko  # noqa: E402


def as_text(v):
    return v.decode("ascii") if isinstance(v, bytes) else v


def read_line(ch, deadline):
    data = b""
    while not data.endswith(b"\n"):
        ch.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = ch.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def scenario(spec, result):
    deadline = time.monotonic() + spec.get("timeoutMs", 20000) / 1000.0
    sock = socket.create_connection((spec["host"], spec["port"]), timeout=10)
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=max(1.0, deadline - time.monotonic()))
        t.auth_password(spec["username"], spec["password"])
        arrived = queue.Queue()
        handler = (lambda ch, origin: arrived.put((ch, origin))) if spec.get("handler") else None
        sessions = []
        for r in spec.get("requests", []):
            ch = t.open_session(timeout=max(1.0, deadline - time.monotonic()))
            sessions.append(ch)
            kwargs = {}
            for key, name in (("screen", "screen_number"), ("protocol", "auth_protocol"), ("cookie", "auth_cookie"), ("single", "single_connection")):
                if key in r:
                    kwargs[name] = r[key]
            if handler:
                kwargs["handler"] = handler
            try:
                result["requests"].append({"cookie": as_text(ch.request_x11(**kwargs)), "error": None})
            except Exception as e:  # noqa: BLE001
                result["requests"].append({"cookie": None, "error": describe_error(e)})
        # Paramiko takes x11 channels only after request_x11 has returned: tell the server.
        t.global_request("ready@pts-test", wait=True)
        if spec.get("accept"):
            wait = max(1.0, deadline - time.monotonic())
            if handler:
                try:
                    x, origin = arrived.get(timeout=wait)
                    result["origin"] = list(origin)
                except queue.Empty:
                    x = None
            else:
                x = t.accept(wait)
            if x is None:
                raise paramiko.SSHException("no x11 channel arrived")
            line = read_line(x, deadline)
            result["x11"] = b64(line)
            x.sendall(b"reply:" + line)
            x.shutdown_write()
            read_line(x, deadline)  # until the server closes
            x.close()
        for ch in sessions:
            ch.close()
    finally:
        t.close()


def main():
    run_scenario(scenario, read_spec(), {"requests": [], "x11": None, "origin": None, "error": None})


main()
