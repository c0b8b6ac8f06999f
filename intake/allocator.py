"""glibc's malloc, asked to keep the memory it is given back.

The upload path (PyNaCl's 64 KiB sealed chunks, the multipart parser's
128 KiB slices) and the decrypt path (a pread() and a plaintext chunk per
64 KiB) allocate and free buffers of that size by the tens of thousands per
GiB, in several threads. By default glibc serves the larger ones with mmap()
and gives freed memory back at once, so the kernel clears a fresh page for
every 4 KiB of the file, over and over (bench/README.md). With the two
thresholds below, those buffers come from the heap and their memory is
kept, at most TRIM_THRESHOLD of it unused at a time. Elsewhere (another C
library) nothing is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os

# mallopt()'s parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 16 * 1024 * 1024
MMAP_THRESHOLD = 4 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> None:
    with contextlib.suppress(OSError, AttributeError, ValueError):
        if os.confstr("CS_GNU_LIBC_VERSION"):
            libc = ctypes.CDLL(None)
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
