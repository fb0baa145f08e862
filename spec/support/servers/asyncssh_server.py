#!/usr/bin/python3
"""An AsyncSSH (2.10) SSH server for the paramiko-ts test suite.

Started by spec/support/servers/python-servers.ts with /usr/bin/python3 -W ignore. Listens on
127.0.0.1:<--port>, prints "READY <port>" once listening:

- auth: password (and AsyncSSH's keyboard-interactive emulation of it) for --user/--password;
  with --expired-password, that password asks for a change (RFC 4252 section 8), and a new one
  of 8 characters or more replaces both;
  publickey for the keys in --authorized-keys (a path where %u is the user name, loaded at each
  connection's auth start, so keys can be added while the server runs);
- session channels: exec (/bin/sh -c <command>), shell (/bin/sh), with or without a pty, env
  requests; stdout, stderr, stdin and EOF are forwarded, then the exit status (or exit-signal);
- the sftp subsystem, served by AsyncSSH's own SFTP server (relative paths start at --home);
- direct-tcpip (local forwarding) and tcpip-forward (remote forwarding; listeners bind loopback).

Exits on SIGTERM (hanging up running commands first), and when its stdin closes if
--watch-stdin is given.
"""

import argparse
import asyncio
import ctypes
import errno
import fcntl
import logging
import os
import pty
import signal
import socket
import struct
import sys
import termios
import threading
import warnings

warnings.filterwarnings("ignore")

import asyncssh  # noqa: E402

ARGS = None
LOOPBACK = ("127.0.0.1", "localhost", "::1")
BUF = 32768


LIVE = set()  # pids (= process groups) of running commands, hung up on SIGTERM


def on_sigterm():
    for pid in list(LIVE):
        try:
            os.killpg(pid, signal.SIGHUP)
        except OSError:
            pass
    os._exit(0)


def base_env():
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": ARGS.home,
        "USER": ARGS.user,
        "LOGNAME": ARGS.user,
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
    }


def free_loopback_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self._conn = conn

    def begin_auth(self, username):
        path = ARGS.authorized_keys.replace("%u", username)
        try:
            self._conn.set_authorized_keys(path)
        except (OSError, ValueError, asyncssh.KeyImportError):
            pass  # no file (yet), or nothing usable in it
        return True

    def password_auth_supported(self):
        return ARGS.password is not None

    def validate_password(self, username, password):
        if username == ARGS.user and ARGS.expired_password is not None and password == ARGS.expired_password:
            raise asyncssh.PasswordChangeRequired("Password expired: choose a new one")
        return username == ARGS.user and password == ARGS.password

    def change_password(self, username, old_password, new_password):
        # RFC 4252 section 8, for --expired-password: the old password must be the expired one;
        # a new one under 8 characters is refused with another change request.
        if username != ARGS.user or ARGS.expired_password is None or old_password != ARGS.expired_password:
            return False
        if len(new_password) < 8:
            raise asyncssh.PasswordChangeRequired("Too short: at least 8 characters")
        ARGS.password = new_password
        ARGS.expired_password = None
        return True

    def public_key_auth_supported(self):
        return True

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        return True  # direct-tcpip: AsyncSSH connects to the destination itself

    def server_requested(self, listen_host, listen_port):
        if listen_host in LOOPBACK:
            return True
        # Wildcard requests ('', '0.0.0.0'...) listen on loopback only, reporting the requested
        # address back in forwarded-tcpip opens, as a server bound to it would.
        port = listen_port or free_loopback_port()
        return self._conn.forward_local_port("127.0.0.1", port, listen_host, port)


def set_winsize(fd, size):
    cols, rows, xpix, ypix = size
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xpix, ypix))
    except OSError:
        pass


async def copy_out(reader, writer):
    """From a subprocess stream to an SSH stream, until EOF."""
    try:
        while True:
            data = await reader.read(BUF)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (OSError, asyncssh.Error, BrokenPipeError, ConnectionError):
        pass


async def feed_in(process, stdin, close, pid, resize=None):
    """From the SSH channel to the subprocess, then close its stdin at EOF. Window changes and
    "signal" requests arrive as exceptions raised by read()."""
    broken = False
    while True:
        try:
            data = await process.stdin.read(BUF)
        except asyncssh.TerminalSizeChanged as e:
            if resize:
                resize((e.width, e.height, e.pixwidth, e.pixheight))
            continue
        except asyncssh.SignalReceived as e:
            signum = getattr(signal, "SIG" + str(e.signal), None)
            if signum is not None:
                try:
                    os.killpg(pid, signum)
                except OSError:
                    pass
            continue
        except asyncssh.BreakReceived:
            continue
        except (asyncssh.Error, OSError, ConnectionError):
            break
        if not data:
            break
        if broken:
            continue
        try:
            r = stdin(data)
            if asyncio.iscoroutine(r):
                await r
        except OSError:
            broken = True
    close()


