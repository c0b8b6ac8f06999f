"""The MP4 and QuickTime box rewriter (intake/server/sanitize/mp4.py): every packet of
the kept tracks comes out byte for byte, nothing else does, and whatever it
does not vouch for goes to ffmpeg instead."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from intake.server.sanitize import mp4
from sanitize.sanitize_corpus import LAT, leftovers, planted_in_bytes, run


def packets(path: Path) -> list[str]:
    """Every video and audio packet: stream, timestamps, duration, size and MD5."""
    out = run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v?", "-map", "0:a?",
              "-c", "copy", "-f", "framemd5", "-").stdout.decode()
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert lines
    return lines


def rewritten(path: Path, out: Path) -> mp4.Rewrite:
    """The rewriter alone, in this process, written out as the child sends it."""
    fd = os.memfd_create("test")
    try:
        os.write(fd, path.read_bytes())
        plan = mp4.rewrite(fd, path.stat().st_size)
        with open(out, "wb") as f:
            f.write(plan.head)
            for offset, length in plan.ranges:
                f.write(os.pread(fd, length, offset))
        return plan
    finally:
        os.close(fd)


def outcome(data: bytes) -> str:
    """"rewritten", "ffmpeg" (not this rewriter's to vouch for) or "refused"
    (broken or hostile: kept as received, flagged)."""
    fd = os.memfd_create("test")
    try:
        os.write(fd, data)
        try:
            mp4.rewrite(fd, len(data))
        except mp4.Unsupported:
            return "ffmpeg"
        except mp4.Malformed:
            return "refused"
        return "rewritten"
    finally:
        os.close(fd)


VARIANTS = {
    "mp4 with subtitles and timecode": lambda c: c.mp4("v1.mp4"),
    "mov with text and timecode": lambda c: c.mp4("v2.mov", "mov"),
    "m4a": lambda c: c.m4a(),
    "index at the start": lambda c: c.ffmpeg("v3.mp4", *c.VIDEO, *c.SINE, *c.TAGS,
                                             "-c:v", "libx264", "-c:a", "aac",
                                             "-movflags", "+faststart"),
    # B-frames: composition offsets (ctts) and an edit list
    "b-frames": lambda c: c.ffmpeg("v4.mp4", *c.VIDEO, *c.SINE, "-c:v", "libx264",
                                   "-preset", "medium", "-bf", "3", "-c:a", "aac"),
    "3gp": lambda c: c.ffmpeg("v5.3gp", *c.VIDEO, *c.SINE, "-c:v", "libx264",
                              "-preset", "ultrafast", "-c:a", "aac"),
    "hevc in mov": lambda c: c.ffmpeg("v6.mov", *c.VIDEO, *c.SINE, "-c:v", "libx265",
                                      "-preset", "ultrafast", "-tag:v", "hvc1",
                                      "-c:a", "aac", "-x265-params", "log-level=none"),
    "two audio tracks": lambda c: c.ffmpeg("v7.mp4", *c.VIDEO, *c.SINE, *c.SINE, "-map", "0",
                                           "-map", "1", "-map", "2", "-c:v", "libx264",
                                           "-preset", "ultrafast", "-c:a", "aac"),
    "pcm sound in mov": lambda c: c.ffmpeg("v8.mov", *c.VIDEO, *c.SINE, "-c:v", "libx264",
                                           "-preset", "ultrafast", "-c:a", "pcm_s16le"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_kept_packet_is_the_original_byte_for_byte(corpus, sanitized, variant):
    original = VARIANTS[variant](corpus)
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.tool == "", "the box rewriter, not ffmpeg, should have cleaned this file"
    assert packets(out) == packets(original)
    assert leftovers(out) == [] and planted_in_bytes(out.read_bytes()) == []
    assert "creation times" in result.removed


def test_samples_of_dropped_tracks_leave_the_file(corpus, sanitized):
    """Drones and action cameras write GPS as the samples of a text or data
    track, inside mdat: dropping the track from the index is not enough."""
    original = corpus.mp4("gps-track.mp4")
    assert f"GPS {LAT}".encode() in original.read_bytes()
    result, out = sanitized(original)
    assert result.ok and result.tool == ""
    assert f"GPS {LAT}".encode() not in out.read_bytes()
    assert {"media data no kept track uses", "sbtl stream (tx3g)"} <= set(result.removed)


def test_layout_is_index_first_whatever_the_input(corpus, tmp_path):
    original = corpus.ffmpeg("late.mp4", *corpus.VIDEO, *corpus.SINE, "-c:v", "libx264",
                             "-preset", "ultrafast", "-c:a", "aac")
    data = original.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")
    rewritten(original, tmp_path / "out.mp4")
    out = (tmp_path / "out.mp4").read_bytes()
    assert out.find(b"moov") < out.find(b"mdat")
    assert packets(tmp_path / "out.mp4") == packets(original)


def test_offsets_past_four_gigabytes_use_64_bit_chunk_offsets(corpus, tmp_path,
                                                               monkeypatch):
    """Files over 4 GiB need co64; shown with the limit lowered, since a test
    cannot carry a 4 GiB video."""
    original = corpus.mp4("wide.mp4")
    monkeypatch.setattr(mp4, "NARROW_OFFSETS", 1000)
    rewritten(original, tmp_path / "wide.mp4")
    out = (tmp_path / "wide.mp4").read_bytes()
    assert b"co64" in out and b"stco" not in out
    assert packets(tmp_path / "wide.mp4") == packets(original)


def test_fragmented_mp4_with_samples_in_its_index_is_cleaned_by_ffmpeg(corpus, sanitized):
    """Other fragmented files are rewritten (test_mp4_fragmented.py)."""
    original = corpus.fragmented_mp4()
    assert outcome(original.read_bytes()) == "ffmpeg"
    result, out = sanitized(original)
    assert result.ok and result.tool.startswith("ffmpeg")
    assert leftovers(out) == [] and planted_in_bytes(out.read_bytes()) == []
    # ffmpeg rewrites timing; the packets' bytes are the same
    payload = [[(line.split(",")[0], *line.split(",")[4:]) for line in packets(p)]
               for p in (original, out)]
    assert payload[0] == payload[1]


# -- what the rewriter refuses --------------------------------------------------

@pytest.fixture
def faststart(corpus) -> bytes:
    """Index first: chunk offsets point past it, into mdat."""
    return corpus.ffmpeg("hostile-base.mp4", *corpus.VIDEO, *corpus.SINE, *corpus.TAGS,
                         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                         "-movflags", "+faststart").read_bytes()


def _patch_offsets(data: bytes, change) -> bytes:
    """Applies change(list of offsets) to the first track's stco."""
    at = data.index(b"stco") + 4
    (count,) = struct.unpack_from(">I", data, at + 4)
    offsets = list(struct.unpack_from(f">{count}I", data, at + 8))
    patched = bytearray(data)
    struct.pack_into(f">{count}I", patched, at + 8, *change(offsets))
    return bytes(patched)


def test_the_unmodified_base_is_accepted(faststart):
    assert outcome(faststart) == "rewritten"  # so each refusal below is the patch's doing


@pytest.fixture
def late_index(corpus) -> bytes:
    """Index last: a chunk moved into it sorts after every other."""
    data = corpus.ffmpeg("hostile-late.mp4", *corpus.VIDEO, *corpus.SINE, *corpus.TAGS,
                         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac").read_bytes()
    assert data.index(b"moov") > data.index(b"mdat")
    assert outcome(data) == "rewritten"
    return data


def _into_tags(data: bytes) -> bytes:
    """The first track's last chunk moved onto the tags, after mdat."""
    at_tags = data.index(b"udta")
    return _patch_offsets(data, lambda o: [*o[:-1], at_tags])


def test_a_chunk_pointing_outside_the_media_data_is_refused(late_index):
    """Pointing a track into the index or the tags would copy them out as media."""
    assert outcome(_into_tags(late_index)) == "refused"


def test_overlapping_chunks_go_to_ffmpeg(faststart):
    """Inside mdat nothing but media can leak: ffmpeg may make sense of it."""
    patched = _patch_offsets(faststart, lambda o: [o[0], o[0], *o[2:]])
    assert outcome(patched) == "ffmpeg"


def test_a_recording_cut_short_goes_to_ffmpeg(faststart):
    """A phone that died mid-recording: ffmpeg keeps what can still be read."""
    assert outcome(faststart[: len(faststart) - 1000]) == "ffmpeg"


def test_what_the_rewrite_does_not_read_goes_to_ffmpeg(faststart):
    """Layouts ffmpeg plays and this rewrite does not vouch for: cleaned by
    ffmpeg, not kept as received with their metadata."""
    at = faststart.index(b"url ") + 4  # the data reference's flags: 1 means "this file"
    not_here = bytearray(faststart)
    not_here[at:at + 4] = bytes(4)
    at = faststart.index(b"stsc") + 4
    gap = bytearray(faststart)
    struct.pack_into(">I", gap, at + 8, 2)  # first run starts at chunk 2
    compact = faststart.replace(b"stsz", b"stz2", 1)  # a table kind it does not read
    for patched in (not_here, gap, compact):
        assert outcome(bytes(patched)) == "ffmpeg"


def test_pcm_whose_sample_size_counts_one_channel_goes_to_ffmpeg(corpus, sanitized, tmp_path):
    """Some recorders (Atomos) write a 24-bit 4-channel track's sample size as
    3 bytes, not 12: ffmpeg sizes such chunks from the description, and a
    rewrite trusting the table would cut the audio short."""
    original = corpus.ffmpeg("quad.mov", *corpus.VIDEO, "-f", "lavfi", "-i",
                             "sine=duration=1,pan=4c|c0=c0|c1=c0|c2=c0|c3=c0",
                             "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s24be")
    data = bytearray(original.read_bytes())
    sizes = [i for i in range(len(data)) if data[i:i + 4] == b"stsz"]
    audio = [i for i in sizes if struct.unpack_from(">I", data, i + 8)[0] == 12]
    assert len(audio) == 1
    struct.pack_into(">I", data, audio[0] + 8, 3)
    recorder = tmp_path / "recorder.mov"
    recorder.write_bytes(bytes(data))
    assert outcome(bytes(data)) == "ffmpeg"
    result, out = sanitized(recorder)
    assert result.ok and result.tool.startswith("ffmpeg")
    audio_packets = [(line.split(",")[4:]) for line in packets(out) if line.startswith("1,")]
    assert audio_packets == [(line.split(",")[4:]) for line in packets(recorder)
                             if line.startswith("1,")]


def _with_index_tail(data: bytes, extra: bytes) -> bytes:
    """`extra` appended inside the index of a file whose index is last."""
    at = data.rindex(b"moov") - 4
    (size,) = struct.unpack_from(">I", data, at)
    assert at + size == len(data)
    return data[:at] + struct.pack(">I", size + len(extra)) + data[at + 4:] + extra


def test_metadata_nested_deep_or_naming_thousands_of_fields_is_still_cleaned(late_index,
                                                                            sanitized,
                                                                            tmp_path):
    deep = b"\0" * 8 + b"Olena Svidok"
    for _ in range(2000):
        deep = mp4.box(b"meta", deep)
    keys = b"".join(struct.pack(">I4s", 8 + len(name), b"mdta") + name
                    for name in (f"com.example.field{n}".encode() for n in range(6000)))
    many = mp4.box(b"meta", mp4.box(b"hdlr", bytes(8), b"mdta", bytes(13)),
                   mp4.box(b"keys", struct.pack(">II", 0, 6000), keys))
    path = tmp_path / "many.mp4"
    path.write_bytes(_with_index_tail(late_index, mp4.box(b"udta", deep) + many))
    result, out = sanitized(path)
    assert result.ok and result.tool == "", result.reason
    assert b"Olena" not in out.read_bytes() and b"com.example" not in out.read_bytes()
    assert len(result.removed) <= 501 and result.removed[-1].endswith("more fields")


def test_hostile_offsets_never_carry_the_tags_out(late_index, sanitized, tmp_path):
    """Through the whole path. ffmpeg would copy the tags a hostile index points
    at as if they were video, so such a file is not given to it: it is kept
    as received, flagged."""
    path = tmp_path / "hostile.mp4"
    path.write_bytes(_into_tags(late_index))
    result, out = sanitized(path)
    assert not result.ok and out is None
    assert result.flags == ["not sanitized: malformed mp4 file (a chunk outside the media data)"]
