"""Triage: the list with its filters, pages and search, a submission with its
items, and the changes staff make (status, priority, tags, assignee, notes),
each logged."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from intake.workstation import custody, images, search
from intake.workstation.refusals import N_, Refusal
from intake.workstation.safe_text import has_controls, is_hidden

STATUSES = ("new", "in review", "verified", "in case file", "closed", "rejected", "spam")
PRIORITIES = {0: "low", 1: "normal", 2: "high", 3: "urgent"}


def small_number(raw: str, digits: int = 6) -> int | None:
    """A whole number written in ASCII digits, at most `digits` of them; None
    for anything else (str.isdigit() also takes "²", which int() refuses)."""
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= digits:
        return int(raw)
    return None
# Each ends in the primary key, so that every order is total and pages never
# overlap; db.py has an index for each.
SORTS = {
    "newest": "s.received_day DESC, s.submission_id DESC",
    "oldest": "s.received_day ASC, s.submission_id ASC",
    "priority": "s.priority DESC, s.received_day DESC, s.submission_id DESC",
    "status": "s.status, s.received_day DESC, s.submission_id DESC",
    "relevance": "m.rank, s.received_day DESC, s.submission_id DESC",
}
PER_PAGE = 50
SNIPPET_CHARS = 240
# What staff may type (docs/workstation.md, "The triage desk"): enough for any
# real label or note, small enough that a paste by mistake is refused whole.
TAG_CHARS = 64
TAGS_MAX = 50
ASSIGNEE_CHARS = 100
NOTE_CHARS = 20_000


class TriageError(Refusal, ValueError):
    """A change that cannot be made; the message says why, in the reader's
    language on the desk."""


class Stale(TriageError):
    """The triage state changed after the form was made (another tab or
    window saved meanwhile): saving the form would undo that, so nothing is."""


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
    witness: str = ""        # one witness's thread
    query: str = ""
    sort: str = "newest"

    @classmethod
    def from_args(cls, args) -> Filters:
        names = cls.__dataclass_fields__
        made = cls(**{n: str(args.get(n, "") or "").strip()[:200] for n in names
                      if args.get(n) is not None})
        if made.sort not in SORTS or (made.sort == "relevance" and not made.query):
            made.sort = "newest"
        return made

    def args(self, **changes: str) -> dict[str, str]:
        """The filters as query arguments (the empty ones left out), for links
        that keep them: the next page, another sort."""
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        return {k: v for k, v in values.items() if v and not (k == "sort" and v == "newest")}


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
    flags: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)   # family -> how many files
    thread_size: int = 1       # submissions sent with this witness's codename
    thread_position: int = 1   # this one's place among them, oldest first
    replies: int = 0           # replies written to this witness
    snippet: search.Snippet | None = None
    opening: str = ""          # the testimony's first characters, when not searching


@dataclass
class Page:
    rows: list[Row]
    total: int
    number: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def family(detected_type: str) -> str:
    """A file's kind at a glance: image, video, audio, document, text or other."""
    mime = detected_type.split(";")[0].strip().lower()
    major = mime.split("/")[0]
    if major in ("image", "video", "audio", "text"):
        return major
    if mime == "application/pdf" or "officedocument" in mime or "opendocument" in mime \
            or mime in ("application/msword", "application/rtf"):
        return "document"
    return "other"


def _where(f: Filters) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []

    def add(clause: str, *values: object) -> None:
        where.append(clause)
        params.extend(values)

    if f.status:
        add("s.status = ?", f.status)
    if (priority := small_number(f.priority, 2)) is not None:
        add("s.priority = ?", priority)
    if f.tag:
        add("EXISTS (SELECT 1 FROM tags t WHERE t.submission_id = s.submission_id"
            " AND t.tag = ?)", f.tag)
    if f.assignee:
        add("s.assignee = ?", f.assignee)
    if f.language:
        add("s.language = ?", f.language)
    if f.witness:
        add("s.witness_id = ?", f.witness)
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
    return where, params


