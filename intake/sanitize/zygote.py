"""A warm sandbox: one process that has already loaded every cleaner and
forks a fresh child for each upload.

Starting Python and importing pikepdf, Pillow and lxml takes 100-150 ms, more
than cleaning a photo or a paper does; a fork takes about one. The zygote is
started once per web worker (`python -m intake.sanitize.zygote`, under
`unshare -rn` like any child, so every child it forks has no network either)
and never reads an upload itself: each child lowers its own limits, leads
its own session and closes every descriptor but its two pipes before it
reads a byte, exactly as a child started from scratch does
(intake.sanitize.child).

Protocol, over the Unix socket whose descriptor the worker names on the
command line (SOCK_SEQPACKET, so a message is a message): each job
is one message, `{"argv": [...]}` with three descriptors (the child's stdin,
its stdout, and the job's own socket). On the job's socket the zygote sends
`{"pid": N}` once the child runs and `{"exit": CODE}` once it has reaped it
(CODE as subprocess reports it: negative for a signal); the worker may send
`kill`, and closing the job's socket kills the child too. The zygote kills
and reaps its children itself, so a pid is never signalled after reuse.
When the worker's socket closes, the zygote kills what is left and exits.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import BinaryIO

PRELOAD = ("lxml.etree", "mutagen.mp3", "pikepdf", "pillow_heif", "PIL.Image", "PIL.ExifTags",
           "PIL.ImageOps", "PIL.ImageSequence", "PIL.TiffTags",
           *(f"intake.sanitize.{name}" for name in (
               "audio", "child", "gif", "jpeg", "media", "mp4", "office", "pdf", "pictures",
               "png", "raster", "svg", "webp")))


def _preload() -> None:
    """Everything a child may import, imported once here instead of per upload."""
    for name in PRELOAD:
        importlib.import_module(name)


def _run_child(argv: list[str], stdin: int, stdout: int) -> None:
    """In the forked child: never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        from intake.sanitize import child

        code = child.main(argv)
        sys.stdout.flush()
    finally:
        os._exit(code)


class _Job:
    def __init__(self, pid: int, reply: socket.socket):
        self.pid = pid
        self.reply = reply
        self.pidfd = os.pidfd_open(pid)
        self.reaped = False

    def kill(self) -> None:
        if not self.reaped:  # still ours: the pid cannot have been reused
            # The child first, in case it has not yet made its own group;
            # then the group, which holds any tool it started.
            for kill in (os.kill, os.killpg):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(self.pid, signal.SIGKILL)

    def reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.reaped = True
        return os.waitstatus_to_exitcode(status)


def _start(message: bytes, fds: list[int]) -> _Job | None:
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    stdin, stdout, reply_fd = fds
    reply = socket.socket(fileno=reply_fd)
    try:
        argv = [str(a) for a in json.loads(message)["argv"]]
        pid = os.fork()
        if pid == 0:
            reply.detach()
            _run_child(argv, stdin, stdout)
    except (ValueError, KeyError, TypeError, OSError):
        reply.close()
        return None
    finally:
        os.close(stdin)
        os.close(stdout)
    job = _Job(pid, reply)
    with contextlib.suppress(OSError):
        reply.sendall(json.dumps({"pid": pid}).encode())
    return job


def _finish(job: _Job, sel: selectors.BaseSelector) -> None:
    code = job.reap()
    sel.unregister(job.pidfd)
    os.close(job.pidfd)
    with contextlib.suppress(KeyError, ValueError):
        sel.unregister(job.reply)
    with contextlib.suppress(OSError):
        job.reply.sendall(json.dumps({"exit": code}).encode())
        # Unread requests would turn the close into a reset, which the
        # worker would see instead of the answer above.
        job.reply.setblocking(False)
        while job.reply.recv(64):
            pass
    job.reply.close()


def serve(control: socket.socket) -> int:
    _preload()
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ, None)
    jobs: dict[int, _Job] = {}
    try:
        while True:
            for key, _ in sel.select():
                if key.data is None:  # the worker: a new job, or gone
                    message, fds, _, _ = socket.recv_fds(control, 4096, 3)
                    if not message and not fds:
                        return 0
                    job = _start(message, fds)
                    if job is not None:
                        jobs[job.pid] = job
                        sel.register(job.pidfd, selectors.EVENT_READ, ("exited", job))
                        sel.register(job.reply, selectors.EVENT_READ, ("asked", job))
                    continue
                what, job = key.data
                if what == "exited":
                    _finish(job, sel)
                    del jobs[job.pid]
                    continue
                # the worker asks to kill, or has let go of the job
                try:
                    asked = job.reply.recv(64)
                except OSError:
                    asked = b""
                job.kill()
                if not asked:
                    sel.unregister(job.reply)
    finally:
        for job in jobs.values():
            job.kill()


# -- the worker's side --------------------------------------------------------

class ForkedChild:
    """A child the zygote forked, with the part of Popen's surface the runner
    uses: stdin, stdout, returncode, poll(), wait(), and kill()."""

    def __init__(self, pid: int, stdin: BinaryIO, stdout: BinaryIO, job: socket.socket):
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self._job = job
        self.returncode: int | None = None

    def _answer(self, timeout: float | None) -> None:
        if self.returncode is not None:
            return
        if not select.select([self._job], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired("sanitizer", timeout or 0)
        try:
            message = self._job.recv(256)
        except OSError:
            message = b""
        # Without an answer the zygote itself is gone, and killed its children.
        self.returncode = int(json.loads(message)["exit"]) if message else -signal.SIGKILL
        self._job.close()

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._answer(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._answer(timeout)
        return self.returncode  # type: ignore[return-value]

    def kill(self) -> None:
        """Kills the child and everything it started, then waits for it."""
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self._job.send(b"kill")
            self.wait()


class Zygote:
    """The worker's handle on its zygote, started on first use. One per
    process: a worker forked from a process that had one starts its own."""

    def __init__(self, command: Callable[[int], list[str]], env: dict[str, str]):
        self._command, self._env = command, env
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self._owner = 0

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                self._command(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd="/", env=self._env, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._control, self._owner = ours, os.getpid()
        return ours

    def _send(self, message: bytes, fds: list[int]) -> None:
        with self._lock:
            for attempt in (1, 2):
                control = self._control
                if control is None or self._owner != os.getpid() or self._exited():
                    control = self._start()
                try:
                    socket.send_fds(control, [message], fds)
                    return
                except OSError:
                    self.stop_locked()
                    if attempt == 2:
                        raise

    def _exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def spawn(self, argv: list[str], timeout: float = 30.0) -> ForkedChild:
        in_read, in_write = os.pipe()
        out_read, out_write = os.pipe()
        job, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            try:
                self._send(json.dumps({"argv": argv}).encode(),
                           [in_read, out_write, theirs.fileno()])
            finally:
                os.close(in_read)
                os.close(out_write)
                theirs.close()
            if not select.select([job], [], [], timeout)[0]:
                raise OSError("the sandbox did not start the cleaner")
            answer = job.recv(256)
            if not answer:
                raise OSError("the sandbox could not start the cleaner")
            pid = int(json.loads(answer)["pid"])
        except BaseException:
            job.close()
            os.close(in_write)
            os.close(out_read)
            raise
        return ForkedChild(pid, os.fdopen(in_write, "wb"), os.fdopen(out_read, "rb"), job)

    def stop_locked(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote kills its children and exits
        if self._process is not None and self._owner == os.getpid():
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._control = self._process = None

    def stop(self) -> None:
        with self._lock:
            self.stop_locked()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the terminal is the server's
    return serve(socket.socket(fileno=int(argv[0])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
