#!/usr/bin/python3
"""A Paramiko (2.12) SSH server for the paramiko-ts test suite.

Started by spec/support/servers/python-servers.ts with /usr/bin/python3 -W ignore. Listens on
127.0.0.1:<--port>, prints "READY <port>" once listening, serves every connection in a thread:

- auth: password and keyboard-interactive (one "Password: " prompt) for --user/--password;
  publickey for the keys listed in --authorized-keys (a path where %u is the user name, re-read
  at every attempt, so keys can be added while the server runs);
- session channels: exec (/bin/sh -c <command>), shell (/bin/sh), with or without a pty, env
  requests (all accepted), window-change; stdout, stderr, stdin and EOF are forwarded, then the
  exit status (or exit-signal) is sent; closing the channel early hangs the command up (SIGHUP);
- the sftp subsystem, served by Paramiko's SFTPServer over the local filesystem (relative paths
  start at --home);
- direct-tcpip (local forwarding) and tcpip-forward (remote forwarding; listeners bind loopback).

Exits on SIGTERM (hanging up running commands first), and when its stdin closes if
--watch-stdin is given.
"""

import argparse
import base64
import ctypes
import errno
import fcntl
import logging
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import warnings

warnings.filterwarnings("ignore")

import paramiko  # noqa: E402
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface  # noqa: E402
from paramiko.common import cMSG_CHANNEL_REQUEST  # noqa: E402

log = logging.getLogger("pts.paramiko_server")
ARGS = None
HOST_KEYS = []
LOOPBACK = ("127.0.0.1", "localhost", "::1")
BUF = 32768


# ---------------------------------------------------------------- authentication


def authorized(username, key):
    path = ARGS.authorized_keys.replace("%u", username)
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    blob = key.asbytes()
    for line in lines:
        parts = line.strip().split()
        if not parts or parts[0].startswith("#"):
            continue
        # The key type may follow options; the base64 blob follows the key type.
        for i, p in enumerate(parts[:-1]):
            if p.startswith(("ssh-", "ecdsa-", "sk-")):
                try:
                    if base64.b64decode(parts[i + 1]) == blob:
                        return True
                except Exception:
                    pass
                break
    return False


def base_env():
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": ARGS.home,
        "USER": ARGS.user,
        "LOGNAME": ARGS.user,
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
    }


def text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


# ---------------------------------------------------------------- sessions


def set_winsize(fd, cols, rows, xpixel=0, ypixel=0):
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, xpixel, ypixel))
    except OSError:
        pass


def send_exit_signal(chan, signum):
    """Paramiko has no API for exit-signal (RFC 4254 6.10): build the request by hand."""
    name = signal.Signals(signum).name[3:] if signum in signal.Signals._value2member_map_ else "KILL"
    m = paramiko.Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("exit-signal")
    m.add_boolean(False)
    m.add_string(name)
    m.add_boolean(False)
    m.add_string("")
    m.add_string("")
    chan.transport._send_user_message(m)


LIVE = set()  # running command processes, hung up on SIGTERM


def on_sigterm(*_):
    for p in list(LIVE):
        try:
            os.killpg(p.pid, signal.SIGHUP)
        except OSError:
            pass
    os._exit(0)


