"""Resumable uploads (tus 1.0 under /uploads/): the protocol, its hostile
inputs, the join into a submission, and the sweep of abandoned uploads."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
import time

import pytest
from support import codename_of, csrf_token, submit

from intake.format import envelope
from intake.server import resumable
from intake.server.models import Item
from intake.server.resumable import Partials
from intake.server.store import today
from intake.server.tidy import tidy
from intake.server.witness.uploads import PARTIALS

TUS = {"Tus-Resumable": "1.0.0"}
PIECE = {"Content-Type": "application/offset+octet-stream"}


def create(client, length: int, name: str = "film.mp4", token: str | None = None,
           **headers):
    token = csrf_token(client) if token is None else token
    meta = "filename " + base64.b64encode(name.encode()).decode()
    return client.post("/uploads/", headers={**TUS, "Upload-Length": str(length),
                                             "Upload-Metadata": meta,
                                             "X-CSRFToken": token, **headers})


def patch(client, url: str, offset, data: bytes, **headers):
    return client.patch(url, data=data, headers={**TUS, **PIECE,
                                                 "Upload-Offset": str(offset), **headers})


def head(client, url: str):
    return client.head(url, headers=TUS)


def upload(client, data: bytes, piece: int = 100_000, name: str = "film.mp4") -> str:
    made = create(client, len(data), name)
    assert made.status_code == 201, made.get_data(as_text=True)
    url = made.headers["Location"]
    for start in range(0, len(data), piece):
        done = patch(client, url, start, data[start:start + piece])
        assert done.status_code == 204
        assert done.headers["Upload-Offset"] == str(min(len(data), start + piece))
    return url


def upload_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def send_form(client, ids: list[str], testimony: str = "what I saw",
              path: str = "/en/submit"):
    # A form that is taken answers with a redirect to its receipt, which is followed.
    return client.post(path, data={"csrf_token": csrf_token(client), "testimony": testimony,
                                   "keep_original": "y", "upload": ids},
                       content_type="multipart/form-data", follow_redirects=True)


def partials_root(app):
    return app.extensions[PARTIALS].root


def stored_files(app, team_key) -> list[tuple[bytes, dict]]:
    intake = app.extensions["intake"]
    out = []
    with intake.db.sessions() as s:
        items = s.query(Item).all()
    for item in items:
        with intake.store.open(item.id) as f:
            out.append(envelope.open_envelope(f, team_key.private_key))
    return out


# -- the whole way ------------------------------------------------------------------

def test_pieces_join_into_one_submission_that_decrypts_to_the_same_bytes(app, client,
                                                                         team_key):
    data = os.urandom(350_000)
    url = upload(client, data, name="відео.mp4")
    answer = head(client, url)
    assert answer.status_code == 200
    assert answer.headers["Upload-Offset"] == answer.headers["Upload-Length"] == "350000"
    assert "Upload-Expires" in answer.headers and answer.headers["Tus-Resumable"] == "1.0.0"
    # What waits on disk is ciphertext only: no run of the file's bytes, nor its name.
    folder = partials_root(app) / upload_id(url)
    for path in folder.iterdir():
        raw = path.read_bytes()
        assert data[1000:1032] not in raw and "відео".encode() not in raw
    receipt = send_form(client, [upload_id(url)])
    assert receipt.status_code == 200, receipt.get_data(as_text=True)
    assert codename_of(receipt.get_data(as_text=True))
    files = [(c, m) for c, m in stored_files(app, team_key) if m["kind"] != "testimony"]
    assert [(c, m["original_name"]) for c, m in files] == [(data, "відео.mp4")]
    assert not folder.exists()  # joined: the pieces are gone
    # The form cannot be sent twice with the same upload.
    again = send_form(client, [upload_id(url)])
    assert again.status_code == 400
    assert len([m for _c, m in stored_files(app, team_key) if m["kind"] != "testimony"]) == 1


def test_options_names_version_extensions_and_the_limit(client, config):
    answer = client.options("/uploads/")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert set(answer.headers["Tus-Extension"].split(",")) == {
        "creation", "expiration", "termination"}
    assert answer.headers["Tus-Max-Size"] == str(config.max_upload)


def test_follow_up_takes_pieces_too(app, client, team_key):
    receipt = submit(client, "first")
    code = codename_of(receipt.get_data(as_text=True))
    client.post("/en/login", data={"csrf_token": csrf_token(client, "/en/login"),
                                   "codename": code})
    data = os.urandom(120_000)
    url = upload(client, data)
    done = client.post("/en/account/add",
                       data={"csrf_token": csrf_token(client, "/en/account"),
                             "testimony": "more", "keep_original": "y",
                             "upload": [upload_id(url)]},
                       content_type="multipart/form-data", follow_redirects=True)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert data in [c for c, _m in stored_files(app, team_key)]


# -- hostile input ------------------------------------------------------------------

@pytest.mark.parametrize("offset", ["5", "99", "-1", "", "1e3", "０", "9" * 30])
def test_a_wrong_offset_is_refused_and_changes_nothing(app, client, offset):
    made = create(client, 100)
    url = made.headers["Location"]
    assert patch(client, url, 0, b"a" * 10).status_code == 204
    answer = patch(client, url, offset, b"b" * 10)
    assert answer.status_code in (400, 409)
    if offset in ("5", "99"):
        assert answer.status_code == 409
    assert head(client, url).headers["Upload-Offset"] == "10"


def test_more_than_the_declared_length_is_refused(app, client):
    url = create(client, 10).headers["Location"]
    assert patch(client, url, 0, b"a" * 11).status_code == 413
    assert head(client, url).headers["Upload-Offset"] == "0"


def test_an_upload_larger_than_the_limit_is_refused_at_creation(tmp_path, team_key):
    from support import make_config

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=1000))
    try:
        client = app.test_client()
        assert create(client, 1001).status_code == 413
        assert create(client, 1000).status_code == 201
        assert create(client, 10**19).status_code == 400
    finally:
        app.extensions["intake"].close()


def test_the_daily_quota_applies_to_uploads_in_pieces(tmp_path, team_key):
    from support import make_config

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir,
                                 daily_upload_bytes=3 * 1024 * 1024))
    try:
        client = app.test_client()
        assert create(client, 4 * 1024 * 1024).status_code == 503
        upload(client, os.urandom(2 * 1024 * 1024), piece=1024 * 1024)
        # What arrived and waits for its form counts: with it, 2 MiB more would
        # pass the day's bytes. What is only declared does not.
        assert create(client, 2 * 1024 * 1024).status_code == 503
        assert create(client, 1024 * 1024 - 1).status_code == 201
    finally:
        app.extensions["intake"].close()


def test_the_forms_files_and_the_uploads_together_are_held_to_the_limit(tmp_path, team_key):
    """A file in the form and a file sent ahead, each under the limit, are
    together over it: the submission is refused, in the witness's language,
    and the upload waits, untouched, for a smaller form."""
    import io

    from support import make_config

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=300_000))
    try:
        client = app.test_client()
        url = upload(client, os.urandom(200_000))
        answer = client.post("/uk/submit", data={
            "csrf_token": csrf_token(client, "/uk/"), "testimony": "both",
            "keep_original": "y", "upload": [upload_id(url)],
            "files": [(io.BytesIO(os.urandom(150_000)), "form.bin")]},
            content_type="multipart/form-data", follow_redirects=True)
        assert answer.status_code == 400
        text = answer.get_data(as_text=True)
        assert "Ви надіслали більше, ніж приймає цей сервіс" in text
        with app.extensions["intake"].db.sessions() as s:
            assert s.query(Item).count() == 0
        assert [p for p in (tmp_path / "data" / "store").iterdir() if p.is_file()] == []
        assert head(client, url).headers["Upload-Offset"] == "200000"  # kept
        # The same upload with a smaller file in the form goes through.
        answer = client.post("/en/submit", data={
            "csrf_token": csrf_token(client), "testimony": "both", "keep_original": "y",
            "upload": [upload_id(url)], "files": [(io.BytesIO(b"x" * 100_000), "form.bin")]},
            content_type="multipart/form-data", follow_redirects=True)
        assert answer.status_code == 200 and codename_of(answer.get_data(as_text=True))
        with app.extensions["intake"].db.sessions() as s:
            assert s.query(Item).count() == 3  # the testimony and the two files
    finally:
        app.extensions["intake"].close()


def test_a_session_may_hold_only_so_many_open_uploads(tmp_path, team_key):
    """Four times max_files uploads not yet sent with a form, per session:
    past it, creation is refused in the witness's language; another session,
    or one that removed an upload, may create again."""
    from support import make_config

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_files=2))
    try:
        client = app.test_client()
        token = csrf_token(client)
        urls = [create(client, 2 * 1024**3, token=token).headers["Location"]
                for _ in range(8)]
        refused = create(client, 10, token=token, **{"Accept-Language": "uk"})
        assert refused.status_code == 403
        assert "На сервері чекає забагато файлів" in refused.get_data(as_text=True)
        assert "(найбільше — 8)" in refused.get_data(as_text=True)
        assert len(list(partials_root(app).iterdir())) == 8
        other = app.test_client()
        assert create(other, 10).status_code == 201
        assert client.delete(urls[0], headers=TUS).status_code == 204
        assert create(client, 10, token=token).status_code == 201
        assert create(client, 10, token=token).status_code == 403
    finally:
        app.extensions["intake"].close()


@pytest.mark.parametrize(("lang", "words"), [("uk", "Цей файл більший"),
                                             ("ru", "Этот файл больше"),
                                             ("be", "Гэты файл большы")])
def test_refusals_under_uploads_speak_the_pages_language(tmp_path, team_key, lang, words):
    from support import make_config

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_upload=1000))
    try:
        client = app.test_client()
        answer = create(client, 1001, **{"Accept-Language": lang})
        assert answer.status_code == 413 and words in answer.get_data(as_text=True)
    finally:
        app.extensions["intake"].close()


@pytest.mark.parametrize("name", ["a/b.jpg", "x" * 300, "bad\x00.jpg"])
def test_bad_names_are_refused_at_creation(client, name):
    assert create(client, 10, name=name).status_code == 400


@pytest.mark.parametrize("meta", ["", "filename ***", "filename /w==",
                                  "other YQ=="])
def test_missing_or_malformed_metadata_is_refused(client, meta):
    answer = client.post("/uploads/", headers={**TUS, "Upload-Length": "10",
                                               "Upload-Metadata": meta,
                                               "X-CSRFToken": csrf_token(client)})
    assert answer.status_code == 400


def test_creation_needs_the_form_token_and_the_protocol_version(client):
    assert create(client, 10, token="forged").status_code == 403
    answer = client.post("/uploads/", headers={"Upload-Length": "10",
                                               "X-CSRFToken": csrf_token(client)})
    assert answer.status_code == 412 and answer.headers["Tus-Version"] == "1.0.0"
    deferred = create(client, 10, **{"Upload-Defer-Length": "1"})
    assert deferred.status_code == 400


def test_another_sessions_upload_is_not_found(app, client):
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 50).status_code == 204
    stranger = app.test_client()
    csrf_token(stranger)  # a session of its own
    assert head(stranger, url).status_code == 404
    assert patch(stranger, url, 50, b"b" * 50).status_code == 404
    assert stranger.delete(url, headers=TUS).status_code == 404
    refused = send_form(stranger, [upload_id(url)])
    assert refused.status_code == 400
    assert head(client, url).headers["Upload-Offset"] == "50"  # untouched


@pytest.mark.parametrize("bad", ["../../store", "ABCDEF0123456789ABCDEF0123456789",
                                 "0" * 31, "0" * 33, "%2e%2e", "0" * 32])
def test_malformed_or_unknown_ids_are_not_found(app, client, bad):
    csrf_token(client)
    assert head(client, f"/uploads/{bad}").status_code == 404
    assert patch(client, f"/uploads/{bad}", 0, b"x").status_code == 404
    assert send_form(client, [bad]).status_code == 400


def test_an_unfinished_upload_cannot_complete_a_submission(app, client):
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 60).status_code == 204
    answer = send_form(client, [upload_id(url)])
    assert answer.status_code == 400
    assert "still arriving" in answer.get_data(as_text=True)
    with app.extensions["intake"].db.sessions() as s:
        assert s.query(Item).count() == 0
    assert head(client, url).headers["Upload-Offset"] == "60"  # kept for the rest


def test_a_piece_arriving_meanwhile_is_told_locked(app, client):
    url = create(client, 100).headers["Location"]
    partial = app.extensions[PARTIALS].open(
        resumable.session_secret(app.secret_key, _cookie(client)), upload_id(url))
    partial.lock()  # another PATCH holds it
    try:
        assert patch(client, url, 0, b"a" * 10).status_code == 423
        assert client.delete(url, headers=TUS).status_code == 423
    finally:
        partial.unlock()
    assert patch(client, url, 0, b"a" * 10).status_code == 204


def test_a_piece_arriving_while_a_head_reads_the_offset_is_taken(app, client):
    """A HEAD takes the lock for a moment to read the offset; a PATCH that
    arrives just then waits for it instead of being refused (a client that
    sent its piece and went is not told 423 for someone else's HEAD)."""
    import threading

    url = create(client, 100).headers["Location"]
    partial = app.extensions[PARTIALS].open(
        resumable.session_secret(app.secret_key, _cookie(client)), upload_id(url))
    partial.lock()  # a HEAD reading the offset, for a moment
    threading.Timer(resumable.LOCK_WAIT / 5, partial.unlock).start()
    answer = patch(client, url, 0, b"a" * 10)
    assert answer.status_code == 204 and answer.headers["Upload-Offset"] == "10"


def _cookie(client) -> str:
    cookie = client.get_cookie("intake_session")
    return f"intake_session={cookie.value}"


def test_termination_removes_the_upload(app, client):
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 10).status_code == 204
    assert client.delete(url, headers=TUS).status_code == 204
    assert head(client, url).status_code == 404
    assert not (partials_root(app) / upload_id(url)).exists()


