"""Full-text search over testimonies, text files and documents (SQLite FTS5).

The index has three columns, all through FTS5's unicode61 tokenizer:

    body   the text as the desk shows it (safe_text.for_page: every hidden
           character written out as an escape, so that the highlight markers
           below can never come from a witness)
    terms  one term per word of `body`, word for word: the word's lemma or
           stem (stemming.py), so that a match on "дитина" can be traced back
           to the word "дітей" it came from and highlighted there
    more   a word's other lemmas and stems, for recall, and the terms of the
           words that hidden characters cut or glue in `body`, read without
           them (_as_read)

A query word matches a row when it appears in `body` as typed (any case), or
any of its lemmas or stems in `terms` or `more`; a word ending in "*" is a
prefix of a word in `body`. All words must match. Snippets come from FTS5's
highlight(): the words it marks in `body` and those whose term it marks in
`terms`, escaped by the template like any other text.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
import unicodedata
from dataclasses import dataclass

from intake.workstation.safe_text import PAGE_KEEPS, for_page, is_hidden

# stemming (pymorphy3, Snowball, Hunspell) is imported where it is used: the
# importing process, which holds the key, only makes rows (body_of, insert)
# from what the text analyser's child answered, and never loads it.

MAX_INDEXED_CHARS = 2_000_000
COLUMNS = ("item_id", "submission_id", "body", "terms", "more")
OPEN, CLOSE = "\x02", "\x03"  # never in `body`: for_page wrote them out as escapes
_MARKS = re.compile("([\x02\x03])")
SNIPPET_WORDS_BEFORE, SNIPPET_WORDS_AFTER = 8, 24
ZERO_WIDTH_SPACE = "\u200b"  # a format character that parts words

CREATE = """CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(
    item_id UNINDEXED, submission_id UNINDEXED, body, terms, more,
    tokenize = 'unicode61 remove_diacritics 2'
)"""


def body_of(text: str) -> str:
    """The `body` column a text is indexed with."""
    return for_page(unicodedata.normalize("NFC", text[:MAX_INDEXED_CHARS]))


def _as_read(text: str) -> list[str]:
    """The text as a reader takes it in, when it holds hidden characters: a
    soft hyphen, zero-width space or word joiner shows in `body` as an escape,
    which cuts the word around it or glues itself to the next. Read as a
    reader does, format characters (a soft hyphen, joiners, direction marks)
    vanish inside a word and the others (a zero-width space, controls) part
    two words; and, in case a text used them otherwise, every one as a space."""
    hidden = {ch for ch in text if ch not in PAGE_KEEPS and is_hidden(ch)}
    if not hidden:
        return []
    inside = {ord(ch): None if unicodedata.category(ch) == "Cf" and ch != ZERO_WIDTH_SPACE
              else " " for ch in hidden}
    apart = {ord(ch): " " for ch in hidden}
    return list(dict.fromkeys((text.translate(inside), text.translate(apart))))


def row(text: str, lang: str) -> tuple[str, str, str]:
    """The text's (body, terms, more) columns, analysed as `lang`; `more` also
    holds the terms of the words that hidden characters cut (_as_read)."""
    from intake.workstation import stemming

    body = body_of(text)
    _spans, words = stemming.analyse(body, lang)
    more = {t for w in words for t in w.extra}
    for read in _as_read(unicodedata.normalize("NFC", text[:MAX_INDEXED_CHARS])):
        more |= {t for w in stemming.analyse(read, lang)[1] for t in (w.canonical, *w.extra)}
    more -= {w.canonical for w in words}
    return body, " ".join(w.canonical for w in words), " ".join(sorted(more))


def insert(conn: sqlite3.Connection, item_id: str, submission_id: str, body: str, terms: str,
           more: str) -> None:
    conn.execute("INSERT INTO search (item_id, submission_id, body, terms, more)"
                 " VALUES (?, ?, ?, ?, ?)", (item_id, submission_id, body, terms, more))


def index(conn: sqlite3.Connection, item_id: str, submission_id: str, text: str,
          lang: str) -> None:
    """Analyses the text here and indexes it (`vault import` has it analysed in
    a child: intake.workstation.text_analysis)."""
    insert(conn, item_id, submission_id, *row(text, lang))


def upgrade(conn: sqlite3.Connection) -> None:
    """Rebuilds an index made before lemmas (columns body and stems) from its own
    text, with each submission's language. Runs once, when a vault is opened."""
    columns = [r[1] for r in conn.execute("PRAGMA table_info(search)")]
    if not columns or columns == list(COLUMNS):
        conn.execute(CREATE)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE search RENAME TO search_before_lemmas")
        conn.execute(CREATE)
        for r in conn.execute(
                "SELECT o.item_id, o.submission_id, o.body, s.language FROM search_before_lemmas"
                " o LEFT JOIN submissions s ON s.submission_id = o.submission_id").fetchall():
            index(conn, r[0], r[1], r[2], r[3] or "")
        conn.execute("DROP TABLE search_before_lemmas")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(text: str) -> str | None:
    """Builds an FTS5 query from what a person typed; no FTS5 syntax gets through."""
    from intake.workstation import stemming

    clauses = []
    for raw in text.split():
        prefix = raw.endswith("*")
        for word in stemming.WORD.findall(unicodedata.normalize("NFC", raw)):
            if prefix:
                clauses.append(f"(body : {_quoted(word)}*)")
                continue
            alternatives = [f"body : {_quoted(word)}"]
            terms = sorted(stemming.query_terms(word))
            if terms:
                alternatives.append("{terms more} : (" + " OR ".join(map(_quoted, terms)) + ")")
            clauses.append("(" + " OR ".join(alternatives) + ")")
    return " AND ".join(clauses) if clauses else None


