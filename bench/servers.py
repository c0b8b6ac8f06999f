"""Starting, measuring and stopping the gunicorn servers under test.

Each server runs in its own process group, so stopping it reaches its worker
too, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 60  # seconds for a server to accept connections and boot its worker
STOP_TIMEOUT = 15
# After its worker is up, a server gets this long before it is measured: what
# a worker starts as it begins to serve (Intake's sandbox for the cleaners,
# about 0.3 s of loading) is done, as on a server that has been running.
SETTLE = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
    return found


def status_kib(pid: int, field: str) -> int:
    """A 'VmHWM:   1234 kB' style line of /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A gunicorn master started as a subprocess, with exactly one worker."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.port = free_port()
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([*argv, "--port", str(self.port)], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.log = log

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            if children(self.proc.pid):
                time.sleep(SETTLE)
                return
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start within {START_TIMEOUT} s")

    def log_tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def worker_pid(self) -> int:
        workers = children(self.proc.pid)
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {workers}")
        return workers[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # gunicorn stops its workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group
        self.proc.wait()
        self._log.close()