def test_a_damaged_piece_fails_the_submission_and_keeps_nothing(app, client):
    url = upload(client, os.urandom(70_000), piece=70_000)
    piece = partials_root(app) / upload_id(url) / "pieces"
    raw = bytearray(piece.read_bytes())
    raw[100] ^= 1
    piece.write_bytes(bytes(raw))
    answer = send_form(client, [upload_id(url)])
    assert answer.status_code == 500
    with app.extensions["intake"].db.sessions() as s:
        assert s.query(Item).count() == 0


# -- expiry -------------------------------------------------------------------------

def test_expired_uploads_are_refused_then_removed_by_tidy(app, client, config):
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 10).status_code == 204
    folder = partials_root(app) / upload_id(url)
    partials: Partials = app.extensions[PARTIALS]
    state = json.loads((folder / "state.json").read_text())
    assert state["day"] == today().isoformat() and config.partial_upload_days == 1
    # Still there the next day, at the first tidy pass of the day after that gone.
    next_day = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert tidy(config, next_day.timestamp()).partial_uploads == 0
    assert folder.exists()
    partials.day = lambda: today() + dt.timedelta(days=2)
    try:
        assert head(client, url).status_code == 410
        assert patch(client, url, 10, b"b").status_code == 410
        refused = send_form(client, [upload_id(url)])
        assert refused.status_code == 400
    finally:
        partials.day = today
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert tidy(config, later.timestamp()).partial_uploads == 1
    assert not folder.exists()
    assert head(client, url).status_code == 404


