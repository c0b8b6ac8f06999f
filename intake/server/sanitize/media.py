"""Video and the audio that mutagen does not handle (WAV, AIFF, M4A).

MP4, MOV, M4A and 3GP are rewritten box by box (intake.server.sanitize.mp4) where
that module vouches for the file; everything else here goes through ffmpeg
stream copy: no re-encoding, only the video and audio streams.

`-map 0` would also copy data tracks, and GoPro GPMF and Apple mebx tracks
carry GPS; `-map 0:V` takes video but not attached pictures (cover art).
`-map_metadata -1`, `-map_chapters -1` and bit-exact flags drop container and
stream tags, creation times and the encoder tag. MP4 and MOV need to seek in
their input (the index may be at the end) and their muxer seeks in its
output, so both sides are memory files (memfd): never a path on disk.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import subprocess
from typing import BinaryIO

from intake.server.sanitize import mp4
from intake.server.sanitize.base import Cleaned, Refused, field_name

CHUNK = 1024 * 1024
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


def clean(family: str, source: BinaryIO, size: int, cap: int, head: bytes = b"",
          memory: int | None = None) -> Cleaned:
    """`head`: the first bytes, already read from `source` to tell the type.
    `memory`: the most the memory files may hold at once (Limits.media_memory)."""
    if memory is not None and size > memory:
        raise Refused("too large to clean in memory")
    src = os.memfd_create("upload", os.MFD_CLOEXEC)
    dst = -1
    try:
        _write_all(src, head)
        _fill(src, source)
        if os.fstat(src).st_size != size:  # the parent stopped short
            raise Refused("the upload arrived incomplete")
        muxer, kind = _muxer(family, os.pread(src, 64, 0))
        if family == "mp4":
            try:
                plan = mp4.rewrite(src, size)
            except (mp4.Unsupported, MemoryError):
                pass  # ffmpeg below, in its own process and memory
            else:
                if plan.length > cap:
                    raise Refused("cleaned file too large")
                # What the copy must keep, from the original's index: ffprobe
                # then reads the copy (starting it costs more than the rewrite).
                before = {"streams": [{"codec_type": k} for k in plan.streams],
                          "format": {"duration": plan.duration}}
                cleaned = Cleaned(plan.head, plan.removed, tool="", detected_type=kind,
                                  fd=src, ranges=plan.ranges, before=before)
                src = -1  # the caller copies the kept ranges out, then closes it
                return cleaned
        if memory is not None and 2 * size > memory:  # the upload and ffmpeg's copy
            raise Refused("too large to clean in memory")
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


def _fill(fd: int, source: BinaryIO) -> None:
    """Copies the upload into the memory file; splice() moves pipe pages
    without copying them through this process where the kernel can."""
    try:
        while os.splice(source.fileno(), fd, CHUNK):
            pass
        return
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise Refused("memory file refused the upload") from exc
        # not a pipe (a file, in tests): copy by hand from where splice stopped
    while piece := source.read(CHUNK):
        _write_all(fd, piece)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise Refused("memory file refused the upload")
        view = view[written:]
