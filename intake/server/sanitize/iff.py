"""WAV (RIFF, and RF64/BW64) and AIFF/AIFC (IFF's FORM) rewritten chunk by
chunk, reading the upload forward: only what plays is written, and the
samples go from input to output in pieces, never held whole.

What stays: a WAV's `fmt ` and `fact` and its `data`; an AIFF's `COMM`, its
`SSND`, a channel layout (`CHAN`, when it is a tag and a bitmap alone) and,
for AIFC, `FVER`. The
format chunks are written anew from the fields that describe the samples
(an AIFC's compression name, free text, is left empty; `fact` counts the
frames kept; `FVER` holds the one version there is), so nothing else in
them survives. Everything else goes: LIST/INFO, `bext` (Broadcast WAV's
originator, date, time and coding history), `iXML`, `axml`, `id3 `/`ID3 `,
`cue `, `smpl`, `_PMX` (XMP), AIFF's `NAME`, `AUTH`, `(c) `, `ANNO`,
`COMT`, `MARK`, `APPL`, and any chunk before or after the samples; also
the bytes an `SSND` skips before its samples (its offset), and every byte
past the last whole sample frame. An RF64/BW64 file comes out as a plain
RIFF WAV (its samples fit: uploads stay far below 4 GiB).

Headers from recorders that stopped short are read as ffmpeg reads them: a
sample chunk whose size is a placeholder (0 or 0xFFFFFFFF) or runs past the
end of the file takes the rest of the file, in whole frames; an AIFF whose
COMM counts no frames (never updated) takes what its SSND holds. A chunk of
odd size may lack its pad byte. A layout this module does not vouch for
(compressed or unusual sample formats, two format chunks, a chunk cut short
before the samples...) raises `Unsupported`, and the caller hands the file
to ffmpeg instead, as for MP4.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Protocol

from intake.server.sanitize import mp4
from intake.server.sanitize.base import field_name
from intake.server.sanitize.mp4 import Unsupported  # one for every rewrite: ffmpeg gets it instead

MAX_CHUNKS = 10_000  # a real file has a handful
MAX_FORMAT = 64 * 1024  # a fmt, fact, COMM, ds64 or CHAN chunk is tens of bytes
MAX_NAMED = 1024 * 1024  # a LIST this small is read to name the fields inside it
UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # written before the length was known, never updated
PADDING = {b"JUNK", b"junk", b"PAD ", b"FLLR", b"free"}  # not named: they carry nothing
MAX_CHANNELS = 64
MAX_RATE = 10_000_000
# WAVE_FORMAT_EXTENSIBLE's sub-format: a format tag, then this GUID tail.
GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
PCM, FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
# Container bits per sample allowed for each WAV format tag.
WAV_BITS = {PCM: {8, 16, 24, 32}, FLOAT: {32, 64}, ALAW: {8}, MULAW: {8}}
# AIFC compression types of plain samples, and the bits each allows (None: 1-32).
AIFC_BITS: dict[bytes, set[int] | None] = {
    b"NONE": None, b"twos": None, b"sowt": None,
    b"fl32": {32}, b"FL32": {32}, b"fl64": {64}, b"FL64": {64}}
AIFC_VERSION = 0xA2805140  # the one AIFC version there is


class Source(mp4.Source, Protocol):
    """The upload, read forward (intake.server.sanitize.stream.Input), which
    can also be looked ahead into."""

    def peek(self, n: int) -> bytes: ...


class FileSource(mp4.FileSource):
    """A file descriptor read as if it were a stream: for tests."""

    def __init__(self, fd: int, size: int):
        super().__init__(fd)
        self.size = size

    def peek(self, n: int) -> bytes:
        return os.pread(self.fd, min(n, self.size - self.pos), self.pos)


@dataclass
class Plan:
    head: bytes  # container header, format chunks and the sample chunk's header
    start: int  # where the samples are in the input
    samples: int  # how many bytes of them are kept
    removed: list[str] = field(default_factory=list)
    kind: str = "audio/x-wav"
    rate: float = 0.0
    channels: int = 0
    duration: float = 0.0

    @property
    def tail(self) -> bytes:
        """The pad byte after samples of odd length."""
        return b"\0" if self.samples & 1 else b""

    @property
    def length(self) -> int:
        return len(self.head) + self.samples + len(self.tail)


@dataclass
class _Sound:
    """What the format chunk says about the samples, and the chunk anew."""

    body: bytes
    frame: int  # bytes per sample frame
    rate: float
    channels: int
    frames: int | None = None  # AIFF: the frames COMM counts
    extra: list[str] = field(default_factory=list)  # names of what the rewrite left out


@dataclass
class _Layout:
    """What a walk over the chunks found."""

    little: bool
    form: bytes  # b"WAVE", b"AIFF" or b"AIFC"
    sound: _Sound | None = None
    fact: bool = False
    chan: bytes = b""
    sample_at: int | None = None  # where the samples start
    sample_end: int = 0  # where the sample chunk ends
    sample_odd: bool = False  # a pad byte may follow it
    removed: list[str] = field(default_factory=list)
    sizes: dict[bytes, int] = field(default_factory=dict)  # RF64: 64-bit sizes by chunk id


def scan(src: Source, size: int) -> tuple[Plan, bool]:
    """Reads the chunks forward up to the samples, keeping only the format
    chunks. Returns the plan, and whether the samples can be copied in this
    same pass: `src` then stands at them. Otherwise the format came after
    the samples; the walk went on to the end, and the caller reads the file
    again from the start and skips to `plan.start`."""
    if size < 12:
        raise Unsupported("too short")
    head = src.read(12)
    magic, form = head[:4], head[8:12]
    if magic == b"RIFF" and form == b"WAVE":
        layout = _Layout(little=True, form=form)
    elif magic in (b"RF64", b"BW64") and form == b"WAVE":
        layout = _Layout(little=True, form=form)
        _ds64(src, size, layout)
    elif magic == b"FORM" and form in (b"AIFF", b"AIFC"):
        layout = _Layout(little=False, form=form)
    else:
        raise Unsupported("not a WAV or AIFF file")
    count = 0
    while size - src.pos >= 8:
        count += 1
        if count > MAX_CHUNKS:
            raise Unsupported("too many chunks")
        kind, n = _chunk_header(src, layout)
        before = layout.sample_at is None
        if kind == (b"data" if layout.little else b"SSND") and before:
            _samples(src, size, n, layout)
            if layout.sound is not None:
                # What follows is dropped unread: this pass goes no further.
                if size - layout.sample_end > int(layout.sample_odd):
                    layout.removed.append("chunks after the samples")
                return _plan(layout), True
            src.skip(layout.sample_end - src.pos)  # the format may follow: look for it
        elif kind in ((b"fmt ", b"fact") if layout.little else (b"COMM", b"FVER", b"CHAN")):
            if n > MAX_FORMAT or src.pos + n > size:
                raise Unsupported("format chunk too large or cut short")
            _format_chunk(kind, src.read(n), layout)
        else:
            if before and src.pos + n > size:
                raise Unsupported("a chunk runs past the end of the file")
            layout.removed += _names(src, kind, n, layout.little)
            src.skip(min(n, size - src.pos))
        _pad(src, size, n)
    if src.pos < size:
        src.skip(size - src.pos)
    if layout.sample_at is None:
        raise Unsupported("no samples")
    if layout.sound is None:
        raise Unsupported("no format chunk")
    return _plan(layout), False


def rewrite(fd: int, size: int) -> Plan:
    """Plans the cleaned copy of the file in `fd` (for tests)."""
    return scan(FileSource(fd, size), size)[0]


def _chunk_header(src: Source, layout: _Layout) -> tuple[bytes, int]:
    kind, n = struct.unpack("<4sI" if layout.little else ">4sI", src.read(8))
    if n == 0xFFFFFFFF and kind in layout.sizes:  # RF64: the real size is in ds64
        n = layout.sizes[kind]
    return kind, n


def _pad(src: Source, size: int, n: int) -> None:
    """Skips the pad byte after a chunk of odd size; some writers leave it
    out, and then the next chunk's id comes at once."""
    if not n & 1 or src.pos >= size:
        return
    ahead = src.peek(5)
    if ahead[:1] != b"\0" and _printable(ahead[:4]) and not _printable(ahead[1:5]):
        return  # no pad byte: a chunk id starts here
    src.skip(1)


