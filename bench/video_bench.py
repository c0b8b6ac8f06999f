"""Large videos through the sanitizer: time and peak memory for 1 and 2 GiB.

The videos are made by ffmpeg: a few seconds of real H.264 (noise, so that
it does not compress) and AAC, repeated by stream copy (`-stream_loop`)
until the file reaches its size, with a subtitle track of GPS fixes (as
drones write them), a location, a comment and a creation time. One MP4 has
its index at the end, as phones and ffmpeg write it (the cleaner reads the
upload twice), one at the start (once); the Matroska file goes through
ffmpeg between pipes.

Each is cleaned on the server's own path: from the upload's envelope, as
the form wrote it on arrival, to the cleaned copy's envelope, through a
warm sandbox's child. While it runs, every 20 ms, the resident memory of
each process under this one (the cleaner and ffprobe) is read from /proc,
and the shared memory of the machine (`Shmem` in /proc/meminfo: memory
files); this process's own peak is the worker's. The cleaned copy is then
checked: no planted value, the same streams and duration.

    python bench/video_bench.py [--sizes 1024,2040] [--repeat 3] [--work DIR]
                                [--append FILE]

`--append` replaces the "Large videos" section of FILE (bench/RESULTS-
sanitize.md), or adds it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sanitize.sanitize_corpus import LAT, LON, planted_in_bytes  # noqa: E402

MiB = 1024 * 1024
SECTION = "## Large videos"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, timeout=3600)


def make_video(work: Path, size_mib: int, layout: str) -> Path:
    """`layout`: "end" (index after the media data), "start" (index first),
    or "mkv" (Matroska)."""
    base = work / "base.mp4"
    if not base.exists():
        _run("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             "color=s=1280x720:r=30:d=6,noise=alls=40:allf=t+u", "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000:duration=6", "-c:v", "libx264",
             "-preset", "ultrafast", "-b:v", "40M", "-c:a", "aac", "-shortest", str(base))
    srt = work / "gps.srt"
    srt.write_text(f"1\n00:00:00,000 --> 00:00:05,000\nGPS {LAT} {LON}\n")
    path = work / f"video-{size_mib}-{layout}.{'mkv' if layout == 'mkv' else 'mp4'}"
    if not path.exists():
        _run("ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base),
             "-i", str(srt), "-map", "0:v", "-map", "0:a", "-map", "1", "-c", "copy",
             "-c:s", "srt" if layout == "mkv" else "mov_text",
             "-metadata", "creation_time=2024-03-01T10:11:12Z",
             "-metadata", f"location=+{LAT}+{LON}/", "-metadata", "comment=Kyiv street 5",
             "-t", f"{_seconds(base, size_mib * MiB - 4 * MiB):.2f}",
             *(["-movflags", "+faststart"] if layout == "start" else []), str(path))
    return path


def _seconds(base: Path, size: int) -> float:
    """How long the loop must run to make `size` bytes (-fs overshoots)."""
    return size / base.stat().st_size * _probe(base)[1]


def _probe(path: Path) -> tuple[list[str], float]:
    """Stream types, and the duration: the container's, else (a Matroska
    copy written to a pipe has none) the span of its packets."""
    info = json.loads(_run("ffprobe", "-v", "quiet", "-print_format", "json", "-show_format",
                           "-show_streams", str(path)).stdout)
    streams = sorted(s["codec_type"] for s in info["streams"])
    if "duration" in info["format"]:
        return streams, float(info["format"]["duration"])
    listing = _run("ffprobe", "-v", "quiet", "-show_entries", "packet=pts_time,duration_time",
                   "-of", "csv=p=0", str(path)).stdout.decode().split()
    spans = [(float(a), float(a) + (float(b) if b not in ("", "N/A") else 0.0))
             for a, _, b in (line.partition(",") for line in listing) if a not in ("", "N/A")]
    return streams, max(e for _, e in spans) - min(s for s, _ in spans)


class Sampler:
    """Peak resident memory of the processes under this one, and of the
    machine's shared memory above where it started."""

    def __init__(self):
        self.child_peak = 0  # KiB, the largest one process reached
        self.tree_peak = 0  # KiB, all of them at once, the warm sandbox included
        self.shmem_peak = 0  # KiB above the start
        self._shmem0 = self._shmem()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _shmem() -> int:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Shmem:"):
                    return int(line.split()[1])
        return 0

    @staticmethod
    def _descendants() -> list[int]:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    parents[int(entry)] = int(fields[1])
                except (OSError, IndexError, ValueError):
                    continue
        mine, found = {os.getpid()}, True
        while found:
            found = False
            for pid, parent in parents.items():
                if parent in mine and pid not in mine:
                    mine.add(pid)
                    found = True
        mine.discard(os.getpid())
        return sorted(mine)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            sizes = [self._rss(pid) for pid in self._descendants()]
            self.child_peak = max(self.child_peak, *sizes, 0)
            self.tree_peak = max(self.tree_peak, sum(sizes))
            self.shmem_peak = max(self.shmem_peak, self._shmem() - self._shmem0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Row:
    name: str
    size: int
    ok: bool
    reason: str
    seconds: list[float]
    reads: int
    child_kib: int
    tree_kib: int
    shmem_kib: int
    worker_kib: int
    checked: str


def clean(path: Path, work: Path, sandbox, check: bool = True) -> Row:
    from nacl.public import PrivateKey

    from intake.format.envelope import EnvelopeReader, Recipient
    from intake.server.budget import CleaningBudget
    from intake.server.config import Config
    from intake.server.sanitize import sanitize
    from intake.server.store import Store
    from intake.server.upload_spool import UploadSpool

    key = PrivateKey.generate()
    store = Store(work / "store")
    store.init()
    recipients = [Recipient(key.public_key)]
    config = Config()
    budget = CleaningBudget.for_submission(config.clean_cpu_seconds, config.clean_bytes,
                                           [path.stat().st_size])
    with UploadSpool(store, recipients) as upload:
        with open(path, "rb") as f:
            while piece := f.read(512 * 1024):
                upload.write(piece)
        reads = 0
        chunks = upload.chunks

        def counted():
            nonlocal reads
            reads += 1
            yield from chunks()

        upload.chunks = counted  # type: ignore[method-assign]
        sampler = Sampler()
        started = time.perf_counter()
        result = sanitize(upload, lambda: UploadSpool(store, recipients),
                          limits=budget.limits_for(upload.size), sandbox=sandbox)
        try:
            if result.ok:
                result.spool.sha256  # noqa: B018 - waits for the last byte to be sealed
            seconds = time.perf_counter() - started
            sampler.stop()
            worker = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            row = Row(path.name, path.stat().st_size, result.ok, result.reason, [seconds],
                      reads, sampler.child_peak, sampler.tree_peak, sampler.shmem_peak,
                      worker, "-")
            if not result.ok or not check:
                return row
            batch = store.batch()
            entry = result.spool.seal(batch, {})
        finally:
            result.close()
    out = work / f"cleaned{path.suffix}"
    try:
        with open(entry.tmp_path, "rb") as sealed, open(out, "wb") as f:
            for piece in EnvelopeReader(sealed, key).content():
                f.write(piece)
    finally:
        batch.discard()
    row.checked = _check(path, out)
    out.unlink()
    return row


def _check(original: Path, cleaned: Path) -> str:
    streams, duration = _probe(original)
    after, after_duration = _probe(cleaned)
    found: list[str] = []
    tail = b""
    with open(cleaned, "rb") as f:  # every byte, in pieces that overlap a little
        while piece := f.read(8 * MiB):
            window = tail + piece
            found += [p for p in planted_in_bytes(window) if p not in found]
            if f"GPS {LAT}".encode() in window and "GPS subtitle" not in found:
                found.append("GPS subtitle")
            tail = piece[-64:]
    expected = [s for s in streams if s in ("video", "audio")]
    if after != expected:
        found.append(f"streams {after} (was {streams})")
    if abs(after_duration - duration) > 0.1:
        found.append(f"duration {after_duration:.1f} s (was {duration:.1f} s)")
    return "; ".join(found) or f"clean; {', '.join(after)}; {after_duration:.0f} s kept"


def _merge(rows: list[Row]) -> Row:
    """Runs of one video: every time, the highest memory, the first check."""
    first = rows[0]
    return Row(first.name, first.size, all(r.ok for r in rows),
               next((r.reason for r in rows if not r.ok), ""),
               [t for r in rows for t in r.seconds], first.reads,
               max(r.child_kib for r in rows), max(r.tree_kib for r in rows),
               max(r.shmem_kib for r in rows), max(r.worker_kib for r in rows), first.checked)


def table(rows: list[Row], repeat: int, load: tuple[tuple[float, ...], ...]) -> str:
    lines = [SECTION, "",
             "Made by ffmpeg (H.264 + AAC, a GPS subtitle track, location, comment and",
             "creation time), cleaned from envelope to envelope through a warm",
             "sandbox (`python bench/video_bench.py`). *Cleaner*: the largest resident",
             "memory of one process under the worker (the cleaning child or its",
             "ffprobe); *all*: every process under it at once, the warm sandbox",
             "included; *memory files*: the machine's `Shmem` above where it started",
             "(a cleaner holding the video in memory files would add its size",
             "there; other work on the machine moves it too); *worker*: the peak",
             "of the process that decrypts and encrypts. Seconds: the median of",
             f"{repeat} runs (lowest-highest); memory: the highest. The machine",
             f"({os.cpu_count()} CPUs) was shared with other work: load average",
             f"{load[0][0]:.1f} before, {load[1][0]:.1f} after.", "",
             "| video | size | layout | reads | result | seconds | MB/s | cleaner | all | "
             "memory files | worker | check |",
             "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        median = statistics.median(r.seconds)
        spread = (f" ({min(r.seconds):.1f}-{max(r.seconds):.1f})"
                  if len(r.seconds) > 1 else "")
        layout = r.name.split("-")[-1].split(".")[0]
        layout = {"mkv": "Matroska", "end": "MP4, index last",
                  "start": "MP4, index first"}[layout]
        lines.append(
            f"| {r.name} | {r.size / MiB:.0f} MiB | {layout} | {r.reads} | "
            f"{'cleaned' if r.ok else 'not cleaned: ' + r.reason} | {median:.1f}{spread} | "
            f"{r.size / 1e6 / median:.0f} | {r.child_kib / 1024:.0f} MiB | "
            f"{r.tree_kib / 1024:.0f} MiB | {r.shmem_kib / 1024:.0f} MiB | "
            f"{r.worker_kib / 1024:.0f} MiB | {r.checked} |")
    return "\n".join(lines) + "\n"


def _append(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    at = old.find(SECTION)
    if at >= 0:
        end = old.find("\n## ", at + len(SECTION))
        old = old[:at] + (old[end + 1:] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + ("\n\n" if old.strip() else "") + text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2040",
                        help="MiB, comma-separated (default 1024,2040: under the 2 GiB form limit)")
    parser.add_argument("--work", type=Path,
                        help="where the videos are made (default: a temp folder)")
    parser.add_argument("--append", type=Path, help="write the section into this file")
    parser.add_argument("--repeat", type=int, default=3, help="cleanings per video")
    args = parser.parse_args(argv)
    if missing := [t for t in ("ffmpeg", "ffprobe") if not shutil.which(t)]:
        print(f"video bench: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    from intake.server.sanitize.runner import warm_sandbox

    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        sandbox = warm_sandbox()
        rows = []
        try:
            for size in sizes:
                for layout in ("end", "start", "mkv") if size == max(sizes) else ("end",):
                    video = make_video(work, size, layout)
                    runs = [clean(video, work / f"run-{size}-{layout}-{n}", sandbox, check=not n)
                            for n in range(args.repeat)]
                    rows.append(_merge(runs))
                    print(rows[-1], file=sys.stderr)
                    video.unlink()
        finally:
            sandbox.stop()
    text = table(rows, args.repeat, (load, os.getloadavg()))
    print(text)
    if args.append:
        _append(args.append, text)
    return 0 if all(r.ok and r.checked.startswith("clean") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
