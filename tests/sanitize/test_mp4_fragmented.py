"""Fragmented MP4 and MOV (intake/server/sanitize/mp4frag.py), rewritten box by
box as they stream: every packet of the kept tracks comes out byte for byte,
with its timing; nothing else does; a file the rewrite does not vouch for
goes to ffmpeg, and a hostile one is refused."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from intake.server.sanitize import Limits, media, mp4, mp4frag, verify
from intake.server.sanitize.protocol import output_cap
from intake.server.sanitize.stream import Input
from intake.server.sanitize.verify import FEED_AFTER_INDEX
from sanitize.sanitize_corpus import LAT, LON, leftovers, planted_in_bytes, run
from sanitize.test_mp4 import packets
from sanitize.test_streaming import _child

MiB = 1024 * 1024
FRAGMENTS = ("-movflags", "frag_keyframe+empty_moov")


def _made(corpus, name: str, *args: str, fmt: str = "mp4", data_track: bool = True) -> Path:
    """Video, audio and (as drones write GPS) a timed-text track, with tags,
    a location and a creation time, in fragments of a keyframe each."""
    srt = corpus.path("frag-gps.srt")
    srt.write_text(f"1\n00:00:00,000 --> 00:00:01,000\nGPS {LAT} {LON}\n")
    extra = ("-i", str(srt), "-map", "0", "-map", "1", "-map", "2", "-c:s", "mov_text") \
        if data_track else ()
    return corpus.ffmpeg(name, *corpus.VIDEO, *corpus.SINE, *extra, *corpus.TAGS,
                         "-metadata", "title=Olena Svidok", "-metadata",
                         f"location=+{LAT}+{LON}/", "-c:v", "libx264", "-preset", "ultrafast",
                         "-g", "3", "-c:a", "aac", *args, "-f", fmt)


VARIANTS = {
    "empty moov": lambda c: _made(c, "f1.mp4", *FRAGMENTS),
    "default base moof": lambda c: _made(c, "f2.mp4", "-movflags",
                                         "frag_keyframe+empty_moov+default_base_moof"),
    "mov with user data": lambda c: _made(c, "f3.mov", *FRAGMENTS, fmt="mov",
                                          data_track=False),
    "separate moof per track": lambda c: _made(c, "f4.mp4", "-movflags",
                                               "frag_keyframe+empty_moov+separate_moof",
                                               data_track=False),
    "dash-like segments with sidx": lambda c: _made(c, "f5.mp4", "-movflags",
                                                    "frag_keyframe+empty_moov+default_base_moof"
                                                    "+global_sidx", data_track=False),
}


def cleaned(data: bytes) -> tuple[str, bytes | None]:
    """("rewritten", the cleaned file), ("ffmpeg", None): not the rewrite's
    to vouch for, or ("refused", None): broken or hostile, kept as received."""
    fd = os.memfd_create("test")
    try:
        os.write(fd, data)
        src = mp4.FileSource(fd)
        try:
            try:
                mp4.scan(src, len(data))
            except mp4.Fragmented as found:
                movie = mp4frag.scan(src, len(data), found)
            else:
                return "not fragmented", None
            src = mp4.FileSource(fd)
            out = [movie.head]
            for piece in mp4frag.pieces(src, len(data), movie):
                if isinstance(piece, bytes):
                    out.append(piece)
                else:
                    src.skip(piece[0] - src.pos)
                    out.append(src.read(piece[1]))
        except mp4.Unsupported:
            return "ffmpeg", None
        except mp4.Malformed:
            return "refused", None
        result = b"".join(out)
        assert len(result) == len(movie.head) + movie.length
        return "rewritten", result
    finally:
        os.close(fd)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_kept_packet_is_the_original_byte_for_byte(corpus, sanitized, variant):
    original = VARIANTS[variant](corpus)
    data = original.read_bytes()
    assert b"moof" in data and b"mvex" in data
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.tool == "", "the box rewrite, not ffmpeg, should have cleaned this file"
    assert packets(out) == packets(original)  # bytes, timestamps, durations
    assert leftovers(out) == [] and planted_in_bytes(out.read_bytes()) == []
    assert f"GPS {LAT}".encode() not in out.read_bytes()
    assert "creation times" in result.removed
    tags = run("ffprobe", "-v", "quiet", "-show_entries", "format_tags:stream_tags",
               "-of", "compact", str(out)).stdout.decode()
    assert "title" not in tags and "location" not in tags and "creation_time" not in tags
    for kind in (b"udta", b"meta", b"sidx", b"mfra", b"tfra"):
        assert kind not in out.read_bytes()


def test_the_data_track_and_its_samples_leave(corpus, sanitized):
    original = VARIANTS["empty moov"](corpus)
    assert f"GPS {LAT}".encode() in original.read_bytes()
    result, out = sanitized(original)
    assert result.ok and result.tool == ""
    assert {"sbtl stream (tx3g)", "traf of a dropped track",
            "media data no kept track uses"} <= set(result.removed)
    assert f"GPS {LAT}".encode() not in out.read_bytes()


# -- what the rewrite refuses ----------------------------------------------------

@pytest.fixture
def fragmented(corpus) -> bytes:
    data = _made(corpus, "hostile-frag.mp4", *FRAGMENTS).read_bytes()
    outcome, out = cleaned(data)
    assert outcome == "rewritten" and planted_in_bytes(out) == []
    return data


def _boxes(data: bytes, kind: bytes) -> list[int]:
    """Where each box of this kind starts (its size field), found by walking."""
    found = []

    def walk(start: int, end: int) -> None:
        pos = start
        while pos + 8 <= end:
            size, name = struct.unpack_from(">I4s", data, pos)
            if size < 8 or pos + size > end:
                return
            if name == kind:
                found.append(pos)
            if name in (b"moof", b"traf", b"moov", b"mvex"):
                walk(pos + 8, pos + size)
            pos += size

    walk(0, len(data))
    return found


def _first_trun_offset(data: bytes) -> int:
    """Where the first video run's data offset is (ffmpeg always writes one)."""
    at = _boxes(data, b"trun")[0]
    assert data[at + 11] & 1
    return at + 16


