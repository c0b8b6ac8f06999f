"""The witness app reads a length-delimited body straight from gunicorn's
socket (intake/server/witness/socket_body.py): every byte must arrive, once, in order,
and gunicorn must still find the next request where it starts."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest
from support import CSRF
from test_demo import free_port, wait_for

from intake.format import envelope
from intake.server import store
from intake.server.witness.socket_body import SocketBody

SERVER = textwrap.dedent("""
    from intake.server.config import load_config
    from intake.server.gunicorn import GunicornServer
    from intake.server.witness import create_app
    config = load_config(kdf_opslimit=1, kdf_memlimit=8192, max_upload=%d)
    GunicornServer(lambda: create_app(config), "127.0.0.1:%d", workers=1).run()
""")
MAX_UPLOAD = 16 * 1024 * 1024


@pytest.fixture
def server(config, tmp_path):
    port = free_port()
    env = {**os.environ, "INTAKE_DATA_DIR": str(config.data_dir),
           "INTAKE_KEYS_DIR": str(config.keys_dir)}
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-c", SERVER % (MAX_UPLOAD, port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(port, proc)
        yield port
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def _exchange(port: int, data: bytes, replies: int) -> list[tuple[int, dict, bytes]]:
    """Sends raw bytes on one connection; reads `replies` HTTP answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        with sock.makefile("rb") as stream:
            return _replies(stream, replies)


def _replies(stream, replies: int) -> list[tuple[int, dict, bytes]]:
    out = []
    for _ in range(replies):
        line = stream.readline()
        if not line:  # the server closed the connection
            break
        status = int(line.split()[1])
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((status, headers, stream.read(int(headers.get("content-length", 0)))))
    return out


def _form(port: int) -> tuple[str, str]:
    (status, headers, page), = _exchange(
        port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
    assert status == 200
    return CSRF.search(page.decode()).group(1), headers["set-cookie"].split(";")[0]


def _post(token: str, cookie: str, content: bytes, path: str = "/submit",
          keep_alive: bool = True) -> bytes:
    boundary = "sockbody"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"keep_original\"\r\n\r\ny\r\n"  # made-up bytes: kept only if asked
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"f.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
    return head + body


def _stored(config) -> list[bytes]:
    return sorted(p.read_bytes() for p in (config.data_dir / "store").glob(f"*{store.SUFFIX}"))


def test_every_byte_arrives_once_and_in_order(server, config, team_key):
    token, cookie = _form(server)
    content = os.urandom(5 * 1024 * 1024 + 12345)
    (status, _, page), = _exchange(server, _post(token, cookie, content, keep_alive=False), 1)
    assert status == 200 and re.search(rb'class="codename"', page)
    (sealed,) = _stored(config)
    opened, meta = envelope.open_envelope(io.BytesIO(sealed), team_key.private_key)
    assert opened == content and meta["size"] == len(content)


@pytest.mark.parametrize("path", ["/no-such-page", "/submit"], ids=["not-read", "read"])
def test_the_next_request_on_the_connection_starts_where_it_should(server, path):
    """A body the app does not read (a 404) goes back to gunicorn, which skips
    it or closes the connection, as it always did; one it reads leaves nothing
    behind. Both with the next request sent right behind it, pipelined, in
    the same packets: it must never be read from the middle of a body."""
    token, cookie = _form(server)
    upload = _post(token, cookie, os.urandom(3 * 1024 * 1024), path=path)
    then = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    replies = _exchange(server, upload + then, 2)
    assert replies[0][0] == (404 if path != "/submit" else 200)
    if path == "/submit":
        assert len(replies) == 2
    for status, _, page in replies[1:]:
        assert status == 200 and b'name="csrf_token"' in page


def test_only_a_gunicorn_socket_body_is_taken_over():
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import IterUnreader

    from intake.server.witness.socket_body import read_body_from_socket

    seen = []

    def app(environ, start_response):
        seen.append(type(environ["wsgi.input"]))
        return []

    body = Body(LengthReader(IterUnreader([b"abc"]), 3))
    read_body_from_socket(app)({"wsgi.input": body}, None)
    assert seen == [Body] and SocketBody not in seen