def test_each_piece_moves_the_expiry_on(app, client):
    url = create(client, 100).headers["Location"]
    partials: Partials = app.extensions[PARTIALS]
    partials.day = lambda: today() + dt.timedelta(days=1)
    try:
        assert patch(client, url, 0, b"a").status_code == 204
    finally:
        partials.day = today
    state = json.loads((partials.root / upload_id(url) / "state.json").read_text())
    assert state["day"] == (today() + dt.timedelta(days=1)).isoformat()


def test_tidy_leaves_an_upload_whose_piece_is_arriving(app, client, config):
    url = create(client, 100).headers["Location"]
    partial = app.extensions[PARTIALS].open(
        resumable.session_secret(app.secret_key, _cookie(client)), upload_id(url))
    partial.lock()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    try:
        assert tidy(config, later.timestamp()).partial_uploads == 0
    finally:
        partial.unlock()
    assert tidy(config, later.timestamp()).partial_uploads == 1


def test_a_full_disk_while_a_piece_is_sealed_is_told_and_keeps_nothing(app, client,
                                                                        monkeypatch):
    url = create(client, 100).headers["Location"]

    def full(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resumable.os, "fsync", full)
    answer = patch(client, url, 0, b"a" * 10)
    monkeypatch.undo()
    assert answer.status_code == 507
    assert head(client, url).headers["Upload-Offset"] == "0"
    assert patch(client, url, 0, b"a" * 10).status_code == 204


