"""Triage: the list with its filters, a submission with its items, and the
changes staff make (status, priority, tags, assignee, notes), each logged."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field

from intake.workstation import custody, images, search

STATUSES = ("new", "in review", "verified", "in case file", "closed", "rejected", "spam")
PRIORITIES = {0: "low", 1: "normal", 2: "high", 3: "urgent"}
SORTS = {
    "newest": "s.received_day DESC, s.submission_id",
    "oldest": "s.received_day ASC, s.submission_id",
    "priority": "s.priority DESC, s.received_day DESC, s.submission_id",
    "status": "s.status, s.received_day DESC, s.submission_id",
}


class TriageError(ValueError):
    """A change that cannot be made; the message says why."""


@dataclass
class Filters:
    status: str = ""
    priority: str = ""
    tag: str = ""
    assignee: str = ""
    language: str = ""
    day_from: str = ""
    day_to: str = ""
    has_files: str = ""      # "yes" / "no" / ""
    has_original: str = ""   # "yes" / "no" / ""
    flagged: str = ""        # "yes": a file carries a sanitizer flag; else a flag's text
    query: str = ""
    sort: str = "newest"

    @classmethod
    def from_args(cls, args) -> Filters:
        names = cls.__dataclass_fields__
        return cls(**{n: str(args.get(n, "") or "").strip() for n in names
                      if args.get(n) is not None})


@dataclass
class Row:
    submission_id: str
    witness_id: str
    received_day: str
    status: str
    priority: int
    assignee: str
    language: str
    tags: list[str] = field(default_factory=list)
    files: int = 0
    originals: int = 0
    flags: int = 0


_COUNTS = """
    (SELECT COUNT(*) FROM items i WHERE i.submission_id = s.submission_id
        AND i.kind = 'file') AS files,
    (SELECT COUNT(*) FROM items i WHERE i.submission_id = s.submission_id
        AND i.kind = 'original') AS originals,
    (SELECT COUNT(*) FROM items i WHERE i.submission_id = s.submission_id
        AND i.flags != '[]') AS flags
"""


def list_submissions(conn: sqlite3.Connection, f: Filters, limit: int = 500) -> list[Row]:
    where, params = [], []

    def add(clause: str, *values: object) -> None:
        where.append(clause)
        params.extend(values)

    if f.status:
        add("s.status = ?", f.status)
    if f.priority.isdigit():
        add("s.priority = ?", int(f.priority))
    if f.tag:
        add("EXISTS (SELECT 1 FROM tags t WHERE t.submission_id = s.submission_id"
            " AND t.tag = ?)", f.tag)
    if f.assignee:
        add("s.assignee = ?", f.assignee)
    if f.language:
        add("s.language = ?", f.language)
    if f.day_from:
        add("s.received_day >= ?", f.day_from)
    if f.day_to:
        add("s.received_day <= ?", f.day_to)
    for flag, kind in ((f.has_files, "file"), (f.has_original, "original")):
        if flag in ("yes", "no"):
            negate = "" if flag == "yes" else "NOT "
            add(f"{negate}EXISTS (SELECT 1 FROM items i WHERE "  # noqa: S608
                "i.submission_id = s.submission_id AND i.kind = ?)", kind)
    if f.flagged == "yes":
        add("EXISTS (SELECT 1 FROM items i WHERE i.submission_id = s.submission_id"
            " AND i.flags != '[]')")
    elif f.flagged:
        add("EXISTS (SELECT 1 FROM items i, json_each(i.flags) j WHERE"
            " i.submission_id = s.submission_id AND instr(lower(j.value), lower(?)) > 0)",
            f.flagged)
    if f.query:
        query = search.fts_query(f.query)
        if query is None:
            return []
        add("s.submission_id IN (SELECT submission_id FROM search WHERE search MATCH ?)", query)
    # Only constant SQL fragments are joined here; every value is a bound parameter.
    sql = (f"SELECT s.*, {_COUNTS} FROM submissions s"  # noqa: S608
           + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY {SORTS.get(f.sort, SORTS['newest'])} LIMIT ?")
    rows = conn.execute(sql, (*params, limit)).fetchall()
    tags = _tags(conn, [r["submission_id"] for r in rows])
    return [Row(r["submission_id"], r["witness_id"], r["received_day"], r["status"],
                r["priority"], r["assignee"], r["language"], tags.get(r["submission_id"], []),
                r["files"], r["originals"], r["flags"]) for r in rows]


def _tags(conn: sqlite3.Connection, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        marks = ",".join("?" * len(part))
        for r in conn.execute("SELECT submission_id, tag FROM tags WHERE "  # noqa: S608
                              f"submission_id IN ({marks}) ORDER BY tag", part):
            out.setdefault(r[0], []).append(r[1])
    return out


def choices(conn: sqlite3.Connection, column: str) -> list[str]:
    """Values seen in the vault, for the filter menus."""
    if column == "tag":
        return [r[0] for r in conn.execute("SELECT DISTINCT tag FROM tags ORDER BY tag")]
    if column not in ("assignee", "language"):
        raise ValueError(column)
    return [r[0] for r in conn.execute(
        f"SELECT DISTINCT {column} FROM submissions "  # noqa: S608 (a checked column name)
        f"WHERE {column} != '' ORDER BY 1")]


def submission(conn: sqlite3.Connection, submission_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM submissions WHERE submission_id = ?",
                       (submission_id,)).fetchone()
    if row is None:
        return None
    doc = dict(row)
    doc["choices"] = json.loads(row["choices"])
    doc["tags"] = _tags(conn, [submission_id]).get(submission_id, [])
    doc["items"] = [_item(r) for r in conn.execute(
        "SELECT * FROM items WHERE submission_id = ? ORDER BY kind DESC, item_id",
        (submission_id,))]
    doc["notes"] = [dict(r) for r in conn.execute(
        "SELECT * FROM notes WHERE submission_id = ? ORDER BY note_id", (submission_id,))]
    doc["cases"] = [r[0] for r in conn.execute(
        "SELECT case_name FROM case_submissions WHERE submission_id = ? ORDER BY 1",
        (submission_id,))]
    return doc


def _item(row: sqlite3.Row) -> dict:
    doc = dict(row)
    doc["metadata"] = json.loads(row["metadata"])
    doc["flags"] = json.loads(row["flags"])
    return doc


def item(conn: sqlite3.Connection, item_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
    return _item(row) if row else None


def original_of(conn: sqlite3.Connection, file_item: dict) -> dict | None:
    """The untouched original kept beside a working copy: the one whose sealed
    metadata names the copy (original_of), else one in the same submission whose
    bytes are what the copy was made from."""
    row = conn.execute("SELECT * FROM items WHERE submission_id = ? AND kind = 'original'"
                       " AND json_extract(metadata, '$.original_of') = ?",
                       (file_item["submission_id"], file_item["item_id"])).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM items WHERE submission_id = ? AND kind = 'original'"
                           " AND sha256_kept = ?", (file_item["submission_id"],
                                                    file_item["sha256_received"])).fetchone()
    return _item(row) if row else None


def exact_duplicates(conn: sqlite3.Connection, item_id: str) -> list[dict]:
    """Items in other submissions with the same bytes."""
    return [dict(r) for r in conn.execute(
        "SELECT o.item_id, o.submission_id FROM items i JOIN items o"
        " ON o.sha256_kept = i.sha256_kept AND o.submission_id != i.submission_id"
        " WHERE i.item_id = ? ORDER BY o.submission_id", (item_id,))]


def near_duplicates(conn: sqlite3.Connection, item_id: str) -> list[dict]:
    """Pictures in other submissions within NEAR_BITS of this one's perceptual hash."""
    me = conn.execute("SELECT phash, submission_id, sha256_kept FROM items WHERE item_id = ?",
                      (item_id,)).fetchone()
    if me is None or not me["phash"]:
        return []
    out = []
    for r in conn.execute("SELECT item_id, submission_id, phash, sha256_kept FROM items"
                          " WHERE phash IS NOT NULL AND submission_id != ?",
                          (me["submission_id"],)):
        d = images.distance(me["phash"], r["phash"])
        if d <= images.NEAR_BITS and r["sha256_kept"] != me["sha256_kept"]:
            out.append({"item_id": r["item_id"], "submission_id": r["submission_id"],
                        "distance": d})
    return sorted(out, key=lambda x: (x["distance"], x["submission_id"]))


