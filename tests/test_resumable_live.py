"""Resumable uploads through the real server (`intake serve`, its event-driven
front) with raw sockets: a PATCH broken mid-body keeps what arrived and the
rest is sent once; a second PATCH meanwhile is told to wait; and a returning
witness whose upload takes longer than session_lifetime is not thrown away."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.parse
from pathlib import Path

import pytest
from live import (
    BOUNDARY,
    LiveServer,
    multipart_body,
    read_answer,
    request_head,
)
from support import CSRF, codename_of

from intake.format import envelope
from intake.server import resumable

TUS = {"Tus-Resumable": "1.0.0"}


def ask(server, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    with server.connect() as sock:
        sock.sendall(request_head(method, path, {**headers, "Content-Length": str(len(body))})
                     + body)
        answer = read_answer(sock, head_only=method == "HEAD")
    assert answer is not None, "the server closed without an answer"
    return answer


def create(server, cookie: str, token: str, length: int, name: str = "clip.mp4") -> str:
    answer = ask(server, "POST", "/uploads/", {
        **TUS, "Cookie": cookie, "X-CSRFToken": token, "Upload-Length": str(length),
        "Upload-Metadata": "filename " + base64.b64encode(name.encode()).decode()})
    assert answer.status == 201, answer.text
    return answer.headers["location"]


def patch_head(url: str, cookie: str, offset: int, length: int) -> bytes:
    return request_head("PATCH", url, {**TUS, "Cookie": cookie, "Upload-Offset": str(offset),
                                       "Content-Type": "application/offset+octet-stream",
                                       "Content-Length": str(length)})


def offset_of(server, url: str, cookie: str, seconds: float = 20, above: int = -1) -> int:
    """The upload's offset once no PATCH holds it (423 while a broken one is
    being closed) and it is past `above` (the broken one was seen at all)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = ask(server, "HEAD", url, {**TUS, "Cookie": cookie})
        if answer.status == 200 and int(answer.headers["upload-offset"]) > above:
            return int(answer.headers["upload-offset"])
        assert answer.status in (200, 423) and time.monotonic() < deadline, answer.status
        time.sleep(0.05)  # polling for the broken PATCH to be closed


def pieces(server, url: str) -> list[int]:
    state = server.data_dir / "uploads" / url.rsplit("/", 1)[1] / "state.json"
    return json.loads(state.read_text())["pieces"]


def followed(server, answer, cookie: str):
    """A form that is taken answers with a redirect to its receipt: the receipt."""
    if answer is not None and answer.status == 303:
        return server.get(answer.headers["location"], {"Cookie": cookie})
    return answer


