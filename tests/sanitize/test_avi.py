"""AVI edited in place as it streams through (intake/server/sanitize/avi.py):
every chunk that could name someone becomes zeros of the same size, the
frames and the indexes keep their offsets, the copy is as long as the
upload, the packets are the originals (an MJPEG frame's metadata segments
aside), a file no memory file could hold is cleaned in bounded memory,
OpenDML (past 1 GiB) too, and hostile headers and indexes are edited or
handed to ffmpeg, never a crash.

The files are made by ffmpeg (MJPEG and PCM, MPEG-4 Part 2 and MP3, tags
with -metadata, MJPEG frames copied from photos ExifTool tagged, OpenDML
past 1 GiB); `strd`, `strn`, `IDIT`, Nikon's `ncdt`, and small OpenDML
files for the hostile variants, are built here from their published
layouts, as no tool here writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake.server.sanitize import Limits, avi, jpeg_frames
from intake.server.sanitize.media import COPY_ARGS
from sanitize.sanitize_corpus import (
    AUTHOR,
    CAMERA_TAGS,
    LAT,
    LON,
    MAKE,
    MODEL,
    SERIAL,
    WHEN,
    exiftool_write,
    leftovers,
    planted_in_bytes,
    run,
)
from sanitize.test_mp4 import packets
from sanitize.test_streaming import _child

MiB = 1024 * 1024
KEPT_IN_HEADER = {b"avih", b"strh", b"strf", b"vprp", b"JUNK"}
TAGS = ("-metadata", "title=Kyiv street 5", "-metadata", f"artist={AUTHOR}",
        "-metadata", f"comment={SERIAL}", "-metadata", "creation_time=2024-03-01T10:11:12Z")


# -- RIFF trees, built and read here, independently of the rewriter ---------------

def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack("<4sI", kind, len(body)) + body + (b"\0" if len(body) & 1 else b"")


def riff_list(kind: bytes, form: bytes, items: list) -> bytes:
    return chunk(kind, form + b"".join(encode(i) for i in items))


def parse(data: bytes, pos: int = 0, end: int | None = None) -> list:
    """[(id, form, children)] for lists (movi kept as raw bytes), [(id, body)]
    for chunks."""
    end = len(data) if end is None else min(end, len(data))
    items = []
    while pos + 8 <= end:
        kind, n = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8:pos + 8 + n]
        if kind in (b"RIFF", b"LIST") and body[:4] != b"movi":
            items.append((kind, body[:4], parse(data, pos + 12, pos + 8 + n)))
        else:
            items.append((kind, body))
        pos += 8 + n + (n & 1)
    return items


def encode(item) -> bytes:
    if len(item) == 3:
        return riff_list(*item)
    return chunk(*item)


def ids(data: bytes) -> set[bytes]:
    """Every chunk id in the header and at the top level (not in movi)."""
    found = set()

    def visit(items):
        for item in items:
            found.add(item[1][:4] if item[0] == b"LIST" else item[0] if len(item) == 2
                      else item[1])
            if len(item) == 3:
                visit(item[2])
    visit(parse(data)[0][2])
    return found


def movi(data: bytes) -> tuple[int, int]:
    at = data.index(b"movi") - 8
    return at, at + 8 + struct.unpack_from("<I", data, at + 4)[0]


def same_everywhere_but_dropped(before: bytes, after: bytes) -> None:
    """Every byte that differs is a zero, a JUNK id, or a JPEG comment's
    marker (0xFE) in the copy."""
    assert len(before) == len(after)
    junk = set()
    at = after.find(b"JUNK")
    while at >= 0:
        junk.update(range(at, at + 4))
        at = after.find(b"JUNK", at + 1)
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    assert changed and all(after[i] in (0, 0xFE) or i in junk for i in changed)


# -- what the tools do not write ----------------------------------------------------

def strd() -> bytes:
    """A camera's EXIF in a stream's strd (as Casio, Fuji and Pentax write
    it): "AVIF", 4 bytes of padding, then a little-endian IFD of Make,
    Model, DateTime and a serial number in ImageDescription, its offsets
    counted from the IFD."""
    values = [(0x010E, SERIAL), (0x010F, MAKE), (0x0110, MODEL), (0x0132, WHEN)]
    at = 2 + 12 * len(values) + 4
    entries, data = b"", b""
    for tag, text in values:
        raw = text.encode() + b"\0"
        entries += struct.pack("<HHII", tag, 2, len(raw), at + len(data))
        data += raw + b"\0" * (len(raw) & 1)
    return chunk(b"strd", b"AVIF" + bytes(4) + struct.pack("<H", len(values)) + entries
                 + bytes(4) + data)


def ncdt() -> tuple:
    """Nikon's ncdt list: nctg holds (tag, size, value) items: 3 Make,
    4 Model, 0x13 the date taken."""
    values = [(tag, text.encode() + b"\0" * (2 - len(text) % 2))  # even: ffmpeg skips no pad
              for tag, text in ((3, MAKE), (4, f"{MODEL} {SERIAL}"), (0x13, WHEN))]
    items = b"".join(struct.pack("<HH", tag, len(raw)) + raw for tag, raw in values)
    return (b"LIST", b"ncdt", [(b"nctg", items)])


def camera_chunks(data: bytes) -> bytes:
    """strd and strn in the video stream's list, IDIT in the header list and
    Nikon's ncdt list beside it: the offsets in idx1 count from movi, so
    they stay true."""
    riff = parse(data)
    _, _, top = riff[0]
    hdrl = top[0]
    streams = [i for i in hdrl[2] if len(i) == 3 and i[1] == b"strl"]
    streams[0][2].insert(2, (b"strd", strd()[8:]))
    streams[0][2].append((b"strn", f"{AUTHOR}'s camera\0".encode()))
    hdrl[2].append((b"IDIT", b"FRI MAR 01 10:11:12 2024\n\0"))
    top.insert(1, ncdt())
    return encode(riff[0])


# -- OpenDML, built from a small file's frames --------------------------------------

SUPER_ENTRIES = 4  # room in each indx: two in use, two empty


@dataclass
class OpenDML:
    """A small OpenDML file and where its OpenDML parts are: each stream's
    super index (indx, payload offset), the standard indexes (ix##, payload
    offset, by RIFF and stream), dmlh's payload and the AVIX list."""

    data: bytearray
    indx: list[int]
    ix: list[list[int]]
    dmlh: int
    avix: int