def test_a_run_pointing_at_the_tags_is_refused(fragmented):
    """ffmpeg would copy the tags a hostile run points at as if they were video."""
    at = _first_trun_offset(fragmented)
    moof = _boxes(fragmented, b"moof")[0]
    tags = fragmented.index(b"udta")
    patched = bytearray(fragmented)
    struct.pack_into(">i", patched, at, tags - moof)
    assert cleaned(bytes(patched))[0] == "refused"


def test_a_run_into_the_next_fragment_goes_to_ffmpeg(fragmented):
    at = _first_trun_offset(fragmented)
    moof = _boxes(fragmented, b"moof")[0]
    later = _boxes(fragmented, b"mdat")[1] + 8
    patched = bytearray(fragmented)
    struct.pack_into(">i", patched, at, later - moof)
    assert cleaned(bytes(patched))[0] == "ffmpeg"


def test_layouts_the_rewrite_does_not_vouch_for_go_to_ffmpeg(fragmented):
    tfhd = _boxes(fragmented, b"tfhd")[0]
    assert fragmented[tfhd + 11] & 1  # ffmpeg's default: an explicit base data offset
    other_base = bytearray(fragmented)
    struct.pack_into(">Q", other_base, tfhd + 16, 0)
    at = _first_trun_offset(fragmented)
    overlap = bytearray(fragmented)  # the audio run's data offset onto the video's
    audio = _boxes(fragmented, b"trun")[1] + 16
    overlap[audio:audio + 4] = overlap[at:at + 4]
    encrypted = fragmented.replace(b"sdtp", b"senc", 1) if b"sdtp" in fragmented else \
        fragmented[:tfhd + 4] + fragmented[tfhd + 4:].replace(b"tfdt", b"saiz", 1)
    for patched in (other_base, overlap, encrypted):
        assert cleaned(bytes(patched))[0] == "ffmpeg"


def test_samples_in_the_index_go_to_ffmpeg(corpus, sanitized):
    """ffmpeg's `frag_keyframe` without `empty_moov` puts the first fragment
    in the index's sample tables: a layout ffmpeg cleans."""
    original = corpus.fragmented_mp4()
    assert cleaned(original.read_bytes())[0] == "ffmpeg"
    result, out = sanitized(original)
    assert result.ok and result.tool.startswith("ffmpeg")
    assert leftovers(out) == [] and planted_in_bytes(out.read_bytes()) == []


FIELDS = {  # box: (first byte, last byte) of its body worth corrupting
    b"tfhd": (0, 36), b"trun": (0, 64), b"moof": (0, 16), b"traf": (0, 8), b"mfhd": (0, 8),
    b"tfdt": (0, 12), b"mdat": (-8, 0),
}


def test_seeded_corruptions_never_crash_or_leak(fragmented):
    """Thousands of fragment headers with fields changed: each is rewritten
    without a planted value, sent to ffmpeg, or refused; nothing else."""
    rng = random.Random(20240301)
    places = [(kind, at) for kind in FIELDS for at in _boxes(fragmented, kind)[:6]]
    seen = set()
    for _ in range(1500):
        patched = bytearray(fragmented)
        for _ in range(rng.choice((1, 1, 2, 3))):
            kind, at = rng.choice(places)
            low, high = FIELDS[kind]
            where = at + rng.randrange(low, high) if low < 0 else \
                at + 8 + rng.randrange(low, high)
            patched[where] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        outcome, out = cleaned(bytes(patched))
        seen.add(outcome)
        if out is not None:
            assert planted_in_bytes(out) == [] and f"GPS {LAT}".encode() not in out
            assert b"udta" not in out
    assert {"rewritten", "ffmpeg", "refused"} <= seen


# -- large files: no memory file, bounded memory ------------------------------------

