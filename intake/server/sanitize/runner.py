"""The parent side: run one upload through the sanitizing child, with a deadline.

Plaintext goes to the child through a pipe (twice, if the child asks: an MP4
whose index is at the end) and comes back through a pipe into
a fresh sink: the cleaned copy's own envelope, sealed as it arrives (an
UploadSpool). Neither the upload nor its cleaned copy is ever on disk in the
clear. The child, not this process, tells the file's type. Whatever goes
wrong ends as a Result with ok=False and a reason; the caller then keeps
nothing, or the original if the witness chooses so (intake.server.receive).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import intake
from intake import __version__
from intake.format import untrusted_json
from intake.server.sanitize.limits import Limits
from intake.server.sanitize.protocol import (
    AGAIN,
    CUT_SHORT,
    FAILED_CHECK,
    MAGIC,
    OUT_OF_MEMORY,
    output_cap,
)
from intake.server.sanitize.zygote import Zygote

# The folder that holds the intake package, for the child's PYTHONPATH.
PACKAGE_ROOT = Path(intake.__file__).resolve().parents[1]
READ = 1024 * 1024
TIME_LIMIT = "time limit reached"
PIPE_SIZE = 1024 * 1024
HEADER_MAX = 256 * 1024


class Upload(Protocol):
    """What sanitize() reads: the server's UploadSpool."""

    head: bytes
    size: int

    def chunks(self) -> Iterator[bytes]: ...


class Sink(Protocol):
    """Where the cleaned copy goes, encrypted as it arrives."""

    sha256: str
    size: int

    def write(self, data: bytes) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@dataclass
class Result:
    ok: bool
    detected_type: str
    family: str | None = None
    reason: str = ""
    hostile: bool = False  # a bomb: not offered to be sent as it is
    # Stopped by its time or CPU limit (not by anything it was found to be).
    timed_out: bool = False
    removed: list[str] = field(default_factory=list)
    tool: str = ""
    spool: Sink | None = None

    @property
    def sanitizer(self) -> str | None:
        return f"intake-sanitize/{self.family}" if self.family else None

    @property
    def version(self) -> str:
        return f"intake {__version__}" + (f"; {self.tool}" if self.tool else "")

    @property
    def flags(self) -> list[str]:
        return [] if self.ok else [f"not sanitized: {self.reason}"]

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


