"""The vault's SQLite database: one file beside the decrypted items.

Plain sqlite3 rather than the server's SQLAlchemy models: the vault is a
single-user local file and needs FTS5, which SQLAlchemy does not model.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# 1: the first vaults; 2: signed custody, submission_items, previews; 3: the
# lemma index (search.py), team_keys and reply_copies. Any older vault is
# brought up to 3 when it is opened.
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS witnesses (
    witness_id TEXT PRIMARY KEY,
    reply_public_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id TEXT PRIMARY KEY,
    witness_id TEXT NOT NULL,
    received_day TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    priority INTEGER NOT NULL DEFAULT 1,
    assignee TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    choices TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL REFERENCES submissions(submission_id),
    kind TEXT NOT NULL,
    original_name TEXT NOT NULL DEFAULT '',
    detected_type TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    sha256_received TEXT NOT NULL DEFAULT '',
    sha256_kept TEXT NOT NULL,
    sanitized INTEGER NOT NULL DEFAULT 0,
    flags TEXT NOT NULL DEFAULT '[]',
    envelope_sha256 TEXT NOT NULL,
    phash TEXT,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_submission ON items(submission_id);
CREATE INDEX IF NOT EXISTS items_by_kept ON items(sha256_kept);
CREATE TABLE IF NOT EXISTS deleted_items (
    item_id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS tags (
    submission_id TEXT NOT NULL REFERENCES submissions(submission_id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (submission_id, tag)
);
CREATE TABLE IF NOT EXISTS notes (
    note_id INTEGER PRIMARY KEY,
    submission_id TEXT NOT NULL REFERENCES submissions(submission_id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS case_submissions (
    case_name TEXT NOT NULL REFERENCES cases(name),
    submission_id TEXT NOT NULL REFERENCES submissions(submission_id) ON DELETE CASCADE,
    PRIMARY KEY (case_name, submission_id)
);
CREATE TABLE IF NOT EXISTS replies (
    reply_id TEXT PRIMARY KEY,
    witness_id TEXT NOT NULL REFERENCES witnesses(witness_id),
    submission_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    exported_at TEXT
);
CREATE TABLE IF NOT EXISTS custody (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    key_id TEXT,
    signature TEXT
);
CREATE TABLE IF NOT EXISTS custody_key (
    key_id TEXT PRIMARY KEY,
    verify_key TEXT NOT NULL,
    team_fingerprint TEXT NOT NULL,
    sealed_seed TEXT NOT NULL,
    binding TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS submission_items (
    item_id TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submission_items_by_submission ON submission_items(submission_id);
CREATE TABLE IF NOT EXISTS previews (
    item_id TEXT PRIMARY KEY REFERENCES items(item_id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    png BLOB,
    width INTEGER,
    height INTEGER
);
CREATE INDEX IF NOT EXISTS custody_by_subject ON custody(subject);
-- The desk's list: one index per sort order (triage.SORTS), the witness's
-- thread, and replies by witness.
CREATE INDEX IF NOT EXISTS submissions_by_day ON submissions(received_day, submission_id);
CREATE INDEX IF NOT EXISTS submissions_by_priority
    ON submissions(priority, received_day, submission_id);
CREATE INDEX IF NOT EXISTS submissions_by_status
    ON submissions(status, received_day, submission_id);
CREATE INDEX IF NOT EXISTS submissions_by_language
    ON submissions(language, received_day, submission_id);
CREATE INDEX IF NOT EXISTS submissions_by_witness ON submissions(witness_id, received_day);
CREATE INDEX IF NOT EXISTS items_by_submission_kind ON items(submission_id, kind);
CREATE INDEX IF NOT EXISTS replies_by_witness ON replies(witness_id, created_at);
-- The team's public keys, learnt on import: every reply is also sealed to them.
CREATE TABLE IF NOT EXISTS team_keys (
    fingerprint TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    name TEXT NOT NULL
);
-- The team's copy of each reply (VAULT/replies/<id>.team.env).
CREATE TABLE IF NOT EXISTS reply_copies (
    reply_id TEXT PRIMARY KEY REFERENCES replies(reply_id),
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    fingerprints TEXT NOT NULL
);
"""


class VaultConnection(sqlite3.Connection):
    """A connection that may carry the run's unlocked custody key (custody.append
    signs with it); without one, nothing can be written to the custody log."""

    signer = None


def _upgrade(conn: sqlite3.Connection) -> None:
    """Vaults before version 2: custody entries gain a key id and a signature
    (empty for the entries written before signing began), and each
    submission's items are the ones it has: a later bundle cannot add to it.
    Harmless on a vault that has them (one of version 2)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(custody)")}
    for column in ("key_id", "signature"):
        if column not in columns:
            conn.execute(f"ALTER TABLE custody ADD COLUMN {column} TEXT")
    conn.execute("INSERT OR IGNORE INTO submission_items (item_id, submission_id)"
                 " SELECT item_id, submission_id FROM items")


def connect(path: Path) -> VaultConnection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           factory=VaultConnection)
    conn.row_factory = sqlite3.Row
    # Durable commits; deleted rows overwritten rather than left in free pages.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA foreign_keys=ON")
    # CREATE ... IF NOT EXISTS: no write (nor lock) when all is there; a new
    # vault's tables in one transaction, one sync instead of one per table.
    conn.executescript(f"BEGIN;{SCHEMA}COMMIT;")
    # Opening an up-to-date vault writes nothing (the desk opens it per request).
    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        from intake.workstation import search  # the stemmers load only when needed

        _upgrade(conn)
        search.upgrade(conn)  # the full-text index, made or rebuilt with lemmas
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return conn