def _standard(number: int, kind: bytes, chunks: list, base: int, room: int) -> bytes:
    """ix##: the entries of `chunks` ((id, offset in the movi list, size))
    of stream `number`, their offsets counted from `base` (the movi list's
    fourcc, in the file); `room` spare bytes after them."""
    mine = [(at, n) for k, at, n in chunks if k == kind]
    entries = b"".join(struct.pack("<II", at + 8, n) for at, n in mine)  # every frame a key frame
    return chunk(b"ix%02d" % number, struct.pack("<HBBI4sQI", 2, 0, 1, len(mine), kind, base, 0)
                 + entries + bytes(room))


def opendml(data: bytes, room: int = 0, extra: tuple = ()) -> OpenDML:
    """The file's frames twice: in its own movi list, then again in a RIFF
    AVIX with its own movi list (where OpenDML puts what follows the first
    gigabyte); an ix## per stream closes each movi list, each stream's indx
    points at its two, and an odml list's dmlh counts the frames. `room`:
    spare bytes in each ix##; `extra`: chunks in the AVIX list after its
    movi list. The layout is the one ffmpeg writes past 1 GiB."""
    riff = parse(data)
    top = riff[0][2]
    hdrl = top[0][2]
    strls = [item for item in hdrl if len(item) == 3 and item[1] == b"strl"]
    kinds = []
    for number, strl in enumerate(strls):
        strh = next(i for i in strl[2] if i[0] == b"strh")
        kinds.append(b"%02d" % number + (b"dc" if strh[1][:4] == b"vids" else b"wb"))
        length = struct.unpack_from("<I", strh[1], 32)[0]
        strl[2][strl[2].index(strh)] = (b"strh", strh[1][:32] + struct.pack("<I", 2 * length)
                                        + strh[1][36:])
        strl[2].append((b"indx", bytes(24 + 16 * SUPER_ENTRIES)))
    hdrl.append((b"LIST", b"odml", [(b"dmlh", bytes(248))]))
    at = next(n for n, i in enumerate(top) if i[0] == b"LIST" and i[1][:4] == b"movi")
    body = top[at][1]
    chunks, pos = [], 4
    while pos + 8 <= len(body):
        kind, n = struct.unpack_from("<4sI", body, pos)
        chunks.append((kind, pos, n))
        pos += 8 + n + (n & 1)
    sizes = [len(_standard(s, k, chunks, 0, room)) for s, k in enumerate(kinds)]
    top[at] = (b"LIST", body + bytes(sum(sizes)))  # the ix## chunks, filled in below
    first = bytearray(encode(riff[0]))
    movi_at = movi(first)[0] + 8
    second = bytearray(riff_list(b"RIFF", b"AVIX", [(b"LIST", body + bytes(sum(sizes))),
                                                    *extra]))
    out = first + second
    avix = len(first)
    ix: list[list[int]] = [[], []]
    for n, base in enumerate((movi_at, avix + 20)):
        pos = base + len(body)
        for number, kind in enumerate(kinds):
            ix_chunk = _standard(number, kind, chunks, base, room)
            out[pos:pos + len(ix_chunk)] = ix_chunk
            ix[n].append(pos + 8)
            pos += len(ix_chunk)
    indx = []
    at = 0
    for number, kind in enumerate(kinds):
        at = out.index(b"indx", at) + 8
        frames = sum(1 for k, _, _ in chunks if k == kind)
        entries = b"".join(struct.pack("<QII", ix[n][number] - 8, sizes[number], frames)
                           for n in range(2))
        out[at:at + 24 + len(entries)] = struct.pack("<HBBI4s", 4, 0, 0, 2, kind) + bytes(12) \
            + entries
        indx.append(at)
    dmlh = out.rindex(b"odmldmlh", 0, movi_at) + 12
    video = sum(1 for k, _, _ in chunks if k == kinds[0])
    struct.pack_into("<I", out, dmlh, 2 * video)
    return OpenDML(out, indx, ix, dmlh, avix)


# -- the corpus ----------------------------------------------------------------------

def _video(corpus, name: str, *args: str) -> Path:
    return corpus.ffmpeg(name, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                         "-t", "2", *args, *TAGS)


def _photo_frames(corpus) -> Path:
    """MJPEG whose every frame is a photo ExifTool tagged (EXIF with GPS,
    IPTC, XMP, a comment, a thumbnail with its own EXIF), copied as it is."""
    photo = corpus.jpeg("frame.jpg", orientation=1)
    return corpus.ffmpeg("photos.avi", "-framerate", "10", "-loop", "1", "-t", "1", "-i",
                         str(photo), "-f", "lavfi", "-i", "sine=duration=1",
                         "-c:v", "copy", "-c:a", "pcm_s16le", *TAGS)


def _patched(corpus, path: Path, name: str) -> Path:
    out = corpus.path(name)
    out.write_bytes(camera_chunks(path.read_bytes()))
    return out


VARIANTS = {
    "ffmpeg mjpeg and pcm": lambda c: _video(c, "mjpeg.avi", "-c:v", "mjpeg",
                                             "-c:a", "pcm_s16le"),
    "ffmpeg mpeg-4 and mp3": lambda c: _video(c, "mpeg4.avi", "-c:v", "mpeg4",
                                              "-c:a", "libmp3lame"),
    "mpeg-4 with strd, strn, IDIT and ncdt": lambda c: _patched(
        c, _video(c, "mpeg4-base.avi", "-c:v", "mpeg4", "-c:a", "libmp3lame"),
        "camera.avi"),
    "mjpeg frames with EXIF, strd, strn, IDIT and ncdt": lambda c: _patched(
        c, _photo_frames(c), "photos-camera.avi"),
}
JPEG_FRAMES = {"ffmpeg mjpeg and pcm", "mjpeg frames with EXIF, strd, strn, IDIT and ncdt"}


def decoded(path: Path) -> list[str]:
    """Each decoded video frame's and audio packet's MD5."""
    out = run("ffmpeg", "-v", "error", "-i", str(path), "-f", "framemd5", "-").stdout.decode()
    return [line for line in out.splitlines() if not line.startswith("#")]


