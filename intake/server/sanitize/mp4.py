"""MP4, MOV, M4A and 3GP rewritten box by box: the index (moov) is rebuilt
from what plays, the media data is copied untouched, and nothing else is.

ffmpeg's stream copy does the same job through a demuxer and a muxer; doing
it here needs no second copy of the file and no second process, and it keeps
every sample byte for byte. A fragmented file (movie extends in its index)
raises `Fragmented`, and intake.server.sanitize.mp4frag rewrites it. A file
this module does not vouch for (cut short, inconsistent or unusual: compact
sample sizes, sound whose sample sizes may count frames, media in another
file...) raises
`Unsupported`, and the caller hands it to ffmpeg instead. An index that
points outside `mdat` raises `Malformed`: the file is kept as received,
flagged, since ffmpeg would copy whatever such an index points at (the tags,
the index itself) as if it were video.

What goes:
- every track that is not video or audio (GoPro GPMF, Apple mebx, timecode,
  timed text where drones write GPS, chapters), and its samples in `mdat`;
- every byte of `mdat` that no kept track points at;
- user data and metadata boxes (`udta`, `meta`, `uuid`, the MP4 location
  atom), at every level, and every box not listed below;
- creation and modification times, handler names, the vendor and
  compressor name of each sample description (the encoder tag).

What stays: the movie and track headers (times zeroed), edit lists, sample
descriptions with their codec configuration, and the sample tables, with
chunk offsets pointing into the new `mdat`. The result is laid out
ftyp, moov, mdat, so it plays while it downloads.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol

from intake.server.sanitize import icc
from intake.server.sanitize.base import Refused, field_name, unique

MAX_INDEX = 64 * 1024 * 1024  # a moov this large is not a phone's
MAX_FTYP = 64 * 1024  # a real one names a few brands
MAX_TOP_LEVEL = 10_000  # a real file has a handful
NARROW_OFFSETS = 0xFFFFFFFF  # past this, chunk offsets need 64 bits (co64)
KEPT_HANDLERS = {b"vide", b"soun"}
# Children kept, per parent; everything else is dropped and named.
TRAK_KEEP = {b"tkhd", b"edts", b"mdia", b"tapt"}
MDIA_KEEP = {b"mdhd", b"hdlr", b"minf"}
MINF_KEEP = {b"vmhd", b"smhd", b"hdlr", b"dinf", b"stbl"}
STBL_KEEP = {b"stsd", b"stts", b"ctts", b"cslg", b"stss", b"stps", b"sdtp", b"stsc",
             b"stsz", b"stco", b"co64", b"sgpd", b"sbgp", b"subs"}
# Inside a sample description: the codec's own configuration only.
ENTRY_KEEP = {b"avcC", b"hvcC", b"lhvC", b"vexu", b"vvcC", b"av1C", b"vpcC", b"dvcC",
              b"dvvC", b"esds", b"dOps", b"dfLa", b"dac3", b"dec3", b"dac4", b"alac",
              b"chan", b"chnl", b"pcmC", b"mhaC", b"dmlp", b"ddts", b"wave", b"colr",
              b"pasp", b"fiel", b"clap", b"btrt", b"gama", b"mdcv", b"clli", b"damr",
              b"d263", b"glbl", b"SA3D", b"st3d", b"sv3d"}
WAVE_KEEP = {b"frma", b"esds", b"mp4a", b"enda", b"alac", b"chan", b"\0\0\0\0"}
# Motion JPEG: QuickTime's sample descriptions, and MP4's MPEG-4 visual one
# whose decoder configuration names JPEG (object type 0x6C).
JPEG_ENTRIES = {b"jpeg", b"mjpa", b"mjpb", b"AVDJ", b"AVRn", b"dmb1", b"MJPG", b"ADJV"}
JPEG_OBJECT_TYPES = {0x6C}
BIG_ENDIAN_HOST = sys.byteorder == "big"
FRAGMENTED = {b"moof", b"mfra", b"sidx", b"styp", b"ssix"}


class Unsupported(Exception):
    """Not a file this rewriter vouches for: ffmpeg gets it instead."""


class Fragmented(Unsupported):
    """An index with movie extends (mvex): the samples follow in fragments,
    which intake.server.sanitize.mp4frag rewrites as they stream. Carries
    what was read up to the end of the index; `src` stands just after it."""

    def __init__(self, mvhd: bytes, tracks: list[Track], mvex: bytes):
        super().__init__("fragmented")
        self.mvhd, self.tracks, self.mvex = mvhd, tracks, mvex
        self.ftyp = b""
        self.removed: list[str] = []


class Malformed(Refused):
    """Broken or hostile: the file is kept as received, flagged. Not given to
    ffmpeg, which would copy whatever a hostile index points at (the tags,
    the index itself) as if it were video."""

    def __init__(self, what: str):
        super().__init__(f"malformed mp4 file ({what})")


@dataclass
class Box:
    kind: bytes
    start: int  # of the header, in whatever buffer or file it was read from
    header: int
    size: int

    @property
    def body(self) -> int:
        return self.start + self.header

    @property
    def end(self) -> int:
        return self.start + self.size


def _header(data: bytes | memoryview, pos: int, end: int) -> Box:
    if end - pos < 8:
        raise Unsupported("box header cut short")
    size, kind = struct.unpack_from(">I4s", data, pos)
    header = 8
    if size == 1:
        if end - pos < 16:
            raise Unsupported("box header cut short")
        (size,) = struct.unpack_from(">Q", data, pos + 8)
        header = 16
    elif size == 0:
        size = end - pos
    if size < header or pos + size > end:
        raise Unsupported("box size out of bounds")
    return Box(bytes(kind), pos, header, size)


def children(data: bytes | memoryview, start: int, end: int) -> list[Box]:
    boxes, pos = [], start
    while pos < end:
        if end - pos < 8 and not any(data[pos:end]):
            break  # QuickTime may pad a list with a zero terminator
        box = _header(data, pos, end)
        boxes.append(box)
        pos = box.end
    return boxes


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    if len(body) + 8 > 0xFFFFFFFF:
        return struct.pack(">I4sQ", 1, kind, len(body) + 16) + body
    return struct.pack(">I4s", len(body) + 8, kind) + body


def _zero_times(data: bytes, b: Box) -> bytes:
    """mvhd, tkhd and mdhd all start with version, flags, created, modified."""
    body = bytearray(data[b.body:b.end])
    if not body:
        raise Unsupported("empty header box")
    width = 8 if body[0] == 1 else 4
    if len(body) < 4 + 2 * width:
        raise Unsupported("header box too short")
    body[4:4 + 2 * width] = bytes(2 * width)
    return box(b.kind, bytes(body))


def _handler(data: bytes, b: Box) -> tuple[bytes, bytes]:
    """The handler's type, and the box again with its name and maker emptied."""
    body = data[b.body:b.end]
    if len(body) < 24:
        raise Unsupported("handler box too short")
    # version/flags, component type (QuickTime) or zero, handler type,
    # three reserved words (QuickTime: the maker), then the name, emptied:
    # one zero byte is both an empty C string and an empty Pascal string.
    return body[8:12], box(b"hdlr", bytes(4), body[4:12], bytes(12), b"\0")


