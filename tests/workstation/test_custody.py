"""The custody log: hash-chained and signed with the vault's custody key. Intact
after real work; an edit is named; a rewrite re-hashed to the end is caught by
the signatures; a rewrite re-signed with a key of the forger's is caught by
the team key and by any earlier case export; one re-signed by the team's own
key is caught by an earlier export."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest
from nacl.public import Box, PrivateKey, SealedBox
from nacl.signing import SigningKey

from intake.format.envelope import fingerprint
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


def test_a_worked_vault_verifies(worked, desk, tmp_path):
    result = desk.run("verify-log")
    assert result.output.startswith("custody log intact: ")
    with desk.open() as vault:
        verdict = custody.verify(vault.conn, desk.private_key)
        n = vault.conn.execute("SELECT COUNT(*) FROM custody").fetchone()[0]
        unsigned = vault.conn.execute("SELECT COUNT(*) FROM custody WHERE signature IS NULL"
                                      ).fetchone()[0]
    assert verdict.ok and verdict.entries == n > 10 and unsigned == 0
    assert verdict.head in result.output and verdict.key_id in result.output
    checked = desk.run("verify-log", *desk.key_args(), "--against", str(tmp_path / "case"))
    assert "the custody key is the team's" in checked.output
    assert f"agrees with {tmp_path / 'case'}" in checked.output


def _edit(desk, sql: str, *params) -> None:
    # Straight to the database file, as someone with disk access would.
    conn = sqlite3.connect(desk.root / "vault.db")
    with conn:
        conn.execute(sql, params)
    conn.close()


def _rewrite(desk, seq: int, actor: str, signer: custody.Signer | None = None,
             detail: str | None = None) -> None:
    """Changes entry `seq` (its actor; with `detail`, that too) and re-hashes
    every entry after it, so the chain is whole again; with `signer`, also
    signs every rewritten entry with it."""
    conn = sqlite3.connect(desk.root / "vault.db")
    conn.row_factory = sqlite3.Row
    with conn:
        rows = [dict(r) for r in conn.execute("SELECT * FROM custody WHERE seq >= ? ORDER BY"
                                              " seq", (seq,))]
        rows[0]["actor"] = actor
        rows[0]["detail"] = rows[0]["detail"] if detail is None else detail
        before = conn.execute("SELECT hash FROM custody WHERE seq = ?", (seq - 1,)).fetchone()
        prev = before[0] if before else custody.GENESIS
        for row in rows:
            row["prev_hash"] = prev
            row["hash"] = custody.entry_hash(row["seq"], row["at"], row["actor"], row["action"],
                                             row["subject"], row["detail"], prev)
            if signer is not None:
                row["key_id"], row["signature"] = signer.key_id, signer.sign(row["hash"])
            conn.execute("UPDATE custody SET actor = ?, detail = ?, prev_hash = ?, hash = ?,"
                         " key_id = ?, signature = ? WHERE seq = ?",
                         (row["actor"], row["detail"], prev, row["hash"], row["key_id"],
                          row["signature"], row["seq"]))
            prev = row["hash"]
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


def test_a_rewritten_and_rehashed_log_is_caught_by_its_signatures(worked, desk):
    """The chain re-hashed from the changed entry to the end is whole again;
    without the custody key the forger cannot sign it."""
    _rewrite(desk, 7, "forger")
    result = desk.run("verify-log", ok=False)
    assert result.exit_code == 1
    assert "BROKEN at entry 7: entry 7's signature does not verify: it was rewritten" \
        in result.output


def test_stripped_signatures_are_caught(worked, desk):
    _edit(desk, "UPDATE custody SET signature = NULL, key_id = NULL WHERE seq >= 7")
    assert "BROKEN at entry 7: entry 7 is not signed" in desk.run("verify-log", ok=False).output
    _edit(desk, "UPDATE custody SET signature = NULL, key_id = NULL")
    _edit(desk, "DELETE FROM custody_key")
    # Stripped of its custody key too, the log is not one from before signing:
    # the custody key's own entry is always signed.
    result = desk.run("verify-log", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("BROKEN at entry 1: entry 1 records the making of a "
                                    "custody key but is not signed"), result.output


def test_a_log_re_signed_with_a_forged_custody_key_is_caught(worked, desk, tmp_path):
    """Someone with disk access but not the passphrase makes a custody key of
    their own, seals it to the team's public key (which anyone can), rewrites
    and re-signs everything. The log is then consistent; the team key and
    the export made before catch it."""
    team_public = desk.private_key.public_key
    forged = SigningKey.generate()
    forger_key = PrivateKey.generate()  # not the team's: the binding cannot be made
    verify = bytes(forged.verify_key)
    _edit(desk, "UPDATE custody_key SET key_id = ?, verify_key = ?, sealed_seed = ?, binding = ?",
          custody.key_id(forged.verify_key), verify.hex(),
          base64.b64encode(SealedBox(team_public).encrypt(bytes(forged))).decode(),
          base64.b64encode(bytes(Box(forger_key, team_public).encrypt(verify))).decode())
    # The custody key's own entry, the log's first signed one, names the key:
    # the forger names theirs.
    team_fp = fingerprint(team_public).hex()
    _rewrite(desk, 1, "forger", custody.Signer(forged), json.dumps(
        {"key_id": custody.key_id(forged.verify_key), "team_key": team_fp,
         "verify_key": verify.hex()}, sort_keys=True, separators=(",", ":")))
    # The log by itself looks whole...
    assert desk.run("verify-log").output.startswith("custody log intact")
    # ...but the custody key is not the team's...
    result = desk.run("verify-log", *desk.key_args(), ok=False)
    assert result.exit_code == 1 and "not made with this team key" in result.output
    # ...nor the one that signed the case package exported before.
    result = desk.run("verify-log", "--against", str(tmp_path / "case"), ok=False)
    assert result.exit_code == 1
    assert "REWRITTEN since" in result.output and "re-signed" in result.output
    # A writing command refuses to sign on with it.
    refused = desk.run("case-add", "Case 2", worked[1].submission_id, ok=False)
    assert refused.exit_code == 2 and "not made with this team key" in refused.output


def test_a_rewrite_by_the_key_holder_is_caught_by_an_earlier_export(worked, desk, tmp_path):
    """Even someone with the team key, who can sign, cannot change what an
    export already carries: the export's head is no longer in the log."""
    with desk.open() as vault:
        signer = vault.signer
    _rewrite(desk, 3, "someone else", signer)
    assert desk.run("verify-log", *desk.key_args()).output.startswith("custody log intact")
    result = desk.run("verify-log", "--against", str(tmp_path / "case"), ok=False)
    assert result.exit_code == 1
    assert "is not the one the export carries: the log was rewritten" in result.output


