"""The families added for phones and the web: SVG with active content, EPUB,
PPM/PGM, HTML (refused, with a reason), and the limits that keep a video's
cleaning inside the unit's memory."""

from __future__ import annotations

import io
import zipfile

import pytest

from sanitize.sanitize_corpus import AUTHOR, SERIAL, leftovers, planted_anywhere, write_epub

ACTIVE_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="20" height="20" inkscape:export-filename="C:/Users/olena/map.png" onload="go()">
  <metadata><rdf:RDF><dc:creator>Olena Svidok</dc:creator></rdf:RDF></metadata>
  <script>fetch('http://tracker.example/')</script>
  <foreignObject><p xmlns="http://www.w3.org/1999/xhtml">html inside</p></foreignObject>
  <style>@import url(http://tracker.example/a.css); rect { fill: url(http://x.example/#g) }</style>
  <image xlink:href="http://tracker.example/pixel.png" width="1" height="1"/>
  <image href="data:image/png;base64,PNG_PIXEL" width="1" height="1"/>
  <a href="https://tracker.example/"><rect id="r" width="5" height="5" onclick="x()"
     sodipodi:nodetypes="cc" fill="url(#g)"/></a>
  <set attributeName="href" to="http://tracker.example/"/>
  <use href="#r"/>
</svg>
"""


def test_svg_loses_active_content_and_external_references(sanitized, tmp_path):
    """Undeclared prefixes (inkscape:, sodipodi:, rdf:) are tolerated, then removed."""
    import base64

    from PIL import Image

    pixel = io.BytesIO()
    Image.new("RGB", (1, 1)).save(pixel, "PNG")
    path = tmp_path / "map.svg"
    path.write_bytes(ACTIVE_SVG.replace(b"PNG_PIXEL", base64.b64encode(pixel.getvalue())))
    result, out = sanitized(path)
    assert result.ok, result.reason
    data = out.read_bytes()
    for gone in (b"script", b"onload", b"onclick", b"foreignObject", b"tracker.example",
                 b"x.example", b"@import", b"olena", b"Olena", b"inkscape", b"sodipodi",
                 b"<set"):
        assert gone not in data, gone
    for kept in (b'href="#r"', b"data:image/png", b'fill="url(#g)"', b"<rect"):
        assert kept in data, kept
    assert {"script", "foreignObject", "metadata", "event handler",
            "external reference"} <= set(result.removed)



# A browser decodes CSS escapes before it reads a word, in a style sheet, a
# style attribute and a presentation attribute alike (CSS Syntax 3).
ESCAPED_STYLES = {
    "url spelled with a hex escape": r'<rect style="fill:u\72l(http://tracker.example/a)"/>',
    "url's first letter escaped": r'<rect fill="\75rl(http://tracker.example/a)"/>',
    "six hex digits, capitals": r'<rect fill="\000055RL(http://tracker.example/a)"/>',
    "hex escape ended by a space": r'<rect fill="u\72 l(http://tracker.example/a)"/>',
    "escape in the address": r'<rect style="fill:u\72l(http://tr\61 cker.example/a)"/>',
    "letter escaped without hex": r'<rect style="fill:\u\r\l(http://tracker.example/a)"/>',
    "import spelled with an escape":
        r'<style>@im\70ort "http://tracker.example/a.css";</style>',
    "url escaped in a style sheet":
        r'<style>rect { fill: u\72l("http://tracker.example/a") }</style>',
    "image-set with a bare string":
        '<style>svg { background: image-set("http://tracker.example/a" 1x) }</style>',
    "text after a child of a style":
        '<style><g/>@import url(http://tracker.example/a.css);</style>',
    "animated presentation attribute":
        r'<rect><animate attributeName="fill" to="u\72l(http://tracker.example/a)"/></rect>',
}


def _escaped_svg(body: str) -> bytes:
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            f'{body}<circle r="3" fill="url(#g)"/></svg>').encode()


@pytest.mark.parametrize("body", ESCAPED_STYLES.values(), ids=ESCAPED_STYLES.keys())
def test_a_css_reference_spelled_with_escapes_is_removed_too(sanitized, tmp_path, body):
    from intake.server.sanitize import css

    path = tmp_path / "escaped.svg"
    path.write_bytes(_escaped_svg(body))
    result, out = sanitized(path)
    assert result.ok, result.reason
    text = out.read_text()
    assert "tracker.example" not in css.unescape(text)
    assert "external reference" in result.removed
    assert '<circle r="3" fill="url(#g)"/>' in text


@pytest.mark.parametrize("body", ESCAPED_STYLES.values(), ids=ESCAPED_STYLES.keys())
def test_the_check_refuses_a_css_reference_spelled_with_escapes(body):
    """Should the cleaner miss one, the copy is refused, not stored."""
    from intake.server.sanitize import verify
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.limits import Limits

    data = _escaped_svg(body)
    with pytest.raises(verify.Failed, match="style"):
        verify.check("svg", data, Cleaned(data), Limits())


INKSCAPE_SVG = r"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
   xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
   width="210mm" height="297mm" viewBox="0 0 210 297" inkscape:version="1.3.2">
  <defs>
    <linearGradient id="linearGradient1"><stop style="stop-color:#ff0000;stop-opacity:1"
       offset="0"/></linearGradient>
    <linearGradient xlink:href="#linearGradient1" id="linearGradient2" x1="10" x2="90"
       gradientUnits="userSpaceOnUse"/>
    <style>.st0{fill:url(#linearGradient2);}.a\:b{stroke:none}</style>
  </defs>
  <g inkscape:label="Layer 1" inkscape:groupmode="layer" id="layer1">
    <rect style="fill:#ff0000;stroke:none;stroke-width:0.264583" id="rect1" width="50"
       height="40" x="10" y="10"/>
    <rect style="fill:url(#linearGradient2);fill-opacity:1" id="rect2" width="50" height="40"
       x="10" y="60" class="st0 a:b"/>
    <text style="font-family:'Noto\ Sans';-inkscape-font-specification:'Noto Sans, Bold'"
       x="10" y="120" id="text1">Khreshchatyk 5</text>
  </g>
</svg>
"""


def test_the_styles_real_tools_write_stay_as_they_were(sanitized, tmp_path):
    from lxml import etree

    path = tmp_path / "inkscape.svg"
    path.write_text(INKSCAPE_SVG)
    result, out = sanitized(path)
    assert result.ok, result.reason
    assert "external reference" not in result.removed

    def styles(data: bytes) -> list:
        root = etree.fromstring(data)
        return [(e.get("id"), e.get("style"), e.text if e.tag.endswith("style") else None)
                for e in root.iter() if e.get("style") or str(e.tag).endswith("style")]

    assert styles(out.read_bytes()) == styles(INKSCAPE_SVG.encode())
    assert len(styles(out.read_bytes())) == 5


# xml:base: a viewer that honours it resolves even href="#r" against it.
BASED_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9" '
             b'xml:base="http://tracker.example/olena/"><g xml:base="map.svg">'
             b'<rect id="r" width="5" height="5"/><use href="#r"/></g>'
             b'<text xml:space="preserve" xml:lang="uk">Khreshchatyk  5</text></svg>')


