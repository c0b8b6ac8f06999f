"""The staff app: accounts with password and TOTP, the queue, downloads,
reply uploads, deletion with confirmation, and the audit log."""

from __future__ import annotations

import io
import re
import tarfile

import pyotp
import pytest
from click.testing import CliRunner
from support import codename_of, submit

from intake.cli import main
from intake.server.models import AuditEntry, Item, StaffUser
from intake.server.staff import create_staff_app
from intake.server.staff.accounts import AccountError, add, forget_used_codes
from intake.server.tidy import tidy
from intake.workstation.decrypt import decrypt_bundle

PASSWORD = "seven long words for the staff member"


@pytest.fixture
def staff_app(config, app):
    staff = create_staff_app(config)
    now = [1_800_000_000.0]
    staff.extensions["intake"].clock = lambda: now[0]
    staff.now = now
    yield staff
    staff.extensions["intake"].close()


def make_account(staff_app, name="ana", admin=False) -> pyotp.TOTP:
    intake = staff_app.extensions["intake"]
    account = add(intake.db, name, PASSWORD, 1, 8192, admin=admin)
    return pyotp.TOTP(account.totp_secret)


def token(client, path="/login") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def staff_login(staff_app, client, totp, name="ana", password=PASSWORD, code=None,
                offset_steps=0):
    now = staff_app.now[0]
    code = code if code is not None else totp.at(now + 30 * offset_steps)
    return client.post("/login", data={"csrf_token": token(client), "name": name,
                                       "password": password, "code": code})


def test_staff_add_on_the_console(config, tmp_path, monkeypatch):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    env = {"INTAKE_DATA_DIR": str(config.data_dir), "INTAKE_KEYS_DIR": str(config.keys_dir),
           "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192"}
    result = CliRunner().invoke(main, ["staff", "add", "ana", "--admin",
                                       "--password-file", str(pw)], env=env)
    assert result.exit_code == 0, result.output
    assert re.search(r"TOTP secret: [A-Z2-7]{32}", result.output)
    assert "otpauth://totp/" in result.output
    again = CliRunner().invoke(main, ["staff", "add", "ana", "--password-file", str(pw)],
                               env=env)
    assert again.exit_code != 0 and "exists already" in again.output
    short = tmp_path / "short"
    short.write_text("short\n")
    weak = CliRunner().invoke(main, ["staff", "add", "bo", "--password-file", str(short)],
                              env=env)
    assert weak.exit_code != 0 and "at least 12" in weak.output


def test_password_is_stored_as_argon2id(staff_app):
    make_account(staff_app)
    with staff_app.extensions["intake"].db.sessions() as s:
        user = s.query(StaffUser).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_pages_refuse_without_login(staff_app):
    client = staff_app.test_client()
    for path in ("/", "/replies", "/audit"):
        page = client.get(path)
        assert page.status_code == 302 and page.location.endswith("/login")


def test_login_needs_password_and_totp(staff_app):
    totp = make_account(staff_app)
    client = staff_app.test_client()
    assert staff_login(staff_app, client, totp, code="").status_code == 403
    assert staff_login(staff_app, client, totp, code="000000" if totp.at(
        staff_app.now[0]) != "000000" else "111111").status_code == 403
    assert staff_login(staff_app, client, totp, password="wrong password!").status_code == 403
    assert staff_login(staff_app, client, totp, name="nobody").status_code == 403
    assert client.get("/").status_code == 302
    assert staff_login(staff_app, client, totp).status_code == 302
    assert client.get("/").status_code == 200


def test_failure_pages_do_not_tell_which_part_was_wrong(staff_app):
    totp = make_account(staff_app)
    pages = [staff_login(staff_app, staff_app.test_client(), totp, **kw).data
             for kw in ({"name": "nobody"}, {"password": "wrong password!"}, {"code": "123"})]
    strip = [re.sub(rb'name="csrf_token" value="[^"]+"', b"", p) for p in pages]
    assert strip[0] == strip[1] == strip[2]


