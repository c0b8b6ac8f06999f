"""A returning witness: codename login, records, replies, follow-ups, throttling."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import pytest
from nacl.public import PublicKey
from support import codename_of, csrf_token, make_config, submit

from intake.format import envelope
from intake.format.reply_bundle import entry_for, iter_reply_bundle
from intake.server import codename
from intake.server.models import Item, Reply, Submission, WebSession, Witness
from intake.server.reply_import import import_replies
from intake.server.store import new_id
from intake.server.witness import create_app


def _intake(app):
    return app.extensions["intake"]


def login(client, code: str):
    return client.post("/en/login", data={"csrf_token": csrf_token(client, "/en/login"),
                                       "codename": code})


def new_witness(client, text="first testimony", files=None) -> str:
    page = submit(client, text, files)
    assert page.status_code == 200, page.text
    return codename_of(page.text)


def seal_reply(app, code: str, text: str) -> tuple[str, str, bytes]:
    intake = _intake(app)
    derived = codename.derive(codename.normalise(code), intake.secrets)
    with intake.db.sessions() as s:
        witness = s.query(Witness).filter_by(lookup_hash=derived.lookup_hash).one()
    out = io.BytesIO()
    envelope.seal(out, [envelope.Recipient(PublicKey(witness.reply_public_key))],
                  [text.encode()], {"format": "intake-reply/1"})
    return new_id(), witness.id, out.getvalue()


def upload_replies(app, replies) -> object:
    data = b"".join(iter_reply_bundle("2026-01-01", [(entry_for(r, w, env), env)
                                                     for r, w, env in replies]))
    return import_replies(_intake(app), io.BytesIO(data))


def test_login_lists_days_and_follow_up_joins_the_same_witness(app, client):
    code = new_witness(client)
    assert login(client, code.upper()).status_code == 303
    page = client.get("/en/account")
    assert page.status_code == 200
    assert "first testimony" not in page.text  # the server cannot read it
    assert re.search(r"Sent on \d{4}-\d{2}-\d{2}", page.text)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    done = client.post("/en/account/add", data={
        "csrf_token": token, "testimony": "more detail", "keep_original": "y",
        "files": [(io.BytesIO(b"photo bytes"), "later.jpg")]},
        content_type="multipart/form-data")
    assert done.status_code == 303  # post, redirect, get
    shown = client.get(done.headers["Location"])
    assert "later.jpg" in shown.text and "stays the same" in shown.text
    assert 'class="codename"' not in shown.text
    with _intake(app).db.sessions() as s:
        subs = s.query(Submission).all()
        assert len(subs) == 2 and len({x.witness_id for x in subs}) == 1
        assert s.query(Item).count() == 3
    assert len(re.findall(r"Sent on", client.get("/en/account").text)) == 2


def test_codename_is_stored_nowhere(app, client, config):
    code = new_witness(client)
    login(client, code)
    client.get("/en/account")
    needles = [code.encode(), code.replace(" ", "").encode(), code.split()[2].encode()
               + b" " + code.split()[3].encode()]
    for path in config.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, path


def test_session_cookie_is_only_an_opaque_id(app, client):
    code = new_witness(client)
    login(client, code)
    cookie = client.get_cookie("intake_session")
    assert cookie is not None
    value = cookie.value
    assert "." not in value and len(value) == 64
    raw = base64.urlsafe_b64decode(value)
    assert len(raw) == 48
    assert b"witness" not in raw  # 32 random bytes and their tag: nothing readable, no JSON
    assert cookie.expires is None  # a browser-session cookie, not a stored one
    with _intake(app).db.sessions() as s:
        rows = s.query(WebSession).all()
    assert rows and all(value not in r.id for r in rows)
    assert all(b"witness" not in r.sealed and b"reply_key" not in r.sealed for r in rows)


@pytest.mark.parametrize("chosen", [
    "attacker-knows-this-token-123",
    # The shape of a real token (48 bytes), with a tag the server did not make.
    base64.urlsafe_b64encode(b"k" * 48).decode(),
])
def test_a_cookie_the_server_did_not_make_is_never_adopted(app, client, chosen):
    """Session fixation: a cookie planted in the witness's browser must not
    lead to what the server keeps for them (here, the receipt's codename)."""
    client.set_cookie("intake_session", chosen)
    token = csrf_token(client, "/en/")
    made = client.get_cookie("intake_session").value
    assert made != chosen and len(made) == 64  # replaced at once, by one of the server's
    sent = client.post("/en/submit", data={"csrf_token": token, "testimony": "victim"},
                       content_type="multipart/form-data")
    assert sent.status_code == 303
    assert client.get_cookie("intake_session").value not in (chosen, "")
    assert 'class="codename"' in client.get(sent.headers["Location"]).text
    attacker = app.test_client()
    attacker.set_cookie("intake_session", chosen)
    page = attacker.get(sent.headers["Location"])
    assert page.status_code == 404 and 'class="codename"' not in page.text
    # Nothing was ever stored under the planted value.
    from intake.server.web.sessions import _ids

    with _intake(app).db.sessions() as s:
        assert s.get(WebSession, _ids(chosen)[0]) is None


def test_a_form_opened_with_a_planted_cookie_is_not_taken_under_it(app, client):
    """The same browser still carrying the planted cookie (it refused ours):
    the form is refused, and nothing is stored under the planted value."""
    client.set_cookie("intake_session", "attacker-knows-this-token-123")
    token = csrf_token(client, "/en/")
    client.set_cookie("intake_session", "attacker-knows-this-token-123")
    sent = client.post("/en/submit", data={"csrf_token": token, "testimony": "victim"},
                       content_type="multipart/form-data")
    assert sent.status_code == 400
    with _intake(app).db.sessions() as s:
        assert s.query(WebSession).count() == 0 and s.query(Submission).count() == 0


def test_reply_is_readable_only_with_its_own_codename(app):
    alice, bob = app.test_client(), app.test_client()
    code_a, code_b = new_witness(alice), new_witness(bob)
    report = upload_replies(app, [seal_reply(app, code_a, "When exactly did it happen?")])
    assert report.added == 1 and not report.rejected
    login(alice, code_a)
    assert "When exactly did it happen?" in alice.get("/en/account").text
    login(bob, code_b)
    assert "When exactly" not in bob.get("/en/account").text


def test_reply_sealed_to_another_witness_is_refused(app):
    a, b = app.test_client(), app.test_client()
    code_a, code_b = new_witness(a), new_witness(b)
    rid, _wid_a, env_for_a = seal_reply(app, code_a, "for a")
    _, wid_b, _ = seal_reply(app, code_b, "x")
    report = upload_replies(app, [(rid, wid_b, env_for_a)])
    assert report.added == 0
    assert report.rejected and "not sealed to this witness" in report.rejected[0][1]


def test_reply_upload_twice_adds_nothing_and_damage_is_named(app):
    c = app.test_client()
    code = new_witness(c)
    reply = seal_reply(app, code, "hello")
    assert upload_replies(app, [reply]).added == 1
    again = upload_replies(app, [reply])
    assert again.added == 0 and again.duplicates == 1
    rid, wid, env = seal_reply(app, code, "second")
    entry = entry_for(rid, wid, env)
    damaged = env[:-1] + bytes([env[-1] ^ 1])
    data = b"".join(iter_reply_bundle("2026-01-01", [(entry, damaged)]))
    report = import_replies(_intake(app), io.BytesIO(data))
    assert report.added == 0 and report.rejected[0][0] == entry.name
    assert "SHA-256" in report.rejected[0][1]


def test_witness_deletes_a_reply(app, client):
    code = new_witness(client)
    rid, wid, env = seal_reply(app, code, "please send the document")
    upload_replies(app, [(rid, wid, env)])
    login(client, code)
    token = csrf_token(client, "/en/login")
    assert client.post(f"/en/account/replies/{rid}/delete",
                       data={"csrf_token": token}).status_code == 303
    assert "please send the document" not in client.get("/en/account").text
    with _intake(app).db.sessions() as s:
        assert s.get(Reply, rid) is None


def test_expired_session_can_no_longer_see_replies(app, client):
    code = new_witness(client)
    upload_replies(app, [seal_reply(app, code, "secret answer")])
    login(client, code)
    intake = _intake(app)
    assert "secret answer" in client.get("/en/account").text
    start = intake.clock()
    intake.clock = lambda: start + intake.config.session_lifetime + 1
    page = client.get("/en/account")
    assert page.status_code == 401
    assert "secret answer" not in page.text
    assert client.get("/en/account").status_code == 303  # the state is gone, not just hidden
    with intake.db.sessions() as s:
        assert s.query(WebSession).count() == 0 or all(
            b"reply_key" not in r.sealed for r in s.query(WebSession).all())


def test_activity_keeps_the_session_alive(app, client):
    code = new_witness(client)
    login(client, code)
    intake = _intake(app)
    start = intake.clock()
    for step in range(1, 4):
        intake.clock = lambda step=step: start + step * (intake.config.session_lifetime - 5)
        assert client.get("/en/account").status_code == 200


def _account_form(client, lang="en") -> dict:
    page = client.get(f"/{lang}/account").get_data(as_text=True)
    return {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                                    page).group(1),
            "once": re.search(r'name="once" value="([^"]+)"', page).group(1)}