def _edited(sanitized, original: Path, data: bytes):
    """Runs the file through the sandbox; checks the in-place edit cleaned it:
    as long as the upload, nothing planted left. (result, path, bytes)."""
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.tool == "", "the in-place edit, not ffmpeg, should have cleaned this file"
    cleaned = out.read_bytes()
    assert len(cleaned) == len(data)
    assert planted_in_bytes(cleaned) == [] and leftovers(out) == []
    return result, out, cleaned


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_nothing_planted_is_left_and_every_offset_stays(corpus, sanitized, variant):
    original = VARIANTS[variant](corpus)
    data = original.read_bytes()
    assert planted_in_bytes(data)  # so the checks below mean something
    result, out, cleaned = _edited(sanitized, original, data)
    assert ids(cleaned) <= KEPT_IN_HEADER | {b"hdrl", b"strl", b"movi", b"idx1"}
    assert movi(cleaned) == movi(data)
    at, end = movi(data)
    assert cleaned[end:] [:4] == b"idx1" and cleaned[end:] == data[end:]  # the index as it was
    same_everywhere_but_dropped(data, cleaned)
    if variant in JPEG_FRAMES:
        # A frame's comments and APPn segments are zeroed: the same pictures.
        assert decoded(out) == decoded(original)
        assert "JPEG segments in video frames" in result.removed
        audio = [p for p in packets(out) if p.startswith("1,")]
        assert audio == [p for p in packets(original) if p.startswith("1,")]
    else:
        assert packets(out) == packets(original)  # every packet, byte for byte
        assert cleaned[at:end] == data[at:end]
    assert result.removed and all(isinstance(n, str) for n in result.removed)


def test_what_was_removed_is_named_not_quoted(corpus, sanitized):
    result, _ = sanitized(_patched(corpus, _photo_frames(corpus), "named.avi"))
    assert {"chunk:LIST:INFO:IART", "chunk:LIST:INFO:ICMT", "chunk:LIST:INFO:INAM",
            "chunk:strd", "chunk:strn", "chunk:IDIT", "chunk:LIST:ncdt:nctg",
            "JPEG segments in video frames"} <= set(result.removed)
    assert not planted_in_bytes(" ".join(result.removed).encode())


def test_the_ffmpeg_path_would_have_kept_the_frames_exif(corpus):
    """Why frames are edited: ffmpeg's stream copy, which cleaned AVI before,
    keeps every frame's bytes, EXIF and all."""
    photos = _photo_frames(corpus)
    copy = corpus.path("ffmpeg-copy.avi")
    run("ffmpeg", "-v", "error", "-y", "-i", str(photos), "-map", "0:V", "-map", "0:a",
        "-map_metadata", "-1", "-c", "copy", "-fflags", "+bitexact", str(copy))
    assert MAKE.encode() in copy.read_bytes()


# -- large files: no memory file, bounded memory ------------------------------------

