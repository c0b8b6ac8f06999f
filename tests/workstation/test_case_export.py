"""The case package: checked with the real sha256sum, complete, and honest."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest


@pytest.fixture
def case(server, desk, tmp_path):
    a = server.submit("Я бачив колону техніки біля мосту.",
                      files=[(b"first file\n", "..a:b*?\".txt"), (b"\x00\x01binary", "x y.bin")])
    b = server.submit("Second testimony", files=[(b"second file\n", "notes.txt")])
    c = server.submit("not in the case")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("case-add", "ICC referral 7", a.submission_id, b.submission_id)
    out = tmp_path / "package"
    result = desk.run("export-case", "ICC referral 7", "--out", str(out))
    assert "sha256sum -c SHA256SUMS" in result.output
    return out, a, b, c


def test_sha256sum_accepts_the_package(case):
    out, *_ = case
    done = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=out,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {line.split(": ")[0] for line in done.stdout.splitlines()}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*")
               if p.is_file() and p.name != "SHA256SUMS"}
    assert listed == on_disk


def test_sha256sum_catches_a_changed_file(case):
    out, a, *_ = case
    testimony = out / "submissions" / a.submission_id / "testimony.txt"
    testimony.chmod(0o600)
    testimony.write_text("Я нічого не бачив.")
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"submissions/{a.submission_id}/testimony.txt: FAILED" in done.stdout


def test_the_package_holds_what_prosecutors_need(case):
    out, a, b, c = case
    doc = json.loads((out / "case.json").read_text())
    assert doc["case"] == "ICC referral 7"
    assert [s["submission_id"] for s in doc["submissions"]] == sorted(
        [a.submission_id, b.submission_id])
    folder = out / "submissions" / a.submission_id
    assert (folder / "testimony.txt").read_text() == "Я бачив колону техніки біля мосту."
    # The witness kept originals: their made-up files no cleaner handles are kept.
    assert json.loads((folder / "choices.json").read_text()) == {"keep_original": True}
    files = sorted(p.name for p in (folder / "files").iterdir())
    assert len(files) == 2 and all("/" not in f and not f.startswith(".") for f in files)
    for sub in doc["submissions"]:
        for item in sub["items"]:
            data = (out / item["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == item["sha256_kept"]
    assert not (out / "submissions" / c.submission_id).exists()
    entries = [json.loads(line) for line in (out / "custody.jsonl").read_text().splitlines()]
    subjects = {e["subject"] for e in entries}
    assert f"submission:{c.submission_id}" not in subjects
    assert {"import", "added to case", "export case"} <= {e["action"] for e in entries}
    assert "sha256sum -c SHA256SUMS" in (out / "README.txt").read_text()


def test_export_refuses_an_unknown_case_and_a_used_folder(case, desk, tmp_path):
    out, *_ = case
    assert desk.run("export-case", "nope", "--out", str(tmp_path / "x"), ok=False).exit_code == 2
    assert "is not empty" in desk.run("export-case", "ICC referral 7", "--out", str(out),
                                      ok=False).output


def test_a_vault_file_changed_on_disk_is_not_exported(case, desk, tmp_path):
    out, a, *_ = case
    with desk.open() as vault:
        item = vault.conn.execute("SELECT item_id FROM items WHERE submission_id = ? AND "
                                  "kind = 'testimony'", (a.submission_id,)).fetchone()[0]
        vault.item_path(item).write_text("altered")
    result = desk.run("export-case", "ICC referral 7", "--out", str(tmp_path / "again"),
                      ok=False)
    assert result.exit_code == 2 and "no longer matches its recorded SHA-256" in result.output
    assert not (tmp_path / "again").exists()
