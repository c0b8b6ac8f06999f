"""Files that Microsoft Office, Google Docs and Sheets, LibreOffice, WPS
Office, ONLYOFFICE, phones, cameras, Word's PDF export, Acrobat, a scanner
and pdfTeX wrote (program_corpus.py), each through the sandbox as the server
cleans it, then all of them through the witness form with "keep the
originals" unticked. Every one comes out cleaned, with none of the
identifying values it carried (in any part, decompressed, nor as ExifTool
tags) and its content whole (text, pages, picture sizes); or, for a kind
that is not cleaned, is refused and the receipt tells the witness."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest
from browsers import missing

from sanitize.program_corpus import SAMPLES, corpus_root, folder, identifying
from sanitize.sanitize_corpus import leftovers
from sanitize.test_upload_path import decrypted, post

OFFICE = {"docx", "pptx", "xlsx"}
ODF = {"odt", "ods"}
# Elements that hold the words of Word, PowerPoint and Excel: w:t, a:t, t;
# and a cell's value, v.
WORDS = {"t", "v"}
# OpenDocument's paragraphs and headings (text:p, text:h), in content.xml.
ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    where = folder(corpus_root())
    paths = {s.name: where / s.name for s in SAMPLES}
    if not all(p.exists() for p in paths.values()):
        missing(f"the program corpus ({where})")
    return paths


def _words(data: bytes) -> list[str]:
    from intake.server.sanitize import xmlsafe

    words = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in sorted(z.namelist()):
            if name.endswith(".xml") and not name.startswith("docProps/"):
                words += [e.text or "" for e in xmlsafe.parse(z.read(name)).getroot().iter()
                          if isinstance(e.tag, str) and xmlsafe.local(e.tag) in WORDS]
    return words


def _odf_words(data: bytes) -> list[str]:
    from intake.server.sanitize import xmlsafe

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        root = xmlsafe.parse(z.read("content.xml")).getroot()
    return ["".join(e.itertext()) for e in root.iter(f"{{{ODF_TEXT}}}p", f"{{{ODF_TEXT}}}h")]


def _content(path: Path, family: str):
    """What the witness sent: the words, the pages and their text, or the
    pictures' sizes."""
    if family in OFFICE:
        return _words(path.read_bytes())
    if family in ODF:
        return _odf_words(path.read_bytes())
    if family == "pdf":
        import pikepdf

        with pikepdf.open(path) as pdf:
            pages = len(pdf.pages)
        text = subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True,
                              check=True, timeout=120).stdout
        return pages, text
    import pillow_heif
    from PIL import Image

    from intake.server.sanitize import Limits

    pillow_heif.register_heif_opener()
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, Limits().max_pixels_copied
    try:  # opened, not decoded: a 200-megapixel phone photo is no bomb
        with Image.open(path) as image:
            return sorted(image.size), getattr(image, "n_frames", 1)
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def test_the_corpus_spans_the_programs_witnesses_use():
    families = {s.family for s in SAMPLES}
    assert families >= {"docx", "doc", "pptx", "xlsx", "odt", "ods", "pdf", "heic", "jpeg"}
    programs = " ".join(s.program for s in SAMPLES)
    for maker in ("Word", "Excel", "PowerPoint", "Google Docs", "Google Sheets", "LibreOffice",
                  "WPS", "ONLYOFFICE", "pdfTeX", "iPhone", "Samsung", "Xiaomi", "Huawei",
                  "Nokia"):
        assert maker in programs


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_each_file_comes_out_clean_and_whole(sample, files, sanitized):
    original = files[sample.name]
    # The list still says what the file holds: every value is there to begin with.
    assert sorted(identifying(original, sample)) == sorted([*sample.carries, *sample.tags])
    result, out = sanitized(original)
    if not sample.cleaned:
        assert not result.ok and not result.hostile and out is None
        assert result.reason == "unsupported type"
        return
    assert result.ok, result.reason
    assert result.removed
    assert identifying(out, sample) + leftovers(out) == []
    assert _content(out, sample.family) == _content(original, sample.family)


@pytest.mark.parametrize("name", ["galaxy-s25-ultra.heic", "iphone-13-pro.heic"])
def test_phone_photos_keep_their_makers_colour_profile_and_their_pixels(name, files,
                                                                        sanitized):
    """A profile every phone of a make embeds (Samsung's DCI-P3, Apple's
    Display P3) tells the make and nothing more: it stays, and the photo is
    rewritten as coded, not re-encoded (which lost quality and took longer)."""
    import pillow_heif
    from PIL import Image

    original = files[name]
    result, out = sanitized(original)
    assert result.ok
    pillow_heif.register_heif_opener()
    with Image.open(original) as before, Image.open(out) as after:
        assert before.info.get("icc_profile") == after.info.get("icc_profile")
        assert before.info.get("icc_profile")
        assert before.tobytes() == after.tobytes()
    assert abs(out.stat().st_size - original.stat().st_size) < original.stat().st_size // 20


def test_through_the_form_nothing_identifying_is_stored(files, client, app, team_key,
                                                         tmp_path):
    """"Keep the originals" unticked: what reaches the investigators is the
    cleaned copy, or nothing, and the receipt says which."""
    page = post(client, list(files.values()))
    assert page.status_code == 200
    text = " ".join(page.get_data(as_text=True).split())
    folder_, records = decrypted(app, team_key, tmp_path)
    assert [r for r in records if r["kind"] == "original"] == []
    by_name = {r.get("original_name"): r for r in records if r["kind"] == "file"}
    problems = []
    for sample in SAMPLES:
        record = by_name.get(sample.name)
        if not sample.cleaned:
            assert record is None
            assert (f"<strong><bdi>{sample.name}</bdi></strong>: "
                    "we cannot clean this kind of file.") in text
            continue
        assert record is not None and record["sanitized"] is True, sample.name
        saved = folder_ / record["saved_as"]
        left = identifying(saved, sample) + leftovers(saved)
        if left:
            problems.append(f"{sample.name}: {left}")
    assert problems == []
    assert text.count("cleaned of hidden information") == sum(s.cleaned for s in SAMPLES)
