"""Faults lose nothing and are seen, on SQLite and PostgreSQL: a commit whose
answer is lost, files without rows and rows without files, retention that
must not wedge, several servers starting or exporting at once."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import tarfile
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from support import codename_of, csrf_token, make_config, submit

from intake.format.bundle import MANIFEST
from intake.server.db import LockBusy
from intake.server.doctor import check_store_consistency
from intake.server.models import Item, Reply, Submission, Witness
from intake.server.queue import export
from intake.server.reconcile import reconcile
from intake.server.retention import run_retention
from intake.server.store import SUFFIX, today


@pytest.fixture
def app(tmp_path, team_key, database_url):
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, database_url=database_url))
    yield app
    app.extensions["intake"].close()


def count(intake, model) -> int:
    with intake.db.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def envelope_ids(intake) -> set[str]:
    return {p.name[:-len(SUFFIX)] for p in intake.store.root.glob(f"*{SUFFIX}")}


def bundle_items(path) -> set[str]:
    with tarfile.open(path) as tar:
        return {e["item_id"] for e in json.loads(tar.extractfile(MANIFEST).read())["items"]}


def test_a_lost_commit_answer_keeps_what_was_committed(app, monkeypatch, tmp_path):
    """The commit lands, then its answer is lost: the witness gets a receipt,
    and the envelopes stay for the rows that point to them."""
    intake, client = app.extensions["intake"], app.test_client()
    token = csrf_token(client)
    real = Session.commit

    def commit_then_lose_the_answer(self):
        real(self)
        if self.info.pop("lose-once", True) and count(intake, Submission):
            monkeypatch.setattr(Session, "commit", real)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Session, "commit", commit_then_lose_the_answer)
    r = submit(client, "kept despite the lost answer", [(b"file bytes", "a.txt")], token=token)
    monkeypatch.undo()
    assert r.status_code == 200 and codename_of(r.get_data(as_text=True))
    with intake.db.sessions() as s:
        rows = set(s.scalars(select(Item.id)))
    assert rows and rows == envelope_ids(intake)
    assert export(intake, tmp_path / "bundle.tar") == len(rows)


def test_an_unanswerable_commit_keeps_the_envelopes_until_reconciled(app, monkeypatch):
    """The database stops answering at the commit: nothing is deleted in doubt,
    the witness is told so, and the day after next retention settles it."""
    intake, client = app.extensions["intake"], app.test_client()
    token = csrf_token(client)

    def gone(self):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    real_get = Session.get

    def get(self, model, *args, **kwargs):  # the question "was it committed?" fails too
        return gone(self) if model is Submission else real_get(self, model, *args, **kwargs)

    monkeypatch.setattr(Session, "commit", gone)
    monkeypatch.setattr(Session, "get", get)
    r = submit(client, "fate unknown", [(b"bytes", "b.txt")], token=token)
    monkeypatch.undo()
    assert r.status_code == 503 and "cannot tell" in r.get_data(as_text=True)
    kept = envelope_ids(intake)
    assert len(kept) == 2 and count(intake, Item) == 0
    assert check_store_consistency(intake.config)[0].level == "ok"  # not yet a day old
    later = today() + dt.timedelta(days=2)
    found = reconcile(intake.db, intake.store, later)
    assert set(found.orphan_ids) == kept and envelope_ids(intake) == set()


def test_rows_without_files_and_files_without_rows_are_found_and_handled(app, tmp_path):
    intake, client = app.extensions["intake"], app.test_client()
    assert submit(client, "one", [(b"x", "x.txt")]).status_code == 200
    lost = sorted(envelope_ids(intake))[0]
    intake.store.path_for(lost).unlink()
    orphan = "ab" * 16
    intake.store.path_for(orphan).write_bytes(b"ciphertext of a failed attempt")
    three_days_ago = time.time() - 3 * 86400
    os.utime(intake.store.path_for(orphan), (three_days_ago, three_days_ago))
    leftover = intake.store.root / (".tmp-" + "cd" * 16)
    leftover.write_bytes(b"an upload whose process died")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))

    findings = check_store_consistency(intake.config)
    said = " ".join(f.message for f in findings)
    assert "1 envelope file(s) without a row" in said and "1 waiting item(s)" in said
    assert "1 unfinished upload" in said
    report = run_retention(intake.db, intake.store)
    assert (report.orphan_files, report.missing_files, report.leftovers) == (1, 1, 1)
    assert not intake.store.path_for(orphan).exists() and not leftover.exists()
    with intake.db.sessions() as s:
        assert s.get(Item, lost).state == "missing"
    n = export(intake, tmp_path / "b.tar")  # the rest exports; the lost one is skipped
    assert n == count(intake, Item) - 1 and lost not in bundle_items(tmp_path / "b.tar")
    assert [f.level for f in check_store_consistency(intake.config)] == ["problem"]


def test_retention_deletes_an_idle_witness_who_had_a_reply(app):
    """The reply's foreign key once made the whole run fail, every day."""
    intake, client = app.extensions["intake"], app.test_client()
    assert submit(client, "to be forgotten").status_code == 200
    with intake.db.sessions() as s:
        witness = s.scalars(select(Witness)).one()
        s.add(Reply(id="f" * 32, witness_id=witness.id, envelope=b"sealed reply",
                    received_day=today()))
        s.commit()
    report = run_retention(intake.db, intake.store, on_day=today() + dt.timedelta(days=400))
    assert report.witnesses == 1 and report.replies == 1
    assert count(intake, Witness) == count(intake, Reply) == count(intake, Item) == 0
    assert envelope_ids(intake) == set()


