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
    assert spool.sha256  # waits until the helper threads have written it
    spool._file.flush()
    raw = bytearray(spool.tmp_path.read_bytes())
    raw[300] ^= 1
    spool.tmp_path.write_bytes(raw)
    from intake.format.envelope import EnvelopeError

    with pytest.raises(EnvelopeError, match="changed while being written"):
        b"".join(spool.chunks())
    spool.close()


@pytest.mark.parametrize(("size", "piece"), [
    (900_000, 100_000),  # under the helpers' threshold: all in the calling thread
    (3 * 1024 * 1024, 512 * 1024),  # the parser's pieces, helpers from the second MiB
    (3 * 1024 * 1024 + 7, 300_001),  # pieces that never fall on a chunk or a buffer
    (2_500_000, 65_536),
])
def test_sealed_whole_across_the_switch_to_helper_threads_and_back(store, team_key, size, piece):
    """The first MiB is sealed in the calling thread, the rest by helpers, the
    metadata again in the calling thread after Werkzeug rewinds the part."""
    import threading

    data = os.urandom(size)
    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    for i in range(0, size, piece):
        spool.write(data[i:i + piece])
    helpers = [t.name for t in threading.enumerate() if t.name.startswith("intake-")]
    assert (size > 1024 * 1024) == ("intake-seal" in helpers)
    spool.seek(0)  # what Werkzeug does when the part has arrived
    assert not [t for t in threading.enumerate() if t.name in ("intake-seal", "intake-hash")]
    batch = store.batch()
    entry = spool.seal(batch, {"kind": "file"})
    with open(entry.tmp_path, "rb") as f:
        reader = EnvelopeReader(f, team_key.private_key)
        assert b"".join(reader.content()) == data
    assert entry.size == os.path.getsize(entry.tmp_path)
    batch.discard()
    spool.close()


def test_background_jobs_run_in_order():
    import hashlib

    from intake.server.background import Background

    pieces = [os.urandom(n) for n in (1, 65536, 3, 200_000, 0, 77)] * 30
    a, b = hashlib.sha256(), hashlib.sha256()
    helper = Background("test-hash", budget=100_000)  # small: the producer must wait, not lose
    for p in pieces:
        helper.submit(a.update, p)
        helper.submit(b.update, p[::-1])
    helper.drain()
    assert a.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()
    helper.submit(a.update, b"more")  # more may follow a drain
    helper.stop()
    assert a.hexdigest() == hashlib.sha256(b"".join(pieces) + b"more").hexdigest()
    assert b.hexdigest() == hashlib.sha256(b"".join(p[::-1] for p in pieces)).hexdigest()
    with pytest.raises(RuntimeError):
        helper.submit(a.update, b"late")


def test_background_holds_no_more_than_its_budget():
    """Memory stays flat: past the budget, the producer waits for the helper."""
    import threading

    from intake.server.background import Background

    release, done = threading.Event(), []
    helper = Background("test-budget", budget=10)
    helper.submit(lambda data: release.wait(10), b"1234")  # in progress, still counted
    helper.submit(done.append, b"5678")
    producer = threading.Thread(target=helper.submit, args=(done.append, b"9abc"))
    producer.start()
    producer.join(0.3)
    assert producer.is_alive(), "the producer went past the budget"
    release.set()
    producer.join(10)
    assert not producer.is_alive()
    helper.stop()
    assert done == [b"5678", b"9abc"]


def test_background_error_reaches_the_producer():
    from intake.server.background import Background

    ran = []

    def fail(data):
        raise OSError(28, "No space left on device")

    helper = Background("test-error")
    helper.submit(fail, b"x")
    helper.submit(ran.append, b"after")  # dropped: the stream is broken
    with pytest.raises(OSError, match="No space"):
        helper.drain()
    with pytest.raises(OSError, match="No space"):
        helper.submit(ran.append, b"later")
    with pytest.raises(OSError, match="No space"):
        helper.stop()
    assert ran == []


def test_upload_spool_reports_a_failed_write(store, team_key, monkeypatch):
    from intake.server.store import HashingWriter

    def full(self, data):
        raise OSError(28, "No space left on device")

    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    monkeypatch.setattr(HashingWriter, "write", full)
    with pytest.raises(OSError, match="No space"):
        for _ in range(64):  # the helper fails on the first chunk; a later write says so
            spool.write(os.urandom(256 * 1024))
        assert spool.sha256
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


def test_a_disk_that_fills_under_the_writer_thread_leaves_nothing(store, team_key,
                                                                  monkeypatch):
    """The real write fails (not a stub above it): the error reaches the
    parser, and closing removes the envelope and ends every helper thread."""
    import errno
    import threading

    real = os.write

    def write(fd, data):
        if threading.current_thread().name == "intake-write":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    spool = UploadSpool(store, [Recipient(team_key.private_key.public_key)])
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OSError, match="No space"):
        for _ in range(16):
            spool.write(os.urandom(512 * 1024))
        spool.seek(0)
    spool.close()
    monkeypatch.undo()
    assert not spool.tmp_path.exists() and spool.closed
    assert not [t for t in threading.enumerate() if t.name.startswith("intake-")]
