"""Motion JPEG in QuickTime, MP4 and Matroska (intake/server/sanitize/
jpeg_frames.py): a camera writes a photo's metadata (EXIF with GPS and the
serial number, XMP, IPTC, a comment) into every frame, and a stream copy
keeps every byte of the frames. The MP4 and QuickTime rewrite zeroes each
frame's metadata segments on the way, the pictures decoding the same; where
no rewrite edits the frames (Matroska, fragmented MP4), ffmpeg's copy drops
them (its filter_units). Every copy is searched for them all the same, and
refused if any is left.

The files are made by ffmpeg, copying as they are photos that ExifTool
tagged, as cameras store their frames.
"""

from __future__ import annotations

import itertools
import os
import random
import struct
from pathlib import Path

import pytest

from intake.server.sanitize import jpeg_frames, mp4, verify
from intake.server.sanitize.media import COPY_ARGS, FRAME_FILTER
from sanitize.sanitize_corpus import planted_in_bytes, run
from sanitize.test_avi import _segment
from sanitize.test_mp4 import packets

MiB = 1024 * 1024


def _frames_of_photos(corpus, name: str, *args: str, seconds: int = 1) -> Path:
    return corpus.motion_jpeg(name, *args, seconds=seconds)


def decoded_video(path: Path) -> list[str]:
    """Each decoded video frame's MD5."""
    out = run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5",
              "-").stdout.decode()
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert lines
    return lines


REWRITTEN = {
    "quicktime, index at the end": ("photos.mov", ()),
    "quicktime, index first": ("photos-fast.mov", ("-movflags", "+faststart")),
    "mp4 (MPEG-4 visual entry naming JPEG)": ("photos.mp4", ()),
}


@pytest.mark.parametrize("variant", list(REWRITTEN))
def test_frames_lose_their_metadata_and_keep_their_pictures(corpus, sanitized, variant):
    name, args = REWRITTEN[variant]
    original = _frames_of_photos(corpus, name, *args)
    assert planted_in_bytes(original.read_bytes())  # so the checks below mean something
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.tool == "", "the box rewrite, not ffmpeg, should have cleaned this file"
    assert planted_in_bytes(out.read_bytes()) == []
    assert jpeg_frames.NOTE in result.removed
    assert decoded_video(out) == decoded_video(original)
    audio = [p for p in packets(out) if p.startswith("1,")]
    assert audio and audio == [p for p in packets(original) if p.startswith("1,")]


