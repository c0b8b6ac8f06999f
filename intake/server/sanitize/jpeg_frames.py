"""Video frames that are JPEG pictures (Motion JPEG), edited in place.

Cameras that record Motion JPEG (in AVI, QuickTime or MP4) often write a
whole photo's metadata into every frame: EXIF with the make, model, serial
number and GPS, XMP, IPTC, comments. A stream copy keeps every byte of the
frames, so the containers' rewriters pass each frame through scrub(), which
makes each metadata segment a comment of the same size, filled with zeros:
the frame keeps its length, so no offset in any index moves, and decodes to
the same picture.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

MAX_FRAME = 16 * 1024 * 1024  # a JPEG frame read whole to blank its segments
SNIFF = b"\xff\xd8\xff"  # start of image, then the first marker
NOTE = "JPEG segments in video frames"
# JPEG markers whose segment carries no picture: APP1-APP13, APP15, COM.
DROPPED = {*range(0xE1, 0xEE), 0xEF, 0xFE}
# QuickTime's Motion JPEG format A puts the frame's layout (field sizes and
# offsets, numbers only) in an APP1 segment of this length, after four zeros.
MJPEG_A_LENGTH = 42
MJPEG_A_TAG = b"mjpg"
# In coded data, 0xFF is followed by 0 (a stuffed byte), a restart marker
# or more 0xFF: anything else is the next marker.
NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")


def is_jpeg(start: bytes) -> bool:
    return start[:3] == SNIFF


def scrub(frame: bytearray) -> bool:
    """Zeroes, in place, a JPEG frame's metadata segments (each made a
    comment of the same size), wherever they are (before the picture data or
    between the scans of a progressive one), and every byte after its end
    (EOI) but a second field's JPEG. Stops at what it cannot read (the
    decoder reads no further either). True if anything it zeroed held
    anything."""
    pos, changed = 2, False
    while pos + 2 <= len(frame):
        if frame[pos] != 0xFF:
            return changed
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length; D8: a second field
            pos += 2
            continue
        if marker == 0xD9:
            pos += 2
            if frame[pos:pos + 3] == SNIFF:
                continue
            changed = changed or any(frame[pos:])
            frame[pos:] = bytes(len(frame) - pos)
            return changed
        if pos + 4 > len(frame):
            return changed
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        if length < 2 or pos + 2 + length > len(frame):
            return changed
        if marker in DROPPED and not _layout(frame, pos, length):
            changed = changed or marker != 0xFE or any(frame[pos + 4:pos + 2 + length])
            frame[pos + 1] = 0xFE
            frame[pos + 4:pos + 2 + length] = bytes(length - 2)
        pos += 2 + length
        if marker == 0xDA:  # coded data, to the next marker
            found = NEXT_MARKER.search(frame, pos)
            if found is None:
                return changed
            pos = found.start()
    return changed


def _layout(frame: bytearray, pos: int, length: int) -> bool:
    """Whether the segment at `pos` is Motion JPEG A's layout, which names
    nothing and which QuickTime needs to find the second field."""
    return (frame[pos + 1] == 0xE1 and length == MJPEG_A_LENGTH
            and frame[pos + 4:pos + 12] == bytes(4) + MJPEG_A_TAG)


def pieces(ranges: list[tuple[int, int]], frames: list[tuple[int, int]]
           ) -> Iterator[tuple[int, int, bool]]:
    """The byte ranges of a copy, in order, as (offset, length, is_frame):
    each of `frames` (sorted, each inside one range, none overlapping) on its
    own, the rest of each range between them."""
    at = 0
    for offset, length in ranges:
        end = offset + length
        while at < len(frames) and frames[at][0] < end:
            start, size = frames[at]
            if start > offset:
                yield offset, start - offset, False
            yield start, size, True
            offset = start + size
            at += 1
        if offset < end:
            yield offset, end - offset, False
