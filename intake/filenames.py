"""Checks on the names browsers send for uploaded files."""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 255


class BadFilename(ValueError):
    """reason is one of "nul", "path", "long"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_upload_name(name: str) -> str:
    """Returns the name as the witness's browser gave it, or refuses it.

    Browsers send a bare name; a path, a NUL or an endless name is a forged
    request or a broken client, and is refused rather than guessed at.
    """
    if "\0" in name:
        raise BadFilename("nul")
    if "/" in name or "\\" in name:
        raise BadFilename("path")
    if len(name) > MAX_NAME_CHARS:
        raise BadFilename("long")
    return unicodedata.normalize("NFC", name)


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
