"""A warm sandbox: one process that has already loaded every cleaner and
forks a fresh child for each upload.

Starting Python and importing pikepdf, Pillow and lxml takes 100-150 ms, more
than cleaning a photo or a paper does; a fork takes about one. The zygote is
started once per web worker (`python -m intake.server.sanitize.zygote`, under
`unshare -rn` like any child, so every child it forks has no network either)
and never reads an upload itself: each child lowers its own limits, leads
its own session and closes every descriptor but its two pipes before it
reads a byte, exactly as a child started from scratch does
(intake.server.sanitize.child).

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
import ctypes
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
import traceback
from collections.abc import Callable
from typing import BinaryIO

from intake.server.sanitize.protocol import OUT_OF_MEMORY

PRELOAD = ("lxml.etree", "mutagen.mp3", "mutagen.flac", "mutagen.oggvorbis", "mutagen.oggopus",
           "pikepdf", "pillow_heif", "PIL.Image", "PIL.ExifTags", "PIL.ImageOps",
           "PIL.ImageSequence", "PIL.TiffTags", "PIL.AvifImagePlugin", "PIL.PpmImagePlugin",
           "PIL.features", "uuid",
           *(f"intake.server.sanitize.{name}" for name in (
               "audio", "child", "confine", "detect", "gif", "heif", "iff", "jpeg", "jxl", "media",
               "mp4", "office", "pdf", "dispatch", "png", "raster", "svg", "verify", "webp")))


def _preload() -> None:
    """Everything a child may import, imported once here instead of per upload,
    and libmagic's database loaded: a child confines itself before it reads,
    and the sandbox hides where libraries are looked for."""
    for name in PRELOAD:
        importlib.import_module(name)
    from intake.server.sanitize import confine, detect

    detect.prepare()
    confine.prepare()


_LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


def _isolate(zygote: int, own_namespace: bool) -> None:
    """In the forked child, before anything else: what a child started from
    scratch gets by being a process of its own.

    Children of one zygote share its user namespace, where they hold every
    capability: without a namespace of its own, a child taken over by a
    hostile file could read a sibling's upload out of /proc/PID/mem, or
    write into the zygote. Not dumpable covers the case where no namespace
    can be made. And the child dies with the zygote, so no child outlives
    the one process that may kill it."""
    # Where the zygote has a namespace of its own (started under unshare),
    # a child that cannot leave it would keep every capability in it: it
    # stops. Where namespaces are off altogether, not dumpable is enough.
    if _LIBC.unshare(CLONE_NEWUSER) != 0 and own_namespace:
        os._exit(1)
    if _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 or \
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(1)
    if os.getppid() != zygote:  # it died before the line above
        os._exit(1)


def _run_child(argv: list[str], stdin: int, stdout: int, zygote: int,
               own_namespace: bool) -> None:
    """In the forked child: never returns."""
    code = 1
    try:
        os.setsid()
        _isolate(zygote, own_namespace)
        for number in (signal.SIGCHLD, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        # Not the zygote's stderr, which is the worker's log: what a library
        # prints about a file may quote it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        from intake.server.sanitize import child

        code = child.main(argv)
        sys.stdout.flush()
    except MemoryError:
        code = OUT_OF_MEMORY
    finally:
        os._exit(code)


class _Job:
    def __init__(self, pid: int, reply: socket.socket, pidfd: int):
        self.pid, self.reply, self.pidfd = pid, reply, pidfd
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


def _start(message: bytes, fds: list[int], own_namespace: bool) -> _Job | None:
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    stdin, stdout, reply_fd = fds
    reply = socket.socket(fileno=reply_fd)
    zygote = os.getpid()
    try:
        argv = [str(a) for a in json.loads(message)["argv"]]
        pid = os.fork()
        if pid == 0:
            reply.detach()
            _run_child(argv, stdin, stdout, zygote, own_namespace)
    except (ValueError, KeyError, TypeError, OSError):
        reply.close()
        return None
    finally:
        os.close(stdin)
        os.close(stdout)
    try:
        job = _Job(pid, reply, os.pidfd_open(pid))
    except OSError:  # cannot watch it: it must not run unwatched
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reply.close()
        return None
    with contextlib.suppress(OSError):
        reply.sendall(json.dumps({"pid": pid}).encode())
    return job


def _finish(job: _Job, sel: selectors.BaseSelector) -> None:
    code = job.reap()
    sel.unregister(job.pidfd)
    os.close(job.pidfd)
    if job.reply.fileno() >= 0:
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


def _asked(job: _Job, sel: selectors.BaseSelector) -> None:
    """The worker asks to kill, or has let go of the job (its socket closed)."""
    if job.reaped:
        return  # answered already, in the same round of events
    try:
        asked = job.reply.recv(64)
    except OSError:
        asked = b""
    job.kill()
    if not asked:
        sel.unregister(job.reply)


def serve(control: socket.socket, own_namespace: bool) -> int:
    _preload()
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ, None)
    jobs: dict[int, _Job] = {}
    accepting = True
    try:
        while accepting or jobs:
            for key, _ in sel.select():
                try:
                    if key.data is None:
                        message, fds, _, _ = socket.recv_fds(control, 4096, 3)
                        if not message and not fds:
                            # The worker closed it: no new jobs. Those running
                            # finish, or die when their job's socket closes.
                            sel.unregister(control)
                            accepting = False
                            continue
                        job = _start(message, fds, own_namespace)
                        if job is not None:
                            jobs[job.pid] = job
                            sel.register(job.pidfd, selectors.EVENT_READ, ("exited", job))
                            sel.register(job.reply, selectors.EVENT_READ, ("asked", job))
                    elif key.data[0] == "exited":
                        _finish(key.data[1], sel)
                        del jobs[key.data[1].pid]
                    else:
                        _asked(key.data[1], sel)
                except Exception:  # noqa: BLE001 - one job's trouble must not end the others
                    traceback.print_exc()
        return 0
    finally:
        for job in jobs.values():
            job.kill()


# -- the worker's side --------------------------------------------------------

SPAWN_SECONDS = 5.0  # for the zygote to fork; it answers in about a millisecond
KILL_SECONDS = 10.0  # for the zygote to kill and reap a child it was asked to kill
CRASHES = {-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS, -signal.SIGILL}


def _readable(sock: socket.socket, timeout: float | None) -> bool:
    poller = select.poll()  # not select(): a worker may hold descriptors past 1024
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))


class ForkedChild:
    """A child the zygote forked, with the part of Popen's surface the runner
    uses: stdin, stdout, returncode, poll(), wait(), and kill()."""

    def __init__(self, pid: int, stdin: BinaryIO, stdout: BinaryIO, job: socket.socket,
                 zygote: Zygote, process: subprocess.Popen):
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self._job, self._zygote, self._process = job, zygote, process
        self.returncode: int | None = None

    def _answer(self, timeout: float | None) -> None:
        if self.returncode is not None:
            return
        if not _readable(self._job, timeout):
            raise subprocess.TimeoutExpired("sanitizer", timeout or 0)
        try:
            message = self._job.recv(256)
        except OSError:
            message = b""
        # Without an answer the zygote is gone, and its children died with it.
        self.returncode = int(json.loads(message)["exit"]) if message else -signal.SIGKILL
        self._job.close()
        if self.returncode in CRASHES:
            # The next child gets a fresh zygote, with its own memory layout:
            # a crash may have been an attempt to learn this one's.
            self._zygote.retire(self._process)

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._answer(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._answer(timeout)
        return self.returncode  # type: ignore[return-value]

    def kill(self) -> None:
        """Kills the child and everything it started, then waits for it; a
        zygote that does not do so in time is killed, and the child with it."""
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self._job.send(b"kill")
            try:
                self.wait(KILL_SECONDS)
            except subprocess.TimeoutExpired:
                self._zygote.abandon(self._process)
                self.wait()


class Zygote:
    """The worker's handle on its zygote, started on first use or by start()
    (a web worker calls it as it begins to serve). One per process: a worker
    forked from a process that had one starts its own."""

    def __init__(self, command: Callable[[int], list[str]], env: dict[str, str]):
        self._command, self._env = command, env
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen | None = None
        self._owner = 0
        self._retired: list[subprocess.Popen] = []  # finishing their last jobs

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # stderr stays the worker's: a zygote's trouble reaches its log.
            self._process = subprocess.Popen(
                self._command(theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                cwd="/", env=self._env, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(SPAWN_SECONDS)  # a stuck zygote must not hold the lock for good
        self._control, self._owner = ours, os.getpid()

    def start(self) -> None:
        """Starts this process's zygote now, if it has none running, so that
        the first upload does not wait for it to load the cleaners (about
        0.3 s, in the background while the worker serves)."""
        with self._lock:
            self._running_locked()

    def _running_locked(self) -> None:
        """This process's own zygote, running: a dead one let go, a new one started."""
        if self._owner != os.getpid():  # inherited across a fork: not ours
            self._control = self._process = None
        elif self._process is not None and self._process.poll() is not None:
            self._let_go_locked()
        if self._control is None:
            self._start()

    def _let_go_locked(self) -> None:
        """Stops sending jobs to the current zygote; it finishes those it has."""
        if self._control is not None:
            self._control.close()
        if self._process is not None and self._owner == os.getpid():
            self._retired.append(self._process)
        self._control = self._process = None

    def _send(self, message: bytes, fds: list[int]) -> subprocess.Popen:
        with self._lock:
            self._retired = [p for p in self._retired if p.poll() is None]
            for attempt in (1, 2):
                self._running_locked()
                try:
                    socket.send_fds(self._control, [message], fds)  # type: ignore[arg-type]
                    return self._process  # type: ignore[return-value]
                except OSError:  # gone, or too slow to take the job: the next one starts
                    self._let_go_locked()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def spawn(self, argv: list[str]) -> ForkedChild:
        with contextlib.ExitStack() as cleanup:
            in_read, in_write = os.pipe()
            cleanup.callback(os.close, in_write)
            with contextlib.ExitStack() as theirs_only:  # the child's ends: closed once sent
                theirs_only.callback(os.close, in_read)
                out_read, out_write = os.pipe()
                cleanup.callback(os.close, out_read)
                theirs_only.callback(os.close, out_write)
                job, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                cleanup.callback(job.close)
                theirs_only.callback(theirs.close)
                process = self._send(json.dumps({"argv": argv}).encode(),
                                     [in_read, out_write, theirs.fileno()])
            # Only the zygote holds the job's other end now: if it gives up
            # on the job, this end reads as closed at once.
            if not _readable(job, SPAWN_SECONDS):
                self.retire(process)  # slow, not dead: its other jobs go on
                raise OSError("the sandbox did not start the cleaner")
            try:
                pid = int(json.loads(job.recv(256))["pid"])
            except (ValueError, KeyError, TypeError) as exc:
                raise OSError("the sandbox could not start the cleaner") from exc
            cleanup.pop_all()
        return ForkedChild(pid, os.fdopen(in_write, "wb"), os.fdopen(out_read, "rb"), job,
                           self, process)

    def retire(self, process: subprocess.Popen) -> None:
        """The next job goes to a new zygote; this one finishes what it has."""
        with self._lock:
            if process is self._process:
                self._let_go_locked()

    def _abandon_locked(self, process: subprocess.Popen | None) -> None:
        if process is self._process:
            self._let_go_locked()
        if process is not None and self._owner == os.getpid():
            process.kill()  # its children die with it (PR_SET_PDEATHSIG)

    def abandon(self, process: subprocess.Popen) -> None:
        """A zygote that does not answer: killed, and its children with it."""
        with self._lock:
            self._abandon_locked(process)

    def stop(self) -> None:
        """Ends the zygotes and waits for them (for tests and shutdown)."""
        with self._lock:
            self._let_go_locked()
            for process in self._retired:
                try:
                    process.wait(timeout=KILL_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._retired.clear()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the terminal is the server's
    # Second argument: "own-namespace" when started under unshare.
    return serve(socket.socket(fileno=int(argv[0])), argv[1:2] == ["own-namespace"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
