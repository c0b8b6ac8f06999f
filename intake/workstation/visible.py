"""Text from witnesses shown as it is, including what would otherwise be invisible.

A testimony may hold control characters, bidirectional overrides (which
reorder what is shown: "U+202E") or zero-width characters, by accident or to
mislead whoever reads it. The desk shows each as a visible sign: C0 controls
as their Unicode control pictures (NUL as "␀"), the rest as "⟨U+202E⟩".
Templates escape the result like any other text.
"""

from __future__ import annotations

import unicodedata

KEPT = {"\t", "\n", "\r"}
HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}


def _picture(c: str) -> str:
    code = ord(c)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return c


def show_controls(text: str) -> str:
    """C0 controls and DEL (tab and line breaks aside) as control pictures: one
    character for one, so offsets and words stay where they were."""
    return "".join(_picture(c) if (ord(c) < 0x20 or ord(c) == 0x7F) and c not in KEPT else c
                   for c in text)


def visible(text: str, one_line: bool = False) -> str:
    """Every character a reader could miss, shown as a sign. With one_line,
    line breaks become "⏎" so that a snippet keeps to one line."""
    out = []
    for c in text:
        if c in KEPT:
            out.append(" ⏎ " if one_line and c == "\n" else (" " if one_line else c))
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(_picture(c))
        elif unicodedata.category(c) in HIDDEN_CATEGORIES:
            out.append(f"⟨U+{ord(c):04X}⟩")
        else:
            out.append(c)
    return "".join(out)
