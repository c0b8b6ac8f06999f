"""The safe-name rule: how a name sent by a witness becomes a file name on the
air-gapped machine (docs/workstation.md, "The safe-name rule").

The name only ever becomes the last part of a path, inside a folder named
from validated ids and opened by this run; this rule makes sure it is one
plain name there: no separator, no `.` or `..`, nothing hidden, nothing that
a terminal or a file manager would obey.
"""

from __future__ import annotations

import unicodedata

from intake.workstation.safe_text import is_hidden

# Path separators and what Windows and most file managers refuse in a name.
_UNSAFE = set('<>:"/\\|?*')
MAX_NAME_BYTES = 200
MAX_EXTENSION_BYTES = 16


def safe_output_name(name: str, fallback: str) -> str:
    """A name safe to create on the air-gapped machine's disk.

    1. Unicode NFC.
    2. Every separator or character of `<>:"/\\|?*`, and every hidden character
       (controls, NUL, bidi and other format characters, line separators,
       private-use and unassigned code points) becomes `_`.
    3. Spaces and dots are removed from both ends (no hidden file, no `..`);
       a leading `-` becomes `_` (no name reads as a command's option).
    4. Nothing left: `fallback` (made by the caller from a validated id).
    5. Longer than 200 bytes of UTF-8: cut to 200, keeping an extension of
       at most 16 bytes.
    """
    name = unicodedata.normalize("NFC", name or "")
    cleaned = "".join("_" if (c in _UNSAFE or is_hidden(c)) else c for c in name).strip(" .")
    if cleaned.startswith("-"):
        cleaned = "_" + cleaned[1:]
    if not cleaned:
        cleaned = fallback
    encoded = cleaned.encode()
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, ext = cleaned.rpartition(".")
        ext = ext if dot and len(ext.encode()) <= MAX_EXTENSION_BYTES else ""
        stem = (stem if ext else cleaned).encode()[:MAX_NAME_BYTES - len(ext.encode()) - 1]
        cleaned = stem.decode(errors="ignore").rstrip(" .") + ("." + ext if ext else "")
    return cleaned
