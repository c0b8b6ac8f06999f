"""Bounded work per submission and per day: the cleaning budget, the daily
quota and the disk reserve, cleaning at low priority, and opening the form
writes nothing."""

from __future__ import annotations

import hashlib
import os
import re
import time

import pytest
from live import LiveServer, is_receipt
from sqlalchemy import func, select
from support import MemorySpool, csrf_token, make_config, submit
from test_storage import tiny_png
from test_web_witness import multipart, post_raw

from intake.format.envelope import EnvelopeReader
from intake.server.budget import CleaningBudget
from intake.server.doctor import check_quota
from intake.server.models import Item, WebSession
from intake.server.sanitize import runner


@pytest.fixture
def make_app(tmp_path, team_key, database_url):
    apps = []

    def make(**settings):
        from intake.server.witness import create_app

        app = create_app(make_config(tmp_path, team_key.keys_dir, database_url=database_url,
                                     **settings))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["intake"].close()


def metadata_of(app, team_key) -> list[dict]:
    out = []
    for path in app.extensions["intake"].store.root.glob("*.env"):
        with open(path, "rb") as f:
            reader = EnvelopeReader(f, team_key.private_key)
            b"".join(reader.content())
            out.append(reader.metadata)
    return out


def test_the_daily_quota_refuses_with_a_page_and_doctor_says_so(make_app):
    app = make_app(daily_submissions=2)
    client = app.test_client()
    assert submit(client, "one").status_code == 200
    assert submit(client, "two").status_code == 200
    refused = submit(client, "three")
    assert refused.status_code == 503 and "as much as it can keep today" in refused.text
    intake = app.extensions["intake"]
    with intake.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 2
    [finding] = check_quota(intake.config)
    assert finding.level == "warning" and "2 of 2 submissions" in finding.message


def test_past_the_days_bytes_testimony_alone_is_still_taken(make_app):
    app = make_app(daily_upload_bytes=2 * 1024 * 1024)
    client = app.test_client()

    def with_file(name: str):  # built in memory: the test client spools nothing
        # Random bytes cannot be cleaned: kept only as the witness's chosen original.
        body = multipart([("csrf_token", None, csrf_token(client).encode()),
                          ("keep_original", None, b"y"),
                          ("files", name, os.urandom(1_500_000))])
        return post_raw(client, body)

    assert with_file("a.bin").status_code == 303  # sent: to the receipt
    assert with_file("b.bin").status_code == 503
    assert submit(client, "but words still go in").status_code == 200


def test_files_held_for_an_answer_count_toward_the_days_bytes(make_app):
    """Files that could not be cleaned wait outside the queue for the witness's
    answer: a flood of them, never confirmed, still meets the day's quota."""
    app = make_app(daily_upload_bytes=2 * 1024 * 1024)
    client = app.test_client()

    def held_file(name: str):
        body = multipart([("csrf_token", None, csrf_token(client).encode()),
                          ("files", name, os.urandom(1_500_000))])
        return post_raw(client, body)

    assert held_file("a.bin").status_code == 303  # held: the receipt asks
    pending = app.extensions["intake"].store.root / "pending"
    assert sum(p.stat().st_size for p in pending.iterdir()) > 1_500_000
    assert held_file("b.bin").status_code == 503
    assert submit(client, "but words still go in").status_code == 200


def test_the_disk_reserve_refuses_before_the_body_is_read(tmp_path, team_key):
    server = LiveServer(tmp_path, team_key.keys_dir, disk_reserve="1000T")
    try:
        token, cookie = server.form()
        with server.connect() as sock:
            # Only the head: the answer comes without the 50 MB body.
            sock.sendall(server.submission_head(50_000_000, cookie))
            from live import read_answer

            answer = read_answer(sock, timeout=10)
        assert answer is not None and answer.status == 503
        assert "as much as it can keep" in answer.text
        assert token
    finally:
        server.stop()


OUT_OF_TIME = {
    "en": ("we ran out of time to check the files of this submission, so we did not check "
           "this one. We have not stored it. Send it again in a new submission, on its own if "
           "you can."),
    "uk": ("у нас закінчився час на перевірку файлів цього повідомлення, тому цей файл ми не "
           "перевірили. Ми його не зберегли. Надішліть його ще раз у новому повідомленні, за "
           "можливості окремо від інших файлів."),
}


@pytest.mark.parametrize(("lang", "keep_original"), [("en", True), ("uk", False)])
def test_files_a_spent_budget_leaves_unexamined_are_not_stored_and_the_receipt_says_so(
        make_app, team_key, tmp_path, lang, keep_original):
    """Nothing is known of a file the budget left unexamined: it may be a bomb,
    so it is neither kept (even when the witness asked to keep originals) nor
    offered to be sent as it is; the witness is asked to send it again."""
    from sanitize.sanitize_corpus import Corpus

    bomb = Corpus(tmp_path).zip_bomb_docx().read_bytes()
    # The first picture's time leaves under a second of the CPU budget.
    app = make_app(clean_cpu_seconds=1)
    files = [(tiny_png(64, 64), "one.png"), (bomb, "bomb.docx"), (tiny_png(32, 32), "two.png")]
    page = submit(app.test_client(), "", files, keep_original=keep_original, lang=lang)
    assert page.status_code == 200
    text = " ".join(page.text.split())
    for name in ("bomb.docx", "two.png"):
        assert f"<strong><bdi>{name}</bdi></strong>: {OUT_OF_TIME[lang]}" in text
    assert 'name="item"' not in text and 'value="send"' not in text  # not offered as it is
    records = metadata_of(app, team_key)
    assert [(m["original_name"], m["outcome"]) for m in records if m["kind"] == "file"] == \
        [("one.png", "cleaned")]
    assert not list((app.extensions["intake"].store.root / "pending").glob("*"))


