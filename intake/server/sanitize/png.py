"""PNG by chunks: pixel data (IDAT, and APNG frames) is copied untouched.

Kept: the chunks that define the picture (header, palette, transparency,
colour space, gamma, animation). Gone: text chunks (tEXt, zTXt, iTXt, which
hold authors, software, XMP and comments), tIME, eXIf, non-standard ICC
profiles (a standard one's name too), and every private chunk.
"""

from __future__ import annotations

import struct
import zlib

from intake.server.sanitize import icc
from intake.server.sanitize.base import Cleaned, Refused, bomb, field_name, unique

SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT",
        b"bKGD", b"hIST", b"pHYs", b"acTL", b"fcTL", b"fdAT", b"cICP", b"cLLI", b"mDCV"}
TEXT = {b"tEXt", b"zTXt", b"iTXt"}
ICC_NAME = b"ICC Profile"


def _profile(payload: bytes) -> bytes:
    name_end = payload.find(b"\0")
    stream = zlib.decompressobj()
    profile = stream.decompress(payload[name_end + 2:], 4 * 1024 * 1024)
    return profile


def clean(data: bytes, max_pixels: int) -> Cleaned:
    if not data.startswith(SIGNATURE):
        raise Refused("not a PNG")
    out, removed, pos = [SIGNATURE], [], len(SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise Refused("truncated PNG")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise Refused("truncated PNG")
        chunk, payload = data[pos:end], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", payload[:8])
            if width * height > max_pixels:
                raise bomb("image too large")
        if kind in KEEP:
            out.append(chunk)
        elif kind == b"iCCP" and icc.is_standard(_profile(payload)):
            # The profile's name is the writer's to choose ("Ivan's MacBook"):
            # the chunk is written anew with the name Pillow and libpng give.
            name_end = payload.find(b"\0")
            renamed = ICC_NAME + payload[name_end:]
            if renamed != payload:
                removed.append("iCCP:name")
            out.append(struct.pack(">I", len(renamed)) + kind + renamed
                       + struct.pack(">I", zlib.crc32(kind + renamed)))
        elif kind in TEXT:
            keyword = payload[:79].split(b"\0")[0]
            removed.append(f"{kind.decode()}:{field_name(keyword)}")
        elif kind == b"iCCP":
            removed.append("ICC profile (not a standard one)")
        else:
            removed.append(field_name(kind))
        pos = end
        if kind == b"IEND":
            break
    if data[pos:].strip(b"\0"):
        removed.append("data after end of image")
    return Cleaned(b"".join(out), unique(removed), tool="intake png chunks",
                   detected_type="image/png")
