"""The frame the child writes to stdout, shared by both sides of the pipe:
MAGIC, a 4-byte big-endian length, a JSON header, then the cleaned bytes."""

from __future__ import annotations

MAGIC = b"ISAN"
# The child's exit status when memory ran out before it could even answer.
OUT_OF_MEMORY = 3
MiB = 1024 * 1024
# Families whose tool (ffmpeg) reads and writes memory files.
MEDIA = frozenset({"wav", "aiff", "mp4", "mkv", "webm", "avi"})


def output_cap(size: int) -> int:
    """The most a cleaner may return; a stream copy never needs much more."""
    return size + size // 8 + 16 * MiB
