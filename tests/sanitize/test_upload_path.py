"""The whole path: HTTP form, encrypted spool, sandboxed cleaning, sealing,
queue export, bundle decryption. ExifTool finds nothing planted in what the
investigators decrypt, and the originals come along only when asked for."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

from click.testing import CliRunner

from intake.server.queue import export
from intake.workstation.decrypt import decrypt_bundle
from sanitize.sanitize_corpus import leftovers, planted_in_bytes

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def post(client, files: list[Path], **fields):
    page = client.get("/")
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "testimony": "Files from the square.", **fields,
            "files": [(io.BytesIO(p.read_bytes()), p.name) for p in files]}
    return client.post("/submit", data=data, content_type="multipart/form-data")


def decrypted(app, team_key, tmp_path) -> tuple[Path, list[dict]]:
    intake = app.extensions["intake"]
    bundle = tmp_path / "bundle.tar"
    export(intake, bundle)
    out = tmp_path / "out"
    report = decrypt_bundle(bundle, team_key.private_key, out)
    assert not report.damaged
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder, json.loads((folder / "metadata.json").read_text())


def test_form_says_which_files_are_cleaned_and_offers_the_original(client):
    from intake.server.sanitize import CLEANED_KINDS

    page = client.get("/").get_data(as_text=True)
    notice = page.split('id="cleaning"')[1].split("</p>")[0]
    assert [kind for kind in CLEANED_KINDS if kind not in notice] == []
    assert 'name="keep_original"' in page
    assert 'checked' not in page.split('name="keep_original"')[1].split(">")[0]


def test_uploads_are_cleaned_before_sealing(client, app, team_key, tmp_path, corpus):
    files = [corpus.jpeg("street.jpg"), corpus.docx("statement.docx"), corpus.mp4("tank.mp4")]
    note = tmp_path / "note.txt"
    note.write_text("plain words\n")
    page = post(client, [*files, note])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count("cleaned of hidden information") == 3
    assert "note.txt: sent as it is" in " ".join(text.split())
    folder, records = decrypted(app, team_key, tmp_path)
    by_name = {r.get("original_name"): r for r in records if r["kind"] == "file"}
    assert not [r for r in records if r["kind"] == "original"]
    for original in files:
        record = by_name[original.name]
        saved = folder / record["saved_as"]
        assert record["sanitized"] is True and record["flags"] == []
        assert record["sanitizer"].startswith("intake-sanitize/")
        assert record["sanitizer_version"].startswith("intake ")
        assert record["removed"] and not planted_in_bytes(json.dumps(record).encode())
        assert record["sha256_received"] == hashlib.sha256(original.read_bytes()).hexdigest()
        assert record["sha256_kept"] == hashlib.sha256(saved.read_bytes()).hexdigest()
        assert record["sha256_kept"] != record["sha256_received"]
        assert record["original_kept"] is False
        assert leftovers(saved) == [], original.name
    plain = by_name["note.txt"]
    assert plain["sanitized"] is False
    assert plain["flags"] == ["not sanitized: unsupported type"]
    assert (folder / plain["saved_as"]).read_text() == "plain words\n"


def test_keep_original_seals_the_untouched_original_linked(client, app, team_key, tmp_path,
                                                         corpus):
    photo = corpus.jpeg("evidence.jpg")
    assert post(client, [photo], keep_original="y").status_code == 200
    folder, records = decrypted(app, team_key, tmp_path)
    (clean,) = [r for r in records if r["kind"] == "file"]
    (original,) = [r for r in records if r["kind"] == "original"]
    assert clean["original_kept"] is True and clean["choices"] == {"keep_original": True}
    assert original["original_of"] == clean["item_id"]
    assert (folder / original["saved_as"]).read_bytes() == photo.read_bytes()
    assert original["sha256_kept"] == original["sha256_received"] == clean["sha256_received"]
    assert original["sanitized"] is False
    assert leftovers(folder / clean["saved_as"]) == []
    assert leftovers(folder / original["saved_as"])  # the evidence is all there


def test_decrypt_command_shows_what_was_cleaned(client, app, team_key, tmp_path, corpus):
    from intake.cli import main

    assert post(client, [corpus.png(), corpus.bmp()], keep_original="y").status_code == 200
    bundle = tmp_path / "bundle.tar"
    export(app.extensions["intake"], bundle)
    passphrase = tmp_path / "passphrase"
    passphrase.write_bytes(team_key.passphrase)
    result = CliRunner().invoke(main, ["decrypt", str(bundle), "--key", str(team_key.key_file),
                                       "--out", str(tmp_path / "out"), "--passphrase-file",
                                       str(passphrase)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "screen" in line]
    (cleaned,) = [line for line in lines if "sanitized" in line]
    (original,) = [line for line in lines if "original of" in line]
    assert "tEXt:Author" in cleaned and cleaned.endswith("original kept]")
    assert "as received" in original
