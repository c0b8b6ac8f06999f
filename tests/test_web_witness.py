"""The witness form through Flask's test client: what a witness sees and what is kept."""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import re
import time
from html.parser import HTMLParser

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import Date, DateTime, Interval, Time, func, select
from support import CSRF, codename_of, csrf_token, make_config, store_contents, submit

from intake.format import envelope
from intake.server import codename
from intake.server.models import Base, Item, Submission, WebSession, Witness
from intake.server.pending_originals import FOLDER as PENDING
from intake.server.store import SUFFIX, TMP_PREFIX

HOUR = 3600


# -- helpers ----------------------------------------------------------------------------

class _Links(HTMLParser):
    """Collects tags and every URL-bearing attribute of a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "action", "srcset", "poster", "data", "formaction",
                        "background", "manifest", "ping", "cite"}:
                self.urls.append((tag, name, value or ""))


def assert_self_contained(page: str) -> None:
    parsed = _Links()
    parsed.feed(page)
    # At most the one script of our own (resumable uploads), by address, no inline code.
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.I | re.S)
    assert parsed.tags.count("script") == len(scripts) <= 1
    assert all(not body.strip() for body in scripts)
    assert [u for t, a, u in parsed.urls if t == "script"] == ["/static/uploads.js"] * len(scripts)
    assert "javascript:" not in page.lower()
    assert not re.search(r"\son[a-z]+\s*=", page, re.I), "inline event handler"
    for tag, attr, url in parsed.urls:
        # Same origin only: a fragment or an absolute path; no scheme, no "//host".
        same_page = url.startswith("#")
        assert same_page or (url.startswith("/") and not url.startswith("//")), (tag, attr, url)
    assert not re.search(r"\b(?:https?|ftp)://", page, re.I)


def assert_error_page(response, status: int, *phrases: str) -> str:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    for phrase in phrases:
        assert phrase in text, (phrase, text)
    for leak in ("Traceback", 'File "', "werkzeug", "flask_wtf", "sqlalchemy",
                 "Exception", "Error:"):
        assert leak not in text, leak
    assert_self_contained(text)
    return text


def assert_secure_headers(response) -> None:
    h = response.headers
    directives = {}
    for part in h["Content-Security-Policy"].split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name] = values
    assert directives["default-src"] == ["'none'"]
    for name, values in directives.items():
        for value in values:
            assert value in {"'none'", "'self'"}, (name, value)
    assert directives.get("script-src", ["'none'"]) in (["'none'"], ["'self'"])
    assert directives.get("connect-src", ["'none'"]) in (["'none'"], ["'self'"])
    assert directives["frame-ancestors"] == ["'none'"]
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY"
    assert "no-store" in h["Cache-Control"]
    assert h.get("X-Content-Type-Options") == "nosniff"
    assert "Server" not in h


def _fetched(client, path: str):
    with client.get(path) as response:
        response.get_data()
    return response


def nothing_stored(app) -> None:
    intake = app.extensions["intake"]
    left = store_contents(intake.store.root)
    assert left == [], left
    with intake.db.sessions() as s:
        for model in (Item, Submission, Witness):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model


def envelopes(app) -> list:
    return sorted(app.extensions["intake"].store.root.glob(f"*{SUFFIX}"))


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    """A hand-built multipart body; the filename bytes go out exactly as given."""
    out = bytearray()
    for name, filename, content in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{name}"'.encode()
        if filename is not None:
            disposition += b'; filename="' + filename.encode("utf-8", "surrogateescape") + b'"'
        out += disposition + b"\r\n"
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def post_raw(client, body: bytes, boundary: str = "b0undary"):
    return client.post("/en/submit", data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


# -- the form and the receipt -------------------------------------------------------------

def test_form_has_no_inline_script_and_loads_nothing_from_elsewhere(client):
    page = client.get("/en/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert_self_contained(text)
    assert 'enctype="multipart/form-data"' in text
    assert 'name="testimony"' in text and 'name="files"' in text and "multiple" in text
    with client.get("/static/style.css") as css:
        assert css.status_code == 200
        sheet = css.get_data(as_text=True)
    assert "@import" not in sheet
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", sheet, re.I)


def test_testimony_and_several_files_in_one_submission(app, client, team_key):
    files = [(b"%PDF-1.4 first", "report.pdf"), (b"\x89PNG\r\n\x1a\n second", "photo.png"),
             (b"third, plain text", "notes.txt")]
    # None can be cleaned: kept as received because the witness asked for originals.
    page = submit(client, "I saw the convoy at dawn.", files, keep_original="y")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert_self_contained(text)
    for _content, name in files:
        assert name in text
    words = codename_of(text).split()
    assert len(words) >= 7
    assert set(words) <= set(codename.wordlist("en").words)
    assert len(codename.wordlist("en").words) >= 7775  # 7 words of 7,775: 90 bits

    found = {}
    for path in envelopes(app):
        with open(path, "rb") as f:
            content, meta = envelope.open_envelope(f, team_key.private_key)
        found[meta.get("original_name", meta["kind"])] = content
    assert found == {"testimony": b"I saw the convoy at dawn.",
                     **{name: content for content, name in files}}
    with app.extensions["intake"].db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 4
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
        witness = s.scalars(select(Witness)).one()
    # The codename itself is nowhere; only what is derived from it.
    derived = codename.derive(" ".join(words), app.extensions["intake"].secrets)
    assert witness.lookup_hash == derived.lookup_hash
    assert witness.reply_public_key == bytes(derived.reply_public_key)


def test_two_witnesses_get_different_codenames(client):
    first = codename_of(submit(client, "one").get_data(as_text=True))
    second = codename_of(submit(client, "two").get_data(as_text=True))
    assert first != second


# -- security headers ---------------------------------------------------------------------

def test_security_headers_on_every_response(tmp_path, team_key):
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=64 * 1024))
    client = app.test_client()
    try:
        responses = {
            "form": client.get("/en/"),
            "receipt": submit(client, "testimony"),
            "empty": submit(client, ""),
            "csrf": client.post("/en/submit", data={"testimony": "x"}),
            "too large": submit(client, "", [(b"x" * 100_000, "big.bin")]),
            "css": _fetched(client, "/static/style.css"),
            "404": client.get("/en/no-such-page"),
            "405": client.put("/en/"),
            "head": client.head("/en/"),
        }
        assert [r.status_code for r in responses.values()] == \
            [200, 200, 400, 400, 413, 200, 404, 405, 200]
        for name, response in responses.items():
            try:
                assert_secure_headers(response)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
    finally:
        app.extensions["intake"].close()


# -- bad input: a clear page, a 4xx, nothing kept ----------------------------------------

def test_missing_csrf_token(app, client):
    csrf_token(client)  # a session exists, but the form comes without its token
    r = client.post("/en/submit", data={"testimony": "hello"},
                    content_type="multipart/form-data")
    assert_error_page(r, 400, "Nothing was kept", "Open the form again")
    nothing_stored(app)


def test_wrong_csrf_token(app, client):
    token = csrf_token(client)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = submit(client, "hello", token=forged)
    assert_error_page(r, 400, "Nothing was kept")
    nothing_stored(app)


def test_csrf_token_of_another_session_is_refused(app):
    stranger, witness = app.test_client(), app.test_client()
    token = csrf_token(stranger)
    csrf_token(witness)
    r = submit(witness, "hello", token=token)
    assert_error_page(r, 400, "Nothing was kept")
    nothing_stored(app)


def test_oversize_body_gets_413_naming_the_limit(tmp_path, team_key):
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=256 * 1024))
    client = app.test_client()
    try:
        r = submit(client, "with a large file", [(os.urandom(300 * 1024), "video.mp4")])
        assert_error_page(r, 413, "256 KiB", "Nothing was kept")
        nothing_stored(app)
        # Just under the limit still goes through.
        ok = submit(client, "", [(os.urandom(200 * 1024), "video.mp4")])
        assert ok.status_code == 200
    finally:
        app.extensions["intake"].close()


def test_default_limit_is_two_gib(app, client):
    assert app.config["MAX_CONTENT_LENGTH"] == 2 * 1024**3
    assert "2 GiB" in client.get("/en/").get_data(as_text=True)


@pytest.mark.parametrize(("lang", "size", "shown"), [
    ("en", 2 * 1024**3, "2 GiB"), ("uk", 2 * 1024**3, "2 ГіБ"), ("ru", 3 * 1024**2 // 2, "1,5 МиБ"),
    ("be", 1, "1 байт"), ("uk", 3, "3 байти"), ("en", 5, "5 bytes"), ("en", 1536, "1.5 KiB"),
])
def test_sizes_are_written_in_the_pages_language(app, lang, size, shown):
    from flask_babel import force_locale

    from intake.pages.sizes import human_size

    with app.test_request_context("/"), force_locale(lang):
        assert human_size(size) == shown


@pytest.mark.parametrize("testimony", ["", "   \r\n\t  "])
def test_empty_submission(app, client, testimony):
    # A browser sends an empty file part when no file was chosen.
    r = post_raw(client, multipart([("csrf_token", None, csrf_token(client).encode()),
                                    ("testimony", None, testimony.encode()),
                                    ("files", "", b"")]))
    assert_error_page(r, 400, "empty")
    nothing_stored(app)


@pytest.mark.parametrize("body", [
    pytest.param(lambda token: multipart([("csrf_token", None, token),
                                          ("files", "a.txt", b"data")])[:-30],
                 id="cut-short"),
    pytest.param(lambda token: multipart([("csrf_token", None, token),
                                          ("files", "a.bin", os.urandom(300_000))])[:-100_000],
                 id="cut-short-in-a-file"),
    pytest.param(lambda token: b"--b0undary\r\nno headers at all\r\n" + token, id="no-headers"),
    pytest.param(lambda token: b"\x00\xff" * 64, id="garbage"),
    pytest.param(lambda token: multipart([("csrf_token", None, token)]).replace(
        b"--b0undary--", b"--other--"), id="wrong-boundary"),
])
def test_malformed_multipart(app, client, body):
    import threading

    r = post_raw(client, body(csrf_token(client).encode()))
    assert 400 <= r.status_code < 500
    assert_error_page(r, r.status_code, "Nothing was kept")
    nothing_stored(app)
    # A file cut short was never handed to the form, but its spool was closed.
    assert not [t for t in threading.enumerate() if t.name.startswith("intake-")]


def test_multipart_without_boundary(app, client):
    csrf_token(client)
    r = client.post("/en/submit", data=b"whatever", content_type="multipart/form-data")
    assert_error_page(r, 400, "Nothing was kept")
    nothing_stored(app)


@pytest.mark.parametrize(("filename", "phrase"), [
    ("../../etc/passwd", "folder path"),
    ("photos/photo.jpg", "folder path"),
    ("/home/me/photo.jpg", "folder path"),
    ("C:\\\\Users\\\\me\\\\photo.jpg", "folder path"),  # escaped as a browser quotes it
    # As old Internet Explorer sends it, unescaped: the parser drops the
    # backslashes, and the user's name would stay in "C:UsersIvanphoto.jpg".
    ("C:\\Users\\Ivan\\photo.jpg", "folder path"),
    ("d:photo.jpg", "folder path"),
    ("photo\x00.jpg.exe", "NUL"),
    ("a" * 1000 + ".jpg", "255"),
])
def test_bad_filenames_are_refused(app, client, filename, phrase):
    body = multipart([("csrf_token", None, csrf_token(client).encode()),
                      ("testimony", None, b"with a badly named file"),
                      ("files", "good.txt", b"fine"),
                      ("files", filename, b"content")])
    r = post_raw(client, body)
    assert_error_page(r, 400, phrase)
    nothing_stored(app)


TYPED = "Я бачила <b>колону</b> & автобуси о шостій.\nДругий рядок."


def _typed_back(text: str) -> str | None:
    found = re.search(r'<textarea id="typed" rows="12" cols="60" readonly autocomplete="off">'
                      r"(.*?)</textarea>", text, re.DOTALL)
    return found[1] if found else None


@pytest.mark.parametrize("refused", ["a file named with a path", "too many files"])
def test_a_refused_testimony_is_given_back_to_copy(app, client, refused):
    """A witness who wrote at length loses nothing to a file's name or a limit:
    the refusal shows the text back, as typed, to be copied."""
    most = app.extensions["intake"].config.max_files
    files = [("files", "good.txt", b"fine"), ("files", "C:\\Users\\Ivan\\photo.jpg", b"x")] \
        if refused == "a file named with a path" else \
        [("files", f"f{n}.txt", b"x") for n in range(most + 1)]
    body = multipart([("csrf_token", None, csrf_token(client).encode()),
                      ("testimony", None, TYPED.encode()), *files])
    response = post_raw(client, body)
    text = assert_error_page(response, 400, "not accepted")
    # The text is in the page: no browser may keep it on its disk.
    assert "no-store" in response.headers["Cache-Control"]
    assert _typed_back(text) == ("Я бачила &lt;b&gt;колону&lt;/b&gt; &amp; автобуси о шостій."
                                 "\nДругий рядок.")
    nothing_stored(app)


@pytest.mark.parametrize(("headers", "given_back"), [
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Sec-Fetch-Site": "cross-site"}, False),
    ({}, False),
])
def test_an_expired_form_gives_its_text_back_only_to_our_own_page(app, client, headers,
                                                                 given_back):
    csrf_token(client)
    body = multipart([("csrf_token", None, b"stale"), ("testimony", None, TYPED.encode())])
    response = client.post("/en/submit", data=body, headers=headers,
                           content_type="multipart/form-data; boundary=b0undary")
    text = assert_error_page(response, 400, "The form has expired")
    assert (_typed_back(text) is not None) is given_back
    assert ("колону" in text) is given_back
    nothing_stored(app)


def test_unicode_filename_is_kept(app, client, team_key):
    r = submit(client, "", [(b"data", "Фото з Бучі.jpg")])
    assert r.status_code == 200
    [path] = envelopes(app)
    with open(path, "rb") as f:
        _content, meta = envelope.open_envelope(f, team_key.private_key)
    assert meta["original_name"] == "Фото з Бучі.jpg"


# -- CSRF lifetime: a form left open for hours still submits ------------------------------

def _form_opened_ago(monkeypatch, client, seconds: int) -> str:
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp",
                        lambda self: real(self) - seconds)
    try:
        return csrf_token(client)
    finally:
        monkeypatch.setattr(TimestampSigner, "get_timestamp", real)


def test_csrf_token_lives_a_day(app, client, monkeypatch):
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 24 * HOUR
    token = _form_opened_ago(monkeypatch, client, 23 * HOUR)
    r = submit(client, "written slowly, over Tor", token=token)
    assert r.status_code == 200
    assert len(codename_of(r.get_data(as_text=True)).split()) >= 7


def test_csrf_token_older_than_a_day_is_refused(app, client, monkeypatch):
    token = _form_opened_ago(monkeypatch, client, 25 * HOUR)
    r = submit(client, "too late", token=token)
    assert_error_page(r, 400, "open too long", "Nothing was kept")
    nothing_stored(app)


# -- the session cookie is an opaque id ----------------------------------------------------

def test_session_cookie_is_opaque(app, client):
    token = csrf_token(client)
    cookie = client.get_cookie("intake_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    value = cookie.value
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,100}", value), value
    assert "." not in value  # Flask's signed cookie is payload.timestamp.signature
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    # 32 random bytes and the server's 16-byte tag on them, nothing more.
    assert len(decoded) == 48 and b"csrf" not in decoded
    # The raw CSRF secret is derived from the cookie, kept nowhere: opening the
    # form writes no row at all.
    raw = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").loads(token)
    with app.extensions["intake"].db.sessions() as s:
        assert s.scalars(select(WebSession)).all() == []
    # A row is written once there is something to keep (here, the receipt
    # and its codename until the witness confirms it), sealed, with only the
    # day it expires: the codename is not in it in the clear.
    code = codename_of(submit(client, "testimony", token=token).get_data(as_text=True))
    with app.extensions["intake"].db.sessions() as s:
        rows = s.scalars(select(WebSession)).all()
    assert len(rows) == 1
    row = rows[0]
    assert raw.encode() not in row.sealed and b"csrf" not in row.sealed
    assert value not in row.id and value.encode() not in row.sealed
    for word in code.split():
        assert word.encode() not in row.sealed
    assert isinstance(row.expires_day, dt.date) and not isinstance(row.expires_day, dt.datetime)
    # A forged cookie opens an empty session: the form's token no longer matches.
    client.set_cookie("intake_session", value[:-2] + "xx")
    assert_error_page(submit(client, "x", token=token), 400)


# -- all or nothing ------------------------------------------------------------------------

def _fail_on_second_rename(monkeypatch):
    real, calls = os.rename, []

    def rename(src, dst, *args, **kwargs):
        if os.path.basename(src).startswith(TMP_PREFIX):
            calls.append(src)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)


def _fail_sealing_second_envelope(monkeypatch):
    """The second envelope to be closed (uploads and testimony alike) fails."""
    from intake.format.envelope import EnvelopeWriter

    real, closed = EnvelopeWriter.close, []

    def close(self, metadata):
        closed.append(metadata)
        if len(closed) == 2:
            raise OSError(5, "Input/output error")
        return real(self, metadata)

    monkeypatch.setattr(EnvelopeWriter, "close", close)


def _fail_commit_after_placing(monkeypatch):
    """The envelopes are in the store, then the database refuses the commit."""
    from sqlalchemy.orm import Session

    from intake.server.store import Batch

    real_place, real_commit, placed = Batch.place, Session.commit, []

    def place(self):
        real_place(self)
        placed.append(self)

    def commit(self):
        if placed:
            placed.clear()
            raise RuntimeError("database went away")
        return real_commit(self)

    monkeypatch.setattr(Batch, "place", place)
    monkeypatch.setattr(Session, "commit", commit)


@pytest.mark.parametrize(("breaker", "status", "said"), [
    (_fail_sealing_second_envelope, 500, "internal error"),
    (_fail_on_second_rename, 507, "disk full"),  # ENOSPC: its own page
    (_fail_commit_after_placing, 500, "internal error"),
], ids=["seal", "rename", "commit"])
def test_failure_midway_keeps_nothing(app, client, monkeypatch, caplog, breaker, status, said):
    token = csrf_token(client)
    breaker(monkeypatch)
    r = submit(client, "the testimony", [(b"one" * 1000, "one.txt"), (b"two", "two.txt")],
               token=token)
    text = assert_error_page(r, status, "Nothing was kept")
    # The log names the kind of failure, never what the witness sent.
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert said in logged
    for secret in ("the testimony", "one.txt", "two.txt", "127.0.0.1", "Werkzeug/"):
        assert secret not in logged
    assert 'class="codename"' not in text
    assert_secure_headers(r)
    monkeypatch.undo()
    nothing_stored(app)
    # The service still works afterwards.
    assert submit(client, "again").status_code == 200


@pytest.mark.parametrize("size", [400_000, 3 * 1024 * 1024])
def test_disk_full_while_an_upload_arrives_keeps_nothing(app, client, monkeypatch, size):
    """A write that fails while a part arrives ends the request with nothing kept."""
    from intake.server.upload_spool import EnvelopeFile

    real, failed, written = EnvelopeFile.writelines, [], []

    def writelines(self, pieces):  # every write goes through it
        length = sum(map(len, pieces))
        written.append(length)
        if length >= 65536 and sum(written) > size // 2:  # past the envelope's header
            failed.append(length)
            raise OSError(28, "No space left on device")
        return real(self, pieces)

    token = csrf_token(client)
    monkeypatch.setattr(EnvelopeFile, "writelines", writelines)
    body = multipart([("csrf_token", None, token.encode()), ("testimony", None, b"words"),
                      ("files", "big.bin", os.urandom(size))])
    r = post_raw(client, body)  # built in memory: the test client spools nothing
    assert failed
    assert_error_page(r, 507, "Nothing was kept")
    monkeypatch.undo()
    nothing_stored(app)
    assert submit(client, "again").status_code == 200


def test_failed_attempt_leaves_no_time_of_day_on_the_store(app, client, monkeypatch):
    token = csrf_token(client)
    _fail_on_second_rename(monkeypatch)
    submit(client, "the testimony", [(b"file", "one.txt")], token=token)
    monkeypatch.undo()
    assert os.stat(app.extensions["intake"].store.root).st_mtime % 86400 == 0


# -- only days are kept ---------------------------------------------------------------------

def test_tables_hold_days_not_times():
    for table in Base.metadata.tables.values():
        for column in table.columns:
            assert not isinstance(column.type, DateTime | Time | Interval), \
                f"{table.name}.{column.name} keeps a time"
            name = column.name.lower()
            assert not re.search(r"(^|_)(ip|addr|address|agent|ua|user_agent|time|"
                                 r"timestamp|created_at|updated_at)($|_)", name), \
                f"{table.name}.{column.name}"


def test_rows_and_store_files_carry_the_day_only(app, client):
    assert submit(client, "testimony", [(b"a file", "a.txt")]).status_code == 200
    today = dt.datetime.now(dt.UTC).date()
    with app.extensions["intake"].db.sessions() as s:
        items = s.scalars(select(Item)).all()
        submission = s.scalars(select(Submission)).one()
        witness = s.scalars(select(Witness)).one()
    assert len(items) == 2
    days = [i.received_day for i in items] + [submission.received_day, witness.created_day,
                                              witness.last_active_day]
    for day in days:
        assert type(day) is dt.date and day == today
    for column in (Item.received_day, Submission.received_day, Witness.created_day):
        assert isinstance(column.property.columns[0].type, Date)
    store = app.extensions["intake"].store.root
    # The pending folder is made at start: its time is the start's, not a submission's.
    assert list((store / PENDING).iterdir()) == []
    paths = [store, *(p for p in store.iterdir() if p.name != PENDING)]
    assert len(paths) == 3
    for path in paths:
        mtime = dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.UTC)
        assert (mtime.hour, mtime.minute, mtime.second, mtime.microsecond) == (0, 0, 0, 0), path
        assert mtime.date() == today
        # Names are opaque random ids, nothing else.
        if path != store:
            assert re.fullmatch(r"[0-9a-f]{32}\.env", path.name)


def test_envelope_metadata_keeps_the_day_only(app, client, team_key):
    submit(client, "testimony", [(b"a file", "a.txt")])
    for path in envelopes(app):
        with open(path, "rb") as f:
            _content, meta = envelope.open_envelope(f, team_key.private_key)
        flat = json.dumps(meta)
        assert meta["received_day"] == dt.datetime.now(dt.UTC).date().isoformat()
        assert not re.search(r"\d\d:\d\d", flat), flat
        assert "127.0.0.1" not in flat and "werkzeug" not in flat.lower()


def test_static_files_carry_no_time_of_their_file(client):
    page = client.get("/en/").get_data(as_text=True)
    sheet = re.search(r'href="([^"]+\.css)"', page).group(1)
    with client.get(sheet, headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}) as r:
        assert r.status_code == 200
        assert "ETag" not in r.headers and "Last-Modified" not in r.headers


# -- one submission per form: post, redirect, get ------------------------------------------

ONCE = re.compile(r'name="once" value="([^"]+)"')


def _form_fields(client, lang: str = "en") -> dict:
    page = client.get(f"/{lang}/").get_data(as_text=True)
    return {"csrf_token": CSRF.search(page).group(1), "once": ONCE.search(page).group(1),
            "testimony": "what I saw", "keep_original": "y"}


def _counts(app) -> tuple[int, int]:
    with app.extensions["intake"].db.sessions() as s:
        return s.query(Witness).count(), s.query(Submission).count()


def test_the_form_answers_with_a_redirect_and_a_retry_with_the_first(app, client):
    fields = _form_fields(client)
    first = client.post("/en/submit", data=fields, content_type="multipart/form-data")
    assert first.status_code == 303
    assert re.fullmatch(r"/en/receipt/[0-9a-f]{32}", first.headers["Location"])
    again = client.post("/en/submit", data=fields, content_type="multipart/form-data")
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    assert _counts(app) == (1, 1)
    shown = [client.get(first.headers["Location"]).get_data(as_text=True) for _ in range(2)]
    assert codename_of(shown[0]) == codename_of(shown[1])  # a reload: the same receipt
    assert _counts(app) == (1, 1)
    # A new form (a new token) is a new submission.
    client.post("/en/submit", data=_form_fields(client), content_type="multipart/form-data")
    assert _counts(app) == (2, 2)


def test_a_receipt_is_shown_only_to_the_session_that_sent_the_form(app, client):
    sent = client.post("/en/submit", data=_form_fields(client),
                       content_type="multipart/form-data")
    other = app.test_client()
    page = other.get(sent.headers["Location"])
    assert page.status_code == 404 and 'class="codename"' not in page.get_data(as_text=True)


def test_a_retry_while_the_first_is_received_waits_for_its_answer(app, client, monkeypatch):
    """Two requests with one form at once (a retry over a new circuit): one submission."""
    import threading

    from intake.server.witness import submit as submit_module

    real, started = submit_module.receive, threading.Event()

    def slow(*args, **kwargs):
        started.set()
        time.sleep(2)  # still sealing when the retry arrives
        return real(*args, **kwargs)

    monkeypatch.setattr(submit_module, "receive", slow)
    fields = _form_fields(client)
    retry = app.test_client()
    retry.set_cookie("intake_session", client.get_cookie("intake_session").value)
    answers = {}

    def send(name, c):
        answers[name] = c.post("/en/submit", data=dict(fields),
                               content_type="multipart/form-data")

    first = threading.Thread(target=send, args=("first", client))
    first.start()
    assert started.wait(10)
    send("retry", retry)
    first.join(30)
    assert answers["first"].status_code == answers["retry"].status_code == 303
    assert answers["first"].headers["Location"] == answers["retry"].headers["Location"]
    assert _counts(app) == (1, 1)


def test_retries_sent_over_and_over_hold_few_threads(app, client, monkeypatch):
    """Retries of one form whose first is still being received: two wait for
    its answer, the others are answered at once with the "still being
    received" page, so they cannot hold every app thread between them."""
    import threading

    from intake.server.witness import receipts
    from intake.server.witness import submit as submit_module

    real, started, release = submit_module.receive, threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        started.set()
        release.wait(60)  # still sealing while the retries come
        return real(*args, **kwargs)

    monkeypatch.setattr(submit_module, "receive", slow)
    monkeypatch.setattr(receipts, "WAIT_SECONDS", 4)
    fields = _form_fields(client)
    cookie = client.get_cookie("intake_session").value
    first = threading.Thread(target=lambda: client.post(
        "/en/submit", data=dict(fields), content_type="multipart/form-data"))
    first.start()
    assert started.wait(10)
    answers: list[tuple[int, float, str]] = []

    def retry():
        other = app.test_client()
        other.set_cookie("intake_session", cookie)
        began = time.monotonic()
        r = other.post("/en/submit", data=dict(fields), content_type="multipart/form-data")
        answers.append((r.status_code, time.monotonic() - began, r.get_data(as_text=True)))

    retries = [threading.Thread(target=retry) for _ in range(6)]
    for t in retries:
        t.start()
    for t in retries:
        t.join(30)
    release.set()
    first.join(30)
    assert [a[0] for a in answers] == [409] * 6
    assert all("still being received" in a[2] for a in answers)
    quick = [a for a in answers if a[1] < 2]
    assert len(quick) == 6 - receipts.WAITING_AT_ONCE, [round(a[1], 2) for a in answers]
    assert _counts(app) == (1, 1)


