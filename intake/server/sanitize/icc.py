"""ICC colour profiles: kept only when they are a well-known standard profile.

A profile made by calibrating one screen or printed by one camera can carry a
device model, a creation time or a person's name in its description. The
standard ones (sRGB, Display P3, Adobe RGB) say nothing about the witness and
keep colours right, so those stay; anything else goes.
"""

from __future__ import annotations

import hashlib
import struct

STANDARD = {
    "sRGB IEC61966-2.1", "sRGB IEC61966-2-1 black scaled", "sRGB", "sRGB built-in",
    "Display P3", "Adobe RGB (1998)", "Compatible with Adobe RGB (1998)",
    "Generic Gray Gamma 2.2 Profile", "Dot Gain 20%", "sGray", "Linear Gray",
    "ITU-R BT.2020", "Rec. 2020", "ProPhoto RGB", "DCI-P3",
}
# Profiles a maker's phones all embed, byte for byte (SHA-256 of the whole
# profile): they tell the make, as Apple's Display P3 does, and nothing of
# the phone or the person. Kept, the photo is rewritten as coded instead of
# re-encoded (lossy, larger, and slower).
SHIPPED = {
    # Samsung Galaxy phones' "DCI-P3 D65 Gamut with sRGB Transfer" (2022), 632 bytes.
    "d77bd8c4008f1813dca5e67762872667734f796a188b52123db65fd5fda262a9",
}


def description(profile: bytes) -> str | None:
    """The profile's 'desc' text (ICC v2 'desc' or v4 'mluc'), or None."""
    if len(profile) < 132 or profile[36:40] != b"acsp":
        return None
    (count,) = struct.unpack(">I", profile[128:132])
    for i in range(min(count, 100)):
        base = 132 + 12 * i
        if base + 12 > len(profile):
            return None
        sig, offset, size = struct.unpack(">4sII", profile[base:base + 12])
        if sig != b"desc":
            continue
        tag = profile[offset:offset + size]
        if tag[:4] == b"desc" and len(tag) >= 12:
            (n,) = struct.unpack(">I", tag[8:12])
            return tag[12:12 + n].split(b"\0")[0].decode("latin-1")
        if tag[:4] == b"mluc" and len(tag) >= 28:
            (records,) = struct.unpack(">I", tag[8:12])
            if records:
                length, start = struct.unpack(">II", tag[20:28])
                return tag[start:start + length].decode("utf-16-be", "replace")
    return None


def is_standard(profile: bytes) -> bool:
    return description(profile) in STANDARD or \
        hashlib.sha256(profile).hexdigest() in SHIPPED