# -- no time of day: every file and folder is taken from the pool ------------------

def _born(paths: list) -> dict:
    """Each path's birth time (statx), in seconds; 0 where the filesystem keeps none."""
    out = subprocess.run(["stat", "-c", "%.9W", *map(str, paths)], capture_output=True,
                         text=True, check=True)
    return dict(zip(paths, map(float, out.stdout.split()), strict=True))


def test_no_file_or_folder_of_an_upload_is_born_when_it_arrives(app, client, config,
                                                               team_key):
    """A birth time cannot be set back: the folder, the pieces, the state and
    its rewrites must all have been born before the upload arrived (in the
    pool the pass made), and their mtimes show only the day."""
    root = partials_root(app)
    probe = root / "probe"
    probe.touch()
    if not _born([probe])[probe]:
        pytest.skip("this filesystem keeps no birth times")
    probe.unlink()
    tidy(config)  # as install.sh does before the first start
    time.sleep(0.1)  # file times come from a coarse clock, a few ms behind
    arrived = time.time() - 0.02
    data = os.urandom(300_000)
    url = upload(client, data, piece=70_000)  # five pieces, five state rewrites
    assert head(client, url).status_code == 200
    other = create(client, 100).headers["Location"]
    assert patch(client, other, 0, b"a" * 10).status_code == 204
    paths = [p for u in (url, other) for p in [root / upload_id(u),
                                               *(root / upload_id(u)).iterdir()]]
    for path, born in _born(paths).items():
        assert born < arrived, path.name
        assert path.stat().st_mtime % 86400 == 0, path.name
    assert {p.name for p in paths} >= {"pieces", "state.json", "state.spare"}
    receipt = send_form(client, [upload_id(url)])
    assert receipt.status_code == 200, receipt.get_data(as_text=True)
    files = [c for c, m in stored_files(app, team_key) if m["kind"] != "testimony"]
    assert files == [data]


