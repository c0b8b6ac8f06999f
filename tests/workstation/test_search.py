"""Full-text search in Ukrainian, Russian, Belarusian and English, and language detection."""

from __future__ import annotations

import pytest
from vault_helpers import Desk, make_server, make_team

from intake.workstation import language, triage

TESTIMONIES = {
    "uk": "Дитина бачила, як танки їхали повз школу. Діти ховалися в підвалі.",
    "ru": "Ребёнок видел, как солдаты заходили в школу. Дети прятались в подвале.",
    "be": "Дзіця бачыла, як салдаты ўваходзілі ў школу. Дзеці хаваліся ў падвале.",
    "en": "The child saw soldiers entering the school. The children were hiding in the cellar.",
}


def matching(conn, text: str) -> list[str]:
    """The submissions the desk's search box finds, best first."""
    page = triage.list_submissions(conn, triage.Filters(query=text, sort="relevance"))
    return [row.submission_id for row in page.rows]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One vault for the many read-only search cases."""
    root = tmp_path_factory.mktemp("search")
    team = make_team(root, "team")
    server = make_server(root, team)
    try:
        ids = {lang: server.submit(text).submission_id for lang, text in TESTIMONIES.items()}
        desk = Desk(root / "vault", team)
        desk.import_(server.export(root / "bundle.tar"))
    finally:
        server.close()
    return desk, ids


@pytest.fixture
def vault(shared):
    desk, ids = shared
    with desk.open() as v:
        yield v, ids


@pytest.mark.parametrize(("query", "lang"), [
    ("Дитина", "uk"), ("ДИТИНА", "uk"), ("дитина", "uk"), ("ДІТИ", "uk"), ("їхали", "uk"),
    ("дитин*", "uk"),
    ("РЕБЁНОК", "ru"), ("ребенок", "ru"), ("Дети", "ru"),
    ("ДЗЕЦІ", "be"), ("Дзіця", "be"), ("салдаты ўваходзілі", "be"),
    ("CHILD", "en"), ("Cellar", "en"),
])
def test_search_folds_case_in_every_language(vault, query, lang):
    v, ids = vault
    assert matching(v.conn, query) == [ids[lang]]


@pytest.mark.parametrize(("query", "lang"), [
    # Russian and English have Snowball stemmers: another form of the word matches.
    ("солдат", "ru"), ("школа", "ru"), ("подвалы", "ru"), ("прятаться", "ru"),
    ("hide", "en"), ("soldier", "en"), ("entered", "en"),
])
def test_search_matches_other_word_forms_where_a_stemmer_exists(vault, query, lang):
    v, ids = vault
    assert ids[lang] in matching(v.conn, query)


def test_search_needs_every_word_and_ignores_query_syntax(vault):
    v, ids = vault
    assert matching(v.conn, "child cellar") == [ids["en"]]
    assert matching(v.conn, "child дитина") == []
    for hostile in ('"', "NEAR(", "body:*", "a OR", ")(", "-", "^x"):
        matching(v.conn, hostile)  # never an FTS5 syntax error


def test_search_reaches_text_files(server, desk, tmp_path):
    sent = server.submit("", files=[("Протокол огляду місця події\n".encode(), "protokol.txt")])
    desk.import_(server.export(tmp_path / "b.tar"))
    with desk.open() as v:
        assert matching(v.conn, "ПРОТОКОЛ") == [sent.submission_id]


def test_the_list_page_searches_and_filters_by_language(shared):
    from intake.workstation.desk import create_vault_app

    desk, ids = shared
    client = create_vault_app(desk.root).test_client()
    page = client.get("/?query=Дитина").get_data(as_text=True)
    assert ids["uk"][:12] in page and ids["ru"][:12] not in page
    page = client.get("/?language=be").get_data(as_text=True)
    assert ids["be"][:12] in page and ids["uk"][:12] not in page


@pytest.mark.parametrize("lang", sorted(TESTIMONIES))
def test_language_of_each_testimony(vault, lang):
    v, ids = vault
    row = v.conn.execute("SELECT language FROM submissions WHERE submission_id = ?",
                         (ids[lang],)).fetchone()
    assert row[0] == lang


@pytest.mark.parametrize(("text", "lang"), [
    ("Ми бачили, як солдати увійшли в село", "uk"),
    ("Мы видели, как солдаты вошли в деревню", "ru"),
    ("Мы бачылі, як салдаты ўвайшлі ў вёску", "be"),
    ("Мы бачылі салдат на плошчы", "be"),
    ("Ґанок згорів, а її подвір'я ціле", "uk"),
    ("Подъезд разрушен, эвакуация идёт", "ru"),
    ("We saw soldiers enter the village", "en"),
    ("12345 !!!", "und"),
])
def test_detect_language(text, lang):
    assert language.detect(text) == lang


def _pdf_with_words(words: str) -> bytes:
    import io

    import pikepdf

    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page = pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
        Contents=pdf.make_stream(f"BT /F1 18 Tf 72 720 Td ({words}) Tj ET".encode())))
    pdf.pages.append(page)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _docx_with_words(words: str) -> bytes:
    import io

    import docx

    document = docx.Document()
    document.add_paragraph(words)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_search_reaches_pdf_and_office_documents(server, desk, tmp_path):
    pdf = server.submit("", files=[(_pdf_with_words("Deportation order for the orphanage"),
                                    "order.pdf")])
    doc = server.submit("", files=[(_docx_with_words("Список дітей вивезених з інтернату"),
                                    "spysok.docx")])
    desk.import_(server.export(tmp_path / "b.tar"))
    with desk.open() as v:
        assert matching(v.conn, "orphanage") == [pdf.submission_id]
        assert matching(v.conn, "ІНТЕРНАТУ") == [doc.submission_id]
        assert matching(v.conn, "deportation інтернату") == []


def test_a_broken_document_gives_no_text_and_no_error():
    """Read in the parsing sandbox: a broken document is "broken", never an error."""
    import os

    from intake.workstation.sandbox import Sandbox

    sandbox = Sandbox()
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    for job, arg, data in (("office", docx_type, b"PK\x03\x04 not really a zip"),
                           ("pdf", "-", b"%PDF-1.4 broken")):
        fd = os.memfd_create("document")
        try:
            os.write(fd, data)
            outcome = sandbox.run(job, arg, fd, len(data))
        finally:
            os.close(fd)
        assert (outcome.ok, outcome.reason, outcome.text) == (False, "broken", None), job


def test_snippets_are_escaped_and_show_hidden_characters(server, desk, tmp_path):
    from intake.workstation.desk import create_vault_app

    hostile = ("Діти <script>alert(1)</script> \x02<b>бачили</b>\x03 танк;"
               " \u202eвідкрито\u202c, \x00 і \u200b кінець")
    sent = server.submit(hostile)
    desk.import_(server.export(tmp_path / "b.tar"))
    client = create_vault_app(desk.root).test_client()
    for url in ("/?query=дитина", "/"):  # a search's snippet, and the list's opening
        page = client.get(url).get_data(as_text=True)
        row = page.split(f"{sent.submission_id[:12]}</a>")[1].split("</td>")[0]
        assert "<script" not in row and "<b>" not in row
        assert "&lt;script&gt;" in row and "&lt;b&gt;" in row
        assert "\\x02" in row and "\\x03" in row and "\\x00" in row
        assert "\\u202e" in row and "\\u200b" in row and "\u202e" not in row
        assert not {"\x00", "\x02", "\x03", "\u200b"} & set(row)
        assert row.count("<mark>") == row.count("</mark>")
    page = client.get("/?query=дитина").get_data(as_text=True)
    assert "<mark>Діти</mark>" in page


def test_words_cut_by_hidden_characters_are_found(server, desk, tmp_path):
    """A soft hyphen inside a word, a zero-width space or a word joiner
    between two: the snippet shows each written out, and the words read
    without them are found all the same."""
    from intake.workstation.desk import create_vault_app

    sent = server.submit("Свідок бачив тан\u00adки біля шко\u2060ли; sold\u00adiers\u200bcame")
    other = server.submit("Нічого схожого тут немає")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = create_vault_app(desk.root).test_client()
    for query in ("танк", "танки", "школа", "soldier", "came"):
        page = client.get("/", query_string={"query": query}).get_data(as_text=True)
        assert sent.submission_id[:12] in page, query
        assert other.submission_id[:12] not in page, query
    page = client.get("/", query_string={"query": "танки"}).get_data(as_text=True)
    assert "тан\\xadки" in page  # still shown, not obeyed


def test_an_index_from_before_lemmas_is_rebuilt_when_the_vault_opens(tmp_path):
    """A version 2 vault (signed custody, previews) still had the index of words
    and stems: opening it brings it to version 3."""
    import sqlite3

    from intake.workstation.vault import Vault

    root = tmp_path / "vault"
    Vault(root).close()
    conn = sqlite3.connect(root / "vault.db")
    conn.execute("DROP TABLE search")
    conn.execute("CREATE VIRTUAL TABLE search USING fts5(item_id UNINDEXED, submission_id"
                 " UNINDEXED, body, stems, tokenize = 'unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO submissions (submission_id, witness_id, received_day, language)"
                 " VALUES ('s1', 'w1', '2026-01-01', 'uk')")
    conn.execute("INSERT INTO search VALUES ('i1', 's1', 'Вони вивезли дітей.', '')")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    with Vault(root) as vault:
        assert vault.conn.execute("PRAGMA user_version").fetchone()[0] == 3
        columns = [r[1] for r in vault.conn.execute("PRAGMA table_info(search)")]
        assert columns == ["item_id", "submission_id", "body", "terms", "more"]
        assert [r.submission_id for r in triage.list_submissions(
            vault.conn, triage.Filters(query="дитина")).rows] == ["s1"]


def test_the_snippet_finds_the_same_words_as_a_walk_of_every_word_and_every_span():
    """Marked words are found by a binary search per span, not by comparing
    every word with every span (minutes on a long text with many matches)."""
    import random
    import re

    from intake.workstation import search

    rng = random.Random(7)
    for _ in range(200):
        tokens = [rng.choice(["alpha", "bravo", "c", "дітей", "x1"])
                  for _ in range(rng.randint(0, 60))]
        marked = [rng.random() < 0.3 for _ in tokens]
        text = " ".join(f"{search.OPEN}{t}{search.CLOSE}" if m else t
                        for t, m in zip(tokens, marked, strict=True))
        body, spans = search._marked_spans(text)
        assert body == " ".join(tokens)
        walked, start, pos = [], None, 0
        for ch in text:  # the character walk it replaces
            if ch == search.OPEN:
                start = pos
            elif ch == search.CLOSE:
                walked.append((start, pos))
            else:
                pos += 1
        assert spans == walked
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", body)]
        assert search._words_in(words, spans) == {
            i for i, (a, b) in enumerate(words) if any(s < b and a < e for s, e in spans)}
        assert search._words_in(words, spans) == {i for i, m in enumerate(marked) if m}