def finish(process, code):
    if code is not None and code < 0:
        name = signal.Signals(-code).name[3:] if -code in signal.Signals._value2member_map_ else "KILL"
        process.exit_with_signal(name)
    else:
        process.exit(code if code is not None else 255)


async def run_pipes(process, argv, env):
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=ARGS.home, start_new_session=True,
    )
    LIVE.add(proc.pid)

    def close_stdin():
        try:
            proc.stdin.close()
        except OSError:
            pass

    async def write(data):
        proc.stdin.write(data)
        await proc.stdin.drain()

    feeder = asyncio.ensure_future(feed_in(process, write, close_stdin, proc.pid))
    try:
        await asyncio.gather(copy_out(proc.stdout, process.stdout), copy_out(proc.stderr, process.stderr))
        code = await proc.wait()
    finally:
        LIVE.discard(proc.pid)
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGHUP)
            except OSError:
                pass
    feeder.cancel()
    return code


async def run_pty(process, argv, env, term, size):
    loop = asyncio.get_event_loop()
    master, slave = pty.openpty()
    set_winsize(slave, size)
    env["TERM"] = term

    def child_setup():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ARGS.home,
        preexec_fn=child_setup,
    )
    LIVE.add(proc.pid)
    os.close(slave)
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(master), "rb", 0)
    )

    # A pty cannot be half-closed: EOF from the client is ignored, as sshd does.
    feeder = asyncio.ensure_future(
        feed_in(process, lambda d: os.write(master, d), lambda: None, proc.pid, lambda size: set_winsize(master, size))
    )
    out = asyncio.ensure_future(copy_out(reader, process.stdout))
    try:
        code = await proc.wait()
        try:
            await asyncio.wait_for(out, 2)  # a background process may keep the pty open
        except asyncio.TimeoutError:
            pass
    finally:
        LIVE.discard(proc.pid)
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGHUP)
            except OSError:
                pass
        feeder.cancel()
        transport.close()
        os.close(master)
    return code


async def handle_process(process):
    env = base_env()
    env.update({str(k): str(v) for k, v in (process.env or {}).items()})
    command = process.command
    term = process.get_terminal_type()  # None without a pty request
    if command is not None:
        argv = ["/bin/sh", "-c", command]
    else:
        argv = ["/bin/sh", "-i"] if term is not None else ["/bin/sh"]
    try:
        if term is not None:
            code = await run_pty(process, argv, env, term or "dumb", process.get_terminal_size())
        else:
            code = await run_pipes(process, argv, env)
        finish(process, code)
    except Exception as e:  # noqa: BLE001
        logging.exception("session failed")
        try:
            process.stderr.write(("server error: %s\n" % e).encode())
        except Exception:
            pass
        process.exit(255)


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


async def serve():
    # SIGTERM hangs up running commands, then exits.
    asyncio.get_event_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
    keys = [asyncssh.read_private_key(p) for p in ARGS.host_key]
    try:
        server = await asyncssh.create_server(
            Server, "127.0.0.1", ARGS.port,
            server_host_keys=keys,
            process_factory=handle_process,
            encoding=None,
            line_editor=False,
            sftp_factory=True,
            allow_scp=True,
            agent_forwarding=True,
            x11_forwarding=False,
            login_timeout=60,
        )
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print("EADDRINUSE: Address already in use", file=sys.stderr, flush=True)
            os._exit(98)
        raise
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    await asyncio.Event().wait()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host-key", action="append", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default=None)
    ap.add_argument("--expired-password", default=None, help="accepted only to change it (RFC 4252 section 8)")
    ap.add_argument("--authorized-keys", required=True, help="path; %%u is replaced by the user name")
    ap.add_argument("--home", default=os.getcwd())
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--watch-stdin", action="store_true")
    ARGS = ap.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if ARGS.debug else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    if ARGS.debug:
        asyncssh.set_debug_level(2)
    die_with_parent()
    if ARGS.watch_stdin:

        def watch():
            try:
                sys.stdin.buffer.read()
            finally:
                on_sigterm()

        threading.Thread(target=watch, daemon=True).start()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
