"""`intake vault serve` as a real process, in a network namespace that has only a
loopback interface: the triage pages need no network at any point."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from intake.pages.headers import HEADERS

# Runs inside the namespace: starts the server, fetches the list page, stops it.
PROBE = r"""
import fcntl, json, os, re, socket, struct, subprocess, sys, urllib.request
vault = sys.argv[1]
# Bring the namespace's loopback up (what `ip link set lo up` does).
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS,
                                                 struct.pack("16sh22x", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
server = subprocess.Popen([sys.executable, "-u", "-m", "intake", "vault", "serve",
                           "--vault", vault, "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    line = server.stdout.readline()
    url = re.search(r"http://[^/ ]+/", line).group(0)
    with urllib.request.urlopen(url, timeout=20) as resp:
        body = resp.read().decode()
        out = {"url": url, "status": resp.status, "headers": dict(resp.headers),
               "body": body, "interfaces": sorted(ln.split(":")[0].strip() for ln in
                                     open("/proc/net/dev").read().splitlines()[2:])}
finally:
    server.send_signal(2)
    server.wait(timeout=20)
print(json.dumps(out))
"""


def test_serve_runs_with_no_network_but_loopback(server, desk, tmp_path):
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    sent = server.submit("Seen from the window")
    desk.import_(server.export(tmp_path / "b.tar"))
    cmd = ["unshare", "--net", "--map-root-user", sys.executable, "-c", PROBE, str(desk.root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["interfaces"] == ["lo"]
    assert seen["url"].startswith("http://127.0.0.1:")
    assert seen["status"] == 200
    for name, value in HEADERS.items():
        assert seen["headers"][name] == value
    assert sent.submission_id[:12] in seen["body"]
    assert "<script" not in seen["body"].lower()