def test_retention_runs_once_at_a_time(app):
    intake = app.extensions["intake"]
    with intake.db.lock("retention"), pytest.raises(LockBusy):
        run_retention(intake.db, intake.store)


def test_a_deleted_reply_is_not_left_in_sqlites_files(tmp_path, team_key):
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir))
    intake = app.extensions["intake"]
    try:
        assert submit(app.test_client(), "w").status_code == 200
        canary = os.urandom(16).hex().encode() * 64
        with intake.db.sessions() as s:
            wid = s.scalars(select(Witness.id)).one()
            s.add(Reply(id="e" * 32, witness_id=wid, envelope=canary, received_day=today()))
            s.commit()
        with intake.db.sessions() as s:
            s.delete(s.get(Reply, "e" * 32))
            s.commit()
        for path in intake.config.data_dir.iterdir():
            if path.name.startswith("intake.db"):
                assert canary[:32] not in path.read_bytes(), path.name
    finally:
        intake.close()


def _start_server_process(config_kwargs: dict, results) -> None:
    from intake.server.config import load_config
    from intake.server.service import prepare

    try:
        prepare(load_config({}, **config_kwargs)).close()
        results.put("ok")
    except Exception as exc:  # reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_servers_starting_together_on_a_fresh_database_all_start(tmp_path, team_key,
                                                                  database_url):
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    kwargs = {"data_dir": str(tmp_path / "data"), "keys_dir": str(team_key.keys_dir),
              "database_url": database_url, "kdf_opslimit": 1, "kdf_memlimit": 8192}
    procs = [ctx.Process(target=_start_server_process, args=(kwargs, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(results.get(timeout=5) for _ in procs) == ["ok"] * 4


def _export_process(config_kwargs: dict, out: str, results) -> None:
    from pathlib import Path

    from intake.server.config import load_config
    from intake.server.queue import export as export_queue
    from intake.server.service import prepare

    intake = prepare(load_config({}, **config_kwargs))
    try:
        results.put(export_queue(intake, Path(out)))
    finally:
        intake.close()


def test_two_exports_at_once_share_out_the_items(app, tmp_path, team_key, database_url):
    intake, client = app.extensions["intake"], app.test_client()
    for i in range(6):
        assert submit(client, f"testimony {i}").status_code == 200
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    kwargs = {"data_dir": str(intake.config.data_dir), "keys_dir": str(team_key.keys_dir),
              "database_url": database_url, "kdf_opslimit": 1, "kdf_memlimit": 8192}
    outs = [tmp_path / "first.tar", tmp_path / "second.tar"]
    procs = [ctx.Process(target=_export_process, args=(kwargs, str(o), results)) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(results.get(timeout=5) for _ in procs) == [0, 6]
    first, second = (bundle_items(o) for o in outs)
    assert not first & second and len(first | second) == 6


def test_the_newest_migration_is_the_one_workers_look_for():
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from intake.server import migrations

    config = AlembicConfig()
    config.set_main_option("script_location", os.path.dirname(migrations.__file__))
    assert ScriptDirectory.from_config(config).get_current_head() == migrations.HEAD


def test_database_down_gets_a_page_in_the_witness_language(app, monkeypatch):
    from intake.pages.headers import HEADERS

    client = app.test_client()
    # The session cannot be read either: the address's language decides.
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    token = csrf_token(client, "/uk/")

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    for name in ("execute", "get", "flush", "commit", "scalars", "scalar"):
        monkeypatch.setattr(Session, name, down)
    r = submit(client, "while the database is down", token=token, lang="uk")
    monkeypatch.undo()
    text = r.get_data(as_text=True)
    assert r.status_code == 503 and 'lang="uk"' in text
    assert "Нічого не збережено" in text  # "Nothing was kept"
    for name, value in HEADERS.items():
        assert r.headers.get(name) == value
    assert envelope_ids(app.extensions["intake"]) == set()


def test_one_totp_code_lets_in_one_login_on_each_database(tmp_path, team_key, database_url):
    import threading

    import pyotp

    from intake.server.staff import create_staff_app
    from intake.server.staff.accounts import add

    staff = create_staff_app(make_config(tmp_path, team_key.keys_dir,
                                         database_url=database_url))
    intake = staff.extensions["intake"]
    try:
        secret = add(intake.db, "ana", "seven long words for the staff member", 1, 8192)
        code = pyotp.TOTP(secret.totp_secret).now()
        start, answers = threading.Barrier(4), []

        def attempt():
            client = staff.test_client()
            page = client.get("/login").get_data(as_text=True)
            form = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            start.wait()
            answers.append(client.post("/login", data={
                "csrf_token": form, "name": "ana", "code": code,
                "password": "seven long words for the staff member"}).status_code)

        threads = [threading.Thread(target=attempt) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [302, 403, 403, 403]
    finally:
        intake.close()


def test_witness_records_made_before_the_keyed_hash_are_marked_argon2id(tmp_path,
                                                                         database_url):
    """A database at 0002 with a witness upgrades: the record says how it was made."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine, text

    from intake.server import migrations
    from intake.server.db import Database, normalize_url

    url = database_url or f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(normalize_url(url))
    config = AlembicConfig()
    config.set_main_option("script_location", os.path.dirname(migrations.__file__))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(text(
            "INSERT INTO witnesses (id, lookup_hash, reply_public_key, created_day, "
            "last_active_day) VALUES ('w1', 'h1', :k, '2026-01-01', '2026-01-01')"),
            {"k": b"k" * 32})
    engine.dispose()
    db = Database(url)
    try:
        db.migrate()
        assert db.schema_version() == migrations.HEAD
        with db.sessions() as s:
            assert [w.derivation for w in s.query(Witness)] == [1]
    finally:
        db.dispose()
