"""Pictures written inline, in base64, inside documents: in an EPUB's pages
(an <img>'s data: URI, an inline <svg>, a style's url()) and in an ODF
part (office:binary-data, as flat documents hold them). Each is cleaned as
if sent alone and embedded again; one that cannot be cleaned stops the file.
Also what names a picture's file or a document's source: ODF frame names,
titles and descriptions, mail-merge database names, and Word fields whose
instruction holds a path."""

from __future__ import annotations

import base64
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from sanitize.sanitize_corpus import (
    AUTHOR,
    leftovers,
    planted_anywhere,
    planted_in_bytes,
    write_epub,
)

_DATA = re.compile(rb"data:image/[^;,]*;base64,([A-Za-z0-9+/=]+)")
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
SVGC = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
XLINK = "http://www.w3.org/1999/xlink"
STYLE = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def assert_pictures_clean(data: bytes, tmp_path: Path, count: int) -> None:
    found = [base64.b64decode(m) for m in _DATA.findall(data)]
    assert len(found) == count
    for number, picture in enumerate(found):
        out = tmp_path / f"extracted-{number}.pic"
        out.write_bytes(picture)
        assert leftovers(out) == [] and planted_in_bytes(picture) == []


# -- EPUB -----------------------------------------------------------------------

def _epub(tmp_path: Path, page: str, css: str = "", name: str = "book.epub") -> Path:
    opf = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="id">urn:uuid:1</dc:identifier><dc:title>Diary</dc:title>
