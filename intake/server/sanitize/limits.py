"""Resource limits for the sanitizing child, set by the child on itself.

The parent cannot use `preexec_fn` (the web workers run threads), so the child
lowers its own limits as its first act, before it reads a byte of the upload.
Limits only go down, and tools the child starts (ffmpeg) inherit them.
"""

from __future__ import annotations

import resource
import signal
import sys
from dataclasses import asdict, dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    memory: int = 1536 * MiB  # address space of the child and of each tool it starts
    cpu_seconds: int = 60  # base; grows with the upload's size, see for_size()
    wall_seconds: float = 90.0  # enforced by the parent, which kills the child
    open_files: int = 64
    max_pixels: int = 150_000_000  # larger images are not decoded: decompression bombs
    # Pictures whose coded data is copied, never decoded (the JPEG, PNG, WebP,
    # GIF and HEIF rewrites): phones take 200-megapixel photos (Samsung's
    # Ultras, Xiaomi, Redmi, Honor, Motorola), and panoramas are larger still.
    max_pixels_copied: int = 400_000_000
    zip_entries: int = 5_000
    zip_total: int = 1024 * MiB  # uncompressed bytes an office file may expand to
    zip_ratio: int = 200  # per entry; real XML compresses 5-20x, bombs 1000x
    # ffmpeg's stream copy works between memory files (RAM, outside
    # RLIMIT_AS): the upload and its copy. Sized to the witness unit's
    # MemoryMax=2G, with the workers and another cleaning. The MP4, WAV and
    # AIFF rewrites stream, and need none (intake.server.sanitize.stream).
    media_memory: int = 768 * MiB

    def for_size(self, size: int) -> Limits:
        """Large videos need more time: one extra second per 20 MiB."""
        extra = size // (20 * MiB)
        return Limits(**{**asdict(self), "cpu_seconds": self.cpu_seconds + extra,
                         "wall_seconds": self.wall_seconds + extra})

    def to_argv(self) -> list[str]:
        return [f"{k}={v}" for k, v in asdict(self).items()]

    @classmethod
    def from_argv(cls, argv: list[str]) -> Limits:
        fields = {k: type(v) for k, v in asdict(cls()).items()}
        values = {}
        for arg in argv:
            key, _, value = arg.partition("=")
            values[key] = fields[key](value)
        return cls(**values)


def apply(limits: Limits, file_size: int) -> None:
    """Lowers this process's limits. `file_size` is the most it may write to a
    file: 0, or the output cap when a tool must write into a memory file."""
    # Writing past RLIMIT_FSIZE sends SIGXFSZ, which kills; ignored, the write
    # fails with EFBIG instead and the sanitizer reports it. Tools inherit this.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sys.dont_write_bytecode = True
    for kind, value in ((resource.RLIMIT_AS, limits.memory),
                        (resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_FSIZE, file_size),
                        (resource.RLIMIT_NOFILE, limits.open_files),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(kind, (value, value))