@pytest.mark.parametrize(("lang", "words"), [("en", "try again in a few minutes"),
                                             ("uk", "за кілька хвилин")])
def test_an_empty_folder_pool_refuses_new_uploads(app, client, lang, words):
    """Refused, in the witness's language, rather than born with the time it
    arrived; the keeper or the pass refills it."""
    partials: Partials = app.extensions[PARTIALS]
    assert partials.fill_pool(1) == 1
    token = csrf_token(client)
    assert create(client, 10, token=token).status_code == 201
    refused = create(client, 10, token=token, **{"Accept-Language": lang})
    assert refused.status_code == 503 and words in refused.get_data(as_text=True)
    assert len([p for p in partials.root.iterdir() if p.name != ".pool"]) == 1
    partials.fill_pool(2)
    assert create(client, 10, token=token).status_code == 201


def test_the_pass_fills_the_folder_pool_and_never_sweeps_it(app, client, config):
    partials: Partials = app.extensions[PARTIALS]
    assert tidy(config).folders_added == resumable.POOL_SIZE
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    assert tidy(config, later.timestamp()).folders_added == 0
    assert partials.pool_count() == resumable.POOL_SIZE
    # A fill cut short leaves a folder under a dot name: not taken, and removed.
    (partials.pool / ".cut-short").mkdir()
    assert partials.pool_count() == resumable.POOL_SIZE
    url = create(client, 100).headers["Location"]
    assert partials.pool_count() == resumable.POOL_SIZE - 1
    assert tidy(config).folders_added == 1 and not (partials.pool / ".cut-short").exists()
    assert head(client, url).status_code == 200


