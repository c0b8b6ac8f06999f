"""Videos cleaned as they stream through the cleaner: an MP4 or MOV is never
held whole, in the child's memory or in a memory file, whatever its size, and
one whose index comes after its media data is read twice (decrypted again
from its envelope) rather than kept. Files of tens of MB, made by ffmpeg;
bench/sanitize_bench.py measures 1 and 2 GiB."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import MemorySpool

from intake.server.sanitize import Limits, sanitize
from intake.server.sanitize.protocol import MAGIC
from intake.server.sanitize.runner import PACKAGE_ROOT
from sanitize.sanitize_corpus import LAT, LON, exiftool_write, leftovers, planted_in_bytes, run
from sanitize.test_mp4 import packets

MiB = 1024 * 1024
# The memory files of the ffmpeg path could not hold even one of these
# videos: what is cleaned under this limit was cleaned as a stream.
NO_MEMORY_FILES = {"media_memory": MiB}


def _long(corpus, name: str, loops: int, *movflags: str) -> Path:
    """A real encode, looped by stream copy into tens of MB, with a
    subtitle track of GPS fixes, a location, tags and a creation time."""
    base = corpus.path("stream-base.mp4")
    if not base.exists():
        run("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
            "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000", "-t", "2", "-c:v", "libx264",
            "-preset", "ultrafast", "-qp", "4", "-c:a", "aac", str(base))
    srt = corpus.path("stream-gps.srt")
    srt.write_text(f"1\n00:00:00,000 --> 00:00:05,000\nGPS {LAT} {LON}\n")
    path = corpus.path(name)
    run("ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(base),
        "-i", str(srt), "-map", "0:v", "-map", "0:a", "-map", "1", "-c", "copy",
        "-c:s", "mov_text", "-metadata", "creation_time=2024-03-01T10:11:12Z",
        "-metadata", f"location=+{LAT}+{LON}/", "-metadata", "comment=Kyiv street 5",
        *movflags, str(path))
    if movflags:  # ExifTool writes the index first: only where it was already
        exiftool_write(path, f"-Keys:GPSCoordinates={LAT}, {LON}", "-Keys:Make=AcmeCam")
    return path


@pytest.fixture(scope="module")
def late(corpus) -> Path:
    """Index after the media data, as phones and ffmpeg write it."""
    path = _long(corpus, "stream-late.mp4", 24)
    data = path.read_bytes()
    assert data.index(b"moov") > data.index(b"mdat") and len(data) > 20 * MiB
    return path


@pytest.fixture(scope="module")
def early(corpus) -> Path:
    path = _long(corpus, "stream-early.mp4", 24, "-movflags", "+faststart")
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    return path


class CountingSpool(MemorySpool):
    """Counts how many times the upload is read back from its envelope."""

    def __init__(self, data: bytes = b""):
        super().__init__(data)
        self.reads = 0

    def chunks(self):
        self.reads += 1
        yield from super().chunks()


def _clean(sandbox, path: Path, spool_type=CountingSpool, **limits):
    spool = spool_type(path.read_bytes())
    result = sanitize(spool, MemorySpool,
                      Limits(**{**NO_MEMORY_FILES, **limits}).for_size(spool.size),
                      sandbox=sandbox)
    return spool, result


def _duration(path: Path) -> float:
    out = run("ffprobe", "-v", "quiet", "-print_format", "json", "-show_format", str(path))
    return float(json.loads(out.stdout)["format"]["duration"])


@pytest.mark.parametrize(("layout", "reads"), [("late", 2), ("early", 1)])
def test_a_video_no_memory_file_could_hold_is_cleaned_as_it_streams(
        request, sandbox, tmp_path, layout, reads):
    original = request.getfixturevalue(layout)
    assert f"GPS {LAT}".encode() in original.read_bytes()
    spool, result = _clean(sandbox, original)
    try:
        assert result.ok, result.reason
        assert result.tool == "", "the box rewrite, not ffmpeg"
        assert spool.reads == reads  # the index at the end: read once more, never kept
        out = tmp_path / "clean.mp4"
        out.write_bytes(b"".join(result.spool.chunks()))
    finally:
        result.close()
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # index first: plays while it downloads
    assert leftovers(out) == [] and planted_in_bytes(data) == []
    assert f"GPS {LAT}".encode() not in data  # the subtitle track's samples too
    assert {"sbtl stream (tx3g)", "media data no kept track uses",
            "creation times"} <= set(result.removed)
    assert packets(out) == packets(original)  # every video and audio packet, byte for byte
    assert abs(_duration(out) - _duration(original)) < 0.1


# Starts the cleaner and reports its peak memory (KiB, with the tools it ran)
# and exit status on stderr. A process started from the test's own (by
# vfork, then exec) would count the test's peak as its own: this small one
# in between forks it instead.
MEASURED = """import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def _child(path: Path, limits: Limits, into: Path | None = None) -> tuple[bytes, int, int]:
    """A cleaner started from scratch as the server starts one, fed as the
    server feeds it (twice, when it asks); its output, exit status and peak
    resident memory (KiB, this process and the tools it ran). With `into`,
    the output goes to that file in pieces instead (b"" is returned): a copy
    larger than this process should hold."""
    size = path.stat().st_size
    proc = subprocess.Popen([sys.executable, "-c", MEASURED, "-m",
                             "intake.server.sanitize.child", str(size), *limits.to_argv()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/",
                            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(PACKAGE_ROOT)})
    asked = threading.Semaphore(0)

    def feed():
        try:
            for n in range(2):
                if n:
                    asked.acquire()
                with open(path, "rb") as f:
                    while piece := f.read(MiB):
                        proc.stdin.write(piece)
                proc.stdin.flush()
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    out = b""
    while True:
        head = proc.stdout.read(8)
        assert head[:4] == MAGIC, head
        header = json.loads(proc.stdout.read(struct.unpack(">I", head[4:])[0]))
        if header.get("again"):
            asked.release()
            continue
        if into is None:
            out = proc.stdout.read(header["size"])
            break
        with open(into, "wb") as f:
            left = header["size"]
            while left and (piece := proc.stdout.read(min(left, MiB))):
                f.write(piece)
                left -= len(piece)
        break
    proc.stdout.read()
    proc.stdout.close()
    peak, code = map(int, proc.stderr.read().split())
    proc.stderr.close()
    proc.wait()
    asked.release()
    feeder.join()
    assert header["ok"], header
    return out, code, peak


