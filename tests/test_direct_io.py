"""intake.direct_io: an envelope appended past the page cache, byte for byte."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from intake.server import direct_io
from intake.server.direct_io import BUFFER, DirectAppender

SIZES = [1, 130, 4095, 4096, BUFFER - 1, 3, BUFFER, 65553 * 9, 77]


def _append(path: Path, pieces: list[bytes]) -> DirectAppender:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        out = DirectAppender(fd)
        for piece in pieces:
            out.write(piece)
        out.flush()
        out.write(b"after the flush")  # ordinary writes from here on
    finally:
        os.close(fd)
    return out


def _needs_direct(folder: Path) -> None:
    """Skips the test where the filesystem has no O_DIRECT (tmpfs); the test
    folder here is on ext4, where it always runs."""
    probe = folder / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
    except OSError:
        pytest.skip("this filesystem has no O_DIRECT")
    probe.unlink()


def _cached_bytes(path: Path) -> int:
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES",
                          str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_every_byte_arrives_in_order(tmp_path):
    pieces = [os.urandom(n) for n in SIZES]
    path = tmp_path / "envelope"
    _append(path, pieces)
    assert path.read_bytes() == b"".join(pieces) + b"after the flush"


def test_a_large_file_bypasses_the_page_cache(tmp_path):
    _needs_direct(tmp_path)
    path = tmp_path / "envelope"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        out = DirectAppender(fd)
        assert out.direct
        for _ in range(16):
            out.write(os.urandom(BUFFER // 2 + 1))
        out.flush()
    finally:
        os.close(fd)
    # Only the unaligned tail went through the page cache (a page or two).
    assert path.stat().st_size > 8 * BUFFER
    assert _cached_bytes(path) <= 2 * 4096


def test_without_o_direct_writes_are_ordinary(tmp_path):
    shm = Path("/dev/shm")  # tmpfs refuses O_DIRECT
    if not shm.is_dir():
        pytest.skip("no tmpfs at /dev/shm")
    path = shm / f"intake-test-{os.getpid()}"
    try:
        pieces = [os.urandom(n) for n in SIZES]
        out = _append(path, pieces)
        assert not out.direct
        assert path.read_bytes() == b"".join(pieces) + b"after the flush"
    finally:
        path.unlink(missing_ok=True)


def _direct(fd: int) -> bool:
    return bool(direct_io.fcntl.fcntl(fd, direct_io.fcntl.F_GETFL) & os.O_DIRECT)


def test_a_filesystem_that_refuses_direct_writes_gets_ordinary_ones(tmp_path, monkeypatch):
    _needs_direct(tmp_path)
    real, refused = os.write, []

    def write(fd, data):
        if _direct(fd):
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    pieces = [os.urandom(n) for n in SIZES]
    path = tmp_path / "envelope"
    out = _append(path, pieces)
    monkeypatch.undo()
    assert refused == [BUFFER] and not out.direct
    assert path.read_bytes() == b"".join(pieces) + b"after the flush"


def test_a_short_direct_write_then_a_refusal_writes_nothing_twice(tmp_path, monkeypatch):
    _needs_direct(tmp_path)
    real, calls = os.write, []

    def write(fd, data):
        if _direct(fd):
            calls.append(len(data))
            if len(calls) == 1:  # half of the first buffer, then the rest is refused
                return real(fd, memoryview(data)[:BUFFER // 2 + 512])
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    pieces = [os.urandom(n) for n in SIZES]
    path = tmp_path / "envelope"
    _append(path, pieces)
    monkeypatch.undo()
    assert len(calls) == 2
    assert path.read_bytes() == b"".join(pieces) + b"after the flush"


def test_after_a_failed_write_nothing_more_is_written(tmp_path, monkeypatch):
    real, failures = os.write, []

    def write(fd, data):
        if len(data) > 4096 and not failures:
            failures.append(len(data))
            real(fd, memoryview(data)[:4096])  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    path = tmp_path / "envelope"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        out = DirectAppender(fd)
        out.write(os.urandom(100_000))
        monkeypatch.setattr(os, "write", write)
        with pytest.raises(OSError, match="No space"):
            out.flush()
        monkeypatch.undo()
        with pytest.raises(direct_io.WriteFailed):
            out.flush()  # a retry would write the same bytes again
        with pytest.raises(direct_io.WriteFailed):
            out.write(b"more")
        out.close()
    finally:
        os.close(fd)
    assert failures and path.stat().st_size == 4096


def test_a_failed_write_reaches_the_writer(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "envelope"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        out = DirectAppender(fd)
        monkeypatch.setattr(DirectAppender, "_write_aligned", full)
        with pytest.raises(OSError, match="No space"):
            for _ in range(8):
                out.write(os.urandom(BUFFER))
            out.flush()
        out.close()
    finally:
        os.close(fd)