@pytest.mark.parametrize(("lang", "said"), [
    ("en", "What you sent was not kept"), ("uk", "Надіслане не збережено"),
    ("ru", "Отправленное не сохранено"), ("be", "Дасланае не захавана"),
])
def test_a_follow_up_written_past_the_session_gives_its_text_back(app, client, lang, said):
    """Written for longer than the session lasts: nothing is kept, the page
    says so, and the text (never the files) comes back to be copied."""
    code = new_witness(client)
    login(client, code)
    fields = _account_form(client, lang)
    intake = _intake(app)
    with intake.db.sessions() as s:
        before = s.query(Submission).count(), s.query(Item).count()
    stored = sorted(p.name for p in (intake.config.data_dir / "store").iterdir())
    start = intake.clock()
    intake.clock = lambda: start + intake.config.session_lifetime + 1
    typed = "What I saw <b>that night</b>\nand after & before"
    page = client.post(f"/{lang}/account/add", data={
        **fields, "testimony": typed, "keep_original": "y",
        "files": [(io.BytesIO(b"photo bytes"), "evidence-photo.jpg")]},
        content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert page.status_code == 401
    assert said in text
    box = re.search(r"<textarea[^>]*>(.*?)</textarea>", text, re.S)
    assert box is not None and "readonly" in box.group(0)
    assert box.group(1) == ("What I saw &lt;b&gt;that night&lt;/b&gt;\nand after &amp; "
                            "before")
    assert "evidence-photo" not in text
    with intake.db.sessions() as s:
        assert (s.query(Submission).count(), s.query(Item).count()) == before
    assert sorted(p.name for p in (intake.config.data_dir / "store").iterdir()) == stored
    assert client.get(f"/{lang}/account").status_code == 303  # and the session is gone


def test_a_session_that_ended_on_a_page_gives_nothing_back(app, client):
    code = new_witness(client)
    login(client, code)
    intake = _intake(app)
    start = intake.clock()
    intake.clock = lambda: start + intake.config.session_lifetime + 1
    page = client.get("/en/account").get_data(as_text=True)
    assert "<textarea" not in page and "was not kept" not in page
    assert "after 30 minutes without activity" in page


@pytest.mark.parametrize(("lang", "said"), [
    ("en", "logged out after 30 minutes without activity"),
    ("uk", "через 30 хвилин без дій"), ("ru", "через 30 минут без действий"),
    ("be", "праз 30 хвілін без дзеянняў"),
])
def test_the_account_page_states_how_long_a_session_lasts(app, client, lang, said):
    login(client, new_witness(client))
    page = client.get(f"/{lang}/account").get_data(as_text=True)
    limit = page.split('id="session-limit"')[1].split("</p>")[0]
    assert said in limit


def test_a_session_is_counted_from_its_last_request(app, client):
    """Sliding: each request moves its end; only a pause longer than
    session_lifetime ends it."""
    login(client, new_witness(client))
    intake = _intake(app)
    start, lifetime = intake.clock(), intake.config.session_lifetime
    for step in range(1, 6):
        intake.clock = lambda step=step: start + step * (lifetime - 1)
        assert client.get("/en/account").status_code == 200
    intake.clock = lambda: start + 5 * (lifetime - 1) + lifetime + 1
    assert client.get("/en/account").status_code == 401


def test_logout_deletes_the_server_side_state(app, client):
    code = new_witness(client)
    login(client, code)
    with _intake(app).db.sessions() as s:
        before = s.query(WebSession).count()
    token = csrf_token(client, "/en/login")
    out = client.post("/en/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"] == "/en/logged-out"
    assert "You are logged out" in client.get("/en/logged-out").text
    with _intake(app).db.sessions() as s:
        assert s.query(WebSession).count() == before - 1
    assert client.get("/en/account").status_code == 303


def test_wrong_codenames_get_byte_identical_pages(app, client):
    new_witness(client)
    short = login(client, "nope")
    full = login(client, " ".join(codename.wordlist("en").words[:7]))
    empty = login(client, "")
    assert short.status_code == full.status_code == empty.status_code == 303
    assert short.data == full.data == empty.data
    # The page it leads to says the codename did not work, never whether it exists.
    assert short.headers["Location"] == "/en/login?failed=1"
    assert "That codename did not work" in client.get(short.headers["Location"]).text
    assert "That codename did not work" not in client.get("/en/login").text


def test_every_login_derives_the_codename(app, client, monkeypatch):
    calls = []
    real = codename.derive
    monkeypatch.setattr(codename, "derive", lambda *a, **k: calls.append(1) or real(*a, **k))
    login(client, "")
    login(client, "x" * 5000)
    assert len(calls) == 2


@pytest.fixture
def strict_app(tmp_path, team_key):
    app = create_app(make_config(tmp_path, team_key.keys_dir, login_attempts_per_codename=3,
                                 login_window=600))
    now = [1000.0]
    app.extensions["intake.login_throttle"].clock = lambda: now[0]
    yield app, now
    _intake(app).close()


def test_per_codename_throttle_and_its_end(strict_app):
    app, now = strict_app
    witness, attacker = app.test_client(), app.test_client()
    code = new_witness(witness)
    wrong = " ".join(codename.wordlist("en").words[10:17])
    for _ in range(3):
        assert login(attacker, wrong).status_code == 303
    blocked = login(attacker, wrong)
    assert blocked.headers["Location"] == "/en/login?wait=10"
    assert "10 minutes" in attacker.get(blocked.headers["Location"]).text
    assert login(witness, code).status_code == 303  # the real witness is not affected
    now[0] += 601
    # counted again after the window
    assert login(attacker, wrong).headers["Location"] == "/en/login?failed=1"


def test_others_failures_never_make_a_witness_wait(strict_app):
    """No global limit: any number of wrong codenames, from anyone, and the
    witness still signs in at once."""
    app, _now = strict_app
    witness, attacker = app.test_client(), app.test_client()
    code = new_witness(witness)
    for i in range(40):
        assert login(attacker, f"guess number {i}").status_code == 303
    assert login(witness, code).headers["Location"] == "/en/account"


def test_receipt_makes_the_codename_hard_to_miss(client):
    page = submit(client, "hello")
    text = page.text
    assert 'class="codename"' in text
    assert "cannot recover" in text
    assert "Check that you wrote it down" in text
    assert re.search(r'action="/en/receipt/[0-9a-f]{32}/check"', text)
    assert 'href="/en/login"' in text  # the way back
    code = codename_of(text)
    assert len(code.split()) >= 7 and all(w in codename.wordlist("en").words for w in code.split())


def test_tor2web_header_is_warned_about(client):
    page = client.get("/en/", headers={"X-Tor2web": "encrypted"})
    assert "not connected directly" in page.text
    assert "not connected directly" not in client.get("/en/").text


def test_rewritten_onion_host_is_warned_about(tmp_path, team_key):
    onion = "a" * 56 + ".onion"
    app = create_app(make_config(tmp_path, team_key.keys_dir, onion_hostname=onion))
    client = app.test_client()
    assert "not connected directly" not in client.get("/en/", headers={"Host": onion}).text
    assert "not connected directly" not in client.get("/en/", headers={"Host": "127.0.0.1:8080"}
                                                      ).text
    proxied = client.get("/en/", headers={"Host": onion.replace(".onion", ".onion.ws")})
    assert "not connected directly" in proxied.text
    _intake(app).close()


def test_a_ukrainian_codename_signs_in_however_it_is_typed(app, client):
    from intake.server.receive import receive

    receipt = receive(_intake(app), "свідчення", [], keep_originals=False, codename_list="uk")
    words = receipt.codename.split()
    assert len(words) == 7 and set(words) <= set(codename.wordlist("uk").words)
    # Run together in capitals, with Latin look-alikes and the Russian keyboard's и for і.
    typed = "".join(words).upper().replace("А", "A").replace("О", "O").replace("І", "И")
    assert login(client, typed).headers["Location"] == "/en/account"
    six = login(app.test_client(), " - ".join(words[:6]))
    assert six.headers["Location"] == "/en/login?failed=1"


def _legacy_witness(app, code: str) -> str:
    """A record as servers made it when codenames were stretched with Argon2id."""
    intake = _intake(app)
    old = codename.derive_argon2id(codename.normalise(code), intake.secrets,
                                   intake.config.kdf_opslimit, intake.config.kdf_memlimit)
    wid = new_id()
    with intake.db.sessions() as s:
        s.add(Witness(id=wid, lookup_hash=old.lookup_hash, derivation=codename.ARGON2ID,
                      reply_public_key=bytes(old.reply_public_key),
                      created_day=dt.date.today(), last_active_day=dt.date.today()))
        s.commit()
    return wid


def test_new_records_use_the_keyed_hash_and_older_ones_still_sign_in(app, client,
                                                                      monkeypatch):
    code = new_witness(client)
    with _intake(app).db.sessions() as s:
        assert [w.derivation for w in s.query(Witness)] == [codename.KEYED_BLAKE2B]
    old_code = codename.generate("uk")
    _legacy_witness(app, old_code)
    # The older record's reply was sealed to its Argon2id reply key: it reads.
    intake = _intake(app)
    old = codename.derive_argon2id(codename.normalise(old_code), intake.secrets,
                                   intake.config.kdf_opslimit, intake.config.kdf_memlimit)
    with intake.db.sessions() as s:
        wid = s.query(Witness).filter_by(lookup_hash=old.lookup_hash).one().id
    out = io.BytesIO()
    envelope.seal(out, [envelope.Recipient(old.reply_public_key)], [b"an older answer"],
                  {"format": "intake-reply/1"})
    report = upload_replies(app, [(new_id(), wid, out.getvalue())])
    assert report.added == 1
    reader = app.test_client()
    assert login(reader, old_code.upper()).headers["Location"] == "/en/account"
    assert "an older answer" in reader.get("/en/account").text
    # A new record signs in without Argon2id.
    slow = []
    real = codename.derive_argon2id
    monkeypatch.setattr(codename, "derive_argon2id",
                        lambda *a, **k: slow.append(1) or real(*a, **k))
    assert login(app.test_client(), code).headers["Location"] == "/en/account"
    assert slow == []


def test_argon2id_stops_once_no_older_record_remains(app, client, monkeypatch):
    old_code = codename.generate("en")
    wid = _legacy_witness(app, old_code)
    slow = []
    real = codename.derive_argon2id
    monkeypatch.setattr(codename, "derive_argon2id",
                        lambda *a, **k: slow.append(1) or real(*a, **k))
    assert "failed=1" in login(client, "no such codename").headers["Location"]
    assert slow == [1]  # a wrong codename is tried against the older records too
    with _intake(app).db.sessions() as s:
        s.query(Witness).filter_by(id=wid).delete()
        s.commit()
    assert "failed=1" in login(client, "no such codename").headers["Location"]
    assert "failed=1" in login(client, old_code).headers["Location"]
    assert slow == [1]


def test_a_reply_bundle_whose_manifest_nests_too_deeply_is_refused_whole(app):
    """The reply bundle crosses from the workstation on a stick: its manifest is
    read as hostile, and JSON nested past the parser's depth is damage, not a crash."""
    import tarfile

    from intake.format.bundle import BundleError

    raw = b'{"format": "intake-replies/1", "replies": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    out.seek(0)
    with pytest.raises(BundleError, match="manifest is damaged"):
        import_replies(_intake(app), out)
