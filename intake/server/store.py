"""The ciphertext store: one file per envelope, named by an opaque random id.

Envelopes are written under a temporary name, fsynced, and renamed into place
only when the whole submission is ready; file times are set to the day, never
the time of day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"
# Seconds without a write after which a .tmp- file is an upload whose process
# died: an upload arriving writes at least once a rate window (intake.server.
# front), and cleaning one takes minutes at most (intake.server.budget).
LEFTOVER_AFTER = 3600
SUFFIX = ".env"
POOL_DIR = ".pool"  # empty files made by the hourly pass (intake.server.tidy)
POOL_SIZE = 1024
# Below this many, the pool is "low": each worker tops it up at its next
# fixed time of the clock (PoolKeeper), and doctor warns.
POOL_LOW = POOL_SIZE * 3 // 4
REFILL_SECONDS = 300  # the keeper looks at the pool on every multiple of this
log = logging.getLogger("intake")


def new_id() -> str:
    return secrets.token_hex(16)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def coarsen_mtime(path: Path, day: dt.date | None = None, *,
                  follow_symlinks: bool = True) -> None:
    """Sets a file's or folder's times to midnight UTC of the day."""
    day = day or today()
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    os.utime(path, (midnight, midnight), follow_symlinks=follow_symlinks)


def take_one(pool: Path, target: Path) -> bool | None:
    """Renames one entry of a pool made ahead (the envelope pool, the upload
    folder pool) to `target`: True when taken, False when the pool is empty,
    None when it was never made. Entries under a dot name are being made."""
    try:
        entries = os.scandir(pool)
    except FileNotFoundError:
        return None
    with entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                os.rename(entry.path, target)
            except FileNotFoundError:
                continue  # taken by another thread or process meanwhile
            coarsen_mtime(pool)  # the take stamped it
            return True
    return False


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HashingWriter:
    """Counts and hashes what passes through to the file (the envelope bytes)."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def writelines(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write(piece)


@dataclass
class Staged:
    item_id: str
    tmp_path: Path
    final_path: Path
    sha256: str = ""
    size: int = 0


@dataclass
class Batch:
    """Envelopes of one submission: all land in the store, or none does."""

    store: Store
    staged: list[Staged] = field(default_factory=list)
    placed: list[Staged] = field(default_factory=list)

    @contextmanager
    def new_envelope(self) -> Iterator[tuple[Staged, HashingWriter]]:
        item_id, tmp, fd = self.store.new_temporary()
        entry = Staged(item_id, tmp, self.store.path_for(item_id))
        self.staged.append(entry)
        with os.fdopen(fd, "wb", buffering=1024 * 1024) as f:
            writer = HashingWriter(f)
            yield entry, writer
            f.flush()
            os.fsync(f.fileno())
        entry.sha256, entry.size = writer.sha.hexdigest(), writer.size

    def adopt(self, entry: Staged) -> None:
        """An envelope written elsewhere (an upload sealed as it arrived)."""
        self.staged.append(entry)

    def place(self) -> None:
        """Renames every staged envelope into the store and makes it durable."""
        day = today()
        for entry in self.staged:
            coarsen_mtime(entry.tmp_path, day)
            os.rename(entry.tmp_path, entry.final_path)
            self.placed.append(entry)
        fsync_dir(self.store.root)
        coarsen_mtime(self.store.root, day)

    def discard(self) -> None:
        for entry in self.staged:
            for path in (entry.tmp_path, entry.final_path):
                if entry in self.placed or path == entry.tmp_path:
                    path.unlink(missing_ok=True)
        self.staged.clear()
        self.placed.clear()
        coarsen_mtime(self.store.root)  # the attempt must not date the folder either


