"""The sanitizer table: Intake's sanitizer beside `exiftool -all=` and mat2.

The same files for all three, made on the spot by real programs with GPS,
serial numbers, names and dates planted: the corpus of tests/sanitize
(Pillow, pikepdf, python-docx, mutagen, ffmpeg, ExifTool) and the files
LibreOffice, pdfTeX, heif-enc, avifenc and cjxl write (real_corpus.py),
with photos at phone sizes (a 48-megapixel JPEG, 12-megapixel HEIC, AVIF and
JPEG XL); and the files Microsoft Office, phones, cameras and pdfTeX wrote,
from the program corpus (program_corpus.py, fetched by `make program-corpus`).
Each tool cleans each file in its own process, as a server would. Intake is
timed twice:

- "intake": on the same terms as the others, a plain file in and a plain
  file out, through its sandboxed child (process start, limits and pipes
  included);
- "intake, envelope to envelope": the server's real path, from the upload's
  envelope, as it was written on arrival, until the cleaned copy is in its
  own envelope: decrypting and encrypting included, which the other tools
  do not do.

ExifTool and mat2 run through their command lines, plaintext file to
plaintext file. Reports seconds per file, files per second and MB/s per
family, and what each left behind: the identifying fields ExifTool still
finds after cleaning and the planted values still in any part of the file
(decompressed), or "refused"; then, per tool, how many files came out clean,
leaked, or were refused.

    python bench/sanitize_bench.py [--repeat 3] [--scale 8] [--out FILE] [--programs-only]

`table(repeat)` returns the Markdown table; `main()` prints it (bench/run.py
calls it too).
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sanitize.program_corpus import SAMPLES, Sample, corpus_root, folder, identifying  # noqa: E402
from sanitize.real_corpus import RealCorpus  # noqa: E402
from sanitize.sanitize_corpus import (  # noqa: E402
    CAMERA_TAGS,
    Corpus,
    exiftool_write,
    leftovers,
    picture,
    planted_anywhere,
)

FAMILIES = ["jpeg", "png", "webp", "tiff", "gif", "heic", "svg", "pdf", "docx", "odt", "mp3",
            "flac", "wav", "m4a", "mp4", "mov", "mov (camera, Motion JPEG)", "mkv", "mp4 (large)"]
REAL = ["jpeg 48 MP", "heic 12 MP (heif-enc)", "avif 12 MP (avifenc)", "jxl 12 MP (cjxl)",
        "odt (LibreOffice)", "odt (LibreOffice desktop)", "docx (LibreOffice)",
        "docx (zip -r)", "docx (linked picture)", "ods (LibreOffice)", "xlsx (LibreOffice)",
        "odp (LibreOffice)", "pptx (LibreOffice)", "odg (LibreOffice)", "pdf (pdfTeX)"]


def real_files(root: Path) -> dict[str, Path]:
    real = RealCorpus(root)
    office = {p.name: p for p in real.office()}
    phone = real.camera_jpeg("phone12.jpg", (4032, 3024))
    heic, avif, jxl = (root / n for n in ("phone12.heic", "phone12.avif", "phone12.jxl"))
    subprocess.run(["heif-enc", "-q", "80", str(phone), "-o", str(heic)], check=True,
                   capture_output=True, timeout=600)
    subprocess.run(["avifenc", "-s", "10", str(phone), str(avif)], check=True,
                   capture_output=True, timeout=600)
    subprocess.run(["cjxl", str(phone), str(jxl)], check=True, capture_output=True,
                   timeout=600)
    exiftool_write(jxl, *CAMERA_TAGS)
    big = root / "camera48.jpg"
    picture((8000, 6000)).save(big, quality=90)
    exiftool_write(big, *CAMERA_TAGS)
    return {"jpeg 48 MP": big, "heic 12 MP (heif-enc)": heic, "avif 12 MP (avifenc)": avif,
            "jxl 12 MP (cjxl)": jxl, "odt (LibreOffice)": office["statement.odt"],
            "odt (LibreOffice desktop)": office["desktop.odt"],
            "docx (LibreOffice)": office["statement.docx"],
            "docx (zip -r)": office["rezipped.docx"],
            "docx (linked picture)": office["linked.docx"],
            "ods (LibreOffice)": office["losses.ods"], "xlsx (LibreOffice)": office["losses.xlsx"],
            "odp (LibreOffice)": office["slides.odp"], "pptx (LibreOffice)": office["slides.pptx"],
            "odg (LibreOffice)": office["map.odg"], "pdf (pdfTeX)": real.paper()}


def program_files() -> dict[str, tuple[Path, Sample]]:
    """The files Microsoft Office, Google Docs and Sheets, LibreOffice, WPS
    Office, ONLYOFFICE, phones, cameras and pdfTeX wrote
    (tests/sanitize/program_corpus.py), as `make program-corpus` fetched them."""
    where = folder(corpus_root())
    files = {f"{s.family} ({s.name})": (where / s.name, s) for s in SAMPLES}
    if not all(path.exists() for path, _ in files.values()):
        raise SystemExit(f"sanitize bench: no program corpus in {where}; "
                         "`make program-corpus` fetches it")
    return files


def large_video(corpus: Corpus) -> Path:
    """About 100 MB of hard-to-compress video: the MB/s of a real phone video."""
    return corpus.ffmpeg("large.mp4", "-f", "lavfi", "-i",
                         "color=s=1280x720:d=5,noise=alls=60:allf=t+u", *corpus.SINE,
                         "-c:v", "mpeg4", "-q:v", "2", "-c:a", "aac",
                         "-metadata", "artist=Olena Svidok", "-shortest")


@dataclass
class Row:
    family: str
    tool: str
    files: int
    size: int
    seconds: float
    left: str
    growth: float  # cleaned size / original size

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.size / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def verdict(self) -> str:
        return "refused" if self.left == "refused" else \
            "clean" if self.left == "nothing" else "leaked"


@functools.cache
def _bench_key():
    from nacl.public import PrivateKey

    return PrivateKey.generate()


class _PlainUpload:
    """The file as the sanitizer reads it, in the clear: like for like with
    the other tools, which read a plain file."""

    def __init__(self, path: Path):
        self.path, self.size = path, path.stat().st_size
        with open(path, "rb") as f:
            self.head = f.read(64 * 1024)

    def chunks(self):
        with open(self.path, "rb") as f:
            while piece := f.read(1024 * 1024):
                yield piece


class _PlainSink:
    """The cleaned copy written to a plain file, as ExifTool and mat2 write
    theirs. Only this benchmark does that: the server seals it."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.size, self.sha256 = 0, ""

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return self._file.write(data)

    def chunks(self):
        raise NotImplementedError

    def close(self) -> None:
        self._file.close()


