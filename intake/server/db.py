"""The database: one engine per app, made from the config's URL.

SQLite is the embedded default; PostgreSQL works through the same code.

- The schema is made and changed by Alembic migrations (intake/server/migrations),
  run under a lock, so servers starting together on a fresh database do not race.
- Named locks (`Database.lock`) serialize what must run once at a time across
  every server sharing the database: migrations, exports, retention.
  PostgreSQL: an advisory lock; SQLite: flock() on a file beside the database.
- SQLite: deleted rows are overwritten (secure_delete), and after a commit
  that deleted anything the WAL is checkpointed and truncated, so what was
  deleted does not linger in it either.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake.server import migrations
from intake.server.store import coarsen_mtime

DELETED = "intake.deleted"  # Session.info key: this transaction deleted rows


class LockBusy(Exception):
    """Another process holds the lock (when asked not to wait)."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # Durable commits, and deleted rows overwritten rather than left in free pages.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def sqlite_files(db_path: Path) -> list[Path]:
    return [db_path, db_path.with_name(db_path.name + "-wal"),
            db_path.with_name(db_path.name + "-shm")]


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(b"intake-lock:" + name.encode()).digest()[:8],
                          "big", signed=True)


class Database:
    def __init__(self, url: str):
        self.url = url = normalize_url(url)
        kwargs: dict = {}
        if url.startswith("postgresql"):
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        self.path: Path | None = None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.engine.url.database:
                # Its file times are set to the day by `intake store tidy`, not
                # here: utime() would stamp the inode's change time on every
                # request, reads included.
                self.path = Path(self.engine.url.database)
            event.listen(self.sessions, "do_orm_execute", _note_bulk_delete)
            event.listen(self.sessions, "after_flush", _note_flushed_delete)
            event.listen(self.sessions, "after_commit", self._after_commit)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    # -- schema -----------------------------------------------------------------
    def migrate(self) -> None:
        """Brings the schema to the newest migration; one server at a time.
        Alembic is loaded (a few MB in every worker) only when the database
        is not at the newest migration already."""
        if self.schema_version() == migrations.HEAD:
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location",
                               str(resources.files("intake.server.migrations")))
        with self.lock("migrate"), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def schema_version(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            return None  # no schema yet, or none made by migrations

    # -- locks ------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, wait: bool = True) -> Iterator[None]:
        """Held by one process at a time among all that share this database."""
        if self.is_sqlite:
            with self._file_lock(name, wait):
                yield
            return
        key = _lock_key(name)
        with self.engine.connect() as conn:
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            elif not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                raise LockBusy(name)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    @contextlib.contextmanager
    def _file_lock(self, name: str, wait: bool) -> Iterator[None]:
        if self.path is None:  # an in-memory database: one process only
            yield
            return
        lock_path = self.path.with_name(f".{self.path.name}.{name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:
                raise LockBusy(name) from exc
            yield
        finally:
            os.close(fd)  # releases the lock
            with contextlib.suppress(OSError):
                coarsen_mtime(lock_path)

    # -- SQLite housekeeping --------------------------------------------------------
    def _after_commit(self, session: Session) -> None:
        if session.info.pop(DELETED, False):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copies the WAL into the database and truncates it (SQLite only):
        frames holding deleted rows are gone from the disk's live files."""
        if not self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def dispose(self) -> None:
        self.engine.dispose()


def _note_bulk_delete(state):
    if not state.is_delete:
        return None
    result = state.invoke_statement()
    if result.rowcount:
        state.session.info[DELETED] = True
    return result


def _note_flushed_delete(session: Session, _context) -> None:
    if session.deleted:
        session.info[DELETED] = True
