"""MP3, FLAC, Ogg Vorbis and Opus: every tag and embedded picture is removed
(mutagen), and so is everything that is not the first stream's audio.

A tag need not lead the file: a second file joined with `cat` brings its own
ID3 tag, ID3v2.4 allows one at the end, a FLAC can carry any bytes after its
last frame and APPLICATION blocks (`flac --keep-foreign-metadata` keeps a
WAV's `bext` and `iXML` there), and a chained Ogg holds further streams,
each with its own comments. So the copy keeps only what is read as the first
stream: MP3 frames walked from the first one, header by header, while they
agree with it; a FLAC's STREAMINFO and SEEKTABLE and its frames up to the end
of the last one STREAMINFO counts (found by its header and its CRC-16); the
pages of an Ogg file's first logical stream up to its last page. What follows
is dropped and named. The audio frames themselves are not touched. (WAV and
AIFF are rewritten chunk by chunk as they stream through, M4A box by box,
and ffmpeg cleans what those rewrites do not vouch for: see media.py.)"""

from __future__ import annotations

import io
import struct

from intake.server.sanitize.base import Cleaned, Refused, field_name, unique

AFTER = "data after the audio (appended tags, a second file, trailing bytes)"


def _tag_names(tags) -> list[str]:
    if tags is None:
        return []
    keys = tags.keys() if hasattr(tags, "keys") else [k for k, _v in tags]
    return [field_name(str(k).split(":")[0]) for k in keys]


# -- MP3: MPEG audio frames ----------------------------------------------------

