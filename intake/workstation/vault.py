"""The vault folder: the database, the decrypted items, the queued replies.

    VAULT/vault.db          SQLite: submissions, items, triage, custody log,
                            index, previews
    VAULT/items/<item id>   each item's decrypted bytes, named by id, never by
                            the name the witness's file had
    VAULT/replies/<id>.env  replies sealed to a witness, waiting for export
    VAULT/tmp/              partial files, never read back

Every folder is 0700 and every file 0600, whatever the umask and whatever
modes the folders had before; the folders are held open and every file is
reached through them (intake.workstation.folders), never through a link.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nacl.public import PrivateKey

from intake.workstation import custody, db
from intake.workstation.folders import FILE_MODE, Folder, FolderError

_ID = re.compile(r"[0-9a-f]{32}")
DB_FILES = ("vault.db", "vault.db-wal", "vault.db-shm")


def default_vault_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "intake-vault"


def valid_id(value: str) -> str:
    """An item, submission or reply id as the vault stores it: 32 lowercase hex
    digits. Anything else never becomes a file name (KeyError)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise KeyError(value)
    return value


class Vault:
    def __init__(self, root: Path, signer: custody.Signer | None = None):
        self.root = Path(os.path.abspath(root))
        self.folder = Folder.open(self.root)
        try:
            self.items = self.folder.sub("items")
            self.replies = self.folder.sub("replies")
            self.tmp = self.folder.sub("tmp")
            self._private_database()
            self.conn = db.connect(self.root / "vault.db")
        except BaseException:
            self.folder.close()
            raise
        self.conn.signer = signer
        for name in DB_FILES[1:]:  # made by SQLite just now, with the database's mode
            self._private_file(name, create=False)

    def _private_file(self, name: str, create: bool) -> None:
        """Checks that `name` is a regular file of mode 0600 (making it, empty,
        if `create`), without opening it for reading or writing: closing any
        descriptor of a database file would drop the locks SQLite holds on it
        in this process (POSIX locks belong to the process, not to the
        descriptor), and the desk opens the vault per request, in threads,
        while other connections are open. An O_PATH descriptor takes none
        of that part; only a file whose mode is wrong, never one of a
        connection of ours, is opened to be set right."""
        path_flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, path_flags, dir_fd=self.folder.fd)
        except FileNotFoundError:
            if not create:
                return
            fd = self._made(name)
        except OSError as exc:
            raise FolderError(f"{self.root / name} cannot be used safely "
                              f"({exc.strerror})") from exc
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise FolderError(f"{self.root / name} is not a regular file")
        if stat.S_IMODE(st.st_mode) != FILE_MODE:
            fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.folder.fd)
            try:
                os.fchmod(fd, FILE_MODE)
            finally:
                os.close(fd)

    def _made(self, name: str) -> int:
        """A new, empty file `name` of mode 0600, as an O_PATH descriptor."""
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         FILE_MODE, dir_fd=self.folder.fd)
            os.fchmod(fd, FILE_MODE)  # whatever the umask
            os.close(fd)
            return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.folder.fd)
        except OSError as exc:
            raise FolderError(f"{self.root / name} cannot be used safely "
                              f"({exc.strerror})") from exc

    def _private_database(self) -> None:
        """The database files exist with mode 0600 before SQLite opens them by
        name, and are none of them a link."""
        for name in DB_FILES:
            self._private_file(name, create=name == "vault.db")

    def unlock(self, team_key: PrivateKey, actor: str | None = None) -> custody.Signer:
        """Opens the custody key with the team key, for this run's log entries."""
        signer = custody.unlock(self.conn, team_key, actor)
        self.conn.signer = signer
        return signer

    @property
    def signer(self) -> custody.Signer | None:
        return self.conn.signer

    @property
    def items_dir(self) -> Path:
        return self.root / "items"

    @property
    def replies_dir(self) -> Path:
        return self.root / "replies"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def item_path(self, item_id: str) -> Path:
        """For messages and tests; files are opened with open_item()."""
        return self.items_dir / valid_id(item_id)

    def open_item(self, item_id: str) -> int:
        """A file descriptor on the item's bytes, reached through the open items folder."""
        return self.items.open_read(valid_id(item_id))

    def read_item(self, item_id: str, limit: int) -> bytes:
        """Up to `limit` bytes from the start of an item, through open_item()."""
        fd = self.open_item(item_id)
        try:
            return os.pread(fd, limit, 0)
        finally:
            os.close(fd)

    def reply_path(self, reply_id: str) -> Path:
        return self.replies_dir / f"{valid_id(reply_id)}.env"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
        for folder in (self.items, self.replies, self.tmp, self.folder):
            folder.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
