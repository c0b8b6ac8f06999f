"""A resumable upload through a real, private Tor network on 127.0.0.1.

The server runs the shipped gunicorn configuration behind the shipped torrc;
the witness's requests go through the client tor's SOCKS port, as raw bytes.
A piece is broken off mid-way (its stream closed, as when a circuit fails),
the server is asked what arrived and only the rest is sent; every byte is
received once, and the submission decrypts to what was sent.

Run by `make test-tor` (minutes, not seconds: excluded from `make test`).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import struct
import time

import pytest
from deploy_support import LAUNCHERS, render_torrc
from private_tor import PrivateTorNetwork
from support import free_port
from test_tor_network import NETWORK_DEADLINE, until

from intake.format.envelope import open_envelope

pytestmark = pytest.mark.tor

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
TUS = "Tus-Resumable: 1.0.0\r\n"


class NoStream(Exception):
    """Tor refused the stream (e.g. the onion's descriptor is not out yet)."""


def socks_stream(socks_port: int, host: str, port: int) -> socket.socket:
    """A connection to host:port through tor's SOCKS port (closed if refused)."""
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=120)
    try:
        s.sendall(b"\x05\x01\x00")
        if s.recv(2) != b"\x05\x00":
            raise NoStream("SOCKS greeting refused")
        name = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
        reply = s.recv(10)
        if len(reply) < 2 or reply[1] != 0:
            raise NoStream(reply.hex())
    except BaseException:
        s.close()
        raise
    return s


def read_answer(sock, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(120)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError("closed before an answer")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    # An answer to HEAD carries a GET's Content-Length, never a body.
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return int(lines[0].split()[1]), headers, body


def ask(socks_port: int, onion: str, head: str, body: bytes = b""):
    with socks_stream(socks_port, onion, 80) as sock:
        sock.sendall(head.encode("latin-1") + body)
        return read_answer(sock, head_only=head.startswith("HEAD "))


@pytest.fixture
def network(tmp_path):
    net = PrivateTorNetwork(tmp_path / "tor")
    try:
        yield net
    finally:
        net.stop()
        assert net.running() == []


def test_a_resumable_upload_broken_mid_way_over_tor(network, tmp_path, team_key, capsys):
    app = LAUNCHERS["gunicorn-shipped-config"](tmp_path / "app", team_key.keys_dir)
    timings: dict[str, float] = {}
    try:
        app.start()
        service_data = tmp_path / "tor" / "service-onions"
        network.configure(render_torrc(service_data, app.port, free_port()))
        service_data.mkdir(mode=0o700)
        network.start()
        start = time.monotonic()
        deadline = start + NETWORK_DEADLINE
        network.wait_for_log(network.client, r"Bootstrapped 100%", NETWORK_DEADLINE)
        hostname = service_data / "intake-witness" / "hostname"
        until("the onion key", lambda: hostname.exists() and hostname.read_text().strip(),
              deadline)
        onion = hostname.read_text().strip()
        port = network.socks_port
        host = f"Host: {onion}\r\n"

        def form():
            try:
                status, headers, body = ask(port, onion, f"GET /en/ HTTP/1.1\r\n{host}\r\n")
            except NoStream:  # no descriptor yet
                return None
            return (status, headers, body) if status == 200 else None

        _status, headers, body = until("the witness onion answers", form, deadline)
        timings["onion reachable"] = time.monotonic() - start
        cookie = headers["set-cookie"].split(";")[0]
        token = CSRF.search(body.decode()).group(1)
        who = f"{host}Cookie: {cookie}\r\n"

        data = secrets.token_bytes(768 * 1024)
        meta = base64.b64encode(b"evidence.mp4").decode()
        status, headers, _ = ask(port, onion, (
            f"POST /uploads/ HTTP/1.1\r\n{who}{TUS}X-CSRFToken: {token}\r\n"
            f"Upload-Length: {len(data)}\r\nUpload-Metadata: filename {meta}\r\n"
            "Content-Length: 0\r\n\r\n"))
        assert status == 201
        url = headers["location"]

        def patch_head(offset: int, length: int) -> bytes:
            return (f"PATCH {url} HTTP/1.1\r\n{who}{TUS}Upload-Offset: {offset}\r\n"
                    "Content-Type: application/offset+octet-stream\r\n"
                    f"Content-Length: {length}\r\n\r\n").encode()

        # The first piece claims all of it; the stream breaks after 300 KiB.
        sent = 300 * 1024
        broken = socks_stream(port, onion, 80)
        broken.sendall(patch_head(0, len(data)) + data[:sent])
        time.sleep(2)  # the bytes cross the network; then the circuit's stream is gone
        broken.close()

        def arrived():
            status, headers, _ = ask(port, onion, f"HEAD {url} HTTP/1.1\r\n{who}{TUS}\r\n")
            offset = int(headers.get("upload-offset", "0")) if status == 200 else 0
            return offset or None

        offset = until("the broken piece is closed", arrived, deadline)
        assert 0 < offset <= sent
        pieces_file = tmp_path / "app" / "data" / "uploads" / url.rsplit("/", 1)[1] / \
            "state.json"
        assert json.loads(pieces_file.read_text())["pieces"] == [offset]

        with socks_stream(port, onion, 80) as sock:
            sock.sendall(patch_head(offset, len(data) - offset) + data[offset:])
            status, headers, _ = read_answer(sock)
        assert status == 204 and int(headers["upload-offset"]) == len(data)
        pieces = json.loads(pieces_file.read_text())["pieces"]
        assert pieces == [offset, len(data) - offset]  # each byte received once

        boundary = "tor-boundary"
        fields = [("csrf_token", token), ("testimony", "sent in pieces over Tor"),
                  ("keep_original", "y"), ("upload", url.rsplit("/", 1)[1])]
        form_body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"'
                            f"\r\n\r\n{v}\r\n" for k, v in fields) + f"--{boundary}--\r\n"
        status, _headers, page = ask(port, onion, (
            f"POST /en/submit HTTP/1.1\r\n{who}Content-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {len(form_body.encode())}\r\n\r\n"),
            form_body.encode())
        assert status == 303  # taken: the receipt is at its own address
        status, _headers, page = ask(port, onion,
                                     f"GET {_headers['location']} HTTP/1.1\r\n{who}\r\n")
        assert status == 200 and b'id="codename"' in page
        timings["total"] = time.monotonic() - start

        opened = {}
        for path in sorted((tmp_path / "app" / "data" / "store").glob("*.env")):
            with open(path, "rb") as f:
                plain, meta_in = open_envelope(f, team_key.private_key)
            opened[meta_in["kind"]] = plain
        assert opened["file"] == data
        assert opened["testimony"] == b"sent in pieces over Tor"
    finally:
        network.stop()
        app.stop()
    with capsys.disabled():
        print(f"\nresumable over Tor: broken after {sent} bytes sent, {offset} arrived; "
              + ", ".join(f"{k}: {v:.1f} s" for k, v in timings.items()))