@functools.cache
def _sandbox():
    """One warm sandbox for the run, as each web worker keeps one."""
    from intake.server.sanitize.runner import warm_sandbox

    return warm_sandbox()


def intake_file_clean(source: Path, target: Path, _spool: Path) -> tuple[bool, float]:
    """The sanitizer alone, on the same terms as the other tools: a plain file
    in, through the sandboxed child (its process start, limits and pipes
    included), a plain file out."""
    from intake.server.sanitize import sanitize

    started = time.perf_counter()
    result = sanitize(_PlainUpload(source), lambda: _PlainSink(target), sandbox=_sandbox())
    result.close()
    seconds = time.perf_counter() - started
    if not result.ok:
        target.unlink(missing_ok=True)
    return result.ok, seconds


def intake_clean(source: Path, target: Path, spool_dir: Path) -> tuple[bool, float]:
    """Times what cleaning adds on the server: sanitize() from the upload's
    envelope, as the form wrote it on arrival, until every cleaned byte is in
    the cleaned copy's envelope. Closing and fsyncing that envelope is not
    counted: a file kept as received costs the same. Writing the upload
    happens during the upload anyway, and opening the cleaned envelope is for
    ExifTool's check only."""
    from intake.format.envelope import EnvelopeReader, Recipient
    from intake.server.sanitize import sanitize
    from intake.server.store import Store
    from intake.server.upload_spool import UploadSpool

    store = Store(spool_dir / "store")
    store.init()
    recipients = [Recipient(_bench_key().public_key)]
    with UploadSpool(store, recipients) as upload:
        with open(source, "rb") as f:
            while piece := f.read(512 * 1024):
                upload.write(piece)
        started = time.perf_counter()
        result = sanitize(upload, lambda: UploadSpool(store, recipients), sandbox=_sandbox())
        try:
            if not result.ok:
                return False, time.perf_counter() - started
            kept = result.spool.sha256  # waits for the last byte to be sealed and written
            seconds = time.perf_counter() - started
            batch = store.batch()
            entry = result.spool.seal(batch, {"sha256_kept": kept})
        finally:
            result.close()
    try:
        with open(entry.tmp_path, "rb") as sealed, open(target, "wb") as out:
            for piece in EnvelopeReader(sealed, _bench_key()).content():
                out.write(piece)
    finally:
        batch.discard()
    return True, seconds


