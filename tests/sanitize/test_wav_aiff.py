"""WAV and AIFF rewritten chunk by chunk as they stream through
(intake/server/sanitize/iff.py): every chunk but the format and the samples
goes, with whatever was planted in it; the samples come out byte for byte; a
file no memory file could hold is cleaned in bounded memory; hostile headers
are read as ffmpeg reads them or handed to ffmpeg, never a crash.

The files are made by ffmpeg (with -metadata, -write_bext), sox and
mutagen; the chunks no tool here writes (iXML, XMP, cue points, sampler and
AIFF marker and application chunks) are built from their published layouts.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
from pathlib import Path

import pytest

from intake.server.sanitize import Limits, iff
from sanitize.sanitize_corpus import AUTHOR, SERIAL, leftovers, planted_in_bytes, run
from sanitize.test_streaming import NO_MEMORY_FILES, _child, _clean

MiB = 1024 * 1024
WAV_KEPT = {b"fmt ", b"fact", b"data"}
AIFF_KEPT = {b"FVER", b"COMM", b"CHAN", b"SSND"}

needs_sox = pytest.mark.skipif(shutil.which("sox") is None and os.environ.get("CI") != "true",
                               reason="sox is not installed (tests/packages.txt)")


# -- chunks, built and read here, independently of the rewriter ----------------

def chunk(kind: bytes, body: bytes, little: bool = True, pad: bool = True) -> bytes:
    return struct.pack("<4sI" if little else ">4sI", kind, len(body)) + body + \
        (b"\0" if len(body) & 1 and pad else b"")


def walk(data: bytes) -> list[tuple[bytes, int, int]]:
    """(id, payload offset, declared size) of each top-level chunk."""
    little = data[:4] != b"FORM"
    found, pos = [], 12
    while pos + 8 <= len(data):
        kind, n = struct.unpack_from("<4sI" if little else ">4sI", data, pos)
        found.append((kind, pos + 8, n))
        pos += 8 + n + (n & 1)
    return found


def samples(data: bytes) -> memoryview:
    """The sample bytes: a WAV's data payload; an AIFF's SSND payload past
    its offset, as many frames as COMM counts."""
    found = {kind: (at, n) for kind, at, n in reversed(walk(data))}
    view = memoryview(data)
    if data[:4] != b"FORM":
        at, n = found[b"data"]
        return view[at:at + n]
    at, n = found[b"SSND"]
    channels, frames, bits = struct.unpack_from(">HIH", data, found[b"COMM"][0])
    (offset,) = struct.unpack_from(">I", data, at)
    return view[at + 8 + offset:][:frames * channels * ((bits + 7) // 8)]


def with_chunks(data: bytes, before: bytes = b"", after: bytes = b"") -> bytes:
    """`before` put ahead of the sample chunk, `after` at the end; the
    container's size made right."""
    kind = b"SSND" if data[:4] == b"FORM" else b"data"
    at = next(offset for k, offset, _ in walk(data) if k == kind) - 8
    out = bytearray(data[:at] + before + data[at:] + after)
    struct.pack_into(">I" if data[:4] == b"FORM" else "<I", out, 4, len(out) - 8)
    return bytes(out)


def decoded(path: Path) -> str:
    """ffmpeg's MD5 of the decoded sound."""
    return run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "md5",
               "-").stdout.decode().strip()


# -- what the tools do not write ------------------------------------------------

def bext() -> bytes:
    """Broadcast WAV (EBU Tech 3285): description, originator, its reference,
    date, time, time reference, version, UMID, loudness, then coding history."""
    return chunk(b"bext", b"".join((
        b"Interview, Kyiv street 5".ljust(256, b"\0"), AUTHOR.encode().ljust(32, b"\0"),
        SERIAL.encode().ljust(32, b"\0"), b"2024-03-01", b"10:11:12", bytes(8),
        struct.pack("<H", 2), bytes(64), bytes(10), bytes(180),
        b"A=PCM,F=48000,W=24,M=stereo,T=WitnessCam 4.2\r\n")))