<dc:language>uk</dc:language></metadata><manifest>
<item id="c" href="c.xhtml" media-type="application/xhtml+xml"/>
<item id="s" href="s.css" media-type="text/css"/></manifest>
<spine><itemref idref="c"/></spine></package>"""
    return write_epub(tmp_path / name, opf, {"OEBPS/c.xhtml": page,
                                             "OEBPS/s.css": css or "p { margin: 0 }"})


def _page(body: str, head: str = "") -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE html>'
            '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
            f'<head><title>Day one</title>{head}</head><body>{body}</body></html>')


def test_pictures_and_drawings_inside_an_epubs_pages_are_cleaned(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("inline.jpg", orientation=1).read_bytes()
    png = corpus.png().read_bytes()
    head = (f'<meta name="author" content="{AUTHOR}"/><meta name="generator" '
            f'content="WitnessCam 4.2"/><meta name="DC.creator" content="{AUTHOR}"/>'
            f'<style>h1 {{ background: url("data:image/png;base64,{b64(png)}") }}</style>')
    body = (f'<p>The shelling started at dawn.</p>'
            f'<img alt="street" src="data:image/jpeg;base64,{b64(photo)}"/>'
            f'<div style="background-image: url(data:image/jpeg;base64,{b64(photo)})">x</div>'
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
            ' xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="9" height="9"'
            ' inkscape:export-filename="/home/olena/map.png">'
            f'<metadata>{AUTHOR}</metadata>'
            f'<image width="9" height="9" xlink:href="data:image/jpeg;base64,{b64(photo)}"/>'
            '</svg>')
    css = f'body {{ background: url(\'data:image/png;base64,{b64(png)}\') }}'
    original = _epub(tmp_path, _page(body, head), css)
    assert planted_in_bytes(photo) != [] and planted_in_bytes(png) != []
    result, out = sanitized(original)
    assert result.ok and result.family == "epub", result.reason
    cleaned = parts(out)
    page, sheet = cleaned["OEBPS/c.xhtml"], cleaned["OEBPS/s.css"]
    assert b"The shelling started at dawn." in page and b"<title>Day one</title>" in page
    assert b"<meta" not in page and b"olena" not in page.lower() and b"inkscape" not in page
    assert b"<image" in page and b"<img" in page
    assert_pictures_clean(page, tmp_path, 4)
    assert_pictures_clean(sheet, tmp_path, 1)
    assert planted_anywhere(out) == []
    assert any("GPS" in n for n in result.removed), result.removed
    assert "page meta author" in result.removed


def test_a_picture_in_a_tables_old_background_attribute_is_cleaned(corpus, sanitized,
                                                                   tmp_path):
    photo = corpus.jpeg("table.jpg", orientation=1).read_bytes()
    body = (f'<table background="data:image/jpeg;base64,{b64(photo)}"><tr>'
            f'<td lowsrc="data:image/jpeg;base64,{b64(photo)}">x</td></tr></table>')
    result, out = sanitized(_epub(tmp_path, _page(body)))
    assert result.ok, result.reason
    assert_pictures_clean(parts(out)["OEBPS/c.xhtml"], tmp_path, 2)
    assert planted_anywhere(out) == []


@pytest.mark.parametrize("where", ["img", "style", "css", "svg", "pdf", "background"])
def test_an_epub_picture_that_cannot_be_cleaned_refuses_the_book(corpus, sanitized, tmp_path,
                                                                 where):
    broken = b64(corpus.jpeg("broken.jpg", orientation=1).read_bytes()[:300])
    uri = f"data:image/jpeg;base64,{broken}"
    body, css = "<p>text</p>", ""
    if where == "img":
        body += f'<img src="{uri}"/>'
    elif where == "style":
        body += f'<p style="background: url({uri})">x</p>'
    elif where == "css":
        css = f"p {{ background: url({uri}) }}"
    elif where == "svg":  # far enough into the page not to look like a drawing
        body += "<p>" + "words " * 1000 + "</p>" + \
            f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{uri}"/></svg>'

    elif where == "background":
        body += f'<table background="{uri}"><tr><td>x</td></tr></table>'
    else:  # a file that is no picture, embedded all the same
        body += f'<img src="data:application/pdf;base64,{b64(b"%PDF-1.4 " + AUTHOR.encode())}"/>'
    result, out = sanitized(_epub(tmp_path, _page(body), css))
    assert not result.ok and out is None, where


def test_the_check_refuses_an_epub_with_a_page_meta_or_a_picture_left(corpus, tmp_path):
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    photo = corpus.jpeg("left.jpg", orientation=1).read_bytes()
    for page in (_page("<p>x</p>", f'<meta name="author" content="{AUTHOR}"/>'),
                 _page(f'<img src="data:image/jpeg;base64,{b64(photo)}"/>'),
                 _page('<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/jpeg;'
                       f'base64,{b64(photo)}"/></svg>')):
        data = _epub(tmp_path, page).read_bytes()
        with pytest.raises(Failed):
            check("epub", data, Cleaned(data), Limits())


# A browser decodes CSS escapes before it reads a word, and a URL parser drops
# tabs inside an address: each of these loads the photo all the same. Where
# the book keeps it, the photo must come out clean; where the cleaner cannot
# see it plainly, the book is refused.
HIDDEN_PICTURES = {
    "url spelled with an escape, in a style attribute":
        ("page", r'<p style="background: u\72l(data:image/jpeg;base64,PHOTO)">x</p>', ""),
    "data: spelled with an escape, in a style attribute":
        ("page", r'<p style="background: url(d\61ta:image/jpeg;base64,PHOTO)">x</p>', ""),
    "url's first letter escaped, in a style element":
        ("page", r'<style>p { background: \75rl("data:image/jpeg;base64,PHOTO") }</style>', ""),
    "url spelled with an escape, in a style sheet":
        ("page", "", r"p { background: u\72l(data:image/jpeg;base64,PHOTO) }"),
    "image-set with a bare string, in a style sheet":
        ("page", "", 'p { background: image-set("data:image/jpeg;base64,PHOTO" 1x) }'),
    "a style sheet imported from a data: URI":
        ("page", "", '@import "data:text/css;base64,SHEET";'),
    "a tab inside the scheme, in a string":
        ("page", "", 'p { background: url("da\tta:image/jpeg;base64,PHOTO") }'),
    "style sheet text after a comment in a style element":
        ("cleaned", '<style>h1 { color: red }<!-- a note -->'
                    'p { background: url(data:image/jpeg;base64,PHOTO) }</style>', ""),
    "a tab inside the scheme of an img's src":
        ("cleaned", '<img alt="" src="da&#9;ta:image/jpeg;base64,PHOTO"/>', ""),
}


def _hidden_picture_epub(corpus, tmp_path: Path, page: str, css: str) -> Path:
    photo = corpus.jpeg("hidden.jpg", orientation=1).read_bytes()
    assert planted_in_bytes(photo) != []  # its GPS, camera and owner
    photo = b64(photo)
    sheet = b64(f"p {{ background: url(data:image/jpeg;base64,{photo}) }}".encode())
    page, css = (text.replace("PHOTO", photo).replace("SHEET", sheet) for text in (page, css))
    head, body = (page, "") if page.startswith("<style>") else ("", page)
    return _epub(tmp_path, _page("<p>text</p>" + body, head), css)


@pytest.mark.parametrize(("outcome", "page", "css"), HIDDEN_PICTURES.values(),
                         ids=HIDDEN_PICTURES.keys())
def test_a_picture_an_epub_hides_from_a_plain_reading_is_cleaned_or_refused(
        corpus, sanitized, tmp_path, outcome, page, css):
    result, out = sanitized(_hidden_picture_epub(corpus, tmp_path, page, css))
    if outcome == "cleaned":
        assert result.ok, result.reason
        cleaned = parts(out)
        assert_pictures_clean(cleaned["OEBPS/c.xhtml"], tmp_path, 1)
        assert planted_anywhere(out) == []
        assert any("GPS" in n for n in result.removed), result.removed
    else:
        assert not result.ok and out is None
        assert "not a picture that can be cleaned" in result.reason, result.reason


@pytest.mark.parametrize(("outcome", "page", "css"), HIDDEN_PICTURES.values(),
                         ids=HIDDEN_PICTURES.keys())
def test_the_check_refuses_an_epub_that_still_hides_a_picture(corpus, tmp_path, outcome,
                                                              page, css):
    """Should the cleaner miss one, the book is refused, not stored."""
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    data = _hidden_picture_epub(corpus, tmp_path, page, css).read_bytes()
    with pytest.raises(Failed):
        check("epub", data, Cleaned(data), Limits())


ORDINARY_SHEET = r"""@charset "utf-8";
@import url(fonts.css);
@import "notes.css";
@font-face { font-family: "Minion"; src: url("../Fonts/Minion Pro.otf") format("opentype"),
  local("Minion"); }