def _timed(command: list[str]) -> tuple[bool, float]:
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, timeout=300, check=False)
    return run.returncode == 0, time.perf_counter() - started


def exiftool_clean(source: Path, target: Path, _spool: Path) -> tuple[bool, float]:
    ok, seconds = _timed(["exiftool", "-q", "-q", "-all=", "-o", str(target), str(source)])
    return ok and target.exists(), seconds


def mat2_clean(source: Path, target: Path, _spool: Path) -> tuple[bool, float]:
    work = target.parent / f"mat2-{source.name}"
    shutil.copyfile(source, work)  # mat2 writes NAME.cleaned.EXT beside its input
    ok, seconds = _timed(["mat2", str(work)])
    cleaned = work.with_name(f"{work.stem}.cleaned{work.suffix}")
    work.unlink(missing_ok=True)
    if not ok or not cleaned.exists():
        return False, seconds
    cleaned.rename(target)
    return True, seconds


TOOLS: dict[str, Callable[[Path, Path, Path], tuple[bool, float]]] = {
    "intake": intake_file_clean, "intake, envelope to envelope": intake_clean,
    "exiftool -all=": exiftool_clean, "mat2": mat2_clean}


def make_files(corpus: Corpus) -> dict[str, Path]:
    makers = {"jpeg": corpus.jpeg, "png": corpus.png, "webp": corpus.webp,
              "tiff": corpus.tiff, "gif": corpus.gif, "heic": corpus.heic, "svg": corpus.svg,
              "pdf": corpus.pdf,
              "docx": corpus.docx, "odt": corpus.odt, "mp3": corpus.mp3, "flac": corpus.flac,
              "wav": corpus.wav, "m4a": corpus.m4a, "mp4": corpus.mp4, "mov": corpus.mov,
              "mkv": corpus.mkv, "mov (camera, Motion JPEG)": corpus.motion_jpeg,
              "mp4 (large)": lambda: large_video(corpus)}
    return {family: makers[family]() for family in FAMILIES}


