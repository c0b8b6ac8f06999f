"""An allocator setting for the web workers (glibc; elsewhere it does nothing).

glibc gives every freed block over 128 KiB straight back to the kernel, and
the next one is faulted in and zeroed page by page. Gunicorn reads a body
1 MiB at a time and copies it twice per read, so for an upload that was a
third of the worker's time: reuse_large_buffers() keeps blocks up to 4 MiB for
reuse. The free heap kept is bounded: up to 16 MiB in each of at most 4 malloc
arenas (glibc would make up to 8 per core, one per busy thread, each keeping
its own), so at most 64 MiB a worker.
"""

from __future__ import annotations

import ctypes
import functools

# glibc's mallopt() parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
KEEP_BUFFERS_UNDER = 4 * 1024 * 1024
KEEP_FREE_HEAP = 16 * 1024 * 1024  # per arena
ARENAS = 4


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def reuse_large_buffers() -> bool:
    """Returns whether the allocator took the settings."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BUFFERS_UNDER)
                and libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_HEAP)
                and libc.mallopt(M_ARENA_MAX, ARENAS))
