"""Importing bundles: idempotence, damage, and clear refusals."""

from __future__ import annotations

import json
import tarfile

from click.testing import CliRunner
from vault_helpers import make_server, make_team, member_offsets

from intake.cli import main


def _bundle_with(server, tmp_path, n: int = 3):
    for i in range(n):
        server.submit(f"Testimony number {i}", files=[(f"note {i}\n".encode(), f"n{i}.txt")])
    return server.export(tmp_path / "bundle.tar")


def test_import_twice_adds_nothing(server, desk, tmp_path):
    bundle = _bundle_with(server, tmp_path)
    first = desk.import_(bundle)
    assert "6 new" in first.output and "0 duplicates" in first.output
    assert "0 damaged" in first.output
    second = desk.import_(bundle)
    assert "0 new" in second.output and "6 duplicates" in second.output
    with desk.open() as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 6
        assert vault.conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 3
        assert vault.conn.execute("SELECT COUNT(*) FROM search").fetchone()[0] == 6
        # Items are stored by id, with exactly the bytes the witness sent.
        for row in vault.conn.execute("SELECT item_id, kind, metadata FROM items"):
            data = vault.item_path(row["item_id"]).read_bytes()
            meta = json.loads(row["metadata"])
            assert data.decode() in ({f"Testimony number {i}" for i in range(3)}
                                     | {f"note {i}\n" for i in range(3)})
            assert meta["kind"] == row["kind"]
        assert not list(vault.tmp_dir.iterdir())
    assert "custody log intact" in desk.run("verify-log").output


def test_tampered_envelope_is_named_and_the_rest_imports(server, desk, tmp_path):
    bundle = _bundle_with(server, tmp_path)
    offsets = member_offsets(bundle)
    victim = sorted(n for n in offsets if n.startswith("envelopes/"))[1]
    offset, size = offsets[victim]
    raw = bytearray(bundle.read_bytes())
    raw[offset + size - 10] ^= 0x01
    bundle.write_bytes(bytes(raw))
    result = desk.import_(bundle, ok=False)
    assert result.exit_code == 1
    assert f"DAMAGED  {victim}:" in result.output
    assert "5 new" in result.output and "1 damaged" in result.output
    with desk.open() as vault:
        ids = {r[0] for r in vault.conn.execute("SELECT item_id FROM items")}
    assert victim.split("/")[1].removesuffix(".env") not in ids and len(ids) == 5


def test_manifest_hash_mismatch_is_damage(server, desk, tmp_path):
    bundle = _bundle_with(server, tmp_path, n=1)
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    wrong = manifest["items"][0]
    raw = bundle.read_bytes().replace(wrong["sha256"].encode(), b"0" * 64)
    bundle.write_bytes(raw)
    result = desk.import_(bundle, ok=False)
    assert f"DAMAGED  {wrong['name']}: damaged: its SHA-256 does not match the manifest" \
        in result.output
    assert "1 new" in result.output


def test_truncated_bundle_lists_what_is_missing(server, desk, tmp_path):
    bundle = _bundle_with(server, tmp_path, n=2)
    offsets = member_offsets(bundle)
    last = max(offsets, key=lambda n: offsets[n][0])
    bundle.write_bytes(bundle.read_bytes()[:offsets[last][0] + 100])
    result = desk.import_(bundle, ok=False)
    assert result.exit_code == 1
    assert last in result.output and "3 new" in result.output


def test_wrong_passphrase_is_one_clear_line(server, desk, tmp_path):
    bundle = _bundle_with(server, tmp_path, n=1)
    desk.team.passphrase_file.write_text("not the passphrase\n")
    result = desk.import_(bundle, ok=False)
    assert result.exit_code == 2
    assert result.output.strip() == "intake: team.key: wrong passphrase"


def test_bundle_for_another_team_is_refused_in_one_line(server, desk, tmp_path):
    other = make_team(tmp_path, "other")
    other_server = make_server(tmp_path, other)
    try:
        other_server.submit("for the other team")
        bundle = other_server.export(tmp_path / "other.tar")
    finally:
        other_server.close()
    result = desk.import_(bundle, ok=False)
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.startswith("intake:")]
    assert len(lines) == 1
    assert "other.tar is not sealed to team.key" in lines[0]
    assert "wrong key, or a bundle for another team" in lines[0]
    with desk.open() as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
    out = tmp_path / "decrypted"
    result = CliRunner().invoke(main, ["decrypt", str(bundle), "--key", str(desk.team.key_file),
                                       "--passphrase-file", str(desk.team.passphrase_file),
                                       "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [lines[0]]
    assert not out.exists()


def test_wrong_key_file_is_refused_in_one_line(server, desk, tmp_path):
    bundle = _bundle_with(server, tmp_path, n=1)
    other = make_team(tmp_path, "spare")
    result = desk.run("import", str(bundle), "--key", str(other.key_file),
                      "--passphrase-file", str(other.passphrase_file), ok=False)
    assert result.exit_code == 2
    assert "is not sealed to spare.key" in result.output


def test_not_a_bundle(desk, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file at all" * 40)
    result = desk.import_(junk, ok=False)
    assert result.exit_code == 2 and "junk.tar" in result.output