def witness_submissions(conn: sqlite3.Connection, witness_id: str) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT submission_id, received_day, status FROM submissions WHERE witness_id = ?"
        " ORDER BY received_day, submission_id", (witness_id,))]


def _require(conn: sqlite3.Connection, submission_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM submissions WHERE submission_id = ?",
                       (submission_id,)).fetchone()
    if row is None:
        raise TriageError(f"no submission {submission_id} in this vault")
    return row


def update(conn: sqlite3.Connection, submission_id: str, *, status: str | None = None,
           priority: int | None = None, assignee: str | None = None,
           tags: list[str] | None = None, actor: str | None = None) -> None:
    """Applies the changes that differ from what is stored; logs each one. Call inside
    a transaction."""
    row = _require(conn, submission_id)
    subject = f"submission:{submission_id}"
    if status is not None and status != row["status"]:
        if status not in STATUSES:
            raise TriageError(f"unknown status {status!r}")
        conn.execute("UPDATE submissions SET status = ? WHERE submission_id = ?",
                     (status, submission_id))
        custody.append(conn, "status change", subject,
                       {"from": row["status"], "to": status}, actor)
    if priority is not None and priority != row["priority"]:
        if priority not in PRIORITIES:
            raise TriageError(f"unknown priority {priority!r}")
        conn.execute("UPDATE submissions SET priority = ? WHERE submission_id = ?",
                     (priority, submission_id))
        custody.append(conn, "priority change", subject,
                       {"from": row["priority"], "to": priority}, actor)
    if assignee is not None and assignee.strip() != row["assignee"]:
        conn.execute("UPDATE submissions SET assignee = ? WHERE submission_id = ?",
                     (assignee.strip(), submission_id))
        custody.append(conn, "assign", subject,
                       {"from": row["assignee"], "to": assignee.strip()}, actor)
    if tags is not None:
        new = sorted({t.strip() for t in tags if t.strip()})
        old = _tags(conn, [submission_id]).get(submission_id, [])
        if new != old:
            conn.execute("DELETE FROM tags WHERE submission_id = ?", (submission_id,))
            conn.executemany("INSERT INTO tags (submission_id, tag) VALUES (?, ?)",
                             [(submission_id, t) for t in new])
            custody.append(conn, "tags change", subject, {"from": old, "to": new}, actor)


def add_note(conn: sqlite3.Connection, submission_id: str, body: str,
             actor: str | None = None) -> None:
    _require(conn, submission_id)
    if not body.strip():
        raise TriageError("an empty note")
    author = actor or custody.default_actor()
    conn.execute("INSERT INTO notes (submission_id, at, author, body) VALUES (?, ?, ?, ?)",
                 (submission_id, custody.now(), author, body.strip()))
    custody.append(conn, "note", f"submission:{submission_id}",
                   {"sha256": hashlib.sha256(body.strip().encode()).hexdigest()}, actor)
