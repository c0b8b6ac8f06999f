"""The frame the child writes to stdout, shared by both sides of the pipe:
MAGIC, a 4-byte big-endian length, a JSON header, then the cleaned bytes.
Before it, the child may send frames of a header `{"again": true}` alone:
it asks for the upload once more. A header `"chunked": true` is followed by
pieces (a 4-byte length and its bytes) until a zero length, then a second
header with the verdict (`ok`, `reason` or `removed` and `tool`)."""

from __future__ import annotations

MAGIC = b"ISAN"
# The child's exit status when memory ran out before it could even answer.
OUT_OF_MEMORY = 3
# The child's exit status when the cleaned copy was cut off after its frame's
# header had gone out (the upload ended early, or a check of the media data
# failed on the way): the parent keeps nothing of it.
CUT_SHORT = 4
# The same, when what cut it off was the check of the whole copy as it went
# out (a fragmented MP4's duration): the parent says so.
FAILED_CHECK = 5
# How many times the child may ask for the upload again, once it has read it
# to the end: an MP4 whose index comes after its media data is read twice.
AGAIN = 1
MiB = 1024 * 1024
# Families whose tool (ffmpeg) reads and writes memory files.
MEDIA = frozenset({"wav", "aiff", "mp4", "mkv", "webm", "avi"})


def output_cap(size: int) -> int:
    """The most a cleaner may return; a stream copy never needs much more."""
    return size + size // 8 + 16 * MiB
