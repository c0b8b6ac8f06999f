"""Helpers for the deployment tests: the shipped files rendered for a temp
folder, and the real server started as a process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from support import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SHIPPED_TOR_DATA = "/var/lib/tor/"


def render_torrc(tor_data: Path, witness_port: int = 8080, staff_port: int = 8081) -> str:
    """The shipped torrc with its onion service folders under `tor_data` and the
    apps on the given ports; Tor's log goes to the test's node, not syslog."""
    text = (DEPLOY / "torrc").read_text()
    text = text.replace(SHIPPED_TOR_DATA, f"{tor_data}/")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{witness_port}")
    text = text.replace("127.0.0.1:8081", f"127.0.0.1:{staff_port}")
    return re.sub(r"^Log notice syslog$", "", text, flags=re.M)



def _end_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ServerProcess:
    """One real server process on 127.0.0.1, its output captured to files."""

    command: list[str]
    env: dict[str, str]
    port: int
    log_dir: Path
    process: subprocess.Popen | None = None
    started: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Starts the process without waiting for it. From the main thread: the
        child's end-with-parent signal fires when the thread that made it ends."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "stdout.log", "wb") as out, \
                open(self.log_dir / "stderr.log", "wb") as err:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out,
                                            stderr=err, stdin=subprocess.DEVNULL,
                                            start_new_session=True, cwd=self.env["HOME"],
                                            preexec_fn=_end_with_parent)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.output()}")
            try:
                requests.get(self.url + "/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError(f"server not up after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return "".join((self.log_dir / n).read_text(errors="replace")
                       for n in ("stdout.log", "stderr.log") if (self.log_dir / n).exists())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def server_env(tmp_path: Path, keys_dir: Path) -> dict[str, str]:
    """A clean environment: data, temp files and home all inside tmp_path."""
    for name in ("data", "tmp", "home"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(INTAKE_DATA_DIR=str(tmp_path / "data"), INTAKE_KEYS_DIR=str(keys_dir),
               INTAKE_KDF_OPSLIMIT="1", INTAKE_KDF_MEMLIMIT="8192",
               TMPDIR=str(tmp_path / "tmp"), HOME=str(tmp_path / "home"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def intake_serve(tmp_path: Path, keys_dir: Path) -> ServerProcess:
    port = free_port()
    return ServerProcess([sys.executable, "-m", "intake", "serve", "--host", "127.0.0.1",
                          "--port", str(port), "--workers", "1"],
                         server_env(tmp_path, keys_dir), port, tmp_path / "logs")


def gunicorn_shipped(tmp_path: Path, keys_dir: Path) -> ServerProcess:
    """gunicorn with deploy/gunicorn.conf.py, as the systemd unit runs it."""
    port = free_port()
    env = server_env(tmp_path, keys_dir)
    env.update(INTAKE_BIND=f"127.0.0.1:{port}", INTAKE_WORKERS="1")
    return ServerProcess([sys.executable, "-m", "gunicorn", "-c",
                          str(DEPLOY / "gunicorn.conf.py"), "intake.server.witness:create_app()"],
                         env, port, tmp_path / "logs")


LAUNCHERS = {"intake-serve": intake_serve, "gunicorn-shipped-config": gunicorn_shipped}