def list_submissions(conn: sqlite3.Connection, f: Filters, page: int = 1,
                     per_page: int = PER_PAGE,
                     opening: Callable[[str], str] | None = None) -> Page:
    """One page of the submissions that pass the filters, in the chosen order, with
    how many pass in all. `opening(item_id)` gives a testimony's first
    characters for rows shown without a search."""
    where, params = _where(f)
    source = "submissions s"
    query = search.fts_query(f.query) if f.query else None
    if f.query:
        if query is None:
            return Page([], 0, 1, per_page)
        # Each submission once, with its best-ranked item's rank (bm25).
        source = ("submissions s JOIN (SELECT submission_id, MIN(rank) AS rank FROM search"
                  " WHERE search MATCH ? GROUP BY submission_id) m"
                  " ON m.submission_id = s.submission_id")
        params = [query, *params]
    # Only constant SQL fragments are joined here; every value is a bound parameter.
    condition = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM {source}{condition}",  # noqa: S608
                         params).fetchone()[0]
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    order = SORTS[f.sort] if f.sort in SORTS and (query or f.sort != "relevance") \
        else SORTS["newest"]
    rows = conn.execute(f"SELECT s.* FROM {source}{condition} ORDER BY {order}"  # noqa: S608
                        " LIMIT ? OFFSET ?", (*params, per_page, (page - 1) * per_page)
                        ).fetchall()
    out = [Row(r["submission_id"], r["witness_id"], r["received_day"], r["status"],
               r["priority"], r["assignee"], r["language"]) for r in rows]
    _describe(conn, out, query, opening)
    return Page(out, total, page, per_page)


