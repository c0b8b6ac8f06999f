"""`make demo` as a new user meets it: it starts, takes a submission, and the
command it prints decrypts what arrived."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from support import CSRF, free_port

ROOT = Path(__file__).resolve().parents[1]



def wait_for(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the demo server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the demo server did not start")


def test_demo_serves_and_its_printed_command_decrypts(tmp_path):
    port = free_port()
    env = {**os.environ, "INTAKE_DEMO_DIR": str(tmp_path / "demo"),
           "INTAKE_DEMO_PORT": str(port)}
    out = (tmp_path / "demo.out").open("w+")
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/demo.py")], env=env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(port, proc)
        base = f"http://127.0.0.1:{port}"
        with requests.Session() as http:
            form = http.get(base + "/", timeout=10)
            token = CSRF.search(form.text).group(1)
            done = http.post(base + "/submit", timeout=30,
                             data={"csrf_token": token, "testimony": "demo testimony",
                                   "keep_original": "y"},
                             files={"files": ("note.txt", b"demo file")})
        assert done.status_code == 200 and 'class="codename"' in done.text
        out.seek(0)
        printed = out.read()
        assert f"http://127.0.0.1:{port}/" in printed
        command = re.search(r"(INTAKE_DATA_DIR=.*?--out \S+)\n", printed.replace("\\\n", ""),
                            re.S).group(1)
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert "2 decrypted, 0 damaged" in result.stdout
        decrypted = tmp_path / "demo" / "decrypted"
        texts = [p.read_text() for p in decrypted.rglob("testimony.txt")]
        assert texts == ["demo testimony"]
        assert [p.read_bytes() for p in decrypted.rglob("note.txt")] == [b"demo file"]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        out.close()
