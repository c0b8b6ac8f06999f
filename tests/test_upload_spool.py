"""Uploads are sealed into their envelope as they arrive: one pass, no clear text,
readable back only while the request holds the key."""

from __future__ import annotations

import io
import os
import time

import pytest

from intake.format.envelope import EnvelopeReader, Recipient
from intake.server.store import Store
from intake.server.upload_spool import UploadSpool


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store")
    s.init()
    return s


def test_written_once_read_back_then_sealed_in_place(store, team_key):
    recipient = Recipient(team_key.private_key.public_key)
    canary = os.urandom(16).hex().encode()
    data = (canary * 40_000)[:1_300_001]  # about 20 chunks and a tail
    spool = UploadSpool(store, [recipient])
    for i in range(0, len(data), 70_001):
        spool.write(data[i:i + 70_001])
    assert spool.size == len(data) and spool.head == data[:64 * 1024]
    assert b"".join(spool.chunks()) == data
    spool.seek(0)
    assert spool.read(10) + spool.read() == data  # the file API Werkzeug uses
    inode = os.stat(spool.tmp_path).st_ino
    assert canary not in spool.tmp_path.read_bytes()

    batch = store.batch()
    entry = spool.seal(batch, {"kind": "file"})
    batch.place()
    spool.close()
    final = store.path_for(entry.item_id)
    assert os.stat(final).st_ino == inode  # the same file: written once, renamed
    assert not spool.tmp_path.exists()
    with open(final, "rb") as f:
        reader = EnvelopeReader(f, team_key.private_key)
        assert b"".join(reader.content()) == data
    assert reader.metadata == {"kind": "file", "item_id": entry.item_id}
    assert entry.size == final.stat().st_size
    with pytest.raises(ValueError, match="file key is gone"):
        next(spool._writer.written_content(io.BytesIO(final.read_bytes())))


def test_an_unsealed_upload_leaves_nothing(store, team_key):
    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    spool.write(b"a witness's words" * 1000)
    assert spool.tmp_path.exists()
    spool.close()
    assert list(store.root.iterdir()) == []


def test_a_discarded_batch_removes_the_sealed_upload(store, team_key):
    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    spool.write(b"x" * 100)
    batch = store.batch()
    spool.seal(batch, {})
    batch.discard()
    spool.close()
    assert [p for p in store.root.iterdir() if p.suffix == ".env" or p.name.startswith(".tmp")] \
        == []


def test_a_changed_byte_is_caught_on_read_back(store, team_key):
    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    spool.write(os.urandom(200_000))
    raw = bytearray(spool.tmp_path.read_bytes())
    raw[300] ^= 1
    spool.tmp_path.write_bytes(raw)
    from intake.format.envelope import EnvelopeError

    with pytest.raises(EnvelopeError, match="changed while being written"):
        b"".join(spool.chunks())
    spool.close()


@pytest.mark.parametrize(("size", "piece"), [
    (900_000, 100_000),
    (3 * 1024 * 1024, 512 * 1024),
    (3 * 1024 * 1024 + 7, 300_001),  # pieces that never fall on a chunk or a buffer
    (2_500_000, 65_536),
])
def test_sealed_whole_whatever_the_pieces(store, team_key, size, piece):
    data = os.urandom(size)
    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    for i in range(0, size, piece):
        spool.write(data[i:i + piece])
    assert b"".join(spool.chunks()) == data  # read back before sealing, as the sanitizer does
    batch = store.batch()
    entry = spool.seal(batch, {"kind": "file"})
    with open(entry.tmp_path, "rb") as f:
        reader = EnvelopeReader(f, team_key.private_key)
        assert b"".join(reader.content()) == data
    assert entry.size == os.path.getsize(entry.tmp_path)
    batch.discard()
    spool.close()


def test_upload_spool_reports_a_failed_write(store, team_key, monkeypatch):
    from intake.server.upload_spool import EnvelopeFile

    def full(self, pieces):
        raise OSError(28, "No space left on device")

    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    monkeypatch.setattr(EnvelopeFile, "writelines", full)  # every write goes through it
    with pytest.raises(OSError, match="No space"):
        spool.write(os.urandom(256 * 1024))
    spool.close()
    assert not spool.tmp_path.exists()


def test_start_up_tidies_only_stale_leftovers(store, team_key):
    """Every worker tidies the store at start; it must not take an upload that
    another worker is receiving right now."""
    live = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    live.write(b"arriving")
    stale = store.root / ".tmp-0123456789abcdef0123456789abcdef"
    stale.write_bytes(b"ciphertext left by a crash")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    Store(store.root).init()  # what another worker does when it boots
    assert live.tmp_path.exists() and not stale.exists()
    batch = store.batch()
    live.seal(batch, {})
    batch.place()
    live.close()
