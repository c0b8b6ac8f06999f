"""GIF by blocks: frames are copied untouched.

Kept: images, their graphic controls, plain-text frames and the looping
extension. Gone: comments, XMP and ICC application blocks, every other
application extension.
"""

from __future__ import annotations

import struct

from intake.server.sanitize.base import Cleaned, Refused, bomb, field_name, unique

LOOPING = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _sub_blocks_end(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise Refused("truncated GIF")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _color_table(flags: int) -> int:
    return 3 * (2 ** ((flags & 7) + 1)) if flags & 0x80 else 0


def clean(data: bytes, max_pixels: int) -> Cleaned:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise Refused("not a GIF")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    if width * height > max_pixels:
        raise bomb("image too large")
    pos = 13 + _color_table(flags)
    out, removed = [data[:pos]], []
    while True:
        if pos >= len(data):
            raise Refused("truncated GIF")
        block = data[pos]
        if block == 0x3B:
            out.append(b"\x3b")
            break
        if block == 0x2C:
            if pos + 10 > len(data):
                raise Refused("truncated GIF")
            end = _sub_blocks_end(data, pos + 10 + _color_table(data[pos + 9]) + 1)
            out.append(data[pos:end])
        elif block == 0x21 and pos + 2 <= len(data):
            label = data[pos + 1]
            end = _sub_blocks_end(data, pos + 2)
            if label in (0xF9, 0x01):
                out.append(data[pos:end])
            elif label == 0xFE:
                removed.append("Comment")
            elif label == 0xFF:
                ident = data[pos + 3:pos + 14]
                if ident in LOOPING:
                    out.append(data[pos:end])
                else:
                    removed.append({b"XMP DataXMP": "XMP", b"ICCRGBG1012": "ICC profile"}
                                   .get(ident, "application block " + field_name(ident)))
            else:
                removed.append(f"extension 0x{label:02X}")
        else:
            raise Refused("malformed GIF")
        pos = end
    if data[pos + 1:].strip(b"\0"):
        removed.append("data after end of image")
    return Cleaned(b"".join(out), unique(removed), tool="intake gif blocks",
                   detected_type="image/gif")
