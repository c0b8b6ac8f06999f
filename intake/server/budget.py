"""A submission's allowance for cleaning its files, shared by all of them.

Each file is cleaned in a child with its own limits (intake.server.sanitize.
limits); without a budget, 50 files of 60 CPU seconds each could keep a
worker's sandbox busy for most of an hour. The budget bounds the whole
submission: a file's child gets at most the CPU seconds and the unpacked
bytes (an office file's or an archive's parts) the submission has left, and
once either is spent the remaining files are not cleaned, nor stored: nothing
is known of them, and one may be a bomb (intake/server/receive.py; the
receipt asks the witness to send them again).

Every file is read once whatever its size: the bytes a submission's files
may unpack to are its uploads' own size plus `clean_bytes`, so a video as
large as the form accepts (2 GiB by default) is cleaned, and the allowance
for unpacking is left to the office files and archives beside it.

The wall time each child takes is what is charged: a child cannot use more
CPU than its limit, and its limit is never more than what is left, so a
submission's cleaning costs at most its budget (twice that in CPU for a
tool that runs two threads on two cores).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from intake.server.sanitize.limits import Limits


@dataclass
class CleaningBudget:
    cpu_seconds: float
    unpacked_bytes: int
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def for_submission(cls, cpu_seconds: float, unpacked_bytes: int,
                       sizes: list[int]) -> CleaningBudget:
        """The budget of a submission whose uploads have these sizes."""
        return cls(cpu_seconds, unpacked_bytes + sum(sizes))

    @property
    def spent(self) -> bool:
        return self.cpu_seconds < 1 or self.unpacked_bytes <= 0

    def limits_for(self, size: int, base: Limits | None = None) -> Limits:
        """The child's limits for a file of `size` bytes, within what is left."""
        limits = (base or Limits()).for_size(size)
        seconds = max(1, math.floor(self.cpu_seconds))
        return dataclasses.replace(
            limits, cpu_seconds=min(limits.cpu_seconds, seconds),
            wall_seconds=min(limits.wall_seconds, seconds + 5.0),
            zip_total=min(limits.zip_total, max(1, self.unpacked_bytes)))

    def charge(self, seconds: float, size: int) -> None:
        self.cpu_seconds -= seconds
        self.unpacked_bytes -= size