def _printable(kind: bytes) -> bool:
    return len(kind) == 4 and all(0x20 <= c < 0x7F for c in kind)


def _names(src: Source, kind: bytes, n: int, little: bool) -> list[str]:
    """The dropped chunk's name, and for a small LIST the ids inside it
    (INFO's IART, ICMT, ISFT...), never their values. Reads nothing but a
    LIST, which the caller then need not skip."""
    if kind in PADDING:
        return []
    name = f"chunk:{field_name(kind)}"
    if kind != b"LIST" or not little or n < 4 or n > MAX_NAMED:
        return [name]
    body = src.peek(n)
    if len(body) < n:
        return [name]
    here = f"{name}:{field_name(body[:4])}"
    names, pos = [], 4
    while pos + 8 <= n and len(names) < 100:
        item, length = struct.unpack_from("<4sI", body, pos)
        names.append(f"{here}:{field_name(item)}")
        pos += 8 + length + (length & 1)
    return names or [here]


def _ds64(src: Source, size: int, layout: _Layout) -> None:
    """RF64 and BW64 (EBU Tech 3306, 3285 s.3392): 64-bit sizes, in the ds64
    chunk that must come first."""
    if size - src.pos < 8:
        raise Unsupported("no ds64 chunk")
    kind, n = struct.unpack("<4sI", src.read(8))
    if kind != b"ds64" or not 28 <= n <= MAX_FORMAT or src.pos + n > size:
        raise Unsupported("no ds64 chunk")
    body = src.read(n)
    _riff, data, _frames, entries = struct.unpack_from("<QQQI", body)
    if 28 + 12 * entries > n:
        raise Unsupported("ds64 table longer than its chunk")
    layout.sizes[b"data"] = data
    for at in range(28, 28 + 12 * entries, 12):
        chunk, length = struct.unpack_from("<4sQ", body, at)
        layout.sizes.setdefault(chunk, length)
    _pad(src, size, n)