@pytest.fixture(scope="module")
def long_video(corpus) -> Path:
    """Over 384 MiB (half of Limits.media_memory, past which ffmpeg's memory
    files refused it): MJPEG frames and PCM looped by ffmpeg, with tags."""
    base = corpus.ffmpeg("avi-base.avi", "-f", "lavfi", "-i",
                         "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i",
                         "sine=frequency=440:sample_rate=48000", "-t", "10",
                         "-c:v", "mjpeg", "-q:v", "1", "-c:a", "pcm_s16le")
    loops = -(-(Limits().media_memory // 2 + 16 * MiB) // base.stat().st_size)
    path = corpus.ffmpeg("long.avi", "-stream_loop", str(loops), "-i", str(base), "-c", "copy",
                         *TAGS)
    assert path.stat().st_size > Limits().media_memory // 2
    return path


def test_a_video_larger_than_the_memory_files_is_cleaned_in_bounded_memory(corpus, long_video):
    """The cleaner's peak memory, with the ffprobe that checks its copy, is
    the same for 40 MiB and for 400 MiB, far below either."""
    short = corpus.ffmpeg("short.avi", "-stream_loop", "3", "-i",
                          str(corpus.path("avi-base.avi")), "-c", "copy", *TAGS)
    _, code_short, peak_short = _child(short, Limits())
    out, code, peak = _child(long_video, Limits())
    assert code == code_short == 0
    assert peak - peak_short < 8 * 1024, (peak_short, peak)  # KiB
    assert peak * 1024 < long_video.stat().st_size / 4
    data = long_video.read_bytes()
    assert len(out) == len(data) and planted_in_bytes(out) == []
    at, end = movi(data)
    assert hashlib.sha256(out[end:]).digest() == hashlib.sha256(data[end:]).digest()
    # Only the frames' encoder comments differ: as many bytes as frames carry them.
    frames = data.count(b"\xff\xfe\x00\x10Lavc", at, end)
    assert frames > 1000 and out.count(b"\xff\xfe\x00\x10" + bytes(14), at, end) >= frames


# -- hostile and unusual headers ------------------------------------------------------

def plan_of(data: bytes) -> tuple[avi.Walk, bytes] | str:
    """The rewriter alone, in this process: the walk and the copy, or
    "ffmpeg" when it does not vouch for the file."""
    fd = os.memfd_create("test")
    try:
        os.write(fd, data)
        return avi.rewrite(fd, len(data))
    except avi.Unsupported:
        return "ffmpeg"
    finally:
        os.close(fd)


@pytest.fixture
def clip(corpus) -> bytes:
    return _patched(corpus, _video(corpus, "hostile-base.avi", "-c:v", "mpeg4",
                                   "-c:a", "libmp3lame"), "hostile.avi").read_bytes()


def _edit(data: bytes, change) -> bytes:
    riff = parse(data)
    change(riff[0][2])
    return encode(riff[0])


def _strl(top: list, n: int = 0) -> list:
    return [i for i in top[0][2] if len(i) == 3 and i[1] == b"strl"][n][2]


def test_the_plain_clip_is_edited(clip):
    walk, out = plan_of(clip)
    assert walk.streams == ["video", "audio"] and len(out) == len(clip)
    assert planted_in_bytes(out) == [] and abs(walk.duration - 2) < 0.2


def test_rec_lists_rifx_and_opendml_it_cannot_read_go_to_ffmpeg(clip):
    at, end = movi(clip)
    with_ix = bytearray(clip[:at + 12] + chunk(b"ix00", bytes(24)) + clip[at + 12:])
    struct.pack_into("<I", with_ix, at + 4, end - at - 8 + 32)
    struct.pack_into("<I", with_ix, 4, len(with_ix) - 8)
    rec = bytearray(clip[:at + 12] + chunk(b"LIST", b"rec " + chunk(b"00dc", b"x"))
                    + clip[at + 12:])
    struct.pack_into("<I", rec, at + 4, end - at - 8 + 22)
    struct.pack_into("<I", rec, 4, len(rec) - 8)
    cases = {
        "indx": _edit(clip, lambda top: _strl(top).append((b"indx", bytes(24)))),
        "ix00": bytes(with_ix), "rec": bytes(rec),
        "RIFX": b"RIFX" + clip[4:],
        "RIFF WAVE": clip + riff_list(b"RIFF", b"WAVE", []),
    }
    for name, data in cases.items():
        assert plan_of(data) == "ffmpeg", name


def test_an_odml_list_and_an_avix_list_are_edited(clip):
    """OpenDML's header list and a further RIFF AVIX, each as the edit reads
    them; what they hold beside what OpenDML reads becomes zeros."""
    odml = _edit(clip, lambda top: top[0][2].append(
        (b"LIST", b"odml", [(b"dmlh", struct.pack("<I", 20) + AUTHOR.encode() + bytes(232)),
                            (b"GPS ", f"{LAT},{LON}".encode())])))
    avix = clip + riff_list(b"RIFF", b"AVIX", [(b"LIST", b"movi", []), *AVIX_EXTRA])
    for data in (odml, avix):
        walk, out = plan_of(data)
        assert len(out) == len(data) and planted_in_bytes(out) == []
    assert b"odml" + chunk(b"dmlh", struct.pack("<I", 20) + bytes(244)) in plan_of(odml)[1]


def test_a_stream_neither_audio_nor_video_goes_to_ffmpeg(corpus, sanitized, clip):
    """Dropping it would mean renumbering the streams after it in every
    chunk id and index entry: ffmpeg drops it instead, when it fits in
    memory; otherwise the file is refused plainly."""
    data = bytearray(clip)  # with strd: ffmpeg would write it into its copy's strf
    struct.pack_into("4s", data, data.index(b"auds"), b"txts")
    assert plan_of(bytes(data)) == "ffmpeg"
    path = corpus.path("text-stream.avi")
    path.write_bytes(bytes(data))
    result, out = sanitized(path)
    assert result.ok and result.tool.startswith("ffmpeg"), result.reason
    assert planted_in_bytes(out.read_bytes()) == [] and leftovers(out) == []
    result, out = sanitized(path, media_memory=64 * 1024)
    assert not result.ok and not result.hostile and out is None
    assert result.reason == "too large to clean in memory (a layout only ffmpeg cleans)"


def test_a_chunk_that_overruns_the_frames_past_the_start_cuts_the_copy_short(
        corpus, sandbox, tmp_path):
    """Found after the start held for the check went out: the copy is cut
    short and refused, never passed off as whole."""
    from sanitize.test_streaming import _clean

    base = _video(corpus, "overrun-base.avi", "-s", "640x360", "-c:v", "mjpeg",
                  "-q:v", "1", "-c:a", "pcm_s16le")
    original = corpus.ffmpeg("overrun-long.avi", "-stream_loop", "30", "-i", str(base),
                             "-c", "copy")
    data = bytearray(original.read_bytes())
    at, end = movi(data)
    assert end - at > 2 * 8 * MiB
    last = data.rindex(b"00dc", at, end)
    struct.pack_into("<I", data, last + 4, end - last)
    path = tmp_path / "overrun.avi"
    path.write_bytes(bytes(data))
    assert plan_of(bytes(data)) == "ffmpeg"
    _, result = _clean(sandbox, path, media_memory=768 * MiB)
    assert not result.ok and result.spool is None and not result.hostile
    assert result.reason in ("the cleaned copy was cut short", "the upload arrived incomplete")


def test_lying_sizes_and_truncation_go_to_ffmpeg(clip):
    at, end = movi(clip)
    riff_past = bytearray(clip)
    struct.pack_into("<I", riff_past, 4, len(clip))
    movi_past = bytearray(clip)
    struct.pack_into("<I", movi_past, at + 4, len(clip))
    info = clip.index(b"INFO") - 8
    info_past = bytearray(clip)
    struct.pack_into("<I", info_past, info + 4, 10 ** 9)
    strh = clip.index(b"strh")
    strh_short = bytearray(clip)
    struct.pack_into("<I", strh_short, strh + 4, 8)
    streams = bytearray(clip)
    struct.pack_into("<I", streams, clip.index(b"avih") + 8 + 24, 3)
    for data in (riff_past, movi_past, info_past, strh_short, streams,
                 clip[:info + 20], clip[:at + 4000], clip[:40]):
        assert plan_of(bytes(data)) == "ffmpeg"


def test_unknown_and_nested_chunks_become_zeros(clip):
    garbage = (b"LIST", b"zzzz", [(b"LIST", b"yyyy", [(b"GPS ", f"{50.4501},{30.5234}".encode()),
                                                      (b"\xff\0\x01x", AUTHOR.encode())]),
                                  (b"IDIT", WHEN.encode())])
    data = _edit(clip, lambda top: (top.insert(2, garbage), top[0][2].insert(1, garbage),
                                    _strl(top, 1).append(garbage)))
    walk, out = plan_of(data)
    assert len(out) == len(data) and planted_in_bytes(out) == []
    assert ids(out) <= KEPT_IN_HEADER | {b"hdrl", b"strl", b"movi", b"idx1"}
    at, end = movi(data)
    assert out[at:] == data[at:]


def test_chunks_in_the_frames_that_are_no_stream_become_zeros(clip):
    at, end = movi(clip)
    extra = chunk(b"JUNK", AUTHOR.encode()) + chunk(b"zz99", SERIAL.encode()) + \
        chunk(b"05dc", MAKE.encode())  # stream 5: there are 2
    data = bytearray(clip[:at + 12] + extra + clip[at + 12:])
    struct.pack_into("<I", data, at + 4, end - at - 8 + len(extra))
    struct.pack_into("<I", data, 4, len(data) - 8)
    # idx1 counts from movi: its offsets move with the chunks put ahead.
    index = data.index(b"idx1", at) + 8
    for entry in range(index, len(data) - 15, 16):
        struct.pack_into("<I", data, entry + 8, struct.unpack_from("<I", data, entry + 8)[0]
                         + len(extra))
    walk, out = plan_of(bytes(data))
    assert planted_in_bytes(out) == [] and len(out) == len(data)
    assert {"chunk:zz99", "chunk:05dc"} <= set(walk.removed)


def test_many_unknown_chunks_are_each_named_once(clip):
    at, end = movi(clip)
    extra = b"".join(struct.pack("<4sI", b"zz%02d" % (n % 100), 0) for n in range(200_000))
    data = bytearray(clip[:at + 12] + extra + clip[at + 12:])
    struct.pack_into("<I", data, at + 4, end - at - 8 + len(extra))
    struct.pack_into("<I", data, 4, len(data) - 8)
    walk, out = plan_of(bytes(data))
    assert len(out) == len(data) and out[at + 12:at + 12 + len(extra)].count(b"JUNK") == 200_000
    assert len(walk.removed) < 200


def test_an_index_entry_for_no_stream_is_refused(clip):
    at, end = movi(clip)
    data = bytearray(clip)
    struct.pack_into("4s", data, end + 8, b"07dc")
    assert plan_of(bytes(data)) == "ffmpeg"


def test_bytes_after_the_riff_file_are_zeroed(clip):
    walk, out = plan_of(clip + AUTHOR.encode())
    assert out.endswith(bytes(len(AUTHOR))) and "bytes after the file" in walk.removed


def test_a_jpeg_filed_under_the_audio_stream_loses_its_exif_too(corpus):
    data = bytearray(_photo_frames(corpus).read_bytes())
    at, end = movi(data)
    start = at
    for _ in range(3):
        frame = data.index(b"00dc", start, end)
        data[frame:frame + 4] = b"01wb"
        start = frame + 4
    walk, out = plan_of(bytes(data))
    assert planted_in_bytes(out) == [] and len(out) == len(data)


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(body)) + body


def test_jpeg_segments_are_zeroed_in_place_and_the_picture_kept():
    """Before the picture data, between the scans of a progressive JPEG and
    after its end: all zeroed, but the second field of an interlaced frame,
    and the picture data, as they were."""
    app0 = _segment(0xE0, b"AVI1" + bytes(10))
    app1 = _segment(0xE1, b"Exif\0\0" + MAKE.encode())
    app14 = _segment(0xEE, b"Adobe" + bytes(7))
    scan = _segment(0xDB, b"\x00\x01") + _segment(0xDA, b"\x01") + \
        b"\x12\xff\x00\x34\xff\xd0" + MAKE.encode()  # a stuffed 0xFF, a restart marker
    between = _segment(0xFE, AUTHOR.encode()) + _segment(0xED, b"Photoshop 3.0\0" + SERIAL.encode())
    field = b"\xff\xd8" + app0 + scan + b"\xff\xd9"
    first = b"\xff\xd8" + app0 + app1 + _segment(0xFE, AUTHOR.encode()) + app14 + scan + \
        between + scan + b"\xff\xff\xd9"
    frame = bytearray(first + field + SERIAL.encode())
    before = bytes(frame)
    assert jpeg_frames.scrub(frame) and len(frame) == len(before)
    assert planted_in_bytes(bytes(frame).replace(scan, b"")) == []
    assert bytes(frame).count(scan) == 3 and app0 in frame and app14 in frame
    assert bytes(frame).endswith(field + bytes(len(SERIAL)))
    assert not jpeg_frames.scrub(frame)  # nothing more to zero
    assert planted_in_bytes(bytes(frame)) == [MAKE]  # the picture data's own bytes, kept


def test_the_main_headers_reserved_bytes_are_zeroed(clip):
    data = bytearray(clip)
    avih = data.index(b"avih") + 8
    data[avih + 40:avih + 56] = SERIAL.encode()[:8] * 2
    walk, out = plan_of(bytes(data))
    assert out[avih + 40:avih + 56] == bytes(16) and out[avih:avih + 40] == data[avih:avih + 40]


def test_no_header_byte_makes_the_rewriter_crash_or_overreach(corpus, clip):
    """Random damage to the headers: a copy as long as the file with only
    the kept chunks and nothing planted, or a hand-over to ffmpeg."""
    bases = [clip, _patched(corpus, _photo_frames(corpus), "fuzz.avi").read_bytes()]
    rng = random.Random(15)
    edited = 0
    for n in range(600):
        data = bytearray(bases[n % 2])
        header = movi(data)[0] + 12
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(header)] = rng.randrange(256)
        if rng.random() < 0.2:
            del data[rng.randrange(len(data)):]
        plan = plan_of(bytes(data))
        if plan == "ffmpeg":
            continue
        walk, out = plan
        edited += 1
        assert len(out) == len(data) and walk.streams and walk.movi_at
        assert planted_in_bytes(out) == []
        assert ids(out[:walk.movi_at - 12]) <= KEPT_IN_HEADER | {b"hdrl", b"strl"}
    assert edited > 300, edited  # most damage is to values the rewrite does not read


