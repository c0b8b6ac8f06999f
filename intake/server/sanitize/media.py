"""Video, and the audio that mutagen does not handle (WAV, AIFF, M4A).

MP4, MOV, M4A and 3GP are rewritten box by box (intake.server.sanitize.mp4,
and .mp4frag for fragmented ones, read twice),
WAV and AIFF chunk by chunk (intake.server.sanitize.iff), and AVI edited in
place (intake.server.sanitize.avi), where those modules vouch for the file,
as the upload streams through: never held whole, whatever its size.
Everything else here goes through ffmpeg stream copy: no re-encoding, only
the video and audio streams. ffmpeg's copy of an AVI would keep each MJPEG
frame's EXIF, and a camera's `strd` EXIF as the codec configuration of a
stream that has none: so every `strd` id ahead of the frames is made `JUNK`
in the upload's memory file before ffmpeg reads it, and ffmpeg's copy is
then edited where it is, in its own memory file, as the upload would have
been (intake.server.sanitize.avi); a copy the edit does not vouch for is
refused. A Motion JPEG stream's frames carry a photo's EXIF, XMP, IPTC and
comment just the same in any container: ffmpeg's `filter_units` drops each
frame's APP1-APP15 and COM segments as it copies (FRAME_FILTER). The check of
the copy looks for both on its own (intake.server.sanitize.verify).

`-map 0` would also copy data tracks, and GoPro GPMF and Apple mebx tracks
carry GPS; `-map 0:V` takes video but not attached pictures (cover art).
`-map_metadata -1`, `-map_chapters -1` and bit-exact flags drop container and
stream tags, creation times and the encoder tag. ffmpeg's MP4 demuxer seeks
in its input (the index may be at the end) and its muxers seek in their
output, so both sides are memory files (memfd), never a path on disk, and
their size is capped (Limits.media_memory); Matroska and WebM, read
forward, come from a pipe, so that only the copy is held.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import functools
import itertools
import json
import os
import signal
import struct
import subprocess
import threading

from intake.server.sanitize import avi, iff, jpeg_frames, mp4, mp4frag, verify
from intake.server.sanitize.base import Cleaned, Refused, field_name
from intake.server.sanitize.stream import Input, write_all
from intake.server.sanitize.verify import FEED_AFTER_INDEX

CHUNK = 1024 * 1024
PR_SET_PDEATHSIG = 1
# The container each family is written back into, decided by content.
MUXERS = {"wav": "wav", "aiff": "aiff", "mkv": "matroska", "webm": "webm", "avi": "avi"}
MP4_BRANDS = {b"qt  ": ("mov", "video/quicktime"), b"M4A ": ("ipod", "audio/mp4"),
              b"M4B ": ("ipod", "audio/mp4"), b"3gp": ("3gp", "video/3gpp"),
              b"3g2": ("3g2", "video/3gpp2")}
# Families rewritten here as they stream through, where the rewrite vouches
# for the file (mp4.py, iff.py, avi.py); ffmpeg cleans the rest.
REWRITTEN = frozenset({"mp4", "wav", "aiff", "avi"})
# Containers whose demuxer and muxer work on pipes: one too large for the
# memory files streams through ffmpeg instead (_piped).
PIPED = frozenset({"mkv", "webm"})
PROBED = FEED_AFTER_INDEX  # of the upload and of the copy: where ffprobe finds streams and tags
COPY_ARGS = ("-map", "0:V?", "-map", "0:a?", "-map_metadata", "-1", "-map_chapters", "-1",
             "-c", "copy", "-fflags", "+bitexact", "-flags:v", "+bitexact",
             "-flags:a", "+bitexact")
# JPEG's markers APP1-APP15 (0xE1-0xEF) and COM (0xFE): what a camera writes
# into every frame. APP0 (JFIF, AVI1) says how to decode the frame and stays.
FRAME_FILTER = "filter_units=remove_types=225-239|254"
KINDS = {"wav": "audio/x-wav", "aiff": "audio/x-aiff", "mkv": "video/x-matroska",
         "webm": "video/webm", "avi": verify.AVI}


def _muxer(family: str, head: bytes) -> tuple[str, str]:
    if family != "mp4":
        return MUXERS[family], KINDS[family]
    brand = head[8:12]
    for prefix, answer in MP4_BRANDS.items():
        if brand.startswith(prefix):
            return answer
    return "mp4", "video/mp4"


def _dies_with_parent() -> None:
    """Run in ffmpeg's process before it starts: if this cleaner is killed
    (with its zygote), ffmpeg goes too, rather than run on unwatched. The
    cleaner has no threads, so this runs safely between fork and exec."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _probe_start(inp: Input) -> tuple[list[str], str, dict]:
    """_probe on the upload's first PROBED bytes, left to be read again: a
    Matroska file's tags, streams and duration are in its start."""
    seen = _memory_file("seen", inp.peek(PROBED))
    try:
        return _probe(seen)
    finally:
        os.close(seen)


