"""write_all (intake/write_all.py), shared by the server's envelopes and the
workstation's decrypted files: every piece written, in order, whatever each
writev() takes, however many pieces."""

from __future__ import annotations

import os

from intake import write_all as module
from intake.write_all import IOV_MAX, write_all


def test_short_writes_and_more_pieces_than_one_call_takes(tmp_path, monkeypatch):
    pieces = [os.urandom(n % 97 + 1) for n in range(3 * IOV_MAX + 5)]
    pieces[7] = b""  # empty pieces are skipped
    calls = []
    real = os.writev

    def short(fd, buffers):
        calls.append(len(buffers))
        assert len(buffers) <= IOV_MAX
        taken, left = [], 1000  # at most 1000 bytes a call, often mid-piece
        for b in buffers:
            if not left:
                break
            taken.append(bytes(b)[:left])
            left -= len(taken[-1])
        return real(fd, taken)

    monkeypatch.setattr(module.os, "writev", short)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert write_all(fd, pieces) == sum(map(len, pieces))
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(pieces)
    assert len(calls) > 3  # it did have to go on after short writes


def test_nothing_to_write_makes_no_call(tmp_path, monkeypatch):
    monkeypatch.setattr(module.os, "writev", lambda fd, b: (_ for _ in ()).throw(AssertionError))
    assert write_all(0, [b"", b""]) == 0
