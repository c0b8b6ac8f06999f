"""The front against real clients on 127.0.0.1: stalled and trickling clients
are cut, and while they hang on, a new witness is still served; the front's
own refusals are the app's pages, localized and with the security headers.
(The timings that matter are in `make bench`, "Slow clients"; these check
behaviour, with short deadlines so they run fast.)"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from live import (
    LiveServer,
    closed_by_server,
    is_receipt,
    multipart_body,
    read_answer,
    request_head,
)
from support import children_of

from intake.format.envelope import EnvelopeReader
from intake.pages.headers import HEADERS

WINDOW = 2  # seconds: the rate window, and the head deadline


@pytest.fixture
def server(tmp_path, team_key, database_url):
    live = LiveServer(tmp_path, team_key.keys_dir, database_url, workers=1,
                      head_timeout=WINDOW, rate_window=WINDOW, min_upload_rate=4096)
    yield live
    live.stop()


def assert_page_with_headers(answer, status: int, phrase: str = "") -> None:
    assert answer is not None and answer.status == status, answer
    for name, value in HEADERS.items():
        assert answer.headers.get(name.lower()) == value, name
    assert "server" not in answer.headers  # no banner naming the software
    assert "<html" in answer.text and phrase in answer.text
    assert "Traceback" not in answer.text


def wait_until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def test_a_stalled_head_is_cut_with_a_page(server):
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: uk\r\n")
        started = time.monotonic()
        answer = read_answer(sock, timeout=WINDOW * 5)
        assert time.monotonic() - started < WINDOW * 4
        assert_page_with_headers(answer, 408)
        assert closed_by_server(sock, WINDOW)


def test_a_connection_that_sends_nothing_is_closed_without_a_word(server):
    with server.connect() as sock:
        assert closed_by_server(sock, WINDOW * 4)


@pytest.mark.parametrize("pace", ["stalled", "trickling"])
def test_a_slow_body_is_cut_and_nothing_of_it_kept(server, pace):
    token, cookie = server.form()
    body = multipart_body([("csrf_token", token)], [("slow.bin", os.urandom(200_000))])
    with server.connect() as sock:
        sock.sendall(server.submission_head(len(body), cookie) + body[:60_000])
        wait_until(lambda: any(n.startswith(".tmp-") for n in server.store_files()))
        sent, cut = 60_000, False
        deadline = time.monotonic() + WINDOW * 6
        sock.settimeout(0.5)
        while time.monotonic() < deadline and not cut:
            try:
                if pace == "trickling":  # 512 bytes a second: an eighth of the minimum
                    sock.sendall(body[sent:sent + 256])
                    sent += 256
                sock.recv(65536)  # the 408 page, or the close
                cut = True
            except TimeoutError:
                continue
            except OSError:
                cut = True
        assert cut, "the slow body was not cut"
    wait_until(lambda: server.store_files() == [])  # its envelope went with it


def test_a_steady_upload_at_the_minimum_rate_goes_through(server):
    """Twice the minimum rate over several windows: never cut."""
    token, cookie = server.form()
    content = os.urandom(4 * 8192 * WINDOW)
    body = multipart_body([("csrf_token", token), ("testimony", "slow but sure")],
                          [("steady.bin", content)])
    with server.connect() as sock:
        sock.sendall(server.submission_head(len(body), cookie))
        step = 2048  # 8 KiB a second in quarter-second steps
        for i in range(0, len(body), step):
            sock.sendall(body[i:i + step])
            time.sleep(0.25)
        answer = read_answer(sock)
    assert answer is not None and answer.status == 303, answer  # then the receipt
    assert is_receipt(server.get(answer.headers["location"], {"Cookie": cookie}))


def test_a_new_witness_is_served_while_slow_clients_hang_on(server, team_key):
    """100 stalled heads, 30 stalled bodies and 8 uploads trickling at a steady
    (legal) pace: none holds a thread, so a new witness's file goes in at once."""
    held: list[socket.socket] = []
    token, cookie = server.form()
    try:
        for i in range(100):
            sock = server.connect()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * i)
            held.append(sock)
        big = multipart_body([("csrf_token", token)], [("never.bin", os.urandom(1 << 20))])
        for _ in range(30):
            sock = server.connect()
            sock.sendall(server.submission_head(len(big), cookie) + big[:30_000])
            held.append(sock)
        stop = threading.Event()

        def steady_upload() -> None:
            with server.connect() as sock:
                sock.sendall(server.submission_head(len(big), cookie))
                for i in range(0, len(big), 4096):
                    if stop.wait(0.25):
                        return
                    sock.sendall(big[i:i + 4096])

        uploaders = [threading.Thread(target=steady_upload) for _ in range(8)]
        for t in uploaders:
            t.start()
        content = os.urandom(3 * 1024 * 1024)
        started = time.monotonic()
        answer = server.submit("a new witness", [("photo.bin", content)])
        took = time.monotonic() - started
        stop.set()
        for t in uploaders:
            t.join()
        assert is_receipt(answer), answer
        assert took < WINDOW * 3, took  # not waiting for anyone's deadline
        # And the stalled ones are dropped, not kept forever.
        assert all(closed_by_server(sock, WINDOW * 4) for sock in held[:5] + held[100:105])
    finally:
        for sock in held:
            sock.close()
    stored = [n for n in server.store_files() if n.endswith(".env")]
    decrypted = []
    for name in stored:
        with open(server.data_dir / "store" / name, "rb") as f:
            decrypted.append(b"".join(EnvelopeReader(f, team_key.private_key).content()))
    assert content in decrypted


