"""An EPUB's references outside the book: a page's <img src>, <link href>,
scripts, frames and objects, a refresh, xml:base and <base>, a style's url()
and @import (escapes decoded, as a browser reads them), a package
document's remote items. Opening a cleaned book must fetch nothing from an
address the sender chose; the book's own files, links and anchors stay."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from sanitize.sanitize_corpus import write_epub

HOST = "tracker.example"
TEXT = "The shelling started at dawn."


def _book(tmp_path: Path, body: str = "", head: str = "", css: str = "p { margin: 0 }",
          items: str = "", metadata: str = "", page_name: str = "c.xhtml",
          extra: dict[str, str] | None = None) -> Path:
    opf = f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="id">urn:uuid:1</dc:identifier><dc:title>Diary</dc:title>
<dc:language>uk</dc:language>{metadata}</metadata><manifest>
<item id="c" href="{page_name}" media-type="application/xhtml+xml"/>
<item id="s" href="s.css" media-type="text/css"/>{items}</manifest>
<spine><itemref idref="c"/></spine></package>"""
    page = ('<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE html>'
            '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
            f'<head><title>Day one</title>{head}</head><body><p>{TEXT}</p>{body}</body></html>')
    return write_epub(tmp_path / "book.epub", opf,
                      {f"OEBPS/{page_name}": page, "OEBPS/s.css": css, **(extra or {})})


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


