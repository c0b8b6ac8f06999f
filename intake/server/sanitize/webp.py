"""WebP by RIFF chunks: the compressed picture is copied untouched.

Gone: EXIF and XMP chunks, non-standard ICC profiles, unknown chunks; the
extended header's flags are updated to match.
"""

from __future__ import annotations

import struct

from intake.server.sanitize import icc
from intake.server.sanitize.base import Cleaned, Refused, bomb, field_name, unique

KEEP = {b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"}
ICC_FLAG, EXIF_FLAG, XMP_FLAG = 0x20, 0x08, 0x04


def clean(data: bytes, max_pixels: int) -> Cleaned:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise Refused("not a WebP")
    chunks, removed, pos = [], [], 12
    vp8x_index, kept_icc = None, False
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > len(data):
            raise Refused("truncated WebP")
        chunk = data[pos:min(end, len(data))]
        if len(chunk) & 1:
            chunk += b"\0"
        if kind == b"VP8X":
            if length < 10:
                raise Refused("malformed WebP")
            width = int.from_bytes(chunk[12:15], "little") + 1
            height = int.from_bytes(chunk[15:18], "little") + 1
            if width * height > max_pixels:
                raise bomb("image too large")
            vp8x_index = len(chunks)
            chunks.append(bytearray(chunk))
        elif kind in KEEP:
            chunks.append(chunk)
        elif kind == b"ICCP" and icc.is_standard(chunk[8:8 + length]):
            chunks.append(chunk)
            kept_icc = True
        else:
            removed.append({b"EXIF": "EXIF", b"XMP ": "XMP", b"ICCP": "ICC profile"}
                           .get(kind, field_name(kind)))
        pos = end
    if not chunks:
        raise Refused("WebP without image data")
    if vp8x_index is not None:
        header = chunks[vp8x_index]
        header[8] &= ~(EXIF_FLAG | XMP_FLAG | (0 if kept_icc else ICC_FLAG)) & 0xFF
        chunks[vp8x_index] = bytes(header)
    body = b"WEBP" + b"".join(chunks)
    return Cleaned(b"RIFF" + struct.pack("<I", len(body)) + body, unique(removed),
                   tool="intake webp chunks", detected_type="image/webp")