class Session(threading.Thread):
    """Runs one exec or shell request of a session channel."""

    def __init__(self, conn, chan, command):
        super().__init__(daemon=True)
        self.conn = conn
        self.chan = chan
        self.command = command
        self.proc = None
        self.master = None

    def run(self):
        chan = self.chan
        cid = chan.get_id()
        env = base_env()
        env.update(self.conn.envs.pop(cid, {}))
        pty_info = self.conn.ptys.get(cid)
        if self.command is not None:
            argv = ["/bin/sh", "-c", self.command]
        else:
            argv = ["/bin/sh", "-i"] if pty_info else ["/bin/sh"]
        try:
            if pty_info:
                code = self.run_pty(argv, env, pty_info)
            else:
                code = self.run_pipes(argv, env)
            if not chan.closed:
                chan.shutdown_write()
                if code is not None and code < 0:
                    send_exit_signal(chan, -code)
                elif code is not None:
                    chan.send_exit_status(code)
        except Exception:
            log.exception("session failed")
        finally:
            if self.proc is not None:
                LIVE.discard(self.proc)
            self.conn.sessions.pop(cid, None)
            try:
                chan.close()
            except Exception:
                pass

    def hangup(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGHUP)
            except OSError:
                pass

    def pump_out(self, fd, send):
        while True:
            try:
                data = os.read(fd, BUF)
            except OSError:  # EIO: the pty's last slave fd closed
                break
            if not data:
                break
            try:
                send(data)
            except Exception:  # the client closed the channel
                self.hangup()
                break

    def run_pipes(self, argv, env):
        p = self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=ARGS.home, start_new_session=True, bufsize=0,
        )
        LIVE.add(p)

        def feed():
            broken = False
            while True:
                data = self.chan.recv(BUF)
                if not data:
                    break
                if broken:
                    continue  # keep reading so that the window stays open
                try:
                    p.stdin.write(data)
                except OSError:
                    broken = True
            try:
                p.stdin.close()
            except OSError:
                pass
            if self.chan.closed:
                self.hangup()

        threading.Thread(target=feed, daemon=True).start()
        outs = [
            threading.Thread(target=self.pump_out, args=(p.stdout.fileno(), self.chan.sendall), daemon=True),
            threading.Thread(target=self.pump_out, args=(p.stderr.fileno(), self.chan.sendall_stderr), daemon=True),
        ]
        for t in outs:
            t.start()
        for t in outs:
            t.join()
        code = p.wait()
        p.stdout.close()
        p.stderr.close()
        return code

    def run_pty(self, argv, env, info):
        term, cols, rows, xpix, ypix = info
        master, slave = pty.openpty()
        self.master = master
        set_winsize(slave, cols, rows, xpix, ypix)
        env["TERM"] = term

        def child_setup():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        p = self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ARGS.home,
            preexec_fn=child_setup, close_fds=True,
        )
        LIVE.add(p)
        os.close(slave)

        def feed():
            # A pty cannot be half-closed: EOF from the client is ignored, as sshd does.
            while True:
                data = self.chan.recv(BUF)
                if not data:
                    break
                try:
                    os.write(master, data)
                except OSError:
                    break
            if self.chan.closed:
                self.hangup()

        threading.Thread(target=feed, daemon=True).start()
        out = threading.Thread(target=self.pump_out, args=(master, self.chan.sendall), daemon=True)
        out.start()
        code = p.wait()
        out.join(2)  # a background process may keep the pty open
        self.master = None
        os.close(master)
        return code


# ---------------------------------------------------------------- forwarding


def pump(chan, sock):
    """Copies both ways between a channel and a socket, half-closing each side on EOF."""

    def to_chan():
        try:
            while True:
                data = sock.recv(BUF)
                if not data:
                    break
                chan.sendall(data)
        except Exception:
            pass
        try:
            chan.shutdown_write()
        except Exception:
            pass

    def to_sock():
        try:
            while True:
                data = chan.recv(BUF)
                if not data:
                    break
                sock.sendall(data)
        except Exception:
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR if chan.closed else socket.SHUT_WR)
        except OSError:
            pass

    a = threading.Thread(target=to_chan, daemon=True)
    b = threading.Thread(target=to_sock, daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    chan.close()
    sock.close()


def start_pump(chan, sock):
    threading.Thread(target=pump, args=(chan, sock), daemon=True).start()


# ---------------------------------------------------------------- SFTP


class LocalHandle(SFTPHandle):
    def stat(self):
        try:
            return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    def chattr(self, attr):
        try:
            SFTPServer.set_file_attr(self.filename, attr)
            return paramiko.SFTP_OK
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)


def errno_result(fn):
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)

    return wrapper


