"""The sanitizing child: `python -m intake.server.sanitize.child FAMILY SIZE LIMIT...`.

It lowers its own resource limits first, then reads the upload from stdin and
writes one frame to stdout: MAGIC, a 4-byte length, a JSON header, then the
cleaned bytes. Nothing touches a disk: inputs that a tool must seek are put in
a memory file (memfd) by the cleaner that needs it.
"""

from __future__ import annotations

import json
import os
import struct
import sys

from intake.server.sanitize import dispatch
from intake.server.sanitize import limits as lim
from intake.server.sanitize.base import Cleaned, Refused
from intake.server.sanitize.protocol import MAGIC, MEDIA, OUT_OF_MEMORY, output_cap

MAX_NAMES = 500


def _clean(family: str, size: int, limits: lim.Limits):
    if family in MEDIA:
        from intake.server.sanitize import media

        return media.clean(family, sys.stdin.buffer, size, output_cap(size))
    data = sys.stdin.buffer.read(size + 1)
    if len(data) != size:  # the parent stopped short, or sent more than it said
        raise Refused("the upload arrived incomplete")
    return dispatch.clean(family, data, limits)


def _frame(header: dict, cleaned: Cleaned | None = None) -> None:
    body = cleaned.data if cleaned is not None else b""
    size = cleaned.length if cleaned is not None else 0
    blob = json.dumps({**header, "size": size}).encode()
    out = sys.stdout.buffer
    out.write(MAGIC + struct.pack(">I", len(blob)) + blob)
    out.write(body)
    out.flush()
    if cleaned is not None and cleaned.fd is not None:
        try:
            for offset, length in cleaned.ranges:
                _send(cleaned.fd, offset, length, out.fileno())
        finally:
            os.close(cleaned.fd)


def _send(fd: int, offset: int, length: int, out: int) -> None:
    """A piece of the memory file to stdout; sendfile() spares a copy through
    this process."""
    end = offset + length
    try:
        while offset < end:
            sent = os.sendfile(out, fd, offset, end - offset)
            if sent == 0:
                break
            offset += sent
    except OSError:
        while offset < end:
            piece = os.pread(fd, min(1024 * 1024, end - offset), offset)
            if not piece:
                break
            _write_all(out, piece)
            offset += len(piece)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str]) -> int:
    family, size = argv[0], int(argv[1])
    limits = lim.Limits.from_argv(argv[2:])
    # Only media tools write, and only into memory files: they need room for
    # the input and the output; every other family may write no file at all.
    lim.apply(limits, max(size, output_cap(size)) if family in MEDIA else 0)
    try:
        cleaned = _clean(family, size, limits)
    except Refused as exc:
        _frame({"ok": False, "reason": exc.reason})
        return 0
    except MemoryError:
        _frame({"ok": False, "reason": "memory limit reached"})
        return 0
    except Exception as exc:  # noqa: BLE001 - any parser failure means "malformed"
        # Only the exception's type: its message may quote the file.
        _frame({"ok": False, "reason": f"malformed {family} file ({type(exc).__name__})"})
        return 0
    removed = cleaned.removed
    if len(removed) > MAX_NAMES:  # a file can name thousands of fields: the header stays small
        removed = [*removed[:MAX_NAMES], f"and {len(removed) - MAX_NAMES} more fields"]
    _frame({"ok": True, "removed": removed, "tool": cleaned.tool,
            "detected_type": cleaned.detected_type}, cleaned)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except MemoryError:
        os._exit(OUT_OF_MEMORY)
