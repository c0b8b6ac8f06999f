"""After the witness flow under real gunicorn, nothing the service wrote names
the client's address, its User-Agent, or the time of day.

Both ways of running it are scanned: `intake serve`, and gunicorn with the
shipped deploy/gunicorn.conf.py as the systemd unit runs it. Every file under
the data folder, TMPDIR, HOME and the captured stdout/stderr counts.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import socket
from pathlib import Path

import pytest
import requests
from deploy_support import LAUNCHERS
from requests.adapters import HTTPAdapter

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
# The client connects from its own loopback address, so the server's own
# listening address (127.0.0.1) and the client's can be told apart.
CLIENT_ADDRESS = "127.0.0.7"
# The one line that may name 127.0.0.1: `intake serve` saying where it listens.
LISTENING = re.compile(rb"Intake is listening on http://127\.0\.0\.1:\d+/")


class FromClientAddress(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (CLIENT_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


class Clock:
    """Every HH:MM (UTC and local) the test ran through."""

    def __init__(self):
        self.start = dt.datetime.now(dt.UTC)

    def marks(self) -> set[str]:
        end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        marks, t = set(), self.start - dt.timedelta(minutes=1)
        while t <= end:
            marks |= {t.strftime("%H:%M"), t.astimezone().strftime("%H:%M")}
            t += dt.timedelta(minutes=1)
        return marks


def written_files(tmp_path: Path) -> list[Path]:
    roots = [tmp_path / n for n in ("data", "tmp", "home", "logs")]
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def scan(tmp_path: Path, secrets_: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in written_files(tmp_path):
        data = LISTENING.sub(b"", path.read_bytes())
        found += [(str(path), s) for s in secrets_ if s.encode() in data]
    return found


def witness_flow(base: str, user_agent: str) -> None:
    with requests.Session() as browser:
        browser.mount("http://", FromClientAddress())
        browser.headers["User-Agent"] = user_agent
        form = browser.get(base + "/", timeout=30)
        assert form.status_code == 200
        token = CSRF.search(form.text).group(1)
        assert browser.cookies, "the form sets a session cookie"
        sent = browser.post(base + "/submit", timeout=60, data={
            "csrf_token": token, "testimony": "The convoy passed the bridge at dawn.",
            "keep_original": "y"},
            files={"files": ("photo.jpg", b"\xff\xd8\xff\xe0" + secrets.token_bytes(4096),
                             "image/jpeg")})
        assert sent.status_code == 200, sent.text[:500]
        assert 'id="codename"' in sent.text
        missing = browser.get(base + "/no-such-page", timeout=30)
        assert missing.status_code == 404


@pytest.fixture(params=sorted(LAUNCHERS))
def server(request, tmp_path, team_key):
    server = LAUNCHERS[request.param](tmp_path, team_key.keys_dir)
    yield server
    server.stop()


def test_witness_flow_leaves_no_address_agent_or_time(server, tmp_path):
    clock = Clock()
    user_agent = f"LogScan/{secrets.token_hex(8)} (distinctive)"
    server.start()
    witness_flow(server.url, user_agent)
    server.stop()
    envelopes = list((tmp_path / "data" / "store").glob("*.env"))
    assert len(envelopes) == 2, "the testimony and the file arrived"
    assert len(written_files(tmp_path)) > 3
    leaks = scan(tmp_path, [CLIENT_ADDRESS, "127.0.0.1", user_agent, *clock.marks()])
    assert leaks == [], leaks


def malformed_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(CLIENT_ADDRESS, 0)) as conn:
        conn.sendall(b"NOT-HTTP \x01\x02 nonsense\r\n\r\n")
        return conn.recv(4096)


@pytest.mark.parametrize("launcher", ["intake-serve", "gunicorn-shipped-config"])
def test_a_malformed_request_is_not_logged_with_address_or_time(launcher, tmp_path,
                                                                  team_key):
    server = LAUNCHERS[launcher](tmp_path, team_key.keys_dir)
    clock = Clock()
    try:
        server.start()
        assert malformed_request(server.port).startswith(b"HTTP/1.1 400")
    finally:
        server.stop()
    leaks = scan(tmp_path, [CLIENT_ADDRESS, "127.0.0.1", *clock.marks()])
    assert leaks == [], (leaks, server.output())