# -- OpenDML: what a file past 1 GiB adds, edited where it is ---------------------

GiB = 1024 * MiB


def _hide(built: OpenDML) -> OpenDML:
    """What a hostile file could hide where OpenDML readers do not look:
    each indx's reserved fields and unused entries, dmlh past its frame
    count, each ix##'s reserved field and the room after its entries (when
    the file was built with some)."""
    data = built.data
    for at in built.indx:
        data[at + 12:at + 12 + len(SERIAL)] = SERIAL.encode()
        data[at + 24 + 32:at + 24 + 32 + len(AUTHOR)] = AUTHOR.encode()  # past 2 entries
    data[built.dmlh + 4:built.dmlh + 4 + len(MAKE + MODEL)] = (MAKE + MODEL).encode()
    for at in (at for riff in built.ix for at in riff):
        n = struct.unpack_from("<I", data, at - 4)[0]
        count = struct.unpack_from("<I", data, at + 4)[0]
        data[at + 20:at + 24] = b"\xff" * 4
        start = at + 24 + 8 * count
        data[start:min(at + n, start + len(MODEL))] = MODEL.encode()[:at + n - start]
    return built


def _index_parts(data: bytes, built: OpenDML) -> list[bytes]:
    """What OpenDML readers use: each indx's header and entries in use,
    each ix##'s header (but its reserved field) and entries, dmlh's count."""
    parts = [data[built.dmlh - 8:built.dmlh + 4]]
    for at in built.indx:
        count = struct.unpack_from("<I", data, at + 4)[0]
        parts += [data[at - 8:at + 12], data[at + 24:at + 24 + 16 * count]]
    for at in (at for riff in built.ix for at in riff):
        count = struct.unpack_from("<I", data, at + 4)[0]
        parts += [data[at - 8:at + 20], data[at + 24:at + 24 + 8 * count]]
    return parts


def _hidden_parts(data: bytes, built: OpenDML) -> bytes:
    """Where _hide() hides: all zeros once edited."""
    parts = [data[built.dmlh + 4:built.dmlh + 248]]
    for at in built.indx:
        parts.append(data[at + 12:at + 24] + data[at + 24 + 32:at + 24 + 16 * SUPER_ENTRIES])
    for at in (at for riff in built.ix for at in riff):
        n, count = (struct.unpack_from("<I", data, at + d)[0] for d in (-4, 4))
        parts.append(data[at + 20:at + 24] + data[at + 24 + 8 * count:at + n])
    return b"".join(parts)


AVIX_EXTRA = ((b"LIST", b"INFO", [(b"IART", AUTHOR.encode()), (b"ICMT", SERIAL.encode())]),
              (b"GPS ", f"{LAT},{LON}".encode()))