def ixml() -> bytes:
    return chunk(b"iXML", f"<?xml version=\"1.0\"?><BWFXML><PROJECT>Kyiv street 5</PROJECT>"
                          f"<NOTE>{AUTHOR}</NOTE><TAPE>{SERIAL}</TAPE></BWFXML>".encode())


def xmp() -> bytes:
    return chunk(b"_PMX", f"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf="
                          f"\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description "
                          f"xmlns:dc=\"http://purl.org/dc/elements/1.1/\" dc:creator=\"{AUTHOR}\""
                          f" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" xmp:CreateDate="
                          f"\"2024-03-01T10:11:12\"/></rdf:RDF></x:xmpmeta>".encode())


def cue_points() -> bytes:
    """One cue point, and its label in a LIST of associated data."""
    cue = chunk(b"cue ", struct.pack("<I", 1) + struct.pack("<II4sIII", 1, 0, b"data", 0, 0, 0))
    label = chunk(b"labl", struct.pack("<I", 1) + f"said by {AUTHOR}\0".encode())
    return cue + chunk(b"LIST", b"adtl" + label)


def sampler() -> bytes:
    return chunk(b"smpl", struct.pack("<9I", 0, 0, 22675, 60, 0, 0, 0, 0, 10) + SERIAL.encode())


def aiff_extras() -> bytes:
    """A marker with a name, an application chunk and a comment with a time."""
    name = AUTHOR.encode()
    marker = struct.pack(">HI", 1, 0) + bytes([len(name)]) + name
    mark = chunk(b"MARK", struct.pack(">H", 1) + marker + b"\0" * ((len(marker) + 1) % 2),
                 little=False)
    appl = chunk(b"APPL", b"Acme" + b"Kyiv street 5", little=False)
    text = f"recorded by {AUTHOR}".encode()
    comt = chunk(b"COMT", struct.pack(">HIhH", 1, 0xE73AFB24, 0, len(text)) + text, little=False)
    return mark + appl + comt


# -- the corpus -------------------------------------------------------------------

SINE = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1")
META = ("-metadata", f"artist={AUTHOR}", "-metadata", "comment=Kyiv street 5",
        "-metadata", "date=2024-03-01", "-metadata", "encoder=WitnessCam 4.2")


def _ffmpeg(corpus, name: str, *args: str) -> Path:
    return corpus.ffmpeg(name, *SINE, *args)


def _sox(corpus, name: str, *args: str) -> Path:
    path = corpus.path(name)
    run("sox", "-n", *args, str(path), "synth", "1", "sine", "440")
    return path


def _patched(corpus, path: Path, name: str, **chunks: bytes) -> Path:
    out = corpus.path(name)
    out.write_bytes(with_chunks(path.read_bytes(), **chunks))
    return out


def _mutagen_id3(path: Path) -> Path:
    """An ID3 chunk at the end, as mutagen writes it into WAV and AIFF."""
    from mutagen.aiff import AIFF
    from mutagen.id3 import TDRC, TPE1, TXXX
    from mutagen.wave import WAVE

    audio = (AIFF if path.read_bytes()[:4] == b"FORM" else WAVE)(path)
    audio.add_tags()
    audio.tags.add(TPE1(encoding=3, text=AUTHOR))
    audio.tags.add(TXXX(encoding=3, desc="serial", text=SERIAL))
    audio.tags.add(TDRC(encoding=3, text="2024-03-01"))
    audio.save()
    return path


def _python_wave(corpus) -> Path:
    """Python's wave module: a plain 16-bit file, then every kind of chunk."""
    import math
    import wave

    path = corpus.path("python.wav")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(n / 10)))
                               for n in range(22050)))
    path.write_bytes(with_chunks(path.read_bytes(), before=bext() + ixml() + xmp() + sampler(),
                                 after=cue_points()))
    return _mutagen_id3(path)