# Each: where it is planted (page body, page head, style sheet), what is
# planted, what must be gone from the cleaned book, the label `removed` has.
HOSTILE = {
    "img src": ("body", f'<img alt="x" src="http://{HOST}/p.png"/>', HOST,
                "external reference: img src"),
    "link href": ("head", f'<link rel="stylesheet" href="https://{HOST}/s.css"/>', HOST,
                  "external reference: link href"),
    "script src": ("body", f'<script src="http://{HOST}/s.js"></script>', HOST, "script"),
    "inline script": ("body", f"<script>fetch('http://{HOST}/')</script>", HOST, "script"),
    "event handler": ("body", f'<img src="p.png" onerror="location=\'http://{HOST}/\'"/>',
                      HOST, "event handler"),
    "iframe": ("body", f'<iframe src="http://{HOST}/f.xhtml"></iframe>', HOST,
               "external reference: iframe"),
    "iframe srcdoc": ("body", f'<iframe srcdoc="&lt;img src=http://{HOST}/p.png&gt;"></iframe>',
                      HOST, "srcdoc"),
    "object data": ("body", f'<object data="http://{HOST}/o.svg" type="image/svg+xml">'
                    'a map</object>', HOST, "external reference: object"),
    "embed": ("body", f'<embed src="http://{HOST}/e.swf"/>', HOST, "external reference: embed"),
    "meta refresh": ("head", f'<meta http-equiv="Refresh" content="0; url=http://{HOST}/"/>',
                     HOST, "meta refresh"),
    "xml:base": ("body", f'<p xml:base="http://{HOST}/"><img alt="" src="p.png"/></p>', HOST,
                 "xml:base"),
    "base": ("head", f'<base href="http://{HOST}/"/>', HOST, "base"),
    "video poster and source": ("body", f'<video poster="http://{HOST}/v.png"><source '
                                f'src="http://{HOST}/v.mp4"/></video>', HOST,
                                "external reference: video poster"),
    "srcset": ("body", f'<img alt="" src="p.png" srcset="p.png 1x, http://{HOST}/p.png 2x"/>',
               HOST, "external reference: img srcset"),
    "preload imagesrcset": ("head", '<link rel="preload" as="image" href="p.png" '
                            f'imagesrcset="p.png 1x, http://{HOST}/p.png 2x"/>', HOST,
                            "external reference: link imagesrcset"),
    "mathml altimg": ("body", '<math xmlns="http://www.w3.org/1998/Math/MathML" '
                      f'altimg="http://{HOST}/f.png"><mi>x</mi></math>', HOST,
                      "external reference: math altimg"),
    "svg element outside a drawing": ("body", '<image xmlns="http://www.w3.org/2000/svg" '
                                      f'href="http://{HOST}/p.png"/>', HOST,
                                      "drawing element outside a drawing"),
    "absolute path": ("body", '<img alt="" src="/etc/x"/>', "/etc/x",
                      "external reference: img src"),
    "a path leaving the package": ("body", '<img alt="" src="../../x.png"/>', "../../x",
                                   "external reference: img src"),
    "dots percent-encoded": ("body", '<img alt="" src="%2e%2e/%2E%2E/x.png"/>', "x.png",
                             "external reference: img src"),
    "file: URL": ("body", '<img alt="" src="file:///home/olena/x.png"/>', "olena",
                  "external reference: img src"),
    "protocol-relative": ("body", f'<img alt="" src="//{HOST}/p.png"/>', HOST,
                          "external reference: img src"),
    "backslashes": ("body", f'<img alt="" src="\\\\{HOST}\\share\\p.png"/>', HOST,
                    "external reference: img src"),
    "a tab in the scheme": ("body", f'<img alt="" src="ht&#9;tp://{HOST}/p.png"/>', HOST,
                            "external reference: img src"),
    "a file: link to click": ("body", '<a href="file:///home/olena/notes.txt">notes</a>',
                              "olena", "external reference: a href"),
    "style attribute url()": ("body", f'<p style="background: url(http://{HOST}/p.png)">x</p>',
                              HOST, "external reference: url()"),
    "style element @import": ("head", f'<style>@import "http://{HOST}/s.css"; h1 {{ margin: 0 }}'
                              '</style>', HOST, "external reference: @import"),
    "style sheet url()": ("css", f"p {{ background: url('https://{HOST}/p.png') }}", HOST,
                          "external reference: url()"),
    "style sheet @import url()": ("css", f"@import url(//{HOST}/s.css) screen;\np {{ margin: 0 }}",
                                  HOST, "external reference: @import"),
    "style sheet font from a path outside": ("css", '@font-face { font-family: "F"; src: '
                                             'url("/usr/share/fonts/f.otf") }', "/usr/share",
                                             "external reference: url()"),
    "url spelled with an escape": ("css", rf"p {{ background: u\72l(http://{HOST}/p.png) }}",
                                   HOST, "external reference: style"),
    "@import spelled with an escape": ("css", rf'@im\70ort "http://{HOST}/s.css";', HOST,
                                       "external reference: style"),
    "an escape inside the address": ("css", rf"p {{ background: url(http\3a //{HOST}/p.png) }}",
                                     HOST, "external reference: style"),
    "image-set in a style attribute": ("body", '<p style=\'background: image-set('
                                       f'"http://{HOST}/p.png" 1x)\'>x</p>', HOST,
                                       "external reference: style"),
    # A namespace's url() stays (a name, never fetched), and only that.
    "a url() after the namespaces": ("css", "@namespace url(http://www.w3.org/1999/xhtml);\n"
                                     f"p {{ background: url(http://{HOST}/p.png) }}", HOST,
                                     "external reference: url()"),
    "a namespace rule after a rule": ("css", f"p {{ margin: 0 }}\n@namespace z url(http://{HOST}"
                                      "/late);", HOST, "external reference: url()"),
    "an @import after a namespace": ("css", f'@namespace x url(a);@import "http://{HOST}/s.css";',
                                     HOST, "external reference: @import"),
    "a namespace spelled with an escape": ("css", rf"@namespace x u\72l(http://{HOST}/x);", HOST,
                                           "external reference: style"),
    "an unterminated url at the end": ("body", f'<p style="background: url(http://{HOST}/p.png">'
                                       'x</p>', HOST, "external reference: style"),
}


def _hostile_book(tmp_path: Path, where: str, planted: str) -> Path:
    if where == "css":
        return _book(tmp_path, css=planted)
    return _book(tmp_path, **{where: planted})


