"""ICC colour profiles: kept only when they are, byte for byte, a well-known
standard profile.

A profile made by calibrating one screen or printed by one camera can carry a
device model, a creation time or a person's name: in its description, in its
device tags (dmnd, dmdd), in a private tag, in its header. The standard ones
(sRGB, Display P3, Adobe RGB) say nothing about the witness and keep colours
right, so those stay; anything else goes. A description is not enough: a
profile that calls itself "sRGB IEC61966-2.1" may carry an added tag with a
phone's serial number, or curves measured on one screen. So a profile is
standard only if its bytes are those of one of the profiles below, apart
from the header's creation date and profile id (which lcms, Pillow's colour
library, fills with the time it wrote the profile, and a checksum of it).
"""

from __future__ import annotations

import hashlib
import struct

# Descriptions of the standard profiles (no longer enough to keep one).
STANDARD = {
    "sRGB IEC61966-2.1", "sRGB IEC61966-2-1 black scaled", "sRGB", "sRGB built-in",
    "Display P3", "Adobe RGB (1998)", "Compatible with Adobe RGB (1998)",
    "Generic Gray Gamma 2.2 Profile", "Dot Gain 20%", "sGray", "Linear Gray",
    "ITU-R BT.2020", "Rec. 2020", "ProPhoto RGB", "DCI-P3",
}
# SHA-256 of each standard profile with its creation date (bytes 24-35) and
# profile id (84-99) zeroed. Each is a profile that every device or program
# of a kind embeds, the same bytes everywhere: it tells the make, as Apple's
# Display P3 does, and nothing of the phone or the person. Kept, a HEIC is
# rewritten as coded instead of re-encoded (lossy, larger, and slower).
KNOWN = {
    # sRGB IEC61966-2.1 (Equivalent to www.srgb.com 1998 HP profile), 3268
    # bytes, as Argyll writes it (TeX Live's colorprofiles).
    "c9b56915223800aa00e4b9572308fafbf2da351f84efcc9c7f27f5821e7be280": "sRGB (Argyll)",
    # lcms's "sRGB", v2, 6922 bytes (pikepdf's PDF/A output intent).
    "76c42fb897fe303726a520cc678bacd1400772a39265889ded8e5ea46a4534a3": "sRGB (lcms v2)",
    # lcms 2's "sRGB built-in", v4.4, 588 bytes: Pillow's ImageCms.createProfile("sRGB").
    "f05e871ae8d9f56127c6d4c5af6e77b7a2980e1fce8c2155188a813b71e323df": "sRGB built-in",
    # Apple's Display P3: iPhone XS (548 bytes, 2017) and 13 Pro (536 bytes, 2022).
    "bddf754ffa832f4fd689a8b902f816e81f177309e1448a701f218d7b7c84e063": "Display P3 (2017)",
    "462e5966b1b8f5dd54368e6bbfa3e0e0be8fe58fa24f6cd153bd19b1527178b6": "Display P3 (2022)",
    # Samsung Galaxy phones' "DCI-P3 D65 Gamut with sRGB Transfer" (2022), 632 bytes.
    "ad791626c289c3088831bb732325f3495a19f6d50c79e11b1c6cead26ed35a73": "DCI-P3 (Samsung)",
    # Adobe RGB (1998), 560 bytes, as Nikon's and Adobe's programs embed it.
    "0d4ef57b8943a53b2a8081b628eef2c6a2e13146f644595aaab70ed94bb6d652": "Adobe RGB (1998)",
}


def canonical(profile: bytes) -> str:
    """The SHA-256 of the profile with its creation date and profile id zeroed."""
    if len(profile) < 128:
        return hashlib.sha256(profile).hexdigest()
    data = bytearray(profile)
    data[24:36], data[84:100] = bytes(12), bytes(16)
    return hashlib.sha256(bytes(data)).hexdigest()


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
    return canonical(profile) in KNOWN