@dataclass
class Track:
    offsets: array  # chunk offsets in the file
    sizes: list[int]  # chunk lengths in bytes
    parts: dict[bytes, bytes]  # the boxes it is rebuilt from, by name
    frames: list[tuple[int, int]] = field(default_factory=list)  # JPEG samples: offset, size
    motion_jpeg: bool = False


def _table(data: bytes, b: Box, code: str, per_entry: int) -> array:
    if b.size - b.header < 8:
        raise Unsupported("table too short")
    (count,) = struct.unpack_from(">I", data, b.body + 4)
    start = b.body + 8
    if start + count * per_entry * (8 if code == "Q" else 4) > b.end:
        raise Unsupported("table longer than its box")
    values = array(code)
    values.frombytes(data[start:start + count * per_entry * values.itemsize])
    return _swapped(values)


def _swapped(values: array) -> array:
    """Between the file's big-endian order and this machine's, either way."""
    if BIG_ENDIAN_HOST:
        return values
    values.byteswap()
    return values


def _sample_size_header(data: bytes, stsz: Box) -> tuple[int, int]:
    """stsz: the size shared by every sample (0 if each has its own), and the count."""
    if stsz.size - stsz.header < 12:
        raise Unsupported("sample size table too short")
    return struct.unpack_from(">II", data, stsz.body + 4)