def test_a_state_write_cut_short_is_taken_up_by_the_next(app, client, team_key):
    """After the new state replaced the old, before the old became the spare:
    the next write finds it. What a crash left past the last piece is cut."""
    url = create(client, 200_000).headers["Location"]
    folder = partials_root(app) / upload_id(url)
    data = os.urandom(200_000)
    assert patch(client, url, 0, data[:100_000]).status_code == 204
    os.rename(folder / "state.spare", folder / "state.old")
    with open(folder / "pieces", "ab") as f:
        f.write(b"half a piece that was never recorded")
    assert patch(client, url, 100_000, data[100_000:]).status_code == 204
    assert sorted(p.name for p in folder.iterdir()) == ["lock", "pieces", "state.json",
                                                         "state.spare"]
    assert send_form(client, [upload_id(url)]).status_code == 200
    assert [c for c, m in stored_files(app, team_key) if m["kind"] != "testimony"] == [data]


def test_uploads_of_all_sessions_together_are_capped(app, monkeypatch):
    """A new cookie for each upload escapes the cap per session; declaring
    costs nothing, so all sessions together are held to OPEN_AT_ALL."""
    from intake.server.witness import uploads

    monkeypatch.setattr(uploads, "OPEN_AT_ALL", 3, raising=False)
    for _ in range(3):
        assert create(app.test_client(), 10).status_code == 201
    refused = create(app.test_client(), 10, **{"Accept-Language": "uk"})
    assert refused.status_code == 503
    assert "за кілька хвилин" in refused.get_data(as_text=True)


# -- a crash at any step, a hostile disk -------------------------------------------

def _folder(app, url: str):
    return partials_root(app) / upload_id(url)


