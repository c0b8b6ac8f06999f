"""Helpers shared by the tests (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from nacl import pwhash

from intake.format.teamkeys import KdfCost
from intake.server.config import Config, load_config
from intake.server.pending_originals import FOLDER as PENDING
from intake.server.spool import HEAD_BYTES
from intake.server.store import POOL_DIR

PASSPHRASE = b"correct horse battery staple"
# Key files made in tests take the cheapest Argon2id cost, passed in explicitly.
FAST_KDF = KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)


def make_config(tmp_path: Path, keys_dir: Path, **overrides) -> Config:
    return load_config({}, data_dir=tmp_path / "data", keys_dir=keys_dir,
                       kdf_opslimit=1, kdf_memlimit=8192, **overrides)


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a server a test starts.

    Taken below the kernel's ephemeral range: a port the kernel hands out for
    port 0 can become the source port of any outgoing connection (a tor
    already running connects to its peers) before the server given it binds,
    and a tor that cannot bind exits before it has opened its log."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = range(10000, low) if low > 12000 else range(1024, low)
    for _ in range(200):
        port = random.choice(ports)  # noqa: S311 - not a secret, spreads the tries
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port below {low} on 127.0.0.1")


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, path: str = "/en/") -> str:
    page = client.get(path)
    assert page.status_code == 200
    return CSRF.search(page.get_data(as_text=True)).group(1)


def submit(client, testimony: str = "", files: list[tuple[bytes, str]] | None = None,
           token: str | None = None, keep_original: bool = True, lang: str = "en", **extra):
    """Posts the witness form. Most tests send made-up bytes no cleaner handles
    and check that they are stored: sanitizing fails closed, so they tick
    "keep the originals", as a witness must for such files to be kept."""
    data = {"csrf_token": token if token is not None else csrf_token(client, f"/{lang}/"),
            "testimony": testimony, **({"keep_original": "y"} if keep_original else {}),
            **extra}
    data["files"] = [(io.BytesIO(content), name) for content, name in (files or [])]
    # The form answers with a redirect to the receipt, which is followed.
    return client.post(f"/{lang}/submit", data=data, content_type="multipart/form-data",
                       follow_redirects=True)


CODENAME = re.compile(r'<p class="codename" id="codename">(.*?)</p>', re.S)


def codename_of(page_text: str) -> str:
    return " ".join(re.findall(r"<span>([^<]+)</span>", CODENAME.search(page_text).group(1)))


class MemorySpool:
    """An upload, or a cleaned copy, held in memory: what the sanitizer reads and
    writes, for tests that call it directly (the server seals both on arrival,
    in an UploadSpool)."""

    def __init__(self, data: bytes = b""):
        self._data = bytearray(data)

    @property
    def head(self) -> bytes:
        return bytes(self._data[:HEAD_BYTES])

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._data).hexdigest()

    def write(self, data: bytes) -> int:
        self._data += data
        return len(data)

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self._data), 1024 * 1024):
            yield bytes(self._data[start:start + 1024 * 1024])

    def close(self) -> None:
        pass


def store_contents(store: Path) -> list[str]:
    """What a server's store holds: its files, and those held in its pending
    folder as "pending/NAME" (that folder is made when the server starts, and
    the pool of empty files whenever a keeper looks at a five-minute mark, so
    neither is something stored)."""
    pending = store / PENDING
    names = [p.name for p in store.iterdir() if p.name not in (PENDING, POOL_DIR)]
    if pending.is_dir():
        names += [f"{PENDING}/{p.name}" for p in pending.iterdir()]
    return sorted(names)


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids
