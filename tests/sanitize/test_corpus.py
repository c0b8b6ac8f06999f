"""The corpus test: files written by real programs (LibreOffice, pdfTeX,
libheif, libavif, libjxl; tests/sanitize/real_corpus.py) and by the
libraries the other corpus uses, each run through the sandbox. Every one of
a supported type comes out cleaned, with none of the planted values left in
any of its parts (decompressed), and ExifTool finds nothing identifying."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from support import MemorySpool

from sanitize.real_corpus import RealCorpus, available
from sanitize.sanitize_corpus import every_part, leftovers, planted_in_bytes

if available() and os.environ.get("CI") != "true":
    pytest.skip(f"missing {', '.join(available())}", allow_module_level=True)


@pytest.fixture(scope="module")
def real_files(tmp_path_factory) -> list[Path]:
    return RealCorpus(tmp_path_factory.mktemp("real")).all()


def _clean(sandbox, path: Path, tmp_path: Path):
    from intake.server.sanitize import sanitize

    result = sanitize(MemorySpool(path.read_bytes()), MemorySpool, sandbox=sandbox)
    try:
        out = None
        if result.ok:
            out = tmp_path / f"clean-{path.name}"
            out.write_bytes(b"".join(result.spool.chunks()))
        return result, out
    finally:
        result.close()


def test_every_file_real_programs_write_comes_out_clean(real_files, sandbox, tmp_path):
    assert {p.suffix for p in real_files} >= {".odt", ".docx", ".ods", ".xlsx", ".odp",
                                              ".pptx", ".odg", ".pdf", ".heic", ".avif",
                                              ".jxl"}
    for original in real_files:
        assert planted_in_bytes(every_part(original.read_bytes())), original.name
    problems = []
    for original in real_files:
        result, out = _clean(sandbox, original, tmp_path)
        if not result.ok:
            problems.append(f"{original.name}: refused ({result.reason})")
            continue
        left = planted_in_bytes(every_part(out.read_bytes())) + leftovers(out)
        if left:
            problems.append(f"{original.name}: {left}")
    assert problems == []


def test_pdftex_paper_keeps_its_text_and_loses_its_fingerprints(real_files, sandbox, tmp_path):
    import pikepdf

    (paper,) = [p for p in real_files if p.suffix == ".pdf"]
    result, out = _clean(sandbox, paper, tmp_path)
    assert result.ok, result.reason
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, check=True,
                          timeout=60).stdout
    assert b"convoy bridge" in text  # selectable: not rasterized, as mat2 does
    with pikepdf.open(paper) as before, pikepdf.open(out) as after:
        assert "/Info" not in after.trailer
        assert bytes(after.trailer.ID[0]) != bytes(before.trailer.ID[0])
        assert bytes(after.trailer.ID[1]) != bytes(before.trailer.ID[1])
        keys = {k for obj in after.objects if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream)
                for k in obj.keys()}  # noqa: SIM118 - a Stream is not iterable
        assert not {k for k in keys if k.startswith("/PTEX.")}
        assert "/Metadata" not in keys and "/PieceInfo" not in keys
    (tmp_path / "again").mkdir()
    second, again = _clean(sandbox, paper, tmp_path / "again")
    assert second.ok
    with pikepdf.open(out) as one, pikepdf.open(again) as two:
        assert bytes(one.trailer.ID[0]) != bytes(two.trailer.ID[0])  # random, every time


def test_phone_pictures_keep_every_pixel(real_files, sandbox, tmp_path):
    """HEIC and AVIF are rewritten item by item, never re-encoded."""
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    for original in (p for p in real_files if p.suffix in (".heic", ".avif")):
        result, out = _clean(sandbox, original, tmp_path)
        assert result.ok and "Exif" in result.removed
        with Image.open(original) as before, Image.open(out) as after:
            assert after.size == before.size
            assert after.tobytes() == before.tobytes()
            assert not after.info.get("exif") and not after.info.get("xmp")


def test_a_rezipped_docx_is_told_by_its_members(real_files, sandbox, tmp_path):
    (rezipped,) = [p for p in real_files if p.name == "rezipped.docx"]
    with zipfile.ZipFile(rezipped) as z:
        assert any(i.is_dir() for i in z.infolist())  # zip -r's directory entries
    result, _ = _clean(sandbox, rezipped, tmp_path)
    assert result.ok and result.family == "ooxml"
    assert result.detected_type.endswith("wordprocessingml.document")
