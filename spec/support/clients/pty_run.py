"""Runs a client program (ssh -tt, plink -t, dbclient -t) on a fresh pseudo-terminal of a given
size and drives it with steps (see pts_client_common.py): what the program prints to the terminal
is collected, `resize` changes the terminal's size (the kernel sends the program SIGWINCH, and it
sends the server a window-change).

Spec (JSON on stdin): argv (argv[0] an absolute path), env, cols, rows, steps, timeoutMs,
stderrPath (the program's stderr goes there instead of the terminal), settleMs (pause after each
resize: ssh may forward input that is already waiting before the window-change).

Result (last stdout line): {"output": b64, "status": n|null, "signal": n|null, "timedOut": bool,
"error": str|null}.
"""

import ctypes
import fcntl
import os
import select
import signal
import struct
import sys
import termios
import time

sys.dont_write_bytecode = True
from pts_client_common import Output, StepError, b64, drain, emit, read_spec, run_steps  # noqa: E402

PR_SET_PDEATHSIG = 1


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def main():
    spec = read_spec()
    deadline = time.monotonic() + spec.get("timeoutMs", 30000) / 1000.0
    argv = spec["argv"]
    env = spec.get("env") or {}
    master, slave = os.openpty()
    set_size(slave, int(spec.get("cols", 80)), int(spec.get("rows", 24)))
    # The terminal keeps the kernel's default (cooked) modes: the client sends them to the server
    # with its pty request, as from a real terminal. Input waits until the client has put the
    # terminal in raw mode (see wait_raw), or the terminal itself would echo it.
    err_fd = None
    if spec.get("stderrPath"):
        err_fd = os.open(spec["stderrPath"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            os.dup2(slave, 0)
            os.dup2(slave, 1)
            os.dup2(err_fd if err_fd is not None else slave, 2)
            os.closerange(3, 1024)
            # The program dies with this wrapper (a timeout SIGKILLs the wrapper): it runs in its
            # own session, out of reach of a process-group kill.
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() == 1:
                os._exit(127)
            os.execve(argv[0], argv, env)
        except BaseException as e:  # noqa: BLE001
            os.write(2, ("pty_run: exec %s failed: %s\n" % (argv[0], e)).encode())
        os._exit(127)
    os.close(slave)
    if err_fd is not None:
        os.close(err_fd)

    out = Output()
    closed = [False]

    def read_some(timeout):
        if closed[0]:
            return None
        r, _, _ = select.select([master], [], [], max(0.0, timeout))
        if not r:
            return b""
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every slave fd is closed (the program exited)
            data = b""
        if not data:
            closed[0] = True
            return None
        return data

    raw_seen = [False]

    def wait_raw():
        # tcgetattr on the master reads the slave's modes; the client clears ECHO going raw.
        limit = min(deadline, time.monotonic() + 10)
        while not raw_seen[0] and time.monotonic() < limit:
            if not termios.tcgetattr(master)[3] & termios.ECHO:
                raw_seen[0] = True
                return
            time.sleep(0.01)

    def send(data):
        wait_raw()
        while data:
            n = os.write(master, data)
            data = data[n:]

    def eof():
        send(b"\x04")  # the terminal's EOF character (raw mode on the client side passes it on)

    error = None
    timed_out = False
    try:
        run_steps(
            spec.get("steps"),
            send,
            read_some,
            lambda c, r: set_size(master, c, r),
            eof,
            out,
            deadline,
            spec.get("settleMs", 250) / 1000.0,
        )
        if not drain(read_some, out, deadline):
            timed_out = True
    except StepError as e:
        error = str(e)
    except OSError as e:
        error = "pty_run: %s" % e

    status = sig = None
    if error or timed_out:
        # Give the program a moment to end by itself (it may be closing), then kill it.
        for _ in range(10):
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            _, st = os.waitpid(pid, 0)
    else:
        _, st = os.waitpid(pid, 0)
    if os.WIFEXITED(st):
        status = os.WEXITSTATUS(st)
    elif os.WIFSIGNALED(st):
        sig = os.WTERMSIG(st)
    if error is not None and not timed_out:
        drain(read_some, out, time.monotonic() + 0.2)
    emit({"output": b64(out.data), "status": status, "signal": sig, "timedOut": timed_out, "error": error})


main()
