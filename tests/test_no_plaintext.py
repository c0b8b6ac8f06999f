"""Plaintext never touches the server's disk, and nothing names the witness.

The real server (`intake serve`, gunicorn) receives a canary testimony and a
large canary file; every file it could have written is then scanned for the
canary, the client address, the User-Agent and the time of day. While the
upload is still streaming, the worker's open spool files are read too: they
have no name on disk, so only /proc reaches them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import CSRF, children_of, csrf_token, free_port, make_config

from intake.format import envelope
from intake.server.store import SUFFIX

BIG_FILE_MIB = 40
READ_CHUNK = 4 * 1024 * 1024


def variants(canary: bytes) -> list[bytes]:
    """The canary as raw bytes, UTF-16, hex and base64 at each of three alignments."""
    out = [canary, canary.decode().encode("utf-16-le"), canary.hex().encode()]
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + canary)
        out.append(encoded[4:-4])  # the part that does not depend on neighbours
    return out


def files_under(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def holds_any(path: Path, needles: list[bytes]) -> bytes | None:
    overlap = max(len(n) for n in needles)
    tail = b""
    with open(path, "rb") as f:
        while block := f.read(READ_CHUNK):
            window = tail + block
            for needle in needles:
                if needle in window:
                    return needle
            tail = window[-overlap:]
    return None


def assert_nowhere(needles: list[bytes], paths: list[Path]) -> None:
    hits = [(str(p), n) for p in paths if (n := holds_any(p, needles)) is not None]
    assert hits == [], hits


# -- a real server -------------------------------------------------------------------------


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if proc.poll() is not None:
            raise AssertionError(f"the server exited early: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            proc_wait(proc, 0.1)
    raise AssertionError("the server did not start listening")


def proc_wait(proc: subprocess.Popen, seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(seconds)


def open_files_of(pid: int, under: list[Path]) -> list[Path]:
    """The regular files a process holds open below the given folders, by /proc fd."""
    roots = [str(r) for r in under]
    found = []
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if any(target.startswith(r) for r in roots):
            found.append(fd)
    return found


def multipart_stream(parts: list[tuple[str, str | None, bytes | Path]], boundary: str,
                     on_progress=None) -> tuple[int, Iterator[bytes]]:
    """A multipart body streamed from memory and disk: (length, chunks)."""
    pieces: list[bytes | Path] = []
    for name, filename, content in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        if filename is not None:
            head += f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
        pieces += [(head + "\r\n\r\n").encode(), content, b"\r\n"]
    pieces.append(f"--{boundary}--\r\n".encode())
    length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in pieces)

    def chunks() -> Iterator[bytes]:
        sent = 0
        for p in pieces:
            if isinstance(p, Path):
                with open(p, "rb") as f:
                    while block := f.read(1024 * 1024):
                        yield block
                        sent += len(block)
                        if on_progress:
                            on_progress(sent, length)
            else:
                yield p
                sent += len(p)

    return length, chunks()


@pytest.fixture
def server(tmp_path, team_key):
    """`intake serve` in its own process, with data and TMPDIR inside tmp_path."""
    data, tmp = tmp_path / "data", tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    env = {**os.environ, "INTAKE_DATA_DIR": str(data), "INTAKE_KEYS_DIR": str(team_key.keys_dir),
           "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192", "TMPDIR": str(tmp)}
    env.pop("INTAKE_CONFIG", None)
    env.pop("INTAKE_DATABASE_URL", None)
    out, err = tmp_path / "server.out", tmp_path / "server.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env=env, stdout=fo, stderr=fe, cwd=tmp_path)
    try:
        wait_listening(port, proc)
        yield proc, port, data, tmp, (out, err)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_no_plaintext_ip_agent_or_time_on_the_server(tmp_path, team_key, server):
    proc, port, data, tmpdir, logs = server
    canary = ("CANARY-" + secrets.token_hex(16)).encode()
    text_canary = ("TESTIMONY-" + secrets.token_hex(16)).encode()
    agent = "CanaryBrowser/" + secrets.token_hex(8)
    client_dir = tmp_path / "client"  # the witness's own disk, not scanned
    client_dir.mkdir()
    big = client_dir / "video.mp4"
    with open(big, "wb") as f:
        block = (canary + b" ") * (1024 * 1024 // (len(canary) + 1))
        while f.tell() < BIG_FILE_MIB * 1024 * 1024:
            f.write(block)
    small = b"small attachment " + canary

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/en/", headers={"User-Agent": agent})
    form = conn.getresponse()
    page = form.read().decode()
    assert form.status == 200 and "Server" not in form.headers
    cookie = form.getheader("Set-Cookie").split(";", 1)[0]
    token = CSRF.search(page).group(1)

    spool_checks: list[int] = []

    def read_spools_midway(sent: int, total: int) -> None:
        # Halfway through, read the worker's open spool and store files: they
        # must already be ciphertext.
        if spool_checks or sent < total // 2:
            return
        workers = children_of(proc.pid)
        assert workers, "no gunicorn worker found"
        for pid in workers:
            for fd in open_files_of(pid, [data, tmpdir]):
                with open(fd, "rb") as f:
                    content = f.read()
                spool_checks.append(len(content))
                for needle in variants(canary):
                    assert needle not in content, f"plaintext in an open file {os.readlink(fd)}"

    boundary = "----canary" + secrets.token_hex(8)
    length, body = multipart_stream(
        [("csrf_token", None, token.encode()), ("testimony", None, text_canary),
         ("keep_original", None, b"y"),
         ("files", "video.mp4", big), ("files", "note.txt", small)],
        boundary, read_spools_midway)
    conn.putrequest("POST", "/en/submit", skip_accept_encoding=True)
    for name, value in (("Content-Type", f"multipart/form-data; boundary={boundary}"),
                        ("Content-Length", str(length)), ("Cookie", cookie),
                        ("User-Agent", agent)):
        conn.putheader(name, value)
    conn.endheaders()
    for block in body:
        conn.send(block)
    sent = conn.getresponse()
    sent.read()
    assert sent.status == 303, sent.status  # then the receipt, at its own address
    conn.request("GET", sent.getheader("Location"), headers={"Cookie": cookie})
    receipt = conn.getresponse()
    receipt_page = receipt.read().decode()
    conn.close()
    assert receipt.status == 200, receipt_page
    assert 'id="codename"' in receipt_page
    assert "Server" not in receipt.headers
    assert spool_checks and max(spool_checks) > 1024 * 1024, \
        "the open spool was not found mid-upload"

    stop(proc)
    scanned = files_under(data, tmpdir)
    assert any(p.suffix == ".env" for p in scanned)
    assert any(p.name.startswith("intake.db") for p in scanned)
    assert_nowhere(variants(canary) + variants(text_canary), scanned + list(logs))
    assert_nowhere([b"127.0.0.1", agent.encode(), agent.encode("utf-16-le")], scanned)
    log_text = b"".join(p.read_bytes() for p in logs).decode(errors="replace")
    assert agent not in log_text
    assert not re.search(r"\b\d\d:\d\d:\d\d\b", log_text), log_text

    # Something did arrive: the envelopes open with the team key to the canaries.
    arrived = {}
    for path in sorted((data / "store").glob(f"*{SUFFIX}")):
        with open(path, "rb") as f:
            reader = envelope.EnvelopeReader(f, team_key.private_key)
            size, head = 0, b""
            for piece in reader.content():
                size += len(piece)
                head = head or piece[:64]
        arrived[reader.metadata.get("original_name", "testimony")] = (size, head,
                                                                      reader.metadata)
    assert set(arrived) == {"testimony", "video.mp4", "note.txt"}
    assert arrived["testimony"][1] == text_canary
    assert arrived["video.mp4"][0] == big.stat().st_size
    assert arrived["video.mp4"][1].startswith(canary)
    assert arrived["note.txt"][1] == small
    assert arrived["video.mp4"][2]["sha256_received"] == \
        hashlib.sha256(big.read_bytes()).hexdigest()


# -- in process: the multipart parser's temporary files ----------------------------------

class RecordingFile:
    """Wraps a temporary file and remembers every byte written to it."""

    def __init__(self, inner, written: bytearray):
        self._inner, self._written = inner, written

    def write(self, data):
        self._written += bytes(data)
        return self._inner.write(data)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __iter__(self):
        return iter(self._inner)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._inner.close()


@pytest.fixture
def temp_writes(tmp_path, monkeypatch) -> bytearray:
    """Every byte any temporary file of this process receives, and TMPDIR in tmp_path."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    written = bytearray()
    real = tempfile.TemporaryFile

    def recording(*args, **kwargs):
        return RecordingFile(real(*args, **kwargs), written)

    monkeypatch.setattr(tempfile, "TemporaryFile", recording)
    return written


