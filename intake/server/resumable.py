"""Resumable uploads: the server's half of tus 1.0 (docs/witnesses.md).

With JavaScript on, a witness's files go up in pieces (PATCH requests), each
piece sealed as it arrives. A broken circuit or a closed laptop loses
nothing that arrived: the client asks for the offset (HEAD) and sends the
rest. Only when the form itself is sent are the pieces joined, in memory, into
the file's envelope for the team's keys (an UploadSpool), and the submission
goes the way of any other: cleaned, sealed, queued, all or nothing.

Each upload is a folder `data/uploads/<id>/`:

- `state.json`: the day it was last added to, its length and offset, the
  length of each piece, a binding to the witness's session, and the file's
  name sealed with the upload's key;
- `pieces`: each PATCH body (or what arrived of it before the connection
  broke) appended as its own secretstream (XChaCha20-Poly1305) of 64 KiB
  chunks, the last one tagged FINAL; the first chunk's additional data names
  the upload and the piece, so pieces cannot be swapped;
- `lock`, and `state.spare`, the file the next state is written into.

A file's birth time cannot be set back, and a folder's is set by mkdir: so
no upload makes a file or a folder. Each takes a whole folder, its files
already in it, from a pool (`data/uploads/.pool/`) made by the hourly pass
or by a worker's keeper at a fixed time of the clock, and only ever writes
into those files: pieces are appended to one file, and state.json is
replaced by state.spare, the old one becoming the next spare.

The upload's key and its binding are derived from the session's secret (the
form token's secret half, itself derived from the session cookie, which the
server never keeps). The server holds the key only while a request of that
session runs: a copy of the disk, even with the server's secrets, opens no
piece. An id is 32 lowercase hex digits (128 random bits); a path is made
only from an id that matched that pattern; an id bound to another session is
answered exactly as one that does not exist.

An upload not added to for `partial_upload_days` whole days (counted in days,
as everything on this server) is removed by `intake retention tidy`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from werkzeug.http import parse_cookie

from intake.format import secretstream as ss
from intake.server.store import coarsen_mtime, fsync_dir, new_id, take_one, today
from intake.server.web.sessions import COOKIE, csrf_for, issued

FOLDER = "uploads"
CHUNK = 64 * 1024
_ID = re.compile(r"^[0-9a-f]{32}$")
_PIECE_AD = b"intake-upload-piece/1:"
# A lock held this briefly (a HEAD reading the offset) is waited for, not refused.
LOCK_WAIT = 0.25
STATE_VERSION = 2  # 1: a file per piece, each born as it arrived
POOL_DIR = ".pool"  # folders made ahead by the hourly pass and the keepers
# Each upload takes one folder, a submission's envelopes two a file: half
# the store's pool is enough for the uploads that feed it.
POOL_SIZE = 512
POOL_LOW = POOL_SIZE * 3 // 4
# What a folder holds from the start: an upload never creates a file.
FOLDER_FILES = ("lock", "state.json", "state.spare", "pieces")
log = logging.getLogger("intake")


class UploadRefused(Exception):
    """A tus request that cannot be served; `status` is its HTTP answer."""

    status = 400
    reason = "bad"

    def __init__(self, reason: str | None = None):
        super().__init__(reason or self.reason)
        self.reason = reason or self.reason


class NotFound(UploadRefused):
    status, reason = 404, "not_found"


class Gone(UploadRefused):
    status, reason = 410, "expired"


class OffsetMismatch(UploadRefused):
    status, reason = 409, "offset"


class Locked(UploadRefused):
    status, reason = 423, "locked"


class TooLarge(UploadRefused):
    status, reason = 413, "too_large"


class NoRoom(UploadRefused):
    status, reason = 507, "no_room"


class Crowded(UploadRefused):
    """No folder to take from the pool, or too many uploads open at all."""

    status, reason = 503, "crowded"


def session_secret(form_key: bytes, cookie_header: str) -> bytes | None:
    """The session's secret, from its cookie: what binds and keys an upload."""
    token = parse_cookie(cookie_header or "").get(COOKIE)
    if not issued(form_key, token):  # a cookie the server did not make binds nothing
        return None
    return csrf_for(form_key, token).encode()


def _derive(secret: bytes, upload_id: str, person: bytes) -> bytes:
    return hashlib.blake2b(secret, key=upload_id.encode(), digest_size=32,
                           person=person).digest()