class Store:
    def __init__(self, root: Path):
        self.root = root

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.remove_leftovers()

    def remove_leftovers(self, idle_seconds: int = LEFTOVER_AFTER) -> int:
        """A crash between write and rename leaves ciphertext under a temporary
        name; tidy it. Only files idle for an hour: every worker (and every
        server sharing the store) calls this at start, while others may be
        receiving."""
        removed, now = 0, time.time()
        for leftover in self.root.glob(f"{TMP_PREFIX}*"):
            try:
                if now - leftover.stat().st_mtime > idle_seconds:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def new_temporary(self) -> tuple[str, Path, int]:
        """A new envelope's id, its temporary path and a descriptor open for
        writing: a file from the pool when there is one (its birth time is a
        pass's, not this moment's), else a new one, and the log says so."""
        item_id = new_id()
        tmp = self.root / f"{TMP_PREFIX}{item_id}"
        if self.take_from_pool(tmp):
            return item_id, tmp, os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        _said_empty(self.pool)
        return item_id, tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def recycle(self, path: Path) -> None:
        """An envelope file that is not kept goes back to the pool, emptied:
        it was born in the pool, and the next envelope takes it. So only what
        is kept spends the pool, not every form's empty file field or a
        refused request's parts. Removed when it cannot go back."""
        try:
            os.truncate(path, 0)
            os.rename(path, self.pool / new_id())
            coarsen_mtime(self.pool)  # the rename stamped it
        except OSError:
            path.unlink(missing_ok=True)

    def pool_count(self) -> int | None:
        """How many files the pool holds; None when it is missing."""
        try:
            with os.scandir(self.pool) as entries:
                return sum(1 for _ in entries)
        except FileNotFoundError:
            return None

    @property
    def pool(self) -> Path:
        return self.root / POOL_DIR

    def take_from_pool(self, target: Path) -> bool:
        """Moves an empty pool file to `target`; False when the pool is empty."""
        return bool(take_one(self.pool, target))

    def fill_pool(self, size: int = POOL_SIZE) -> int:
        """Makes empty files in the pool until it holds `size`; returns how
        many. One process at a time (the hourly pass, each worker's keeper)."""
        self.pool.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.pool, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):  # a filesystem without flock: no lock
                fcntl.flock(fd, fcntl.LOCK_EX)
            have = sum(1 for _ in os.scandir(self.pool))
            for _ in range(size - have):
                os.close(os.open(self.pool / new_id(), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 0o600))
            os.fsync(fd)
        finally:
            os.close(fd)
        return max(0, size - have)

    def path_for(self, item_id: str) -> Path:
        if not (len(item_id) == 32 and all(c in "0123456789abcdef" for c in item_id)):
            raise ValueError("not an item id")
        return self.root / f"{item_id}{SUFFIX}"

    def batch(self) -> Batch:
        return Batch(self)

    def open(self, item_id: str) -> BinaryIO:
        return open(self.path_for(item_id), "rb")

    def delete(self, item_id: str) -> None:
        self.path_for(item_id).unlink(missing_ok=True)


_EMPTY_SAID = [0.0]


def _said_empty(pool: Path) -> None:
    """Logs, at most once a minute per process, that an envelope was born now."""
    now = time.monotonic()
    if now - _EMPTY_SAID[0] >= 60 or not _EMPTY_SAID[0]:
        _EMPTY_SAID[0] = now
        log.warning("the envelope pool (%s) is empty: new envelopes carry their time of "
                    "birth until it is refilled", pool)


class PoolKeeper:
    """Tops the pool up off the request path, at fixed times of the clock
    (each multiple of `every` seconds), never when a submission takes a file:
    a file it makes is born at one of those times. It looks at the pool then,
    and fills it only when it is low (below `low`), saying so in the log;
    the hourly pass fills it in any case. The store's envelope pool, or any
    other with pool_count() and fill_pool(size) (the upload folders')."""

    def __init__(self, store: Store, every: int = REFILL_SECONDS,
                 clock=time.time, *, what: str = "envelope", size: int = POOL_SIZE,
                 low: int = POOL_LOW):
        self.store, self.every, self.clock = store, every, clock
        self.what, self.size, self.low = what, size, low
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def until_next(self) -> float:
        now = self.clock()
        return (now // self.every + 1) * self.every - now

    def look(self) -> int:
        """One look at the pool: tops it up if low; returns how many were made."""
        left = self.store.pool_count()
        if left is not None and left >= self.low:
            return 0
        log.warning("the %s pool ran low (%s of %d left): refilling it", self.what,
                    "none" if left is None else left, self.size)
        return self.store.fill_pool(self.size)

    def _run(self) -> None:
        while not self._stop.wait(self.until_next()):
            try:
                self.look()
            except OSError as exc:
                log.error("the %s pool could not be refilled: %s", self.what,
                          type(exc).__name__)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="intake-pool",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