BITRATES = {  # kbit/s by (MPEG-1?, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
BITRATES[(False, 3)] = BITRATES[(False, 2)]
RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(data: bytes, pos: int) -> tuple[tuple[int, int, int], int] | None:
    """The frame at `pos`: ((version, layer, sample rate), its length), or None."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[pos + 1] >> 3) & 3, 4 - ((data[pos + 1] >> 1) & 3)
    index, rate_index = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3
    if version == 1 or layer == 4 or index in (0, 15) or rate_index == 3:
        return None  # reserved values, or a free-format bitrate (no length)
    bitrate = BITRATES[(version == 3, layer)][index - 1] * 1000
    rate = RATES[version][rate_index]
    padding = (data[pos + 2] >> 1) & 1
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (72 if layer == 3 and version != 3 else 144) * bitrate // rate + padding
    return (version, layer, rate), length


def _mp3_frames(data: bytes) -> tuple[int, int]:
    """The span of the MPEG audio frames the file starts with: the first frame
    followed by two more (or the file's end), and every whole frame after it
    of the same version, layer and sample rate."""
    start = 0
    while True:
        start = data.find(b"\xff", start)
        if start < 0:
            raise Refused("malformed mp3 file (no audio frames)")
        first = _mpeg_frame(data, start)
        if first is not None:
            pos, count = start, 0
            while count < 3:
                frame = _mpeg_frame(data, pos)
                if frame is None or frame[0] != first[0] or pos + frame[1] > len(data):
                    break
                pos, count = pos + frame[1], count + 1
            if count == 3 or (count and pos == len(data)):
                break
        start += 1
    pos = start
    while True:
        frame = _mpeg_frame(data, pos)
        if frame is None or frame[0] != first[0] or pos + frame[1] > len(data):
            return start, pos
        pos += frame[1]


# -- FLAC: metadata blocks and frames -----------------------------------------

KEPT_BLOCKS = {0, 3}  # STREAMINFO, SEEKTABLE (mutagen wrote the emptied comments)
VORBIS_COMMENT = 4


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


CRC16 = []
for _n in range(256):
    _c = _n << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x8005) & 0xFFFF if _c & 0x8000 else (_c << 1) & 0xFFFF
    CRC16.append(_c)


def _utf8_number(data: bytes, pos: int) -> tuple[int, int] | None:
    """FLAC's UTF-8-like coded frame or sample number: (value, length)."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first < 0x80:
        return first, 1
    length = next((n for n in range(2, 8) if first >> (7 - n) == (0xFF >> (7 - n)) - 1), 0)
    if not length or pos + length > len(data):
        return None
    value = first & (0x7F >> length)
    for byte in data[pos + 1:pos + length]:
        if byte & 0xC0 != 0x80:
            return None
        value = (value << 6) | (byte & 0x3F)
    return value, length


BLOCK_SIZES = {1: 192, **{n: 576 << (n - 2) for n in range(2, 6)},
               **{n: 256 << (n - 8) for n in range(8, 16)}}


def _flac_header(data: bytes, pos: int) -> tuple[int, int, bool] | None:
    """A frame header at `pos` whose CRC-8 holds: (number, block size, whether
    the number counts samples)."""
    if pos + 6 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xFE != 0xF8:
        return None
    variable = bool(data[pos + 1] & 1)
    size_code, rate_code = data[pos + 2] >> 4, data[pos + 2] & 0xF
    if size_code == 0 or rate_code == 15 or data[pos + 3] & 1:
        return None
    number = _utf8_number(data, pos + 4)
    if number is None:
        return None
    end = pos + 4 + number[1]
    if size_code == 6:
        size, end = data[end] + 1 if end < len(data) else 0, end + 1
    elif size_code == 7:
        size, end = (int.from_bytes(data[end:end + 2], "big") + 1
                     if end + 2 <= len(data) else 0), end + 2
    else:
        size = BLOCK_SIZES[size_code]
    end += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if end >= len(data) or not size or _crc8(data[pos:end]) != data[end]:
        return None
    return number[0], size, variable


def _flac_end(data: bytes, first: int, total: int, block: int, largest: int) -> int:
    """Where the frame holding the stream's last sample ends: the header of
    the frame that holds it (its CRC-8 holding), then the end of the file if
    the frame's CRC-16 holds there, else the first place it holds (a frame
    may be cut short by a chance match: at most its last samples are lost,
    never anything after it kept)."""
    pos = len(data)
    while True:
        pos = data.rfind(b"\xff", first, pos)
        if pos < 0:
            raise Refused("malformed flac file (its last frame is missing)")
        header = _flac_header(data, pos)
        if header is not None:
            number, size, variable = header
            sample = number if variable else number * block
            if sample < total <= sample + size:
                break
    crc, found = 0, None
    stop = min(len(data) - 2, pos + (largest or MAX_FRAME))
    for end in range(pos, stop):
        crc = ((crc << 8) & 0xFFFF) ^ CRC16[(crc >> 8) ^ data[end]]
        if end - pos >= 4 and crc == (data[end + 1] << 8 | data[end + 2]):
            if end + 3 == len(data):
                return end + 3
            found = end + 3 if found is None else found
    if found is None:
        raise Refused("malformed flac file (its last frame is cut short)")
    return found


MAX_FRAME = 65536 * 8 * 4 + 64  # 65536 samples of 8 channels of 32 bits, and headers


def _flac(data: bytes, removed: list[str]) -> bytes:
    """Only STREAMINFO, SEEKTABLE and the emptied comments before the frames,
    and nothing after the last frame STREAMINFO counts."""
    if not data.startswith(b"fLaC"):
        raise Refused("malformed flac file")
    pos, blocks, last = 4, [], False
    while not last:
        if pos + 4 > len(data):
            raise Refused("malformed flac file")
        last, kind = bool(data[pos] & 0x80), data[pos] & 0x7F
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        body = data[pos + 4:pos + 4 + length]
        if kind in KEPT_BLOCKS or kind == VORBIS_COMMENT:
            blocks.append((kind, body))
        elif kind != 1:  # not padding
            removed.append("FLAC:" + {2: "APPLICATION block", 5: "CUESHEET block",
                                       6: "picture"}.get(kind, f"block {kind}"))
        pos += 4 + length
    if not blocks or blocks[0][0] != 0 or len(blocks[0][1]) != 34:
        raise Refused("malformed flac file (no STREAMINFO)")
    info = blocks[0][1]
    max_block, largest = struct.unpack(">H", info[2:4])[0], int.from_bytes(info[7:10], "big")
    total = int.from_bytes(info[13:18], "big") & 0xFFFFFFFFF
    if not total:
        raise Refused("flac file that does not say its length")
    end = _flac_end(data, pos, total, max_block, largest)
    if end < len(data):
        removed.append(AFTER)
    head = bytearray(b"fLaC")
    for i, (kind, body) in enumerate(blocks):
        head += bytes([kind | (0x80 if i == len(blocks) - 1 else 0)])
        head += len(body).to_bytes(3, "big") + body
    return bytes(head) + data[pos:end]


# -- Ogg: pages of the first logical stream -----------------------------------

def _ogg_first_stream(data: bytes) -> int:
    """The length of the first logical stream's pages, from the start up to
    its last page (end of stream), or up to where the pages stop (a file cut
    short). A page of another stream before that (streams multiplexed, or a
    first link cut short) is refused."""
    pos, serial = 0, None
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or pos + 27 > len(data):
            if serial is None:
                raise Refused("malformed ogg file")
            return pos
        flags, page_serial = data[pos + 5], struct.unpack("<I", data[pos + 14:pos + 18])[0]
        segments = data[pos + 26]
        end = pos + 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        if end > len(data):
            return pos  # a page cut short
        if serial is None:
            serial = page_serial
        elif page_serial != serial or flags & 2:
            raise Refused("ogg file with more than one stream")
        pos = end
        if flags & 4:  # end of stream: what follows is another link, or not Ogg
            return pos
    return pos


def clean(family: str, data: bytes) -> Cleaned:
    import mutagen
    from mutagen import apev2, id3

    removed: list[str] = []
    if family == "mp3":
        from mutagen.mp3 import MP3

        audio = MP3(io.BytesIO(data))
        removed += [f"ID3:{n}" for n in _tag_names(audio.tags)]
        buf = io.BytesIO(data)
        id3.delete(buf, delete_v1=True, delete_v2=True)
        buf.seek(0)
        try:
            ape = apev2.APEv2(buf)
            removed += [f"APE:{n}" for n in _tag_names(ape)]
        except apev2.APENoHeaderError:
            pass
        stripped = buf.getvalue()
        start, end = _mp3_frames(stripped)
        if start:
            removed.append("data before the audio")
        if end < len(stripped):
            removed.append(AFTER)
        buf = io.BytesIO(stripped[start:end])
        kind = "audio/mpeg"
    elif family == "flac":
        buf = io.BytesIO(data)
        audio = mutagen.File(buf)
        if audio is None:
            raise Refused(f"malformed {family} file")
        removed += [f"{type(audio).__name__}:{n}" for n in _tag_names(audio.tags)]
        if audio.pictures:
            removed.append("FLAC:picture")
        audio.clear_pictures()
        if audio.tags is not None:
            audio.tags.clear()
        buf.seek(0)
        audio.save(buf, deleteid3=True, padding=lambda _info: 0)
        buf = io.BytesIO(_flac(buf.getvalue(), removed))
        kind = "audio/flac"
    else:
        end = _ogg_first_stream(data)
        if end < len(data):
            removed.append("data after the first stream (chained streams, trailing bytes)")
        buf = io.BytesIO(data[:end])
        audio = mutagen.File(buf)
        if audio is None:
            raise Refused(f"malformed {family} file")
        removed += [f"{type(audio).__name__}:{n}" for n in _tag_names(audio.tags)]
        buf.seek(0)
        audio.delete(buf)
        kind = "audio/ogg"
    buf.seek(0)
    if mutagen.File(buf) is None:
        raise Refused(f"{family} file unreadable after cleaning")
    return Cleaned(buf.getvalue(), unique(removed), tool=f"mutagen {mutagen.version_string}",
                   detected_type=kind)
