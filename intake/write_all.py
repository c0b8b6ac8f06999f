"""Writing a list of buffers whole, in as few system calls as it takes.

The server's envelopes (intake.server.upload_spool) and the workstation's
decrypted files (intake.workstation.unseal) are written as lists of 64 KiB
pieces: writev() takes them without copying them into one buffer, but may
write fewer bytes than asked (a signal, a full disk's last blocks), and
takes at most IOV_MAX pieces at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

IOV_MAX = 1024  # pieces one writev() takes (Linux's UIO_MAXIOV)


def write_all(fd: int, pieces: Iterable[bytes | bytearray | memoryview]) -> int:
    """Writes every piece to `fd`, in order; returns how many bytes that was.
    An OSError (a full disk) leaves what was written before it written."""
    views = [memoryview(p) for p in pieces if len(p)]
    total = sum(map(len, views))
    while views:
        n = os.writev(fd, views[:IOV_MAX])
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]
    return total