def test_reused_totp_code_is_refused(staff_app):
    totp = make_account(staff_app)
    first, second = staff_app.test_client(), staff_app.test_client()
    assert staff_login(staff_app, first, totp).status_code == 302
    assert staff_login(staff_app, second, totp).status_code == 403


def test_the_last_code_used_is_forgotten_once_it_could_not_be_used_again(staff_app, config):
    """It dates the last login to the half minute; the hourly pass puts it
    back to 0 once no code at or before it can be valid, and a code used
    within its window is still refused."""
    totp = make_account(staff_app)
    db = staff_app.extensions["intake"].db
    now = staff_app.now[0]
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 302

    def last() -> int:
        with db.sessions() as s:
            return s.query(StaffUser).one().last_totp_counter

    assert last() == int(now) // 30
    assert forget_used_codes(db, now + 30) == 0 and last() == int(now) // 30
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 403
    staff_app.now[0] = now + 90
    assert tidy(config, now + 90).codes_forgotten == 1 and last() == int(now + 90) // 30 - 2
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 302


@pytest.mark.parametrize("back", [30, 60, 3600])
def test_a_used_code_stays_refused_when_the_clock_steps_back_after_the_pass(
        staff_app, config, back):
    """The hourly pass must not bring a used code back: once it has
    forgotten the code, a clock stepped back (a correction by NTP, a host
    resumed) makes that code valid again."""
    totp = make_account(staff_app)
    now = staff_app.now[0]
    code = totp.at(now)
    assert staff_login(staff_app, staff_app.test_client(), totp, code=code).status_code == 302
    tidy(config, now + 60)
    staff_app.now[0] = now + 60 - back
    assert staff_login(staff_app, staff_app.test_client(), totp, code=code).status_code == 403


def test_the_pass_leaves_every_idle_account_the_same_last_code(staff_app, config):
    """What the pass leaves tells nothing of each account: the same value for
    one that logged in and one that never did."""
    db = staff_app.extensions["intake"].db
    totp = make_account(staff_app)
    make_account(staff_app, name="bo")
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 302
    tidy(config, staff_app.now[0] + 3600)
    with db.sessions() as s:
        assert len({u.last_totp_counter for u in s.query(StaffUser)}) == 1


def test_staff_names_that_would_pass_for_another_are_refused(staff_app):
    """One account per name as people read it: the same letters in another
    form (full-width, decomposed, another case) are that name, and a name
    mixing alphabets (a Cyrillic а in "alice") is refused."""
    db = staff_app.extensions["intake"].db
    add(db, "alice", PASSWORD, 1, 8192)
    for name, says in (("\u0430lice", "one alphabet"), ("\uff41\uff4c\uff49\uff43\uff45", "exists"),
                       ("Alice", "would pass for it")):
        with pytest.raises(AccountError, match=says):
            add(db, name, PASSWORD, 1, 8192)
    add(db, "олена", PASSWORD, 1, 8192)
    # Japanese is written in kanji and both kana at once, Korean in hanja and
    # hangul: one name each; a Latin letter among them is still refused.
    add(db, "山田たろウ", PASSWORD, 1, 8192)
    add(db, "金민준", PASSWORD, 1, 8192)
    with pytest.raises(AccountError, match="one alphabet"):
        add(db, "山田taro", PASSWORD, 1, 8192)
    totp = pyotp.TOTP(add(db, "jos\u00e9", PASSWORD, 1, 8192).totp_secret)
    # A name typed in decomposed form (e + combining acute) is the same name.
    assert staff_login(staff_app, staff_app.test_client(), totp,
                       name="jose\u0301").status_code == 302
    with db.sessions() as s:
        assert sorted(u.name for u in s.query(StaffUser)) == ["alice", "jos\u00e9", "олена",
                                                              "山田たろウ", "金민준"]