class LocalSFTPServer(SFTPServerInterface):
    """The local filesystem, as the server's user sees it; relative paths start at --home."""

    def canonicalize(self, path):
        path = text(path)
        if not os.path.isabs(path):
            path = os.path.join(ARGS.home, path)
        return os.path.normpath(path)

    @errno_result
    def list_folder(self, path):
        path = self.canonicalize(path)
        out = []
        for name in os.listdir(path):
            attr = SFTPAttributes.from_stat(os.lstat(os.path.join(path, name)))
            attr.filename = name
            out.append(attr)
        return out

    @errno_result
    def stat(self, path):
        return SFTPAttributes.from_stat(os.stat(self.canonicalize(path)))

    @errno_result
    def lstat(self, path):
        return SFTPAttributes.from_stat(os.lstat(self.canonicalize(path)))

    @errno_result
    def open(self, path, flags, attr):
        path = self.canonicalize(path)
        mode = getattr(attr, "st_mode", None)
        fd = os.open(path, flags, mode if mode is not None else 0o666)
        if (flags & os.O_CREAT) and attr is not None:
            attr._flags &= ~attr.FLAG_PERMISSIONS
            SFTPServer.set_file_attr(path, attr)
        if flags & os.O_WRONLY:
            fstr = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fstr = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fstr = "rb"
        f = os.fdopen(fd, fstr)
        h = LocalHandle(flags)
        h.filename = path
        h.readfile = f
        h.writefile = f
        return h

    @errno_result
    def remove(self, path):
        os.remove(self.canonicalize(path))
        return paramiko.SFTP_OK

    @errno_result
    def rename(self, oldpath, newpath):
        # SFTP v3 rename does not replace an existing target (posix-rename does).
        newpath = self.canonicalize(newpath)
        if os.path.lexists(newpath):
            return paramiko.SFTP_FAILURE
        os.rename(self.canonicalize(oldpath), newpath)
        return paramiko.SFTP_OK

    @errno_result
    def posix_rename(self, oldpath, newpath):
        os.rename(self.canonicalize(oldpath), self.canonicalize(newpath))
        return paramiko.SFTP_OK

    @errno_result
    def mkdir(self, path, attr):
        path = self.canonicalize(path)
        mode = getattr(attr, "st_mode", None)
        os.mkdir(path, mode & 0o7777 if mode is not None else 0o777)
        if attr is not None:
            attr._flags &= ~attr.FLAG_PERMISSIONS
            SFTPServer.set_file_attr(path, attr)
        return paramiko.SFTP_OK

    @errno_result
    def rmdir(self, path):
        os.rmdir(self.canonicalize(path))
        return paramiko.SFTP_OK

    @errno_result
    def chattr(self, path, attr):
        SFTPServer.set_file_attr(self.canonicalize(path), attr)
        return paramiko.SFTP_OK

    @errno_result
    def symlink(self, target_path, path):
        os.symlink(text(target_path), self.canonicalize(path))
        return paramiko.SFTP_OK

    @errno_result
    def readlink(self, path):
        return os.readlink(self.canonicalize(path))


# ---------------------------------------------------------------- connections