def _in(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


def _describe(conn: sqlite3.Connection, rows: list[Row], query: str | None,
              opening: Callable[[str], str] | None) -> None:
    """Fills in what a row shows beyond its own columns, a few queries per page."""
    if not rows:
        return
    by_id = {r.submission_id: r for r in rows}
    ids = list(by_id)
    tags = _tags(conn, ids)
    testimonies = {}
    for r in conn.execute(f"SELECT submission_id, item_id, kind, detected_type, flags"  # noqa: S608
                          f" FROM items WHERE submission_id IN ({_in(ids)})", ids):
        row = by_id[r["submission_id"]]
        if r["kind"] == "testimony":
            testimonies[r["submission_id"]] = r["item_id"]
        elif r["kind"] == "original":
            row.originals += 1
        else:
            row.files += 1
            kind = family(r["detected_type"])
            row.kinds[kind] = row.kinds.get(kind, 0) + 1
        for flag in json.loads(r["flags"]):
            if flag not in row.flags:
                row.flags.append(flag)
    witnesses = sorted({r.witness_id for r in rows})
    threads: dict[str, list[str]] = {}
    for r in conn.execute(f"SELECT witness_id, submission_id FROM submissions"  # noqa: S608
                          f" WHERE witness_id IN ({_in(witnesses)})"
                          " ORDER BY received_day, rowid", witnesses):
        threads.setdefault(r[0], []).append(r[1])
    replies = dict(conn.execute(f"SELECT witness_id, COUNT(*) FROM replies"  # noqa: S608
                                f" WHERE witness_id IN ({_in(witnesses)}) GROUP BY 1",
                                witnesses).fetchall())
    found = search.snippets(conn, query, ids) if query else {}
    for row in rows:
        row.tags = tags.get(row.submission_id, [])
        thread = threads.get(row.witness_id, [row.submission_id])
        row.thread_size = len(thread)
        row.thread_position = thread.index(row.submission_id) + 1
        row.replies = replies.get(row.witness_id, 0)
        row.snippet = found.get(row.submission_id)
        if row.snippet is None and opening is not None and row.submission_id in testimonies:
            row.opening = opening(testimonies[row.submission_id])


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


def _version(row: sqlite3.Row, tags: list[str]) -> str:
    """The triage state a form was made from, as a short hash: a save carries
    it back, and a save whose state is no longer the stored one is refused."""
    state = [row["status"], row["priority"], row["assignee"], tags]
    return hashlib.sha256(json.dumps(state, ensure_ascii=False).encode()).hexdigest()[:32]


def submission(conn: sqlite3.Connection, submission_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM submissions WHERE submission_id = ?",
                       (submission_id,)).fetchone()
    if row is None:
        return None
    doc = dict(row)
    doc["choices"] = json.loads(row["choices"])
    doc["tags"] = _tags(conn, [submission_id]).get(submission_id, [])
    doc["version"] = _version(row, doc["tags"])
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


def _label(value: str, most: int, too_long: str, hidden: str, field: str) -> str:
    """A tag or an assignee: one line of visible characters, at most `most`;
    a refusal names the form's `field`."""
    value = value.strip()
    if len(value) > most:
        raise TriageError(too_long, n=most).at(field)
    if any(is_hidden(c) for c in value):
        raise TriageError(hidden).at(field)
    return value


def update(conn: sqlite3.Connection, submission_id: str, *, status: str | None = None,
           priority: int | None = None, assignee: str | None = None,
           tags: list[str] | None = None, actor: str | None = None,
           version: str | None = None) -> None:
    """Applies the changes that differ from what is stored; logs each one. Call inside
    a transaction. With `version` (submission()'s, as the form was made), a
    state changed since is refused as Stale. Everything is checked before
    anything is written."""
    row = _require(conn, submission_id)
    subject = f"submission:{submission_id}"
    old = _tags(conn, [submission_id]).get(submission_id, [])
    if version is not None and version != _version(row, old):
        raise Stale(N_("This submission was changed in another tab or window after "
                       "this form was opened."))
    if status is not None and status not in STATUSES:
        raise TriageError(f"unknown status {status!r}")
    if priority is not None and priority not in PRIORITIES:
        raise TriageError(f"unknown priority {priority!r}")
    if assignee is not None:
        assignee = _label(assignee, ASSIGNEE_CHARS,
                          N_("An assignee may have at most %(n)d characters."),
                          N_("An assignee may not hold control or format characters."),
                          "assignee")
    new = None
    if tags is not None:
        new = sorted({_label(t, TAG_CHARS,
                             N_("A tag may have at most %(n)d characters."),
                             N_("A tag may not hold control or format characters."), "tags")
                      for t in tags} - {""})
        if len(new) > TAGS_MAX:
            raise TriageError(N_("A submission may have at most %(n)d tags."),
                              n=TAGS_MAX).at("tags")
    if status is not None and status != row["status"]:
        conn.execute("UPDATE submissions SET status = ? WHERE submission_id = ?",
                     (status, submission_id))
        custody.append(conn, "status change", subject,
                       {"from": row["status"], "to": status}, actor)
    if priority is not None and priority != row["priority"]:
        conn.execute("UPDATE submissions SET priority = ? WHERE submission_id = ?",
                     (priority, submission_id))
        custody.append(conn, "priority change", subject,
                       {"from": row["priority"], "to": priority}, actor)
    if assignee is not None and assignee != row["assignee"]:
        conn.execute("UPDATE submissions SET assignee = ? WHERE submission_id = ?",
                     (assignee, submission_id))
        custody.append(conn, "assign", subject,
                       {"from": row["assignee"], "to": assignee}, actor)
    if new is not None and new != old:
        conn.execute("DELETE FROM tags WHERE submission_id = ?", (submission_id,))
        conn.executemany("INSERT INTO tags (submission_id, tag) VALUES (?, ?)",
                         [(submission_id, t) for t in new])
        custody.append(conn, "tags change", subject, {"from": old, "to": new}, actor)


def add_note(conn: sqlite3.Connection, submission_id: str, body: str,
             actor: str | None = None) -> None:
    _require(conn, submission_id)
    # A browser sends a textarea's line breaks as CRLF: kept as one line break.
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise TriageError(N_("The note is empty."))
    if len(body) > NOTE_CHARS:
        raise TriageError(N_("A note may have at most %(n)d characters."), n=NOTE_CHARS)
    if has_controls(body):
        raise TriageError(N_("A note may not hold control characters other than line "
                             "breaks and tabs."))
    author = actor or custody.default_actor()
    conn.execute("INSERT INTO notes (submission_id, at, author, body) VALUES (?, ?, ?, ?)",
                 (submission_id, custody.now(), author, body))
    custody.append(conn, "note", f"submission:{submission_id}",
                   {"sha256": hashlib.sha256(body.encode()).hexdigest()}, actor)
