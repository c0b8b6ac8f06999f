"""What every family's cleaner returns, and how it refuses."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


class Refused(Exception):
    """The file is not cleaned; `reason` is a fixed phrase, never file content.
    A `hostile` file (a bomb, an image past the pixel limit) is not offered
    to the witness to send as it is: it is not kept at all."""

    def __init__(self, reason: str, hostile: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.hostile = hostile


def bomb(reason: str) -> Refused:
    return Refused(reason, hostile=True)


@dataclass
class Cleaned:
    data: bytes
    removed: list[str] = field(default_factory=list)
    tool: str = ""  # the library or program that did the work, with its version
    detected_type: str | None = None  # when the child knows better than libmagic
    # Large results stay in a memory file after `data`: the child copies them
    # to its stdout piece by piece, so a 2 GiB video needs no 2 GiB buffer.
    # `ranges` are the (offset, length) pieces of it that follow `data`.
    fd: int | None = None
    ranges: list[tuple[int, int]] = field(default_factory=list)
    # Media: ffprobe's view of the upload, for the check; a callable while
    # ffprobe still runs beside the check of the copy.
    before: dict | Callable[[], dict] | None = None
    # A streamed result (the MP4 rewrite): what follows `data` is read from
    # the upload as it is written out, by rest(stdout), `rest_length` bytes.
    rest: Callable[[int], None] | None = None
    rest_length: int = 0
    # The check's ffprobe reads `data` from a memory file as long as the
    # whole copy, the rest left a hole (no memory): a WAV tells its duration
    # only to a reader that knows where the file ends.
    sized: bool = False
    # rest() sends pieces of unknown number (ffmpeg between pipes), checks
    # the copy at the end and fills in `removed` and `tool`; it raises
    # Refused if the copy fails its check.
    chunked: bool = False

    @property
    def length(self) -> int:
        return len(self.data) + sum(n for _, n in self.ranges) + self.rest_length


# How a document's cleaner (office, pdf) cleans the files inside it, given by
# the dispatcher: (part name, part bytes, removed fields to add to, whether a
# kind no cleaner knows may stay) -> the part's cleaned bytes.
CleanPart = Callable[[str, bytes, list[str], bool], bytes]

# How a drawing (SVG) cleans a picture embedded in it as a data: URI, given by
# the dispatcher: (picture bytes, removed fields to add to) -> its cleaned
# bytes and their media type. Raises Refused for one it cannot clean.
CleanPicture = Callable[[bytes, list[str]], tuple[bytes, str]]


_NAME = re.compile(r"[^A-Za-z0-9 _.:()/-]")


def field_name(text: str | bytes, limit: int = 40) -> str:
    """A field *name* taken from a file (a chunk keyword, a tag id), made plain
    ASCII and short so that a crafted name cannot smuggle a value through."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return _NAME.sub("?", text)[:limit]


def unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
