"""Timing a command in its own process: wall and CPU seconds, its own peak
memory and its children's (decrypt_bench.py, vault_bench.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from servers import children, status_kib

ROOT = Path(__file__).resolve().parents[1]
POLL = 0.02


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float
    own_kib: int
    tree_kib: int


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def read_through(path: Path) -> None:
    """Reads a file once, so that it is in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1024 * 1024):
            pass


def timed(cmd: list[str], env: dict[str, str] | None = None,
          reads: Path | None = None, cwd: Path = ROOT) -> Run:
    """Wall and CPU seconds (its children's included), the process's own peak
    and the highest peak of the processes it started (VmHWM, polled). Starts
    after a sync(), so that no command pays for the write-back of the one
    before it, and with the file it `reads` read through just before: the
    machine may have let part of it go from its page cache since it was last
    read (a virtual machine's host can reclaim cold pages), and a tool that
    reads part of its input from the disk is measured on the disk."""
    os.sync()
    if reads is not None:
        read_through(reads)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    own = tree = 0
    while True:
        with contextlib.suppress(OSError, LookupError):  # a zombie has no VmHWM
            own = max(own, status_kib(proc.pid, "VmHWM"))
            for child in _descendants(proc.pid):
                with contextlib.suppress(OSError, LookupError):
                    tree = max(tree, status_kib(child, "VmHWM"))
        done, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if done:
            break
        time.sleep(POLL)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[2:4]} failed: {err[-500:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, own, tree)
