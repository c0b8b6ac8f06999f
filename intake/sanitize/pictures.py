"""Pictures inside other files (office documents, PDF attachments), cleaned
with the same cleaners as pictures sent alone, chosen by their first bytes.

A picture that cannot be cleaned stops the whole file: it is then kept as
received and flagged, never passed on half-cleaned.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from intake.sanitize.base import Cleaned, Refused, field_name


def cleaner_for(body: bytes) -> Callable[[bytes, int], Cleaned] | None:
    if body.startswith(b"\xff\xd8\xff"):
        from intake.sanitize import jpeg

        return jpeg.clean
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        from intake.sanitize import png

        return png.clean
    if body.startswith((b"GIF87a", b"GIF89a")):
        from intake.sanitize import gif

        return gif.clean
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        from intake.sanitize import webp

        return webp.clean
    if body.startswith((b"II*\0", b"MM\0*")):
        from intake.sanitize import raster

        return lambda data, max_pixels: raster.clean("tiff", data, max_pixels)
    return None


def clean_inside(name: str, body: bytes, max_pixels: int, removed: list[str]) -> bytes:
    """The part's bytes, cleaned if they are a picture; its removed fields are
    added to `removed` as 'picture NAME: FIELD'."""
    cleaner = cleaner_for(body)
    if cleaner is None:
        return body
    try:
        cleaned = cleaner(body, max_pixels)
    except Refused as exc:
        raise Refused(f"a picture inside could not be cleaned ({exc.reason})") from exc
    except Exception as exc:  # noqa: BLE001 - a malformed picture, whatever the parser says
        raise Refused(f"a picture inside is malformed ({type(exc).__name__})") from exc
    label = field_name(posixpath.basename(name), 24)
    removed += [f"picture {label}: {n}" for n in cleaned.removed]
    return cleaned.data
