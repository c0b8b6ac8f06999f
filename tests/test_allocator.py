"""The worker keeps large buffers for reuse instead of faulting fresh pages in
for every piece of an upload it reads (intake.memory.reuse_large_buffers)."""

from __future__ import annotations

import subprocess
import sys

from intake.server.gunicorn import SETTINGS, post_fork

MIB = 1024 * 1024
TOTAL = 256 * MIB

# Reads a body through gunicorn's own readers, 512 KiB at a time as our form
# parser does, in a thread as a gthread worker does, and prints the page faults
# that cost the reading thread.
READ_BODY = f"""
import os, resource, socket, sys, threading
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader
from intake.server.memory import reuse_large_buffers
if sys.argv[1] == "tuned":
    assert reuse_large_buffers()
a, b = socket.socketpair()
def send():
    block = os.urandom(256 * 1024)
    for _ in range({TOTAL} // len(block)):
        a.sendall(block)
    a.close()
def read():
    body = Body(LengthReader(SocketUnreader(b), {TOTAL}))
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    got = 0
    while piece := body.read(512 * 1024):
        got += len(piece)
    assert got == {TOTAL}
    print(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
threads = [threading.Thread(target=send), threading.Thread(target=read)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", READ_BODY, mode], capture_output=True,
                         text=True, check=True, timeout=120)
    return int(out.stdout)


def test_a_body_is_read_without_faulting_its_buffers_in_again():
    # glibc's defaults fault in fresh pages for part of what passes through,
    # how much depends on how the reads fall (4,000 to 45,000 faults for these
    # 65,536 pages); tuned, the reader reuses the same few buffers, a fixed
    # cost of about 1,500.
    default = max(_faults("default"), _faults("default"))
    tuned = _faults("tuned")
    assert tuned < 2500 < default, (default, tuned)


def test_every_worker_is_tuned_after_fork():
    assert SETTINGS["post_fork"] is post_fork
    out = subprocess.run([sys.executable, "-c",
                          "import gc; from intake.server.gunicorn import post_fork; "
                          "before = gc.get_freeze_count(); post_fork(None, None); "
                          "print(before, gc.get_freeze_count())"],
                         capture_output=True, text=True, check=True, timeout=60)
    before, after = map(int, out.stdout.split())
    assert before == 0 and after > 1000  # the app's objects, out of every collection


# Sixteen threads, as a gthread worker has, each holding and freeing 3 MiB
# buffers at once; prints the resident MiB gained once they are all gone.
MANY_THREADS = """
import threading
from intake.server.memory import reuse_large_buffers
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
assert reuse_large_buffers()
start = rss()
barrier = threading.Barrier(16)
def work():
    held = [bytearray(b"x" * (3 * 1024 * 1024)) for _ in range(4)]
    barrier.wait()  # all at once: each thread in an arena of its own if it may
    del held
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(rss() - start)
"""


def test_free_heap_kept_is_bounded_however_many_threads():
    out = subprocess.run([sys.executable, "-c", MANY_THREADS], capture_output=True, text=True,
                         check=True, timeout=60)
    # 16 threads held 192 MiB; at most 4 arenas x 16 MiB stay (without the
    # arena cap, glibc kept 240 MiB of it here).
    assert int(out.stdout) <= 80, out.stdout