def _sample_layout(data: bytes, stsc: Box, stsz: Box, chunks: int
                   ) -> tuple[list[int], array | None, int]:
    """Samples per chunk, and each sample's size (None when all share the
    size that comes third)."""
    table = _table(data, stsc, "I", 3)
    uniform, count = _sample_size_header(data, stsz)
    if uniform:
        sizes = None
    else:
        if stsz.body + 12 + 4 * count > stsz.end:
            raise Unsupported("sample size table longer than its box")
        sizes = array("I")
        sizes.frombytes(data[stsz.body + 12:stsz.body + 12 + 4 * count])
        _swapped(sizes)
    # samples per chunk, from runs of (first chunk, samples per chunk, entry)
    per_chunk: list[int] = []
    runs = [(table[i], table[i + 1]) for i in range(0, len(table), 3)]
    for n, (first, samples) in enumerate(runs):
        last = runs[n + 1][0] if n + 1 < len(runs) else chunks + 1
        if first != len(per_chunk) + 1 or not first < last <= chunks + 1:
            raise Unsupported("sample-to-chunk table out of order")
        per_chunk.extend([samples] * (last - first))
    if len(per_chunk) != chunks or sum(per_chunk) != count:
        raise Unsupported("sample tables disagree")
    return per_chunk, sizes, uniform


def _chunk_sizes(per_chunk: list[int], sizes: array | None, uniform: int) -> list[int]:
    if sizes is None:
        return [uniform * n for n in per_chunk]
    prefix = array("Q", accumulate(sizes, initial=0))
    ends = accumulate(per_chunk)
    return [prefix[e] - prefix[e - n] for e, n in zip(ends, per_chunk, strict=True)]


def _samples(offsets: array, per_chunk: list[int], sizes: array | None,
             uniform: int) -> list[tuple[int, int]]:
    """Every non-empty sample, as (offset in the file, size)."""
    found, n = [], 0
    for offset, count in zip(offsets, per_chunk, strict=True):
        at = offset
        for size in (sizes[n:n + count] if sizes is not None else [uniform] * count):
            if size:
                found.append((at, size))
            at += size
        n += count
    return found


def _jpeg_coded(data: bytes, stsd: Box) -> bool:
    """Whether a video track's samples may be JPEG pictures (Motion JPEG)."""
    for entry in children(data, stsd.body + 8, stsd.end):
        if entry.kind in JPEG_ENTRIES:
            return True
        if entry.kind == b"mp4v" and entry.size - entry.header > 78:
            for child in children(data, entry.body + 78, entry.end):
                if child.kind == b"esds" and _object_type(data[child.body:child.end]) \
                        in JPEG_OBJECT_TYPES:
                    return True
    return False


def _object_type(esds: bytes) -> int | None:
    """The object type in an MPEG-4 elementary stream descriptor (ISO/IEC
    14496-1): after the full box header, an ES descriptor (tag 3), then its
    decoder configuration (tag 4), whose first byte it is."""
    pos = 4
    for tag in (3, 4):
        if pos >= len(esds) or esds[pos] != tag:
            return None
        pos += 1
        for _ in range(4):  # the length: up to four bytes of seven bits
            if pos >= len(esds):
                return None
            pos += 1
            if not esds[pos - 1] & 0x80:
                break
        if tag == 3:
            if pos + 3 > len(esds):
                return None
            flags = esds[pos + 2]
            pos += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
            if flags & 0x40:  # a URL, preceded by its length
                pos += 1 + (esds[pos] if pos < len(esds) else 0)
    return esds[pos] if pos < len(esds) else None