def test_a_name_that_would_pass_for_an_account_made_before_nfkc_is_refused(staff_app):
    """An account made before names were stored in NFKC may hold a full-width
    name: `alice` beside it would pass for it, and is refused too; the old
    account still logs in, and is removed, by the name it has."""
    from intake.server.staff.accounts import hash_password, remove

    db = staff_app.extensions["intake"].db
    old = "\uff41\uff4c\uff49\uff43\uff45"  # ａｌｉｃｅ
    secret = pyotp.random_base32()
    with db.sessions() as s:
        s.add(StaffUser(name=old, password_hash=hash_password(PASSWORD, 1, 8192),
                        totp_secret=secret, last_totp_counter=0, is_admin=False))
        s.commit()
    for name in ("alice", "Alice"):
        with pytest.raises(AccountError, match="would pass for it"):
            add(db, name, PASSWORD, 1, 8192)
    assert staff_login(staff_app, staff_app.test_client(), pyotp.TOTP(secret),
                       name=old).status_code == 302
    remove(db, old)
    with db.sessions() as s:
        assert s.query(StaffUser).count() == 0


def test_a_password_file_with_a_blank_line_first_is_refused(config, tmp_path):
    """The file is read whole: a blank line first would make a password with
    a line break in it, which no browser can type."""
    pw = tmp_path / "pw"
    pw.write_text("\n" + PASSWORD + "\n")
    env = {"INTAKE_DATA_DIR": str(config.data_dir), "INTAKE_KEYS_DIR": str(config.keys_dir),
           "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192"}
    result = CliRunner().invoke(main, ["staff", "add", "ana", "--password-file", str(pw)],
                                env=env)
    assert result.exit_code != 0 and "blank line" in result.output
    assert "TOTP secret" not in result.output


def test_totp_accepts_one_step_either_side_only(staff_app):
    totp = make_account(staff_app)
    assert staff_login(staff_app, staff_app.test_client(), totp,
                       offset_steps=-2).status_code == 403
    assert staff_login(staff_app, staff_app.test_client(), totp,
                       offset_steps=-1).status_code == 302
    assert staff_login(staff_app, staff_app.test_client(), totp,
                       offset_steps=1).status_code == 302


def test_strangers_cannot_lock_an_account(staff_app):
    """Wrong passwords, however many, from anyone: the owner still logs in."""
    totp = make_account(staff_app)
    for _ in range(30):
        assert staff_login(staff_app, staff_app.test_client(), totp,
                           password="wrong password!").status_code == 403
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 302


