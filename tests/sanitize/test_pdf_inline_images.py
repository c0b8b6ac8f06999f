"""JPEG pictures placed inline in a PDF's content (BI ... ID ... EI), in a
page, a form, a tiling pattern or an annotation's appearance, lose their
EXIF, XMP and IPTC as image XObjects do; one that cannot be cleaned stops
the file."""

from __future__ import annotations

import base64
import io

import pytest

from sanitize.sanitize_corpus import leftovers, planted_anywhere, planted_in_bytes

W, H = 96, 64  # the corpus's picture size


def _inline(photo: bytes, ascii85: bool = False) -> bytes:
    if ascii85:
        data = base64.a85encode(photo) + b"~>"
        return b"BI /W 96 /H 64 /CS /RGB /BPC 8 /F [/A85 /DCT] ID\n" + data + b"\nEI"
    return b"BI /W 96 /H 64 /CS /RGB /BPC 8 /F /DCT ID\n" + photo + b"\nEI"


def _pdf(tmp_path, photo: bytes, where: str, ascii85: bool = False):
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    page = pdf.pages[0]
    draw = b"q 96 0 0 64 20 20 cm " + _inline(photo, ascii85) + b" Q"
    form = dict(Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                BBox=[0, 0, 200, 200], Resources=pikepdf.Dictionary())
    if where == "page":
        page.Contents = pdf.make_stream(b"0 0 1 rg 0 0 10 10 re f\n" + draw)
    elif where == "form":
        page.Resources = pikepdf.Dictionary(
            XObject=pikepdf.Dictionary(Fm1=pdf.make_stream(draw, **form)))
        page.Contents = pdf.make_stream(b"q /Fm1 Do Q")
    elif where == "pattern":
        tile = pdf.make_stream(draw, PatternType=1, PaintType=1, TilingType=1,
                               BBox=[0, 0, 200, 200], XStep=200, YStep=200,
                               Resources=pikepdf.Dictionary())
        page.Resources = pikepdf.Dictionary(Pattern=pikepdf.Dictionary(P1=tile))
        page.Contents = pdf.make_stream(b"/Pattern cs /P1 scn 0 0 200 200 re f")
    elif where == "appearance":
        # Written in place in /Annots, not as an object of its own.
        page.obj.Annots = pikepdf.Array([pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Stamp, Rect=[0, 0, 200, 200],
            AP=pikepdf.Dictionary(N=pdf.make_stream(draw, **form)))])
        page.Contents = pdf.make_stream(b"")
    path = tmp_path / f"inline-{where}.pdf"
    pdf.save(path, compress_streams=True)
    return path


def _inline_jpegs(path) -> list[bytes]:
    """The JPEGs inline anywhere in the file, as a reader would draw them."""
    import pikepdf

    found = []
    with pikepdf.open(path) as pdf:
        owners = [*pdf.pages, *(o for o in pdf.objects if isinstance(o, pikepdf.Stream)
                                and o.get("/Subtype") != pikepdf.Name.Image)]
        for owner in owners:
            try:
                instructions = pikepdf.parse_content_stream(owner)
            except pikepdf.PdfError:
                continue
            for instruction in instructions:
                if isinstance(instruction, pikepdf.ContentStreamInlineImage):
                    image = instruction.iimage
                    raw = image.read_raw_bytes()
                    if image.filters == ["/ASCII85Decode", "/DCTDecode"]:
                        raw = base64.a85decode(raw.strip().removesuffix(b"~>"))
                    else:
                        assert image.filters == ["/DCTDecode"], image.filters
                    found.append(raw)
    return found


def _pixels(jpeg: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as im:
        return im.size, im.convert("RGB").tobytes()


@pytest.mark.parametrize(("where", "ascii85"), [
    ("page", False), ("page", True), ("form", False), ("pattern", False),
    ("appearance", False)])
def test_an_inline_jpeg_loses_its_metadata(corpus, sanitized, tmp_path, where, ascii85):
    photo = corpus.jpeg("inline.jpg", orientation=1).read_bytes()
    original = _pdf(tmp_path, photo, where, ascii85)
    before = _inline_jpegs(original)
    assert before and all(planted_in_bytes(jpeg) for jpeg in before)
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert planted_anywhere(out) == []
    jpegs = _inline_jpegs(out)
    assert jpegs, "the picture is still drawn inline"
    for jpeg in jpegs:
        assert planted_in_bytes(jpeg) == [] and _pixels(jpeg) == _pixels(photo)
        extracted = tmp_path / "extracted.jpg"
        extracted.write_bytes(jpeg)
        assert leftovers(extracted) == []
    assert any(n.startswith("embedded image ") and "GPS" in n for n in result.removed)


def test_an_inline_jpeg_that_cannot_be_cleaned_stops_the_file(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("inline.jpg", orientation=1).read_bytes()[:400]
    result, out = sanitized(_pdf(tmp_path, photo, "page"))
    assert not result.ok and out is None
    assert result.reason == "an image inside could not be cleaned" and not result.hostile


def test_the_check_finds_metadata_left_in_an_inline_jpeg(corpus, tmp_path):
    from intake.server.sanitize import verify
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.limits import Limits

    photo = corpus.jpeg("inline.jpg", orientation=1).read_bytes()
    data = _pdf(tmp_path, photo, "form").read_bytes()  # no Info, no XMP: only the picture
    with pytest.raises(verify.Failed, match="metadata left"):
        verify.check("pdf", data, Cleaned(data), Limits())