def _sample_entries(data: bytes, stsd: Box, handler: bytes, self_contained: set[int],
                    quicktime: bool, removed: list[str]) -> bytes:
    """stsd rebuilt: each entry's vendor and compressor name emptied, its
    children cut down to the codec configuration."""
    if stsd.size - stsd.header < 8:
        raise Unsupported("sample description box too short")
    (count,) = struct.unpack_from(">I", data, stsd.body + 4)
    entries = children(data, stsd.body + 8, stsd.end)
    if len(entries) != count or not entries:
        raise Unsupported("sample description count disagrees")
    out = []
    for entry in entries:
        fixed = 8 + (70 if handler == b"vide" else 20)
        body = bytearray(data[entry.body:entry.end])
        if len(body) < fixed:
            raise Unsupported("sample description too short")
        (reference,) = struct.unpack_from(">H", body, 6)
        if reference not in self_contained:
            raise Unsupported("media kept in another file")
        struct.pack_into(">H", body, 6, 1)
        version = struct.unpack_from(">H", body, 8)[0]
        body[12:16] = bytes(4)  # vendor
        if handler == b"vide":
            if version > 1 or struct.unpack_from(">h", body, 76)[0] != -1:
                raise Unsupported("video description with a colour table")
            if any(body[42:74]):
                removed.append("encoder tag")
            body[42:74] = bytes(32)  # compressor name
        else:
            # QuickTime sound descriptions grow with their version; ISO's do not.
            fixed += {0: 0, 1: 16, 2: 36}.get(version, -1) if quicktime else -version
            if fixed < 28 or len(body) < fixed:
                raise Unsupported("unknown sound description version")
        kept = [bytes(body[:fixed])]
        for child in children(body, fixed, len(body)):
            kept.append(_entry_child(body, child, removed))
        out.append(box(entry.kind, *kept))
    return box(b"stsd", data[stsd.body:stsd.body + 8], *out)


def _entry_child(body: bytearray, child: Box, removed: list[str]) -> bytes:
    if child.kind not in ENTRY_KEEP:
        removed.append(f"sample description:{field_name(child.kind)}")
        return b""
    if child.kind == b"colr" and body[child.body:child.body + 4] in (b"prof", b"rICC") \
            and not icc.is_standard(bytes(body[child.body + 4:child.end])):
        removed.append("sample description:colr (ICC profile not a standard one)")
        return b""
    if child.kind == b"sv3d":  # 360° video: its header names the stitching software
        return box(b"sv3d", *(box(b"svhd", bytes(5)) if inner.kind == b"svhd"
                              else bytes(body[inner.start:inner.end])
                              for inner in children(body, child.body, child.end)))
    if child.kind != b"wave":
        return bytes(body[child.start:child.end])
    kept = []
    for inner in children(body, child.body, child.end):
        if inner.kind in WAVE_KEEP:
            kept.append(bytes(body[inner.start:inner.end]))
        else:
            removed.append(f"sample description:wave:{field_name(inner.kind)}")
    return box(b"wave", *kept)


def _self_contained(data: bytes, dinf: Box | None) -> set[int]:
    """The data reference indices whose media is in this file."""
    if dinf is None:
        raise Unsupported("no data information")
    found = {b.kind: b for b in children(data, dinf.body, dinf.end)}
    dref = found.get(b"dref")
    if dref is None or dref.size - dref.header < 8:
        raise Unsupported("no data reference")
    local = set()
    for n, ref in enumerate(children(data, dref.body + 8, dref.end), start=1):
        if ref.size - ref.header >= 4 and data[ref.body + 3] & 1:
            local.add(n)
    return local


DATA_HANDLER = box(b"hdlr", bytes(4), b"dhlr", b"url ", bytes(12), b"\0")
DREF = box(b"dinf", box(b"dref", struct.pack(">II", 0, 1), box(b"url ", b"\0\0\0\1")))


