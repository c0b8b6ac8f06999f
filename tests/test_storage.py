"""The queue and the bundle, on SQLite and on PostgreSQL: submit, export, decrypt.

Under CI (CI=true) the PostgreSQL half must run; the database_url fixture fails
rather than skips when the server is down.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import struct
import tarfile
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select
from support import make_config, submit

from intake.format.bundle import MANIFEST, BundleError
from intake.server.models import Item
from intake.server.queue import export
from intake.workstation.decrypt import decrypt_bundle


def tiny_png(width: int = 64, height: int = 64) -> bytes:
    """A valid PNG (grey gradient), built by the book: signature, IHDR, IDAT, IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    rows = b"".join(b"\0" + bytes((x + y) % 256 for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


TESTIMONY_A = "Ми бачили колону о шостій ранку.\nWe saw the convoy at six."
FILES_A = [(b"%PDF-1.4\n" + b"report " * 20_000, "report.pdf"),
           (tiny_png(), "фото 1.png"),
           (b"odd name", "what: why?.txt"),
           (b"dots", "..")]
TESTIMONY_B = "A second witness, text only.".ljust(len(TESTIMONY_A.encode()), ".")


@pytest.fixture
def served(tmp_path, team_key, database_url):
    """An app on the given database, with two submissions waiting."""
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir, database_url=database_url))
    client = app.test_client()
    assert submit(client, TESTIMONY_A, FILES_A).status_code == 200
    assert submit(client, TESTIMONY_B).status_code == 200
    yield app.extensions["intake"]
    app.extensions["intake"].close()


def states(intake) -> dict[str, str]:
    with intake.db.sessions() as s:
        return {i.id: i.state for i in s.scalars(select(Item))}


def read_bundle(path: Path) -> tuple[dict, dict[str, bytes]]:
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert names[0] == MANIFEST
        manifest = json.loads(tar.extractfile(MANIFEST).read())
        members = {n: tar.extractfile(n).read() for n in names[1:]}
        for info in tar.getmembers():
            assert info.mtime == 0 and info.uid == 0 and info.uname == ""
    return manifest, members


def test_engine_is_the_one_asked_for(served, database_url):
    dialect = served.db.engine.dialect.name
    assert dialect == ("postgresql" if database_url else "sqlite")
    if not database_url:
        assert served.db.url == served.config.effective_database_url
        assert Path(served.db.url.removeprefix("sqlite:///")).parent == \
            served.config.data_dir.resolve()


def test_export_lists_every_envelope_with_its_sha256(served, tmp_path):
    before = states(served)
    # Testimony, files, the picture's untouched original (the form's box is
    # ticked, so the made-up files no cleaner handles are kept), testimony B.
    assert len(before) == 1 + len(FILES_A) + 1 + 1
    assert set(before.values()) == {"waiting"}
    out = tmp_path / "bundle.tar"
    assert export(served, out) == len(before)
    manifest, members = read_bundle(out)
    assert manifest["format"] == "intake-bundle/1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", manifest["day"])
    listed = {item["name"]: item for item in manifest["items"]}
    assert set(listed) == set(members) == {f"envelopes/{i}.env" for i in before}
    for name, data in members.items():
        assert hashlib.sha256(data).hexdigest() == listed[name]["sha256"]
        assert len(data) == listed[name]["size"]
        stored = served.store.path_for(listed[name]["item_id"]).read_bytes()
        assert data == stored
    assert len(manifest["witnesses"]) == 2
    assert set(states(served).values()) == {"exported"}
    assert not list(tmp_path.glob(".*partial*"))


def test_export_again_is_empty_unless_all_is_asked(served, tmp_path):
    first, again, everything = (tmp_path / n for n in ("1.tar", "2.tar", "3.tar"))
    n = export(served, first)
    assert export(served, again) == 0
    manifest, members = read_bundle(again)
    assert manifest["items"] == [] and members == {}
    assert export(served, everything, include_exported=True) == n
    assert read_bundle(everything)[1] == read_bundle(first)[1]