def test_wrong_codes_after_the_right_password_lock_until_unlocked(staff_app, config,
                                                                  monkeypatch):
    totp = make_account(staff_app)
    for _ in range(5):
        failed = staff_login(staff_app, staff_app.test_client(), totp, code="000000")
        assert failed.status_code == 403
    locked = staff_login(staff_app, staff_app.test_client(), totp)
    # The same page as any failure: a guesser learns nothing about the password.
    assert locked.status_code == 403 and "locked until tomorrow" in locked.text
    monkeypatch.setenv("INTAKE_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("INTAKE_KEYS_DIR", str(config.keys_dir))
    result = CliRunner().invoke(main, ["staff", "unlock", "ana"])
    assert result.exit_code == 0 and "unlocked" in result.output
    staff_app.now[0] += 30  # a fresh code: the one refused while locked is not spent
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 302


def test_one_code_used_by_two_logins_at_once_lets_in_one(staff_app):
    import threading

    totp = make_account(staff_app)
    start, answers = threading.Barrier(4), []

    def attempt():
        client = staff_app.test_client()
        form = token(client)
        start.wait()
        answers.append(client.post("/login", data={
            "csrf_token": form, "name": "ana", "password": PASSWORD,
            "code": totp.at(staff_app.now[0])}).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [302, 403, 403, 403]


def test_staff_remove_on_the_console(staff_app, config, monkeypatch):
    totp = make_account(staff_app)
    client = staff_app.test_client()
    assert staff_login(staff_app, client, totp).status_code == 302
    monkeypatch.setenv("INTAKE_DATA_DIR", str(config.data_dir))
    monkeypatch.setenv("INTAKE_KEYS_DIR", str(config.keys_dir))
    result = CliRunner().invoke(main, ["staff", "remove", "ana"])
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302  # its session ends with it
    staff_app.now[0] += 30
    assert staff_login(staff_app, staff_app.test_client(), totp).status_code == 403
    assert CliRunner().invoke(main, ["staff", "remove", "ana"]).exit_code != 0


def test_a_removed_accounts_session_does_not_pass_to_the_next_account(staff_app):
    """SQLite gives a removed account's id to the next one made: the old
    session must end, not carry on as the new account (an admin, here)."""
    from intake.server.staff.accounts import remove

    totp = make_account(staff_app, "bob")
    client = staff_app.test_client()
    assert staff_login(staff_app, client, totp, name="bob").status_code == 302
    assert client.get("/audit").status_code == 403
    intake = staff_app.extensions["intake"]
    with intake.db.sessions() as s:
        old_id = s.query(StaffUser).one().id
    remove(intake.db, "bob")
    make_account(staff_app, "carol", admin=True)
    with intake.db.sessions() as s:
        assert s.query(StaffUser).one().id == old_id  # the id was given again
    page = client.get("/audit")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert client.get("/").status_code == 302
    # The same name made again is a new account too.
    remove(intake.db, "carol")
    totp = make_account(staff_app, "dan")
    fresh = staff_app.test_client()
    staff_app.now[0] += 30
    assert staff_login(staff_app, fresh, totp, name="dan").status_code == 302
    remove(intake.db, "dan")
    make_account(staff_app, "dan")
    assert fresh.get("/").status_code == 302


def test_queue_download_is_a_bundle_that_decrypts(staff_app, app, team_key, tmp_path):
    witness = app.test_client()
    submit(witness, "testimony one", [(b"file bytes", "a.txt")])
    submit(app.test_client(), "another witness")
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    queue = client.get("/")
    assert "2 new items" in queue.text and "1 new item" in queue.text
    resp = client.post("/download", data={"csrf_token": token(client, "/")})
    assert resp.status_code == 200 and resp.is_streamed
    bundle = tmp_path / "b.tar"
    bundle.write_bytes(resp.get_data())
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json" and len(names) == 4
    report = decrypt_bundle(bundle, team_key.private_key, tmp_path / "out")
    assert len(report.decrypted) == 3 and not report.damaged
    with staff_app.extensions["intake"].db.sessions() as s:
        assert {i.state for i in s.query(Item)} == {"exported"}
    assert "downloaded on" in client.get("/").text
    again = client.post("/download", data={"csrf_token": token(client, "/")})
    assert again.status_code == 400 and "nothing new" in again.text


def test_download_selected_items_only(staff_app, app):
    submit(app.test_client(), "one", [(b"x", "x.txt")])
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    with staff_app.extensions["intake"].db.sessions() as s:
        first = s.query(Item).filter_by(kind="file").one().id
    resp = client.post("/download", data={"csrf_token": token(client, "/"), "item": [first]})
    with tarfile.open(fileobj=io.BytesIO(resp.get_data())) as tar:
        assert tar.getnames() == ["manifest.json", f"envelopes/{first}.env"]
    with staff_app.extensions["intake"].db.sessions() as s:
        assert s.get(Item, first).state == "exported"
        assert s.query(Item).filter_by(state="waiting").count() == 1


def test_reply_upload_reaches_the_witness(staff_app, app):
    from test_returning import login, seal_reply

    from intake.format.reply_bundle import entry_for, iter_reply_bundle

    witness = app.test_client()
    code = codename_of(submit(witness, "hello").text)
    rid, wid, env = seal_reply(app, code, "Can you send the document?")
    data = b"".join(iter_reply_bundle("2026-01-01", [(entry_for(rid, wid, env), env)]))
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    page = _upload_replies(client, data)
    assert page.status_code == 200 and "1 added" in page.text
    bad = _upload_replies(client, b"not a tar", "x.tar")
    assert bad.status_code == 400 and "not a sound reply bundle" in bad.text
    login(witness, code)
    assert "Can you send the document?" in witness.get("/en/account").text


def _upload_replies(client, data: bytes, name: str = "replies.tar"):
    return client.post("/replies", data={"csrf_token": token(client, "/replies"),
                                         "bundle": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _reply_tar(manifest: dict, members: list[tuple[str, bytes]] = ()) -> bytes:
    import json

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), *members]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(("change", "says"), [
    ({"reply_id": 5}, "manifest is damaged (reply 1)"),
    ({"witness_id": ["a" * 32]}, "manifest is damaged (reply 1)"),
    ({"reply_id": "a" * 32 + "\n"}, "manifest is damaged (reply 1)"),
    ({"size": "12"}, "manifest is damaged (reply 1)"),
    ({"size": True}, "manifest is damaged (reply 1)"),
    ({"sha256": "Z" * 64}, "manifest is damaged (reply 1)"),
    (None, "is listed twice"),
    ("many", "lists more than"),
])
def test_a_reply_bundle_whose_manifest_is_not_as_written_is_refused_whole(
        staff_app, change, says, monkeypatch):
    """Not a 500, not a reply dropped in silence: the manifest is checked as
    the workstation writes it, and one that is not is refused with the reason."""
    from intake.format import reply_bundle
    from intake.format.reply_bundle import FORMAT

    most = 5
    monkeypatch.setattr(reply_bundle, "MAX_REPLIES", most)  # the bound, on a small bundle

    listing = {"reply_id": "b" * 32, "witness_id": "c" * 32, "size": 100,
               "sha256": "d" * 64, "name": f"replies/{'b' * 32}.env"}
    replies = [listing]
    if change is None:
        replies = [listing, {**listing, "witness_id": "e" * 32}]
    elif change == "many":
        replies = [{**listing, "reply_id": f"{n:032x}", "name": f"replies/{n:032x}.env"}
                   for n in range(most + 1)]
    else:
        replies = [{**listing, **change}]
    data = _reply_tar({"format": FORMAT, "day": "2026-01-01", "replies": replies},
                      [(f"replies/{'b' * 32}.env", b"x" * 100)])
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    page = _upload_replies(client, data)
    assert page.status_code == 400, page.text
    assert says in page.text


def test_delete_needs_confirmation_and_a_download_first(staff_app, app):
    submit(app.test_client(), "to delete")
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    intake = staff_app.extensions["intake"]
    with intake.db.sessions() as s:
        item_id = s.query(Item).one().id
    early = client.post("/delete", data={"csrf_token": token(client, "/"), "item": [item_id]})
    assert early.status_code == 400 and "downloaded" in early.text
    client.post("/download", data={"csrf_token": token(client, "/")}).get_data()
    ask = client.post("/delete", data={"csrf_token": token(client, "/"), "item": [item_id]})
    assert ask.status_code == 200 and "Yes, delete them" in ask.text
    assert intake.store.path_for(item_id).exists()
    done = client.post("/delete", data={"csrf_token": token(client, "/"), "item": [item_id],
                                        "confirm": "yes"})
    assert done.status_code == 302
    assert not intake.store.path_for(item_id).exists()
    with intake.db.sessions() as s:
        assert s.get(Item, item_id) is None


def test_audit_log_records_actions_without_content_for_admins_only(staff_app, app):
    submit(app.test_client(), "secret testimony text", [(b"x", "secret-name.txt")])
    admin_totp = make_account(staff_app, "boss", admin=True)
    totp = make_account(staff_app, "ana")
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    client.post("/download", data={"csrf_token": token(client, "/")}).get_data()
    assert client.get("/audit").status_code == 403
    boss = staff_app.test_client()
    staff_login(staff_app, boss, admin_totp, name="boss")
    page = boss.get("/audit")
    assert page.status_code == 200
    assert "download" in page.text and "ana" in page.text
    with staff_app.extensions["intake"].db.sessions() as s:
        entries = s.query(AuditEntry).all()
    assert {e.action for e in entries} >= {"login", "download"}
    for e in entries:
        assert "secret" not in e.detail
        assert not hasattr(e, "time")


def test_staff_session_expires(staff_app):
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    assert client.get("/").status_code == 200
    staff_app.now[0] += staff_app.extensions["intake"].config.session_lifetime + 1
    assert client.get("/").status_code == 302


def test_staff_pages_carry_the_security_headers(staff_app):
    page = staff_app.test_client().get("/login")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in page.text


def test_no_static_file_tells_its_time_by_a_conditional_request(staff_app):
    """If-Modified-Since just after a file's time got 304, just before it 200:
    a client could find the time to the second. No condition is honoured."""
    client = staff_app.test_client()
    for path in ("/staff-static/staff.css", "/static/style.css"):
        for header in ({"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
                       {"If-None-Match": "*"},
                       {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}):
            with client.get(path, headers=header) as response:
                assert response.status_code == 200, (path, header)
                assert "Last-Modified" not in response.headers


def _staff_error(page, status: int, words: str) -> None:
    """A staff error page: its status, the staff template and wording, none
    of the witness pages' advice, the strict headers."""
    assert page.status_code == status
    assert words in page.text and "Back to the queue" in page.text
    assert "Tor Browser" not in page.text and "Nothing was kept" not in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_staff_error_pages_speak_to_staff(staff_app, monkeypatch):
    from intake.server.front import FRONT_ERROR
    from intake.server.staff import views

    client = staff_app.test_client()
    _staff_error(client.get("/nowhere"), 404, "There is no page at this address.")
    _staff_error(client.post("/login", data={"name": "ana"}), 400, "Open it again from the "
                 "staff pages")
    _staff_error(client.get("/login", environ_base={FRONT_ERROR: "413"}), 413,
                 "A reply bundle can be at most 64 MiB")
    ukrainian = client.get("/nowhere", headers={"Accept-Language": "uk"})
    assert ukrainian.status_code == 404 and "Сторінку не знайдено" in ukrainian.text

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "render_template", broken)
    staff_app.config["PROPAGATE_EXCEPTIONS"] = False
    _staff_error(client.get("/login"), 500, "What you asked may not have been done")


def test_queue_names_item_kinds_in_the_pages_language(staff_app, app):
    submit(app.test_client(), "testimony one", [(b"file bytes", "a.txt")])
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    english = client.get("/").text
    assert "<td>testimony</td>" in english and "<td>file</td>" in english
    ukrainian = client.get("/?lang=uk").text
    assert "<td>свідчення</td>" in ukrainian and "<td>файл</td>" in ukrainian


def _session_rows(staff_app) -> int:
    from intake.server.models import WebSession
    with staff_app.extensions["intake"].db.sessions() as s:
        return s.query(WebSession).count()


def test_a_language_chosen_before_login_is_carried_by_the_address(staff_app):
    """No session row for a choice alone (nor for a static file): the login
    page carries it in its address and its form, and the login keeps it."""
    totp = make_account(staff_app)
    client = staff_app.test_client()
    for path in ("/static/style.css?lang=ru", "/staff-static/staff.css?lang=ru"):
        with client.get(path) as response:
            assert response.status_code == 200
    page = client.get("/login?lang=uk")
    assert 'lang="uk"' in page.text and 'action="/login?lang=uk"' in page.text
    assert _session_rows(staff_app) == 0
    wrong = client.post("/login?lang=uk", data={"csrf_token": token(client, "/login?lang=uk"),
                                                "name": "ana", "password": "wrong",
                                                "code": "000000"})
    assert wrong.status_code == 403 and 'lang="uk"' in wrong.text
    assert _session_rows(staff_app) == 0
    answer = client.post("/login?lang=uk", data={
        "csrf_token": token(client, "/login?lang=uk"), "name": "ana", "password": PASSWORD,
        "code": totp.at(staff_app.now[0])})
    assert answer.status_code == 302
    assert 'lang="uk"' in client.get("/").text  # kept in the session the login made
    assert 'lang="ru"' in client.get("/?lang=ru").text
    assert 'lang="ru"' in client.get("/").text  # a session to keep it in: kept
    # Sent to the login page without a session, the choice goes along.
    other = staff_app.test_client()
    assert other.get("/?lang=be").headers["Location"] == "/login?lang=be"


def _many_items(staff_app, n: int) -> dict[str, list[str]]:
    """`n` queue rows from three witnesses, written straight into the database
    (only the page is under test here): witness id -> its item ids."""
    import datetime as dt
    import secrets

    from intake.server.models import Submission, Witness

    out: dict[str, list[str]] = {}
    with staff_app.extensions["intake"].db.sessions() as s:
        witnesses = []
        for _ in range(3):
            w = Witness(id=secrets.token_hex(16), lookup_hash=secrets.token_hex(32),
                        reply_public_key=secrets.token_bytes(32),
                        created_day=dt.date(2026, 1, 1), last_active_day=dt.date(2026, 1, 1))
            s.add(w)
            witnesses.append(w.id)
        s.flush()
        for i in range(n):
            witness_id = witnesses[i % 3]
            sub = Submission(id=secrets.token_hex(16), witness_id=witness_id,
                             received_day=dt.date(2026, 1, 1) + dt.timedelta(days=i % 40))
            s.add(sub)
            s.flush()
            item = Item(id=secrets.token_hex(16), submission_id=sub.id,
                        kind=("testimony", "file")[i % 2], size=1000 + i, sha256="0" * 64,
                        received_day=sub.received_day,
                        state="exported" if i % 5 == 0 else "waiting",
                        exported_day=dt.date(2026, 3, 1) if i % 5 == 0 else None)
            s.add(item)
            out.setdefault(witness_id, []).append(item.id)
        s.commit()
    return out


def test_the_queue_is_paged_with_counts_and_keeps_its_filters(staff_app):
    from html import unescape
    from urllib.parse import parse_qs, urlparse

    made = _many_items(staff_app, 130)
    totp = make_account(staff_app)
    client = staff_app.test_client()
    staff_login(staff_app, client, totp)
    first = client.get("/").text
    assert "104 new items, 26 downloaded." in first
    assert "130 items: 1 to 50 shown, page 1 of 3" in first
    assert len(re.findall(r'name="item" value="', first)) == 50

    def walk(url):
        seen, days = [], []
        while url:
            page = client.get(url).text
            seen += re.findall(r'name="item" value="([0-9a-f]{32})"', page)
            days += re.findall(r"<td>(\d{4}-\d\d-\d\d)</td>", page)
            nxt = re.search(r'<a href="([^"]+)" rel="next">', page)
            url = unescape(nxt.group(1)) if nxt else ""
        return seen, days

    seen, days = walk("/?state=waiting&kind=file&sort=newest")
    assert len(seen) == len(set(seen)) == 52
    assert days == sorted(days, reverse=True)
    page = client.get("/?state=waiting&kind=file&sort=newest").text
    nxt = unescape(re.search(r'<a href="([^"]+)" rel="next">', page).group(1))
    assert parse_qs(urlparse(nxt).query) == {"state": ["waiting"], "kind": ["file"],
                                             "sort": ["newest"], "page": ["2"]}
    witness_id, items = next(iter(made.items()))
    seen, _ = walk(f"/?witness={witness_id}")
    assert sorted(seen) == sorted(items)
    assert "No item matches." in client.get("/?day_from=2030-01-01").text
    assert "page 3 of 3" in client.get("/?page=99").text  # past the end: the last page
    assert client.get("/?state=<script>&sort=x&day_to=never").status_code == 200