def _track(data: bytes, trak: Box, quicktime: bool, removed: list[str]) -> Track | None:
    found = _first(data, trak, TRAK_KEEP, "trak", removed)
    mdia = found.get(b"mdia")
    if mdia is None or b"tkhd" not in found:
        raise Unsupported("track without media")
    media = _first(data, mdia, MDIA_KEEP, "mdia", removed)
    if b"hdlr" not in media:
        raise Unsupported("track without handler")
    handler, hdlr = _handler(data, media[b"hdlr"])
    if handler not in KEPT_HANDLERS:
        removed.append(f"{field_name(handler)} stream ({field_name(_codec(data, media))})")
        return None
    if b"minf" not in media or b"mdhd" not in media:
        raise Unsupported("track without media header")
    minf = _first(data, media[b"minf"], MINF_KEEP, "minf", removed)
    stbl_box = minf.get(b"stbl")
    if stbl_box is None:
        raise Unsupported("track without sample table")
    stbl = _first(data, stbl_box, STBL_KEEP, "stbl", removed)
    for need in (b"stsd", b"stsc", b"stsz"):
        if need not in stbl:
            raise Unsupported("incomplete sample table")
    if (b"stco" in stbl) == (b"co64" in stbl):
        raise Unsupported("chunk offsets missing or doubled")
    stsd = _sample_entries(data, stbl[b"stsd"], handler,
                                  _self_contained(data, minf.get(b"dinf")), quicktime, removed)
    offsets = (_table(data, stbl[b"stco"], "I", 1) if b"stco" in stbl
               else _table(data, stbl[b"co64"], "Q", 1))
    uniform = _sample_size_header(data, stbl[b"stsz"])[0]
    if handler == b"soun" and uniform and uniform != _pcm_frame_bytes(data, stbl[b"stsd"]):
        # QuickTime sound may count frames, not bytes: ffmpeg then sizes
        # chunks from the description, which some recorders get wrong.
        raise Unsupported("sound sample sizes this rewrite cannot trust")
    per_chunk, sample_sizes, uniform = _sample_layout(data, stbl[b"stsc"], stbl[b"stsz"],
                                                      len(offsets))
    motion_jpeg = handler == b"vide" and _jpeg_coded(data, stbl[b"stsd"])
    frames = _samples(offsets, per_chunk, sample_sizes, uniform) if motion_jpeg else []
    return Track(offsets, _chunk_sizes(per_chunk, sample_sizes, uniform), {
        b"tkhd": _zero_times(data, found[b"tkhd"]), b"mdhd": _zero_times(data, media[b"mdhd"]),
        b"hdlr": hdlr, b"stsd": stsd,
        b"minf-hdlr": DATA_HANDLER if b"hdlr" in minf else b"",
        b"media-header": b"".join(data[minf[k].start:minf[k].end]
                                  for k in (b"vmhd", b"smhd") if k in minf),
        b"edts": _copy(data, found.get(b"edts")), b"tapt": _copy(data, found.get(b"tapt")),
        b"tables": b"".join(data[stbl[k].start:stbl[k].end] for k in
                            (b"stts", b"ctts", b"cslg", b"stss", b"stps", b"sdtp", b"stsc",
                             b"stsz", b"sgpd", b"sbgp", b"subs") if k in stbl),
    }, frames, motion_jpeg)


PCM = {b"raw ", b"twos", b"sowt", b"in24", b"in32", b"fl32", b"fl64", b"lpcm", b"NONE",
       b"ipcm", b"fpcm", b"alaw", b"ulaw"}


def _pcm_frame_bytes(data: bytes, stsd: Box) -> int | None:
    """Bytes per frame of plain PCM in a version 0 description with a single
    entry: the only case where a shared sample size is sure to count bytes."""
    entries = children(data, stsd.body + 8, stsd.end)
    if len(entries) != 1 or entries[0].kind not in PCM or entries[0].size - entries[0].header < 20:
        return None
    version, channels, bits = struct.unpack_from(">H6xHH", data, entries[0].body + 8)
    return channels * bits // 8 if version == 0 and bits % 8 == 0 else None


def _codec(data: bytes, media: dict[bytes, Box]) -> bytes:
    """The first sample description's type of a track that is dropped."""
    try:
        minf = {b.kind: b for b in children(data, media[b"minf"].body, media[b"minf"].end)}
        stbl = {b.kind: b for b in children(data, minf[b"stbl"].body, minf[b"stbl"].end)}
        stsd = stbl[b"stsd"]
    except (KeyError, Unsupported):
        return b"????"
    return data[stsd.body + 12:stsd.body + 16] if stsd.size - stsd.header >= 16 else b"????"


def _copy(data: bytes, b: Box | None) -> bytes:
    return data[b.start:b.end] if b is not None else b""


