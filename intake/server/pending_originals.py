"""Uploads that could not be cleaned, held for the witness's word.

A file the sandbox could not clean is not kept unless the witness says so for
that file. Rather than ask them to send it again over Tor, its envelope (the
upload was sealed to the team's keys as it arrived, so the server cannot read
it) waits in `store/pending/`, outside the queue, for a short time. The
receipt offers, per file and without JavaScript, to send it as it is (after a
plain warning of what that reveals) or to drop it: a POST with the form's
CSRF token, honoured only for the ids this browser's session holds.

What is held expires: the session records, sealed, until when each choice
stands; the worker that holds a file removes it when that time comes; files
of a worker that died, or of an earlier day, go when a worker starts and at
every submission. Nothing held reaches the queue unless confirmed.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from intake.server.store import Staged, Store, coarsen_mtime, fsync_dir, today

FOLDER = "pending"
SUFFIX = ".pending"
HOLD_SECONDS = 3600
SESSION_KEY = "pending_originals"
_NAME = re.compile(r"^([0-9a-f]{32})\.(\d+)\.pending$")


@dataclass(frozen=True)
class Held:
    """What the witness's session keeps about one held file (sealed with it)."""

    item_id: str
    name: str
    submission_id: str
    size: int  # of the envelope
    sha256: str  # of the envelope
    until: float  # time.time() after which the choice no longer stands


class _Adopter:
    """Takes the envelope UploadSpool.seal() hands over, instead of a batch."""

    def __init__(self):
        self.entry: Staged | None = None

    def adopt(self, entry: Staged) -> None:
        self.entry = entry


class PendingOriginals:
    def __init__(self, store: Store, hold_seconds: int = HOLD_SECONDS):
        self.store = store
        self.folder = store.root / FOLDER
        self.hold_seconds = hold_seconds
        # Made at start, not with the first held file: its birth time is the
        # start's, never a submission's.
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._timers: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()

    # -- while receiving ------------------------------------------------------
    def seal(self, spool, metadata: dict) -> Staged:
        """Seals the upload's envelope under its temporary name; place() holds
        it once the submission is committed, or the caller removes it."""
        adopter = _Adopter()
        spool.seal(adopter, metadata)
        assert adopter.entry is not None
        return adopter.entry

    def place(self, entry: Staged, name: str, submission_id: str) -> Held:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        path = self.folder / f"{entry.item_id}.{os.getpid()}{SUFFIX}"
        coarsen_mtime(entry.tmp_path)
        os.rename(entry.tmp_path, path)
        self._coarsen()
        held = Held(entry.item_id, name, submission_id, entry.size, entry.sha256,
                    time.time() + self.hold_seconds)
        timer = threading.Timer(self.hold_seconds, self.drop, [entry.item_id])
        timer.daemon = True
        with self._lock:
            self._timers[entry.item_id] = timer
        timer.start()
        return held

    # -- the witness's choice -------------------------------------------------
    def _path(self, item_id: str) -> Path | None:
        for path in self.folder.glob(f"{item_id}.*{SUFFIX}"):
            if _NAME.match(path.name):
                return path
        return None

    def take(self, held: Held) -> Path | None:
        """Moves a held envelope to its place in the store; None when it has
        expired or was dropped. Atomic against the timer's removal."""
        source = self._path(held.item_id)
        if source is None or held.until < time.time():
            return None
        target = self.store.path_for(held.item_id)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return None
        self._forget(held.item_id)
        coarsen_mtime(target)
        fsync_dir(self.store.root)
        self._coarsen()
        return target

    def drop(self, item_id: str) -> None:
        path = self._path(item_id)
        if path is not None:
            path.unlink(missing_ok=True)
            self._coarsen()
        self._forget(item_id)

    def _coarsen(self) -> None:
        """Folder times stay at the day, like the store's."""
        for folder in (self.folder, self.store.root):
            with contextlib.suppress(FileNotFoundError):
                coarsen_mtime(folder)

    def _forget(self, item_id: str) -> None:
        with self._lock:
            timer = self._timers.pop(item_id, None)
        if timer is not None:
            timer.cancel()

    # -- housekeeping ---------------------------------------------------------
    def sweep(self) -> int:
        """Removes what no worker holds any more: files of a process that is
        gone (its timers with it), and files from an earlier day."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        for path in self.folder.iterdir():
            match = _NAME.match(path.name)
            try:
                stale = match is None or not _alive(int(match.group(2))) or \
                    path.stat().st_mtime < _midnight()
                if stale:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        if removed:
            self._coarsen()
        return removed

    def stop(self) -> None:
        """Drops everything this process holds (at its exit)."""
        with self._lock:
            ids = list(self._timers)
        for item_id in ids:
            self.drop(item_id)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _midnight() -> float:
    import datetime as dt

    day = today()
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def to_session(held: Held) -> dict:
    return asdict(held)


def from_session(data: dict) -> Held | None:
    with contextlib.suppress(TypeError, KeyError, ValueError):
        held = Held(**data)
        if re.fullmatch(r"[0-9a-f]{32}", held.item_id):
            return held
    return None
