"""`intake vault serve` as a real process, in a network namespace that has only a
loopback interface: the triage pages need no network at any point, answer
only the browser that opened the printed address, only under this machine's
names, and send the strict headers and no Server banner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from intake.pages.headers import HEADERS

# Runs inside the namespace: starts the server, probes it, stops it.
PROBE = r"""
import fcntl, http.client, json, os, re, socket, struct, subprocess, sys, urllib.request
vault, extra = sys.argv[1], sys.argv[2:]
# Bring the namespace's loopback up (what `ip link set lo up` does).
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS,
                                                 struct.pack("16sh22x", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
server = subprocess.Popen([sys.executable, "-u", "-m", "intake", "vault", "serve",
                           "--vault", vault, "--port", "0", *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def raw(port, path, host, cookie=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    headers = {"Host": host, **({"Cookie": cookie} if cookie else {})}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    out = {"status": resp.status, "headers": dict(resp.getheaders()),
           "body": resp.read().decode(errors="replace")}
    conn.close()
    return out

try:
    line = server.stdout.readline()
    url = re.search(r"http://\S+", line).group(0)
    port = int(re.search(r":(\d+)/", url).group(1))
    token = url.split("token=")[1]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(url, timeout=20) as resp:
        opened = {"status": resp.status, "url": resp.geturl(),
                  "headers": dict(resp.headers), "body": resp.read().decode()}
    first = raw(port, "/?token=" + token, f"127.0.0.1:{port}")
    out = {"line": line, "url": url, "opened": opened, "exchange": first,
           "no_token": raw(port, "/", f"127.0.0.1:{port}"),
           "wrong_token": raw(port, "/?token=x" + token[1:], f"127.0.0.1:{port}"),
           "rebound": raw(port, "/?token=" + token, f"evil.example:{port}"),
           "rebound_cookie": raw(port, "/", f"evil.example:{port}",
                                 first["headers"].get("Set-Cookie", "").split(";")[0]),
           "localhost": raw(port, "/", f"localhost:{port}",
                            first["headers"].get("Set-Cookie", "").split(";")[0]),
           "interfaces": sorted(ln.split(":")[0].strip() for ln in
                                open("/proc/net/dev").read().splitlines()[2:])}
finally:
    server.send_signal(2)
    server.wait(timeout=20)
print(json.dumps(out))
"""


def _probe(desk, *extra: str) -> dict:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    cmd = ["unshare", "--net", "--map-root-user", sys.executable, "-c", PROBE, str(desk.root),
           *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_serve_answers_only_the_browser_that_opened_its_address(server, desk, tmp_path):
    sent = server.submit("Seen from the window")
    desk.import_(server.export(tmp_path / "b.tar"))
    seen = _probe(desk, *desk.key_args())
    assert seen["interfaces"] == ["lo"]
    assert seen["url"].startswith("http://127.0.0.1:") and "?token=" in seen["url"]
    assert "Read-only" not in seen["line"]
    # The token is exchanged for a cookie and leaves the address.
    exchange = seen["exchange"]
    assert exchange["status"] == 303 and exchange["headers"]["Location"] == "/"
    cookie = exchange["headers"]["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert seen["url"].split("token=")[1] not in cookie
    opened = seen["opened"]
    assert opened["status"] == 200 and "token" not in opened["url"]
    assert sent.submission_id[:12] in opened["body"]
    assert "<script" not in opened["body"].lower()
    # Without the token or its cookie, or under another name, nothing is shown.
    for case, status in (("no_token", 403), ("wrong_token", 403), ("rebound", 421),
                         ("rebound_cookie", 421)):
        assert seen[case]["status"] == status, case
        assert sent.submission_id[:12] not in seen[case]["body"], case
    assert seen["localhost"]["status"] == 200
    for answer in (opened, exchange, seen["no_token"], seen["rebound"]):
        for name, value in HEADERS.items():
            assert answer["headers"][name] == value, name
        assert "Server" not in answer["headers"]


def test_serve_without_the_key_says_it_is_read_only(server, desk, tmp_path):
    server.submit("Seen from the window")
    desk.import_(server.export(tmp_path / "b.tar"))
    seen = _probe(desk)
    assert "Read-only" in seen["line"]
    assert seen["opened"]["status"] == 200
