"""intake/allocator.py: buffers of an upload's or a decryption's sizes,
allocated and freed over and over in a thread, reuse the same memory once
the worker (gunicorn's post_fork hook) or the workstation has asked glibc
to keep it, instead of faulting in fresh pages every time."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHURN = """
import resource, sys, threading
{setup}
def work():
    for _ in range(2000):
        chunks = [bytes(200_000) for _ in range(4)]  # a few parser slices' worth
        del chunks
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(setup: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHURN.format(setup=setup)],
                          capture_output=True, text=True, check=True, timeout=120)
    return int(done.stdout)


@pytest.mark.parametrize("setup", [
    "from intake.allocator import keep_freed_memory; keep_freed_memory()",
    "from intake.server.gunicorn import post_fork; post_fork(None, None)",
], ids=["asked directly", "by the worker's post_fork hook"])
def test_freed_buffers_are_reused_not_faulted_in_again(setup):
    default = _page_faults("")
    kept = _page_faults(setup)
    # 2,000 rounds of 800 KB: about 400,000 page faults by default.
    assert default > 100_000, default
    assert kept < default // 20, (kept, default)