VARIANTS = {
    "ffmpeg wav: LIST/INFO and bext": lambda c: _ffmpeg(
        c, "ffmpeg.wav", *META, "-write_bext", "1", "-metadata", f"originator={AUTHOR}",
        "-metadata", f"originator_reference={SERIAL}", "-metadata",
        "origination_date=2024-03-01", "-metadata", "origination_time=10:11:12",
        "-metadata", "coding_history=A=PCM,T=WitnessCam 4.2", "-c:a", "pcm_s24le"),
    "python wave: bext, iXML, XMP, smpl, cue, labels, ID3": _python_wave,
    "ffmpeg wav, 6 channels (extensible) and ID3": lambda c: _mutagen_id3(_ffmpeg(
        c, "six.wav", "-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0", *META,
        "-c:a", "pcm_s24le")),
    "ffmpeg rf64": lambda c: _ffmpeg(c, "rf64.wav", *META, "-rf64", "always",
                                     "-c:a", "pcm_s16le"),
    "sox wav (float, fact) with bext and iXML": lambda c: _patched(
        c, _sox(c, "sox.wav", "-r", "48000", "-c", "2", "-e", "floating-point"),
        "sox-bext.wav", before=bext() + ixml()),
    "ffmpeg aiff: NAME, AUTH, (c), ANNO, ID3": lambda c: _ffmpeg(
        c, "ffmpeg.aiff", "-metadata", "title=Kyiv street 5", "-metadata", f"author={AUTHOR}",
        "-metadata", f"copyright={AUTHOR} 2024-03-01", "-metadata", f"comment={SERIAL}",
        "-write_id3v2", "1", "-metadata", f"artist={AUTHOR}"),
    "sox aiff: COMT, with MARK and APPL": lambda c: _patched(
        c, _sox(c, "sox.aiff", "--comment", f"by {AUTHOR} 2024-03-01", "-r", "44100",
                "-c", "2", "-b", "16"), "sox-marks.aiff", before=aiff_extras()),
    "sox aifc (float) with ID3": lambda c: _mutagen_id3(_sox(
        c, "sox.aifc", "-r", "48000", "-c", "1", "-e", "floating-point")),
}


@needs_sox
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_only_what_plays_is_left_and_the_samples_are_the_originals(corpus, sanitized,
                                                                   variant):
    original = VARIANTS[variant](corpus)
    data = original.read_bytes()
    assert planted_in_bytes(data)  # so the checks below mean something
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.tool == "", "the chunk rewrite, not ffmpeg, should have cleaned this file"
    cleaned = out.read_bytes()
    assert planted_in_bytes(cleaned) == [] and leftovers(out) == []
    little = cleaned[:4] == b"RIFF"
    assert {kind for kind, _, _ in walk(cleaned)} <= (WAV_KEPT if little else AIFF_KEPT)
    assert struct.unpack_from("<I" if little else ">I", cleaned, 4)[0] == len(cleaned) - 8
    assert samples(cleaned) == samples(data)
    assert decoded(out) == decoded(original)
    assert result.removed and all(isinstance(n, str) for n in result.removed)


def test_what_was_removed_is_named_not_quoted(corpus, sanitized):
    result, _ = sanitized(_python_wave(corpus))
    assert {"chunk:bext", "chunk:iXML", "chunk:_PMX", "chunk:smpl",
            "chunks after the samples"} <= set(result.removed)
    assert not planted_in_bytes(" ".join(result.removed).encode())


def test_an_ffmpeg_wav_loses_its_info_fields_by_name(corpus, sanitized):
    result, _ = sanitized(_ffmpeg(corpus, "named.wav", *META))
    assert {"chunk:LIST:INFO:IART", "chunk:LIST:INFO:ICMT"} <= set(result.removed)


# -- large files: no memory file, bounded memory ----------------------------------

@pytest.fixture(scope="module")
def long_recording(corpus) -> Path:
    """Over 384 MiB (half of Limits.media_memory, past which ffmpeg's memory
    files refused it): a real WAV looped by ffmpeg, with INFO and bext."""
    base = corpus.ffmpeg("base10.wav", "-f", "lavfi", "-i",
                         "sine=frequency=440:sample_rate=48000:duration=10", "-ac", "2",
                         "-c:a", "pcm_s16le")
    path = corpus.ffmpeg("long.wav", "-stream_loop", "220", "-i", str(base), "-c", "copy",
                         *META, "-write_bext", "1", "-metadata", f"originator={AUTHOR}")
    assert path.stat().st_size > Limits().media_memory // 2
    return path


