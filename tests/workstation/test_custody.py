"""The custody log's hash chain: intact after real work, and broken by any edit."""

from __future__ import annotations

import sqlite3

import pytest

from intake.workstation import custody


@pytest.fixture
def worked(server, desk, tmp_path):
    """A vault with imports, triage, a note, a case and an export behind it."""
    sent = [server.submit(f"testimony {i}", files=[(b"x" * (i + 1), f"f{i}.bin")])
            for i in range(3)]
    desk.import_(server.export(tmp_path / "b.tar"))
    with desk.open() as vault, vault.transaction() as conn:
        from intake.workstation import triage

        triage.update(conn, sent[0].submission_id, status="in review", tags=["a"])
        triage.add_note(conn, sent[1].submission_id, "looks genuine")
    desk.run("case-add", "Case 1", sent[0].submission_id)
    desk.run("export-case", "Case 1", "--out", str(tmp_path / "case"))
    return sent


def test_a_worked_vault_verifies(worked, desk):
    result = desk.run("verify-log")
    assert result.output.startswith("custody log intact: ")
    with desk.open() as vault:
        verdict = custody.verify(vault.conn)
        n = vault.conn.execute("SELECT COUNT(*) FROM custody").fetchone()[0]
    assert verdict.ok and verdict.entries == n > 10
    assert verdict.head in result.output


def _edit(desk, sql: str, *params) -> None:
    # Straight to the database file, as someone with disk access would.
    conn = sqlite3.connect(desk.root / "vault.db")
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_an_edited_entry_is_named(worked, desk):
    _edit(desk, "UPDATE custody SET actor = 'someone else' WHERE seq = 5")
    result = desk.run("verify-log", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("BROKEN at entry 5: entry 5 was changed after it was written")
    assert "(4 entries before it are intact)" in result.output


def test_an_edited_detail_is_named(worked, desk):
    _edit(desk, "UPDATE custody SET detail = replace(detail, 'in review', 'verified')"
                " WHERE action = 'status change'")
    with desk.open() as vault:
        seq = vault.conn.execute("SELECT MIN(seq) FROM custody WHERE action = 'status change'"
                                 ).fetchone()[0]
    assert f"BROKEN at entry {seq}:" in desk.run("verify-log", ok=False).output


def test_a_rehashed_entry_breaks_the_next_link(worked, desk):
    """Someone who edits an entry and fixes its own hash still breaks the next one."""
    with desk.open() as vault:
        row = dict(vault.conn.execute("SELECT * FROM custody WHERE seq = 7").fetchone())
    row["actor"] = "forger"
    forged = custody.entry_hash(row["seq"], row["at"], row["actor"], row["action"],
                                row["subject"], row["detail"], row["prev_hash"])
    _edit(desk, "UPDATE custody SET actor = ?, hash = ? WHERE seq = 7", "forger", forged)
    result = desk.run("verify-log", ok=False)
    assert "BROKEN at entry 8: entry 8 does not point to the entry before it" in result.output


def test_a_removed_entry_is_named(worked, desk):
    _edit(desk, "DELETE FROM custody WHERE seq = 3")
    result = desk.run("verify-log", ok=False)
    assert "BROKEN at entry 4: entry 4 follows entry 2: entries are missing" in result.output


def test_deletion_is_logged_and_not_undone_by_reimport(server, desk, tmp_path):
    sent = server.submit("to be deleted", files=[(b"abc", "a.txt")])
    bundle = server.export(tmp_path / "b.tar")
    desk.import_(bundle)
    desk.run("delete", sent.submission_id, "--reason", "duplicate of a phone call", "--yes")
    with desk.open() as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
        assert not list(vault.items_dir.iterdir())
        last = vault.conn.execute("SELECT * FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    assert last["action"] == "deletion" and "duplicate of a phone call" in last["detail"]
    again = desk.import_(bundle)
    assert "0 new" in again.output and "2 duplicates" in again.output
    desk.run("verify-log")