def _write_state(folder: int, data: bytes) -> None:
    """Replaces state.json whole, creating no file: the new state goes into
    state.spare, which replaces state.json, whose old inode (kept by a
    second name meanwhile) becomes the next spare. A crash at any step
    leaves the old state or the new one, and the next write finds its spare.
    `folder` is a handle on the upload's folder: no name is followed."""
    at = {"src_dir_fd": folder, "dst_dir_fd": folder}
    try:
        os.stat("state.spare", dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:  # cut short after the replace, the last time
        with contextlib.suppress(FileNotFoundError):
            os.rename("state.old", "state.spare", **at)
    fd = _open_in(folder, "state.spare", os.O_WRONLY | os.O_TRUNC, write=True)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink("state.old", dir_fd=folder)
    os.link("state.json", "state.old", **at, follow_symlinks=False)
    os.replace("state.spare", "state.json", **at)
    os.rename("state.old", "state.spare", **at)
    os.fsync(folder)  # the new state is kept before the piece it records is acknowledged
    day = today()
    _coarsen(folder, "state.json", day)
    _coarsen(folder, "state.spare", day)
    _coarsen(folder, None, day)


# Read or written only through a handle on the upload's folder, never
# through a link: a folder or file replaced by a link, a hard link to a file
# elsewhere, a FIFO (which would hold the thread) are refused. Reading does
# not stamp the access time with the time of day where the kernel allows it.
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_NOATIME = getattr(os, "O_NOATIME", 0)
MAX_STATE = 1024 * 1024  # bytes; a state.json larger than this is not ours
# Pieces one upload may have: the script sends 1 MiB pieces (2,048 for the
# largest file), a broken one adds one more. Each piece rewrites the state
# and every creation reads all states: a flood of tiny pieces must not make
# either cost without bound (10,000 entries keep a state near 100 KB).
MAX_PIECES = 10_000
MAX_LENGTH = 2**63 - 1  # what Upload-Length's 19 digits allow


def _open_folder(root: Path, name: str) -> int:
    """A handle on root/name; OSError if it is a link or not a folder."""
    return os.open(root / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _open_in(folder: int, name: str, flags: int, write: bool = False) -> int:
    """A regular file of the folder, not followed through a link; a file
    written must have no other name (a hard link to a file elsewhere)."""
    try:
        fd = os.open(name, flags | _NOFOLLOW | (0 if write else _NOATIME), dir_fd=folder)
    except PermissionError:  # O_NOATIME: only for the file's owner
        fd = os.open(name, flags | _NOFOLLOW, dir_fd=folder)
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or (write and found.st_nlink != 1):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a file of this upload", name)
    os.set_blocking(fd, True)
    return fd


def _read_in(folder: int, name: str, limit: int = MAX_STATE) -> bytes:
    with os.fdopen(_open_in(folder, name, os.O_RDONLY), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} is too large")
    return data


def _coarsen(folder: int, name: str | None, day: dt.date) -> None:
    """coarsen_mtime through the folder's handle (the folder itself for None)."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    if name is None:
        os.utime(folder, (midnight, midnight))
    else:
        os.utime(name, (midnight, midnight), dir_fd=folder, follow_symlinks=False)


def _checked(state: object) -> dict:
    """The state as this version writes it, else ValueError: a state.json that
    is damaged, or was written by anything else, is refused, never trusted
    (an offset past the length, a negative piece, a day out of range)."""
    if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
        raise ValueError("not an upload's state")
    day, length, pieces = state.get("day"), state.get("length"), state.get("pieces")
    if not (isinstance(day, str) and type(length) is int and isinstance(pieces, list)
            and isinstance(state.get("binding"), str) and isinstance(state.get("meta"), str)):
        raise ValueError("not an upload's state")
    dt.date.fromisoformat(day)
    if not 0 <= length <= MAX_LENGTH or \
            len(pieces) > MAX_PIECES or \
            any(type(p) is not int or p <= 0 for p in pieces) or sum(pieces) > length:
        raise ValueError("not an upload's state")
    return state


def _load(folder: int) -> dict:
    """The upload's state, checked; OSError or ValueError when it is not one."""
    return _checked(json.loads(_read_in(folder, "state.json")))


def _write_all(fd: int, data: bytes) -> None:
    with memoryview(data) as view:
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:])