def test_a_fast_upload_is_kept_whole_and_the_request_behind_it_is_answered(server, team_key):
    """A body sent at once fills the connection's buffer over and over (the
    front then reads it into a larger one, in slices for the parser); the
    next request, sent in the same write right behind it, waits in that
    buffer and is answered on the same connection."""
    token, cookie = server.form()
    content = os.urandom(5 * 1024 * 1024 + 12345)
    body = multipart_body([("csrf_token", token), ("testimony", ""), ("keep_original", "y")],
                          [("big.bin", content)])
    data = b""
    with server.connect() as sock:
        sock.sendall(server.submission_head(len(body), cookie) + body
                     + request_head("GET", "/en/login", {"Connection": "close"}))
        sock.settimeout(60)
        while piece := sock.recv(65536):
            data += piece
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 2, data[:300]
    # The form is answered with a redirect to its receipt (docs/witnesses.md).
    assert answers[0].startswith(b"303 ") and b"/en/receipt/" in answers[0]
    assert answers[1].startswith(b"200 ") and b"codename" in answers[1].lower()
    [stored] = [n for n in server.store_files() if n.endswith(".env")]
    with open(server.data_dir / "store" / stored, "rb") as f:
        assert b"".join(EnvelopeReader(f, team_key.private_key).content()) == content


@pytest.mark.parametrize(("head", "status"), [
    (request_head("GET", "/", {"X-Huge": "a" * 40_000, "Accept-Language": "uk"}), 431),
    (request_head("GET", "/" + "a" * 9000, {"Accept-Language": "uk"}), 414),
    (b"NONSENSE\x00 / HTTP/1.1\r\n\r\n", 400),
])
def test_the_fronts_refusals_are_pages_with_the_security_headers(server, head, status):
    with server.connect() as sock:
        sock.sendall(head)
        answer = read_answer(sock)
    assert_page_with_headers(answer, status)
    if b"Accept-Language: uk" in head:
        assert 'lang="uk"' in answer.text


def test_an_address_too_long_is_not_shown_again(server):
    """The refusal's language links lead to the start, in each language,
    instead of repeating the address that was refused."""
    with server.connect() as sock:
        sock.sendall(request_head("GET", "/ru/" + "a" * 9000 + "?x=" + "b" * 100, {}))
        answer = read_answer(sock)
    assert_page_with_headers(answer, 414)
    assert 'lang="ru"' in answer.text
    assert "aaaa" not in answer.text and "bbbb" not in answer.text
    assert all(f'href="/{code}/"' in answer.text for code in ("uk", "ru", "be", "en"))