def test_a_removed_entry_is_named(worked, desk):
    _edit(desk, "DELETE FROM custody WHERE seq = 3")
    result = desk.run("verify-log", ok=False)
    assert "BROKEN at entry 4: entry 4 follows entry 2: entries are missing" in result.output


def test_writing_commands_need_the_team_key(worked, desk):
    result = desk.run("case-add", "Case 2", worked[1].submission_id, ok=False, key=False)
    assert result.exit_code == 2 and "--key" in result.output
    with desk.open(unlocked=False) as vault, pytest.raises(custody.CustodyLocked):
        from intake.workstation import triage

        with vault.transaction() as conn:
            triage.update(conn, worked[1].submission_id, status="closed")


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


def _version_1_vault(desk) -> None:
    """A vault as version 1 wrote it: two entries, hash-chained, unsigned."""
    desk.root.mkdir()
    conn = sqlite3.connect(desk.root / "vault.db")
    conn.execute("CREATE TABLE custody (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT"
                 " NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL,"
                 " prev_hash TEXT NOT NULL, hash TEXT NOT NULL)")
    prev = custody.GENESIS
    for seq in (1, 2):
        digest = custody.entry_hash(seq, "2026-01-01T00:00:00Z", "old", "note", "vault", "{}",
                                    prev)
        conn.execute("INSERT INTO custody VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, "2026-01-01T00:00:00Z", "old", "note", "vault", "{}", prev, digest))
        prev = digest
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def test_a_vault_from_before_signing_is_upgraded_and_signed_on(desk):
    """A version 1 vault: its entries stay hash-chained only; the custody key's
    own entry, signed, follows them and covers them through the chain."""
    _version_1_vault(desk)
    assert "no entry is signed" in desk.run("verify-log", ok=False).output
    with desk.open() as vault:  # unlocking makes the custody key
        verdict = custody.verify(vault.conn, desk.private_key)
        actions = [r[0] for r in vault.conn.execute("SELECT action FROM custody ORDER BY seq")]
    assert verdict.ok and verdict.unsigned == 2 and verdict.entries == 3
    assert actions == ["note", "note", "custody key"]
    assert "(2 from before signing)" in desk.run("verify-log").output


def test_an_export_head_nested_too_deeply_is_reported_not_a_crash(worked, desk, tmp_path):
    head = tmp_path / "case" / "custody-head.json"
    head.write_text("[" * 5000 + "]" * 5000)
    result = desk.run("verify-log", "--against", str(tmp_path / "case"), ok=False)
    assert result.exit_code == 1
    assert "custody-head.json cannot be read" in result.output


def test_an_emptied_log_is_caught(worked, desk):
    """A stored custody key was recorded by a signed entry, the log's first
    signed one: a log without it was cut, not begun."""
    _edit(desk, "DELETE FROM custody")
    for args in ([], desk.key_args()):
        result = desk.run("verify-log", *args, ok=False)
        assert result.exit_code == 1
        assert result.output.startswith("BROKEN: the log is empty, but the vault holds a "
                                        "custody key"), result.output
    # With the custody key gone too, the vault's submissions still need a log.
    _edit(desk, "DELETE FROM custody_key")
    result = desk.run("verify-log", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("BROKEN: the log is empty, but the vault holds "
                                    "submissions"), result.output


def test_a_log_whose_signed_entries_were_cut_off_is_caught(desk):
    """A vault from before signing, signed on, then cut back to its unsigned
    entries: the custody key it holds was recorded by a signed entry."""
    _version_1_vault(desk)
    desk.open().close()  # unlocking makes the custody key and its entry 3
    _edit(desk, "DELETE FROM custody WHERE seq >= 3")
    result = desk.run("verify-log", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("BROKEN: the vault holds a custody key but no entry is "
                                    "signed"), result.output


def test_the_first_signed_entry_must_record_the_custody_key(worked, desk):
    """Even re-signed with the genuine custody key, a log whose first entry is
    gone and whose others were renumbered does not begin as every log does."""
    with desk.open() as vault:
        signer = vault.signer
    conn = sqlite3.connect(desk.root / "vault.db")
    conn.row_factory = sqlite3.Row
    with conn:
        conn.execute("DELETE FROM custody WHERE seq = 1")
        prev = custody.GENESIS
        for row in [dict(r) for r in conn.execute("SELECT * FROM custody ORDER BY seq")]:
            seq = row["seq"] - 1
            digest = custody.entry_hash(seq, row["at"], row["actor"], row["action"],
                                        row["subject"], row["detail"], prev)
            conn.execute("UPDATE custody SET seq = ?, prev_hash = ?, hash = ?, signature = ?"
                         " WHERE seq = ?", (seq, prev, digest, signer.sign(digest), row["seq"]))
            prev = digest
    conn.close()
    result = desk.run("verify-log", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("BROKEN at entry 1: entry 1 is the first signed one but "
                                    "does not record the vault's custody key"), result.output


def test_a_changed_team_fingerprint_is_broken_not_a_refusal(worked, desk):
    """The fingerprint stored beside the custody key is the one its signed
    entry records: changed, the team's own key is not turned away as
    another team's, the log is BROKEN."""
    _edit(desk, "UPDATE custody_key SET team_fingerprint = ?", "ab" * 16)
    for args in ([], desk.key_args()):
        result = desk.run("verify-log", *args, ok=False)
        assert result.exit_code == 1
        assert result.output.startswith("BROKEN at entry 1: entry 1 is the first signed one "
                                        "but does not record the vault's custody key")


def test_another_teams_key_is_refused_not_taken_for_tampering(worked, desk, tmp_path):
    """The vault decides as every command does, by the team key the custody
    key was made with: another team's key is refused in one line, exit 2."""
    from vault_helpers import make_team

    other = make_team(tmp_path, "other")
    args = ["--key", str(other.key_file), "--passphrase-file", str(other.passphrase_file)]
    result = desk.run("verify-log", *args, ok=False)
    assert result.exit_code == 2
    assert "BROKEN" not in result.output and "tampered" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("intake: other.key: not this vault's team key"), lines
    refused = desk.run("case-add", "Case 2", worked[1].submission_id, *args, ok=False)
    assert refused.exit_code == 2 and refused.output == result.output


@pytest.mark.parametrize("seq", ["Infinity", "-Infinity", "NaN", "1e400",
                                 "100000000000000000000000000000", "{n}.9", "{n}.0", "{n}e0",
                                 "true", "\"{n}\"", "null", "0", "-3", "[{n}]"])
def test_an_export_head_whose_seq_is_not_an_entry_number_cannot_be_read(worked, desk,
                                                                        tmp_path, seq):
    """seq must be a JSON integer an entry can have: not a float that rounds
    to the head's number (33.9 once \"agreed\" as entry 33.9), not one past
    SQLite's integers (once an OverflowError)."""
    path = tmp_path / "case" / "custody-head.json"
    head = json.loads(path.read_text())
    seq = seq.format(n=head["seq"])
    path.chmod(0o600)
    path.write_text(json.dumps(head).replace(f'"seq": {head["seq"]}', f'"seq": {seq}'))
    assert f'"seq": {seq}' in path.read_text()
    result = desk.run("verify-log", "--against", str(tmp_path / "case"), ok=False)
    assert result.exit_code == 1
    assert result.output.startswith(f"REWRITTEN? {tmp_path / 'case'}: its custody-head.json "
                                    "cannot be read (its seq is not an entry number)")
    assert "agrees" not in result.output


@pytest.mark.parametrize("field, value", [
    ("hash", 12), ("hash", "ab"), ("verify_key", "zz"), ("signature", None),
    ("format", "x\x1b]0;PWNED\x07\x1b[2J"), ("seq", "\x1b[2J")])
def test_a_malformed_export_head_cannot_be_read_and_is_not_echoed(worked, desk, tmp_path,
                                                                  field, value):
    path = tmp_path / "case" / "custody-head.json"
    head = json.loads(path.read_text())
    path.chmod(0o600)
    path.write_text(json.dumps({**head, field: value}))
    result = desk.run("verify-log", "--against", str(tmp_path / "case"), ok=False)
    assert result.exit_code == 1
    assert "custody-head.json cannot be read (it" in result.output, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


@pytest.mark.parametrize("sql", [
    "UPDATE custody_key SET verify_key = 'zz'",
    "UPDATE custody_key SET verify_key = X'00'",
    "UPDATE custody_key SET verify_key = substr(verify_key, 3)",
    "UPDATE custody_key SET key_id = 7",
    "UPDATE custody_key SET binding = 7",
    "UPDATE custody_key SET binding = 'not base64!'",
    "UPDATE custody_key SET team_fingerprint = X'1b5d303b'",
    "UPDATE custody SET at = X'00' WHERE seq = 5",
    "UPDATE custody SET detail = 12 WHERE seq = 5",
    "UPDATE custody SET prev_hash = X'00' WHERE seq = 5",
    "UPDATE custody SET hash = X'00' WHERE seq = 5",
    "UPDATE custody SET signature = 5 WHERE seq = 5",
    "UPDATE custody SET key_id = X'00' WHERE seq = 5",
    "UPDATE custody SET detail = '[' WHERE seq = 1",
    "INSERT INTO custody_key SELECT 'k2', verify_key, team_fingerprint, sealed_seed,"
    " binding, created_at FROM custody_key",
])
def test_malformed_vault_rows_are_broken_not_a_crash(worked, desk, sql):
    """Every value verify-log reads from vault.db may be anything SQLite can
    hold: the verdict is BROKEN with a reason, never a traceback."""
    _edit(desk, sql)
    for args in ([], desk.key_args()):
        result = desk.run("verify-log", *args, ok=False)
        assert result.exit_code in (1, 2), result.output
        assert result.output.startswith(("BROKEN", "intake: team.key:")), result.output
        assert "\x1b" not in result.output
    if sql.startswith("UPDATE custody_key"):  # a writing command refuses, in one line
        refused = desk.run("case-add", "Case 2", worked[1].submission_id, ok=False)
        assert refused.exit_code == 2 and refused.output.startswith("intake: team.key: ")
        assert len(refused.output.splitlines()) == 1 and "\x1b" not in refused.output
