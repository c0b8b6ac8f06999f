"""Fragmented MP4 (what screen recorders, streaming apps and ffmpeg's
`-movflags frag_keyframe+empty_moov` write) rewritten box by box as it
streams: an index (moov) whose sample tables are empty, with movie extends
(mvex), then fragments, each a movie fragment box (moof: a track fragment,
traf, per track, whose runs, trun, list the samples) and the media data
(mdat) its runs point into.

The index is rebuilt as intake.server.sanitize.mp4 rebuilds it (video and
audio tracks only, times zeroed, user data and metadata dropped), with the
movie extends of the kept tracks (trex, and mehd). Each fragment is rebuilt
from its kept tracks' fragments: the header (tfhd), decode time (tfdt),
runs, and sample groups and subsample information, which count samples and
point at no bytes. Its media data keeps the bytes of the kept runs, in
order, and nothing else; every run's data offset is rewritten, counted from
the start of the new moof (default-base-is-moof). Segment and fragment
indexes (sidx, ssix, mfra), segment types (styp), event messages (emsg),
producer times (prft), and user data, metadata and every other box go.

The cleaned length must be known before the first byte goes out, so the
upload is read twice: once to check every fragment and add up the new
lengths, once to write them. Neither pass holds more than one moof.

What this module does not vouch for raises `Unsupported`, and ffmpeg is
tried where its memory files can hold the file: encryption (senc, saiz,
saio, pssh, seig groups, protected sample entries), Motion JPEG (whose
frames may carry a photo's metadata: ffmpeg's copy of such a file is
searched whole, and refused if any is left), a base data offset
other than the fragment's own start, a run outside the media data that
follows its moof but inside another, overlapping runs, samples in the index
itself, flags it does not read. A run pointing outside every mdat raises
`Malformed`: ffmpeg would copy whatever it points at (the index, the tags)
as if it were media.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from intake.server.sanitize import mp4
from intake.server.sanitize.base import field_name, unique
from intake.server.sanitize.mp4 import Box, Malformed, Unsupported, box, children

MAX_MOOF = 16 * 1024 * 1024  # a fragment's index this large is not a recorder's
MAX_TOP_LEVEL = 2_000_000  # a fragment a second for ten days, twice over
MAX_STRAYS = 10_000
MAX_NAMES = 1000
# tfhd: base data offset, sample description index, default duration, size, flags
TFHD_FIELDS = ((0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4), (0x20, 4))
TFHD_FLAGS = 0x01 | 0x02 | 0x08 | 0x10 | 0x20 | 0x10000 | 0x20000
BASE_IS_MOOF = 0x20000
# trun: data offset, first sample flags; per sample: duration, size, flags, offset
TRUN_FLAGS = 0x01 | 0x04 | 0x100 | 0x200 | 0x400 | 0x800
TRAF_KEEP = {b"tfdt", b"sbgp", b"sgpd", b"subs", b"sdtp"}
ENCRYPTED = {b"senc", b"saiz", b"saio", b"pssh"}
PROTECTED_ENTRIES = {b"encv", b"enca", b"enct", b"encs", b"encm", b"encf"}
UNNAMED = {b"free", b"skip", b"wide"}


@dataclass
class Movie:
    head: bytes  # ftyp and the new moov
    sizes: dict[int, int]  # kept track ID: trex's default sample size
    removed: list[str]
    streams: list[str]
    duration: float  # as the index states it (0: it does not)
    durations: dict[int, int] = field(default_factory=dict)  # kept track ID: trex's default
    scales: dict[int, int] = field(default_factory=dict)  # kept track ID: units a second
    # Kept track ID: [first decode time, end of its last sample], in its units,
    # from the fragments' own timing (tfdt, and the runs' sample durations).
    times: dict[int, list[int]] = field(default_factory=dict)
    first: int = 0  # where the fragments start, in the upload
    length: int = 0  # of every fragment rewritten, in bytes

    @property
    def span(self) -> float:
        """Seconds from the first kept sample to the end of the last, by the
        fragments' own timing: what the check of the whole copy measures
        again, since the index may state no duration."""
        if not self.times:
            return 0.0
        return (max(end / self.scales[t] for t, (_, end) in self.times.items())
                - min(first / self.scales[t] for t, (first, _) in self.times.items()))


def _track_id(tkhd: bytes) -> int:
    offset = 28 if tkhd[8] == 1 else 20
    if len(tkhd) < offset + 4:
        raise Unsupported("track header too short")
    return struct.unpack_from(">I", tkhd, offset)[0]


def _timescale(mdhd: bytes) -> int:
    offset = 28 if len(mdhd) > 8 and mdhd[8] == 1 else 20
    if len(mdhd) < offset + 4:
        raise Unsupported("media header too short")
    (scale,) = struct.unpack_from(">I", mdhd, offset)
    if not scale:
        raise Unsupported("a track without a time scale")
    return scale


def start(found: mp4.Fragmented) -> Movie:
    """The new index, from what mp4.scan read up to the end of the old one."""
    if not found.ftyp:
        raise Unsupported("no file type")
    removed = list(found.removed)
    ids = []
    for track in found.tracks:
        if any(track.sizes):
            raise Unsupported("samples in the index of a fragmented file")
        stsd = track.parts[b"stsd"]
        if any(entry.kind in PROTECTED_ENTRIES for entry in children(stsd, 16, len(stsd))):
            raise Unsupported("encrypted")
        if track.motion_jpeg:  # its frames may carry EXIF: ffmpeg's whole copy is checked
            raise Unsupported("Motion JPEG")
        ids.append(_track_id(track.parts[b"tkhd"]))
    if len(set(ids)) != len(ids):
        raise Unsupported("track IDs repeat")
    mvex = found.mvex
    header = mp4._header(mvex, 0, len(mvex))
    kept, trex, durations, mehd = [], {}, {}, b""
    for b in children(mvex, header.body, header.end):
        if b.kind == b"trex" and b.size - b.header >= 24:
            track_id, duration, size = struct.unpack_from(">I4xII", mvex, b.body + 4)
            if track_id in ids and track_id not in trex:
                trex[track_id], durations[track_id] = size, duration
                kept.append(mvex[b.start:b.end])
        elif b.kind == b"mehd" and not mehd:
            mehd = mvex[b.start:b.end]
        elif b.kind != b"trex":
            removed.append(f"mvex:{field_name(b.kind)}")
    if set(trex) != set(ids):
        raise Unsupported("a track without its defaults (trex)")
    empty = array("Q")
    moov = box(b"moov", found.mvhd, *(mp4._trak_bytes(t, empty, False) for t in found.tracks),
               box(b"mvex", mehd, *kept))
    streams = ["video" if t.parts[b"hdlr"][16:20] == b"vide" else "audio"
               for t in found.tracks]
    return Movie(found.ftyp + moov, trex, removed, streams, mp4._duration(found.mvhd),
                 durations, {i: _timescale(t.parts[b"mdhd"])
                             for i, t in zip(ids, found.tracks, strict=True)})


@dataclass
class Run:
    start: int  # in the upload
    length: int
    at: int  # where its data offset goes, in the new traf
    new: int = 0  # where its data goes, in the new mdat's payload


def _fields(data: bytes, b: Box, known: int) -> tuple[int, int]:
    if b.size - b.header < 8:
        raise Unsupported("fragment box too short")
    flags = struct.unpack_from(">I", data, b.body)[0] & 0xFFFFFF
    if flags & ~known:
        raise Unsupported("fragment flags this rewrite does not read")
    return flags, b.body + 4


def _tfhd(data: bytes, b: Box, moof_start: int
          ) -> tuple[int, int | None, int | None, int | None, bytes]:
    """The track ID, the base data offset if given, the default sample
    size and duration if given, and the header again, counting from the
    moof."""
    flags, pos = _fields(data, b, TFHD_FLAGS)
    (track_id,) = struct.unpack_from(">I", data, pos)
    pos += 4
    values = {}
    for flag, width in TFHD_FIELDS:
        if flags & flag:
            if pos + width > b.end:
                raise Unsupported("fragment header too short")
            values[flag] = int.from_bytes(data[pos:pos + width], "big")
            pos += width
    if pos != b.end:
        raise Unsupported("fragment header of unexpected length")
    base = values.get(0x01)
    if base is not None and base != moof_start:
        raise Unsupported("base data offset other than the fragment's")
    new_flags = (flags & ~0x01) | BASE_IS_MOOF
    rest = b"".join(values[flag].to_bytes(width, "big")
                    for flag, width in TFHD_FIELDS[1:] if flag in values)
    new = box(b"tfhd", struct.pack(">II", new_flags, track_id), rest)
    return track_id, base if base is not None else (moof_start if flags & BASE_IS_MOOF
                                                    else None), values.get(0x10), \
        values.get(0x08), new


def _trun(data: bytes, b: Box, default_size: int | None, default_duration: int
          ) -> tuple[int | None, int, int, bytes]:
    """The run's data offset if given, its length in bytes, how long its
    samples last (in the track's units), and the run again with a data
    offset (zero, filled in later) always present."""
    flags, pos = _fields(data, b, TRUN_FLAGS)
    version = data[b.body]
    (count,) = struct.unpack_from(">I", data, pos)
    pos += 4
    offset = None
    if flags & 0x01:
        if pos + 4 > b.end:
            raise Unsupported("track run too short")
        (offset,) = struct.unpack_from(">i", data, pos)
        pos += 4
    first = b""
    if flags & 0x04:
        first = data[pos:pos + 4]
        pos += 4
    fields = [flag for flag in (0x100, 0x200, 0x400, 0x800) if flags & flag]
    if b.end - pos != 4 * len(fields) * count:
        raise Unsupported("track run of unexpected length")
    samples = data[pos:b.end]
    values = array("I", samples)
    mp4._swapped(values)
    if flags & 0x200:
        length = sum(values[fields.index(0x200)::len(fields)])
    else:
        if default_size is None:
            raise Unsupported("sample size unknown")
        length = default_size * count
    ticks = (sum(values[fields.index(0x100)::len(fields)]) if flags & 0x100
             else default_duration * count)
    new = box(b"trun", struct.pack(">BBHI", version, (flags >> 16) & 0xFF,
                                   (flags | 0x01) & 0xFFFF, count),
              bytes(4), first, samples)
    return offset, length, ticks, new


@dataclass
class Fragment:
    moof: bytes  # rebuilt, the runs' data offsets still zero
    runs: list[Run]  # of the kept tracks, `at` counted from the start of `moof`


def _fragment(movie: Movie, data: bytes, moof_start: int, names: Names) -> Fragment:
    """A moof's kept track fragments, rebuilt, and the runs whose bytes the
    new mdat keeps."""
    moof = mp4._header(data, 0, len(data))
    trafs: list[tuple[bytes, list[Run]]] = []
    previous_end = None  # of the last traf's data: the base of the next one
    mfhd = b""
    for b in children(data, moof.body, moof.end):
        if b.kind == b"mfhd" and not mfhd:
            mfhd = data[b.start:b.end]
        elif b.kind == b"traf":
            traf, runs, previous_end = _traf(movie, data, b, moof_start, previous_end, names)
            if traf:
                trafs.append((traf, runs))
        elif b.kind in ENCRYPTED:
            raise Unsupported("encrypted")
        else:
            names.extend(mp4._names(data, b, "moof"))
    if not mfhd:
        raise Unsupported("fragment without a header")
    if not trafs:
        return Fragment(b"", [])
    position, kept = 8 + len(mfhd), []
    for traf, runs in trafs:
        for run in runs:
            run.at += position
            kept.append(run)
        position += len(traf)
    return Fragment(box(b"moof", mfhd, *(traf for traf, _ in trafs)), kept)


def _traf(movie: Movie, data: bytes, traf: Box, moof_start: int, previous_end: int | None,
          names: Names) -> tuple[bytes, list[Run], int | None]:
    inside = children(data, traf.body, traf.end)
    if not inside or inside[0].kind != b"tfhd":
        raise Unsupported("track fragment without a header first")
    track_id, base, default_size, default_duration, tfhd = _tfhd(data, inside[0], moof_start)
    if base is None:
        base = moof_start if previous_end is None else previous_end
    kept = track_id in movie.sizes
    if default_size is None:
        default_size = movie.sizes.get(track_id)
    if default_duration is None:
        default_duration = movie.durations.get(track_id, 0)
    parts, runs, next_start = [tfhd], [], base
    decoded, ticks = None, 0  # the fragment's decode time (tfdt), its samples' duration
    for b in inside[1:]:
        if b.kind == b"trun":
            offset, length, run_ticks, trun = _trun(data, b, default_size, default_duration)
            ticks += run_ticks
            start = base + offset if offset is not None else next_start
            if start < 0:
                raise Malformed("a run before the start of the file")
            next_start = start + length
            at = sum(map(len, parts)) + 8 + 16  # the data offset, after size, kind, flags, count
            runs.append(Run(start, length, at))
            parts.append(trun)
        elif b.kind in ENCRYPTED:
            raise Unsupported("encrypted")
        elif b.kind in (b"sgpd", b"sbgp"):
            if data[b.body + 4:b.body + 8] == b"seig":
                raise Unsupported("encrypted")
            parts.append(data[b.start:b.end])
        elif b.kind in TRAF_KEEP:
            if b.kind == b"tfdt" and decoded is None:
                decoded = _decode_time(data, b)
            parts.append(data[b.start:b.end])
        elif b.kind == b"tfhd":
            raise Unsupported("two track fragment headers")
        else:
            names.extend(mp4._names(data, b, "traf"))
    if not kept:
        names.append("traf of a dropped track")
        return b"", [], next_start
    times = movie.times.get(track_id)
    begin = decoded if decoded is not None else (times[1] if times else 0)
    if times is None:
        movie.times[track_id] = [begin, begin + ticks]
    else:
        times[0], times[1] = min(times[0], begin), max(times[1], begin + ticks)
    return box(b"traf", *parts), runs, next_start


def _decode_time(data: bytes, b: Box) -> int:
    """A track fragment's base media decode time (tfdt, version 0 or 1)."""
    wide = data[b.body] == 1
    if b.end - b.body < (12 if wide else 8):
        raise Unsupported("decode time too short")
    return struct.unpack_from(">Q" if wide else ">I", data, b.body + 4)[0]


Piece = bytes | tuple[int, int]  # bytes to write, or (offset, length) of the upload to copy


def _layout(fragment: Fragment, body: int, end: int, strays: list[tuple[int, int]]
            ) -> list[Piece]:
    """The new moof with its data offsets, the new mdat's header, and the
    upload's ranges it keeps; nothing if a run lies outside [body, end),
    the payload of the mdat after the moof (then noted in `strays`)."""
    runs = sorted((run for run in fragment.runs if run.length), key=lambda r: r.start)
    outside = [(r.start, r.length) for r in runs if not body <= r.start <= r.start + r.length
               <= end]
    if outside:
        strays.extend(outside)
        return []
    ranges: list[list[int]] = []
    payload = 0
    for run in runs:
        if ranges and run.start < ranges[-1][0] + ranges[-1][1]:
            raise Unsupported("runs overlap")
        run.new = payload
        if ranges and ranges[-1][0] + ranges[-1][1] == run.start:
            ranges[-1][1] += run.length
        else:
            ranges.append([run.start, run.length])
        payload += run.length
    head = mp4._mdat_header(payload)
    moof = bytearray(fragment.moof)
    for run in fragment.runs:
        offset = len(moof) + len(head) + run.new
        if offset > 0x7FFFFFFF:
            raise Unsupported("fragment too large")
        struct.pack_into(">i", moof, run.at, offset)
    return [bytes(moof) + head, *((a, n) for a, n in ranges)]


def _walk(src: mp4.Source, size: int, movie: Movie, names: Names,
          mdats: array | None = None) -> Iterator[Piece]:
    """The cleaned fragments, in pieces, from `src` standing at the first
    box after the index. The caller copies each range (offset, length) from
    `src` before asking for the next piece. `mdats` (payload bounds) and the
    runs outside their own mdat are collected in the first pass only, which
    then refuses them."""
    strays: list[tuple[int, int]] = []
    pending: tuple[int, bytes] | None = None
    count = 0
    while src.pos < size:
        count += 1
        if count > MAX_TOP_LEVEL:
            raise Unsupported("too many boxes")
        if size - src.pos < 8:
            if any(src.read(size - src.pos)):
                raise Unsupported("box header cut short")
            break
        b = mp4._read_header(src, size)
        if pending is not None and b.kind != b"mdat":
            raise Unsupported("a fragment not followed by its media data")
        if b.kind == b"moof":
            if b.size > MAX_MOOF:
                raise Unsupported("fragment index too large")
            pending = (b.start, mp4._whole(src, b))
            continue
        if b.kind == b"mdat":
            if mdats is not None:
                mdats.extend((b.body, b.end))
            if pending is None:
                names.append("media data no kept track uses")
            else:
                fragment = _fragment(movie, pending[1], pending[0], names)
                pieces = _layout(fragment, b.body, b.end, strays) if fragment.moof else []
                pending = None
                if sum(piece[1] for piece in pieces[1:]) < b.end - b.body:  # type: ignore[index]
                    names.append("media data no kept track uses")
                yield from pieces
                if len(strays) > MAX_STRAYS:
                    raise Malformed("samples outside the media data")
        elif b.kind in (b"moov", b"ftyp"):
            raise Unsupported("not one index")
        elif b.kind not in UNNAMED:
            names.append(f"file:{field_name(b.kind)}")
        src.skip(b.end - src.pos)
    if pending is not None:
        raise Unsupported("a fragment without media data")
    if strays:
        _refuse(strays, mdats)


def _refuse(strays: list[tuple[int, int]], mdats: array | None) -> None:
    """Runs outside their own fragment's media data: inside another mdat,
    a layout this rewrite does not follow; anywhere else (the index, the
    tags), hostile."""
    bounds = sorted(zip(mdats[::2], mdats[1::2], strict=True)) if mdats is not None else []
    for start, length in strays:
        if not any(a <= start and start + length <= e for a, e in bounds):
            raise Malformed("samples outside the media data")
    raise Unsupported("samples in another fragment's media data")


def scan(src: mp4.Source, size: int, found: mp4.Fragmented) -> Movie:
    """The first pass, from just after the index: every fragment checked,
    the cleaned length added up, nothing kept but the names of what goes."""
    movie = start(found)
    movie.first = src.pos
    names = Names()
    mdats = array("Q")
    fragments = 0
    for piece in _walk(src, size, movie, names, mdats):
        if isinstance(piece, bytes):
            movie.length += len(piece)
            fragments += 1
        else:
            movie.length += piece[1]
    if not fragments:
        raise Unsupported("no samples")
    movie.removed = unique(movie.removed + list(names))
    return movie


def pieces(src: mp4.Source, size: int, movie: Movie) -> Iterator[Piece]:
    """The second pass: `src` read again from the start, the fragments
    rewritten as the first pass checked them."""
    src.skip(movie.first - src.pos)
    return _walk(src, size, movie, Names())


class Names(dict):
    """The names of what goes, each once, at most MAX_NAMES of them: the
    same few boxes, fragment after fragment."""

    def extend(self, names: list[str]) -> None:
        for name in names:
            self.append(name)

    def append(self, name: str) -> None:
        if len(self) < MAX_NAMES:
            self[name] = None