def test_decrypt_gives_a_folder_per_submission(served, tmp_path, team_key):
    bundle = tmp_path / "bundle.tar"
    export(served, bundle)
    out = tmp_path / "decrypted"
    report = decrypt_bundle(bundle, team_key.private_key, out)
    assert report.damaged == []
    assert len(report.decrypted) == 1 + len(FILES_A) + 1 + 1
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_[0-9a-f]{32}", folder.name)
    texts = {(f / "testimony.txt").read_text(encoding="utf-8"): f for f in folders}
    assert set(texts) == {TESTIMONY_A, TESTIMONY_B}

    folder_a = texts[TESTIMONY_A]
    kept = {p.name: p.read_bytes() for p in (folder_a / "files").iterdir()}
    assert sorted(kept.values()) == sorted(content for content, _name in FILES_A)
    # The picture twice: its cleaned copy (nothing to remove) above, and its
    # original apart from the working copies, with a README saying what it is.
    originals = {p.name: p.read_bytes() for p in (folder_a / "originals").iterdir()}
    assert originals.pop("README.txt").startswith(b"Untouched originals")
    assert list(originals.values()) == [FILES_A[1][0]]
    assert kept["report.pdf"] == FILES_A[0][0]
    assert kept["фото 1.png"] == FILES_A[1][0]
    for name in kept:
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert not set(name) & set('<>:"|?*') and len(name.encode()) <= 255
    assert "what_ why_.txt" in kept

    records = json.loads((folder_a / "metadata.json").read_text())
    assert len(records) == 1 + len(FILES_A) + 1
    by_name = {r.get("original_name", "(testimony)"): r for r in records
               if r["kind"] != "original"}
    assert set(by_name) == {"(testimony)", *(name for _content, name in FILES_A)}
    for content, name in FILES_A:
        r = by_name[name]
        assert r["sha256_received"] == hashlib.sha256(content).hexdigest()
        assert r["size"] == len(content)
        assert (folder_a / r["saved_as"]).read_bytes() == content
    assert by_name["report.pdf"]["detected_type"] == "application/pdf"
    assert by_name["фото 1.png"]["detected_type"] == "image/png"
    assert not list(out.rglob(".partial-*"))


# -- damaged, truncated, tampered: reported by name, the rest decrypts --------------------