@functools.cache
def _no_network_prefix() -> tuple[str, ...]:
    """`unshare -rn` gives the child an empty network namespace, where the
    kernel allows unprivileged user namespaces; elsewhere we go without."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    try:
        probe = subprocess.run([tool, "-rn", "true"], capture_output=True, timeout=10,
                               check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (tool, "-rn") if probe.returncode == 0 else ()


CLEANER_NICENESS = 10


@functools.cache
def _low_priority_prefix() -> tuple[str, ...]:
    """Cleaning yields to serving the form: the lowest CPU and disk priority
    short of idle (nice 10, best-effort I/O class at level 7), inherited by
    every child the zygote forks and every tool a child starts.

    Where the system forbids it (a unit whose system call filter leaves out
    setpriority or ioprio_set), the cleaner still runs, at the server's own
    priority: `nice` goes on after a warning and `ionice -t` likewise, and
    `intake doctor` says so (the probe starts behind the same prefix)."""
    nice, ionice = shutil.which("nice"), shutil.which("ionice")
    prefix: tuple[str, ...] = (nice, "-n", str(CLEANER_NICENESS)) if nice else ()
    return prefix + ((ionice, "-t", "-c", "2", "-n", "7") if ionice else ())


def network_isolated() -> bool:
    return bool(_no_network_prefix())


def probe_sandbox(paths: list[Path], timeout: float = 60) -> dict:
    """What a cleaner child started as the server starts them is given, and
    what it can still do (intake.server.sanitize.probe)."""
    run = subprocess.run(_python("intake.server.sanitize.probe", *map(str, paths)),
                         capture_output=True, cwd="/", env=_env(), timeout=timeout,
                         check=False)
    try:
        report = json.loads(run.stdout)
    except ValueError:
        return {"error": f"the probe failed (exit status {run.returncode})"}
    return {**report, "namespaces": network_isolated()}


def _python(module: str, *args: str) -> list[str]:
    """A module run as every cleaner runs: no network, low priority."""
    return [*_no_network_prefix(), *_low_priority_prefix(), sys.executable, "-m", module,
            *args]


def _command(size: int, limits: Limits) -> list[str]:
    return _python("intake.server.sanitize.child", str(size), *limits.to_argv())


def _zygote_command(control_fd: int) -> list[str]:
    return _python("intake.server.sanitize.zygote", str(control_fd),
                   *(["own-namespace"] if _no_network_prefix() else []))


def _env() -> dict[str, str]:
    # A clean environment: no proxies, no locale surprises, no inherited secrets.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
            "PYTHONPATH": str(PACKAGE_ROOT), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0"}


class Child(Protocol):
    """A running cleaner: forked by the zygote, or started from scratch."""

    stdin: BinaryIO
    stdout: BinaryIO
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class _Started:
    """A cleaner started from scratch, when the zygote cannot be had."""

    def __init__(self, proc: subprocess.Popen):
        self._proc = proc
        self.stdin, self.stdout = proc.stdin, proc.stdout

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._proc.wait(timeout)

    def kill(self) -> None:
        # The child leads its own session, so this also ends any tool it started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()


def warm_sandbox() -> Zygote:
    """A handle on a warm sandbox, for one process (a web worker) to keep and
    pass to sanitize(); its zygote starts when start() is called (a web worker
    does as it begins to serve) or with the first upload it cleans."""
    return Zygote(_zygote_command, _env())


def _launch(size: int, limits: Limits, sandbox: Zygote | None) -> Child:
    if sandbox is not None:
        try:
            return sandbox.spawn([str(size), *limits.to_argv()])
        except OSError:
            pass  # no zygote: start this one cleaner from scratch
    proc = subprocess.Popen(_command(size, limits), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/",
                            env=_env(), close_fds=True, start_new_session=True)
    return _Started(proc)


class _Feeder:
    """Sends the upload to the child, then again each time the child asks
    (at most AGAIN times): its envelope is decrypted once more, so nothing is
    kept in the clear between the passes. The child reads exactly the
    upload's size per pass; stdin is closed once the exchange is over."""

    def __init__(self, proc: Child, spool: Upload):
        self._proc, self._spool = proc, spool
        self._asked = threading.Semaphore(0)
        self._over = False
        self.failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def again(self) -> None:
        self._asked.release()

    def finish(self) -> None:
        self._over = True
        self._asked.release()
        self._thread.join()

    def _run(self) -> None:
        try:
            for _ in range(AGAIN + 1):
                if not self._pass():
                    return
                self._asked.acquire()
                if self._over:
                    return
        finally:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # type: ignore[union-attr]

    def _pass(self) -> bool:
        """False when the child stopped reading (its exit status says why) or
        the upload could not be read back (the server's fault: kept in
        `failures`, and the request fails, as for a full disk)."""
        sent = 0
        try:
            for piece in self._spool.chunks():
                if not self._write(piece):
                    return False
                sent += len(piece)
        except BaseException as exc:
            self.failures.append(exc.with_traceback(None))
            return False
        # Not the size the child was told: stdin closes, and the child, short
        # of bytes, stops rather than wait for them.
        return self._write(None) and sent == self._spool.size

    def _write(self, piece: bytes | None) -> bool:
        stdin = self._proc.stdin
        try:
            if piece is None:
                stdin.flush()  # type: ignore[union-attr]
            else:
                stdin.write(piece)  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True


def _widen(*pipes) -> None:
    """1 MiB pipes instead of 64 KiB: fewer wake-ups for large videos."""
    for pipe in pipes:
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _timed_out(code: int | None) -> bool:
    """A child killed by its CPU limit: SIGXCPU at the soft limit, SIGKILL at
    the hard one (the same here, so either may come first)."""
    return code in (-signal.SIGXCPU, -signal.SIGKILL)


def _death_reason(code: int) -> str:
    if code == -signal.SIGXCPU:
        return "CPU time limit reached"
    if code == -signal.SIGKILL:
        return "cleaner killed (CPU or memory limit)"
    if code == -signal.SIGSEGV or code == -signal.SIGABRT:
        return "cleaner crashed (probably out of memory)"
    if code < 0:
        return f"cleaner stopped by signal {-code}"
    if code == OUT_OF_MEMORY:
        return "memory limit reached"
    if code == CUT_SHORT:
        return "the cleaned copy was cut short"
    if code == FAILED_CHECK:
        return "the cleaned copy failed its check"
    return f"cleaner failed (exit status {code})"


class _Stop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Reader:
    """Reads the child's frame from its stdout until a deadline."""

    def __init__(self, proc: Child, deadline: float):
        self._fd = proc.stdout.fileno()  # type: ignore[union-attr]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)
        self._deadline = deadline
        self._buf = bytearray()
        self.eof = False

    def _read(self) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or not self._sel.select(remaining):
            raise _Stop(TIME_LIMIT)
        piece = os.read(self._fd, READ)
        if not piece:
            self.eof = True
        return piece

    def _more(self) -> None:
        self._buf += self._read()

    def exactly(self, n: int) -> bytes:
        while len(self._buf) < n and not self.eof:
            self._more()
        if len(self._buf) < n:
            raise _Stop("")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def stream(self, n: int, sink: Sink) -> None:
        """Passes the next n bytes to the sink as they are read, in pieces as
        large as the pipe gives."""
        if self._buf:
            take = bytes(self._buf[:n])
            del self._buf[:n]
            sink.write(take)
            n -= len(take)
        while n > 0:
            if self.eof:
                raise _Stop("")
            piece = self._read()
            if len(piece) > n:  # the frame ends here: nothing may follow it
                raise _Stop("")
            if piece:
                sink.write(piece)
                n -= len(piece)

    def pieces(self, cap: int, sink: Sink) -> None:
        """A copy sent in pieces, each a 4-byte length and its bytes, until a
        zero length; at most `cap` bytes in all."""
        total = 0
        while n := struct.unpack(">I", self.exactly(4))[0]:
            total += n
            if total > cap:
                raise _Stop("cleaned file too large")
            while n:
                if not self._buf:
                    self._more()
                    if self.eof:
                        raise _Stop("")
                take = bytes(self._buf[:n])
                del self._buf[:n]
                sink.write(take)
                n -= len(take)

    def close(self) -> None:
        self._sel.close()


