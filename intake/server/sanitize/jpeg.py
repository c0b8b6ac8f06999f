"""JPEG without recompression: the file's segments are rewritten, the
entropy-coded image data is copied byte for byte, so the decoded pixels are
identical to the original's.

Kept: the tables and frame/scan headers a decoder needs, a JFIF header without
its thumbnail, Adobe's colour-transform marker, a standard ICC profile, and
(when the picture is rotated) an EXIF block holding only the Orientation tag.
Gone: EXIF (GPS, serial numbers, the embedded thumbnail with its own EXIF,
maker notes), XMP, IPTC/Photoshop, comments, MPF and every byte after the
end-of-image marker (the extra frames of MPO files and vendor trailers).
"""

from __future__ import annotations

import struct

from intake.server.sanitize import icc
from intake.server.sanitize.base import Cleaned, Refused, bomb, field_name, unique

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
APP0, APP1, APP2, APP13, APP14, COM = 0xE0, 0xE1, 0xE2, 0xED, 0xEE, 0xFE
# Frame headers (SOF0-15 without DHT, JPG and DAC), tables, restart interval.
SOFS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
KEEP = SOFS | {0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDF}
EXIF_ID, XMP_ID, XMP_EXT_ID = b"Exif\0\0", b"http://ns.adobe.com/xap/1.0/\0", \
    b"http://ns.adobe.com/xmp/extension/\0"
ICC_ID, MPF_ID = b"ICC_PROFILE\0", b"MPF\0"


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def orientation_only_exif(orientation: int) -> bytes:
    """An EXIF block with one IFD entry: Orientation (0x0112, SHORT)."""
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 1) + \
        struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    return EXIF_ID + tiff


def exif_field_names(tiff: bytes) -> tuple[list[str], int]:
    """Names of the EXIF fields (never values), and the orientation (1 if none)."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    try:
        exif.load(b"Exif\0\0" + tiff)
    except Exception:  # noqa: BLE001 - unreadable EXIF is removed all the same
        return ["EXIF (unreadable)"], 1
    names = [f"EXIF:{ExifTags.TAGS.get(t, hex(t))}" for t in exif
             if t not in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)]
    for ifd, table in ((ExifTags.IFD.Exif, ExifTags.TAGS),
                       (ExifTags.IFD.GPSInfo, ExifTags.GPSTAGS)):
        try:
            names += [f"EXIF:{table.get(t, hex(t))}" for t in exif.get_ifd(ifd)]
        except Exception:  # noqa: BLE001
            names.append(f"EXIF:{ifd.name} (unreadable)")
    try:
        if exif.get_ifd(ExifTags.IFD.IFD1):
            names.append("EXIF:ThumbnailImage")
    except Exception:  # noqa: BLE001
        names.append("EXIF:IFD1 (unreadable)")
    orientation = exif.get(0x0112, 1)
    return names, orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _entropy_end(data: bytes, pos: int) -> int:
    """Index of the next marker after entropy-coded data starting at pos."""
    while True:
        j = data.find(b"\xff", pos)
        if j < 0 or j + 1 >= len(data):
            raise Refused("truncated JPEG")
        following = data[j + 1]
        if following == 0 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = j + 1
            continue
        return j


def _jfif(payload: bytes, removed: list[str]) -> bytes:
    if len(payload) >= 14 and payload[:5] == b"JFIF\0":
        if payload[12] or payload[13]:
            removed.append("JFIF:Thumbnail")
        return _segment(APP0, payload[:12] + b"\0\0")
    removed.append("APP0:" + field_name(payload[:5].split(b"\0")[0]))
    return b""


def clean(data: bytes, max_pixels: int) -> Cleaned:
    if data[:2] != b"\xff\xd8":
        raise Refused("not a JPEG")
    out = [b"\xff\xd8"]
    removed: list[str] = []
    orientation = 1
    icc_parts: list[tuple[bytes, bytes]] = []  # (segment, payload) in order
    header_at = 0  # where the EXIF/ICC segments are inserted, after JFIF
    pos = 2
    while True:
        if pos + 2 > len(data):
            raise Refused("truncated JPEG")
        if data[pos] != 0xFF:
            raise Refused("malformed JPEG")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == EOI:
            raise Refused("JPEG without image data")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > len(data):
            raise Refused("truncated JPEG")
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise Refused("truncated JPEG")
        segment, payload = data[pos:end], data[pos + 4:end]
        if marker in SOFS and len(payload) >= 5:
            height, width = struct.unpack(">HH", payload[1:5])
            if width * height > max_pixels:
                raise bomb("image too large")
        if marker == SOS:
            stop = _entropy_end(data, end)
            out.append(data[pos:stop])
            if data[stop + 1] == EOI:
                out.append(b"\xff\xd9")
                if data[stop + 2:].strip(b"\0"):
                    removed.append("data after end of image (extra frames, trailer)")
                break
            pos = stop
            continue
        if marker in KEEP:
            out.append(segment)
        elif marker == APP0:
            out.append(_jfif(payload, removed))
            header_at = len(out)
        elif marker == APP14 and payload[:5] == b"Adobe":
            out.append(segment)
        elif marker == APP1 and payload.startswith(EXIF_ID):
            names, orientation = exif_field_names(payload[6:])
            removed += names
        elif marker == APP1 and payload.startswith((XMP_ID, XMP_EXT_ID)):
            removed.append("XMP")
        elif marker == APP2 and payload.startswith(ICC_ID):
            icc_parts.append((segment, payload))
        elif marker == APP2 and payload.startswith(MPF_ID):
            removed.append("MPF (extra images)")
        elif marker == APP13:
            removed.append("IPTC/Photoshop")
        elif marker == COM:
            removed.append("Comment")
        else:
            ident = field_name(payload[:16].split(b"\0")[0], 16)
            removed.append(f"APP{marker - 0xE0}:{ident}" if 0xE0 <= marker <= 0xEF
                           else f"marker 0x{marker:02X}")
        pos = end
    extra: list[bytes] = []
    if orientation != 1:
        extra.append(_segment(APP1, orientation_only_exif(orientation)))
    if icc_parts:
        profile = b"".join(p[14:] for _s, p in sorted(icc_parts, key=lambda sp: sp[1][12]))
        if icc.is_standard(profile):
            extra += [s for s, _p in icc_parts]
        else:
            removed.append("ICC profile (not a standard one)")
    if orientation != 1 and "EXIF:Orientation" in removed:
        removed.remove("EXIF:Orientation")  # kept, alone, in a new EXIF block
    at = header_at or 1
    out[at:at] = extra
    return Cleaned(b"".join(out), unique(removed), tool="intake jpeg segments",
                   detected_type="image/jpeg")
