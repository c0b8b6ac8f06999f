"""Appending a large file straight to the disk, past the page cache (O_DIRECT).

An upload's envelope is written once and read again at most once, soon after.
Through the page cache every byte costs a copy into freshly allocated kernel
pages, then the same bytes again at fsync; with O_DIRECT the disk takes them
from our buffer and fsync has almost nothing left to do. O_DIRECT wants the
buffer's address, each write's length and the file offset aligned to the
block size, so bytes are gathered in page-aligned buffers and the unaligned
tail is written the ordinary way at the end. Filesystems without O_DIRECT
(tmpfs) get ordinary writes throughout.

A direct write returns only when the disk has the bytes, so it happens in a
helper thread while the next buffer fills (two buffers, one in flight). The
thread starts with the first full buffer: a small file never needs one.

After any failed write the appender refuses to write again: what reached the
file is unknown, so the file can only be given up.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os

from intake.server.background import Background

BLOCK = 4096  # a multiple of every logical block size in use
BUFFER = 1024 * 1024


class WriteFailed(OSError):
    """An earlier write to this file failed; the file must be given up."""


def _enable_direct(fd: int) -> bool:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


def _write_all(fd: int, data) -> None:
    with memoryview(data) as view:
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:])


class DirectAppender:
    """Appends to a file opened for writing at its start. flush() writes every
    byte given so far; after it, writes are ordinary ones."""

    def __init__(self, fd: int):
        self._fd = fd
        self.direct = hasattr(os, "O_DIRECT") and _enable_direct(fd)
        self._io: Background | None = None
        self._spare: mmap.mmap | None = None
        self._buf: mmap.mmap | None = None
        if self.direct:
            self._buf, self._spare = mmap.mmap(-1, BUFFER), mmap.mmap(-1, BUFFER)  # aligned
        self._fill = 0
        self._failed = False

    def _check(self) -> None:
        if self._failed:
            raise WriteFailed(errno.EIO, "an earlier write to this file failed")

    def write(self, data) -> int:
        self._check()
        if self._buf is None:
            self._guarded(_write_all, self._fd, data)
            return len(data)
        with memoryview(data) as view:
            at = 0
            while at < len(view):
                n = min(len(view) - at, BUFFER - self._fill)
                self._buf[self._fill:self._fill + n] = view[at:at + n]
                self._fill += n
                at += n
                if self._fill == BUFFER:
                    self._send_full()
        return len(data)

    def _send_full(self) -> None:
        if self._io is None:
            self._io = Background("intake-write", budget=BUFFER)
        # The budget is one buffer: this waits until the spare is written.
        self._guarded(self._io.submit, self._write_aligned, self._buf)
        self._buf, self._spare = self._spare, self._buf
        self._fill = 0

    def _guarded(self, call, *args) -> None:
        try:
            call(*args)
        except BaseException:
            self._failed = True
            raise

    def _write_aligned(self, data) -> None:
        with memoryview(data) as view:
            done = 0
            while done < len(view):
                try:
                    done += os.write(self._fd, view[done:])
                except OSError as exc:
                    # Some filesystems take the flag but refuse the writes; a
                    # short write can also leave the rest unaligned.
                    if exc.errno != errno.EINVAL or not self.direct:
                        raise
                    self._leave_direct()

    def _leave_direct(self) -> None:
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        self.direct = False

    def pause(self) -> None:
        """Waits for the buffer in flight and ends the helper thread; a later
        full buffer starts another."""
        self._check()
        if self._io is not None:
            io, self._io = self._io, None
            self._guarded(io.stop)

    def flush(self) -> None:
        """Writes what is gathered: its aligned part directly, the rest after
        leaving O_DIRECT, so the file holds every byte (to read it back, or to
        end it)."""
        self._check()
        if self._buf is None:
            return
        self.pause()
        aligned = self._fill - self._fill % BLOCK
        with memoryview(self._buf) as view:
            if aligned:
                self._guarded(self._write_aligned, view[:aligned])
            if self.direct:
                self._leave_direct()
            self._guarded(_write_all, self._fd, view[aligned:self._fill])
        self.close()

    def close(self) -> None:
        """Drops what is gathered and not written (the file is being given up)."""
        if self._io is not None:
            io, self._io = self._io, None
            with contextlib.suppress(Exception):  # reported already, or moot
                io.stop()
        for buf in (self._buf, self._spare):
            if buf is not None:
                # A failed write's traceback may still hold a view of it: then
                # it is unmapped when that goes.
                with contextlib.suppress(BufferError):
                    buf.close()
        self._buf = self._spare = None
        self._fill = 0

    def fileno(self) -> int:
        return self._fd