def test_the_cleaners_memory_does_not_grow_with_the_video(corpus, late, tmp_path):
    """The same recording, short and four times longer: the cleaner's peak
    memory stays the same, far below the size of either."""
    short = _long(corpus, "stream-short.mp4", 4)
    limits = Limits(**NO_MEMORY_FILES)
    _, code_short, peak_short = _child(short, limits)
    out, code_long, peak_long = _child(late, limits)
    assert code_short == code_long == 0
    assert len(out) > 20 * MiB
    assert late.stat().st_size > 3 * short.stat().st_size
    assert peak_long - peak_short < 8 * 1024, (peak_short, peak_long)  # KiB


def test_cut_short_before_its_index_it_is_not_cleaned(sandbox, late, tmp_path):
    """A recording that ends before its index (the phone died): nothing that
    could be cleaned; not kept, unless the witness chooses to send it as is."""
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(late.read_bytes()[:-200_000])
    for limits in (NO_MEMORY_FILES, {"media_memory": 768 * MiB}):
        spool, result = _clean(sandbox, cut, **limits)
        assert not result.ok and result.spool is None, result
        assert not result.hostile


class ShortSecondRead(CountingSpool):
    """The envelope reads back short the second time: the cleaned copy, half
    sent by then, must not be taken for a whole one."""

    def chunks(self):
        self.reads += 1
        for n, piece in enumerate(MemorySpool.chunks(self)):
            if self.reads > 1 and n == 12:
                return
            yield piece


def test_an_upload_that_ends_early_mid_copy_leaves_nothing(sandbox, late):
    spool, result = _clean(sandbox, late, spool_type=ShortSecondRead)
    assert spool.reads == 2
    assert not result.ok and result.spool is None
    assert result.reason in ("the cleaned copy was cut short", "the upload arrived incomplete")


def test_a_chunk_pointing_past_the_media_data_of_an_index_first_file_is_refused(
        sandbox, early, tmp_path):
    """Index first, a chunk pointing back into the index, at the tags: not
    copied in the same pass, the file is read to the end, and refused."""
    data = bytearray(early.read_bytes())
    at = data.index(b"stco") + 4
    (count,) = struct.unpack_from(">I", data, at + 4)
    struct.pack_into(">I", data, at + 8 + 4 * (count - 1), data.index(b"udta"))
    hostile = tmp_path / "hostile.mp4"
    hostile.write_bytes(bytes(data))
    _, result = _clean(sandbox, hostile)
    assert not result.ok and result.spool is None
    assert result.reason.startswith("malformed mp4 file")


# -- Matroska and WebM: ffmpeg between pipes ----------------------------------