@dataclass(frozen=True)
class Snippet:
    """Pieces of text in order, each (text, matched); `cut_before`/`cut_after`
    say whether the text goes on beyond them."""

    pieces: tuple[tuple[str, bool], ...]
    cut_before: bool
    cut_after: bool


def _marked_spans(highlighted: str) -> tuple[str, list[tuple[int, int]]]:
    """The text without markers, and the (start, end) of each marked stretch.
    Split at the markers, not walked character by character: a long text
    with thousands of matches costs a step per match."""
    out, spans, start, pos = [], [], None, 0
    for piece in _MARKS.split(highlighted):
        if piece == OPEN:
            start = pos
        elif piece == CLOSE:
            if start is not None:
                spans.append((start, pos))
            start = None
        elif piece:
            out.append(piece)
            pos += len(piece)
    return "".join(out), spans


def _words_in(words: list[tuple[int, int]], spans: list[tuple[int, int]]) -> set[int]:
    """The indexes of the words that overlap a span: for each span, a binary
    search to its first word, then the words it covers (not every word
    against every span, which took minutes on a long text)."""
    ends = [b for _a, b in words]
    found: set[int] = set()
    for s, e in spans:
        i = bisect.bisect_right(ends, s)
        while i < len(words) and words[i][0] < e:
            found.add(i)
            i += 1
    return found


def _marked_terms(highlighted_terms: str) -> set[int]:
    return {i for i, token in enumerate(highlighted_terms.split(" ")) if OPEN in token}


def snippet(body_marked: str, terms_marked: str) -> Snippet:
    """A window of the text around its first match, from highlight()'s output."""
    from intake.workstation import stemming

    body, spans = _marked_spans(body_marked)
    words = [m.span() for m in stemming.WORD.finditer(body)]
    hits = _marked_terms(terms_marked)
    if len(terms_marked.split(" ")) != len(words):
        hits = set()  # not aligned (an index from another version): body matches only
    hits |= _words_in(words, spans)
    if not words:
        return Snippet(((body[:200], False),), False, len(body) > 200)
    first = min(hits) if hits else 0
    lo = max(0, first - SNIPPET_WORDS_BEFORE)
    hi = min(len(words), first + SNIPPET_WORDS_AFTER) - 1
    start = words[lo][0] if lo else 0
    end = words[hi][1] if hi < len(words) - 1 else len(body.rstrip())
    pieces, pos = [], start
    for i in range(lo, hi + 1):
        a, b = words[i]
        if i in hits:
            if a > pos:
                pieces.append((body[pos:a], False))
            pieces.append((body[a:b], True))
            pos = b
    if end > pos:
        pieces.append((body[pos:end], False))
    return Snippet(tuple(pieces), start > 0, end < len(body.rstrip()))


def snippets(conn: sqlite3.Connection, query: str, submission_ids: list[str]
             ) -> dict[str, Snippet]:
    """The best-matching item's snippet for each of these submissions."""
    if not submission_ids:
        return {}
    marks = ",".join("?" * len(submission_ids))
    # Only "?" marks are joined into the SQL.
    sql = ("SELECT submission_id, highlight(search, 2, ?, ?), highlight(search, 3, ?, ?)"  # noqa: S608
           f" FROM search WHERE search MATCH ? AND submission_id IN ({marks}) ORDER BY rank")
    rows = conn.execute(sql, (OPEN, CLOSE, OPEN, CLOSE, query, *submission_ids)).fetchall()
    out: dict[str, Snippet] = {}
    for sid, body, terms in rows:
        if sid not in out:
            out[sid] = snippet(body, terms)
    return out