blockquote p:first-child::before { content: "\201C" }
.metadata:hover, p > data:first-child { color: #333 }
body { background: url(../Images/paper.png) no-repeat; font-family: 'Noto\ Serif' }
"""


def test_an_ordinary_books_styles_stay_as_they_were(sanitized, tmp_path):
    style = "background: url('../Images/rule.png'); font-family: 'Noto\\ Serif'"
    page = _page(f'<p style="{style}">The shelling started at dawn.</p>',
                 '<link rel="stylesheet" href="s.css" type="text/css"/>'
                 '<style>@import "notes.css"; h1 { margin: 0 }</style>')
    result, out = sanitized(_epub(tmp_path, page, ORDINARY_SHEET))
    assert result.ok, result.reason
    cleaned = parts(out)
    assert cleaned["OEBPS/s.css"] == ORDINARY_SHEET.encode()
    assert f'style="{style}"'.encode() in cleaned["OEBPS/c.xhtml"]
    assert b'<style>@import "notes.css"; h1 { margin: 0 }</style>' in cleaned["OEBPS/c.xhtml"]


# -- ODF ------------------------------------------------------------------------

def _odt_with(corpus, tmp_path: Path, content: str, styles: str | None = None,
              name: str = "inline.odt") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(corpus.odt()) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "content.xml":
                body = content.encode()
            dst.writestr(info, body)
        if styles is not None:
            dst.writestr("styles.xml", styles)
    return path


def _content(body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content '
            f'xmlns:office="{OFFICE}" xmlns:text="{TEXT}" xmlns:draw="{DRAW}" '
            f'xmlns:svg="{SVGC}" xmlns:xlink="{XLINK}" office:version="1.2">'
            f'<office:body><office:text><text:p>The bridge was closed at noon.</text:p>'
            f'{body}</office:text></office:body></office:document-content>')


def test_odf_pictures_written_inline_are_cleaned(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("flat.jpg", orientation=1).read_bytes()
    wrapped = "\n".join(re.findall(".{1,72}", b64(photo)))
    content = _content(
        '<text:p><draw:frame draw:name="IMG_20260301_101112" svg:width="2cm" svg:height="1cm">'
        f'<draw:image><office:binary-data>{wrapped}</office:binary-data></draw:image>'
        f'<svg:title>{AUTHOR}</svg:title><svg:desc>C:/Users/OlenaSvidok/IMG.jpg</svg:desc>'
        '</draw:frame></text:p>')
    styles = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-styles '
              f'xmlns:office="{OFFICE}" xmlns:draw="{DRAW}" xmlns:style="{STYLE}" '
              f'office:version="1.2"><office:styles>'
              f'<draw:fill-image draw:name="IMG_Svidok" draw:display-name="IMG_Svidok">'
              f'<office:binary-data>{b64(photo)}</office:binary-data></draw:fill-image>'
              '<style:style style:name="fr" style:family="graphic"><style:graphic-properties '
              'draw:fill="bitmap" draw:fill-image-name="IMG_Svidok"/></style:style>'
              '</office:styles></office:document-styles>')
    original = _odt_with(corpus, tmp_path, content, styles)
    result, out = sanitized(original)
    assert result.ok, result.reason
    cleaned = parts(out)
    for name in ("content.xml", "styles.xml"):
        xml = cleaned[name]
        assert b"Svidok" not in xml and b"IMG_" not in xml and b"svg:title" not in xml
        [data] = re.findall(rb"<office:binary-data>([^<]*)</office:binary-data>", xml)
        picture = base64.b64decode(data)
        extracted = tmp_path / f"{name}.jpg"
        extracted.write_bytes(picture)
        assert leftovers(extracted) == [] and planted_in_bytes(picture) == []
    assert b'draw:name="Bitmap ' in cleaned["styles.xml"]
    assert re.search(rb'draw:fill-image-name="(Bitmap \d+)"', cleaned["styles.xml"]).group(1) \
        == re.search(rb'draw:fill-image draw:name="(Bitmap \d+)"', cleaned["styles.xml"]).group(1)
    assert b'draw:name="Image ' in cleaned["content.xml"]
    assert b"The bridge was closed at noon." in cleaned["content.xml"]
    assert any("GPS" in n for n in result.removed), result.removed


def test_an_odf_inline_picture_that_cannot_be_cleaned_refuses_the_file(corpus, sanitized,
                                                                       tmp_path):
    broken = b64(corpus.jpeg("cut.jpg", orientation=1).read_bytes()[:300])
    for body in (broken, b64(b"%PDF-1.4 " + AUTHOR.encode()), "not base64 at all!"):
        content = _content(f'<text:p><draw:frame><draw:image><office:binary-data>{body}'
                           '</office:binary-data></draw:image></draw:frame></text:p>')
        result, out = sanitized(_odt_with(corpus, tmp_path, content))
        assert not result.ok and out is None


def _soffice(source: Path, fmt: str, tmp_path: Path) -> Path:
    outdir = tmp_path / "converted"
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
                    "--headless", "--convert-to", fmt, "--outdir", str(outdir), str(source)],
                   check=True, capture_output=True, timeout=180)
    return outdir / f"{source.stem}.{fmt}"


def test_a_frame_named_after_its_photo_by_libreoffice_gets_a_neutral_name(corpus, sanitized,
                                                                          tmp_path):
    """A flat document with a photo in a frame named after its file, saved by
    LibreOffice as an ODT: the name, title and description go; a mail-merge
    field loses its database's name and what it showed."""
    photo = corpus.jpeg("IMG_20260301_101112.jpg", orientation=1).read_bytes()
    flat = tmp_path / "statement.fodt"
    flat.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><office:document xmlns:office="{OFFICE}" '
        f'xmlns:text="{TEXT}" xmlns:draw="{DRAW}" xmlns:svg="{SVGC}" xmlns:xlink="{XLINK}" '
        'office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.text">'
        '<office:body><office:text><text:p>The bridge was closed at noon.'
        '<text:database-display text:database-name="OlenaSvidokContacts" '
        f'text:table-name="Svidok_family" text:column-name="Name">{AUTHOR}'
        '</text:database-display></text:p><text:p>'
        '<draw:frame draw:name="IMG_20260301_101112" text:anchor-type="as-char" '
        'svg:width="2cm" svg:height="1.3cm">'
        f'<draw:image><office:binary-data>{b64(photo)}</office:binary-data></draw:image>'
        f'<svg:title>IMG_20260301_101112</svg:title><svg:desc>{AUTHOR}</svg:desc>'
        '</draw:frame></text:p></office:text></office:body></office:document>')
    original = _soffice(flat, "odt", tmp_path)
    content = parts(original)["content.xml"]
    assert b"IMG_20260301_101112" in content and b"Svidok" in content  # as LibreOffice saved it
    result, out = sanitized(original)
    assert result.ok, result.reason
    xml = parts(out)["content.xml"]
    assert b"IMG_2026" not in xml and b"Svidok" not in xml and b"Olena" not in xml
    assert b'draw:name="Image 1"' in xml and b"<svg:title" not in xml
    assert b"The bridge was closed at noon." in xml
    assert planted_anywhere(out) == []
    assert "picture or shape name" in result.removed and "database name" in result.removed