def test_opendml_is_edited_where_it_is_its_indexes_kept(corpus, sanitized, tmp_path):
    """The layout ffmpeg and cameras write past 1 GiB, on a camera's MJPEG
    frames (EXIF, strd, IDIT, ncdt): the frames of the RIFF AVIX list are
    scrubbed as those of the first, what is in it beside them becomes JUNK,
    what OpenDML's indexes hold is kept byte for byte (their offsets stay
    true), and what they could hide is zeroed."""
    base = _patched(corpus, _photo_frames(corpus), "odml-camera.avi").read_bytes()
    built = _hide(opendml(base, room=16, extra=AVIX_EXTRA))
    data = bytes(built.data + b"Kyiv street 5")
    original = tmp_path / "odml.avi"
    original.write_bytes(data)
    assert len(decoded(original)) > 1.9 * len(decoded(corpus.path("photos.avi")))  # AVIX read
    result, out, cleaned = _edited(sanitized, original, data)
    same_everywhere_but_dropped(data, cleaned)
    assert _index_parts(cleaned, built) == _index_parts(data, built)
    assert not any(_hidden_parts(cleaned, built)) and any(_hidden_parts(data, built))
    assert ids(cleaned) <= KEPT_IN_HEADER | {b"hdrl", b"strl", b"movi", b"idx1", b"indx",
                                             b"odml", b"dmlh"}
    avix = parse(cleaned, built.avix, len(data) - 13)[0]
    assert avix[:2] == (b"RIFF", b"AVIX") and [i[0] for i in avix[2]] == [b"LIST", b"JUNK",
                                                                          b"JUNK"]
    assert decoded(out) == decoded(original)  # the same pictures and sound, in both lists
    assert _frames_exif(out, tmp_path / "frames") == []
    assert {"chunk:LIST:INFO:IART", "chunk:GPS ", "bytes after the file",
            "JPEG segments in video frames"} <= set(result.removed)


def _point(stream: int, entry: int, where):
    """A change to the built file: stream's indx entry points at `where`."""
    def change(built: OpenDML) -> None:
        struct.pack_into("<Q", built.data, built.indx[stream] + 24 + 16 * entry,
                         where(built))
    return change


def _set(fmt: str, where, value):
    def change(built: OpenDML) -> None:
        struct.pack_into(fmt, built.data, where(built), value)
    return change


def _rename_ix(built: OpenDML) -> None:
    at = built.ix[1][1]
    built.data[at - 8:at - 4] = b"ix05"
    built.data[at + 8:at + 12] = b"05wb"


# What the edit does not vouch for: each goes to ffmpeg, before anything is
# sent (these files are smaller than the start held back for the check).
UNREAD_OPENDML = {
    "an indx entry past the file": _point(0, 1, lambda b: len(b.data) + 4096),
    "an indx entry inside a frame": _point(0, 0, lambda b: b.ix[0][0] - 8 - 2048),
    "an indx entry at the AVIX list": _point(1, 1, lambda b: b.avix),
    "an indx entry at another stream's ix##": _point(0, 1, lambda b: b.ix[1][1] - 8),
    "more indx entries than room": _set("<I", lambda b: b.indx[0] + 4, SUPER_ENTRIES + 1),
    "a field index": _set("B", lambda b: b.indx[1] + 2, 1),
    "an indx for another stream": _set("4s", lambda b: b.indx[0] + 8, b"01wb"),
    "an ix## naming no stream": _rename_ix,
    "more ix## entries than room": _set("<I", lambda b: b.ix[1][0] + 4, 1000),
    "an ix## entry past the file": _set("<I", lambda b: b.ix[0][1] + 24 + 8, 1 << 31),
    "an ix## of indexes": _set("B", lambda b: b.ix[0][0] + 3, 0),
    "a second RIFF not AVIX": _set("4s", lambda b: b.avix + 8, b"AVIY"),
    "an AVIX list past the end": _set("<I", lambda b: b.avix + 4, 1 << 30),
}


@pytest.mark.parametrize("case", list(UNREAD_OPENDML))
def test_opendml_it_does_not_vouch_for_goes_to_ffmpeg(corpus, sanitized, tmp_path, case):
    """Indexes that point where no standard index of that stream is, that
    hold more than their room or name no stream, field indexes, a second
    RIFF that is not AVIX: ffmpeg's copy instead, edited as ever; what was
    hidden is never kept."""
    base = _patched(corpus, _photo_frames(corpus), "odml-camera.avi").read_bytes()
    built = _hide(opendml(base, room=16, extra=AVIX_EXTRA))
    UNREAD_OPENDML[case](built)
    data = bytes(built.data)
    assert plan_of(data) == "ffmpeg"
    original = tmp_path / "unread.avi"
    original.write_bytes(data)
    result, out = sanitized(original)
    assert result.ok and result.tool.startswith("ffmpeg"), result.reason
    assert planted_in_bytes(out.read_bytes()) == [] and leftovers(out) == []
    assert _frames_exif(out, tmp_path / "frames") == []


def test_no_opendml_byte_makes_the_edit_crash_or_keep_what_it_hides(clip):
    """Random damage to OpenDML's parts (the header lists, the standard
    indexes, the AVIX list's header): a copy as long as the file with
    nothing hidden kept, or a hand-over to ffmpeg."""
    built = _hide(opendml(clip, room=16, extra=AVIX_EXTRA))
    places = [*range(movi(built.data)[0] + 12), *range(built.avix, built.avix + 24)]
    for at in (at for riff in built.ix for at in riff):
        places += range(at - 8, at + 40)
    rng = random.Random(16)
    edited = 0
    for _ in range(600):
        data = bytearray(built.data)
        for _ in range(rng.randint(1, 3)):
            data[rng.choice(places)] = rng.randrange(256)
        plan = plan_of(bytes(data))
        if plan == "ffmpeg":
            continue
        walk, out = plan
        edited += 1
        assert len(out) == len(data) and planted_in_bytes(out) == []
    assert edited > 200, edited