def test_svg_loses_xml_base_keeps_the_other_xml_attributes(sanitized, tmp_path):
    path = tmp_path / "based.svg"
    path.write_bytes(BASED_SVG)
    result, out = sanitized(path)
    assert result.ok, result.reason
    data = out.read_bytes()
    assert b"base" not in data and b"tracker.example" not in data
    assert b'xml:space="preserve" xml:lang="uk"' in data and b'<use href="#r"/>' in data
    assert "xml:base" in result.removed


def test_the_check_refuses_an_svg_with_xml_base():
    from intake.server.sanitize import verify
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.limits import Limits

    with pytest.raises(verify.Failed, match="external reference"):
        verify.check("svg", BASED_SVG, Cleaned(BASED_SVG), Limits())


def _epub(tmp_path):
    opf = f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="id">urn:isbn:{SERIAL}</dc:identifier><dc:title>Diary</dc:title>
<dc:creator>{AUTHOR}</dc:creator><dc:language>uk</dc:language><dc:date>2024-03-01</dc:date>
<meta property="dcterms:modified">2024-03-01T10:11:12Z</meta>
<meta name="calibre:user_metadata" content="{AUTHOR}"/>
</metadata><manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/>
</manifest><spine><itemref idref="c"/></spine></package>"""
    return write_epub(tmp_path / "diary.epub", opf, {
        "OEBPS/c.xhtml": '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
                         '<body><p>The shelling started at dawn.</p></body></html>'})


def test_epub_loses_its_author_dates_and_id_keeps_its_text(sanitized, tmp_path):
    result, out = sanitized(_epub(tmp_path))
    assert result.ok and result.family == "epub", result.reason
    assert planted_anywhere(out) == []
    with zipfile.ZipFile(out) as z:
        assert z.namelist()[0] == "mimetype"
        assert z.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        assert b"The shelling started at dawn." in z.read("OEBPS/c.xhtml")
        opf = z.read("OEBPS/content.opf")
    assert b"<dc:title>Diary</dc:title>" in opf and b"urn:uuid:" in opf


def test_ppm_and_pgm_lose_their_comments_keep_their_pixels(sanitized, tmp_path):
    from PIL import Image

    for name, mode in (("photo.ppm", "RGB"), ("scan.pgm", "L")):
        image = Image.linear_gradient("L").resize((40, 30)).convert(mode)
        raw = io.BytesIO()
        image.save(raw, "PPM")
        magic, rest = raw.getvalue().split(b"\n", 1)
        path = tmp_path / name
        path.write_bytes(magic + f"\n# taken by {AUTHOR}\n".encode() + rest)
        result, out = sanitized(path)
        assert result.ok and result.family == "pnm", result.reason
        assert AUTHOR.encode() not in out.read_bytes()
        with Image.open(out) as after:
            assert after.mode == mode and after.tobytes() == image.tobytes()


def test_html_is_refused_with_a_reason(sanitized, tmp_path):
    page = tmp_path / "saved.html"
    page.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>"
                    "<img src='http://tracker.example/p.png'></body></html>")
    result, out = sanitized(page)
    assert not result.ok and out is None and result.family == "html"
    assert result.reason.startswith("HTML pages are not cleaned") and not result.hostile


def test_a_jpeg_xl_loses_its_exif_box(corpus, sanitized, tmp_path):
    import subprocess

    jpeg = corpus.jpeg("for-jxl.jpg")
    jxl = tmp_path / "photo.jxl"
    subprocess.run(["cjxl", str(jpeg), str(jxl)], check=True, capture_output=True, timeout=60)
    from sanitize.sanitize_corpus import CAMERA_TAGS, exiftool_write

    exiftool_write(jxl, *CAMERA_TAGS)
    assert leftovers(jxl)
    result, out = sanitized(jxl)
    assert result.ok and result.family == "jxl" and "Exif" in result.removed
    assert leftovers(out) == [] and planted_anywhere(out) == []


def test_a_video_larger_than_the_memory_budget_is_refused_not_half_cleaned(corpus, sanitized):
    """A layout only ffmpeg cleans (a fragmented MP4), whose muxer must seek
    back in its output: no stream for it (the MP4, WAV, AIFF and AVI
    rewrites and Matroska and WebM stream: test_streaming.py, test_avi.py)."""
    result, out = sanitized(corpus.fragmented_mp4(), media_memory=1024)
    assert not result.ok and out is None
    assert result.reason.startswith("too large to clean in memory") and not result.hostile