def test_the_check_refuses_odf_names_and_inline_pictures_left(corpus, tmp_path):
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    photo = corpus.jpeg("left.jpg", orientation=1).read_bytes()
    for body in ('<draw:frame draw:name="IMG_20260301_101112"/>',
                 f'<draw:frame draw:name="Image 1"><svg:desc>{AUTHOR}</svg:desc></draw:frame>',
                 '<text:p><text:database-name text:database-name="Svidok" '
                 'text:table-name="t"/></text:p>',
                 f'<draw:frame draw:name="Image 1"><draw:image><office:binary-data>{b64(photo)}'
                 '</office:binary-data></draw:image></draw:frame>'):
        # content.xml alone: the corpus's meta.xml and thumbnail would fail anyway
        with zipfile.ZipFile(_odt_with(corpus, tmp_path, _content(body))) as src, \
                zipfile.ZipFile(tmp_path / "only.odt", "w") as dst:
            for info in src.infolist():
                if info.filename in ("mimetype", "content.xml"):
                    dst.writestr(info.filename, src.read(info))
        data = (tmp_path / "only.odt").read_bytes()
        with pytest.raises(Failed):
            check("odf", data, Cleaned(data), Limits())


# -- DOCX fields ----------------------------------------------------------------

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx_with_fields(corpus, tmp_path: Path) -> Path:
    fields = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> INCLUDEPICTURE "C:\\\\Users\\\\Olena</w:instrText>'
        '</w:r><w:r><w:instrText xml:space="preserve">Svidok\\\\Pictures\\\\IMG_1.jpg" '
        '\\* MERGEFORMAT </w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        '<w:r><w:t>picture</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        '<w:p><w:fldSimple w:instr=" INCLUDETEXT &quot;\\\\\\\\fileserver\\\\Svidok\\\\notes.docx'
        '&quot; "><w:r><w:t>included words</w:t></w:r></w:fldSimple></w:p>'
        '<w:p><w:fldSimple w:instr=" HYPERLINK &quot;file:///C:/Users/OlenaSvidok/map.pdf&quot; '
        '"><w:r><w:t>the map</w:t></w:r></w:fldSimple></w:p>'
        '<w:p><w:fldSimple w:instr=" LINK Excel.Sheet.12 &quot;D:\\\\Svidok\\\\losses.xlsx&quot; '
        '&quot;Sheet1!R1C1&quot; \\a \\f 0 "><w:r><w:t>linked</w:t></w:r></w:fldSimple></w:p>'
        '<w:p><w:fldSimple w:instr=" HYPERLINK &quot;https://example.org/report&quot; ">'
        '<w:r><w:t>the report</w:t></w:r></w:fldSimple></w:p>')
    source = corpus.docx()
    path = tmp_path / "fields.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "word/document.xml":
                body = body.replace(b"</w:body>", fields.encode() + b"</w:body>", 1)
                if b"<w:sectPr" in body:  # sectPr stays the body's last child
                    head, _, tail = body.partition(b"<w:sectPr")
                    sect, _, rest = tail.partition(b"</w:sectPr>")
                    body = head + rest.replace(b"</w:body>", b"<w:sectPr" + sect
                                               + b"</w:sectPr></w:body>", 1)
            dst.writestr(info, body)
    return path