def _mentions(parts: dict[str, bytes], marker: str) -> bool:
    from intake.server.sanitize import css

    return any(marker in css.unescape(body.decode("utf-8", "replace")).replace("\\", "/")
               .replace("%2E", ".").replace("%2e", ".")
               for name, body in parts.items() if not name.endswith(".opf"))


@pytest.mark.parametrize(("where", "planted", "marker", "label"), HOSTILE.values(),
                         ids=HOSTILE.keys())
def test_a_reference_outside_the_book_is_gone_after_cleaning(sanitized, tmp_path, where,
                                                              planted, marker, label):
    original = _hostile_book(tmp_path, where, planted)
    assert _mentions(_parts(original), marker)
    result, out = sanitized(original)
    assert result.ok, result.reason
    cleaned = _parts(out)
    assert not _mentions(cleaned, marker), cleaned["OEBPS/c.xhtml"]
    assert label in result.removed, result.removed
    assert TEXT.encode() in cleaned["OEBPS/c.xhtml"]


@pytest.mark.parametrize(("where", "planted", "marker", "label"), HOSTILE.values(),
                         ids=HOSTILE.keys())
def test_the_check_refuses_a_book_that_still_refers_outside(tmp_path, where, planted, marker,
                                                            label):
    """Should the cleaner be bypassed, the book is refused, not stored."""
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    data = _hostile_book(tmp_path, where, planted).read_bytes()
    with pytest.raises(Failed):
        check("epub", data, Cleaned(data), Limits())


def test_what_is_left_around_a_removed_element_stays(sanitized, tmp_path):
    body = (f'<p>before<script src="http://{HOST}/s.js"></script>after</p>'
            f'<object data="http://{HOST}/o.svg">fallback</object>tail')
    result, out = sanitized(_book(tmp_path, body))
    assert result.ok, result.reason
    page = _parts(out)["OEBPS/c.xhtml"]
    assert b"<p>beforeafter</p>" in page and b"tail" in page and b"fallback" not in page


REMOTE_ITEMS = {
    "items": (f'<item id="a" href="https://{HOST}/a.mp3" media-type="audio/mpeg" '
              'properties="remote-resources"/>'),
    "metadata": f'<link rel="record" href="http://{HOST}/record.xml"/>',
}


@pytest.mark.parametrize("where", REMOTE_ITEMS)
def test_a_package_documents_remote_resources_go(sanitized, tmp_path, where):
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = _book(tmp_path, **{where: REMOTE_ITEMS[where]})
    result, out = sanitized(original)
    assert result.ok, result.reason
    opf = _parts(out)["OEBPS/content.opf"]
    assert HOST.encode() not in opf and b'href="c.xhtml"' in opf and b'idref="c"' in opf
    assert any(n.startswith("external reference: opf") for n in result.removed)
    data = original.read_bytes()
    with pytest.raises(Failed):
        check("epub", data, Cleaned(data), Limits())


def test_a_page_or_drawing_is_known_by_the_manifest_not_its_name(sanitized, tmp_path):
    """A reading system shows a part as its manifest says: a page named c.txt
    is a page, and a drawing whose first bytes hide that it is one is a
    drawing."""
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    drawing = ("<!--" + "x" * 5000 + '--><svg xmlns="http://www.w3.org/2000/svg">'
               f'<image href="http://{HOST}/d.png"/></svg>')
    original = _book(tmp_path, f'<img src="http://{HOST}/p.png"/>', page_name="c.txt",
                     items='<item id="d" href="d.bin" media-type="image/svg+xml"/>',
                     extra={"OEBPS/d.bin": drawing})
    result, out = sanitized(original)
    assert result.ok, result.reason
    cleaned = _parts(out)
    assert HOST.encode() not in cleaned["OEBPS/c.txt"] + cleaned["OEBPS/d.bin"]
    assert TEXT.encode() in cleaned["OEBPS/c.txt"]
    data = original.read_bytes()
    with pytest.raises(Failed):
        check("epub", data, Cleaned(data), Limits())


