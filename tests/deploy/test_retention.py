"""Retention deletes exactly what its rules say, rows and files, and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from intake.cli import main
from intake.server.models import Item, Submission, WebSession, Witness
from intake.server.retention import run_retention
from intake.server.service import prepare

TODAY = dt.date(2031, 6, 30)


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


class World:
    """Witnesses, submissions and items with real envelope files in the store."""

    def __init__(self, intake):
        self.intake = intake
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"{self.n:032x}"

    def witness(self, last_active: int) -> str:
        wid = self._id()
        with self.intake.db.sessions() as s:
            s.add(Witness(id=wid, lookup_hash=wid * 2, reply_public_key=b"k" * 32,
                          created_day=days_ago(900), last_active_day=days_ago(last_active)))
            s.commit()
        return wid

    def submission(self, witness_id: str, *items: tuple[str, int | None]) -> list[str]:
        """items: (state, exported days ago or None)."""
        sid = self._id()
        ids = []
        with self.intake.db.sessions() as s:
            s.add(Submission(id=sid, witness_id=witness_id, received_day=days_ago(30)))
            s.flush()
            for state, exported in items:
                iid = self._id()
                self.intake.store.path_for(iid).write_bytes(b"ciphertext " + iid.encode())
                s.add(Item(id=iid, submission_id=sid, kind="file", size=20, sha256="0" * 64,
                           received_day=days_ago(30), state=state,
                           exported_day=None if exported is None else days_ago(exported)))
                ids.append(iid)
            s.commit()
        return ids

    def rows(self, model) -> set[str]:
        with self.intake.db.sessions() as s:
            return set(s.scalars(select(model.id)))

    def files(self) -> set[str]:
        return {p.stem for p in self.intake.store.root.glob("*.env")}


@pytest.fixture
def world(config):
    intake = prepare(config)
    yield World(intake)
    intake.close()


def test_deletes_exactly_what_the_rules_say(world):
    active = world.witness(last_active=10)
    waiting, fresh, edge, old = world.submission(
        active, ("waiting", None), ("exported", 3), ("exported", 7), ("exported", 8))
    [kept_in_old_sub] = world.submission(active, ("waiting", None))
    [gone_sub_item] = world.submission(active, ("exported", 40))
    stale = world.witness(last_active=366)
    stale_items = world.submission(stale, ("waiting", None), ("exported", 1))
    borderline = world.witness(last_active=365)
    [borderline_item] = world.submission(borderline, ("waiting", None))
    with world.intake.db.sessions() as s:
        s.add(WebSession(id="s" * 64, sealed=b"x", expires_day=days_ago(1)))
        s.add(WebSession(id="t" * 64, sealed=b"x", expires_day=TODAY))
        s.commit()
    subs_before = world.rows(Submission)

    report = run_retention(world.intake.db, world.intake.store, on_day=TODAY)

    deleted = {old, gone_sub_item, *stale_items}
    assert set(report.items) == deleted
    kept = {waiting, fresh, edge, kept_in_old_sub, borderline_item}
    assert world.rows(Item) == kept
    assert world.files() == kept
    assert world.rows(Witness) == {active, borderline}
    assert report.witnesses == 1
    # The submission that lost its only item, and the stale witness's one, are gone.
    assert len(subs_before - world.rows(Submission)) == 2 == report.submissions
    assert world.rows(WebSession) == {"t" * 64}
    assert report.files_not_deleted == 0


def test_a_second_run_deletes_nothing_more(world):
    wid = world.witness(last_active=1)
    world.submission(wid, ("exported", 30), ("waiting", None))
    first = run_retention(world.intake.db, world.intake.store, on_day=TODAY)
    second = run_retention(world.intake.db, world.intake.store, on_day=TODAY)
    assert len(first.items) == 1
    assert second.items == [] and second.witnesses == 0 and second.submissions == 0


def test_dry_run_changes_nothing(world):
    wid = world.witness(last_active=400)
    ids = world.submission(wid, ("exported", 30))
    report = run_retention(world.intake.db, world.intake.store, on_day=TODAY, dry_run=True)
    assert report.items == ids and report.witnesses == 1
    assert world.rows(Item) == set(ids) and world.files() == set(ids)
    assert world.rows(Witness) == {wid}


def test_shorter_periods(world):
    wid = world.witness(last_active=4)  # kept while "more than 4 days" is not yet true
    ids = world.submission(wid, ("exported", 1), ("exported", 0))
    report = run_retention(world.intake.db, world.intake.store, exported_days=0,
                           inactive_days=4, on_day=TODAY)
    assert set(report.items) == {ids[0]}
    assert world.rows(Witness) == {wid}  # an item of theirs exported today is still kept
    report = run_retention(world.intake.db, world.intake.store, exported_days=0,
                           inactive_days=4, on_day=TODAY + dt.timedelta(days=1))
    assert world.rows(Item) == set() and world.rows(Witness) == set()


def test_cli(world, config):
    wid = world.witness(last_active=1)
    world.submission(wid, ("exported", 10_000))
    env = {"INTAKE_DATA_DIR": str(config.data_dir), "INTAKE_KEYS_DIR": str(config.keys_dir),
           "INTAKE_CONFIG": ""}
    runner = CliRunner()
    result = runner.invoke(main, ["retention", "run", "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert "would delete 1 item(s), 0 witness(es)" in result.output
    result = runner.invoke(main, ["retention", "run"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("retention: deleted 1 item(s), 0 witness(es), "
                                    "1 emptied submission(s)")
    assert world.rows(Item) == set() and world.files() == set()