def _first(data: bytes, parent: Box, keep: set[bytes], where: str,
           removed: list[str]) -> dict[bytes, Box]:
    found: dict[bytes, Box] = {}
    for b in children(data, parent.body, parent.end):
        if b.kind in keep and b.kind not in found:
            found[b.kind] = b
        else:
            removed.extend(_names(data, b, where))
    return found


def _names(data: bytes, b: Box, where: str, depth: int = 0) -> list[str]:
    """The dropped box, and the names of the fields in it (never their values):
    user data atoms, and metadata keys such as com.apple.quicktime.make."""
    names = [f"{where}:{field_name(b.kind)}"]
    if b.kind not in (b"udta", b"meta") or depth > 3:
        return names
    try:
        inside = children(data, b.body, b.end)
        if b.kind == b"meta" and data[b.body:b.body + 4] == bytes(4):
            inside = children(data, b.body + 4, b.end)  # ISO's meta has a version
    except Unsupported:
        return names
    here = f"{where}:{field_name(b.kind)}"
    keyed = any(item.kind == b"keys" for item in inside)
    for item in inside:
        if item.kind == b"keys" and item.size - item.header >= 8:
            names += [f"{here}:{key}" for key in _keys(data, item)]
        elif item.kind == b"meta":
            names += _names(data, item, here, depth + 1)
        elif item.kind == b"ilst" and not keyed:  # iTunes-style: the atoms name themselves
            try:
                names += [f"{here}:{field_name(tag.kind)}"
                          for tag in children(data, item.body, item.end)]
            except Unsupported:
                names.append(f"{here}:ilst")
        elif item.kind not in (b"hdlr", b"ilst", b"free"):
            names.append(f"{here}:{field_name(item.kind)}")
    return names


def _keys(data: bytes, keys: Box) -> list[str]:
    names, pos = [], keys.body + 8
    while pos + 8 <= keys.end:
        (size,) = struct.unpack_from(">I", data, pos)
        if size < 8 or pos + size > keys.end:
            break
        names.append(field_name(data[pos + 8:pos + size], 60))
        pos += size
    return names


def _trak_bytes(track: Track, offsets: array, wide: bool) -> bytes:
    p = track.parts
    table = _swapped(array("Q" if wide else "I", offsets))
    chunk_box = box(b"co64" if wide else b"stco", struct.pack(">II", 0, len(offsets)),
                    table.tobytes())
    stbl = box(b"stbl", p[b"stsd"], p[b"tables"], chunk_box)
    minf = box(b"minf", p[b"media-header"], p[b"minf-hdlr"], DREF, stbl)
    mdia = box(b"mdia", p[b"mdhd"], p[b"hdlr"], minf)
    return box(b"trak", p[b"tkhd"], p[b"edts"], p[b"tapt"], mdia)


@dataclass
class Rewrite:
    head: bytes  # ftyp, moov and the mdat header
    ranges: list[tuple[int, int]]  # (offset, length) in the input, in order
    removed: list[str]
    streams: list[str] = field(default_factory=list)  # "video" or "audio", per kept track
    duration: float = 0.0  # seconds, from the movie header
    # Samples of Motion JPEG tracks, (offset, length) in the input, in order:
    # each is passed through intake.server.sanitize.jpeg_frames.scrub().
    frames: list[tuple[int, int]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.head) + sum(n for _, n in self.ranges)


class Source(Protocol):
    """The upload, read forward: the child's stdin (intake.server.sanitize
    .stream) or, in tests, a memory file."""

    pos: int

    def read(self, n: int) -> bytes: ...

    def skip(self, n: int) -> None: ...


class FileSource:
    """A seekable file read as if it were a stream."""

    def __init__(self, fd: int):
        self.fd, self.pos = fd, 0

    def read(self, n: int) -> bytes:
        data = os.pread(self.fd, n, self.pos)
        if len(data) != n:
            raise Unsupported("cut short")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        self.pos += n


@dataclass
class Index:
    ftyp: bytes
    mvhd: bytes
    tracks: list[Track]
    mdats: list[tuple[int, int]]  # payload bounds, in file order
    removed: list[str]