def _at_once(app, cookie: str, posts: list[dict], threads: int) -> list:
    """Sends the forms from `threads` threads at once, all with one cookie (the
    tabs of one browser); returns (status, receipt page) for each."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(threads)

    def send(fields):
        other = app.test_client()
        other.set_cookie("intake_session", cookie)
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(5)
        r = other.post("/en/submit", data=dict(fields), content_type="multipart/form-data")
        if r.status_code != 303:
            return r.status_code, r.get_data(as_text=True)
        return 303, other.get(r.headers["Location"]).get_data(as_text=True)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, posts))


@pytest.fixture
def any_db_app(tmp_path, team_key, database_url):
    """The witness app on SQLite and on PostgreSQL."""
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, database_url=database_url))
    yield app
    app.extensions["intake"].close()


def test_two_tabs_of_a_new_session_sending_at_once_are_both_kept_and_answered(any_db_app):
    """A new cookie, no row yet: the tabs' requests both find no row and both
    store one. Neither is refused, and each receipt shows its own codename."""
    app = any_db_app
    for _ in range(6):
        browser = app.test_client()
        forms = [_form_fields(browser), _form_fields(browser)]
        before = _counts(app)
        answers = _at_once(app, browser.get_cookie("intake_session").value, forms, 2)
        assert [a[0] for a in answers] == [303, 303], [a[1][:300] for a in answers]
        codenames = {codename_of(page) for _, page in answers}
        assert len(codenames) == 2
        assert _counts(app) == (before[0] + 2, before[1] + 2)


def test_forms_without_a_token_sent_at_once_are_all_kept_and_answered(any_db_app):
    """Forms without `once` (a page from an older version): every one is
    stored, and none is answered that nothing could be stored."""
    app = any_db_app
    browser = app.test_client()
    fields = {k: v for k, v in _form_fields(browser).items() if k != "once"}
    answers = _at_once(app, browser.get_cookie("intake_session").value, [fields] * 24, 8)
    assert [a[0] for a in answers] == [303] * 24, {a[0] for a in answers}
    assert _counts(app) == (24, 24)


def test_a_form_that_was_refused_can_be_sent_again(app, client):
    fields = {**_form_fields(client), "testimony": "", "keep_original": ""}
    refused = client.post("/en/submit", data=fields, content_type="multipart/form-data")
    assert refused.status_code == 400
    fields["testimony"] = "now with words"
    assert client.post("/en/submit", data=fields,
                       content_type="multipart/form-data").status_code == 303
    assert _counts(app) == (1, 1)


@pytest.mark.parametrize(("lang", "chosen", "letters"), [
    ("en", None, r"[a-z-]+"), ("uk", None, r"[а-яіїєґʼ'-]+"), ("be", None, r"[а-яё-]+"),
    ("uk", "en", r"[a-z-]+"), ("en", "ru", r"[а-яё-]+"),
])
def test_the_witness_chooses_the_words_of_the_codename(app, client, lang, chosen, letters):
    page = client.get(f"/{lang}/").get_data(as_text=True)
    default = {"en": "en", "uk": "uk", "ru": "ru", "be": "ru"}[lang]
    assert re.search(rf'checked[^>]*value="{default}"|value="{default}"[^>]*checked', page)
    fields = {**_form_fields(client, lang), **({"alphabet": chosen} if chosen else {})}
    sent = client.post(f"/{lang}/submit", data=fields, content_type="multipart/form-data")
    words = re.findall(r"<span>([^<]+)</span>",
                       client.get(sent.headers["Location"]).get_data(as_text=True)
                       .split('id="codename"')[1].split("</p>")[0])
    assert len(words) >= 7 and all(re.fullmatch(letters, w) for w in words), words


def test_the_check_keeps_the_codename_on_a_typo_and_drops_it_on_a_match(app, client):
    sent = client.post("/uk/submit", data=_form_fields(client, "uk"),
                       content_type="multipart/form-data")
    where = sent.headers["Location"]
    receipt = client.get(where).get_data(as_text=True)
    assert receipt.count('id="codename"') == 1  # one element has it
    words = re.findall(r"<span>([^<]+)</span>",
                       receipt.split('id="codename"')[1].split("</p>")[0])
    check = re.search(r'action="([^"]+/check)"', receipt).group(1)
    token = CSRF.search(receipt).group(1)
    typo = client.post(check, data={"csrf_token": token, "codename": " ".join(words[:-1])})
    assert typo.status_code == 303 and typo.headers["Location"] == where
    page = client.get(where).get_data(as_text=True)
    assert 'role="alert"' in page and all(w in page for w in words)
    # Typed in capitals, run together, with Latin look-alikes: a match.
    typed = "".join(words).upper().replace("А", "A").replace("О", "O")
    client.post(check, data={"csrf_token": token, "codename": typed})
    page = client.get(where).get_data(as_text=True)
    assert 'id="codename"' not in page and 'role="status"' in page
    with app.extensions["intake"].db.sessions() as s:  # and from the stored session
        assert all(w.encode() not in r.sealed for r in s.query(WebSession) for w in words)


def test_the_form_states_every_limit(tmp_path, team_key):
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=64 * 1024,
                                 max_testimony_chars=1000, max_files=3))
    try:
        for lang, text, size in (("en", "1,000", "64 KiB"), ("uk", "1\u00a0000", "64 КіБ")):
            page = app.test_client().get(f"/{lang}/").get_data(as_text=True)
            limits = page.split('id="limits"')[1].split("</section>")[0]
            assert text in limits and size in limits and "3" in limits, limits
            assert page.count('type="file" name="files"') == 5
            assert 'autocomplete="off"' in page.split("<textarea")[1].split(">")[0]
    finally:
        app.extensions["intake"].close()


@pytest.mark.parametrize(("what", "said", "not_said"), [
    ("text", "1,000 characters", ("64 KiB", "at most 3")),
    ("files", "at most 3", ("1,000", "64 KiB")),
    ("size", "64 KiB", ("1,000", "at most 3")),
])
def test_each_refusal_names_the_one_limit_passed(tmp_path, team_key, what, said, not_said):
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=64 * 1024,
                                 max_testimony_chars=1000, max_files=3))
    client = app.test_client()
    try:
        fields = {"text": ("x" * 1001, []), "files": ("", [(b"note", f"n{i}.txt")
                                                           for i in range(4)]),
                  "size": ("", [(b"x" * 100_000, "big.bin")])}[what]
        page = submit(client, *fields)
        text = page.get_data(as_text=True)
        assert page.status_code in (400, 413) and said in text, text
        for other in not_said:
            assert other not in text
    finally:
        app.extensions["intake"].close()


def test_the_choice_for_an_uncleaned_file_answers_with_a_redirect(client):
    token = csrf_token(client, "/uk/")
    answer = client.post("/uk/original", data={"csrf_token": token, "item": "0" * 32,
                                               "choice": "send"})
    assert answer.status_code == 303 and answer.headers["Location"] == "/uk/original"
    page = client.get("/uk/original").get_data(as_text=True)
    assert 'lang="uk"' in page and "Цей вибір уже недоступний" in page
    assert client.get("/uk/original").get_data(as_text=True) == page  # a reload: the same


def test_a_file_name_with_a_direction_override_is_isolated_on_the_receipt(client):
    """A name's right-to-left override (U+202E) turns only the name around, not
    the words after it: each name is shown in its own <bdi>."""
    name = "evil\u202egpj.exe"
    page = submit(client, "with a file", files=[(b"made-up bytes", name)])
    assert page.status_code == 200
    assert f"<bdi>{name}</bdi>" in page.get_data(as_text=True)