def test_too_many_files_and_too_long_a_text_are_told_apart(server):
    server_files = [(f"f{i}.txt", b"x") for i in range(70)]
    answer = server.submit("", server_files)
    assert_page_with_headers(answer, 413, "Too many files")
    assert "Nothing was kept." in answer.text
    answer = server.submit("w" * 900_000)
    assert_page_with_headers(answer, 413, "longer than")
    assert "Nothing was kept." in answer.text
    assert server.store_files() == []


def test_a_large_body_that_is_not_a_form_with_files_is_refused_before_it_is_read(server):
    """A login's body is a few hundred bytes: one declaring 400 MiB is answered
    at once, before a byte of it is sent, instead of being held in memory."""
    with server.connect() as sock:
        sock.sendall(request_head("POST", "/uk/login", {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(400 * 1024 * 1024)}))
        started = time.monotonic()
        answer = read_answer(sock, timeout=WINDOW * 2)  # not a byte of the body sent
        assert time.monotonic() - started < WINDOW
    assert_page_with_headers(answer, 413, "Забагато за один раз")
    assert 'lang="uk"' in answer.text


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "application/octet-stream", ""])
def test_a_chunked_body_that_is_not_a_form_with_files_is_cut_past_the_limit(
        server, content_type):
    """Without a length, the body is cut once it passes the form-memory limit
    (here about 785 KiB): what is held stays under it, whatever follows."""
    headers = {"Transfer-Encoding": "chunked"}
    if content_type:
        headers["Content-Type"] = content_type
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    with server.connect() as sock:
        sock.sendall(request_head("POST", "/en/login", headers))
        for _ in range(13):  # 832 KiB: a little past the limit
            sock.sendall(chunk)
        answer = read_answer(sock, timeout=WINDOW * 2)
    assert_page_with_headers(answer, 413, "Too much at once")


def test_no_answer_carries_a_time(server):
    """Neither static files nor pages nor refusals say what time it is on the
    server, or when a file was changed."""
    clock = ("date", "expires", "last-modified", "etag", "age")
    answers = [server.get(path) for path in (
        "/static/uploads.js", "/static/style.css", "/en/", "/uk/login", "/", "/en/nowhere",
        "/static/nowhere.css")]
    with server.connect() as sock:
        sock.sendall(request_head("HEAD", "/static/uploads.js", {}))
        answers.append(read_answer(sock, head_only=True))
    with server.connect() as sock:  # a refusal of the front's own
        sock.sendall(request_head("GET", "/", {"X-Huge": "a" * 40_000}))
        answers.append(read_answer(sock))
    assert [a.status for a in answers] == [200, 200, 200, 200, 302, 404, 404, 200, 431]
    for answer in answers:
        assert not [name for name in clock if name in answer.headers], answer.headers


def test_two_requests_on_one_connection(server):
    with server.connect() as sock:
        sock.sendall(request_head("GET", "/en/", {}))
        first = read_answer(sock)
        sock.sendall(request_head("GET", "/en/login", {}))
        second = read_answer(sock)
    assert first.status == 200 and second.status == 200 and "codename" in second.text.lower()


def test_a_stopping_server_does_not_wait_on_idle_connections(server):
    """Kept-alive and silent connections are closed at once on shutdown; a
    restart must not wait out their deadlines."""
    with server.connect() as kept, server.connect() as _silent:
        kept.sendall(request_head("GET", "/en/", {}))
        assert read_answer(kept).status == 200
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 10
        assert closed_by_server(kept, 1)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def test_each_worker_starts_its_sandbox_before_the_first_upload(server):
    """The cleaners' zygote is started as the worker begins to serve, so the
    first witness does not wait while it loads (about 0.3 s)."""
    (worker,) = children_of(server.proc.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any("intake.server.sanitize.zygote" in _cmdline(c) for c in children_of(worker)):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the worker has no sandbox zygote before any upload")
    assert server.store_files() == []  # nothing was uploaded
