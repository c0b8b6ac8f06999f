"""The parsing sandbox, parent side: hostile files are parsed where the key is not.

Previews, thumbnails, perceptual hashes and the words of documents are all
made by intake.workstation.parse_child, a fresh interpreter started for each
file (fork and exec: it shares nothing with this process, which holds the
team key). It gets the file's bytes on a pipe and answers on a pipe; it runs
under `unshare -rnm` in namespaces of its own, with no network, every mount
read-only and no capabilities (so it cannot write to the vault or anywhere
else), and under limits: CPU seconds, address space, a wall-clock deadline,
an output cap, and a pixel cap for pictures. This process is made
non-dumpable first, so the child cannot read its memory either.

Where user namespaces are not available, nothing is parsed (fail closed):
the import says so once, and every file is listed without a preview.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import asdict, dataclass

from intake.format import untrusted_json
from intake.workstation.children import child_env, protect_process
from intake.workstation.images import PREVIEW_EDGE
from intake.workstation.parse_child import EXIT_ISOLATION, MAGIC

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FEED = 1024 * 1024
# Reasons a file was not parsed that are a limit it broke (marked on its page).
LIMITS = ("cpu", "memory", "time", "output", "pixels", "size", "nested", "part-too-large",
          "too-many-parts")
# Reasons that are not a limit: no picture or text in it, or nothing could run.
OTHER_REASONS = ("broken", "isolation", "unsupported", "no-pdftotext")


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 20
    memory: int = 1024 * 1024 * 1024  # address space
    wall_seconds: int = 60
    max_input: int = 128 * 1024 * 1024
    max_output: int = 16 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_text: int = 2_000_000  # characters


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # why not: one of LIMITS, or "broken", "isolation", "unsupported"
    png: bytes | None = None
    width: int = 0
    height: int = 0
    dhash: str | None = None
    text: str | None = None

    @property
    def limit(self) -> bool:
        return self.reason in LIMITS


def _probe(unshare: str | None) -> tuple[tuple[str, ...], str]:
    if unshare is None:
        return (), "unshare (util-linux) is not installed"
    try:
        done = subprocess.run([unshare, "-rnm", "true"], capture_output=True, timeout=20,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (), f"unshare does not run ({exc})"
    if done.returncode != 0:
        return (), "this system does not allow unprivileged user namespaces (unshare -rnm)"
    return (unshare, "-rnm"), ""


class Sandbox:
    """Runs parsing jobs for one import. `unshare` is the tool's path (tests
    pass another to see the refusal); by default the one on PATH."""

    def __init__(self, limits: Limits | None = None, unshare: str | None = "") -> None:
        self.limits = limits or Limits()
        tool = shutil.which("unshare") if unshare == "" else unshare
        self._prefix, self.why_not = _probe(tool)
        protect_process()

    @property
    def available(self) -> bool:
        return bool(self._prefix)

    def command(self, job: str, arg: str) -> list[str]:
        return [*self._prefix, sys.executable, "-s", "-B", "-m",
                "intake.workstation.parse_child", job, arg, "isolated",
                json.dumps(asdict(self.limits))]

    def text_command(self, limits: dict) -> list[str]:
        """The text analyser's child (intake.workstation.text_child), under
        `limits`: in namespaces of its own where they are available; where they
        are not, a plain child, which still never holds key material."""
        mode = "isolated" if self.available else "plain"
        return [*self._prefix, sys.executable, "-s", "-B", "-m",
                "intake.workstation.text_child", mode, json.dumps(limits)]

    def run(self, job: str, arg: str, source_fd: int, size: int) -> Outcome:
        """Parses the `size` bytes of `source_fd` (from offset 0) with `job`."""
        if not self.available:
            return Outcome(False, "isolation")
        if size > self.limits.max_input:
            return Outcome(False, "size")
        try:
            proc = subprocess.Popen(self.command(job, arg), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    env=child_env(), cwd="/", close_fds=True,
                                    start_new_session=True)
        except OSError:
            return Outcome(False, "isolation")
        feeder = threading.Thread(target=_feed, args=(proc, source_fd, size), daemon=True)
        feeder.start()
        try:
            out, reason = _collect(proc, time.monotonic() + self.limits.wall_seconds,
                                   self.limits.max_output)
        finally:
            _end(proc)
            feeder.join()
        if reason:
            return Outcome(False, reason)
        return _outcome(out, proc.returncode)


def _feed(proc: subprocess.Popen, fd: int, size: int) -> None:
    offset = 0
    try:
        while offset < size:
            block = os.pread(fd, min(FEED, size - offset), offset)
            if not block:
                break
            proc.stdin.write(block)  # type: ignore[union-attr]
            offset += len(block)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the child stopped reading: its answer or its exit status says why
    finally:
        with contextlib.suppress(OSError, BrokenPipeError):
            proc.stdin.close()  # type: ignore[union-attr]


def _collect(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, str]:
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    out = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return b"", "time"
            piece = os.read(fd, FEED)
            if not piece:
                break
            out += piece
            if len(out) > cap + 64 * 1024:
                return b"", "output"
    try:
        proc.wait(max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        return b"", "time"
    return bytes(out), ""


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()  # type: ignore[union-attr]


def _death(code: int) -> str:
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return "cpu"
    if code in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
        return "memory"  # a decoder that could not allocate, most often
    if code == EXIT_ISOLATION:
        return "isolation"
    return "broken"


def _outcome(out: bytes, code: int) -> Outcome:
    """The child's answer, checked: nothing it says is trusted beyond its shape."""
    if not out.startswith(MAGIC) or len(out) < len(MAGIC) + 4:
        return Outcome(False, _death(code))
    (n,) = struct.unpack(">I", out[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = untrusted_json.loads(out[start:start + n])
        (m,) = struct.unpack(">I", out[start + n:start + n + 4])
    except (ValueError, struct.error):
        return Outcome(False, "broken")
    body = out[start + n + 4:]
    if not isinstance(header, dict) or len(body) != m:
        return Outcome(False, "broken")
    if not header.get("ok"):
        reason = header.get("reason")
        return Outcome(False, reason if reason in LIMITS + OTHER_REASONS else "broken")
    if "dhash" in header:
        return _picture(header, body)
    return Outcome(True, text=body.decode(errors="replace"))


def _picture(header: dict, png: bytes) -> Outcome:
    dhash, width, height = header.get("dhash"), header.get("width"), header.get("height")
    if not (isinstance(dhash, str) and len(dhash) == 16
            and all(c in "0123456789abcdef" for c in dhash)):
        return Outcome(False, "broken")
    # Only a PNG whose header says what the child said is stored and served.
    if not (isinstance(width, int) and isinstance(height, int)
            and 0 < width <= PREVIEW_EDGE and 0 < height <= PREVIEW_EDGE) or \
            len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR" or \
            struct.unpack(">II", png[16:24]) != (width, height):
        return Outcome(False, "broken")
    return Outcome(True, png=png, width=width, height=height, dhash=dhash)
