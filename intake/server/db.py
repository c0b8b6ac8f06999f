"""The database: one engine per app, made from the config's URL.

SQLite is the embedded default; PostgreSQL works through the same code.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from intake.server.models import Base
from intake.server.store import coarsen_mtime


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # Durable commits, and deleted rows overwritten rather than left in free pages.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _coarsen_sqlite_times(db_path: Path) -> None:
    """SQLite's files would date the last write: set them back to the day."""
    for path in (db_path, db_path.with_name(db_path.name + "-wal"),
                 db_path.with_name(db_path.name + "-shm"), db_path.parent):
        with contextlib.suppress(FileNotFoundError):
            coarsen_mtime(path)


class Database:
    def __init__(self, url: str):
        self.url = url = normalize_url(url)
        kwargs: dict = {}
        if url.startswith("postgresql"):
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.engine.url.database:
                db_path = Path(self.engine.url.database)
                event.listen(self.engine, "checkin",
                             lambda *_: _coarsen_sqlite_times(db_path))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
