"""A witness's thread: every submission sent with one codename (the first and
the follow-ups) and every reply the team wrote to them, in order.

The server keeps only the day a submission arrived, so the order is by day,
and within a day by when the workstation learnt of each event, as the custody
log's order says: a submission when its first item was imported, a reply when
it was written. A reply thus always follows what it answers.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from intake.workstation.triage import family
from intake.workstation.vault import Vault

TESTIMONY_CHARS = 64 * 1024  # beyond this, the submission page shows the rest


@dataclass
class Event:
    kind: str                   # "submission" or "reply"
    day: str
    at: str                     # when the workstation imported or wrote it (UTC)
    submission_id: str          # the submission, or the one a reply answers
    seq: int = 0                # its custody log entry: import, or the reply
    status: str = ""
    testimony: str | None = None
    testimony_cut: bool = False
    files: list[dict] = field(default_factory=list)
    reply_id: str = ""
    exported_at: str | None = None
    team_copy: bool = False     # whether the team can re-read it


def _imported(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[int, str]]:
    """Each submission's first import entry in the custody log: (seq, at)."""
    marks = ",".join("?" * len(ids))
    return {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT i.submission_id, MIN(c.seq), MIN(c.at) FROM items i JOIN custody c"  # noqa: S608
        " ON c.subject = 'item:' || i.item_id AND c.action = 'import'"
        f" WHERE i.submission_id IN ({marks}) GROUP BY i.submission_id", ids)}


def _written(conn: sqlite3.Connection, witness_id: str) -> dict[str, int]:
    """Each reply's entry in the custody log: reply id -> seq."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT json_extract(c.detail, '$.reply_id'), c.seq FROM replies r JOIN custody c"
        " ON c.subject = 'submission:' || r.submission_id AND c.action = 'reply'"
        " AND json_extract(c.detail, '$.reply_id') = r.reply_id WHERE r.witness_id = ?",
        (witness_id,))}


def _read(vault: Vault, item_id: str) -> tuple[str, bool]:
    text = vault.read_item(item_id, TESTIMONY_CHARS * 4 + 1).decode(errors="replace")
    return text[:TESTIMONY_CHARS], len(text) > TESTIMONY_CHARS


def thread(vault: Vault, witness_id: str) -> list[Event]:
    """The witness's events in order; empty when the vault has no such witness."""
    conn = vault.conn
    subs = conn.execute("SELECT submission_id, received_day, status FROM submissions"
                        " WHERE witness_id = ?", (witness_id,)).fetchall()
    if not subs:
        return []
    ids = [s["submission_id"] for s in subs]
    imported = _imported(conn, ids)
    events = {s["submission_id"]: Event("submission", s["received_day"],
                                        imported.get(s["submission_id"], (0, ""))[1],
                                        s["submission_id"],
                                        imported.get(s["submission_id"], (0, ""))[0],
                                        status=s["status"]) for s in subs}
    marks = ",".join("?" * len(ids))
    for it in conn.execute(f"SELECT * FROM items WHERE submission_id IN ({marks})"  # noqa: S608
                           " ORDER BY kind DESC, item_id", ids):
        event = events[it["submission_id"]]
        if it["kind"] == "testimony":
            event.testimony, event.testimony_cut = _read(vault, it["item_id"])
        else:
            event.files.append({"item_id": it["item_id"], "kind": it["kind"],
                                "name": it["original_name"], "family": family(
                                    it["detected_type"]), "size": it["size"],
                                "flags": json.loads(it["flags"])})
    out = list(events.values())
    written = _written(conn, witness_id)
    for r in conn.execute("SELECT r.*, c.reply_id AS copy FROM replies r LEFT JOIN"
                          " reply_copies c ON c.reply_id = r.reply_id WHERE r.witness_id = ?",
                          (witness_id,)):
        out.append(Event("reply", r["created_at"][:10], r["created_at"], r["submission_id"],
                         written.get(r["reply_id"], 0), reply_id=r["reply_id"],
                         exported_at=r["exported_at"], team_copy=r["copy"] is not None))
    return sorted(out, key=lambda e: (e.day, e.seq, e.at, e.submission_id))