def _read_header(src: Source, size: int) -> Box:
    """The next top-level box's header, read from `src`; a box past the end
    is a recording cut short, and ffmpeg keeps what can still be read."""
    start = src.pos
    head = src.read(min(8, size - start))
    if len(head) == 8 and struct.unpack_from(">I", head)[0] == 1:
        head += src.read(min(8, size - src.pos))
    b = _header(head, 0, size - start)
    b.start = start
    return b


def _parse_index(ftyp: bytes, data: bytes, removed: list[str]) -> tuple[bytes, list[Track]]:
    """The movie header and the kept tracks, from the index's bytes."""
    moov = _header(data, 0, len(data))
    quicktime = ftyp[8:12] == b"qt  " or not ftyp
    mvhd, tracks, mvex = None, [], None
    for b in children(data, moov.body, moov.end):
        if b.kind == b"mvhd" and mvhd is None:
            mvhd = _zero_times(data, b)
        elif b.kind == b"trak":
            track = _track(data, b, quicktime, removed)
            if track is not None:
                tracks.append(track)
        elif b.kind == b"mvex" and mvex is None:
            mvex = data[b.start:b.end]
        else:
            removed.extend(_names(data, b, "moov"))
    if mvhd is None:
        raise Unsupported("no movie header")
    if not tracks:
        raise Refused("no audio or video stream")
    if mvex is not None:
        raise Fragmented(mvhd, tracks, mvex)
    return mvhd, tracks


def _within(tracks: list[Track], start: int, end: int) -> bool:
    """Whether every non-empty chunk lies between start and end."""
    for track in tracks:
        for offset, length in zip(track.offsets, track.sizes, strict=True):
            if length and not start <= offset <= offset + length <= end:
                return False
    return True


def scan(src: Source, size: int) -> tuple[Rewrite, bool]:
    """Reads the file forward once, keeping only the small boxes (ftyp,
    moov); `mdat` is skipped, never held. Returns the plan, and whether the
    kept chunks can be copied in this same pass: true when the index came
    before the one `mdat` that holds every kept chunk, and `src` then stands
    at that box's payload. Otherwise the caller reads the file again from
    the start (the index was at the end, where cameras put it)."""
    boxes: list[Box] = []
    removed: list[str] = []
    ftyp = b""
    found: tuple[bytes, list[Track]] | None = None
    while src.pos < size:
        if len(boxes) == MAX_TOP_LEVEL:
            raise Unsupported("too many boxes")
        if size - src.pos < 8:
            if any(src.read(size - src.pos)):
                raise Unsupported("box header cut short")
            break
        b = _read_header(src, size)
        boxes.append(b)
        body = b.size - b.header
        if b.kind == b"ftyp" and not ftyp:
            if b.size > MAX_FTYP:
                raise Unsupported("file type box too large")
            ftyp = _whole(src, b)
        elif b.kind == b"moov":
            if found is not None:
                raise Unsupported("not one index")
            if b.size > MAX_INDEX:
                raise Unsupported("index too large")
            try:
                found = _parse_index(ftyp, _whole(src, b), removed)
            except Fragmented as fragmented:
                fragmented.ftyp = ftyp
                fragmented.removed = unique(removed + _top_names(boxes))
                raise
        elif b.kind == b"mdat" and found is not None and _within(found[1], b.body, b.end):
            kinds = {x.kind for x in boxes}
            if FRAGMENTED & kinds:
                raise Unsupported("fragmented")
            return _plan(Index(ftyp, *found, [(b.body, b.end)], unique(
                removed + _top_names(boxes))), b.end - b.body), True
        else:
            src.skip(body)
    if FRAGMENTED & {b.kind for b in boxes}:
        raise Unsupported("fragmented")
    if found is None:
        raise Unsupported("not one index")
    mdats = [(b.body, b.end) for b in boxes if b.kind == b"mdat"]
    index = Index(ftyp, *found, mdats, unique(removed + _top_names(boxes)))
    return _plan(index, sum(end - start for start, end in mdats)), False


def _whole(src: Source, b: Box) -> bytes:
    """The box again, header and all, its body read from `src`."""
    header = (struct.pack(">I4s", b.size, b.kind) if b.header == 8 else
              struct.pack(">I4sQ", 1, b.kind, b.size))
    return header + src.read(b.size - b.header)