def sanitize(spool: Upload, make_sink: Callable[[], Sink], limits: Limits | None = None,
             sandbox: Zygote | None = None) -> Result:
    """Cleans the upload in a child process, which tells its type from its
    bytes; forked by the warm `sandbox` if given, else started from scratch.
    The cleaned copy lands in a new sink made by `make_sink`. `limits` are
    the child's, already sized to the upload (Limits.for_size, or a
    submission's CleaningBudget.limits_for): taken as they are, so a budget's
    cap is not widened again here; None gives the defaults for its size."""
    detected = "application/octet-stream"  # until the child says
    family = None
    if spool.size == 0:
        return Result(False, "application/x-empty", reason="empty file")
    if limits is None:
        limits = Limits().for_size(spool.size)
    try:
        proc = _launch(spool.size, limits, sandbox)
    except OSError:
        return Result(False, detected, family, reason="the cleaner could not start")
    _widen(proc.stdin, proc.stdout)
    feeder = _Feeder(proc, spool)
    result = _exchange(proc, feeder, family, detected, spool.size, limits, make_sink)
    failures = feeder.failures
    if failures:
        # The upload could not be read back: not a verdict on the file. The
        # request fails, and with it the whole submission, as for a full disk.
        result.close()
        raise failures[0]
    return result


def _exchange(proc: Child, feeder: _Feeder, family: str | None, detected: str,
              upload_size: int, limits: Limits, make_sink: Callable[[], Sink]) -> Result:
    """Reads the child's answer and the cleaned copy into a new sink."""
    reader = _Reader(proc, time.monotonic() + limits.wall_seconds)
    out: Sink | None = None
    try:
        header = _read_header(reader)
        for _ in range(AGAIN):
            if header.keys() != {"again"}:
                break
            feeder.again()
            header = _read_header(reader)
        if "again" in header:
            raise _Stop("the cleaner answered nonsense")
        detected = str(header.get("detected_type") or detected)[:100]
        family = header.get("family") if isinstance(header.get("family"), str) else None
        if not header.get("ok"):
            return Result(False, detected, family, reason=str(header.get("reason"))[:200],
                          hostile=bool(header.get("hostile")))
        if header.get("chunked") is True:
            out = make_sink()
            reader.pieces(output_cap(upload_size), out)
            header = {**_read_header(reader), "detected_type": detected}
            if not header.get("ok"):
                return Result(False, detected, family,
                              reason=str(header.get("reason"))[:200],
                              hostile=bool(header.get("hostile")))
            result = Result(True, detected, family,
                            removed=[str(n) for n in header.get("removed", [])],
                            tool=str(header.get("tool", "")), spool=out)
            out = None
            return result
        size = int(header["size"])
        if size > output_cap(upload_size):
            raise _Stop("cleaned file too large")
        out = make_sink()
        reader.stream(size, out)
        result = Result(True, detected, family,
                        removed=[str(n) for n in header.get("removed", [])],
                        tool=str(header.get("tool", "")), spool=out)
        out = None
        return result
    except _Stop as stop:
        proc.kill()
        return Result(False, detected, family,
                      reason=stop.reason or _death_reason(proc.returncode),
                      timed_out=stop.reason == TIME_LIMIT or
                      (not stop.reason and _timed_out(proc.returncode)))
    finally:
        if out is not None:
            out.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)  # it has answered: give it a moment to exit
        if proc.poll() is None:
            proc.kill()
        feeder.finish()
        reader.close()
        proc.stdout.close()  # type: ignore[union-attr]


def _read_header(reader: _Reader) -> dict:
    magic = reader.exactly(len(MAGIC))
    (length,) = struct.unpack(">I", reader.exactly(4))
    if magic != MAGIC or length > HEADER_MAX:
        raise _Stop("the cleaner answered nonsense")
    try:
        header = untrusted_json.loads(reader.exactly(length))
    except ValueError as exc:
        raise _Stop("the cleaner answered nonsense") from exc
    if not isinstance(header, dict):
        raise _Stop("the cleaner answered nonsense")
    return header
