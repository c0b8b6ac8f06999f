"""Slow clients and a flood, against a server on 127.0.0.1 (part of `make bench`).

Slow clients: for `seconds` (two minutes by default) the server is held by
100 connections that send half a request head and stall, 30 that send a head
and part of a body and stall (each reopened as soon as the server drops it,
so the count holds), and 32 uploads going steadily at 50 KB/s, an ordinary
Tor speed (the first of each a different size, so they end at different
moments). Meanwhile a new witness opens the form and sends a testimony with
a 100 KB file every few seconds: the time to the receipt is what counts. At
the end, still under that load, a 50 MB upload at full speed, three times,
against the same upload alone three times before the load (medians: one
upload of a fraction of a second moves with whatever else the machine does).

Run against Intake's front and against the plain Flask app on gunicorn's
threaded worker, in the same run: the figures decide between the designs.

Flood: as many 2 MB submissions as 8 clients can send, against a daily
upload quota, while a witness sends testimony every half second.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
RECEIPT = re.compile(r'id="codename"')
BOUNDARY = "slow-bench-" + secrets.token_hex(6)
ANSWER_TIMEOUT = 30.0


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}"
                                                           for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def body_of(fields: list[tuple[str, str]], files: list[tuple[str, bytes]],
            file_field: str = "files") -> bytes:
    out = bytearray()
    for name, value in fields:
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n").encode()
    for filename, content in files:
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode() + content + b"\r\n"
    return bytes(out + f"--{BOUNDARY}--\r\n".encode())


def post_head(path: str, length: int, cookie: str) -> bytes:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
               "Content-Length": str(length)}
    if cookie:
        headers["Cookie"] = cookie
    return _head("POST", path, headers)


@dataclass(frozen=True)
class Answer:
    status: int
    head: str
    body: str

    @property
    def cookie(self) -> str:
        match = re.search(r"^set-cookie:\s*([^;\r\n]+)", self.head, re.I | re.M)
        return match.group(1) if match else ""

    @property
    def location(self) -> str:
        match = re.search(r"^location:\s*(\S+)", self.head, re.I | re.M)
        return match.group(1) if match else ""


def read_answer(sock: socket.socket, deadline: float) -> Answer | None:
    data = b""
    while True:
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
            if match is None or len(body) >= int(match.group(1)):
                return Answer(int(head.split()[1]), head.decode("latin-1"),
                              body.decode(errors="replace"))
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            piece = sock.recv(256 * 1024)
        except (TimeoutError, OSError):
            return None
        if not piece:
            return None
        data += piece


class App:
    """What a witness does on one of the two servers."""

    def __init__(self, port: int, intake: bool):
        self.port, self.intake = port, intake
        self.path = "/en/submit" if intake else "/upload"
        self.file_field = "files" if intake else "f"

    def connect(self) -> socket.socket:
        return socket.create_connection((HOST, self.port), timeout=ANSWER_TIMEOUT)

    def submit(self, files: list[tuple[str, bytes]], deadline: float) -> int | None:
        """A new witness: the form, then the submission. The status of the
        answer (200 only with a receipt), or None without one in time."""
        fields, cookie = [], ""
        if self.intake:
            with self.connect() as sock:
                sock.sendall(_head("GET", "/en/", {}))
                answer = read_answer(sock, deadline)
            if answer is None or answer.status != 200:
                return None
            token = CSRF.search(answer.body)
            # "Keep originals": made-up files cannot be cleaned, and are
            # otherwise held for the receipt to ask, outside the upload quota.
            fields = [("csrf_token", token.group(1) if token else ""),
                      ("testimony", "a new witness"), ("keep_original", "y")]
            cookie = answer.cookie
        body = body_of(fields, files, self.file_field)
        with self.connect() as sock:
            sock.sendall(post_head(self.path, len(body), cookie))
            with contextlib.suppress(OSError):  # a refusal may come before the body is in
                sock.sendall(body)
            answer = read_answer(sock, deadline)
        if answer is not None and answer.status == 303 and answer.location:
            # Taken: the receipt is at its own address, fetched as a browser would.
            with self.connect() as sock:
                sock.sendall(_head("GET", answer.location, {"Cookie": cookie}))
                answer = read_answer(sock, deadline)
        if answer is None:
            return None
        if answer.status == 200 and not (RECEIPT.search(answer.body) if self.intake
                                         else "saved" in answer.body):
            return None
        return answer.status


@dataclass
class Load:
    """The slow clients, kept at their numbers until stop()."""

    app: App
    stalled_heads: int = 100
    stalled_bodies: int = 30
    tor_uploads: int = 32
    tor_rate: int = 50_000
    stop_flag: threading.Event = field(default_factory=threading.Event)
    dropped: int = 0
    threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: set[int] = field(default_factory=set)

    def start(self) -> None:
        for _ in range(self.stalled_heads):
            self._spawn(self._stalled_head)
        for _ in range(self.stalled_bodies):
            self._spawn(self._stalled_body)
        for n in range(self.tor_uploads):
            self._spawn(functools.partial(self._tor_upload, n))

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join()

    def _spawn(self, target) -> None:
        t = threading.Thread(target=self._forever, args=(target,), daemon=True)
        t.start()
        self.threads.append(t)

    def _forever(self, target) -> None:
        while not self.stop_flag.is_set():
            with contextlib.suppress(OSError):
                target()
            time.sleep(0.2)

    def _held(self, sock: socket.socket) -> None:
        """Waits until the server drops the connection, or the load ends."""
        sock.settimeout(0.5)
        while not self.stop_flag.is_set():
            try:
                if not sock.recv(65536):
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        else:
            return
        with self._lock:
            self.dropped += 1

    def _stalled_head(self) -> None:
        with self.app.connect() as sock:
            sock.sendall(f"POST {self.app.path} HTTP/1.1\r\nHost: {HOST}\r\nX-Wait: ".encode())
            self._held(sock)

    def _stalled_body(self) -> None:
        body = body_of([("testimony", "stalled")], [("stalled.bin", os.urandom(200_000))],
                       self.app.file_field)
        with self.app.connect() as sock:
            sock.sendall(post_head(self.app.path, len(body), "") + body[:20_000])
            self._held(sock)

    def _tor_upload(self, n: int) -> None:
        # Steady, not in step: each client's first upload is a fraction of
        # the size (1/32 to 32/32), so they end at different moments, as
        # witnesses' do, instead of all 32 at once two minutes in.
        size = 6_000_000 * (n + 1) // self.tor_uploads if n not in self._started else 6_000_000
        self._started.add(n)
        body = body_of([("testimony", "slow")], [("slow.bin", os.urandom(size))],
                       self.app.file_field)
        step, pause = self.tor_rate // 10, 0.1
        with self.app.connect() as sock:
            sock.sendall(post_head(self.app.path, len(body), ""))
            for i in range(0, len(body), step):
                if self.stop_flag.wait(pause):
                    return
                sock.sendall(body[i:i + step])
            read_answer(sock, time.monotonic() + ANSWER_TIMEOUT)


@dataclass
class SlowResult:
    design: str
    receipts: list[float]  # seconds to each witness's receipt (ANSWER_TIMEOUT: none)
    failures: int
    alone: list[float | None]  # each 50 MB upload alone: seconds, or None without a receipt
    loaded: list[float | None]  # the same, under the load
    dropped: int

    @property
    def alone_50mb(self) -> float | None:
        return _median(self.alone)

    @property
    def loaded_50mb(self) -> float | None:
        return _median(self.loaded)

    @property
    def worst(self) -> float:
        return max(self.receipts) if self.receipts else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.receipts) if self.receipts else float("nan")


def _median(times: list[float | None]) -> float | None:
    """The median, an upload without a receipt counting as the slowest;
    None if that is where the median falls."""
    ordered = sorted(times, key=lambda t: float("inf") if t is None else t)
    return ordered[len(ordered) // 2] if ordered else None


def _timed(app: App, files: list[tuple[str, bytes]], limit: float = ANSWER_TIMEOUT
           ) -> float | None:
    """Seconds to a receipt, or None without one within `limit`."""
    started = time.monotonic()
    status = app.submit(files, started + limit)
    return time.monotonic() - started if status == 200 else None


def slow_clients(design: str, app: App, seconds: float, every: float = 5.0,
                 repeat: int = 3) -> SlowResult:
    big = [("big.bin", os.urandom(50_000_000))]
    small = [("photo.bin", os.urandom(100_000))]
    alone = [_timed(app, big, ANSWER_TIMEOUT * 4) for _ in range(repeat)]
    load = Load(app)
    load.start()
    receipts, failures = [], 0
    end = time.monotonic() + seconds
    try:
        time.sleep(min(5.0, seconds / 4))  # let the load settle
        while time.monotonic() < end:
            took = _timed(app, small)
            if took is None or took >= ANSWER_TIMEOUT:
                failures += 1
                receipts.append(ANSWER_TIMEOUT)
            else:
                receipts.append(took)
            time.sleep(max(0.0, every - (took or 0)))
        loaded: list[float | None] = []
        while len(loaded) < repeat and None not in loaded:  # one that never ends is enough
            loaded.append(_timed(app, big, ANSWER_TIMEOUT * 4))
    finally:
        load.stop()
    return SlowResult(design, receipts, failures, alone, loaded, load.dropped)


@dataclass
class FloodResult:
    sent: int
    accepted: int
    refused: int
    witness_receipts: list[float]
    stored_mb: float


def flood(app: App, store_bytes, seconds: float, clients: int = 8) -> FloodResult:
    """Valid submissions with a 2 MB file each, as fast as `clients` can send
    them, while a witness sends testimony every half second."""
    junk = [("junk.bin", os.urandom(2_000_000))]
    counts = {"sent": 0, "accepted": 0, "refused": 0}
    lock, stop = threading.Lock(), threading.Event()

    def flooder() -> None:
        while not stop.is_set():
            try:
                status = app.submit(junk, time.monotonic() + ANSWER_TIMEOUT)
            except OSError:
                status = None
            with lock:
                counts["sent"] += 1
                counts["accepted"] += status == 200
                counts["refused"] += status == 503

    threads = [threading.Thread(target=flooder, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    receipts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        took = _timed(app, [])
        receipts.append(took if took is not None else ANSWER_TIMEOUT)
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    return FloodResult(counts["sent"], counts["accepted"], counts["refused"], receipts,
                       store_bytes() / 1e6)
