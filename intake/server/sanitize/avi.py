"""AVI edited in place as it streams through: every byte keeps its
offset, so the indexes (idx1, whose offsets count from the movi list, and
OpenDML's, whose offsets are the file's own) stay true, the copy is as long
as the upload, and the samples go from input to output in pieces, never
held whole.

What goes becomes a `JUNK` chunk of the same size, its contents zeroed: the
INFO list (title, artist, comment, ISFT's encoder...), `IDIT` (the date a
camera took it), Nikon's `ncdt` list, each stream's `strd` (where cameras
put EXIF and maker data) and `strn` (its name), and every chunk or list this
module does not know; the contents of `JUNK` chunks are zeroed too, and so
are pad bytes and the bytes past the RIFF file. What stays as it is: `avih`,
each stream's `strh`, `strf` and `vprp` (what the frames are and how they
are shown; avih's reserved bytes are zeroed), the frames themselves, and
`idx1`. A frame that is a JPEG (MJPEG: cameras put EXIF in every frame; in
any stream, since one filed under the audio stream would carry its EXIF all
the same) keeps its picture: its APP1-APP13 and APP15 segments and comments
become comments of zeros of the same size (APP0, JFIF or AVI1's field
order, and APP14, Adobe's colour transform, say how to decode it), and
whatever follows its end, but a second field, is zeroed.

OpenDML (AVI 2.0, which cameras and ffmpeg write past 1 GiB) is edited the
same way. Its parts are read from their published layout, and what its
readers do not read is zeroed, as a hostile file could hide data there:
`dmlh` in the header's `odml` list keeps its total frame count; each
stream's super index (`indx`) keeps its header and the entries in use, each
of which must point inside the file at a standard index of that stream (seen
as the walk gets there); each standard index (`ix##`, in a movi list) keeps
its header and the entries in use, which must fit the chunk, name a stream
that exists and point inside the file; their reserved fields and the room
after the entries are zeroed. Each RIFF `AVIX` list after the first is
walked as the first: its movi list's frames scrubbed, anything else in it
made JUNK.

Only files whose every stream is audio or video are taken: a text or data
stream would have to be dropped and the streams after it renumbered in
every chunk id and index entry; such files are rare, and ffmpeg cleans them.
`rec ` lists, OpenDML indexes this module does not read (field indexes, a
standard index in the header, an index with more entries than room or
pointing outside the file), RIFX, sizes that disagree, and a header this
module cannot read raise `Unsupported` before anything is sent, and the
caller hands the file to ffmpeg, as for MP4. What is only found in the
frames or after them (a chunk that overruns its list, a standard index it
does not read, a super index entry that points at no standard index of its
stream, an index entry for no stream, a second RIFF that is not `AVIX`)
raises the same, but past the first frames held for the check the start of
the copy has gone out: the copy is then cut short, and not kept.

ffmpeg's copy of such a file would keep what this module removes from the
frames, and a camera's `strd`, which ffmpeg takes for the codec
configuration of a stream that has none and writes into its copy's
`strf`. So, in ffmpeg's memory files (intake.server.sanitize.media):
`hide_stream_data` makes every `strd` id ahead of the frames `JUNK`, its
contents zeros, before ffmpeg reads the upload; `edit` then edits ffmpeg's
copy (a layout this module reads) where it is, piece by piece, as it would
have edited the upload.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from intake.server.sanitize import jpeg_frames
from intake.server.sanitize.base import field_name
from intake.server.sanitize.iff import FileSource, Source, Unsupported
from intake.server.sanitize.stream import write_all

__all__ = ["FileSource", "Unsupported", "Walk", "rewrite"]

MAX_HEADER = 1024 * 1024  # the hdrl list, read whole: a real one is a few KiB
MAX_BEFORE_MOVI = 4 * 1024 * 1024  # held for the check, with the start of the frames
MAX_STREAMS = 100  # two digits in every chunk id
MAX_NAMES = 1000  # of what was removed: a hostile file can hold millions of chunks
PADDING = {b"JUNK", b"junk", b"PAD ", b"FLLR", b"free"}
KINDS = {b"vids": "video", b"auds": "audio"}
KEPT_IN_STREAM = {b"strh", b"strf", b"vprp"}
AVIH_FIELDS = 40  # then 16 reserved bytes, zero
STRH_FIELDS = 64  # with rcFrame as four longs, as some writers have it
SUPER_HEADER = 24  # indx: wLongsPerEntry... dwChunkId, then 12 reserved bytes
STANDARD_HEADER = 24  # ix##: ... qwBaseOffset, then 4 reserved bytes
ZEROS = bytes(1024 * 1024)

Piece = tuple[str, "bytes | int"]  # ("bytes", b), ("copy", n) or ("zero", n)


@dataclass
class Walk:
    """The edited copy of the AVI file read from `src`, produced in order:
    `take()` the start (the header and the first frames, for the check),
    then `rest()` to a descriptor."""

    src: Source
    size: int
    removed: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)  # "video" or "audio", in order
    duration: float = 0.0
    movi_at: int | None = None  # where the frames start
    written: int = 0

    def __post_init__(self) -> None:
        # OpenDML: where the super indexes say each standard index is, and
        # for which stream; the offsets, in order, as the walk meets them.
        self._wanted: dict[int, int] = {}
        self._targets: list[int] = []
        self._target = 0
        self._pieces = self._walk()
        self._pending: Piece | None = None

    def _next(self) -> Piece | None:
        if self._pending is not None:
            piece, self._pending = self._pending, None
            return piece
        return next(self._pieces, None)

    def take(self, frames: int) -> bytes:
        """The copy up to `frames` bytes past the start of the frames."""
        out = bytearray()
        while (piece := self._next()) is not None:
            kind, value = piece
            if kind == "bytes":
                out += value  # type: ignore[operator]
                self.written += len(value)  # type: ignore[arg-type]
            else:
                n = value  # type: ignore[assignment]
                room = n if self.movi_at is None else self.movi_at + frames - self.written
                now = min(n, room)  # type: ignore[type-var]
                if kind == "copy":
                    out += self.src.read(now)
                else:
                    self.src.skip(now)
                    out += bytes(now)
                self.written += now
                if now < n:  # type: ignore[operator]
                    self._pending = (kind, n - now)  # type: ignore[operator]
            if self.movi_at is not None and self.written >= self.movi_at + frames:
                break
        return bytes(out)

    def in_place(self, fd: int) -> None:
        """The whole edit written over the file it reads (`fd`, which `src`
        reads too): each piece goes back where it was read from, once read,
        so the file is never held twice."""
        while (piece := self._next()) is not None:
            kind, value = piece
            if kind == "bytes":
                _pwrite_all(fd, value, self.written)  # type: ignore[arg-type]
                self.written += len(value)  # type: ignore[arg-type]
                continue
            n: int = value  # type: ignore[assignment]
            self.src.skip(n)  # a "copy" stays as it is
            if kind == "zero":
                _zero(fd, self.written, self.written + n)
            self.written += n
        if self.written != self.size:
            raise Unsupported("the copy is not as long as the file")

    def rest(self, out: int) -> None:
        """The remainder, to `out`; raises if the file turns out to be one
        this module does not vouch for, or ends early."""
        while (piece := self._next()) is not None:
            kind, value = piece
            if kind == "bytes":
                write_all(out, value)  # type: ignore[arg-type]
                self.written += len(value)  # type: ignore[arg-type]
            elif kind == "copy":
                self.src.copy(value, out)  # type: ignore[attr-defined]
                self.written += value  # type: ignore[operator]
            else:
                left = value
                while left:  # type: ignore[operator]
                    now = min(left, len(ZEROS))  # type: ignore[type-var]
                    self.src.skip(now)
                    write_all(out, ZEROS[:now])
                    left -= now  # type: ignore[operator]
                self.written += value  # type: ignore[operator]
        if self.written != self.size:
            raise Unsupported("the copy is not as long as the upload")

    # -- the walk ---------------------------------------------------------------

    def _walk(self) -> Iterator[Piece]:
        src, size = self.src, self.size
        if size < 12:
            raise Unsupported("too short")
        head = src.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
            raise Unsupported("not an AVI file")
        end = 8 + struct.unpack_from("<I", head, 4)[0]
        if end > size:
            raise Unsupported("sizes disagree, or cut short")
        yield "bytes", head
        yield from self._riff(12, end, first=True)
        pos, pad = end, end & 1
        # OpenDML: the frames past the first gigabyte, in RIFF AVIX lists
        # after the first, each with its own movi list.
        while pos < size:
            if pad:
                yield "zero", 1
                pos += 1
                pad = 0
                continue
            head = src.peek(12)
            if head[:4] != b"RIFF":
                self.removed.append("bytes after the file")
                yield "zero", size - pos
                break
            if len(head) < 12 or head[8:12] != b"AVIX":
                raise Unsupported("a second RIFF that is not OpenDML's AVIX")
            n = struct.unpack_from("<I", head, 4)[0]
            if pos + 8 + n > size:
                raise Unsupported("sizes disagree, or cut short")
            yield "bytes", src.read(12)
            yield from self._riff(pos + 12, pos + 8 + n, first=False)
            pos, pad = pos + 8 + n, n & 1
        if self._target < len(self._targets):
            raise Unsupported("a super index entry points at no standard index")

    def _riff(self, pos: int, end: int, first: bool) -> Iterator[Piece]:
        """The chunks of a RIFF list from `pos`: the first (AVI ) holds the
        header, the frames and idx1; an AVIX holds more frames."""
        src, movi = self.src, False
        while end - pos >= 8:
            kind, n = struct.unpack("<4sI", src.read(8))
            stop = pos + 8 + n
            if stop > end:
                raise Unsupported("a chunk runs past the end of the file")
            form = src.peek(4) if kind == b"LIST" and n >= 4 else b""
            if self.movi_at is None and form != b"movi" and stop > MAX_BEFORE_MOVI:
                raise Unsupported("too much before the frames")
            wanted = self._wanted_at(pos)
            if first and pos == 12:
                if form != b"hdrl" or n > MAX_HEADER:
                    raise Unsupported("no header list first")
                yield "bytes", struct.pack("<4sI", kind, n) + self._header(src.read(n))
                self._targets = sorted(self._wanted)
            elif kind[:2] == b"ix":
                yield from self._standard_index(kind, n, wanted)
            elif wanted is not None:
                raise Unsupported("a super index entry points at no standard index")
            elif form == b"movi" and not movi:
                src.skip(4)
                yield "bytes", struct.pack("<4sI", kind, n) + form
                if first:
                    self.movi_at = pos + 12
                movi = True
                yield from self._frames(pos + 12, stop)
            elif kind == b"idx1" and first and movi:
                yield "bytes", struct.pack("<4sI", kind, n)
                yield from self._index(n)
            else:
                if form == b"movi":
                    raise Unsupported("two movi lists")
                yield from self._dropped(kind, n, form)
            pos = stop
            if n & 1 and pos < end:
                yield "zero", 1
                pos += 1
        if first and self.movi_at is None:
            raise Unsupported("no frames")
        if pos < end:
            yield "zero", end - pos

    def _wanted_at(self, pos: int) -> int | None:
        """The stream whose standard index (ix##) a super index (indx) says
        is at `pos`, if any; raises if one it points at was walked past, not
        at the start of a chunk of the list walked (inside a frame, or a
        list dropped)."""
        targets, at = self._targets, self._target
        if at < len(targets) and targets[at] < pos:
            raise Unsupported("a super index entry points at no standard index")
        if at < len(targets) and targets[at] == pos:
            self._target += 1
            return self._wanted[pos]
        return None

    def _standard_index(self, kind: bytes, n: int, wanted: int | None) -> Iterator[Piece]:
        """An OpenDML standard index (ix##), offsets from a base in the file
        that stay true since nothing moves: its header and the entries in
        use kept, each pointing inside the file (the key-frame flag aside),
        its reserved field and whatever follows the entries zeroed."""
        number = int(kind[2:]) if kind[2:].isdigit() else None
        if n < STANDARD_HEADER or number is None or number >= len(self.streams):
            raise Unsupported("a standard index for no stream")
        head = self.src.read(STANDARD_HEADER)
        longs, sub, index_type, count, chunk_id, base = struct.unpack_from("<HBBI4sQ", head)
        if longs != 2 or sub != 0 or index_type != 1 or _stream_number(chunk_id) != number \
                or (wanted is not None and wanted != number):
            raise Unsupported("a standard index this module does not read")
        if STANDARD_HEADER + 8 * count > n or base >= self.size:
            raise Unsupported("a standard index that does not fit")
        yield "bytes", struct.pack("<4sI", kind, n) + head[:20] + bytes(4)
        left = 8 * count
        while left:
            block = self.src.read(min(left, 8 * 8192))
            for offset, length in struct.iter_unpack("<II", block):
                if base + offset + (length & 0x7FFFFFFF) > self.size:
                    raise Unsupported("a standard index entry points past the file")
            yield "bytes", block
            left -= len(block)
        if n > STANDARD_HEADER + 8 * count:
            yield "zero", n - STANDARD_HEADER - 8 * count

    def _dropped(self, kind: bytes, n: int, form: bytes) -> Iterator[Piece]:
        """A chunk that goes: a JUNK chunk of zeros of the same size."""
        if kind not in PADDING and len(self.removed) < MAX_NAMES:
            self.removed += [name for name in self._names(kind, n, form)
                             if name not in self.removed]
        yield "bytes", struct.pack("<4sI", b"JUNK", n)
        yield "zero", n

    def _names(self, kind: bytes, n: int, form: bytes) -> list[str]:
        """The dropped chunk's name, and for a small LIST the ids inside it
        (INFO's IART, ICMT, ISFT...), never their values."""
        if kind != b"LIST":
            return [f"chunk:{field_name(kind)}"]
        here = f"chunk:LIST:{field_name(form)}"
        body = self.src.peek(min(n, 64 * 1024))
        names, pos = [], 4
        while pos + 8 <= len(body) and len(names) < 100:
            item, length = struct.unpack_from("<4sI", body, pos)
            names.append(f"{here}:{field_name(item)}")
            pos += 8 + length + (length & 1)
        return names or [here]

    def _header(self, body: bytes) -> bytes:
        """The hdrl list's body, built on zeros: avih's fields and each
        stream's strh, strf and vprp copied in; every other chunk a JUNK
        header over zeros; reserved fields, pad bytes and stray bytes stay
        zero."""
        out = bytearray(len(body))
        out[:4] = body[:4]
        declared, odml = None, False
        for kind, at, n in _chunks(body, 4):
            if kind == b"avih":
                if n < 56 or declared is not None:
                    raise Unsupported("main header wrong")
                declared = struct.unpack_from("<I", body, at + 24)[0]
                out[at - 8:at + AVIH_FIELDS] = body[at - 8:at + AVIH_FIELDS]
            elif kind == b"LIST" and body[at:at + 4] == b"strl":
                out[at - 8:at + 4] = body[at - 8:at + 4]
                self._stream(body, at, n, out)
            elif kind == b"LIST" and body[at:at + 4] == b"odml":
                if odml:
                    raise Unsupported("two odml lists")
                odml = True
                out[at - 8:at + 4] = body[at - 8:at + 4]
                self._odml(body, at, n, out)
            else:
                _drop(out, kind, body[at:at + 4], at, n, self.removed)
        if declared is None or declared != len(self.streams) or not self.streams:
            raise Unsupported("the stream count disagrees")
        return bytes(out)

    def _stream(self, body: bytes, at: int, n: int, out: bytearray) -> None:
        if len(self.streams) >= MAX_STREAMS:
            raise Unsupported("too many streams")
        number = len(self.streams)  # this stream's, in its chunk ids
        found: set[bytes] = set()
        for kind, inner, length in _chunks(body[:at + n], at + 4):
            if kind in KEPT_IN_STREAM:
                if kind in found:
                    raise Unsupported("two stream headers")
                found.add(kind)
                kept = min(length, STRH_FIELDS) if kind == b"strh" else length
                out[inner - 8:inner + kept] = body[inner - 8:inner + kept]
            if kind == b"strh":
                if length < 48 or body[inner:inner + 4] not in KINDS:
                    raise Unsupported("a stream neither audio nor video")
                self.streams.append(KINDS[body[inner:inner + 4]])
                scale, rate, start, frames = struct.unpack_from("<IIII", body, inner + 20)
                if rate:
                    self.duration = max(self.duration, (start + frames) * scale / rate)
            elif kind == b"indx":
                if kind in found:
                    raise Unsupported("two super indexes")
                found.add(kind)
                self._super_index(body, inner, length, out, number)
            elif kind[:2] == b"ix":
                raise Unsupported("a standard index in the header")
            elif kind not in KEPT_IN_STREAM:
                _drop(out, kind, body[inner:inner + 4], inner, length, self.removed)
        if not {b"strh", b"strf"} <= found:
            raise Unsupported("a stream without its headers")

    def _odml(self, body: bytes, at: int, n: int, out: bytearray) -> None:
        """OpenDML's extended header: dmlh's total frame count kept, the
        rest of it (reserved) zeros, any other chunk a JUNK header."""
        found = False
        for kind, inner, length in _chunks(body[:at + n], at + 4):
            if kind == b"dmlh":
                if found or length < 4:
                    raise Unsupported("OpenDML's header wrong")
                found = True
                out[inner - 8:inner + 4] = body[inner - 8:inner + 4]
            else:
                _drop(out, kind, body[inner:inner + 4], inner, length, self.removed)

    def _super_index(self, body: bytes, at: int, n: int, out: bytearray, number: int) -> None:
        """A stream's OpenDML super index (indx): its header and the entries
        in use kept, each pointing inside the file (that it points at a
        standard index of this stream is seen as the walk gets there), its
        reserved fields and the unused entries zeros. Field indexes and a
        standard index in the header are not read."""
        if n < SUPER_HEADER:
            raise Unsupported("a super index cut short")
        longs, sub, index_type, count, chunk_id = struct.unpack_from("<HBBI4s", body, at)
        if longs != 4 or sub != 0 or index_type != 0 or _stream_number(chunk_id) != number:
            raise Unsupported("a super index this module does not read")
        if SUPER_HEADER + 16 * count > n:
            raise Unsupported("a super index with more entries than room")
        out[at - 8:at + 12] = body[at - 8:at + 12]
        for entry in range(at + SUPER_HEADER, at + SUPER_HEADER + 16 * count, 16):
            offset, length, _ = struct.unpack_from("<QII", body, entry)
            if offset + max(length, 8 + STANDARD_HEADER) > self.size:
                raise Unsupported("a super index entry points past the file")
            if self._wanted.setdefault(offset, number) != number:
                raise Unsupported("two streams' super indexes point at one index")
            out[entry:entry + 16] = body[entry:entry + 16]

    def _frames(self, pos: int, end: int) -> Iterator[Piece]:
        """The movi list's chunks: each stream's frames copied (a JPEG
        frame's metadata segments zeroed), anything else zeroed JUNK."""
        src = self.src
        while end - pos >= 8:
            kind, n = struct.unpack("<4sI", src.read(8))
            stop = pos + 8 + n
            if stop > end:
                raise Unsupported("a chunk runs past the frames")
            number = _stream_number(kind)
            wanted = self._wanted_at(pos)
            if kind[:2] == b"ix":
                yield from self._standard_index(kind, n, wanted)
            elif wanted is not None:
                raise Unsupported("a super index entry points at no standard index")
            elif number is not None and number < len(self.streams):
                yield "bytes", struct.pack("<4sI", kind, n)
                # Any stream's: a JPEG filed under the audio stream plays as
                # noise, and would carry its EXIF all the same.
                if n <= jpeg_frames.MAX_FRAME and jpeg_frames.is_jpeg(src.peek(3)):
                    frame = bytearray(src.read(n))
                    if jpeg_frames.scrub(frame) and jpeg_frames.NOTE not in self.removed:
                        self.removed.append(jpeg_frames.NOTE)
                    yield "bytes", bytes(frame)
                else:
                    yield "copy", n
            elif kind == b"LIST" and n >= 4 and src.peek(4) == b"rec ":
                raise Unsupported("rec lists")
            elif kind == b"indx":
                raise Unsupported("a super index among the frames")
            else:
                yield from self._dropped(kind, n, src.peek(4) if kind == b"LIST" else b"")
            pos = stop
            if n & 1 and pos < end:
                yield "zero", 1
                pos += 1
        if pos < end:
            yield "zero", end - pos

    def _index(self, n: int) -> Iterator[Piece]:
        """idx1 as it is, once each entry is seen to name a stream's chunk."""
        left = n - n % 16
        while left:
            block = self.src.read(min(left, 4096 * 16))
            for at in range(0, len(block), 16):
                number = _stream_number(block[at:at + 4])
                if number is None or number >= len(self.streams):
                    raise Unsupported("an index entry for no stream")
            yield "bytes", block
            left -= len(block)
        if n % 16:
            yield "zero", n % 16


def _chunks(body: bytes, pos: int) -> Iterator[tuple[bytes, int, int]]:
    """(id, payload offset, size) of each chunk in `body` from `pos`."""
    while len(body) - pos >= 8:
        kind, n = struct.unpack_from("<4sI", body, pos)
        if pos + 8 + n > len(body):
            raise Unsupported("a chunk runs past its list")
        yield kind, pos + 8, n
        pos += 8 + n + (n & 1)


def _drop(out: bytearray, kind: bytes, form: bytes, at: int, n: int,
          removed: list[str]) -> None:
    """A JUNK header over the zeros of `out` where the chunk was."""
    if kind not in PADDING:
        name = f":{field_name(form)}" if kind == b"LIST" and len(form) == 4 else ""
        removed.append(f"chunk:{field_name(kind)}{name}")
    out[at - 8:at] = struct.pack("<4sI", b"JUNK", n)


def _stream_number(kind: bytes) -> int | None:
    if len(kind) == 4 and kind[:2].isdigit() and kind[2:].isalpha():
        return int(kind[:2])
    return None


class _Source(FileSource):
    def copy(self, n: int, out: int) -> None:
        write_all(out, self.read(n))


def _pwrite_all(fd: int, data: bytes, at: int) -> None:
    view = memoryview(data)
    while view:
        at += (n := os.pwrite(fd, view, at))
        view = view[n:]


def _zero(fd: int, start: int, end: int) -> None:
    for at in range(start, end, len(ZEROS)):
        _pwrite_all(fd, ZEROS[:min(len(ZEROS), end - at)], at)


def edit(fd: int, size: int) -> Walk:
    """Edits the AVI file in the memory file `fd` where it is: ffmpeg's copy
    of a file this module did not vouch for (intake.server.sanitize.media),
    which keeps every MJPEG frame's EXIF. Raises Unsupported as the streamed
    edit does; the file is then half edited, and not to be kept."""
    walk = Walk(FileSource(fd, size), size)
    walk.in_place(fd)
    return walk


STREAM_DATA = b"strd"
MOVI = re.compile(rb"LIST.{4}movi", re.DOTALL)
SCAN = 1024 * 1024


def hide_stream_data(fd: int, size: int) -> int:
    """Before ffmpeg reads an AVI file this module does not vouch for, in the
    memory file `fd`: every `strd` id ahead of the first `movi` list becomes
    `JUNK`, and what it holds zeros (up to that list). ffmpeg takes a `strd`
    chunk for the codec configuration of a stream that has none and writes
    it into its copy's `strf`, which stays: a camera's EXIF would go with it.
    The id is looked for as bytes, wherever it is, not only where a walk of
    the chunks finds it: ffmpeg's walk of an odd layout is its own (and the
    check of the copy looks for EXIF in its codec configuration all the
    same). Returns how many it found."""
    found: set[int] = set()
    pos, end, tail = 12, size, b""  # tail: the end of the last piece, where a match may start
    while pos < size:
        read = os.pread(fd, min(SCAN, size - pos), pos)
        if not read:
            break
        piece, base = tail + read, pos - len(tail)
        movi = MOVI.search(piece)
        if movi is not None:
            end = base + movi.start()
        at = piece.find(STREAM_DATA, 0, end - base)
        while at >= 0:
            found.add(base + at)
            at = piece.find(STREAM_DATA, at + 1, end - base)
        if movi is not None:
            break
        pos, tail = pos + len(read), piece[-11:]
    found = {at for at in found if at + 4 <= end}  # one in the last piece's end may not be
    for at in sorted(found):
        head = os.pread(fd, 8, at)
        _pwrite_all(fd, b"JUNK", at)
        n = struct.unpack_from("<I", head, 4)[0] if len(head) == 8 else 0
        _zero(fd, at + 8, min(at + 8 + n, end))
    return len(found)


def rewrite(fd: int, size: int) -> tuple[Walk, bytes]:
    """The edited copy of the file in `fd`, whole (for tests)."""
    walk = Walk(_Source(fd, size), size)
    head = walk.take(0)
    out = os.memfd_create("avi", os.MFD_CLOEXEC)
    try:
        walk.rest(out)
        os.lseek(out, 0, os.SEEK_SET)
        rest = b""
        while piece := os.read(out, 1024 * 1024):
            rest += piece
    finally:
        os.close(out)
    return walk, head + rest