def _format_chunk(kind: bytes, body: bytes, layout: _Layout) -> None:
    if kind in (b"fmt ", b"COMM"):
        if layout.sound is not None:
            raise Unsupported("two format chunks")
        layout.sound = _wav_format(body) if kind == b"fmt " else _aiff_format(body, layout.form)
    elif kind == b"fact":
        layout.fact = True  # written anew, counting the frames kept
    elif kind == b"CHAN":
        # Core Audio's layout: a tag and a bitmap are kept; channel
        # descriptions (floats that could carry anything) are not.
        if len(body) == 12 and body[8:12] == bytes(4) and not layout.chan:
            layout.chan = _chunk(b"CHAN", body, little=False)
        else:
            layout.removed.append("chunk:CHAN")
    # FVER: written anew for an AIFC


def _wav_format(body: bytes) -> _Sound:
    if len(body) < 16:
        raise Unsupported("format chunk too short")
    tag, channels, rate, byte_rate, block, bits = struct.unpack_from("<HHIIHH", body)
    extra: list[str] = []
    if tag == EXTENSIBLE:
        if len(body) < 40 or struct.unpack_from("<H", body, 16)[0] < 22:
            raise Unsupported("extensible format chunk too short")
        valid, _mask = struct.unpack_from("<HI", body, 18)
        sub, tail = struct.unpack_from("<H", body, 24)[0], body[26:40]
        if tail != GUID_TAIL or sub not in WAV_BITS or valid > bits:
            raise Unsupported("extensible sub-format not plain samples")
        kept, formats = body[:16] + struct.pack("<H", 22) + body[18:40], sub
        if len(body) > 40 and any(body[40:]):
            extra.append("chunk:fmt :extra bytes")
    elif tag in WAV_BITS:
        # The plain formats' fixed fields only: PCM without cbSize, the others
        # with an empty one.
        kept, formats = body[:16] + (b"" if tag == PCM else bytes(2)), tag
        if any(body[16 if tag == PCM else 18:]):
            extra.append("chunk:fmt :extra bytes")
    else:
        raise Unsupported("compressed or unusual sample format")
    if bits not in WAV_BITS[formats] or not 0 < channels <= MAX_CHANNELS \
            or not 0 < rate <= MAX_RATE or block != channels * bits // 8 \
            or byte_rate != rate * block:
        raise Unsupported("format fields disagree")
    return _Sound(kept, block, float(rate), channels, extra=extra)


