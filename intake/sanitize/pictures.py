"""Files inside other files: pictures in office documents, files attached to a
PDF, documents embedded in documents. Each is cleaned by the cleaner of its
own family, chosen by its bytes, as if it had been sent alone.

A part that cannot be cleaned stops the whole file: it is then kept as
received and flagged, never passed on half-cleaned. Nesting goes two levels
deep at most; deeper is refused, like any other bomb.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable

from intake.sanitize.base import Cleaned, Refused, field_name
from intake.sanitize.limits import Limits

MAX_DEPTH = 2
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def _is_svg(body: bytes) -> bool:
    start = body[:1024].lstrip()
    return start.startswith((b"<svg", b"<?xml")) and b"<svg" in start


def _is_office(body: bytes) -> bool:
    if not body.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, ValueError):
        return False
    return "[Content_Types].xml" in names or "mimetype" in names


def _is_text(body: bytes) -> bool:
    """Plain UTF-8 text: nothing hidden in it to clean."""
    if b"\0" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def cleaner_for(body: bytes, limits: Limits, depth: int) -> Callable[[], Cleaned] | None:
    """How to clean `body`, told by its first bytes; None if it is not a kind
    that has anything to clean (or that we know how to clean)."""
    pixels = limits.max_pixels
    if body.startswith(b"\xff\xd8\xff"):
        from intake.sanitize import jpeg

        return lambda: jpeg.clean(body, pixels)
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        from intake.sanitize import png

        return lambda: png.clean(body, pixels)
    if body.startswith((b"GIF87a", b"GIF89a")):
        from intake.sanitize import gif

        return lambda: gif.clean(body, pixels)
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        from intake.sanitize import webp

        return lambda: webp.clean(body, pixels)
    if body.startswith((b"II*\0", b"MM\0*")):
        from intake.sanitize import raster

        return lambda: raster.clean("tiff", body, pixels)
    if body[4:8] == b"ftyp" and body[8:12] in HEIF_BRANDS:
        from intake.sanitize import raster

        return lambda: raster.clean("heif", body, pixels)
    if _is_svg(body):
        from intake.sanitize import svg

        return lambda: svg.clean(body)
    if body.startswith(b"%PDF-") or _is_office(body):
        if depth >= MAX_DEPTH:
            raise Refused("documents nested too deep")
        if body.startswith(b"%PDF-"):
            from intake.sanitize import pdf

            return lambda: pdf.clean(body, limits, depth + 1)
        from intake.sanitize import office

        return lambda: office.clean(body, limits, depth + 1)
    return None


def clean_inside(name: str, body: bytes, limits: Limits, removed: list[str], depth: int,
                 *, unknown_ok: bool) -> bytes:
    """The part's bytes, cleaned if they are of a kind we clean; its removed
    fields are added to `removed` as 'inside NAME: FIELD'. A part of any other
    kind is kept when `unknown_ok` (an office file's fonts and macros), and
    refused otherwise (a PDF's attachment: a video, an archive)."""
    cleaner = cleaner_for(body, limits, depth)
    if cleaner is None:
        if unknown_ok or _is_text(body):
            return body
        raise Refused("a file inside is of a kind that cannot be cleaned")
    try:
        cleaned = cleaner()
    except Refused as exc:
        raise Refused(f"a file inside could not be cleaned ({exc.reason})") from exc
    except Exception as exc:  # noqa: BLE001 - a malformed part, whatever the parser says
        raise Refused(f"a file inside is malformed ({type(exc).__name__})") from exc
    label = field_name(posixpath.basename(name), 24)
    removed += [f"inside {label}: {n}" for n in cleaned.removed]
    return cleaned.data