def _crash_in_state_write(folder, new_state: bytes, step: str) -> None:
    """Leaves the files as a process killed at `step` of a state write would."""
    state, spare, old = folder / "state.json", folder / "state.spare", folder / "state.old"
    if step == "spare half written":
        spare.write_bytes(new_state[:len(new_state) // 2])
        return
    spare.write_bytes(new_state)
    if step == "spare written":
        return
    os.link(state, old)
    if step == "old linked":
        return
    os.replace(spare, state)  # "replaced": the old is not yet the spare


@pytest.mark.parametrize(("step", "recorded"), [
    ("piece half appended", False), ("piece appended", False),
    ("spare half written", False), ("spare written", False), ("old linked", False),
    ("replaced", True)])
def test_a_crash_at_any_step_of_a_piece_loses_nothing_acknowledged(app, client, team_key,
                                                                   step, recorded):
    """The offset then said is what is stored and authenticated; what a crash
    left past it is cut off; the upload resumes and joins its submission."""
    data = os.urandom(300_000)
    url = create(client, len(data)).headers["Location"]
    assert patch(client, url, 0, data[:100_000]).status_code == 204  # acknowledged
    folder = _folder(app, url)
    partial = app.extensions[PARTIALS].open(
        resumable.session_secret(app.secret_key, _cookie(client)), upload_id(url))
    partial.lock()
    try:  # the second piece, sealed as the server seals it, then the crash
        writer = partial.append(100_000, 100_000)
        writer.write(data[100_000:200_000])
        sealed_end = writer.start
        writer._write(writer._pusher.push(bytes(writer._buf), final=True, ad=writer._ad))
        os.close(writer._fd)
    finally:
        partial.unlock()
    if step == "piece half appended":
        os.truncate(folder / "pieces", sealed_end + 40_000)
    if step not in ("piece half appended", "piece appended"):
        state = json.loads((folder / "state.json").read_text())
        state["pieces"].append(100_000)
        _crash_in_state_write(folder, json.dumps(state).encode(), step)
    arrived = 200_000 if recorded else 100_000
    assert head(client, url).headers["Upload-Offset"] == str(arrived)
    assert patch(client, url, arrived, data[arrived:]).status_code == 204
    assert sorted(p.name for p in folder.iterdir()) == ["lock", "pieces", "state.json",
                                                         "state.spare"]
    assert send_form(client, [upload_id(url)]).status_code == 200
    assert [c for c, m in stored_files(app, team_key) if m["kind"] != "testimony"] == [data]


@pytest.mark.parametrize("change", [
    {"day": "9999-12-31"}, {"day": 5}, {"day": None}, {"length": "100"}, {"length": -5},
    {"length": 10**40}, {"pieces": 5}, {"pieces": ["10"]}, {"pieces": [-10, 20]},
    {"pieces": [60, 60]}, {"pieces": [True] * 10}, {"binding": 5}, {"meta": None},
    "not an object", "not JSON"])
def test_a_hostile_state_is_refused_and_harms_no_other_upload(app, client, change):
    """A state.json that is not one this server wrote (damaged, or planted) is
    answered as an upload that does not exist: never a 500, never an offset
    that is not stored; and it keeps no other witness from sending."""
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 10).status_code == 204
    path = _folder(app, url) / "state.json"
    state = json.loads(path.read_text())
    if change == "not JSON":
        path.write_bytes(b"\xff{")
    else:
        path.write_text(json.dumps([state] if change == "not an object"
                                   else {**state, **change}))
    assert head(client, url).status_code == 404
    assert patch(client, url, 10, b"b").status_code == 404
    refused = send_form(client, [upload_id(url)])
    assert refused.status_code == 400 and "Choose it again" in refused.get_data(as_text=True)
    other = app.test_client()
    made = create(other, 10)
    assert made.status_code == 201
    assert patch(other, made.headers["Location"], 0, b"c" * 10).status_code == 204
    assert app.extensions[PARTIALS].held() == 10  # only what is really held


@pytest.mark.parametrize("what", ["folder", "pieces", "state.spare", "state.json", "lock",
                                  "pieces hard link", "state.json fifo"])
def test_links_in_an_upload_are_never_followed(app, client, tmp_path, what):
    """A folder or file of an upload replaced by a link (or a second name of a
    file elsewhere, or a FIFO) is refused: nothing outside data/uploads is
    read, written, truncated or has its times set, and no request hangs."""
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 10).status_code == 204
    folder = _folder(app, url)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in resumable.FOLDER_FILES:
        (outside / name).write_bytes((folder / name).read_bytes())
    victim = outside / ("pieces" if what == "folder" else what.split()[0])
    before = victim.read_bytes(), victim.stat().st_mtime
    name = what.split()[0]
    if what == "folder":
        shutil.rmtree(folder)
        folder.symlink_to(outside)
    elif what.endswith("hard link"):
        (folder / name).unlink()
        os.link(victim, folder / name)
    elif what.endswith("fifo"):
        (folder / name).unlink()
        os.mkfifo(folder / name)
    else:
        (folder / name).unlink()
        (folder / name).symlink_to(victim)
    answers = [head(client, url).status_code, patch(client, url, 10, b"b" * 10).status_code,
               send_form(client, [upload_id(url)]).status_code]
    assert answers == [404, 404, 400]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    tidy(app.extensions["intake"].config, later.timestamp())
    assert (victim.read_bytes(), victim.stat().st_mtime) == before
    assert not folder.exists() and not folder.is_symlink()  # swept, the link not followed