def test_word_fields_lose_the_paths_they_name(corpus, sanitized, tmp_path):
    original = _docx_with_fields(corpus, tmp_path)
    assert b"Svidok" in parts(original)["word/document.xml"]
    result, out = sanitized(original)
    assert result.ok, result.reason
    xml = parts(out)["word/document.xml"]
    assert b"Svidok" not in xml and b"Olena" not in xml and b"file:" not in xml
    for kept in (b"INCLUDEPICTURE &quot;&quot;", b"INCLUDETEXT &quot;&quot;",
                 b"HYPERLINK &quot;&quot;", b"LINK Excel.Sheet.12 &quot;&quot;",
                 b"https://example.org/report", b"included words", b"the map"):
        assert kept in xml or kept.replace(b"&quot;", b'"') in xml, kept
    assert "field file path" in result.removed
    assert planted_anywhere(out) == []


def test_the_check_refuses_a_word_field_path_left(corpus, tmp_path):
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    with zipfile.ZipFile(_docx_with_fields(corpus, tmp_path)) as src:
        types = src.read("[Content_Types].xml")
        fields = re.search(rb"<w:p><w:r><w:fldChar.*</w:p>", src.read("word/document.xml"))
    for field in re.findall(rb"<w:p>.*?</w:p>", fields.group(0))[:4]:
        path = tmp_path / "only-fields.docx"
        with zipfile.ZipFile(path, "w") as dst:
            dst.writestr("[Content_Types].xml", types)
            dst.writestr("word/document.xml", f'<w:document xmlns:w="{W}"><w:body>'.encode()
                         + field + b"</w:body></w:document>")
        data = path.read_bytes()
        with pytest.raises(Failed, match="field file path"):
            check("ooxml", data, Cleaned(data), Limits())