def test_a_recording_larger_than_the_memory_files_is_cleaned_in_bounded_memory(
        corpus, long_recording):
    """The cleaner's peak memory, with the ffprobe that checks its copy, is
    the same for 40 MiB and for 400 MiB, far below either."""
    short = corpus.ffmpeg("short.wav", "-stream_loop", "20", "-i",
                          str(corpus.path("base10.wav")), "-c", "copy", *META)
    _, code_short, peak_short = _child(short, Limits())
    out, code, peak = _child(long_recording, Limits())
    assert code == code_short == 0
    assert peak - peak_short < 8 * 1024, (peak_short, peak)  # KiB
    assert peak * 1024 < long_recording.stat().st_size / 4
    data = long_recording.read_bytes()
    assert hashlib.sha256(samples(out)).digest() == hashlib.sha256(samples(data)).digest()
    assert 0 < len(data) - len(out) < 4096 and planted_in_bytes(out[:4096]) == []


# -- hostile and unusual headers ----------------------------------------------------

def plan_of(data: bytes) -> iff.Plan | str:
    """The rewriter alone, in this process: its plan, or "ffmpeg" when it does
    not vouch for the file."""
    fd = os.memfd_create("test")
    try:
        os.write(fd, data)
        return iff.rewrite(fd, len(data))
    except iff.Unsupported:
        return "ffmpeg"
    finally:
        os.close(fd)


def rewritten(data: bytes) -> bytes:
    plan = plan_of(data)
    assert isinstance(plan, iff.Plan), plan
    return plan.head + data[plan.start:plan.start + plan.samples] + plan.tail


@pytest.fixture
def wav(corpus) -> bytes:
    """A plain ffmpeg WAV with INFO: 1 s of 16-bit mono at 44.1 kHz."""
    return _ffmpeg(corpus, "plain.wav", "-ar", "44100", *META, "-c:a", "pcm_s16le").read_bytes()


def _set_size(data: bytes, kind: bytes, size: int, riff: int | None = None) -> bytes:
    out = bytearray(data)
    at = next(offset for k, offset, _ in walk(data) if k == kind) - 4
    struct.pack_into("<I", out, at, size)
    if riff is not None:
        struct.pack_into("<I", out, 4, riff)
    return bytes(out)


@pytest.mark.parametrize("sizes", [(0xFFFFFFFF, 0xFFFFFFFF), (0, 0), (0, None)])
def test_a_data_size_never_written_takes_the_rest_of_the_file(wav, sizes):
    """Streaming recorders (and ffmpeg writing to a pipe) leave 0 or
    0xFFFFFFFF: the samples run to the end, as every player reads them."""
    patched = _set_size(wav, b"data", *sizes)
    assert samples(rewritten(patched)) == samples(wav)


def test_ffmpeg_writing_to_a_pipe(corpus, tmp_path):
    """No sizes at all: a WAV's are 0xFFFFFFFF, an AIFF's 0 (ffmpeg cannot
    read that AIFF back; the rewrite can)."""
    for fmt in ("wav", "aiff"):
        piped = run("ffmpeg", "-v", "error", *SINE, *META, "-c:a", "pcm_s16le" if fmt == "wav"
                    else "pcm_s16be", "-f", fmt, "pipe:1").stdout
        out = tmp_path / f"piped.{fmt}"
        out.write_bytes(rewritten(piped))
        assert planted_in_bytes(out.read_bytes()) == []
        assert len(samples(out.read_bytes())) == 48000 * 2
    assert decoded(tmp_path / "piped.aiff") == decoded(tmp_path / "piped.wav")


def test_a_recording_cut_short_keeps_its_whole_frames(wav, tmp_path):
    cut = wav[:len(wav) - 10001]  # inside the data, mid-frame
    out = rewritten(cut)
    kept = samples(out)
    assert len(kept) % 2 == 0 and bytes(samples(wav)).startswith(kept)
    assert len(kept) == len(samples(wav)) - 10002


