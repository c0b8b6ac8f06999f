"""The triage pages: loopback only, strict headers, safe previews, duplicates,
grouping by witness, and every action in the custody log."""

from __future__ import annotations

import io
import os
import re
import time

import pytest
from PIL import Image, ImageDraw
from vault_helpers import PASSPHRASE

from intake.pages.headers import HEADERS
from intake.workstation import custody
from intake.workstation.cli import check_loopback

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="([^"]*)"')


def picture(seed: int, size=(320, 240), quality=90, fmt="JPEG") -> bytes:
    w, h = 320, 240
    img = Image.new("RGB", (w, h), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    for i in range(6):  # a scene of blocks whose layout depends on the seed
        x = (seed * 37 + i * 53) % (w - w // 4)
        y = (seed * 91 + i * 29) % (h - h // 4)
        draw.rectangle([x, y, x + w // 4, y + h // 4],
                       fill=((seed * 70 + i * 40) % 256, (i * 90) % 256, (seed * 13) % 256))
    out = io.BytesIO()
    img.resize(size, Image.Resampling.BILINEAR).save(out, format=fmt, quality=quality)
    return out.getvalue()


@pytest.fixture
def desk_app(desk):
    def make():
        return desk.app(actor="tester").test_client()
    return make


def _token(page) -> str:
    return CSRF.search(page.get_data(as_text=True)).group(1)


def _triage_form(page) -> dict[str, str]:
    """What the triage form carries besides its fields: the CSRF token and the
    version of the state it was made from."""
    return {"csrf_token": _token(page),
            "version": VERSION.search(page.get_data(as_text=True)).group(1)}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.org"])
def test_serve_refuses_anything_but_loopback(desk, host):
    result = desk.run("serve", "--host", host, ok=False)
    assert result.exit_code == 2
    assert "127.0.0.1" in result.output


@pytest.mark.parametrize(("host", "bound"), [("127.0.0.1", "127.0.0.1"), ("::1", "::1"),
                                              ("localhost", "127.0.0.1"),
                                              ("127.0.0.5", "127.0.0.5")])
def test_loopback_addresses_are_accepted(host, bound):
    assert check_loopback(host) == bound


def test_pages_carry_the_strict_headers_and_no_script(server, desk, desk_app, tmp_path):
    sent = server.submit("Something happened <script>alert(1)</script>",
                         files=[(picture(1), "p.jpg")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    for path in ("/", f"/submission/{sent.submission_id}", f"/witness/{sent.witness_id}",
                 "/nowhere"):
        page = client.get(path)
        for name, value in HEADERS.items():
            assert page.headers[name] == value, (path, name)
        assert "Server" not in page.headers
        text = page.get_data(as_text=True)
        assert "<script" not in text.lower(), path
    assert "&lt;script&gt;" in client.get(f"/submission/{sent.submission_id}").get_data(
        as_text=True)


def test_preview_is_a_fresh_png_and_nothing_of_the_file(server, desk, desk_app, tmp_path):
    payload = picture(2) + b"TRAILING-POLYGLOT-PAYLOAD"
    sent = server.submit("photo", files=[(payload, "evidence.jpg")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    page = client.get(f"/submission/{sent.submission_id}").get_data(as_text=True)
    item_id = re.search(r'/item/([0-9a-f]+)/preview\.png', page).group(1)
    preview = client.get(f"/item/{item_id}/preview.png")
    assert preview.status_code == 200 and preview.mimetype == "image/png"
    png = preview.get_data()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"TRAILING-POLYGLOT-PAYLOAD" not in png
    assert Image.open(io.BytesIO(png)).size == (320, 240)


def test_exact_and_near_duplicates_are_linked(server, desk, desk_app, tmp_path):
    original = picture(3)
    a = server.submit("first", files=[(original, "a.jpg")])
    b = server.submit("second, same file", files=[(original, "b.jpg")])
    smaller = picture(3, size=(160, 120), quality=60)
    c = server.submit("third, resized", files=[(smaller, "c.jpg")])
    d = server.submit("fourth, other scene", files=[(picture(11), "d.jpg")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    page = client.get(f"/submission/{a.submission_id}").get_data(as_text=True)
    same = page.split("Same bytes in:")[1].split("</p>")[0]
    assert b.submission_id[:12] in same and c.submission_id[:12] not in same
    near = page.split("Similar pictures in:")[1].split("</p>")[0]
    assert c.submission_id[:12] in near
    assert d.submission_id[:12] not in page


def test_submissions_of_one_witness_are_grouped(server, desk, desk_app, tmp_path):
    first = server.submit("first visit")
    again = server.submit_again(first.witness_id, "second visit")
    other = server.submit("someone else")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    page = client.get(f"/witness/{first.witness_id}").get_data(as_text=True)
    assert first.submission_id[:12] in page and again[:12] in page
    assert other.submission_id[:12] not in page
    page = client.get(f"/submission/{again}").get_data(as_text=True)
    assert "1 other submission from this witness" in page


def test_triage_changes_go_into_the_custody_log_and_viewing_writes_nothing(
        server, desk, desk_app, tmp_path):
    sent = server.submit("needs triage", files=[(picture(4), "p.jpg")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    url = f"/submission/{sent.submission_id}"

    def entries() -> int:
        with desk.open(unlocked=False) as vault:
            return vault.conn.execute("SELECT COUNT(*) FROM custody").fetchone()[0]

    before = entries()
    page = client.get(url)
    item_id = re.search(r'/item/([0-9a-f]+)/preview\.png', page.get_data(as_text=True))[1]
    for path in (url, f"/item/{item_id}/preview.png", "/", f"/witness/{sent.witness_id}"):
        assert client.get(path).status_code == 200, path
    assert entries() == before  # viewing is not logged, consistently
    token = _token(page)
    refused = client.post(url + "/triage", data={"status": "verified"})
    assert refused.status_code == 400  # no CSRF token, nothing changed
    done = client.post(url + "/triage", data={
        **_triage_form(page), "status": "verified", "priority": "3",
        "assignee": "olena", "tags": "kharkiv, school ,"})
    assert done.status_code == 303
    client.post(url + "/note", data={"csrf_token": token, "note": "call back"})
    client.post(url + "/case", data={"csrf_token": token, "case": "Kharkiv school"})
    listed = client.get("/?tag=school&assignee=olena&priority=3&status=in+case+file")
    assert sent.submission_id[:12] in listed.get_data(as_text=True)
    assert sent.submission_id[:12] not in client.get("/?status=new").get_data(as_text=True)
    with desk.open() as vault:
        actions = [(r["action"], r["actor"]) for r in vault.conn.execute(
            "SELECT * FROM custody WHERE subject = ? ORDER BY seq",
            (f"submission:{sent.submission_id}",))]
        assert custody.verify(vault.conn).ok
    assert [a for a, _ in actions] == ["status change", "priority change", "assign",
                                       "tags change", "note", "added to case",
                                       "status change"]
    assert {actor for _, actor in actions} == {"tester"}


def test_a_desk_without_the_team_key_shows_but_changes_nothing(server, desk, tmp_path):
    sent = server.submit("read only", files=[(b"blob\x00", "b.bin")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk.app(unlocked=False).test_client()
    url = f"/submission/{sent.submission_id}"
    page = client.get(url)
    assert page.status_code == 200 and "read only" in page.get_data(as_text=True)
    token = _token(page)
    item_id = re.search(r'/item/([0-9a-f]+)/download', page.get_data(as_text=True))[1]
    exports = desk.root / "exports"
    for path, data in ((url + "/triage", {"status": "verified"}), (url + "/note", {"note": "x"}),
                       (url + "/case", {"case": "Bridge"}), (url + "/reply", {"message": "Hi"}),
                       (f"/item/{item_id}/download", {}),
                       (f"/witness/{sent.witness_id}/read-replies", {"passphrase": PASSPHRASE}),
                       ("/exports/case", {"case": "Bridge"}), ("/exports/replies", {})):
        refused = client.post(path, data={"csrf_token": token, **data})
        assert refused.status_code == 403, path
        assert "intake vault serve --key" in refused.get_data(as_text=True)
    with desk.open(unlocked=False) as vault:
        row = vault.conn.execute("SELECT status FROM submissions").fetchone()
        assert row[0] == "new"
        assert custody.verify(vault.conn).ok
        for table in ("notes", "cases", "replies"):
            assert vault.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0  # noqa: S608
    assert os.listdir(desk.root / "replies") == [] and not exports.exists()


def test_working_copy_download_is_logged_and_never_inline(server, desk, desk_app, tmp_path):
    sent = server.submit("", files=[(b"\x00\x01\x02 opaque blob\n", "blob.dat")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    page = client.get(f"/submission/{sent.submission_id}")
    item_id = re.search(r'/item/([0-9a-f]+)/download', page.get_data(as_text=True)).group(1)
    got = client.post(f"/item/{item_id}/download", data={"csrf_token": _token(page)})
    assert got.status_code == 200
    assert got.mimetype == "application/octet-stream"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.get_data() == b"\x00\x01\x02 opaque blob\n"
    got.close()
    assert client.get(f"/item/{item_id}/download").status_code == 405
    with desk.open() as vault:
        row = vault.conn.execute("SELECT action FROM custody WHERE subject = ?",
                                 (f"item:{item_id}",)).fetchall()
    assert [r[0] for r in row] == ["import", "download"]


def test_broken_and_oversized_pictures_get_no_preview(server, desk, desk_app, tmp_path):
    truncated = picture(5)[:400]
    bomb = io.BytesIO()
    Image.new("1", (12000, 8000)).save(bomb, format="PNG")  # 96 megapixels, a few KiB
    sent = server.submit("odd pictures", files=[(truncated, "cut.jpg"),
                                                (bomb.getvalue(), "huge.png")])
    result = desk.import_(server.export(tmp_path / "b.tar"))
    assert "0 damaged" in result.output
    client = desk_app()
    page = client.get(f"/submission/{sent.submission_id}").get_data(as_text=True)
    assert "preview.png" not in page
    assert page.count("No safe preview for this type.") == 2
    with desk.open() as vault:
        ids = [r[0] for r in vault.conn.execute(
            "SELECT item_id FROM items WHERE kind = 'file' AND phash IS NULL")]
    assert len(ids) == 2
    for item_id in ids:
        assert client.get(f"/item/{item_id}/preview.png").status_code == 404


def test_list_filters_and_sorting(server, desk, desk_app, tmp_path):
    import datetime as dt

    plain = server.submit("words only")
    with_file = server.submit("with a file", files=[(b"\x00\x01 data", "d.bin")])
    urgent = server.submit("urgent one")
    desk.import_(server.export(tmp_path / "b.tar"))
    with desk.open() as vault, vault.transaction() as conn:
        from intake.workstation import triage

        triage.update(conn, urgent.submission_id, priority=3)
        triage.update(conn, plain.submission_id, priority=0)
        conn.execute("UPDATE items SET flags = '[]'")
        conn.execute("UPDATE items SET flags = '[\"not sanitized: timed out\"]' "
                     "WHERE submission_id = ? AND kind = 'file'", (with_file.submission_id,))
    client = desk_app()

    def shown(query: str) -> list[str]:
        page = client.get("/?" + query).get_data(as_text=True)
        ids = {s.submission_id[:12]: s.submission_id for s in (plain, with_file, urgent)}
        return [ids[m] for m in re.findall(r'class="sid">([0-9a-f]{12})<', page)]

    assert shown("sort=priority") == [urgent.submission_id, with_file.submission_id,
                                      plain.submission_id]
    assert shown("has_files=yes") == [with_file.submission_id]
    assert set(shown("has_files=no")) == {plain.submission_id, urgent.submission_id}
    assert shown("flagged=yes") == [with_file.submission_id]
    assert shown("flagged=timed+out") == [with_file.submission_id]
    assert shown("flagged=virus") == []
    today = dt.datetime.now(dt.UTC).date()  # the server's days are UTC
    assert len(shown(f"day_from={today}&day_to={today}")) == 3
    assert shown(f"day_from={today + dt.timedelta(days=1)}") == []
    assert shown(f"day_to={today - dt.timedelta(days=1)}") == []
    assert len(shown("language=en")) == 3 and shown("language=uk") == []


def test_numbers_that_are_not_plain_digits_are_refused_or_ignored(server, desk, desk_app,
                                                                   tmp_path):
    """"²" passes str.isdigit() but not int(); a priority of twenty digits
    overflows SQLite: none of them is a 500."""
    sent = server.submit("numbers")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    for query in ("page=%C2%B2", "priority=%C2%B2", "priority=99999999999999999999",
                  "page=-1", "page=1000000"):
        assert client.get(f"/?{query}").status_code == 200, query
    page = client.get(f"/submission/{sent.submission_id}")
    url = f"/submission/{sent.submission_id}/triage"
    for bad in ("²", "99", "1e3"):
        answer = client.post(url, data={**_triage_form(page), "priority": bad})
        assert answer.status_code == 400, bad
    good = client.post(url, data={**_triage_form(page), "priority": "3"})
    assert good.status_code == 303
    with desk.open() as vault:
        assert vault.conn.execute("SELECT priority FROM submissions").fetchone()[0] == 3


def _opened(server, desk, desk_app, tmp_path, text: str):
    """One testimony sent, exported and imported, and its page opened on the
    desk: (sent, client, its address, the page)."""
    sent = server.submit(text)
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    url = f"/submission/{sent.submission_id}"
    return sent, client, url, client.get(url)


def _state(desk, submission_id: str) -> tuple:
    """The triage state, the notes and the custody log's length, to show that a
    refused save changed nothing."""
    with desk.open(unlocked=False) as vault:
        row = vault.conn.execute("SELECT status, priority, assignee FROM submissions"
                                 " WHERE submission_id = ?", (submission_id,)).fetchone()
        tags = [r[0] for r in vault.conn.execute(
            "SELECT tag FROM tags WHERE submission_id = ? ORDER BY tag", (submission_id,))]
        notes = [r[0] for r in vault.conn.execute("SELECT body FROM notes ORDER BY note_id")]
        logged = vault.conn.execute("SELECT COUNT(*) FROM custody").fetchone()[0]
        assert custody.verify(vault.conn).ok
    return tuple(row), tags, notes, logged


def _field(page, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page.get_data(as_text=True))[1]


def test_a_save_from_an_older_page_undoes_nothing(server, desk, desk_app, tmp_path):
    """Two tabs open on one submission: the second to save had the old values
    in its form, and saving them would silently revert the first's."""
    sent = server.submit("two tabs")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    url = f"/submission/{sent.submission_id}"
    tab_a, tab_b = client.get(url), client.get(url)
    saved = client.post(url + "/triage", data={
        **_triage_form(tab_b), "status": "verified", "priority": "2", "assignee": "",
        "tags": "bridge, kharkiv"})
    assert saved.status_code == 303
    before = _state(desk, sent.submission_id)
    stale = client.post(url + "/triage", data={
        **_triage_form(tab_a), "status": "new", "priority": "1", "assignee": "olena",
        "tags": "school"})
    assert stale.status_code == 409
    assert _state(desk, sent.submission_id) == before  # nothing written, nothing logged
    text = stale.get_data(as_text=True)
    assert "changed in another tab or window" in text
    shown_now = text.split('role="alert"')[1].split("</div>")[0]
    assert "verified" in shown_now and "high" in shown_now and "bridge, kharkiv" in shown_now
    assert _field(stale, "assignee") == "olena" and _field(stale, "tags") == "school"
    assert re.search(r'<option value="new" selected>', text)
    # The refused page's form holds the state saved now: saving it again is a
    # choice made with both in view, and goes through.
    again = client.post(url + "/triage", data={
        **_triage_form(stale), "status": "new", "priority": "1", "assignee": "olena",
        "tags": "school"})
    assert again.status_code == 303
    (status, priority, assignee), tags, _notes, _logged = _state(desk, sent.submission_id)
    assert (status, priority, assignee, tags) == ("new", 1, "olena", ["school"])
    # A form that carries no version at all is not trusted to be current.
    blind = client.post(url + "/triage", data={"csrf_token": _token(stale),
                                               "status": "spam"})
    assert blind.status_code == 409
    assert _state(desk, sent.submission_id)[0][0] == "new"


LONG = "t" * 65


@pytest.mark.parametrize(("fields", "message", "kept"), [
    ({"tags": f"ok, {LONG}"}, "A tag may have at most 64 characters.", f"ok, {LONG}"),
    ({"tags": ", ".join(f"t{n}" for n in range(51))}, "A submission may have at most 50 tags.",
     "t0, t1, t2"),
    ({"tags": "school, bell\x07"}, "A tag may not hold control or format characters.",
     "school, bell\\x07"),
    ({"tags": "one\ntwo"}, "A tag may not hold control or format characters.", "one"),
    ({"tags": "\u202eloohcs"}, "A tag may not hold control or format characters.",
     "\\u202eloohcs"),
    ({"assignee": "o" * 101}, "An assignee may have at most 100 characters.", "o" * 101),
    ({"assignee": "olena\x1b[2J"}, "An assignee may not hold control or format characters.",
     "olena\\x1b[2J"),
])
def test_typed_labels_past_their_limits_are_refused_and_kept(server, desk, desk_app,
                                                            tmp_path, fields, message, kept):
    sent, client, url, page = _opened(server, desk, desk_app, tmp_path, "labels")
    before = _state(desk, sent.submission_id)
    refused = client.post(url + "/triage", data={**_triage_form(page), "status": "verified",
                                                 **fields})
    assert refused.status_code == 400
    assert _state(desk, sent.submission_id) == before
    text = refused.get_data(as_text=True)
    # The reason links to the field it is about, which says it is wrong.
    field = next(iter(fields))
    assert f'<a href="#{field}">{message}</a>' in text
    assert re.search(rf'<input type="text" id="{field}" name="{field}" value="[^"]*" '
                     r'aria-invalid="true"', text)
    assert text.count('aria-invalid="true"') == 1
    assert kept in text.split('id="triage-form"')[1]  # what was typed, back in the form
    assert re.search(r'<option value="verified" selected>', text)
    # The refused form still carries the version it was made from.
    assert _field(refused, "version") == _field(page, "version")


def test_labels_at_their_limits_are_kept_whole(server, desk, desk_app, tmp_path):
    sent = server.submit("labels")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    url = f"/submission/{sent.submission_id}"
    tags = [f"{n:02d}" + "т" * 62 for n in range(50)]  # 64 characters each, Cyrillic
    saved = client.post(url + "/triage", data={
        **_triage_form(client.get(url)), "assignee": "о" * 100, "tags": ", ".join(tags)})
    assert saved.status_code == 303
    (_s, _p, assignee), kept, _n, _l = _state(desk, sent.submission_id)
    assert assignee == "о" * 100 and kept == tags


@pytest.mark.parametrize(("note", "message"), [
    ("n" * 20_001, "A note may have at most 20000 characters."),
    ("call back\x00", "A note may not hold control characters other than line breaks"),
    ("   \r\n", "The note is empty."),
])
def test_a_refused_note_is_shown_again_and_nothing_is_kept(server, desk, desk_app,
                                                           tmp_path, note, message):
    sent, client, url, page = _opened(server, desk, desk_app, tmp_path, "notes")
    before = _state(desk, sent.submission_id)
    refused = client.post(url + "/note", data={"csrf_token": _token(page), "note": note})
    assert refused.status_code == 400
    assert _state(desk, sent.submission_id) == before
    text = refused.get_data(as_text=True)
    assert message in text
    typed = re.search(r'<textarea id="note" name="note" rows="4"[^>]*>(.*?)</textarea>', text,
                      re.DOTALL)[1]
    assert typed == note.replace("\x00", "\\x00")


def test_a_form_opened_hours_ago_still_holds(server, desk, desk_app, tmp_path, monkeypatch):
    """A reply or note can take longer than an hour to write: the form's token
    lasts as long as the desk's process."""
    sent, client, url, page = _opened(server, desk, desk_app, tmp_path, "slow writing")
    later = time.time() + 6 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    kept = client.post(url + "/note", data={"csrf_token": _token(page), "note": "at length"})
    assert kept.status_code == 303
    assert _state(desk, sent.submission_id)[2] == ["at length"]


@pytest.mark.parametrize(("headers", "given_back"), [
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Origin": "http://localhost"}, True),
    ({"Origin": "null"}, False),
    ({"Sec-Fetch-Site": "cross-site", "Origin": "http://example.org"}, False),
    ({}, False),
])
def test_a_refused_form_gives_its_text_back_only_to_the_desk_own_pages(
        server, desk, desk_app, tmp_path, headers, given_back):
    sent, client, url, _page = _opened(server, desk, desk_app, tmp_path, "tokens")
    before = _state(desk, sent.submission_id)
    refused = client.post(url + "/note", data={"csrf_token": "stale", "note": "a <long> note"},
                          headers=headers)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "The form has expired" in text
    assert "no-store" in refused.headers["Cache-Control"]  # no browser keeps the text on disk
    assert ('readonly autocomplete="off">a &lt;long&gt; note</textarea>' in text) is given_back
    assert ("long" in text) is given_back
    assert _state(desk, sent.submission_id) == before


def test_a_note_keeps_line_breaks_and_tabs_up_to_its_limit(server, desk, desk_app, tmp_path):
    sent = server.submit("notes")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    url = f"/submission/{sent.submission_id}"
    token = _token(client.get(url))
    longest = "н" * 20_000
    for body in ("first line\r\n\tsecond line", longest):
        assert client.post(url + "/note", data={"csrf_token": token,
                                                "note": body}).status_code == 303
    assert _state(desk, sent.submission_id)[2] == ["first line\n\tsecond line", longest]


def test_refusals_are_in_the_page_language(server, desk, desk_app, tmp_path):
    sent, client, url, page = _opened(server, desk, desk_app, tmp_path, "мова")
    ukrainian = {"Accept-Language": "uk"}
    tags = client.post(url + "/triage", data={**_triage_form(page), "tags": "a\tb"},
                       headers=ukrainian)
    text = tags.get_data(as_text=True)
    assert tags.status_code == 400 and "Мітка не може містити керівних" in text
    assert "A tag may not" not in text
    client.post(url + "/triage", data={**_triage_form(page), "status": "closed"})
    stale = client.post(url + "/triage", data={**_triage_form(page), "status": "spam"},
                        headers=ukrainian)
    text = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "в іншій вкладці або іншому вікні" in text
    assert "another tab" not in text
    note = client.post(url + "/note", data={"csrf_token": _token(page), "note": "a\x07"},
                       headers=ukrainian)
    assert note.status_code == 400 and "керівних символів" in note.get_data(as_text=True)


def _cases(desk) -> list:
    with desk.open(unlocked=False) as vault:
        return [tuple(r) for r in vault.conn.execute(
            "SELECT c.name, s.submission_id FROM cases c LEFT JOIN case_submissions s"
            " ON s.case_name = c.name ORDER BY c.name")]


@pytest.mark.parametrize(("lang", "name", "message"), [
    ("en", "Школа " + "ш" * 95, "A case name must have 1 to 100 characters."),
    ("en", "   ", "A case name must have 1 to 100 characters."),
    ("en", "Bridge\u202e", "A case name may not hold control or format characters."),
    ("uk", "Міст\x07", "Назва справи не може містити керівних або форматувальних символів."),
])
def test_a_refused_case_name_is_shown_again_and_nothing_is_kept(server, desk, desk_app,
                                                               tmp_path, lang, name, message):
    sent, client, url, page = _opened(server, desk, desk_app, tmp_path, "cases")
    before = _state(desk, sent.submission_id)
    refused = client.post(url + "/case", data={"csrf_token": _token(page), "case": name},
                          headers={"Accept-Language": lang})
    assert refused.status_code == 400
    assert _state(desk, sent.submission_id) == before and _cases(desk) == []
    text = refused.get_data(as_text=True)
    assert f'<a href="#case">{message}</a>' in text  # the reason, at the top, linked
    typed = re.search(r'<input type="text" id="case" name="case" value="([^"]*)"', text)[1]
    assert typed == name.replace("\x07", "\\x07").replace("\u202e", "\\u202e")
    if lang != "en":
        assert "case name" not in text


def test_a_posted_form_too_large_for_the_desk_says_so_and_keeps_nothing(server, desk,
                                                                         desk_app, tmp_path):
    sent = server.submit("too much")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    url = f"/submission/{sent.submission_id}"
    token = _token(client.get(url))
    before = _state(desk, sent.submission_id)
    for lang, said in (("en", "larger than the desk takes at once (1 MiB)"),
                       ("uk", "більше, ніж сторінки розбору приймають за один раз (1 МіБ)")):
        refused = client.post(url + "/note", data={"csrf_token": token,
                                                   "note": "н" * (1024 * 1024)},
                              headers={"Accept-Language": lang})
        assert refused.status_code == 413
        assert said in refused.get_data(as_text=True)
    assert _state(desk, sent.submission_id) == before


def test_each_typed_field_stops_at_the_limit_the_desk_checks(server, desk, desk_app,
                                                             tmp_path):
    from intake.workstation import cases, replies, triage

    sent = server.submit("limits")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk_app()
    pages = (client.get(f"/submission/{sent.submission_id}").get_data(as_text=True),
             client.get(f"/witness/{sent.witness_id}").get_data(as_text=True))
    limits = {"note": triage.NOTE_CHARS, "message": replies.MAX_MESSAGE_CHARS,
              "case": cases.NAME_CHARS, "assignee": triage.ASSIGNEE_CHARS}
    fields = {}
    for page in pages:
        for field in re.findall(r"<(?:textarea|input)\b[^>]*>", page):
            name = re.search(r'name="([^"]+)"', field)
            if name and ('type="text"' in field or field.startswith("<textarea")):
                most = re.search(r'maxlength="(\d+)"', field)
                fields.setdefault(name[1], set()).add(int(most[1]) if most else None)
    assert {name: fields.get(name) for name in limits} == \
        {name: {n} for name, n in limits.items()}
    assert triage.NOTE_CHARS == 20_000 and replies.MAX_MESSAGE_CHARS == 20_000