ORDINARY_SHEET = r"""@charset "utf-8";
@import url(fonts.css);
@import "notes.css";
@namespace url(http://www.w3.org/1999/xhtml);
@namespace epub "http://www.idpf.org/2007/ops";
@namespace m url('http://www.w3.org/1998/Math/MathML');
@font-face { font-family: "Minion"; src: url("../Fonts/Minion Pro.otf") format("opentype"),
  local("Minion"); }
body { background: url(../Images/paper.png) no-repeat; font-family: 'Noto\ Serif' }
.note { filter: url(#shadow) }
epub|switch, m|math { display: block }
"""
ORDINARY_HEAD = ('<link rel="stylesheet" href="s.css" type="text/css"/>'
                 '<link rel="stylesheet" href="../Styles/book.css"/>'
                 '<style>@import "notes.css"; h1 { background: url("../Images/rule.png") }'
                 '</style>')
ORDINARY_BODY = (
    '<h1 id="start">Day one</h1>'
    '<p><img src="../Images/street.jpg" alt="the street"/>'
    '<img src="map%20small.png" srcset="map%20small.png 1x, map.png 2x" alt=""/></p>'
    '<p>See <a href="#start">the start</a>, <a href="c2.xhtml#s2">day two</a>, '
    '<a epub:type="noteref" href="notes.xhtml#n1">1</a> and '
    '<a href="https://example.org/report">the report</a> or '
    '<a href="mailto:desk@example.org">write</a>.</p>'
    '<audio src="../Audio/siren.mp3" controls="controls"/>'
    '<p style="background: url(\'../Images/rule.png\')">x</p>')


def test_an_ordinary_books_own_files_links_and_anchors_stay(sanitized, tmp_path):
    from intake.server.sanitize import xmlsafe

    original = _book(tmp_path, ORDINARY_BODY, ORDINARY_HEAD, ORDINARY_SHEET)
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert not [n for n in result.removed if "external" in n or n in (
        "script", "event handler", "base", "xml:base")], result.removed
    cleaned = _parts(out)
    assert cleaned["OEBPS/s.css"] == ORDINARY_SHEET.encode()

    def attributes(page: bytes) -> list:
        root = xmlsafe.parse(page).getroot()
        return [(e.tag, sorted(e.attrib.items()), e.text) for e in root.iter()
                if isinstance(e.tag, str)]

    assert attributes(cleaned["OEBPS/c.xhtml"]) == attributes(_parts(original)["OEBPS/c.xhtml"])


@pytest.mark.parametrize("style", [
    "a { background: url(" + " " * 200_000 + "x }",
    "a { background: url(" + "\t" * 200_000 + "'x }",
    "@import url(" + " " * 200_000 + ";",
    "@import" + " " * 200_000 + "x;",
    "@namespace" + " " * 200_000 + "x" + " " * 200_000 + "url(" + " " * 200_000 + "x;",
    "@namespace x url(a);" * 20_000 + "a { background: url(" + " " * 200_000 + "x }",
], ids=["url", "url quoted", "@import url", "@import", "@namespace", "many @namespaces"])
def test_a_long_run_of_spaces_in_a_style_is_read_in_linear_time(style):
    """A url( followed by spaces and no ")" once made each pattern try every
    split of the spaces between its two \\s*: a megabyte of them, a few
    hundred bytes zipped, took the cleaner hours. Now the time is the text's."""
    import time

    from intake.server.sanitize import css
    from intake.server.sanitize.epub_references import scrub_style, style_clean

    started = time.process_time()
    assert css.references(style) is None and css.plain_urls(style) is None
    assert scrub_style(style, "OEBPS/s.css", []) is None
    assert not style_clean(style, "OEBPS/s.css")
    assert css.data_urls(style) == 0
    assert time.process_time() - started < 2


# A style sheet a browser reads in another encoding than the cleaner's UTF-8:
# one its @charset names (ISO-2022-JP drops the escape sequence inside "url("),
# or, with none, its page's (UTF-16 pairs the bytes the cleaner reads with NULs
# between them).
OTHER_ENCODINGS = {
    "@charset iso-2022-jp": b'@charset "iso-2022-jp";\np { background: ur\x1b(Bl(http://'
                            + HOST.encode() + b'/p.png) }',
    "utf-16 without a mark": f"p {{ background: url(http://{HOST}/p.png) }}".encode("utf-16-le"),
}


