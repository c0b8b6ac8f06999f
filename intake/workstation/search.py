"""Full-text search over testimonies and text files (SQLite FTS5).

The index has two columns: `body`, the text as written, and `stems`, its
Snowball stems where a stemmer exists. Both go through FTS5's unicode61
tokenizer with remove_diacritics, which folds case for every script
("Дитина" finds "дитина") and ignores accents. A query word matches a row
when it appears in `body`, or its stem in `stems`; a word ending in "*"
is a prefix. All words must match.
"""

from __future__ import annotations

import sqlite3

from intake.workstation import stemming

MAX_INDEXED_CHARS = 2_000_000


def index(conn: sqlite3.Connection, item_id: str, submission_id: str, text: str,
          lang: str) -> None:
    text = text[:MAX_INDEXED_CHARS]
    conn.execute("INSERT INTO search (item_id, submission_id, body, stems) VALUES (?, ?, ?, ?)",
                 (item_id, submission_id, text, stemming.stems(text, lang)))


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(text: str) -> str | None:
    """Builds an FTS5 query from what a person typed; no FTS5 syntax gets through."""
    clauses = []
    for raw in text.split():
        prefix = raw.endswith("*")
        for word in stemming.WORD.findall(raw):
            if prefix:
                clauses.append(f"(body : {_quoted(word)}*)")
                continue
            alternatives = [f"body : {_quoted(word)}"]
            alternatives += [f"stems : {_quoted(s)}" for s in sorted(stemming.query_stems(word))]
            clauses.append("(" + " OR ".join(alternatives) + ")")
    return " AND ".join(clauses) if clauses else None