def _matroska(corpus, name: str, *codecs: str, loops: int = 12) -> Path:
    """A real encode looped into tens of MB, with tags, a creation time, a
    chapter and a subtitle track of GPS fixes."""
    base = corpus.path(f"base-{name}")
    if not base.exists():
        run("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
            "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000", "-t", "2", *codecs, str(base))
    srt = corpus.path("stream-gps.srt")
    srt.write_text(f"1\n00:00:00,000 --> 00:00:05,000\nGPS {LAT} {LON}\n")
    path = corpus.path(name)
    run("ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(base),
        "-i", str(srt),
        "-map", "0:v", "-map", "0:a", "-map", "1", "-c", "copy",
        *(("-c:s", "webvtt") if name.endswith(".webm") else ()),
        "-metadata", "creation_time=2024-03-01T10:11:12Z", "-metadata", "artist=Olena Svidok",
        "-metadata", f"location=+{LAT}+{LON}/", "-metadata", "comment=Kyiv street 5",
        str(path))
    return path


@pytest.mark.parametrize("family", ["mkv", "webm"])
def test_matroska_too_large_for_memory_files_streams_through_ffmpeg(corpus, sandbox, tmp_path,
                                                                   family):
    codecs = (("-c:v", "libx264", "-preset", "ultrafast", "-qp", "4", "-c:a", "libopus")
              if family == "mkv" else
              ("-c:v", "libvpx", "-deadline", "realtime", "-b:v", "20M", "-c:a", "libopus"))
    original = _matroska(corpus, f"stream.{family}", *codecs,
                         loops=12 if family == "mkv" else 24)
    assert f"GPS {LAT}".encode() in original.read_bytes()
    assert original.stat().st_size > 10 * MiB
    spool, result = _clean(sandbox, original)
    try:
        assert result.ok, result.reason
        assert result.tool.startswith("ffmpeg") and spool.reads == 1
        out = tmp_path / f"clean.{family}"
        out.write_bytes(b"".join(result.spool.chunks()))
    finally:
        result.close()
    data = out.read_bytes()
    assert leftovers(out) == [] and planted_in_bytes(data) == []
    assert f"GPS {LAT}".encode() not in data
    assert "container:creation_time" in result.removed
    assert any(n.startswith("subtitle stream") for n in result.removed)
    assert _per_stream(out) == _per_stream(original)  # every packet's bytes, in order


def _per_stream(path: Path) -> dict[str, list[tuple[str, ...]]]:
    """Each stream's packets (size and MD5), in order: a muxer may interleave
    the streams differently."""
    streams: dict[str, list[tuple[str, ...]]] = {}
    for line in packets(path):
        fields = [f.strip() for f in line.split(",")]
        streams.setdefault(fields[0], []).append(tuple(fields[4:]))
    return streams


MKV_CODECS = ("-c:v", "libx264", "-preset", "ultrafast", "-qp", "4", "-c:a", "libopus")
CUES = b"\x1c\x53\xbb\x6b"  # Matroska's index


def test_matroska_that_fits_once_in_memory_is_copied_from_a_pipe_into_one(corpus, sandbox,
                                                                           tmp_path):
    """Under the memory files' room but not twice under it: ffmpeg reads the
    upload from a pipe (Matroska is read forward) and only its copy is
    held, in a memory file, where the muxer writes the index (cues) and the
    duration that a copy between pipes goes without."""
    original = _matroska(corpus, "stream.mkv", *MKV_CODECS)
    size = original.stat().st_size
    spool, result = _clean(sandbox, original, media_memory=size + size // 2)
    try:
        assert result.ok, result.reason
        assert result.tool.startswith("ffmpeg") and spool.reads == 1
        out = tmp_path / "clean.mkv"
        out.write_bytes(b"".join(result.spool.chunks()))
    finally:
        result.close()
    data = out.read_bytes()
    assert leftovers(out) == [] and planted_in_bytes(data) == []
    assert _per_stream(out) == _per_stream(original)
    assert CUES in data
    duration = run("ffprobe", "-v", "quiet", "-show_entries", "format=duration", "-of", "csv=p=0",
                   str(out)).stdout.decode().strip()
    assert abs(float(duration) - 26.0) < 0.5  # thirteen times two seconds


@pytest.mark.parametrize("memory", [None, "once"], ids=["between pipes", "into one memory file"])
def test_a_matroska_stream_cut_short_is_not_kept(corpus, sandbox, tmp_path, memory):
    """The upload ends early: ffmpeg copies what came, and the copy must not
    pass for the whole."""
    original = _matroska(corpus, "stream-cut.mkv", *MKV_CODECS)
    size = original.stat().st_size
    limits = {"media_memory": size + size // 2} if memory else {}
    _, result = _clean(sandbox, original, spool_type=ShortFirstRead, **limits)
    assert not result.ok and result.spool is None
    assert result.reason in ("the cleaned copy was cut short", "the upload arrived incomplete")


class ShortFirstRead(CountingSpool):
    def chunks(self):
        self.reads += 1
        for n, piece in enumerate(MemorySpool.chunks(self)):
            if n == 6:
                return
            yield piece