def test_a_pool_folder_not_as_made_is_never_used(app, client, tmp_path):
    partials: Partials = app.extensions[PARTIALS]
    partials.fill_pool(0)
    outside = tmp_path / "outside"
    resumable._make_folder(outside)
    (partials.pool / ("e" * 32)).symlink_to(outside)
    (partials.pool / ("f" * 32)).mkdir()  # without its files
    assert create(client, 100).status_code == 503  # nothing usable: refused
    assert sorted(os.listdir(outside)) == sorted(resumable.FOLDER_FILES)
    assert [p for p in partials.root.iterdir() if p.name != ".pool"] == []
    partials.fill_pool(1)
    url = create(client, 100).headers["Location"]
    assert patch(client, url, 0, b"a" * 10).status_code == 204
    assert os.path.getsize(outside / "pieces") == 0


def test_an_upload_removed_meanwhile_is_not_found(app, client):
    """Opened by one request, removed by another (a DELETE from another tab,
    the hourly pass) before the first takes the lock: 404, not a 500."""
    url = create(client, 100).headers["Location"]
    partial = app.extensions[PARTIALS].open(
        resumable.session_secret(app.secret_key, _cookie(client)), upload_id(url))
    shutil.rmtree(_folder(app, url))
    with pytest.raises(resumable.NotFound):
        partial.lock()


def test_the_pass_leaves_a_folder_taken_this_moment(app, client, config, monkeypatch):
    """A pool folder made days ago keeps its old times when taken: the pass,
    running between the take and the first state, must not remove it."""
    partials: Partials = app.extensions[PARTIALS]
    partials.fill_pool(2)
    days_ago = time.time() - 3 * 86400
    for folder in partials.pool.iterdir():
        os.utime(folder, (days_ago, days_ago))
    write = resumable._write_state

    def pass_meanwhile(folder, data):
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert tidy(config, later.timestamp()).partial_uploads == 0
        write(folder, data)

    monkeypatch.setattr(resumable, "_write_state", pass_meanwhile)
    made = create(client, 100)
    monkeypatch.undo()
    assert made.status_code == 201
    assert patch(client, made.headers["Location"], 0, b"a" * 10).status_code == 204


def test_creations_at_once_keep_the_caps(tmp_path, team_key):
    """Many creations from one session at once: the cap counted before each
    is not passed by those counted at the same moment."""
    import threading

    from support import make_config

    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, max_files=1))
    try:
        app.extensions[PARTIALS].fill_pool(40)
        client = app.test_client()
        token, cookie = csrf_token(client), client.get_cookie("intake_session").value
        answers: list[int] = []

        def one():
            each = app.test_client()
            each.set_cookie("intake_session", cookie)
            answers.append(create(each, 10, token=token).status_code)

        threads = [threading.Thread(target=one) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [201] * 4 + [403] * 20
        assert len([p for p in partials_root(app).iterdir() if p.name != ".pool"]) == 4
    finally:
        app.extensions["intake"].close()


def test_an_upload_takes_only_so_many_pieces(app, client, monkeypatch):
    """Each piece rewrites the state, and each creation reads every state: a
    flood of one-byte pieces is refused past MAX_PIECES, keeping what came."""
    monkeypatch.setattr(resumable, "MAX_PIECES", 3)
    url = create(client, 100).headers["Location"]
    for offset in range(3):
        assert patch(client, url, offset, b"a").status_code == 204
    refused = patch(client, url, 3, b"a")
    assert refused.status_code == 400
    assert head(client, url).headers["Upload-Offset"] == "3"