def test_cut_short_before_the_samples_goes_to_ffmpeg(wav, corpus, sanitized):
    at = wav.index(b"LIST") + 20
    assert plan_of(wav[:at]) == "ffmpeg"
    cut = corpus.path("cut-header.wav")
    cut.write_bytes(wav[:at])
    result, out = sanitized(cut)
    assert not result.ok and out is None  # nothing to play: not cleaned, offered as it is
    result, _ = sanitized(cut, media_memory=64)
    assert result.reason == "too large to clean in memory (a layout only ffmpeg cleans)"


def test_odd_chunks_with_and_without_their_pad_byte(wav):
    odd = b"INFO" + struct.pack("<4sI", b"ICMT", 13) + b"Kyiv street 5"  # 25 bytes
    for pad in (True, False):
        out = rewritten(with_chunks(wav, before=chunk(b"LIST", odd, pad=pad)))
        assert samples(out) == samples(wav) and b"Kyiv" not in out


def test_a_list_that_says_it_is_shorter_than_it_is_loses_its_items_all_the_same(wav):
    """Its items are then read as chunks of their own: dropped as well."""
    items = chunk(b"IART", AUTHOR.encode() + b"\0") + chunk(b"ICMT", b"Kyiv street 5\0")
    liar = with_chunks(wav, before=struct.pack("<4sI", b"LIST", 4) + b"INFO" + items)
    plan = plan_of(liar)
    assert isinstance(plan, iff.Plan) and {"chunk:IART", "chunk:ICMT"} <= set(plan.removed)
    out = rewritten(liar)
    assert planted_in_bytes(out) == [] and samples(out) == samples(wav)


def test_bytes_hidden_in_a_format_chunk_are_not_kept(wav):
    """The format chunk is written anew from its fields: what a writer put
    past them does not follow."""
    at, n = next((at, n) for kind, at, n in walk(wav) if kind == b"fmt ")
    fmt = chunk(b"fmt ", wav[at:at + 16] + bytes(2) + AUTHOR.encode())
    hidden = wav[:at - 8] + fmt + wav[at + n:]
    hidden = hidden[:4] + struct.pack("<I", len(hidden) - 8) + hidden[8:]
    plan = plan_of(hidden)
    assert isinstance(plan, iff.Plan) and "chunk:fmt :extra bytes" in plan.removed
    out = rewritten(hidden)
    assert AUTHOR.encode() not in out and samples(out) == samples(wav)


def test_chunks_after_the_samples_and_a_second_data_chunk_are_dropped(wav):
    after = chunk(b"data", AUTHOR.encode()) + chunk(b"LIST", b"INFO" + chunk(
        b"IART", AUTHOR.encode() + b"\0")) + chunk(b"fmt ", bytes(16))
    plan = plan_of(with_chunks(wav, after=after))
    assert isinstance(plan, iff.Plan) and "chunks after the samples" in plan.removed
    out = rewritten(with_chunks(wav, after=after))
    assert AUTHOR.encode() not in out and samples(out) == samples(wav)


def test_the_format_after_the_samples_is_read_in_a_second_pass(wav, corpus, sandbox,
                                                               tmp_path):
    """Legal, rare: the upload is read again rather than held."""
    chunks = {kind: wav[at - 8:at + n + (n & 1)] for kind, at, n in walk(wav)}
    reordered = corpus.path("late-format.wav")
    body = chunks[b"LIST"] + chunks[b"data"] + chunks[b"fmt "]
    reordered.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    spool, result = _clean(sandbox, reordered, **NO_MEMORY_FILES)
    try:
        assert result.ok and result.tool == "" and spool.reads == 2, result.reason
        out = b"".join(result.spool.chunks())
    finally:
        result.close()
    assert samples(out) == samples(wav) and planted_in_bytes(out) == []


