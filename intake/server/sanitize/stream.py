"""The upload as the child reads it: from its stdin, forward only, never
held whole.

The parent sends the upload once; a cleaner that must see the end of a file
before it can write the start (an MP4 whose index is at the end, a WAV
whose format chunk follows its samples) reads it to the end, asks for it
again (`again()`: a frame `{"again": true}` on stdout,
intake.server.sanitize.runner), and reads it a second time. The
parent decrypts it again from its envelope: nothing is kept in the clear in
between, in memory or on disk.
"""

from __future__ import annotations

import errno
import json
import os
import struct

from intake.server.sanitize.base import Refused
from intake.server.sanitize.protocol import AGAIN, MAGIC

PIECE = 1024 * 1024


class Input:
    def __init__(self, fd: int, size: int, out: int = 1):
        self.fd, self.size, self.out = fd, size, out
        self.pos = 0  # of the next byte, in the current pass
        self.passes = 1
        self._ahead = b""  # read by peek(), not yet consumed

    def peek(self, n: int) -> bytes:
        """The next n bytes (fewer at the end), left to be read again."""
        n = min(n, self.size - self.pos)
        if len(self._ahead) < n:
            self._ahead += self._raw(n - len(self._ahead))
        return self._ahead[:n]

    def _raw(self, n: int) -> bytes:
        parts, want = [], n
        while want > 0:
            piece = os.read(self.fd, min(want, PIECE))
            if not piece:
                raise Refused("the upload arrived incomplete")
            parts.append(piece)
            want -= len(piece)
        return b"".join(parts)

    def _check(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise Refused("the upload arrived incomplete")

    def read(self, n: int) -> bytes:
        """Exactly n bytes."""
        self._check(n)
        taken, self._ahead = self._ahead[:n], self._ahead[n:]
        data = taken + self._raw(n - len(taken)) if len(taken) < n else taken
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        self._check(n)
        taken = min(n, len(self._ahead))
        self._ahead = self._ahead[taken:]
        self.pos += taken
        left = n - taken
        while left:
            piece = os.read(self.fd, min(left, PIECE))
            if not piece:
                raise Refused("the upload arrived incomplete")
            left -= len(piece)
            self.pos += len(piece)

    def copy(self, n: int, out: int) -> None:
        """The next n bytes straight to the descriptor `out` (a pipe);
        splice() moves them between the pipes without a copy through this
        process where the kernel can."""
        self._check(n)
        if self._ahead:
            taken, self._ahead = self._ahead[:n], self._ahead[n:]
            write_all(out, taken)
            self.pos += len(taken)
            n -= len(taken)
        while n:
            try:
                moved = os.splice(self.fd, out, min(n, PIECE))
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
                moved = self._copy_by_hand(min(n, PIECE), out)
            if not moved:
                raise Refused("the upload arrived incomplete")
            n -= moved
            self.pos += moved

    def _copy_by_hand(self, n: int, out: int) -> int:
        piece = os.read(self.fd, n)
        write_all(out, piece)
        return len(piece)

    def again(self) -> None:
        """Reads what is left of this pass, then asks for the upload again."""
        if self.passes > AGAIN:
            raise Refused("the upload was asked for too many times")
        self.skip(self.size - self.pos)
        blob = json.dumps({"again": True}).encode()
        write_all(self.out, MAGIC + struct.pack(">I", len(blob)) + blob)
        self.pos = 0
        self.passes += 1


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