def _slug(tool: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", tool).strip("-")


def measure(family: str, source: Path, tool: str, repeat: int, work: Path,
            sample: Sample | None = None) -> Row:
    clean = TOOLS[tool]
    spool = work / "spool"
    spool.mkdir(exist_ok=True)
    clean(source, work / f"warm-up-{source.name}", spool)  # first start pays for disk caches
    ok, seconds = True, 0.0
    for i in range(repeat):
        target = work / f"{_slug(tool)}-{i}-{source.name}"
        done, took = clean(source, target, spool)
        ok, seconds = ok and done, seconds + took
        if i:
            target.unlink(missing_ok=True)  # keep the disk use of large files down
    first = work / f"{_slug(tool)}-0-{source.name}"
    growth = first.stat().st_size / source.stat().st_size if first.exists() else 0.0
    if not ok or not first.exists():
        left = "refused"
    else:
        found = leftovers(first) + [f"planted {p!r}" for p in planted_anywhere(first)]
        if sample is not None:  # what the program itself wrote into it
            found += [f"carried {v!r}" for v in identifying(first, sample)]
        left = "nothing" if not found else f"{len(found)}: " + ", ".join(
            f.split("=")[0] for f in found[:4]) + (" ..." if len(found) > 4 else "")
    return Row(family, tool, repeat, source.stat().st_size * repeat, seconds, left, growth)


def rows(repeat: int, scale: int, programs_only: bool = False) -> list[Row]:
    out = []
    with tempfile.TemporaryDirectory(prefix="sanitize-bench-") as tmp:
        root = Path(tmp)
        files: dict[str, tuple[Path, Sample | None]] = {}
        if not programs_only:
            (root / "corpus").mkdir()
            made = make_files(Corpus(root / "corpus", scale))
            made.update(real_files(root / "real"))
            files = {family: (path, None) for family, path in made.items()}
        files.update(program_files())
        for family, (source, sample) in files.items():
            for tool in TOOLS:
                work = root / family.split()[0] / _slug(family) / _slug(tool)
                work.mkdir(parents=True)
                out.append(measure(family, source, tool, repeat, work, sample))
    return out


def summary(measured: list[Row]) -> str:
    """Per tool: files clean, leaked (cleaned, something identifying left) and
    refused; and the families where it took over twice mat2's time."""
    lines = ["| tool | clean | leaked | refused | slower than 2x mat2 on |",
             "| --- | ---: | ---: | ---: | --- |"]
    mat2 = {r.family: r for r in measured if r.tool == "mat2"}
    for tool in TOOLS:
        mine = [r for r in measured if r.tool == tool]
        counts = {v: sum(r.verdict == v for r in mine) for v in ("clean", "leaked", "refused")}
        slow = [r.family for r in mine if r.family in mat2 and mat2[r.family].verdict != "refused"
                and r.verdict != "refused" and r.seconds > 2 * mat2[r.family].seconds]
        lines.append(f"| {tool} | {counts['clean']} | {counts['leaked']} | {counts['refused']} "
                     f"| {', '.join(slow) or '-'} |")
    return "\n".join(lines) + "\n"


def table(repeat: int = 3, scale: int = 8, programs_only: bool = False) -> str:
    measured = rows(repeat, scale, programs_only)
    lines = ["| family | file | tool | s/file | files/s | MB/s | size after | "
             "identifying fields left |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in measured:
        growth = f"{r.growth:.2f}x" if r.growth else "-"
        lines.append(f"| {r.family} | {r.size // r.files / 1024:.0f} KiB | {r.tool} | "
                     f"{r.seconds / r.files:.3f} | {r.files_per_second:.1f} | "
                     f"{r.mb_per_second:.2f} | {growth} | {r.left} |")
    return summary(measured) + "\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="cleanings per file and tool")
    parser.add_argument("--scale", type=int, default=8,
                        help="picture sides x 96x64 pixels, media x 1 second (default 8)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--programs-only", action="store_true",
                        help="only the files office programs, phones and pdfTeX wrote "
                             "(program corpus)")
    args = parser.parse_args(argv)
    needed = ("exiftool", "mat2") if args.programs_only else (
        "exiftool", "mat2", "ffmpeg", "ffprobe", "soffice", "pdflatex", "heif-enc", "avifenc",
        "cjxl", "zip")
    missing = [t for t in needed if not shutil.which(t)]
    if missing:
        print(f"sanitize bench: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    text = ("## Sanitizer\n\n"
            "`intake`: a plain file in and a plain file out through the sandboxed child,\n"
            "on the same terms as the other tools. `intake, envelope to envelope`: the\n"
            "server's own path, from the upload's envelope until the cleaned copy is in\n"
            "its own, decrypting and encrypting included.\n\n"
            + table(args.repeat, args.scale, args.programs_only))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