class Server(paramiko.ServerInterface):
    def __init__(self, conn):
        self.conn = conn
        self.kbd_user = None

    def get_allowed_auths(self, username):
        return "publickey,password,keyboard-interactive"

    def check_auth_password(self, username, password):
        ok = username == ARGS.user and password == ARGS.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL if authorized(username, key) else paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        self.kbd_user = username
        return paramiko.InteractiveQuery("", "", ("Password: ", False))

    def check_auth_interactive_response(self, responses):
        ok = self.kbd_user == ARGS.user and len(responses) == 1 and responses[0] == ARGS.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_env_request(self, channel, name, value):
        self.conn.envs.setdefault(channel.get_id(), {})[text(name)] = text(value)
        return True

    def check_channel_pty_request(self, channel, term, width, height, pixelwidth, pixelheight, modes):
        self.conn.ptys[channel.get_id()] = (text(term) or "dumb", width, height, pixelwidth, pixelheight)
        return True

    def check_channel_window_change_request(self, channel, width, height, pixelwidth, pixelheight):
        cid = channel.get_id()
        if cid in self.conn.ptys:
            self.conn.ptys[cid] = (self.conn.ptys[cid][0], width, height, pixelwidth, pixelheight)
        s = self.conn.sessions.get(cid)
        if s is not None and s.master is not None:
            set_winsize(s.master, width, height, pixelwidth, pixelheight)
        return True

    def start_session(self, channel, command):
        cid = channel.get_id()
        if cid in self.conn.sessions:
            return False
        s = Session(self.conn, channel, command)
        self.conn.sessions[cid] = s
        # The request's reply goes out as soon as this returns; the command starts a few ms later.
        s.start()
        return True

    def check_channel_exec_request(self, channel, command):
        return self.start_session(channel, text(command))

    def check_channel_shell_request(self, channel):
        return self.start_session(channel, None)

    def check_channel_direct_tcpip_request(self, chanid, origin, destination):
        try:
            sock = socket.create_connection(destination, timeout=10)
        except OSError:
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        sock.settimeout(None)
        self.conn.pending_direct[chanid] = sock
        return paramiko.OPEN_SUCCEEDED

    def check_port_forward_request(self, address, port):
        host = "::1" if address == "::1" else "127.0.0.1"  # never listen beyond loopback
        family = socket.AF_INET6 if host == "::1" else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lsock.bind((host, port))
        except OSError:
            lsock.close()
            return False
        lsock.listen(16)
        bound = lsock.getsockname()[1]
        self.conn.listeners[(address, bound)] = lsock
        transport = self.conn.transport

        def accept_loop():
            while True:
                try:
                    csock, peer = lsock.accept()
                except OSError:
                    return
                try:
                    chan = transport.open_forwarded_tcpip_channel(peer[:2], (address, bound))
                except Exception:
                    csock.close()
                    continue
                start_pump(chan, csock)

        threading.Thread(target=accept_loop, daemon=True).start()
        return bound

    def cancel_port_forward_request(self, address, port):
        lsock = self.conn.listeners.pop((address, port), None)
        if lsock is not None:
            try:
                lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            lsock.close()

    def check_global_request(self, kind, msg):
        return False


class Connection(threading.Thread):
    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.transport = None
        self.envs = {}
        self.ptys = {}
        self.sessions = {}
        self.pending_direct = {}
        self.listeners = {}

    def run(self):
        t = self.transport = paramiko.Transport(self.sock)
        for k in HOST_KEYS:
            t.add_server_key(k)
        t.set_subsystem_handler("sftp", SFTPServer, LocalSFTPServer)
        try:
            t.start_server(server=Server(self))
        except (paramiko.SSHException, EOFError, OSError):
            t.close()
            return
        try:
            while t.is_active():
                chan = t.accept(0.5)
                if chan is None:
                    continue
                sock = self.pending_direct.pop(chan.get_id(), None)
                if sock is not None:
                    start_pump(chan, sock)
        finally:
            for lsock in list(self.listeners.values()):
                try:
                    lsock.close()
                except OSError:
                    pass
            for s in list(self.sessions.values()):
                s.hangup()


def load_host_key(path):
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey, paramiko.DSSKey):
        try:
            return cls.from_private_key_file(path)
        except Exception:
            continue
    sys.exit("cannot load host key %s" % path)


def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host-key", action="append", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default=None)
    ap.add_argument("--authorized-keys", required=True, help="path; %%u is replaced by the user name")
    ap.add_argument("--home", default=os.getcwd())
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--watch-stdin", action="store_true")
    ARGS = ap.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if ARGS.debug else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(threadName)s %(name)s %(levelname)s: %(message)s",
    )
    die_with_parent()
    # Python runs signal handlers on the main thread only: its accept() below times out often, so
    # that SIGTERM hangs up running commands and exits at once.
    signal.signal(signal.SIGTERM, on_sigterm)
    HOST_KEYS.extend(load_host_key(p) for p in ARGS.host_key)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        lsock.bind(("127.0.0.1", ARGS.port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print("EADDRINUSE: Address already in use", file=sys.stderr, flush=True)
            os._exit(98)
        raise
    lsock.listen(128)
    lsock.settimeout(0.2)
    if ARGS.watch_stdin:

        def watch():
            try:
                sys.stdin.buffer.read()
            finally:
                on_sigterm()

        threading.Thread(target=watch, daemon=True).start()
    print("READY %d" % lsock.getsockname()[1], flush=True)
    while True:
        try:
            sock, _ = lsock.accept()
        except (socket.timeout, InterruptedError):
            continue
        sock.settimeout(None)
        Connection(sock).start()


if __name__ == "__main__":
    main()