def _as_browsers_read(sheet: bytes) -> list[str]:
    """A style sheet as a browser may decode it: as UTF-8 when it starts with
    UTF-8's byte order mark, which wins over @charset and the page's
    encoding; else in any encoding those could name."""
    if sheet.startswith(b"\xef\xbb\xbf"):
        return [sheet[3:].decode("utf-8", "replace")]
    return [sheet.decode(name, "replace") for name in
            ("utf-8", "iso2022_jp", "utf-16-le", "utf-16-be", "shift_jis", "gb18030")]


@pytest.mark.parametrize("sheet", OTHER_ENCODINGS.values(), ids=OTHER_ENCODINGS.keys())
def test_a_style_sheet_is_read_by_a_browser_as_the_cleaner_read_it(sanitized, tmp_path, sheet):
    from intake.server.sanitize.epub_references import style_clean

    assert not all(style_clean(t, "OEBPS/s.css") for t in _as_browsers_read(sheet))
    result, out = sanitized(_book(tmp_path, css=sheet))
    assert result.ok, result.reason
    cleaned = _parts(out)["OEBPS/s.css"]
    assert all(style_clean(t, "OEBPS/s.css") for t in _as_browsers_read(cleaned)), cleaned


@pytest.mark.parametrize("sheet", OTHER_ENCODINGS.values(), ids=OTHER_ENCODINGS.keys())
def test_the_check_refuses_a_style_sheet_a_browser_may_read_otherwise(tmp_path, sheet):
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    data = _book(tmp_path, css=sheet).read_bytes()
    with pytest.raises(Failed):
        check("epub", data, Cleaned(data), Limits())


def test_a_style_sheet_in_another_alphabet_keeps_its_words(sanitized, tmp_path):
    """UTF-8 beyond ASCII gets UTF-8's byte order mark, and nothing else changes."""
    sheet = 'h1::before { content: "Розділ " }\np { margin: 0 }'
    result, out = sanitized(_book(tmp_path, css=sheet))
    assert result.ok, result.reason
    assert _parts(out)["OEBPS/s.css"] == b"\xef\xbb\xbf" + sheet.encode()


def test_a_table_of_contents_names_no_folder_of_its_maker(sanitized, tmp_path):
    """An NCX entry is followed on a click, as a link: one naming a file: path
    or a place outside the book (where it was made) points nowhere after
    cleaning; places in the book and web addresses stay."""
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    points = ["c.xhtml#start", "https://example.org/report", "file:///home/olena/book/c.xhtml",
              "../../../home/olena/c.xhtml", "\\\\share\\olena\\c.xhtml"]
    ncx = ('<?xml version="1.0" encoding="UTF-8"?><ncx xmlns="http://www.daisy.org/z3986/2005/'
           'ncx/" version="2005-1"><head/><docTitle><text>Diary</text></docTitle><navMap>'
           + "".join(f'<navPoint id="p{n}" playOrder="{n + 1}"><navLabel><text>Part {n}</text>'
                     f'</navLabel><content src="{src}"/></navPoint>'
                     for n, src in enumerate(points)) + "</navMap></ncx>")
    original = _book(tmp_path, items='<item id="ncx" href="toc.ncx" '
                     'media-type="application/x-dtbncx+xml"/>', extra={"OEBPS/toc.ncx": ncx})
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert "external reference: ncx content" in result.removed
    cleaned = _parts(out)["OEBPS/toc.ncx"].decode()
    assert re.findall(r'<content src="([^"]*)"', cleaned) == points[:2] + ["", "", ""]
    assert "olena" not in cleaned and "Part 4" in cleaned
    data = original.read_bytes()
    with pytest.raises(Failed, match="external reference"):
        check("epub", data, Cleaned(data), Limits())
