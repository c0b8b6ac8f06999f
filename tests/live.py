"""A real `intake serve` on 127.0.0.1 for tests, and a raw HTTP client for it:
bytes on a socket, so a test can stall, trickle or break a request at will."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from support import CSRF, free_port, store_contents

BOUNDARY = "live-boundary-7f3a"



@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def read_answer(sock: socket.socket, timeout: float = 30,
                head_only: bool = False) -> Answer | None:
    """One HTTP answer with a Content-Length, or None if the server closed first.
    An answer to HEAD (head_only) carries the Content-Length of a GET, never a body."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return Answer(status, headers, body[:length])


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes the connection within `timeout` (what it sent
    before, if anything, is read and dropped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def multipart_body(fields: list[tuple[str, str]], files: list[tuple[str, bytes]],
                   boundary: str = BOUNDARY) -> bytes:
    out = bytearray()
    for name, value in fields:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n").encode()
    for filename, content in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode() + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in
                                                            headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class LiveServer:
    def __init__(self, tmp_path: Path, keys_dir: Path, database_url: str = "",
                 workers: int = 1, **settings: object):
        self.port = free_port()
        self.data_dir = tmp_path / "live-data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        env.update({"INTAKE_DATA_DIR": str(self.data_dir), "INTAKE_KEYS_DIR": str(keys_dir),
                    "INTAKE_DATABASE_URL": database_url, "INTAKE_KDF_OPSLIMIT": "1",
                    "INTAKE_KDF_MEMLIMIT": "8192"})
        env.update({f"INTAKE_{k.upper()}": str(v) for k, v in settings.items()})
        self.log = tmp_path / "live-server.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "intake", "serve", "--port", str(self.port),
                 "--workers", str(workers)], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("the server exited:\n" + self.log.read_text())
            try:
                answer = self.get("/en/", timeout=5)
                if answer is not None and answer.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None,
            timeout: float = 30) -> Answer | None:
        with self.connect() as sock:
            sock.sendall(request_head("GET", path, headers or {}))
            return read_answer(sock, timeout)

    def form(self) -> tuple[str, str]:
        """A fresh witness opens the form: its CSRF token and session cookie."""
        answer = self.get("/en/")
        assert answer is not None and answer.status == 200
        token = CSRF.search(answer.text).group(1)
        return token, answer.headers.get("set-cookie", "").split(";")[0]

    def submission_head(self, body_length: int, cookie: str, path: str = "/en/submit") -> bytes:
        return request_head("POST", path, {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(body_length), "Cookie": cookie})

    def submit(self, testimony: str = "", files: list[tuple[str, bytes]] | None = None,
               timeout: float = 60, keep_original: bool = True) -> Answer:
        """Made-up files cannot be cleaned: they are kept as the witness's chosen
        originals unless keep_original is False."""
        token, cookie = self.form()
        fields = [("csrf_token", token), ("testimony", testimony)]
        if keep_original:
            fields.append(("keep_original", "y"))
        body = multipart_body(fields, files or [])
        with self.connect() as sock:
            sock.sendall(self.submission_head(len(body), cookie) + body)
            answer = read_answer(sock, timeout)
        assert answer is not None, "the server closed without an answer"
        if answer.status == 303:  # sent: the receipt is at its own address
            answer = self.get(answer.headers["location"], {"Cookie": cookie}, timeout)
            assert answer is not None, "the server closed without an answer"
        return answer

    def store_files(self) -> list[str]:
        return store_contents(self.data_dir / "store")


CODENAME = re.compile(r'<p class="codename" id="codename">')


def is_receipt(answer: Answer) -> bool:
    return answer.status == 200 and bool(CODENAME.search(answer.text))
