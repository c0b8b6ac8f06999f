"""The custody log: every action on the vault, each entry hash-chained to the last.

    hash = SHA-256 over the UTF-8 of the JSON array
           [seq, at, actor, action, subject, detail, prev_hash]
           (compact separators "," and ":", non-ASCII kept as is)

`detail` is itself a JSON text, hashed as the string stored. The first
entry's prev_hash is 64 zeros. Editing, removing or reordering any entry
breaks the chain at that entry; verify() names the first one that breaks.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import sqlite3
from dataclasses import dataclass

GENESIS = "0" * 64


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, detail: str,
               prev_hash: str) -> str:
    doc = json.dumps([seq, at, actor, action, subject, detail, prev_hash],
                     ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def append(conn: sqlite3.Connection, action: str, subject: str, detail: dict | None = None,
           actor: str | None = None) -> str:
    """Adds one entry; call inside the transaction that does the action."""
    last = conn.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
    at = now()
    actor = " ".join((actor or default_actor()).split())
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = entry_hash(seq, at, actor, action, subject, text, prev)
    conn.execute("INSERT INTO custody (seq, at, actor, action, subject, detail, prev_hash, hash)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (seq, at, actor, action, subject, text, prev, digest))
    return digest


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head: str
    broken_seq: int | None = None
    reason: str = ""


def verify(conn: sqlite3.Connection) -> Verdict:
    prev, expected_seq, count = GENESIS, 1, 0
    for row in conn.execute("SELECT * FROM custody ORDER BY seq"):
        seq = row["seq"]
        if seq != expected_seq:
            return Verdict(False, count, prev, seq,
                           f"entry {seq} follows entry {expected_seq - 1}: entries are missing")
        if row["prev_hash"] != prev:
            return Verdict(False, count, prev, seq,
                           f"entry {seq} does not point to the entry before it")
        digest = entry_hash(seq, row["at"], row["actor"], row["action"], row["subject"],
                            row["detail"], row["prev_hash"])
        if digest != row["hash"]:
            return Verdict(False, count, prev, seq,
                           f"entry {seq} was changed after it was written")
        prev, expected_seq, count = row["hash"], seq + 1, count + 1
    return Verdict(True, count, prev)


def entries_for(conn: sqlite3.Connection, subjects: set[str]) -> list[dict]:
    rows = conn.execute("SELECT * FROM custody ORDER BY seq").fetchall()
    return [dict(r) for r in rows if r["subject"] in subjects]