def _frame_filters(info: dict) -> list[str]:
    """ffmpeg's arguments that clean the frames of each Motion JPEG stream
    ffprobe saw. COPY_ARGS maps `0:V` first, so output video stream i is the
    i-th video stream that is not a picture attached to the file."""
    videos = [s for s in info.get("streams", []) if s.get("codec_type") == "video"
              and not any(s.get("disposition", {}).get(k)
                          for k in ("attached_pic", "timed_thumbnails"))]
    return [arg for i, s in enumerate(videos) if s.get("codec_name") == "mjpeg"
            for arg in (f"-bsf:v:{i}", FRAME_FILTER)]


def _probe(fd: int) -> tuple[list[str], str, dict]:
    """What ffprobe sees in the memory file `fd`: the names of the tags and of
    the streams a copy drops; ffmpeg's version; ffprobe's whole view, for the
    check of the cleaned copy and for which streams are Motion JPEG."""
    probe = subprocess.Popen(["ffprobe", "-v", "quiet", "-print_format", "json",
                              "-show_program_version", "-show_format", "-show_streams",
                              "-show_chapters", f"/dev/fd/{fd}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, pass_fds=(fd,),
                             preexec_fn=_dies_with_parent)  # noqa: PLW1509 - no threads here
    try:
        out, _ = probe.communicate(timeout=60)
        info = json.loads(out or b"{}")
    except (ValueError, subprocess.TimeoutExpired) as exc:
        probe.kill()
        raise Refused("ffprobe could not read the file") from exc
    version = "ffmpeg " + str(info.get("program_version", {}).get("version", "?"))
    names = [f"container:{k}" for k in info.get("format", {}).get("tags", {})]
    for stream in info.get("streams", []):
        kind = stream.get("codec_type", "?")
        if kind in ("video", "audio") and not stream.get("disposition", {}).get("attached_pic"):
            names += [f"{kind} stream:{k}" for k in stream.get("tags", {})
                      if k not in ("language", "handler_name", "vendor_id")]
        else:
            tag = stream.get("codec_tag_string") or stream.get("codec_name") or kind
            names.append(f"{kind} stream ({field_name(tag, 16)})")
    if info.get("chapters"):
        names.append("chapters")
    return [field_name(n) for n in dict.fromkeys(names)], version, info


def clean(family: str, inp: Input, size: int, cap: int, memory: int | None = None) -> Cleaned:
    """`inp`: the upload, of which the first bytes may have been peeked at to
    tell the type. `memory`: the most the memory files may hold at once
    (Limits.media_memory), when ffmpeg must clean it."""
    if family in REWRITTEN:
        try:
            if family == "mp4":
                return _mp4(inp, size, cap)
            return _avi(inp, size, cap) if family == "avi" else _chunks(inp, size, cap)
        except (mp4.Unsupported, MemoryError):  # iff's and avi's are mp4's
            # ffmpeg below, in its own process and memory, on the upload read again
            if memory is not None and 2 * size > memory:
                raise Refused("too large to clean in memory (a layout only ffmpeg "
                              "cleans)") from None
            inp.again()
    if family in PIPED and memory is not None and size > memory:
        return _piped(family, inp, size, cap)
    return _ffmpeg(family, inp, size, cap, memory)


def _piped(family: str, inp: Input, size: int, cap: int) -> Cleaned:
    """ffmpeg's stream copy between pipes, for a Matroska or WebM file too
    large for the memory files: the upload goes to ffmpeg's stdin, its copy
    from ffmpeg's stdout to the parent in pieces (the frame's length is not
    known beforehand), and to a second ffprobe that reads every packet. A
    muxer that cannot seek back writes no duration and no index (cues) into
    the copy: it plays, and seeks more slowly. The check comes at the end
    (see _pump)."""
    muxer, kind = MUXERS[family], KINDS[family]
    before = _probe_start(inp)
    filters = _frame_filters(before[2])
    copy = subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
                             "-i", "pipe:0", *COPY_ARGS, *filters, "-f", muxer, "pipe:1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=_dies_with_parent)  # noqa: PLW1509 - no threads yet
    listing = os.memfd_create("packets", os.MFD_CLOEXEC)
    packets = _packet_lister(listing)
    cleaned = Cleaned(b"", [], tool="", detected_type=kind, chunked=True)
    if filters:
        before[0].append(jpeg_frames.NOTE)
    cleaned.rest = functools.partial(_pump, cleaned, inp, size, cap, before, (copy, packets),
                                     listing)
    return cleaned


def _pump(cleaned: Cleaned, inp: Input, size: int, cap: int,
          before: tuple[list[str], str, dict],
          procs: tuple[subprocess.Popen, subprocess.Popen], listing: int, out: int) -> None:
    """Feeds ffmpeg from stdin in a thread (ffmpeg reads and writes at once),
    and sends its copy on in pieces, each a 4-byte length and its bytes,
    until a zero length. Then checks the copy as for every video: ffprobe's
    view of its start (streams, tags) and the duration its packets span,
    against ffprobe's view of the upload's start (`before`: what
    _probe made of it); and, as it goes, that no frame carries
    JPEG metadata. Raises Refused when the copy fails its check."""
    copy, packets = procs
    head = _memory_file("head", b"")
    frames = verify.FrameMetadata()
    feeder = _Feeder(inp, size, copy)
    total, teeing = 0, True
    try:
        while piece := os.read(copy.stdout.fileno(), CHUNK):  # type: ignore[union-attr]
            total += len(piece)
            if total > cap:
                raise Refused("cleaned file too large")
            frames.feed(piece)  # a stream copy keeps Motion JPEG frames' EXIF
            write_all(out, struct.pack(">I", len(piece)) + piece)
            if teeing:
                try:
                    write_all(packets.stdin.fileno(), piece)  # type: ignore[union-attr]
                except BrokenPipeError:
                    teeing = False  # ffprobe stopped: its exit status says so below
            if total - len(piece) < PROBED:
                write_all(head, piece[:PROBED - (total - len(piece))])
        write_all(out, struct.pack(">I", 0))
        packets.stdin.close()  # type: ignore[union-attr]
        feeder.done()
        if copy.wait() != 0:
            raise Refused(f"ffmpeg could not copy the streams (exit status {copy.returncode})")
        if total == 0:
            raise Refused("no audio or video stream")
        if packets.wait(timeout=60) != 0 or not teeing:
            raise verify.Failed("does not open")
        removed, version, original = before
        after, _ = verify.probe(head)
        after.setdefault("format", {})["duration"] = _span(listing)
        verify.compare(after, original)
        cleaned.removed = removed + ["creation times", "encoder tag"]
        cleaned.tool = version
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        os.close(head)
        os.close(listing)


def _run_copy(command: list[str], inp: Input, size: int, fds: tuple[int, ...],
              streamed: bool) -> int:
    """ffmpeg's exit status; `streamed`: the rest of the upload goes to its
    stdin from a thread, as it reads."""
    if not streamed:
        return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, pass_fds=fds, check=False,
                              preexec_fn=_dies_with_parent).returncode  # noqa: PLW1509
    copy = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, pass_fds=fds,
                            preexec_fn=_dies_with_parent)  # noqa: PLW1509 - no threads yet
    try:
        feeder = _Feeder(inp, size, copy)
        code = copy.wait()
        feeder.done()
    finally:
        if copy.poll() is None:
            copy.kill()
    return code