def _members(bundle: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(bundle) as tar:
        return tar.getmembers()


def _flip_byte_inside(bundle: Path) -> str:
    victim = _members(bundle)[2]  # an envelope, not the manifest
    data = bytearray(bundle.read_bytes())
    data[victim.offset_data + victim.size // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    return victim.name


def _cut_in_last_envelope(bundle: Path) -> str:
    last = _members(bundle)[-1]
    with open(bundle, "r+b") as f:
        f.truncate(last.offset_data + last.size // 2)
    return last.name


def _tamper_manifest_hash(bundle: Path) -> str:
    manifest = _members(bundle)[0]
    data = bytearray(bundle.read_bytes())
    raw = bytes(data[manifest.offset_data:manifest.offset_data + manifest.size])
    doc = json.loads(raw)
    item = doc["items"][1]
    old = item["sha256"]
    new = ("0" if old[0] != "0" else "1") + old[1:]  # same length: the tar stays valid
    data[manifest.offset_data:manifest.offset_data + manifest.size] = raw.replace(
        old.encode(), new.encode())
    bundle.write_bytes(bytes(data))
    return item["name"]


@pytest.mark.parametrize(("damage", "words"), [
    (_flip_byte_inside, "damaged"),
    (_cut_in_last_envelope, "truncated"),
    (_tamper_manifest_hash, "SHA-256 does not match"),
], ids=["flipped-byte", "truncated", "tampered-manifest"])
def test_damage_is_reported_by_name_and_the_rest_decrypts(served, tmp_path, team_key,
                                                          damage, words):
    bundle = tmp_path / "bundle.tar"
    total = export(served, bundle)
    victim = damage(bundle)
    out = tmp_path / "decrypted"
    report = decrypt_bundle(bundle, team_key.private_key, out)
    assert [r.name for r in report.damaged] == [victim]
    message = report.damaged[0].message
    assert words in message, message
    assert "\n" not in message and "Traceback" not in message
    assert len(report.decrypted) == total - 1
    for r in report.decrypted:
        assert r.path is not None and r.path.exists()
    assert not list(out.rglob(".partial-*"))
    # The damaged item left no file behind; every other one is in place.
    saved = [p for p in out.rglob("*") if p.is_file() and p.name != "metadata.json"
             and p.parent.name != "originals"] + [
        p for p in out.rglob("originals/*") if p.name != "README.txt"]
    assert len(saved) == total - 1


def test_envelope_from_another_item_is_refused(served, tmp_path, team_key):
    """Two envelopes swapped, with the manifest's hashes swapped to match: each
    envelope names its own item inside the encryption, so both are refused."""
    bundle = tmp_path / "bundle.tar"
    export(served, bundle)
    members = _members(bundle)
    # The two testimonies have the same length, so their envelopes have too.
    a, b = [m for m in members[1:] if sum(o.size == m.size for o in members) == 2][:2]
    data = bytearray(bundle.read_bytes())
    body_a = bytes(data[a.offset_data:a.offset_data + a.size])
    body_b = bytes(data[b.offset_data:b.offset_data + b.size])
    data[a.offset_data:a.offset_data + a.size] = body_b
    data[b.offset_data:b.offset_data + b.size] = body_a
    sha_a, sha_b = (hashlib.sha256(x).hexdigest().encode() for x in (body_a, body_b))
    m = members[0]
    raw = bytes(data[m.offset_data:m.offset_data + m.size])
    raw = raw.replace(sha_a, b"@" * 64).replace(sha_b, sha_a).replace(b"@" * 64, sha_b)
    data[m.offset_data:m.offset_data + m.size] = raw
    bundle.write_bytes(bytes(data))
    report = decrypt_bundle(bundle, team_key.private_key, tmp_path / "out")
    assert {r.name for r in report.damaged} == {a.name, b.name}
    assert all("another item" in r.message for r in report.damaged)
    assert len(report.decrypted) == len(members) - 3


def test_not_a_bundle(tmp_path, team_key):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    with pytest.raises(BundleError):
        decrypt_bundle(junk, team_key.private_key, tmp_path / "out")


# -- the envelope pool: envelopes are born from it, never at their own time --------------

def test_an_envelope_not_kept_goes_back_to_the_pool(tmp_path):
    from intake.server.store import Store

    store = Store(tmp_path / "store")
    store.init()
    store.fill_pool(10)
    item_id, tmp, fd = store.new_temporary()
    os.write(fd, b"ciphertext that will not be kept")
    os.close(fd)
    assert store.pool_count() == 9
    assert store.pool.stat().st_mtime % 86400 == 0  # the take says only the day
    store.recycle(tmp)
    assert not tmp.exists() and store.pool_count() == 10
    assert all(p.stat().st_size == 0 for p in store.pool.iterdir())
    assert store.pool.stat().st_mtime % 86400 == 0


def test_a_form_spends_from_the_pool_only_what_it_keeps(app, client):
    """The empty file field every browser without JavaScript sends, and the
    parts of a refused form, go back to the pool: emptying it takes kept
    submissions, which the day's quota counts."""
    store = app.extensions["intake"].store
    store.fill_pool(50)
    page = submit(client, "text only", [(b"", "")])
    assert page.status_code == 200
    assert store.pool_count() == 49  # the testimony's envelope only
    refused = client.post("/en/submit", data={
        "csrf_token": "forged", "testimony": "x",
        "files": [(io.BytesIO(b"x" * 5000), f"f{i}.bin") for i in range(5)]},
        content_type="multipart/form-data")
    assert refused.status_code == 400
    assert store.pool_count() == 49


def test_a_pool_found_empty_is_said_in_the_log(tmp_path, caplog):
    from intake.server import store as store_module
    from intake.server.store import Store

    store = Store(tmp_path / "store")
    store.init()
    store_module._EMPTY_SAID[0] = 0.0
    with caplog.at_level(logging.WARNING, logger="intake"):
        _, tmp, fd = store.new_temporary()
        os.close(fd)
    assert tmp.exists()
    assert any("pool" in r.getMessage() and "empty" in r.getMessage()
               for r in caplog.records)
    assert not re.search(r"\d\d:\d\d:\d\d", caplog.text)


def test_the_keeper_looks_at_fixed_times_and_fills_only_a_low_pool(tmp_path, caplog):
    from intake.server.store import POOL_LOW, POOL_SIZE, PoolKeeper, Store

    store = Store(tmp_path / "store")
    store.init()
    now = [1_000_000_123.25]
    keeper = PoolKeeper(store, every=300, clock=lambda: now[0])
    assert keeper.until_next() == pytest.approx(1_000_000_200 - now[0])
    now[0] = 1_000_000_200.0
    assert keeper.until_next() == 300  # on a tick: the next one, whatever happened since
    store.fill_pool(POOL_LOW)
    assert keeper.look() == 0 and store.pool_count() == POOL_LOW  # not low: untouched
    os.unlink(next(store.pool.iterdir()))
    with caplog.at_level(logging.WARNING, logger="intake"):
        assert keeper.look() == POOL_SIZE - POOL_LOW + 1
    assert store.pool_count() == POOL_SIZE
    assert any("ran low" in r.getMessage() for r in caplog.records)


def test_a_submission_the_pool_may_not_hold_is_refused_before_its_body(app, client):
    from intake.server.front import FRONT_ERROR
    from intake.server.witness.app import _quota_refusal, pool_reserve

    intake = app.extensions["intake"]
    environ = {"CONTENT_TYPE": "multipart/form-data; boundary=x", "CONTENT_LENGTH": "100"}
    assert _quota_refusal(intake, environ) is None  # no pool at all: doctor's to say
    intake.store.fill_pool(pool_reserve(intake.config) - 1)
    assert _quota_refusal(intake, environ) == "pool"
    intake.store.fill_pool(pool_reserve(intake.config))
    assert _quota_refusal(intake, environ) is None
    for lang, said in (("en", "try again in a few minutes"), ("uk", "за кілька хвилин")):
        page = client.get(f"/{lang}/", environ_overrides={FRONT_ERROR: "pool"})
        assert page.status_code == 503 and said in page.get_data(as_text=True)
        assert "Nothing was kept" in page.get_data(as_text=True) or lang != "en"
