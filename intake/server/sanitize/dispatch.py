"""The one place that decides which cleaner handles a file: by its family (told
from the detected type) for a file sent alone, by its bytes for a file inside
another (a picture in an office document, a file attached to a PDF, a document
embedded in a document), which is then cleaned as if it had been sent alone.

A part that cannot be cleaned stops the whole file: it is then kept as
received and flagged, never passed on half-cleaned. Nesting goes two levels
deep at most; deeper is refused, like any other bomb. A picture embedded in
an SVG drawing counts as a level, as a file inside a document does.
"""

from __future__ import annotations

import io
import posixpath
import zipfile

from intake.server.sanitize.base import (
    Cleaned,
    CleanPart,
    CleanPicture,
    Refused,
    bomb,
    field_name,
)
from intake.server.sanitize.limits import Limits

MAX_DEPTH = 2
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
# The pictures an SVG may embed as data: URIs, told by their bytes, and the
# media type each is embedded again under once cleaned.
PICTURE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                 "webp": "image/webp", "tiff": "image/tiff", "heif": "image/heic",
                 "avif": "image/avif", "svg": "image/svg+xml"}


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


def clean(family: str, data: bytes, limits: Limits, depth: int = 0) -> Cleaned:
    """Cleans a whole file of a family that is not streamed (media is: see child)."""
    pixels, copied = limits.max_pixels, limits.max_pixels_copied  # decoded; copied as coded
    if family == "jpeg":
        from intake.server.sanitize import jpeg

        return jpeg.clean(data, copied)
    if family == "png":
        from intake.server.sanitize import png

        return png.clean(data, copied)
    if family == "webp":
        from intake.server.sanitize import webp

        return webp.clean(data, copied)
    if family == "gif":
        from intake.server.sanitize import gif

        return gif.clean(data, copied)
    if family in ("heif", "avif"):
        from intake.server.sanitize import heif, raster

        try:
            return heif.clean(data, copied)
        except heif.Unsupported:  # a layout the item rewrite does not vouch for
            return raster.clean(family, data, pixels)
    if family in ("tiff", "bmp", "pnm"):
        from intake.server.sanitize import raster

        return raster.clean(family, data, pixels)
    if family == "jxl":
        from intake.server.sanitize import jxl

        return jxl.clean(data)
    if family == "html":
        raise Refused("HTML pages are not cleaned: they can hold scripts, links and "
                      "tracking images")
    if family == "svg":
        from intake.server.sanitize import svg

        return svg.clean(data, _picture_cleaner(limits, depth + 1))
    if family in ("pdf", "ooxml", "odf", "epub", "zip"):
        if depth >= MAX_DEPTH:
            raise bomb("documents nested too deep")
        inner = _part_cleaner(limits, depth + 1)
        if family == "pdf":
            from intake.server.sanitize import pdf

            return pdf.clean(data, limits, inner)
        from intake.server.sanitize import office

        return office.clean(data, limits, inner, _picture_cleaner(limits, depth + 1))
    if family in ("mp3", "flac", "ogg"):
        from intake.server.sanitize import audio

        return audio.clean(family, data)
    raise Refused("unsupported type")


def family_of_part(body: bytes) -> str | None:
    """The family of a file inside another, told by its first bytes; None if it
    is not a kind that has anything to clean (or that we know how to clean)."""
    if body.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if body.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "webp"
    if body.startswith((b"II*\0", b"MM\0*")):
        return "tiff"
    if body[4:8] == b"ftyp" and body[8:12] in HEIF_BRANDS:
        return "heif"
    if body[4:8] == b"ftyp" and body[8:12] in (b"avif", b"avis"):
        return "avif"
    if _is_svg(body):
        return "svg"
    if body.startswith(b"%PDF-"):
        return "pdf"
    if _is_office(body):
        return "zip"
    return None


def _part_cleaner(limits: Limits, depth: int) -> CleanPart:
    def clean_part(name: str, body: bytes, removed: list[str], unknown_ok: bool) -> bytes:
        return clean_inside(name, body, limits, removed, depth, unknown_ok=unknown_ok)

    return clean_part


def _cleaned_inside(family: str, body: bytes, limits: Limits, depth: int,
                    what: str) -> Cleaned:
    """A part of a file cleaned by its family's cleaner; any failure refuses
    the whole file, saying `what` failed."""
    try:
        return clean(family, body, limits, depth)
    except Refused as exc:
        raise Refused(f"{what} could not be cleaned ({exc.reason})",
                      hostile=exc.hostile) from exc
    except Exception as exc:  # noqa: BLE001 - a malformed part, whatever the parser says
        raise Refused(f"{what} is malformed ({type(exc).__name__})") from exc


def _picture_cleaner(limits: Limits, depth: int) -> CleanPicture:
    def clean_picture(body: bytes, removed: list[str]) -> tuple[bytes, str]:
        if depth > MAX_DEPTH:
            raise bomb("documents nested too deep")
        family = family_of_part(body)
        if family not in PICTURE_TYPES:
            raise Refused("a picture inside the drawing is of a kind that cannot be cleaned")
        cleaned = _cleaned_inside(family, body, limits, depth, "a picture inside the drawing")
        removed += [f"inside embedded picture: {n}" for n in cleaned.removed]
        # Told again from the cleaned bytes: TIFF and HEIF may come back re-encoded.
        return cleaned.data, PICTURE_TYPES[family_of_part(cleaned.data) or family]

    return clean_picture


def clean_inside(name: str, body: bytes, limits: Limits, removed: list[str], depth: int,
                 *, unknown_ok: bool) -> bytes:
    """The part's bytes, cleaned if they are of a kind we clean; its removed
    fields are added to `removed` as 'inside NAME: FIELD'. Plain text is kept.
    A part of any other kind is kept when `unknown_ok` (an office file's fonts,
    EMF/WMF drawings, macros) unless it is a kind known to carry what no
    cleaner here removes (UNCLEANABLE), and refused otherwise (a PDF's
    attachment that is not a picture, a PDF or an office file)."""
    family = family_of_part(body)
    if family is None:
        if (unknown_ok and not _uncleanable(body)) or _is_plain_text(body):
            return body
        raise Refused("a file inside is of a kind that cannot be cleaned")
    cleaned = _cleaned_inside(family, body, limits, depth, "a file inside")
    label = field_name(posixpath.basename(name), 24)
    removed += [f"inside {label}: {n}" for n in cleaned.removed]
    return cleaned.data
