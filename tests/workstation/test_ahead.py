"""Envelopes opened a few at a time, decided on one at a time in the bundle's
order (intake.workstation.ahead): the order, the same-name rule, what is left
when the caller refuses an item or stops, and real bundles whose large items
are opened side by side by `vault import` and `intake decrypt`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from dataclasses import dataclass

from click.testing import CliRunner
from forge import Forge, Member
from vault_helpers import Desk

from intake.cli import main
from intake.workstation import ahead
from intake.workstation.unseal import SMALL


@dataclass(frozen=True)
class M:
    name: str
    size: int = 10


def test_members_come_back_in_order_while_jobs_run_side_by_side():
    both = threading.Barrier(2, timeout=10)  # broken unless two jobs run at once
    members = [M(f"m{i}") for i in range(6)]

    def start(m):
        def job(alone):
            both.wait()
            return m.name.upper()
        return job

    with contextlib.closing(ahead.in_order(members, start, lambda r: None, workers=2)) as got:
        seen = [(m.name, opening.result()) for m, opening in got]
    assert seen == [(f"m{i}", f"M{i}") for i in range(6)]


def test_a_member_that_needs_no_job_gets_none():
    members = [M("a"), M("skip"), M("b")]

    def start(m):
        return None if m.name == "skip" else (lambda alone: m.name)

    with contextlib.closing(ahead.in_order(members, start, lambda r: None)) as got:
        seen = [(m.name, o.result() if o else None) for m, o in got]
    assert seen == [("a", "a"), ("skip", None), ("b", "b")]


def test_a_later_member_of_the_same_name_starts_only_once_the_earlier_is_decided():
    members = [M("a"), M("b"), M("a"), M("c"), M("a")]
    log: list[str] = []

    def start(m):
        log.append(f"start {m.name}")
        return lambda alone: m.name

    with contextlib.closing(ahead.in_order(members, start, lambda r: None, workers=4)) as got:
        for m, opening in got:
            opening.result()
            log.append(f"decided {m.name}")
    # b and c may start early; each later a only after the a before it was decided.
    starts_of_a = [i for i, e in enumerate(log) if e == "start a"]
    decided_a = [i for i, e in enumerate(log) if e == "decided a"]
    assert len(starts_of_a) == 3 and len(decided_a) == 3
    assert starts_of_a[1] > decided_a[0] and starts_of_a[2] > decided_a[1]
    assert log.index("start c") < decided_a[1]  # the others did not wait


def test_what_the_caller_did_not_take_is_discarded_and_a_stop_leaves_nothing(tmp_path):
    members = [M(f"m{i}") for i in range(8)]
    discarded: list[str] = []

    def start(m):
        def job(alone):
            path = tmp_path / m.name
            path.write_text(m.name)
            return path
        return job

    def discard(path):
        discarded.append(path.name)
        path.unlink()

    kept = []
    with contextlib.closing(ahead.in_order(members, start, discard, workers=2)) as got:
        for m, opening in got:
            if m.name == "m1":
                continue  # refused before its result was taken
            if m.name == "m3":
                break  # the caller stops: the jobs already started are dropped
            kept.append(opening.result())
    assert [p.name for p in kept] == ["m0", "m2"]
    assert "m1" in discarded and "m3" in discarded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0", "m2"]


def test_a_job_that_fails_raises_at_result_and_is_not_discarded():
    discarded = []

    def start(m):
        def job(alone):
            if m.name == "bad":
                raise ValueError("damaged")
            return m.name
        return job

    with contextlib.closing(ahead.in_order([M("a"), M("bad"), M("b")], start,
                                           discarded.append)) as got:
        results = []
        for _m, opening in got:
            try:
                results.append(opening.result())
            except ValueError as exc:
                results.append(str(exc))
    assert results == ["a", "damaged", "b"] and discarded == []


def test_a_large_member_is_opened_alone_only_when_no_other_large_one_is_under_way():
    members = [M("big1", SMALL + 1), M("big2", SMALL + 1), M("small"), M("big3", SMALL + 1)]
    release = threading.Event()
    alone_of: dict[str, bool] = {}

    def start(m):
        def job(alone):
            alone_of[m.name] = alone
            if m.name == "big1":
                release.wait(10)  # big2 is queued or running meanwhile
            return m.name
        return job

    with contextlib.closing(ahead.in_order(members, start, lambda r: None, workers=2)) as got:
        for m, opening in got:
            if m.name == "big1":
                release.set()
            opening.result()
    assert alone_of["big1"] is False and alone_of["big2"] is False
    with contextlib.closing(ahead.in_order([M("only", SMALL + 1), M("small")],
                                           start, lambda r: None)) as got:
        for _m, opening in got:
            opening.result()
    assert alone_of["only"] is True


# -- real bundles ------------------------------------------------------------------------

def _large_bundle(server, team, tmp_path):
    """A genuine bundle (a testimony and a small file), then large items, each
    opened in threads or side by side: two sound; one whose manifest hash is
    wrong; and one whose name is carried three times: by a forged envelope
    (refused), then by the genuine one (kept), then by the genuine one again
    (skipped: a second copy). Returns the bundle and the contents that must
    come through, each once."""
    server.submit("A testimony beside large files.", files=[(b"small file\n", "small.txt")])
    forge = Forge.from_bundle(server.export(tmp_path / "genuine.tar"), team.keys_dir)
    sound = [os.urandom(SMALL + 12345 + i * 70001) for i in range(2)]
    for content in sound:
        forge.add(content)
    forge.add(os.urandom(SMALL + 999), entry={"sha256": "0" * 64})
    twice = os.urandom(SMALL + 4321)
    listed = forge.add(twice)
    genuine = forge.members.pop()
    fake_content = os.urandom(SMALL + 4321)
    fake = forge.seal(fake_content, **forge.metadata(
        listed["item_id"], listed["submission_id"], listed["witness_id"],
        listed["received_day"], fake_content))
    forge.members += [Member(genuine.name, fake), genuine, genuine]
    return forge.write(tmp_path / "large.tar"), [*sound, twice]


def _decrypt(bundle, team, out):
    return CliRunner().invoke(main, ["decrypt", str(bundle), "--key", str(team.key_file),
                                     "--passphrase-file", str(team.passphrase_file),
                                     "--out", str(out)])


def test_vault_import_opens_large_items_side_by_side_and_keeps_only_the_sound(
        server, team, desk, tmp_path):
    bundle, contents = _large_bundle(server, team, tmp_path)
    result = desk.import_(bundle, ok=False)
    assert "5 new" in result.output and "3 damaged" in result.output, result.output
    assert result.output.count("does not match the manifest") == 2
    assert result.output.count("a second copy of an item already taken") == 1
    with desk.open() as vault:
        kept = {hashlib.sha256(vault.item_path(r[0]).read_bytes()).hexdigest()
                for r in vault.conn.execute("SELECT item_id FROM items")}
        assert {hashlib.sha256(c).hexdigest() for c in contents} <= kept
        assert not list(vault.tmp_dir.iterdir())
    assert "custody log intact" in desk.run("verify-log").output


def test_decrypt_opens_large_items_side_by_side_and_keeps_only_the_sound(
        server, team, tmp_path):
    bundle, contents = _large_bundle(server, team, tmp_path)
    out = tmp_path / "out"
    result = _decrypt(bundle, team, out)
    assert result.exit_code == 1 and result.output.count("does not match the manifest") == 2
    assert result.output.count("a second copy of an item already taken") == 1
    written = [hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()]
    for content in contents:
        assert written.count(hashlib.sha256(content).hexdigest()) == 1
    assert not list(out.rglob(".partial-*"))


def test_one_at_a_time_and_side_by_side_give_the_same_vault_and_folders(
        server, team, tmp_path, monkeypatch):
    bundle, _contents = _large_bundle(server, team, tmp_path)
    vaults, outputs, folders = [], [], []
    for workers in (1, 2):
        monkeypatch.setattr(ahead, "WORKERS", workers)
        desk = Desk(tmp_path / f"vault-{workers}", team)
        outputs.append(desk.import_(bundle, ok=False).output.replace(str(desk.root), "VAULT"))
        with desk.open() as vault:
            vaults.append(sorted(tuple(r) for r in vault.conn.execute(
                "SELECT item_id, submission_id, size, sha256_kept, envelope_sha256 FROM items")))
        out = tmp_path / f"out-{workers}"
        _decrypt(bundle, team, out)
        folders.append(sorted((str(p.relative_to(out)), p.read_bytes())
                              for p in out.rglob("*") if p.is_file()))
    assert vaults[0] == vaults[1] and len(vaults[0]) == 5
    assert outputs[0] == outputs[1]
    assert folders[0] == folders[1]
