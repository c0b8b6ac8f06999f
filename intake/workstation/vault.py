"""The vault folder: the database, the decrypted items, the queued replies.

    VAULT/vault.db          SQLite: submissions, items, triage, custody log, index
    VAULT/items/<item id>   each item's decrypted bytes, named by id, never by
                            the name the witness's file had
    VAULT/replies/<id>.env  replies sealed to a witness, waiting for export
    VAULT/tmp/              partial files, never read back

Everything is created with owner-only permissions.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from intake.workstation import db


def default_vault_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "intake-vault"


class Vault:
    def __init__(self, root: Path):
        self.root = root
        for folder in (root, self.items_dir, self.replies_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conn = db.connect(root / "vault.db")

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
        if not item_id.isalnum():  # ids are hex; anything else is a forged path
            raise KeyError(item_id)
        return self.items_dir / item_id

    def reply_path(self, reply_id: str) -> Path:
        if not reply_id.isalnum():
            raise KeyError(reply_id)
        return self.replies_dir / f"{reply_id}.env"

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

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