def test_frames_past_the_part_held_for_the_check_are_edited_too(corpus, sanitized):
    """The check reads only the first 8 MiB of a streamed copy: every frame
    after it is edited all the same."""
    original = _frames_of_photos(corpus, "long-photos.mov", seconds=300)
    assert original.stat().st_size > 2 * 8 * MiB
    result, out = sanitized(original)
    assert result.ok and result.tool == "", result.reason
    cleaned = out.read_bytes()
    assert planted_in_bytes(cleaned) == []
    assert cleaned[len(cleaned) // 2:].count(b"\xff\xd8\xff") > 100  # frames there, edited


def test_other_codecs_are_copied_byte_for_byte(corpus, sanitized):
    """Only Motion JPEG tracks are read frame by frame: an H.264 sample that
    happened to start like a JPEG would not be touched."""
    original = corpus.ffmpeg("h264.mov", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                             "-t", "1", "-c:v", "libx264")
    result, out = sanitized(original)
    assert result.ok and jpeg_frames.NOTE not in result.removed
    assert packets(out) == packets(original)


FFMPEG_COPIES = {
    "matroska": ("photos.mkv", (), {}),
    # ten seconds of frames: more than half the memory allowed
    "matroska too large for memory (ffmpeg between pipes)": ("photos-piped.mkv", (),
                                                             {"media_memory": MiB}),
    "fragmented mp4 (no rewrite of its frames)": (
        "photos-frag.mp4", ("-movflags", "frag_keyframe+empty_moov"), {}),
}


@pytest.mark.parametrize("variant", list(FFMPEG_COPIES))
def test_where_no_rewrite_edits_the_frames_ffmpeg_drops_their_segments(corpus, sanitized,
                                                                        variant):
    name, args, limits = FFMPEG_COPIES[variant]
    original = _frames_of_photos(corpus, name, *args, seconds=10 if limits else 1)
    assert planted_in_bytes(original.read_bytes())
    if limits:  # too large for the memory file of ffmpeg's copy: streamed through ffmpeg
        assert original.stat().st_size > limits["media_memory"]
    result, out = sanitized(original, **limits)
    assert result.ok, result.reason
    assert result.tool.startswith("ffmpeg") and jpeg_frames.NOTE in result.removed
    assert planted_in_bytes(out.read_bytes()) == []
    assert decoded_video(out) == decoded_video(original)
    audio = [p.split(",")[-1] for p in packets(out) if p.startswith("1,")]
    assert audio and audio == [p.split(",")[-1] for p in packets(original) if p.startswith("1,")]


def test_the_streamed_check_finds_frame_metadata_across_any_cut(corpus, tmp_path):
    """The piped copy is searched as it streams, in pieces cut anywhere: a
    plain stream copy (ffmpeg without the frame filter) is caught whatever
    the cuts, and the filtered copy passes."""
    original = _frames_of_photos(corpus, "photos-cuts.mkv")
    copies = {}
    for label, extra in (("plain", ()), ("filtered", ("-bsf:v", FRAME_FILTER))):
        copies[label] = tmp_path / f"{label}.mkv"
        run("ffmpeg", "-v", "error", "-i", str(original), *COPY_ARGS, *extra,
            str(copies[label]))
    plain, filtered = (copies[k].read_bytes() for k in ("plain", "filtered"))
    rng = random.Random(7)
    for size in (1, 2, 3, 5, 4096, 65536):
        cuts = [0, *sorted(rng.sample(range(1, len(plain)), len(plain) // size // 8 or 1)),
                len(plain)] if size > 5 else list(range(0, len(plain) + size, size))
        seen = verify.FrameMetadata()
        with pytest.raises(verify.Failed, match="metadata left"):
            for a, b in itertools.pairwise(cuts):
                seen.feed(plain[a:b])
        seen = verify.FrameMetadata()
        for a in range(0, len(filtered), 4093):
            seen.feed(filtered[a:a + 4093])


def test_a_frame_too_large_to_read_whole_is_refused(corpus, sanitized):
    """A frame is read whole to be edited: one past MAX_FRAME (padded here
    with application segments) is refused, never copied as it is."""
    photo = corpus.jpeg("padded-base.jpg", orientation=1).read_bytes()
    padding = _segment(0xEF, bytes(65533)) * (jpeg_frames.MAX_FRAME // 65535 + 1)
    padded = corpus.path("padded.jpg")
    padded.write_bytes(photo[:2] + padding + photo[2:])
    original = corpus.ffmpeg("padded.mov", "-framerate", "10", "-loop", "1", "-t", "0.2",
                             "-i", str(padded), "-c:v", "copy")
    result, out = sanitized(original)
    assert not result.ok and out is None
    assert result.reason == "a video frame too large to clean"


def _memory(data: bytes) -> int:
    fd = os.memfd_create("test")
    os.write(fd, data)
    return fd


def test_the_rewrite_lists_every_frame_of_a_motion_jpeg_track(corpus):
    original = _frames_of_photos(corpus, "listed.mov", seconds=2)
    data = original.read_bytes()
    fd = _memory(data)
    try:
        plan = mp4.rewrite(fd, len(data))
    finally:
        os.close(fd)
    assert len(plan.frames) == 20
    for offset, length in plan.frames:
        frame = data[offset:offset + length]
        assert frame.startswith(jpeg_frames.SNIFF) and frame.rstrip(b"\0").endswith(b"\xff\xd9")
    pieces = list(jpeg_frames.pieces(plan.ranges, plan.frames))
    assert sum(n for _, n, _ in pieces) == sum(n for _, n in plan.ranges)
    assert [(o, n) for o, n, frame in pieces if frame] == plan.frames


def test_pieces_split_ranges_at_frames():
    ranges = [(0, 100), (200, 50)]
    frames = [(0, 10), (40, 20), (200, 50)]
    assert list(jpeg_frames.pieces(ranges, frames)) == [
        (0, 10, True), (10, 30, False), (40, 20, True), (60, 40, False), (200, 50, True)]
    assert list(jpeg_frames.pieces(ranges, [])) == [(0, 100, False), (200, 50, False)]


def _esds(object_type: int, flags: int = 0, extra: bytes = b"") -> bytes:
    config = bytes([object_type, 0x11]) + bytes(11)
    es = struct.pack(">HB", 1, flags) + extra + bytes([4, len(config)]) + config
    return bytes(4) + bytes([3, 0x80, 0x80, 0x80, len(es)]) + es


def test_the_decoder_configurations_object_type_is_read():
    assert mp4._object_type(_esds(0x6C)) == 0x6C
    assert mp4._object_type(_esds(0x20)) == 0x20  # MPEG-4 Part 2: not JPEG
    assert mp4._object_type(_esds(0x6C, 0x80 | 0x20, bytes(4))) == 0x6C
    assert mp4._object_type(_esds(0x6C, 0x40, b"\x03abc")) == 0x6C
    for broken in (b"", bytes(4), bytes(4) + b"\x03", _esds(0x6C)[:-14], bytes(4) + b"\x05\x01"):
        assert mp4._object_type(broken) is None


def test_motion_jpeg_a_layout_is_kept_and_exif_beside_it_is_not():
    """Format A's APP1 holds the field sizes and offsets QuickTime reads, and
    nothing else; an EXIF APP1 in the same frame goes."""
    layout = _segment(0xE1, bytes(4) + b"mjpg" + bytes(32))
    exif = _segment(0xE1, b"Exif\0\0" + b"AcmeCam")
    scan = _segment(0xDA, b"\x01") + b"\x12\x34"
    frame = bytearray(b"\xff\xd8" + layout + exif + scan + b"\xff\xd9")
    assert jpeg_frames.scrub(frame)
    assert layout in frame and b"Exif" not in frame and b"AcmeCam" not in frame