def _extended(data: bytes) -> float:
    """An IEEE 754 80-bit extended number (AIFF's sample rate)."""
    exponent, mantissa = struct.unpack(">HQ", data)
    shift = exponent - 16383 - 63
    if exponent & 0x8000 or not mantissa or shift > 0:  # negative, zero, or past 2^64
        return 0.0
    return mantissa * 2.0 ** shift


def _aiff_format(body: bytes, form: bytes) -> _Sound:
    if len(body) < 18:
        raise Unsupported("COMM chunk too short")
    channels, frames, bits = struct.unpack_from(">HIH", body)
    rate = _extended(body[8:18])
    allowed: set[int] | None = None
    extra: list[str] = []
    kept = body[:18]
    if form == b"AIFC":
        if len(body) < 22 or body[18:22] not in AIFC_BITS:
            raise Unsupported("compressed or unusual sample format")
        allowed = AIFC_BITS[body[18:22]]
        if len(body) > 22 and body[22]:
            extra.append("chunk:COMM:compression name")
        kept += body[18:22] + b"\0\0"  # an empty name, padded to even
    if (allowed is None and not 1 <= bits <= 32) or (allowed is not None and bits not in allowed) \
            or not 0 < channels <= MAX_CHANNELS or not 0 < rate <= MAX_RATE:
        raise Unsupported("format fields out of range")
    frame = channels * ((bits + 7) // 8)
    return _Sound(kept, frame, rate, channels, frames=frames, extra=extra)


def _samples(src: Source, size: int, n: int, layout: _Layout) -> None:
    """Where the sample chunk's samples start and end; an SSND's offset and
    block size are read, and the bytes its offset skips are passed over.
    A placeholder size, or one past the end of the file, runs to the end."""
    start, left = src.pos, size - src.pos
    known = n not in UNKNOWN_SIZES and n <= left
    layout.sample_odd = bool(n & 1) and known
    if not layout.little:
        if left < 8 or (known and n < 8):
            raise Unsupported("SSND chunk too short")
        offset, _block = struct.unpack(">II", src.read(8))
        if offset > (n if known else left) - 8:
            raise Unsupported("SSND offset past its chunk")
        if offset:
            layout.removed.append("chunk:SSND:offset bytes")
            src.skip(offset)
    layout.sample_at = src.pos
    layout.sample_end = start + n if known else size


def _plan(layout: _Layout) -> Plan:
    sound = layout.sound
    assert sound is not None and layout.sample_at is not None
    frames = (layout.sample_end - layout.sample_at) // sound.frame
    removed = layout.removed + sound.extra
    if sound.frames:  # AIFF: COMM counts the frames, unless never updated (0)
        if sound.frames < frames:
            removed.append("chunk:SSND:bytes after the frames COMM counts")
        frames = min(frames, sound.frames)
    samples = frames * sound.frame
    if not samples:
        raise Unsupported("no samples")
    pad = samples & 1
    if layout.little:
        fact = _chunk(b"fact", struct.pack("<I", frames), little=True) if layout.fact else b""
        body = (b"WAVE" + _chunk(b"fmt ", sound.body, little=True) + fact
                + struct.pack("<4sI", b"data", samples))
        form = struct.pack("<4sI", b"RIFF", len(body) + samples + pad)
        kind = "audio/x-wav"
    else:
        comm = sound.body[:2] + struct.pack(">I", frames) + sound.body[6:]
        fver = _chunk(b"FVER", struct.pack(">I", AIFC_VERSION), little=False) \
            if layout.form == b"AIFC" else b""
        body = (layout.form + fver + _chunk(b"COMM", comm, little=False) + layout.chan
                + struct.pack(">4sIII", b"SSND", 8 + samples, 0, 0))
        form = struct.pack(">4sI", b"FORM", len(body) + samples + pad)
        kind = "audio/x-aiff"
    if len(body) + samples + pad > 0xFFFFFFFF:
        raise Unsupported("too large for a 32-bit container")
    return Plan(form + body, layout.sample_at, samples, list(dict.fromkeys(removed)), kind,
                sound.rate, sound.channels, frames / sound.rate)


def _chunk(kind: bytes, body: bytes, little: bool) -> bytes:
    return struct.pack("<4sI" if little else ">4sI", kind, len(body)) + body + \
        (b"\0" if len(body) & 1 else b"")