class _Feeder:
    """The rest of the upload to ffmpeg's stdin, from a thread: ffmpeg reads
    and writes at once. done() waits for it and raises what went wrong
    there (the upload cut short, ffmpeg no longer reading)."""

    def __init__(self, inp: Input, size: int, ffmpeg: subprocess.Popen):
        self._failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._feed, args=(inp, size, ffmpeg.stdin),
                                        daemon=True)
        self._thread.start()

    def _feed(self, inp: Input, size: int, stdin) -> None:
        try:
            inp.copy(size - inp.pos, stdin.fileno())
        except BrokenPipeError:
            self._failures.append(Refused("ffmpeg stopped reading"))
        except BaseException as exc:  # noqa: BLE001 - the upload cut short, or worse
            self._failures.append(exc)
        finally:
            stdin.close()

    def done(self) -> None:
        self._thread.join()
        if self._failures:
            raise self._failures[0]


def _packet_lister(listing: int) -> subprocess.Popen:
    """An ffprobe that reads a copy from its stdin and lists every packet's
    time and duration into the memory file `listing` (see _span)."""
    return subprocess.Popen(["ffprobe", "-v", "quiet", "-show_entries",
                             "packet=pts_time,duration_time", "-of", "csv=p=0", "pipe:0"],
                            stdin=subprocess.PIPE, stdout=listing, stderr=subprocess.DEVNULL,
                            preexec_fn=_dies_with_parent)  # noqa: PLW1509 - no threads here