def _looped(corpus, name: str, loops: int) -> Path:
    base = corpus.path("frag-base.mp4")
    if not base.exists():
        run("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
            "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:v", "libx264",
            "-preset", "ultrafast", "-qp", "4", "-g", "50", "-c:a", "aac", str(base))
    return corpus.ffmpeg(name, "-stream_loop", str(loops), "-i", str(base), "-c", "copy",
                         *corpus.TAGS, "-metadata", f"location=+{LAT}+{LON}/", *FRAGMENTS)


def test_a_fragmented_video_larger_than_the_memory_files_is_cleaned_in_bounded_memory(corpus):
    """Over 384 MiB (half of Limits.media_memory, past which ffmpeg's memory
    files refuse it): the cleaner's peak memory, with the ffprobe that
    checks its copy, is the same as for a file fifty times smaller."""
    short = _looped(corpus, "frag-short.mp4", 3)
    base = corpus.path("frag-base.mp4").stat().st_size
    loops = -(-(Limits().media_memory // 2 + 16 * MiB) // base)
    long = _looped(corpus, "frag-long.mp4", loops)
    assert long.stat().st_size > Limits().media_memory // 2
    _, code_short, peak_short = _child(short, Limits())
    out, code, peak = _child(long, Limits())
    assert code == code_short == 0
    assert peak - peak_short < 8 * 1024, (peak_short, peak)  # KiB
    assert peak * 1024 < long.stat().st_size / 4
    assert planted_in_bytes(out[:1024 * 1024]) == []
    data = long.read_bytes()
    # Every fragment's media data is kept whole (no track dropped): the
    # copy is the original's mdat boxes in order, with new indexes.
    assert out.count(b"moof") == data.count(b"moof") and len(out) < len(data)
    cleaned_path = corpus.path("frag-long-clean.mp4")
    cleaned_path.write_bytes(out)
    del out, data
    assert packets(cleaned_path) == packets(long)


# -- the duration of the whole copy ------------------------------------------------

def _packet_span(path: Path) -> float:
    """Seconds from the first packet to the end of the last, as ffprobe reads them."""
    rows = run("ffprobe", "-v", "quiet", "-show_entries", "packet=pts_time,duration_time",
               "-of", "csv=p=0", str(path)).stdout.decode().split()
    times = [(float(a), float(b) if b not in ("", "N/A") else 0.0)
             for a, b in (r.split(",")[:2] for r in rows) if a not in ("", "N/A")]
    return max(a + b for a, b in times) - min(a for a, _ in times)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_fragments_own_timing_gives_the_duration(corpus, variant):
    """An empty index states no duration: the rewrite reads it from the
    fragments (decode times, sample durations), as ffprobe does."""
    original = VARIANTS[variant](corpus)
    data = original.read_bytes()
    fd = os.memfd_create("test")
    try:
        os.write(fd, data)
        src = mp4.FileSource(fd)
        with pytest.raises(mp4.Fragmented) as found:
            mp4.scan(src, len(data))
        movie = mp4frag.scan(src, len(data), found.value)
    finally:
        os.close(fd)
    # ffprobe's also counts the timed-text track the rewrite drops: its one
    # caption lies inside the video's time.
    assert abs(movie.span - _packet_span(original)) < 0.1, (movie.span, movie.times)


def _cleaned_in_process(path: Path, out: int):
    """The cleaner's media path, in this process, fed as the server feeds it
    (the upload twice, one copy after the other), its copy to `out`."""
    data = path.read_bytes()
    upload = os.memfd_create("upload")
    frames = os.open(os.devnull, os.O_WRONLY)  # where it asks for the upload again
    try:
        os.write(upload, data + data)
        os.lseek(upload, 0, os.SEEK_SET)
        cleaned = media.clean("mp4", Input(upload, len(data), frames), len(data),
                              output_cap(len(data)))
        os.write(out, cleaned.data)
        cleaned.rest(out)
        return cleaned
    finally:
        os.close(upload)
        os.close(frames)


def test_the_whole_copys_duration_is_checked_not_only_its_start(corpus, monkeypatch):
    """A copy past what the check holds back (FEED_AFTER_INDEX) is read whole
    by a second ffprobe as it goes out: its packets must span what the
    fragments said, or the copy is refused."""
    original = _looped(corpus, "frag-timed.mp4", 12)  # 52 s, most of it past the start held
    assert original.stat().st_size > 3 * FEED_AFTER_INDEX
    spans = []
    measured = media._span
    monkeypatch.setattr(media, "_span", lambda listing: spans.append(measured(listing))
                        or spans[-1])
    out = os.memfd_create("copy")
    try:
        _cleaned_in_process(original, out)
    finally:
        os.close(out)
    assert len(spans) == 1 and abs(spans[0] - _packet_span(original)) < 0.1
    # The rewrite's reading of the fragments is what the copy is held to.
    monkeypatch.setattr(mp4frag.Movie, "span", property(lambda movie: spans[0] + 3))
    out = os.memfd_create("copy")
    try:
        with pytest.raises(verify.Failed, match="duration changed"):
            _cleaned_in_process(original, out)
    finally:
        os.close(out)