def _top_names(boxes: list[Box]) -> list[str]:
    names = [f"file:{field_name(b.kind)}" for b in boxes
             if b.kind not in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")]
    if [b.kind for b in boxes].count(b"ftyp") > 1:
        names.append("file:ftyp")
    return names + ["creation times", "handler names"]


def _kept(index: Index) -> tuple[list[tuple[int, int, int, int]], list[list[int]]]:
    """Every non-empty chunk of every kept track, in file order, as (offset,
    length, track, number); and the byte ranges they make, merged. Each chunk
    must sit inside one mdat and overlap no other."""
    chunks = sorted((offset, length, t, n) for t, track in enumerate(index.tracks)
                    for n, (offset, length) in enumerate(zip(track.offsets, track.sizes,
                                                             strict=True)) if length)
    if not chunks:
        raise Unsupported("no samples")
    mdats = sorted(index.mdats)
    ranges: list[list[int]] = []
    box_index, previous_end = 0, 0
    for offset, length, _, _ in chunks:
        while box_index < len(mdats) and mdats[box_index][1] <= offset:
            box_index += 1
        if (box_index == len(mdats) or offset < mdats[box_index][0]
                or offset + length > mdats[box_index][1]):
            raise Malformed("a chunk outside the media data")
        if offset < previous_end:
            raise Unsupported("chunks overlap")
        if ranges and ranges[-1][0] + ranges[-1][1] == offset:
            ranges[-1][1] += length
        else:
            ranges.append([offset, length])
        previous_end = offset + length
    return chunks, ranges


def _moov(index: Index, offsets: list[array], wide: bool) -> bytes:
    return box(b"moov", index.mvhd, *(_trak_bytes(t, offsets[i], wide)
                                      for i, t in enumerate(index.tracks)))


def _mdat_header(payload: int) -> bytes:
    if payload + 8 <= 0xFFFFFFFF:
        return struct.pack(">I4s", payload + 8, b"mdat")
    return struct.pack(">I4sQ", 1, b"mdat", payload + 16)


def rewrite(fd: int, size: int) -> Rewrite:
    """Plans the cleaned copy of the file in memory file `fd`."""
    return scan(FileSource(fd), size)[0]


def _plan(index: Index, media: int) -> Rewrite:
    """The cleaned file, laid out ftyp, moov, mdat: nothing is copied yet.
    `media`: the payload bytes of the mdat boxes the chunks were checked
    against."""
    chunks, ranges = _kept(index)
    removed = list(index.removed)
    total = sum(n for _, n in ranges)
    if total < media:
        removed.append("media data no kept track uses")
    head = _mdat_header(total)
    # The index's size depends on the width of the offsets, not their values.
    blank = [array("Q", bytes(8 * len(t.offsets))) for t in index.tracks]
    wide = False
    base = len(index.ftyp) + len(_moov(index, blank, wide)) + len(head)
    if base + total > NARROW_OFFSETS:
        wide = True
        base = len(index.ftyp) + len(_moov(index, blank, wide)) + len(head)
    # Each chunk moves by the shift of the range it belongs to; empty chunks
    # point at the start of the data.
    new_offsets = [array("Q", [base]) * len(t.offsets) for t in index.tracks]
    position, at = base, 0
    for offset, _, t, n in chunks:
        while offset >= ranges[at][0] + ranges[at][1]:
            position += ranges[at][1]
            at += 1
        new_offsets[t][n] = position + offset - ranges[at][0]
    streams = ["video" if t.parts[b"hdlr"][16:20] == b"vide" else "audio" for t in index.tracks]
    frames = sorted(frame for track in index.tracks for frame in track.frames)
    return Rewrite(index.ftyp + _moov(index, new_offsets, wide) + head,
                   [(a, n) for a, n in ranges], removed, streams, _duration(index.mvhd), frames)


def _duration(mvhd: bytes) -> float:
    """Seconds, from a movie header box (version 0 or 1); 0 when unknown."""
    try:
        if mvhd[8] == 1:
            scale, length = struct.unpack_from(">IQ", mvhd, 28)
        else:
            scale, length = struct.unpack_from(">II", mvhd, 20)
    except (IndexError, struct.error):
        return 0.0
    return length / scale if scale and length not in (0xFFFFFFFF, 2**64 - 1) else 0.0
