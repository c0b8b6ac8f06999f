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
    # A byte-order mark, an XML declaration, comments or a DOCTYPE may come first.
    head = body[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<") and b"<svg" in head


# Kinds that carry metadata no cleaner here removes: an OLE container (how Word
# embeds a PDF or a .doc, with its source path), video and audio, archives,
# AVIF, RTF and PostScript. Inside another file they stop it from being cleaned.
UNCLEANABLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\x1a\x45\xdf\xa3", b"ID3", b"OggS",
               b"fLaC", b"FORM", b"{\\rtf", b"%!PS", b"\xc5\xd0\xd3\xc6", b"PK\x03\x04",
               b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b", b"BZh", b"\xfd7zXZ")


def _uncleanable(body: bytes) -> bool:
    if body.startswith(UNCLEANABLE) or body[4:8] == b"ftyp":  # ftyp: MP4, MOV, M4A, AVIF
        return True
    if body[:4] == b"RIFF":  # AVI, WAV (WebP is cleaned before this is asked)
        return True
    return len(body) > 1 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0  # MPEG audio


def _is_plain_text(body: bytes) -> bool:
    """UTF-8 text that is not markup or a document format: nothing hidden in it."""
    if b"\0" in body:
        return False
    try:
        text = body.decode("utf-8").removeprefix("\ufeff").lstrip()
    except UnicodeDecodeError:
        return False
    return not text.startswith(("<", "{\\rtf", "%!", "%PDF"))


def _is_office(body: bytes) -> bool:
    if not body.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, ValueError):
        return False
    return "[Content_Types].xml" in names or "mimetype" in names


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
    fields are added to `removed` as 'inside NAME: FIELD'. Plain text is kept.
    A part of any other kind is kept when `unknown_ok` (an office file's fonts,
    EMF/WMF drawings, macros) unless it is a kind known to carry what no
    cleaner here removes (UNCLEANABLE), and refused otherwise (a PDF's
    attachment that is not a picture, a PDF or an office file)."""
    cleaner = cleaner_for(body, limits, depth)
    if cleaner is None:
        if (unknown_ok and not _uncleanable(body)) or _is_plain_text(body):
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
