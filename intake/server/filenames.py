"""Checks on the names browsers send for uploaded files."""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 255


class BadFilename(ValueError):
    """reason is one of "nul", "path", "long"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _drive(name: str) -> bool:
    """A name that starts like `C:`: a Windows path (a Windows name cannot hold
    a colon). Sent unquoted, as old Internet Explorer did, its backslashes are
    taken as escapes by the header parser and vanish, so that
    `C:\\Users\\Ivan\\photo.jpg` arrives as `C:UsersIvanphoto.jpg`, the
    user's name inside."""
    return len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha()


def check_upload_name(name: str) -> str:
    """Returns the name as the witness's browser gave it, or refuses it.

    Browsers send a bare name; a path, a NUL or an endless name is a forged
    request or a broken client, and is refused rather than guessed at.
    """
    if "\0" in name:
        raise BadFilename("nul")
    if "/" in name or "\\" in name or _drive(name):
        raise BadFilename("path")
    if len(name) > MAX_NAME_CHARS:
        raise BadFilename("long")
    return unicodedata.normalize("NFC", name)