def test_a_file_the_budget_cut_short_is_out_of_time_not_too_long(monkeypatch):
    """A cleaner stopped by its time limit: when the budget had lowered that
    limit, the file was not examined to the end, and counts as unexamined."""
    from intake.server import receive
    from intake.server.sanitize import Limits, Result

    def timed_out(spool, make_sink, limits, sandbox):
        return Result(False, "image/png", "png", reason="CPU time limit reached",
                      timed_out=True)

    monkeypatch.setattr(receive, "sanitize", timed_out)
    intake = type("Intake", (), {"sandbox": None, "store": None, "recipients": []})()
    up = receive.Upload("a.png", MemorySpool(tiny_png()))
    for seconds, why in ((5, receive.OUT_OF_TIME), (300, receive.TOO_LONG)):
        budget = CleaningBudget(cpu_seconds=seconds, unpacked_bytes=10**9)
        result, code = receive._clean(intake, up, budget, Limits())  # type: ignore[arg-type]
        assert not result.ok and code == why


def test_every_file_is_read_once_whatever_the_byte_budget(make_app, team_key):
    """The byte budget bounds what files unpack to on top of their own size:
    a video as large as the form takes does not leave the files after it
    uncleaned."""
    app = make_app(clean_bytes=1)
    pictures = [(tiny_png(64, 64), "one.png"), (tiny_png(32, 32), "two.png")]
    assert submit(app.test_client(), "", pictures).status_code == 200
    flags = [str(m["flags"]) for m in metadata_of(app, team_key)]
    assert flags and all(f == "[]" for f in flags), flags
    budget = CleaningBudget.for_submission(300, 1000, [2 * 1024**3, 5000])
    budget.charge(30.0, 2 * 1024**3)
    assert not budget.spent and budget.limits_for(5000).zip_total == 6000
    budget.charge(1.0, 5000)
    assert budget.unpacked_bytes == 1000


def test_the_budget_caps_each_cleaners_limits():
    budget = CleaningBudget(cpu_seconds=7.5, unpacked_bytes=5000, clock=time.monotonic)
    limits = budget.limits_for(100 * 1024 * 1024)
    assert limits.cpu_seconds == 7 and limits.wall_seconds <= 12.5
    assert limits.zip_total == 5000
    budget.charge(7.0, 4000)
    assert budget.spent  # under a second left


def test_the_budgets_limits_reach_the_cleaner_unwidened(monkeypatch):
    """A large upload earns its cleaner more time (Limits.for_size), but
    within a submission's budget: the limits the budget gives are the ones
    the child gets, not widened again for the size."""
    budget = CleaningBudget(cpu_seconds=3.0, unpacked_bytes=10**9, clock=time.monotonic)
    spool = MemorySpool(b"\0" * (200 * 1024 * 1024))
    given = budget.limits_for(spool.size)
    launched = []

    def launch(size, limits, sandbox):
        launched.append(limits)
        raise OSError("recorded only")

    monkeypatch.setattr(runner, "_launch", launch)
    result = runner.sanitize(spool, MemorySpool, given)
    assert not result.ok and launched == [given]
    assert launched[0].cpu_seconds == 3 and launched[0].wall_seconds == 8.0
    runner.sanitize(spool, MemorySpool)  # no budget: the defaults, grown for the size
    assert launched[1].cpu_seconds == 60 + 10 and launched[1].wall_seconds == 90.0 + 10


def test_cleaning_runs_at_low_priority(make_app):
    app = make_app()
    assert submit(app.test_client(), "", [(tiny_png(), "p.png")]).status_code == 200
    sandbox = app.extensions["intake"].sandbox
    if sandbox is None or getattr(sandbox, "_process", None) is None:
        pytest.skip("no warm sandbox on this machine")
    assert os.getpriority(os.PRIO_PROCESS, sandbox._process.pid) >= 10


def test_opening_the_form_writes_nothing(tmp_path, team_key):
    server = LiveServer(tmp_path, team_key.keys_dir)
    try:
        db_files = sorted(server.data_dir.glob("intake.db*"))

        def disk() -> list:
            return [(p.name, p.stat().st_mtime_ns, p.stat().st_ctime_ns,
                     hashlib.sha256(p.read_bytes()).hexdigest()) for p in db_files
                    if p.exists()]

        before = disk()
        for path in ("/en/", "/en/login", "/?lang=zz", "/en/nowhere"):
            answer = server.get(path)
            assert answer is not None and answer.status in (200, 302, 404)
        assert disk() == before
        receipt = server.submit("and now something to keep")
        assert is_receipt(receipt)
    finally:
        server.stop()
    from sqlalchemy import create_engine

    # The receipt's codename waits in one session row, sealed: not in the clear.
    words = re.findall(r"<span>([a-z-]+)</span>", receipt.text)
    engine = create_engine(f"sqlite:///{server.data_dir / 'intake.db'}")
    with engine.connect() as conn:
        rows = conn.execute(select(WebSession.sealed)).scalars().all()
    engine.dispose()
    assert len(rows) == 1 and len(words) >= 7
    assert not any(w.encode() in rows[0] for w in words)