def _span(listing: int) -> float:
    """The seconds the copy's packets span, from ffprobe's list of them."""
    os.lseek(listing, 0, os.SEEK_SET)
    start, end, rest = None, 0.0, b""
    while piece := os.read(listing, CHUNK):
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            fields = line.split(b",")
            try:
                at = float(fields[0])
                length = float(fields[1]) if len(fields) > 1 and fields[1] else 0.0
            except ValueError:
                continue  # no timestamp (N/A)
            start = at if start is None else min(start, at)
            end = max(end, at + length)
    return end - start if start is not None else 0.0


def _memory_file(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    write_all(fd, data)
    return fd


def _mp4(inp: Input, size: int, cap: int) -> Cleaned:
    """The box rewrite, streamed: the index is read and rebuilt, then the
    kept chunks go from stdin to stdout as they come, in the same pass when
    the index comes first, else in a second one; a Motion JPEG frame is read
    whole and its metadata segments zeroed on the way. The first
    FEED_AFTER_INDEX bytes are held back, for the check, until the frame
    goes out."""
    kind = _muxer("mp4", inp.peek(64))[1]
    try:
        plan, one_pass = mp4.scan(inp, size)
    except mp4.Fragmented as found:
        return _fragments(inp, size, cap, kind, found)
    if plan.length > cap:
        raise Refused("cleaned file too large")
    if any(n > jpeg_frames.MAX_FRAME for _, n in plan.frames):
        raise Refused("a video frame too large to clean")
    if not one_pass:
        inp.again()
    pieces = collections.deque(jpeg_frames.pieces(plan.ranges, plan.frames))
    removed = list(plan.removed)
    held = bytearray()
    while pieces and len(held) < FEED_AFTER_INDEX:
        offset, length, frame = pieces.popleft()
        inp.skip(offset - inp.pos)
        if frame:
            held += _scrubbed(inp, length, removed)
            continue
        take = min(length, FEED_AFTER_INDEX - len(held))
        held += inp.read(take)
        if take < length:
            pieces.appendleft((offset + take, length - take, False))

    def rest(out: int) -> None:
        for offset, length, frame in pieces:
            inp.skip(offset - inp.pos)
            if frame:
                write_all(out, _scrubbed(inp, length, None))
            else:
                inp.copy(length, out)

    # What the copy must keep, from the original's index: ffprobe then reads
    # the copy's index and first media data (starting it costs more than the
    # rewrite).
    before = {"streams": [{"codec_type": k} for k in plan.streams],
              "format": {"duration": plan.duration}}
    return Cleaned(plan.head + bytes(held), removed, tool="", detected_type=kind,
                   before=before, rest=rest, rest_length=sum(n for _, n, _ in pieces))


def _scrubbed(inp: Input, length: int, removed: list[str] | None) -> bytes:
    """A sample of a Motion JPEG track, its metadata segments zeroed when it
    is a JPEG (format B's are not); named in `removed` when given."""
    frame = bytearray(inp.read(length))
    if jpeg_frames.is_jpeg(frame) and jpeg_frames.scrub(frame) and removed is not None \
            and jpeg_frames.NOTE not in removed:
        removed.append(jpeg_frames.NOTE)
    return bytes(frame)


def _fragments(inp: Input, size: int, cap: int, kind: str, found: mp4.Fragmented) -> Cleaned:
    """The rewrite of a fragmented MP4 (intake.server.sanitize.mp4frag),
    streamed: a first pass checks every fragment and adds up the cleaned
    length, the second writes the fragments from stdin to stdout as they
    come. The first FEED_AFTER_INDEX bytes after the index are held back,
    for the check, until the frame goes out."""
    movie = mp4frag.scan(inp, size, found)
    if len(movie.head) + movie.length > cap:
        raise Refused("cleaned file too large")
    inp.again()
    pieces = mp4frag.pieces(inp, size, movie)
    held = bytearray()
    pending: tuple[int, int] | None = None
    for piece in pieces:
        if isinstance(piece, bytes):
            held += piece
        else:
            offset, length = piece
            inp.skip(offset - inp.pos)
            take = min(length, max(0, FEED_AFTER_INDEX - len(held)))
            held += inp.read(take)
            if take < length:
                pending = (offset + take, length - take)
        if len(held) >= FEED_AFTER_INDEX:
            break
    left = movie.length - len(held)
    data = movie.head + bytes(held)

    def rest(out: int) -> None:
        # The check below reads the copy's start; an empty index states no
        # duration, so a second ffprobe reads every packet of the whole copy
        # as it goes out, and its span must be the original fragments'.
        listing = os.memfd_create("packets", os.MFD_CLOEXEC)
        packets = _packet_lister(listing)
        try:
            tee = _Tee(out, packets.stdin.fileno())  # type: ignore[union-attr]
            tee.copy_only(data)  # already sent, ahead of this
            for piece in itertools.chain([pending] if pending else [], pieces):
                if isinstance(piece, bytes):
                    tee.write(piece)
                else:
                    inp.skip(piece[0] - inp.pos)
                    for _ in range(0, piece[1], CHUNK):
                        tee.write(inp.read(min(CHUNK, piece[0] + piece[1] - inp.pos)))
            if tee.sent != left:
                raise Refused("the upload changed between its readings")
            packets.stdin.close()  # type: ignore[union-attr]
            if packets.wait(timeout=60) != 0 or not tee.teeing:
                raise verify.Failed("does not open")
            span, was = _span(listing), movie.span
            if abs(span - was) > max(0.5, was * 0.02):
                raise verify.Failed("duration changed")
        finally:
            if packets.poll() is None:
                packets.kill()
            os.close(listing)

    # ffprobe reads the copy's index and first fragments; the duration of a
    # fragmented file is in its index only when the recorder wrote it there.
    before = {"streams": [{"codec_type": k} for k in movie.streams],
              "format": {"duration": movie.duration}}
    return Cleaned(data, movie.removed, tool="", detected_type=kind,
                   before=before, rest=rest, rest_length=left)


class _Tee:
    """Writes to `out`, and the same bytes to a checker's pipe for as long as
    it reads them (it may stop early: its exit status then says why)."""

    def __init__(self, out: int, checker: int):
        self.out, self.checker = out, checker
        self.sent, self.teeing = 0, True

    def copy_only(self, data: bytes) -> None:
        if self.teeing:
            try:
                write_all(self.checker, data)
            except BrokenPipeError:
                self.teeing = False

    def write(self, data: bytes) -> None:
        write_all(self.out, data)
        self.sent += len(data)
        self.copy_only(data)


def _chunks(inp: Input, size: int, cap: int) -> Cleaned:
    """The chunk rewrite of a WAV or AIFF file (intake.server.sanitize.iff),
    streamed: the new header, then the samples from stdin to stdout as they
    come, read again from the start when the format came after them. The
    first FEED_AFTER_INDEX bytes of samples are held back, for the check,
    until the frame goes out; the chunks after the samples are not read."""
    plan, one_pass = iff.scan(inp, size)
    if plan.length > cap:
        raise Refused("cleaned file too large")
    if not one_pass:
        inp.again()
        inp.skip(plan.start)
    held = inp.read(min(plan.samples, FEED_AFTER_INDEX))
    left = plan.samples - len(held)

    def rest(out: int) -> None:
        inp.copy(left, out)
        write_all(out, plan.tail)

    before = {"streams": [{"codec_type": "audio", "sample_rate": plan.rate,
                           "channels": plan.channels}],
              "format": {"duration": plan.duration}}
    return Cleaned(plan.head + held, plan.removed, tool="", detected_type=plan.kind,
                   before=before, rest=rest, rest_length=left + len(plan.tail), sized=True)


def _avi(inp: Input, size: int, cap: int) -> Cleaned:
    """The in-place edit of an AVI file (intake.server.sanitize.avi),
    streamed: the header and the first FEED_AFTER_INDEX bytes of frames are
    held back, for the check, until the frame goes out; the rest is edited
    as it goes from stdin to stdout, and is as long as the upload."""
    if size > cap:
        raise Refused("cleaned file too large")
    walk = avi.Walk(inp, size)
    held = walk.take(FEED_AFTER_INDEX)
    # What the copy must keep, from the original's headers: the check's
    # ffprobe reads the copy's, with the first frames.
    before = {"streams": [{"codec_type": k} for k in walk.streams],
              "format": {"duration": walk.duration}}
    return Cleaned(held, list(dict.fromkeys(walk.removed)), tool="",
                   detected_type=KINDS["avi"], before=before, rest=walk.rest,
                   rest_length=size - len(held), sized=True)


def _edit_avi(dst: int, length: int) -> list[str]:
    """ffmpeg's AVI copy, edited where it is in its memory file as the
    upload would have been (intake.server.sanitize.avi): the stream copy
    keeps every MJPEG frame's EXIF. ffmpeg writes a layout the edit reads
    (a JUNK placeholder for OpenDML's index, under 1 GiB); a copy it does
    not vouch for is refused, never kept as ffmpeg left it."""
    try:
        walk = avi.edit(dst, length)
    except avi.Unsupported as exc:
        raise Refused("ffmpeg's copy could not be edited") from exc
    return walk.removed


def _ffmpeg(family: str, inp: Input, size: int, cap: int, memory: int | None) -> Cleaned:
    """ffmpeg stream copy into a memory file: from a second memory file that
    holds the upload, for demuxers that seek in their input (MP4's, whose
    index may be at the end, and the rest); from a pipe for Matroska and
    WebM, read forward, so that only the copy is held in memory."""
    streamed = family in PIPED
    if memory is not None and (1 if streamed else 2) * size > memory:
        raise Refused("too large to clean in memory")
    src = dst = -1
    hidden = 0
    try:
        if streamed:
            muxer, kind = MUXERS[family], KINDS[family]
            removed, version, before = _probe_start(inp)
        else:
            src = os.memfd_create("upload", os.MFD_CLOEXEC)
            try:
                inp.copy(size - inp.pos, src)
            except OSError as exc:
                if exc.errno == errno.EFBIG:
                    raise Refused("memory file refused the upload") from exc
                raise
            muxer, kind = _muxer(family, os.pread(src, 64, 0))
            hidden = avi.hide_stream_data(src, os.fstat(src).st_size) if family == "avi" else 0
            # Read first: which streams are Motion JPEG decides ffmpeg's arguments.
            removed, version, before = _probe(src)
        dst = os.memfd_create("cleaned", os.MFD_CLOEXEC)  # only ffmpeg needs one
        filters = _frame_filters(before)
        if filters:
            removed.append(jpeg_frames.NOTE)
        command = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
                   "-i", "pipe:0" if streamed else f"/dev/fd/{src}", *COPY_ARGS, *filters,
                   "-f", muxer, f"/dev/fd/{dst}"]
        code = _run_copy(command, inp, size, (dst,) if streamed else (src, dst), streamed)
        if code != 0:
            raise Refused(f"ffmpeg could not copy the streams (exit status {code})")
        length = os.lseek(dst, 0, os.SEEK_END)
        if length == 0 or length > cap:
            raise Refused("cleaned file too large" if length else "no audio or video stream")
        if hidden:
            removed.append("chunk:strd")
        if family == "avi":
            removed += _edit_avi(dst, length)
        os.lseek(dst, 0, os.SEEK_SET)
        cleaned = Cleaned(b"", removed + ["creation times", "encoder tag"], tool=version,
                          detected_type=kind, fd=dst, ranges=[(0, length)], before=before)
        dst = -1  # now the caller's to copy out and close
        return cleaned
    finally:
        if src >= 0:
            os.close(src)
        if dst >= 0:
            os.close(dst)