def _canary_upload(client, canary: bytes, mib: int = 2):
    # Built in memory: the test client would otherwise spool a large body itself.
    boundary = "canary" + secrets.token_hex(8)
    length, chunks = multipart_stream(
        [("csrf_token", None, csrf_token(client).encode()),
         ("testimony", None, b"text " + canary), ("keep_original", None, b"y"),
         ("files", "big.bin", canary * (mib * 1024 * 1024 // len(canary))),
         ("files", "small.txt", b"small " + canary)], boundary)
    body = b"".join(chunks)
    assert len(body) == length
    return client.post("/en/submit", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def test_upload_request_spools_ciphertext_only(app, client, temp_writes, tmp_path,
                                              monkeypatch):
    from intake.server.witness.upload_request import EncryptedUploadRequest

    assert app.request_class is EncryptedUploadRequest
    assert tempfile.gettempdir() == str(tmp_path / "tmp")
    # Uploads are sealed as they arrive: record what goes into envelope files too.
    from intake.server.upload_spool import EnvelopeFile

    real_writelines = EnvelopeFile.writelines

    def recording(self, pieces):  # every write goes through it
        for piece in pieces:
            temp_writes.extend(piece)
        return real_writelines(self, pieces)

    monkeypatch.setattr(EnvelopeFile, "writelines", recording)
    canary = ("CANARY-" + secrets.token_hex(16)).encode()
    r = _canary_upload(client, canary)
    assert r.status_code == 303  # sent; the receipt is at its own address
    # The big file went to disk as it arrived, as ciphertext only.
    assert len(temp_writes) > 2 * 1024 * 1024
    for needle in variants(canary):
        assert needle not in temp_writes
    data = app.extensions["intake"].config.data_dir
    assert_nowhere(variants(canary), files_under(tmp_path / "tmp", data))


def test_the_spy_sees_werkzeugs_plain_spool(tmp_path, team_key, temp_writes):
    """The check above can fail: with Flask's own request class, Werkzeug spools
    the upload in the clear, and the recording sees the canary."""
    from flask import Request

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir))
    app.request_class = Request
    try:
        canary = ("CANARY-" + secrets.token_hex(16)).encode()
        r = _canary_upload(app.test_client(), canary)
        assert r.status_code == 400  # the witness code refuses a plain spool
        assert canary in temp_writes
    finally:
        app.extensions["intake"].close()
