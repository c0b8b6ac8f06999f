"""Untouched originals: linked to their working copy, filtered on, never previewed,
given only on explicit request, and logged."""

from __future__ import annotations

import hashlib
import re

import magic
from sqlalchemy import select

from intake.server.models import Item
from intake.server.receive import ITEM_FORMAT, _seal
from intake.server.store import today

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def keep_original(server, sent, content: bytes, name: str) -> None:
    """Seals an original beside a submission with the server's own sealing code, as
    the witness's "keep the original" choice does."""
    intake = server.intake
    sha = hashlib.sha256(content).hexdigest()
    with intake.db.sessions() as s:
        (copy_id,) = [i.id for i in s.scalars(select(Item).where(
            Item.submission_id == sent.submission_id, Item.kind == "file"))]
    meta = {"format": ITEM_FORMAT, "submission_id": sent.submission_id,
            "witness_id": sent.witness_id, "received_day": today().isoformat(),
            "choices": {"keep_original": True}, "kind": "original", "original_name": name,
            "detected_type": magic.from_buffer(content[:4096], mime=True), "size": len(content),
            "sha256_received": sha, "sha256_kept": sha, "sanitized": False,
            "sanitizer": None, "removed": [], "flags": [], "original_of": copy_id}
    batch = intake.store.batch()
    item_id, size, env_sha = _seal(batch, intake.recipients, [content], meta)
    with intake.db.sessions() as s:
        s.add(Item(id=item_id, submission_id=sent.submission_id, kind="original", size=size,
                   sha256=env_sha, received_day=today(), state="waiting"))
        s.flush()
        batch.place()
        s.commit()


def test_the_original_is_given_only_on_request(server, desk, tmp_path):
    body = b"GPS 50.45N 30.52E; camera serial 1234\n"
    with_original = server.submit("with original", files=[(body, "scan.txt")])
    keep_original(server, with_original, body, "scan.txt")
    plain = server.submit("no original", files=[(b"other\n", "o.txt")])
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk.app(actor="tester").test_client()

    listed = client.get("/?has_original=yes").get_data(as_text=True)
    assert with_original.submission_id[:12] in listed and plain.submission_id[:12] not in listed
    listed = client.get("/?has_original=no").get_data(as_text=True)
    assert plain.submission_id[:12] in listed and with_original.submission_id[:12] not in listed

    page = client.get(f"/submission/{with_original.submission_id}")
    text = page.get_data(as_text=True)
    assert "The untouched original is kept:" in text
    original_id = re.search(r'/item/([0-9a-f]+)/original', text).group(1)
    assert client.get(f"/item/{original_id}/preview.png").status_code == 404
    assert client.post(f"/item/{original_id}/download",
                       data={"csrf_token": CSRF.search(text)[1]}).status_code == 404
    token = CSRF.search(text)[1]
    unconfirmed = client.post(f"/item/{original_id}/original", data={"csrf_token": token})
    assert unconfirmed.status_code == 400
    got = client.post(f"/item/{original_id}/original",
                      data={"csrf_token": token, "confirm": "yes"})
    assert got.status_code == 200 and got.get_data() == body
    assert got.headers["Content-Disposition"].startswith("attachment;")
    got.close()
    with desk.open() as vault:
        actions = [r[0] for r in vault.conn.execute(
            "SELECT action FROM custody WHERE subject = ? ORDER BY seq", (f"item:{original_id}",))]
    assert actions == ["import", "view original"]


def test_originals_go_into_the_case_package(server, desk, tmp_path):
    import subprocess

    body = b"\xff\xd8 pretend original bytes"
    sent = server.submit("with original", files=[(body, "photo.bin")])
    keep_original(server, sent, body, "photo.bin")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("case-add", "c", sent.submission_id)
    out = tmp_path / "pkg"
    desk.run("export-case", "c", "--out", str(out))
    originals = list((out / "submissions" / sent.submission_id / "originals").iterdir())
    assert [p.read_bytes() for p in originals] == [body]
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                          timeout=60).returncode == 0