@pytest.fixture(scope="module")
def opendml_video(corpus) -> Path:
    """Past 1 GiB, where ffmpeg's muxer (as a camera's) goes on in a RIFF
    AVIX list, with a super index per stream pointing at a standard index
    in each movi list: MJPEG frames ExifTool tagged (GPS, serial, owner)
    and PCM, looped by ffmpeg, with tags; then what a hostile file could
    hide in OpenDML's reserved fields and unused entries, written where it
    is (nothing moves)."""
    plain = corpus.ffmpeg("odml-plain.avi", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                          "-t", "10", "-c:v", "mjpeg", "-q:v", "1")
    frames = corpus.path("odml-frames")
    frames.mkdir()
    run("ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy", "-f", "image2",
        str(frames / "%03d.jpg"))
    exiftool_write(frames, *CAMERA_TAGS)
    base = corpus.ffmpeg("odml-base.avi", "-framerate", "25", "-i", str(frames / "%03d.jpg"),
                         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                         "-t", "10", "-c:v", "copy", "-c:a", "pcm_s16le")
    loops = -(-(GiB + 64 * MiB) // base.stat().st_size)
    path = corpus.ffmpeg("odml.avi", "-stream_loop", str(loops - 1), "-i", str(base),
                         "-c", "copy", *TAGS)
    index = _large_index(path)
    assert index["riffs"] == [b"AVI ", b"AVIX"]
    with open(path, "r+b") as f:
        for stream in index["streams"]:
            f.seek(stream["at"] + 12)
            f.write(SERIAL.encode())
            f.seek(stream["at"] + 24 + len(stream["entries"]))
            f.write(AUTHOR.encode())
        f.seek(index["dmlh"] + 4)
        f.write((MAKE + MODEL).encode())
    return path


def _large_index(path: Path) -> dict:
    """OpenDML's parts of a large file, read where they are: the RIFF lists'
    forms, dmlh, and each stream's indx (where, its header, reserved bytes,
    entries in use and the rest) with the ix## chunks its entries point at."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        riffs, pos = [], 0
        while pos + 12 <= size:
            f.seek(pos)
            _, n, form = struct.unpack("<4sI4s", f.read(12))
            riffs.append(form)
            pos += 8 + n + (n & 1)
        f.seek(0)
        head = f.read(64 * 1024)
        head = head[:head.index(b"movi")]
        dmlh = head.index(b"odmldmlh") + 12
        streams, at = [], head.find(b"indx")
        while at >= 0:
            n, _, _, _, count = struct.unpack_from("<IHBBI", head, at + 4)
            body = head[at + 8:at + 8 + n]
            ix = []
            for entry in range(24, 24 + 16 * count, 16):
                f.seek(struct.unpack_from("<Q", body, entry)[0])
                kind, m = struct.unpack("<4sI", f.read(8))
                ix.append((kind, f.read(m)))
            streams.append({"at": at + 8, "header": body[:12], "reserved": body[12:24],
                            "entries": body[24:24 + 16 * count],
                            "unused": body[24 + 16 * count:], "ix": ix})
            at = head.find(b"indx", at + 8 + n)
        return {"riffs": riffs, "dmlh": dmlh, "dmlh_body": head[dmlh:dmlh + 248],
                "streams": streams}


def _planted_in_file(path: Path) -> list[str]:
    """planted_in_bytes over a file too large to hold, piece by piece."""
    found, tail = set(), b""
    with open(path, "rb") as f:
        while piece := f.read(64 * MiB):
            found.update(planted_in_bytes(tail + piece))
            tail = piece[-64:]
    return sorted(found)


def _frames_at(path: Path, start: float) -> list[str]:
    """A second of decoded frames and sound from `start`, reached by seeking
    (through OpenDML's indexes)."""
    out = run("ffmpeg", "-v", "error", "-ss", str(start), "-i", str(path), "-t", "1",
              "-f", "framemd5", "-").stdout.decode()
    return [line for line in out.splitlines() if not line.startswith("#")]


def test_an_opendml_video_past_1_gib_is_edited_in_bounded_memory(corpus, opendml_video,
                                                                  tmp_path):
    """Where ffmpeg's memory files refused every OpenDML file over 384 MiB:
    edited in place with the same peak memory as a 40 MiB file; the frames
    of both RIFF lists scrubbed, the indexes kept byte for byte and true,
    what they could hide zeroed."""
    short = corpus.ffmpeg("odml-short.avi", "-stream_loop", "3", "-i",
                          str(corpus.path("odml-base.avi")), "-c", "copy", *TAGS)
    _, code_short, peak_short = _child(short, Limits())
    out = tmp_path / "odml-clean.avi"
    _, code, peak = _child(opendml_video, Limits(), into=out)
    size = opendml_video.stat().st_size
    assert code == code_short == 0
    assert peak - peak_short < 8 * 1024, (peak_short, peak)  # KiB
    assert peak * 1024 < size / 8
    assert out.stat().st_size == size > GiB
    with open(opendml_video, "rb") as f:
        assert planted_in_bytes(f.read(16 * MiB))  # so the check below means something
    assert _planted_in_file(out) == []
    before, after = _large_index(opendml_video), _large_index(out)
    assert after["riffs"] == before["riffs"] == [b"AVI ", b"AVIX"]
    assert after["dmlh_body"] == before["dmlh_body"][:4] + bytes(244)
    assert len(after["streams"]) == len(before["streams"]) == 2
    for was, now in zip(before["streams"], after["streams"], strict=True):
        assert now["header"] == was["header"] and now["entries"] == was["entries"]
        assert any(was["reserved"] + was["unused"])
        assert not any(now["reserved"] + now["unused"])
        assert len(now["ix"]) == 2  # one in each movi list, where the entries say
        assert now["ix"] == was["ix"] and all(kind[:2] == b"ix" for kind, _ in now["ix"])
    duration = float(run("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                         "csv=p=0", str(out)).stdout)
    assert duration > 1000
    for start in (1.0, duration / 2, duration - 3):  # the last in the AVIX list
        assert _frames_at(out, start) == _frames_at(opendml_video, start)


# -- what only ffmpeg copies: its copy is edited too ---------------------------------

def _cut_before_the_index(data: bytes) -> bytes:
    """A recording that stopped before its index was written: the RIFF size
    counts the index that is not there."""
    return data[:movi(data)[1]]


def _rec_list(data: bytes) -> bytes:
    at, end = movi(data)
    rec = bytearray(data[:at + 12] + chunk(b"LIST", b"rec " + chunk(b"01wb", bytes(4)))
                    + data[at + 12:])
    struct.pack_into("<I", rec, at + 4, end - at - 8 + 24)
    struct.pack_into("<I", rec, 4, len(rec) - 8)
    return bytes(rec)


# Layouts the edit does not vouch for, and ffmpeg reads.
DECLINED = {
    "an OpenDML index it does not read": lambda d: _edit(
        d, lambda top: _strl(top).append((b"indx", bytes(24)))),
    "an OpenDML field index": lambda d: _edit(d, lambda top: _strl(top).append(
        (b"indx", struct.pack("<HBBI4s", 4, 1, 0, 0, b"00dc") + bytes(12)))),
    "a rec list": _rec_list,
    "cut short before its index": _cut_before_the_index,
}


def _frames_exif(path: Path, folder: Path) -> list[dict]:
    """What ExifTool finds in each video frame, taken out of the file as it
    is (stream copy into JPEG files): GPS, camera and owner."""
    folder.mkdir()
    run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "image2",
        str(folder / "%03d.jpg"))
    frames = json.loads(run("exiftool", "-j", "-n", "-GPSLatitude", "-GPSLongitude", "-Make",
                            "-SerialNumber", "-Artist", "-XMP:Creator", str(folder)).stdout)
    assert len(frames) >= 10
    return [{k: v for k, v in f.items() if k != "SourceFile"} for f in frames
            if set(f) - {"SourceFile"}]


def codec_configuration(path: Path) -> bytes:
    """Each stream's codec configuration (extradata) as ffprobe reads it,
    one after the other."""
    info = json.loads(run("ffprobe", "-v", "quiet", "-print_format", "json", "-show_streams",
                          "-show_data", str(path)).stdout)
    return b"".join(bytes.fromhex(line[10:50]) for stream in info["streams"]
                    for line in stream.get("extradata", "").splitlines() if line)


@pytest.mark.parametrize("layout", list(DECLINED))
def test_what_only_ffmpeg_copies_loses_the_frames_exif_and_strd_all_the_same(
        corpus, sanitized, tmp_path, layout):
    """ffmpeg's stream copy alone keeps every MJPEG frame's EXIF, and takes
    a camera's strd for the codec configuration of a stream that has none,
    written back into the copy's strf: the copy is edited as the edit would
    have edited the upload, and its frames decode to the same pictures."""
    data = DECLINED[layout](_patched(corpus, _photo_frames(corpus),
                                     "declined-base.avi").read_bytes())
    assert plan_of(data) == "ffmpeg"
    original = tmp_path / "declined.avi"
    original.write_bytes(data)
    copy = tmp_path / "ffmpeg-copy.avi"
    run("ffmpeg", "-v", "error", "-i", str(original), *COPY_ARGS, "-f", "avi", str(copy))
    assert _frames_exif(copy, tmp_path / "copy")[0]["GPSLatitude"] == pytest.approx(LAT)
    assert SERIAL.encode() in codec_configuration(copy)  # the leak this guards against

    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.tool.startswith("ffmpeg")
    assert planted_in_bytes(out.read_bytes()) == [] and leftovers(out) == []
    assert _frames_exif(out, tmp_path / "cleaned") == []
    assert planted_in_bytes(codec_configuration(out)) == []
    assert b"AVIF" not in codec_configuration(out)
    assert decoded(out) == decoded(original)  # the same pictures and sound
    assert {"chunk:strd", "JPEG segments in video frames"} <= set(result.removed)


def _memory_file(data: bytes) -> int:
    fd = os.memfd_create("test")
    os.write(fd, data)
    return fd


def test_strd_is_hidden_from_ffmpeg_wherever_it_is_before_the_frames(clip):
    """In every stream's list, or anywhere else before the movi list: the id
    becomes JUNK and what it holds zeros; the frames are not touched, even
    where their bytes happen to spell the id."""
    data = _edit(clip, lambda top: (_strl(top, 1).append((b"strd", strd()[8:])),
                                    top[0][2].insert(1, (b"strd", strd()[8:]))))
    at, end = movi(data)
    data = data[:at + 12] + b"strd" + data[at + 16:]  # the first frame's id
    fd = _memory_file(data)
    try:
        assert avi.hide_stream_data(fd, len(data)) == 3
        out = os.pread(fd, len(data) + 1, 0)
    finally:
        os.close(fd)
    body = strd()[8:]
    places = [n for n in range(at) if data[n:n + 4] == b"strd"]
    assert len(places) == 3 and out[at:] == data[at:]
    for n in places:
        assert out[n:n + 8 + len(body)] == struct.pack("<4sI", b"JUNK", len(body)) + \
            bytes(len(body))
    hidden = {i for n in places for i in range(n, n + 8 + len(body))}
    assert all(out[i] == data[i] for i in range(len(data)) if i not in hidden)


def test_the_check_finds_what_ffmpegs_copy_kept(corpus, tmp_path):
    """The check of the copy, a reader of its own (ffprobe, and a search of
    its bytes), refuses ffmpeg's copy as ffmpeg left it: a camera's strd as
    the codec configuration, EXIF in the frames. A plain copy passes."""
    from intake.server.sanitize import verify
    from intake.server.sanitize.base import Cleaned

    cases = {
        "a camera's data as codec configuration": _patched(
            corpus, _video(corpus, "mpeg4-base.avi", "-c:v", "mpeg4", "-c:a", "libmp3lame"),
            "camera.avi"),
        "EXIF, XMP or IPTC in a frame": _photo_frames(corpus),
        None: _video(corpus, "mjpeg.avi", "-c:v", "mjpeg", "-c:a", "pcm_s16le"),
    }
    for n, (left, original) in enumerate(cases.items()):
        copy = tmp_path / f"copy-{n}.avi"
        run("ffmpeg", "-v", "error", "-i", str(original), *COPY_ARGS, "-f", "avi", str(copy))
        before = json.loads(run("ffprobe", "-v", "quiet", "-print_format", "json",
                                "-show_format", "-show_streams", str(original)).stdout)
        fd = _memory_file(copy.read_bytes())
        cleaned = Cleaned(b"", [], detected_type=verify.AVI, fd=fd,
                          ranges=[(0, copy.stat().st_size)], before=before)
        try:
            if left is None:
                verify.check_media(cleaned)
                continue
            with pytest.raises(verify.Failed) as refused:
                verify.check_media(cleaned)
            assert refused.value.reason == \
                f"the cleaned copy failed its check (metadata left: {left})"
        finally:
            os.close(fd)


def test_strd_ffmpeg_finds_where_it_was_not_looked_for_is_refused(corpus, sanitized, clip):
    """A `movi` list's id in a JUNK chunk ahead of the streams ends the
    search for strd ids before ffmpeg, which skips the JUNK chunk, reads
    them: the check of the copy finds the camera's data, and the file is
    refused (the witness may send it as it is), never kept as cleaned."""
    data = _edit(clip, lambda top: (top[0][2].insert(1, (b"JUNK", b"LIST\4\0\0\0movi")),
                                    _strl(top).append((b"indx", bytes(24)))))
    assert plan_of(data) == "ffmpeg"
    path = corpus.path("hidden-strd.avi")
    path.write_bytes(data)
    result, out = sanitized(path)
    assert not result.ok and not result.hostile and out is None
    assert result.reason == ("the cleaned copy failed its check (metadata left: "
                             "a camera's data as codec configuration)")
