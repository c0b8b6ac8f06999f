"""JPEG XL: the ISO box container rewritten with only what the picture needs.

A bare codestream (FF 0A) has no room for metadata. In the container, Exif,
XMP (`xml `), JUMBF (`jumb`), compressed boxes (`brob`, which may hold any of
those) and the JPEG reconstruction data (`jbrd`, which can carry the original
JPEG's markers) are dropped; the codestream (`jxlc`, `jxlp`) and its level
(`jxll`) are copied byte for byte.
"""

from __future__ import annotations

from intake.server.sanitize.base import Cleaned, Refused, field_name, unique
from intake.server.sanitize.heif import Unsupported, boxes

SIGNATURE = b"\0\0\0\x0cJXL \r\n\x87\n"
KEPT = {b"JXL ", b"ftyp", b"jxll", b"jxlc", b"jxlp"}
NAMES = {b"Exif": "Exif", b"xml ": "XMP", b"jumb": "JUMBF", b"brob": "compressed metadata box",
         b"jbrd": "JPEG reconstruction data"}


def clean(data: bytes) -> Cleaned:
    if data.startswith(b"\xff\x0a"):
        return Cleaned(data, [], tool="intake jxl boxes", detected_type="image/jxl")
    if not data.startswith(SIGNATURE):
        raise Refused("malformed JPEG XL file")
    out, removed, codestream = [], [], False
    try:
        for kind, h, _p, e in boxes(data, 0, len(data)):
            if kind in KEPT:
                out.append(data[h:e])
                codestream |= kind in (b"jxlc", b"jxlp")
            else:
                removed.append(NAMES.get(kind, "box " + field_name(kind, 4)))
    except Unsupported as exc:
        raise Refused("malformed JPEG XL file") from exc
    if not codestream:
        raise Refused("malformed JPEG XL file (no codestream)")
    return Cleaned(b"".join(out), unique(removed), tool="intake jxl boxes",
                   detected_type="image/jxl")
