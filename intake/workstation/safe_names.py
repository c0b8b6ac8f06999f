"""The safe-name rule: how a name sent by a witness becomes a file name on the
air-gapped machine (docs/workstation.md)."""

from __future__ import annotations

import unicodedata

_UNSAFE = set('<>:"/\\|?*')


def safe_output_name(name: str, fallback: str) -> str:
    """A name safe to create on the air-gapped machine's disk."""
    name = unicodedata.normalize("NFC", name or "")
    cleaned = "".join("_" if (c in _UNSAFE or unicodedata.category(c)[0] == "C") else c
                      for c in name).strip(" .")
    if not cleaned or cleaned in {".", ".."}:
        cleaned = fallback
    encoded = cleaned.encode()
    if len(encoded) > 200:
        stem, dot, ext = cleaned.rpartition(".")
        ext = ext if dot and len(ext.encode()) <= 16 else ""
        stem = (stem if ext else cleaned).encode()[:200 - len(ext.encode()) - 1]
        cleaned = stem.decode(errors="ignore") + ("." + ext if ext else "")
    return cleaned
