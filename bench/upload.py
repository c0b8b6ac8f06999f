"""A browser-like client that streams a multipart upload from disk.

The body is produced piece by piece with a known Content-Length, as a browser
sends a file: the client never holds the file in memory, so what it measures is
the server, not the client.
"""

from __future__ import annotations

import http.client
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READ_SIZE = 256 * 1024
TIMEOUT = 600  # seconds; a bound on any single socket wait, not on the upload

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_CODENAME = re.compile(r'id="codename">(.*?)</p>', re.DOTALL)
_WORD = re.compile(r"<span>([a-z-]+)</span>")


@dataclass(frozen=True)
class Part:
    """A plain form field (value) or a file field (path)."""

    name: str
    value: str = ""
    path: Path | None = None
    filename: str = ""


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    seconds: float


class MultipartBody:
    """Iterates over the encoded body; len() is its exact size."""

    def __init__(self, parts: list[Part]):
        self.boundary = "----intake-bench-" + secrets.token_hex(12)
        self._pieces: list[bytes | Path] = []
        for part in parts:
            head = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{part.name}"'
            if part.path is None:
                self._pieces.append(f"{head}\r\n\r\n{part.value}\r\n".encode())
            else:
                self._pieces.append(f'{head}; filename="{part.filename}"\r\n'
                                    "Content-Type: application/octet-stream\r\n\r\n".encode())
                self._pieces.append(part.path)
                self._pieces.append(b"\r\n")
        self._pieces.append(f"--{self.boundary}--\r\n".encode())

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in self._pieces)

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            with open(piece, "rb") as f:
                while block := f.read(READ_SIZE):
                    yield block


def get_form(port: int, path: str = "/en/") -> tuple[str, str]:
    """GET the form like a browser: returns (csrf token, session cookie 'name=value')."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        html = resp.read().decode()
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}")
        cookies = [c.split(";", 1)[0] for c in resp.headers.get_all("Set-Cookie") or []]
    finally:
        conn.close()
    token = _CSRF.search(html)
    session = [c for c in cookies if c.startswith("intake_session=")]
    if token is None or not session:
        raise RuntimeError("the form has no csrf_token field or no session cookie")
    return token.group(1), session[0]


def post_multipart(port: int, path: str, parts: list[Part], cookie: str = "") -> Reply:
    """POSTs the parts, streamed; the clock runs from the first byte to the last
    reply byte. Intake answers a form it took with a redirect to the receipt:
    that GET is followed, and its time counted, as a browser would."""
    body = MultipartBody(parts)
    headers = {"Content-Type": body.content_type, "Content-Length": str(len(body))}
    if cookie:
        headers["Cookie"] = cookie
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        started = time.perf_counter()
        conn.request("POST", path, body=iter(body), headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        status = resp.status
        if status == 303 and resp.getheader("Location"):
            conn.request("GET", resp.getheader("Location"), headers=(
                {"Cookie": cookie} if cookie else {}))
            receipt = conn.getresponse()
            text, status = receipt.read().decode(errors="replace"), receipt.status
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return Reply(status, text, seconds)


def codename_in(html: str) -> list[str]:
    """The codename words shown on a receipt page, or [] if there are none."""
    block = _CODENAME.search(html)
    return _WORD.findall(block.group(1)) if block else []