def test_what_the_rewrite_does_not_vouch_for_goes_to_ffmpeg(wav):
    fmt = next(at for kind, at, _ in walk(wav) if kind == b"fmt ")
    second_format = with_chunks(wav, before=wav[fmt - 8:fmt + 16])
    lying = with_chunks(wav, before=chunk(b"JUNK", bytes(8))[:4] + struct.pack("<I", 10 ** 8))
    adpcm = bytearray(wav)
    struct.pack_into("<H", adpcm, fmt, 2)  # MS ADPCM: compressed
    byte_rate = bytearray(wav)
    struct.pack_into("<I", byte_rate, fmt + 8, 1234)  # disagrees with rate x block
    many = with_chunks(wav, before=chunk(b"JUNK", b"") * (iff.MAX_CHUNKS + 1))
    for patched in (second_format, lying, bytes(adpcm), bytes(byte_rate), many):
        assert plan_of(patched) == "ffmpeg"


def test_a_compressed_wav_too_large_for_memory_files_is_refused_plainly(corpus, sanitized):
    adpcm = _ffmpeg(corpus, "adpcm.wav", *META, "-c:a", "adpcm_ms")
    result, out = sanitized(adpcm)
    assert result.ok and result.tool.startswith("ffmpeg") and leftovers(out) == []
    result, out = sanitized(adpcm, media_memory=1024)
    assert not result.ok and not result.hostile and out is None
    assert result.reason == "too large to clean in memory (a layout only ffmpeg cleans)"


def test_bw64_comes_out_as_a_plain_wav(corpus):
    rf64 = bytearray(_ffmpeg(corpus, "to-bw64.wav", *META, "-rf64", "always").read_bytes())
    assert rf64[:4] == b"RF64"
    rf64[:4] = b"BW64"
    out = rewritten(bytes(rf64))
    assert out[:4] == b"RIFF" and samples(out) == samples(
        rewritten(corpus.path("to-bw64.wav").read_bytes()))


@needs_sox
def test_aiff_hiding_bytes_in_its_sound_chunk_loses_them(corpus):
    """An SSND offset skips bytes before the samples; COMM may count fewer
    frames than SSND holds: neither is sound, and neither is kept."""
    data = _sox(corpus, "hiding.aiff", "-r", "8000", "-c", "1", "-b", "16").read_bytes()
    _, at, n = next(c for c in walk(data) if c[0] == b"SSND")
    secret = AUTHOR.encode()
    hidden = (data[:at - 4] + struct.pack(">II", n + 2 * len(secret), len(secret)) + bytes(4)
              + secret + data[at + 8:at + n] + secret + data[at + n:])
    hidden = bytearray(hidden)
    struct.pack_into(">I", hidden, 4, len(hidden) - 8)
    out = rewritten(bytes(hidden))
    assert secret not in out and samples(out) == samples(data)
    plan = plan_of(bytes(hidden))
    assert {"chunk:SSND:offset bytes",
            "chunk:SSND:bytes after the frames COMM counts"} <= set(plan.removed)


@needs_sox
def test_no_header_byte_makes_the_rewriter_crash_or_overreach(corpus):
    """Random damage to the headers: a plan within the file, whose output
    holds only the kept chunks, or a hand-over to ffmpeg; nothing else."""
    bases = [_python_wave(corpus).read_bytes(),
             _patched(corpus, _sox(corpus, "fuzz.aiff", "-r", "8000", "-c", "1", "-b", "16"),
                      "fuzz-marks.aiff", before=aiff_extras()).read_bytes()]
    rng = random.Random(15)
    for n in range(600):
        data = bytearray(bases[n % 2])
        header = next(at for kind, at, _ in walk(data) if kind in (b"data", b"SSND"))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(header + 8)] = rng.randrange(256)
        if rng.random() < 0.2:
            del data[rng.randrange(len(data)):]
        plan = plan_of(bytes(data))
        if plan == "ffmpeg":
            continue
        assert plan.start + plan.samples <= len(data) and plan.samples > 0
        out = plan.head + bytes(plan.samples) + plan.tail
        kept = WAV_KEPT if out[:4] == b"RIFF" else AIFF_KEPT
        assert {kind for kind, _, _ in walk(out)} <= kept
        assert planted_in_bytes(plan.head) == []
