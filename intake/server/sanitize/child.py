"""The sanitizing child: `python -m intake.server.sanitize.child SIZE LIMIT...`
(or forked by the zygote with the same arguments).

It lowers its own resource limits and confines itself (intake.server.sanitize
.confine: seccomp and Landlock) first, then reads the upload from stdin,
tells its type from its bytes (libmagic and the file's own structure, here
rather than in the web worker), cleans it, checks the cleaned copy
(intake.server.sanitize.verify) and writes one frame to stdout: MAGIC, a
4-byte length, a JSON header, then the cleaned bytes. Nothing touches a disk:
an MP4, WAV or AIFF is rewritten as it streams through (intake.server
.sanitize.stream, read twice when its index or format comes after its
media); inputs that ffmpeg must seek are put in a memory file (memfd).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys

from intake.server.sanitize import confine, detect, dispatch, verify
from intake.server.sanitize import limits as lim
from intake.server.sanitize.base import Cleaned, Refused
from intake.server.sanitize.protocol import (
    CUT_SHORT,
    FAILED_CHECK,
    MAGIC,
    MEDIA,
    OUT_OF_MEMORY,
    output_cap,
)
from intake.server.sanitize.stream import Input

MAX_NAMES = 500
HEAD = 64 * 1024


def enter_sandbox(limits: lim.Limits, size: int) -> confine.Confinement:
    """Limits, then Landlock and seccomp, before a byte of the upload is read.
    Files may be written (into memory files only: Landlock forbids every path)
    up to the output cap until the type is known; see main()."""
    detect.prepare()
    confine.prepare()
    lim.apply(limits, max(size, output_cap(size)))
    confinement = confine.confine()
    if not confinement.seccomp:
        raise Refused("the sandbox could not be set up (seccomp)")
    return confinement


def _clean(inp: Input, limits: lim.Limits, header: dict):
    size = inp.size
    head = inp.peek(HEAD)
    found = detect.libmagic(head)
    header["detected_type"] = found
    family = detect.family(head, found)
    data = None
    if family == "zip" or (family is not None and family not in MEDIA):
        data = inp.read(size)
    if family == "zip":
        family = detect.zip_kind(data)  # type: ignore[arg-type]
    header["family"] = family
    if family is None:
        raise Refused("unsupported type")
    if family not in MEDIA:  # no tool of this family writes, not even into memory
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        cleaned = dispatch.clean(family, data, limits)  # type: ignore[arg-type]
        verify.check(family, data, cleaned, limits)  # type: ignore[arg-type]
        return cleaned
    from intake.server.sanitize import media

    cleaned = media.clean(family, inp, size, output_cap(size), limits.media_memory)
    if not cleaned.chunked:  # else checked as it is sent (media._pump)
        verify.check_media(cleaned)
    return cleaned


def _frame(header: dict, cleaned: Cleaned | None = None) -> None:
    if cleaned is not None and cleaned.chunked:
        _chunked(header, cleaned)
        return
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
    if cleaned is not None and cleaned.rest is not None:
        try:
            cleaned.rest(out.fileno())
        except verify.Failed:
            os._exit(FAILED_CHECK)
        except BaseException:  # noqa: BLE001 - the header is out: only the exit status can say
            # Whatever happened, the parent must not take the bytes sent so
            # far for a whole file: it sees them end short, and this status.
            os._exit(CUT_SHORT)


def _chunked(header: dict, cleaned: Cleaned) -> None:
    """A copy whose length is not known beforehand: the header (`"chunked":
    true`), the pieces, then a second header with the verdict on the copy,
    the fields removed and the tool."""
    out = sys.stdout.buffer
    blob = json.dumps({**header, "chunked": True, "size": -1}).encode()
    out.write(MAGIC + struct.pack(">I", len(blob)) + blob)
    out.flush()
    try:
        cleaned.rest(out.fileno())  # type: ignore[misc]
        verdict = {"ok": True, "removed": cleaned.removed[:MAX_NAMES], "tool": cleaned.tool}
    except Refused as exc:
        verdict = {"ok": False, "reason": exc.reason, "hostile": exc.hostile}
    except BaseException:  # noqa: BLE001 - only the exit status can say
        os._exit(CUT_SHORT)
    blob = json.dumps(verdict).encode()
    out.write(MAGIC + struct.pack(">I", len(blob)) + blob)
    out.flush()


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
    size = int(argv[0])
    limits = lim.Limits.from_argv(argv[1:])
    header: dict = {"detected_type": "application/octet-stream", "family": None}
    try:
        sandbox = enter_sandbox(limits, size)
        header["sandbox"] = {"seccomp": sandbox.seccomp, "landlock": sandbox.landlock}
        cleaned = _clean(Input(0, size), limits, header)
    except Refused as exc:
        _frame({**header, "ok": False, "reason": exc.reason, "hostile": exc.hostile})
        return 0
    except MemoryError:
        _frame({**header, "ok": False, "reason": "memory limit reached"})
        return 0
    except Exception as exc:  # noqa: BLE001 - any parser failure means "malformed"
        # Only the exception's type: its message may quote the file.
        family = header.get("family") or "unknown"
        _frame({**header, "ok": False, "reason": f"malformed {family} file ({type(exc).__name__})"})
        return 0
    removed = cleaned.removed
    if len(removed) > MAX_NAMES:  # a file can name thousands of fields: the header stays small
        removed = [*removed[:MAX_NAMES], f"and {len(removed) - MAX_NAMES} more fields"]
    _frame({**header, "ok": True, "removed": removed, "tool": cleaned.tool,
            "detected_type": cleaned.detected_type or header["detected_type"]}, cleaned)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except MemoryError:
        os._exit(OUT_OF_MEMORY)
