"""Video and the audio that mutagen does not handle (WAV, AIFF, M4A).

MP4, MOV, M4A and 3GP are rewritten box by box (intake.server.sanitize.mp4) where
that module vouches for the file, as the upload streams through: never held
whole, whatever its size. Everything else here goes through ffmpeg stream
copy: no re-encoding, only the video and audio streams.

`-map 0` would also copy data tracks, and GoPro GPMF and Apple mebx tracks
carry GPS; `-map 0:V` takes video but not attached pictures (cover art).
`-map_metadata -1`, `-map_chapters -1` and bit-exact flags drop container and
stream tags, creation times and the encoder tag. ffmpeg's MP4 demuxer seeks
in its input (the index may be at the end) and its muxers seek in their
output, so both sides are memory files (memfd), never a path on disk, and
their size is capped (Limits.media_memory).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import subprocess

from intake.server.sanitize import mp4
from intake.server.sanitize.base import Cleaned, Refused, field_name
from intake.server.sanitize.stream import Input
from intake.server.sanitize.verify import FEED_AFTER_INDEX

PR_SET_PDEATHSIG = 1
# The container each family is written back into, decided by content.
MUXERS = {"wav": "wav", "aiff": "aiff", "mkv": "matroska", "webm": "webm", "avi": "avi"}
MP4_BRANDS = {b"qt  ": ("mov", "video/quicktime"), b"M4A ": ("ipod", "audio/mp4"),
              b"M4B ": ("ipod", "audio/mp4"), b"3gp": ("3gp", "video/3gpp"),
              b"3g2": ("3g2", "video/3gpp2")}
KINDS = {"wav": "audio/x-wav", "aiff": "audio/x-aiff", "mkv": "video/x-matroska",
         "webm": "video/webm", "avi": "video/x-msvideo"}


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


def _probe(fd: int) -> subprocess.Popen:
    """ffprobe reads the same memory file while ffmpeg copies it (two cores)."""
    return subprocess.Popen(["ffprobe", "-v", "quiet", "-print_format", "json",
                             "-show_program_version", "-show_format", "-show_streams",
                             "-show_chapters", f"/dev/fd/{fd}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, pass_fds=(fd,),
                            preexec_fn=_dies_with_parent)  # noqa: PLW1509 - no threads here


def _removed_and_version(probe: subprocess.Popen) -> tuple[list[str], str, dict]:
    """Names of the tags and of the streams dropped; ffmpeg's version; what
    ffprobe saw, for the check of the cleaned copy."""
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
    if family == "mp4":
        try:
            return _mp4(inp, size, cap)
        except (mp4.Unsupported, MemoryError):
            # ffmpeg below, in its own process and memory, on the upload read again
            if memory is not None and 2 * size > memory:
                raise Refused("too large to clean in memory (a layout only ffmpeg "
                              "cleans)") from None
            inp.again()
    return _ffmpeg(family, inp, size, cap, memory)


def _mp4(inp: Input, size: int, cap: int) -> Cleaned:
    """The box rewrite, streamed: the index is read and rebuilt, then the
    kept chunks go from stdin to stdout as they come, in the same pass when
    the index comes first, else in a second one. The first FEED_AFTER_INDEX
    bytes are held back, for the check, until the frame goes out."""
    kind = _muxer("mp4", inp.peek(64))[1]
    plan, one_pass = mp4.scan(inp, size)
    if plan.length > cap:
        raise Refused("cleaned file too large")
    if not one_pass:
        inp.again()
    ranges = list(plan.ranges)
    held = bytearray()
    while ranges and len(held) < FEED_AFTER_INDEX:
        offset, length = ranges.pop(0)
        inp.skip(offset - inp.pos)
        take = min(length, FEED_AFTER_INDEX - len(held))
        held += inp.read(take)
        if take < length:
            ranges.insert(0, (offset + take, length - take))

    def rest(out: int) -> None:
        for offset, length in ranges:
            inp.skip(offset - inp.pos)
            inp.copy(length, out)

    # What the copy must keep, from the original's index: ffprobe then reads
    # the copy's index and first media data (starting it costs more than the
    # rewrite).
    before = {"streams": [{"codec_type": k} for k in plan.streams],
              "format": {"duration": plan.duration}}
    return Cleaned(plan.head + bytes(held), plan.removed, tool="", detected_type=kind,
                   before=before, rest=rest, rest_length=sum(n for _, n in ranges))


def _ffmpeg(family: str, inp: Input, size: int, cap: int, memory: int | None) -> Cleaned:
    """ffmpeg stream copy, between memory files."""
    if memory is not None and 2 * size > memory:  # the upload and ffmpeg's copy
        raise Refused("too large to clean in memory")
    src = os.memfd_create("upload", os.MFD_CLOEXEC)
    dst = -1
    try:
        try:
            inp.copy(size - inp.pos, src)
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise Refused("memory file refused the upload") from exc
            raise
        muxer, kind = _muxer(family, os.pread(src, 64, 0))
        dst = os.memfd_create("cleaned", os.MFD_CLOEXEC)  # only ffmpeg needs one
        probe = _probe(src)
        command = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y",
                   "-i", f"/dev/fd/{src}", "-map", "0:V?", "-map", "0:a?",
                   "-map_metadata", "-1", "-map_chapters", "-1", "-c", "copy",
                   "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                   "-f", muxer, f"/dev/fd/{dst}"]
        run = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, pass_fds=(src, dst), check=False,
                             preexec_fn=_dies_with_parent)  # noqa: PLW1509 - no threads here
        removed, version, before = _removed_and_version(probe)
        if run.returncode != 0:
            raise Refused(f"ffmpeg could not copy the streams (exit status {run.returncode})")
        length = os.lseek(dst, 0, os.SEEK_END)
        if length == 0 or length > cap:
            raise Refused("cleaned file too large" if length else "no audio or video stream")
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