def send_form(server, cookie: str, token: str, ids: list[str], path: str = "/en/submit"):
    fields = [("csrf_token", token), ("testimony", "what I saw"), ("keep_original", "y"),
              *(("upload", i) for i in ids)]
    body = multipart_body(fields, [])
    return followed(server, ask(server, "POST", path, {
        "Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, body),
        cookie)


def stored_contents(server, private_key) -> list[bytes]:
    out = []
    for path in sorted((server.data_dir / "store").glob("*.env")):
        with path.open("rb") as f:
            content, meta = envelope.open_envelope(f, private_key)
        if meta["kind"] != "testimony":
            out.append(content)
    return out


@pytest.fixture
def server(tmp_path, team_key):
    live = LiveServer(tmp_path, team_key.keys_dir, session_lifetime=3, rate_window=2,
                      min_upload_rate=64)
    yield live
    live.stop()


def test_a_broken_piece_keeps_what_arrived_and_the_rest_goes_once(server, team_key):
    token, cookie = server.form()
    data = os.urandom(3 * 1024 * 1024 + 12345)
    url = create(server, cookie, token, len(data))
    sent = 0
    # The first PATCH breaks after 1.5 MiB of its 2 MiB: the circuit went down.
    with server.connect() as sock:
        sock.sendall(patch_head(url, cookie, 0, 2 * 1024 * 1024))
        sock.sendall(data[:1536 * 1024])
        sent += 1536 * 1024
    arrived = offset_of(server, url, cookie, above=0)
    assert arrived == 1536 * 1024  # everything that came, nothing more
    # Only the rest is sent.
    with server.connect() as sock:
        sock.sendall(patch_head(url, cookie, arrived, len(data) - arrived) + data[arrived:])
        sent += len(data) - arrived
        answer = read_answer(sock)
    assert answer is not None and answer.status == 204
    assert int(answer.headers["upload-offset"]) == len(data)
    # Received server-side: each byte once, in two pieces.
    assert pieces(server, url) == [1536 * 1024, len(data) - 1536 * 1024]
    assert sum(pieces(server, url)) == sent == len(data)
    receipt = send_form(server, cookie, token, [url.rsplit("/", 1)[1]])
    assert receipt.status == 200 and codename_of(receipt.text)
    assert stored_contents(server, team_key.private_key) == [data]


def test_a_second_piece_while_one_arrives_is_told_to_wait(server):
    token, cookie = server.form()
    url = create(server, cookie, token, 200_000)
    with server.connect() as first:
        first.sendall(patch_head(url, cookie, 0, 100_000) + b"a" * 50_000)
        time.sleep(0.3)  # let the front take the lock and start reading
        second = ask(server, "PATCH", url, {**TUS, "Cookie": cookie, "Upload-Offset": "0",
                                            "Content-Type": "application/offset+octet-stream"},
                     b"b" * 100_000)
        assert second.status == 423
        first.sendall(b"a" * 50_000)
        answer = read_answer(first)
    assert answer is not None and answer.status == 204
    assert answer.headers["upload-offset"] == "100000"
    assert offset_of(server, url, cookie) == 100_000


def _login(server, code: str) -> tuple[str, str]:
    """Logs in with the codename: the new session's cookie and the account form's token."""
    page = server.get("/en/login")
    token = CSRF.search(page.text).group(1)
    cookie = page.headers.get("set-cookie", "").split(";")[0]
    body = urllib.parse.urlencode({"csrf_token": token, "codename": code}).encode()
    answer = ask(server, "POST", "/en/login", {
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}, body)
    assert answer.status == 303, answer.text
    cookie = answer.headers["set-cookie"].split(";")[0]
    account = server.get("/en/account", {"Cookie": cookie})
    assert account.status == 200
    return cookie, CSRF.search(account.text).group(1)


def test_a_follow_up_longer_than_the_session_lifetime_arrives(server, team_key):
    """No JavaScript: one form whose body takes longer than session_lifetime
    (3 s here) to arrive. It used to be received, then discarded with "your
    session ended"."""
    code = codename_of(server.submit("first").text)
    cookie, token = _login(server, code)
    data = os.urandom(6000)
    body = multipart_body([("csrf_token", token), ("testimony", "more"),
                           ("keep_original", "y")], [("later.bin", data)])
    started = time.monotonic()
    with server.connect() as sock:
        sock.sendall(server.submission_head(len(body), cookie, path="/en/account/add"))
        for start in range(0, len(body), 600):  # a slow circuit: about 6 s
            sock.sendall(body[start:start + 600])
            time.sleep(0.5)
        answer = followed(server, read_answer(sock), cookie)
    assert time.monotonic() - started > 3 + 1
    assert answer is not None and answer.status == 200, answer and answer.text
    assert "Received. Thank you." in answer.text
    assert data in stored_contents(server, team_key.private_key)
    # Judged as of its start, the session was alive; its end renewed it.
    assert server.get("/en/account", {"Cookie": cookie}).status == 200


def test_pieces_keep_a_returning_witness_session_alive(server, team_key):
    """With JavaScript: the pieces take longer than session_lifetime, each one
    is activity, and the form that names them is still taken."""
    code = codename_of(server.submit("first").text)
    cookie, token = _login(server, code)
    data = os.urandom(8 * 1000)
    url = create(server, cookie, token, len(data))
    started = time.monotonic()
    for start in range(0, len(data), 1000):
        answer = ask(server, "PATCH", url, {
            **TUS, "Cookie": cookie, "Upload-Offset": str(start),
            "Content-Type": "application/offset+octet-stream"}, data[start:start + 1000])
        assert answer.status == 204
        time.sleep(0.8)
    assert time.monotonic() - started > 3 + 2
    done = send_form(server, cookie, token, [url.rsplit("/", 1)[1]], path="/en/account/add")
    assert done.status == 200 and "Received. Thank you." in done.text
    assert data in stored_contents(server, team_key.private_key)


def _workers(pid: int) -> list[int]:
    return [int(child) for task in (Path("/proc") / str(pid) / "task").iterdir()
            for child in (task / "children").read_text().split()]


def test_a_worker_killed_mid_piece_loses_nothing_acknowledged(tmp_path, team_key):
    """The worker is killed while a piece arrives: what was acknowledged is
    kept, the half-written piece is not counted and is cut off, and the rest
    is sent once to a new worker."""
    live = LiveServer(tmp_path, team_key.keys_dir, rate_window=2, min_upload_rate=64)
    try:
        token, cookie = live.form()
        data = os.urandom(3 * 1024 * 1024)
        url = create(live, cookie, token, len(data))
        piece = {**TUS, "Cookie": cookie, "Content-Type": "application/offset+octet-stream"}
        mib = 1024 * 1024
        assert ask(live, "PATCH", url, {**piece, "Upload-Offset": "0"},
                   data[:mib]).status == 204
        pieces_file = live.data_dir / "uploads" / url.rsplit("/", 1)[1] / "pieces"
        with live.connect() as sock:
            sock.sendall(patch_head(url, cookie, mib, mib) + data[mib:mib + 700_000])
            deadline = time.monotonic() + 20
            while pieces_file.stat().st_size < resumable.sealed_size(mib) + 500_000:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            for worker in _workers(live.proc.pid):
                os.kill(worker, signal.SIGKILL)
        assert offset_of(live, url, cookie, seconds=60) == mib
        assert pieces(live, url) == [mib]
        with live.connect() as sock:
            sock.sendall(patch_head(url, cookie, mib, len(data) - mib) + data[mib:])
            answer = read_answer(sock)
        assert answer is not None and answer.status == 204
        assert pieces(live, url) == [mib, len(data) - mib]
        receipt = send_form(live, cookie, token, [url.rsplit("/", 1)[1]])
        assert receipt.status == 200 and codename_of(receipt.text)
        assert stored_contents(live, team_key.private_key) == [data]
    finally:
        live.stop()