def sealed_size(size: int) -> int:
    """Bytes a piece of `size` takes in `pieces`: its header, then a MESSAGE
    chunk for each whole 64 KiB and a FINAL one for the rest (maybe none)."""
    return ss.HEADER_BYTES + size + (size // CHUNK + 1) * ss.ABYTES


def _make_folder(path: Path) -> None:
    path.mkdir(mode=0o700)
    day = today()
    for name in FOLDER_FILES:
        os.close(os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        coarsen_mtime(path / name, day)  # the lock is never written: only the day
    coarsen_mtime(path, day)


def _fresh(folder: int) -> bool:
    """Whether a folder taken from the pool is as a fill made it: its four
    files, empty, each a file of its own (not a link, not another's name)."""
    for name in FOLDER_FILES:
        try:
            found = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except OSError:
            return False
        if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1 or found.st_size:
            return False
    return True


def _intact(folder: int) -> bool:
    """Whether an upload's files are files of its own: none a link, a FIFO,
    or (those written in place) a second name of a file elsewhere. state.json
    shares its inode with state.old for a moment while it is replaced."""
    for name, needed, single in (("lock", True, False), ("state.json", True, False),
                                 ("pieces", True, True), ("state.spare", False, True),
                                 ("state.old", False, False)):
        try:
            found = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            if needed:
                return False
            continue
        if not stat.S_ISREG(found.st_mode) or (single and found.st_nlink != 1):
            return False
    return True


def _remove_entry(path: Path) -> None:
    """Removes a folder, or a link or file where a folder should be, never
    following a link (rmtree does not)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _try_lock(folder: int) -> int | None:
    """The upload's lock taken without waiting; None when another holds it.
    -1 when the folder has no lock file (a creation cut short)."""
    try:
        fd = _open_in(folder, "lock", os.O_RDWR)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class Partials:
    """The uploads still arriving, under data/uploads."""

    def __init__(self, root: Path, keep_days: int, max_length: int, reserve: int = 0,
                 day: Callable[[], dt.date] = today):
        self.root = root
        self.day = day  # today (UTC); tests move it forward
        self.keep_days = keep_days
        self.max_length = max_length
        self.reserve = reserve  # free space the disk keeps (Config.disk_reserve)

    def init(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def expires(self, day: dt.date) -> dt.datetime:
        """The midnight (UTC) from which an upload last added to on `day` is gone."""
        end = day + dt.timedelta(days=self.keep_days + 1)
        return dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC)

    def _expired(self, state: dict) -> bool:
        try:
            return self.day() >= self.expires(dt.date.fromisoformat(state["day"])).date()
        except OverflowError as exc:  # a day no upload was added to
            raise ValueError("not an upload's day") from exc

    def _state_at(self, name: str) -> dict | None:
        """The checked state of the upload `name`; None when it is not one."""
        try:
            folder = _open_folder(self.root, name)
        except OSError:
            return None
        try:
            state = _load(folder)
            self._expired(state)
            return state
        except (OSError, ValueError):
            return None
        finally:
            os.close(folder)

    @contextmanager
    def creating(self) -> Iterator[None]:
        """One creation at a time across threads and processes (a flock on
        the folder), so that the caps counted before it hold under a burst."""
        self.init()
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):  # a filesystem without flock: no lock
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def create(self, secret: bytes, length: int, name: str) -> Partial:
        """A new upload, in a folder taken from the pool; Crowded when the
        pool is empty (refused rather than born with the time it arrived)."""
        if length < 0:
            raise UploadRefused()
        if length > self.max_length:
            raise TooLarge()
        self.init()
        upload_id = secrets.token_hex(16)
        folder_path = self.root / upload_id
        while True:
            if not self.take_from_pool(folder_path):
                raise Crowded()
            try:
                folder = _open_folder(self.root, upload_id)
            except OSError:
                folder = -1
            if folder >= 0 and _fresh(folder):
                break
            if folder >= 0:
                os.close(folder)
            log.error("a folder of the upload pool was not as the pool makes them: "
                      "removed")
            _remove_entry(folder_path)
        try:
            # Held while the first state is written: the hourly pass does not
            # take the folder for a creation cut short (its times are the pool's).
            lock = _try_lock(folder)
            key = _derive(secret, upload_id, b"intake-upl-key")
            state = {"v": STATE_VERSION, "day": self.day().isoformat(), "length": length,
                     "pieces": [],
                     "binding": _derive(secret, upload_id, b"intake-upl-bind").hex(),
                     "meta": base64.b64encode(bytes(SecretBox(key).encrypt(
                         json.dumps({"name": name}).encode()))).decode()}
            try:
                _write_state(folder, json.dumps(state).encode())
            finally:
                if lock is not None and lock >= 0:
                    os.close(lock)
        finally:
            os.close(folder)
        fsync_dir(self.root)
        coarsen_mtime(self.root)
        return Partial(upload_id, folder_path, key, state, self)

    # -- the pool of folders -----------------------------------------------------
    @property
    def pool(self) -> Path:
        return self.root / POOL_DIR

    def pool_count(self) -> int | None:
        """How many folders the pool holds; None when it is missing."""
        try:
            with os.scandir(self.pool) as entries:
                return sum(1 for e in entries if not e.name.startswith("."))
        except FileNotFoundError:
            return None

    def take_from_pool(self, target: Path) -> bool:
        """Moves a pool folder to `target`; False when the pool is empty. A
        pool that was never made (before the first pass) is said in the log,
        and the folder made now, as an envelope is (intake.server.store)."""
        taken = take_one(self.pool, target)
        if taken is None:
            _say("missing", "the upload folder pool (%s) is missing: new uploads carry their "
                 "time of birth until it is made", self.pool)
            _make_folder(target)
            return True
        if not taken:
            _say("empty", "the upload folder pool (%s) is empty: new uploads are refused "
                 "until it is refilled", self.pool)
        return taken

    def fill_pool(self, size: int = POOL_SIZE) -> int:
        """Makes folders in the pool until it holds `size`; returns how many.
        Each is made under a dot name and renamed in whole. One process at a
        time (the hourly pass, each worker's keeper)."""
        self.init()
        self.pool.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.pool, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):  # a filesystem without flock: no lock
                fcntl.flock(fd, fcntl.LOCK_EX)
            have = 0
            for entry in list(os.scandir(self.pool)):
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    _remove_entry(Path(entry.path))  # a fill cut short, or not a folder
                else:
                    have += 1
            for _ in range(size - have):
                making = self.pool / f".{new_id()}"
                _make_folder(making)
                os.rename(making, self.pool / new_id())
            os.fsync(fd)
        finally:
            os.close(fd)
        return max(0, size - have)

    def open(self, secret: bytes | None, upload_id: str) -> Partial:
        """The upload `upload_id` of this session; NotFound for any id that is
        malformed, unknown or another session's, or whose state is not an
        upload's; Gone once expired."""
        if secret is None or not isinstance(upload_id, str) or not _ID.match(upload_id):
            raise NotFound()
        try:
            folder = _open_folder(self.root, upload_id)
        except OSError as exc:
            raise NotFound() from exc
        try:
            state = _load(folder)
            expired = self._expired(state)
        except (OSError, ValueError) as exc:
            raise NotFound() from exc
        finally:
            os.close(folder)
        binding = _derive(secret, upload_id, b"intake-upl-bind").hex()
        if not hmac.compare_digest(state["binding"], binding):
            raise NotFound()
        if expired:
            raise Gone()
        return Partial(upload_id, self.root / upload_id,
                       _derive(secret, upload_id, b"intake-upl-key"), state, self)

    def count(self, secret: bytes) -> tuple[int, int]:
        """How many uploads, not yet expired, this session has open, and how
        many all sessions together have."""
        if not self.root.is_dir():
            return 0, 0
        mine = everyone = 0
        for name in os.listdir(self.root):
            if not _ID.match(name):
                continue
            state = self._state_at(name)
            if state is None or self._expired(state):
                continue
            everyone += 1
            if hmac.compare_digest(state["binding"],
                                   _derive(secret, name, b"intake-upl-bind").hex()):
                mine += 1
        return mine, everyone

    def held(self) -> int:
        """Bytes that uploads not yet part of a submission hold. (What they
        declare is not counted: declaring costs nothing, so a flood of
        declarations would refuse every witness the day's quota.)"""
        return sum(sum(state["pieces"]) for state in self._states())

    def _states(self) -> Iterator[dict]:
        if not self.root.is_dir():
            return
        for name in os.listdir(self.root):
            if _ID.match(name) and (state := self._state_at(name)) is not None:
                yield state

    def remove_expired(self) -> int:
        """Removes every upload past its time (and anything that is not an
        upload: a creation cut short, a link). An upload is removed under its
        lock, and left while a request holds it. Returns how many were removed."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for name in os.listdir(self.root):
            if name == POOL_DIR:
                continue
            path = self.root / name
            try:
                folder = _open_folder(self.root, name)
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError:
                _remove_entry(path)  # a link or a file: never followed
                removed += 1
                continue
            lock = None
            try:
                if self._keep(name, folder):
                    continue
                lock = _try_lock(folder)
                if lock is None:
                    continue  # a piece arriving at midnight: the next pass
                if self._keep(name, folder):  # added to just before the lock
                    continue
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            finally:
                if lock is not None and lock >= 0:
                    os.close(lock)  # after the removal: no request wrote meanwhile
                os.close(folder)
        if removed:
            coarsen_mtime(self.root)
        return removed

    def _keep(self, name: str, folder: int) -> bool:
        try:
            return not self._expired(_load(folder))
        except (OSError, ValueError):
            # Not an upload's state: being created this very moment, or not one.
            return bool(_ID.match(name)) and _young(folder, self.day())


_SAID: dict[str, float] = {}


def _say(what: str, message: str, *args: object) -> None:
    """Logs a warning at most once a minute per process: a flood says it once."""
    now = time.monotonic()
    if what not in _SAID or now - _SAID[what] >= 60:
        _SAID[what] = now
        log.warning(message, *args)


def _young(folder: int, day: dt.date) -> bool:
    return dt.datetime.fromtimestamp(os.fstat(folder).st_mtime, dt.UTC).date() >= day


class Partial:
    """One upload of one session; its key is held only by this object, and
    while it is locked, a handle on its folder through which all is done."""

    def __init__(self, upload_id: str, folder: Path, key: bytes, state: dict,
                 partials: Partials):
        self.id, self.folder, self._key, self.state = upload_id, folder, key, state
        self.partials = partials
        self._lock_fd = -1
        self._dir = -1

    @property
    def length(self) -> int:
        return self.state["length"]

    @property
    def offset(self) -> int:
        return sum(self.state["pieces"])

    @property
    def expires(self) -> dt.datetime:
        return self.partials.expires(dt.date.fromisoformat(self.state["day"]))

    @property
    def name(self) -> str:
        try:
            meta = json.loads(SecretBox(self._key).decrypt(base64.b64decode(self.state["meta"])))
            return str(meta["name"])
        except (CryptoError, ValueError, TypeError, KeyError) as exc:
            raise NotFound() from exc

    # -- one request at a time ---------------------------------------------------
    def lock(self) -> None:
        """Taken for a PATCH, a DELETE or the form that joins it, and for a
        moment by a HEAD; a second request meanwhile is told Locked (423),
        not queued. A lock held for a moment (a HEAD reading the offset) is
        waited for, up to LOCK_WAIT: a PATCH that arrives just then is not
        refused for it."""
        try:
            folder = _open_folder(self.partials.root, self.id)
        except OSError as exc:
            raise NotFound() from exc  # removed meanwhile
        try:
            fd = _open_in(folder, "lock", os.O_RDWR)
        except OSError as exc:
            os.close(folder)
            raise NotFound() from exc
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or \
                        time.monotonic() >= deadline:
                    os.close(fd)
                    os.close(folder)
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise Locked() from exc
                    raise
                time.sleep(0.01)
        self._lock_fd, self._dir = fd, folder
        # What another request wrote before the lock was taken.
        try:
            state = _load(folder)
            if not hmac.compare_digest(state["binding"], self.state["binding"]):
                raise ValueError("another upload's state")
        except (OSError, ValueError) as exc:
            self.unlock()
            raise Gone() from exc
        if not _intact(folder):
            self.unlock()
            log.error("an upload's files were replaced (a link, or not a file): refused")
            raise NotFound()
        self.state = state

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            fd, self._lock_fd = self._lock_fd, -1
            os.close(fd)
        if self._dir >= 0:
            folder, self._dir = self._dir, -1
            os.close(folder)

    # -- adding and reading ------------------------------------------------------
    def append(self, offset: int, length: int) -> PieceWriter:
        """A writer for `length` bytes at `offset` (which must be the upload's
        offset); the caller holds the lock."""
        if offset != self.offset:
            raise OffsetMismatch()
        if len(self.state["pieces"]) >= MAX_PIECES:
            raise UploadRefused()
        if length > self.length - offset:
            raise TooLarge()
        if shutil.disk_usage(self.folder).free - length < self.partials.reserve:
            raise NoRoom()
        return PieceWriter(self, len(self.state["pieces"]))

    @property
    def pieces_path(self) -> Path:
        return self.folder / "pieces"

    @property
    def sealed_end(self) -> int:
        """Where the next piece begins in `pieces`."""
        return sum(sealed_size(size) for size in self.state["pieces"])

    def _ad(self, index: int) -> bytes:
        return _PIECE_AD + self.id.encode() + b":" + str(index).encode()

    def _record(self, size: int) -> None:
        self.state["pieces"].append(size)
        self.state["day"] = self.partials.day().isoformat()
        _write_state(self._dir, json.dumps(self.state).encode())

    def content(self) -> Iterator[bytes]:
        """The upload's bytes, piece by piece, each chunk authenticated. Each
        chunk's length follows from the piece's: what lies past the last
        piece recorded (one cut short by a crash) is never read. The caller
        holds the lock."""
        with os.fdopen(_open_in(self._dir, "pieces", os.O_RDONLY), "rb") as f:
            for index, size in enumerate(self.state["pieces"]):
                puller = ss.Puller(self._key, f.read(ss.HEADER_BYTES))
                ad: bytes | None = self._ad(index)
                left = size
                while True:
                    want = min(left, CHUNK)
                    try:
                        plain, final = puller.pull(f.read(want + ss.ABYTES), ad=ad)
                    except ss.StreamError as exc:
                        raise OSError("a piece of an upload is damaged") from exc
                    if len(plain) != want or final != (want < CHUNK):
                        raise OSError("a piece of an upload is damaged")
                    ad = None
                    left -= want
                    if plain:
                        yield plain
                    if final:
                        break

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # never follows a link
        coarsen_mtime(self.partials.root)


class PieceWriter:
    """One PATCH body sealed as it arrives. done() keeps what arrived, the
    whole body or the part before the connection broke: that is what makes
    a resumed upload send only the rest. Made, done and dropped while the
    upload is locked."""

    def __init__(self, partial: Partial, index: int):
        self.partial, self.index = partial, index
        self.start = partial.sealed_end
        # Appended after the pieces recorded, over anything a crash left there;
        # no O_CREAT: the file came with the folder.
        self._fd = _open_in(partial._dir, "pieces", os.O_WRONLY, write=True)
        try:
            os.ftruncate(self._fd, self.start)
            os.lseek(self._fd, self.start, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise
        self._pusher = ss.Pusher(partial._key)
        self._ad: bytes | None = partial._ad(index)
        self._buf = bytearray()
        self.size = 0
        self._write(self._pusher.header)

    def _write(self, data: bytes) -> None:
        _write_all(self._fd, data)

    def write(self, data: bytes) -> None:
        if self.partial.offset + self.size + len(data) > self.partial.length:
            raise TooLarge()
        self._buf += data
        self.size += len(data)
        out = bytearray()
        while len(self._buf) >= CHUNK:
            out += self._pusher.push(bytes(self._buf[:CHUNK]), ad=self._ad)
            self._ad = None
            del self._buf[:CHUNK]
        if out:
            self._write(out)

    def done(self) -> int:
        """Closes the piece with what arrived and records it; the new offset."""
        try:
            if self.size:
                self._write(self._pusher.push(bytes(self._buf), final=True, ad=self._ad))
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._buf.clear()
        if self.size:
            self.partial._record(self.size)
            _coarsen(self.partial._dir, "pieces", today())
        else:
            self.drop()
        return self.partial.offset

    def drop(self) -> None:
        """Cuts `pieces` back to where this piece began: it is not kept
        (unless the state on disk records it after all, its write having
        failed only after the new state was in place)."""
        folder = self.partial._dir
        with contextlib.suppress(OSError, ValueError):
            if len(_load(folder)["pieces"]) > self.index:
                return
        with contextlib.suppress(OSError):
            fd = _open_in(folder, "pieces", os.O_WRONLY, write=True)
            try:
                os.ftruncate(fd, self.start)
            finally:
                os.close(fd)
            _coarsen(folder, "pieces", today())

    def discard(self) -> None:
        os.close(self._fd)
        self.drop()
