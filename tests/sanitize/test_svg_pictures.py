"""Pictures embedded in an SVG as data: URIs (Inkscape's default when a photo
is imported) are cleaned as if sent alone and embedded again; one that cannot
be cleaned stops the file. Also for an SVG inside an office file."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from sanitize.sanitize_corpus import leftovers, planted_in_bytes

SVG_HEAD = ("<svg xmlns='http://www.w3.org/2000/svg' "
            "xmlns:xlink='http://www.w3.org/1999/xlink' width='96' height='64'>")
_DATA = re.compile(rb"data:image/[^;,]*;base64,([A-Za-z0-9+/=]+)")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def embedded(data: bytes) -> list[bytes]:
    return [base64.b64decode(m) for m in _DATA.findall(data)]


def pixels(data: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size, im.convert("RGB").tobytes()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_picture_clean(picture: bytes, tmp_path: Path, original: bytes) -> None:
    out = tmp_path / "extracted.pic"
    out.write_bytes(picture)
    assert leftovers(out) == []
    assert planted_in_bytes(picture) == []
    assert pixels(picture) == pixels(original)


def test_a_photo_embedded_in_an_svg_loses_its_metadata(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("imported.jpg", orientation=1).read_bytes()
    path = write(tmp_path, "embed.svg", SVG_HEAD + "<image width='96' height='64' "
                 f"xlink:href='data:image/jpeg;base64,{b64(photo)}'/></svg>")
    assert planted_in_bytes(embedded(path.read_bytes())[0]) != []
    result, out = sanitized(path)
    assert result.ok, result.reason
    [picture] = embedded(out.read_bytes())
    assert picture != photo
    assert_picture_clean(picture, tmp_path, photo)
    assert any(n.startswith("inside embedded picture: ") and "GPS" in n for n in result.removed)


def test_base64_across_lines_a_png_in_a_style_and_a_drawing_in_a_drawing(corpus, sanitized,
                                                                         tmp_path):
    """Older Inkscape wraps its base64; a style may embed a picture with url();
    a drawing may embed another, percent-encoded, which embeds a photo."""
    png = corpus.png().read_bytes()
    photo = corpus.jpeg("inner.jpg", orientation=1).read_bytes()
    wrapped = "\n".join(re.findall(".{1,76}", b64(png)))
    inner = (SVG_HEAD + "<script>fetch('http://tracker.example/')</script>"
             f"<image href='data:image/jpeg;base64,{b64(photo)}' width='9' height='9'/></svg>")
    path = write(tmp_path, "layers.svg", SVG_HEAD +
                 "<style>rect { fill: url(\"data:image/png;base64," + b64(png) + "\") }</style>"
                 f"<image xlink:href='data:image/png;name=Olena.png;base64,{wrapped}'/>"
                 f"<image href='data:image/svg+xml;charset=utf-8,{quote(inner)}'/></svg>")
    result, out = sanitized(path)
    assert result.ok, result.reason
    data = out.read_bytes()
    assert b"Olena" not in data and b"tracker.example" not in data
    first, second, drawing = embedded(data)
    assert_picture_clean(first, tmp_path, png)
    assert_picture_clean(second, tmp_path, png)
    assert drawing.startswith(b"<?xml") and b"<script" not in drawing
    [nested] = embedded(drawing)
    assert_picture_clean(nested, tmp_path, photo)


@pytest.mark.parametrize(("what", "uri"), [
    ("a picture cut short", "data:image/jpeg;base64,{jpeg_head}"),
    ("a kind no cleaner reads", "data:image/x-icon;base64," + b64(b"\0\0\1\0" + bytes(60))),
    ("text said to be a picture", "data:image/png;base64," + b64(b"Olena Svidok, Kyiv")),
    ("base64 a browser would not read", "data:image/png;base64,iVBO*w0KGgo"),
])
def test_an_embedded_picture_that_cannot_be_cleaned_stops_the_file(corpus, sanitized,
                                                                   tmp_path, what, uri):
    photo = corpus.jpeg("imported.jpg", orientation=1).read_bytes()
    uri = uri.format(jpeg_head=b64(photo[:400]))
    path = write(tmp_path, "broken.svg", SVG_HEAD + f"<image xlink:href='{uri}'/></svg>")
    result, out = sanitized(path)
    assert not result.ok and out is None, what
    assert "picture inside the drawing" in result.reason and not result.hostile


def test_drawings_nested_past_the_limit_are_refused_as_a_bomb(corpus, sanitized, tmp_path):
    png = corpus.png().read_bytes()
    svg = SVG_HEAD + f"<image href='data:image/png;base64,{b64(png)}'/></svg>"
    for _ in range(3):
        svg = SVG_HEAD + f"<image href='data:image/svg+xml;base64,{b64(svg.encode())}'/></svg>"
    result, _ = sanitized(write(tmp_path, "deep.svg", svg))
    assert not result.ok and result.hostile and "nested too deep" in result.reason


def test_the_check_finds_metadata_left_in_an_embedded_picture(corpus):
    from intake.server.sanitize import verify
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.limits import Limits

    photo = corpus.jpeg("imported.jpg", orientation=1).read_bytes()
    svg = (SVG_HEAD + f"<image href='data:image/jpeg;base64,{b64(photo)}'/></svg>").encode()
    with pytest.raises(verify.Failed, match="metadata left"):
        verify.check("svg", svg, Cleaned(svg), Limits())


def test_an_svg_with_a_photo_inside_a_docx_is_cleaned_too(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("imported.jpg", orientation=1).read_bytes()
    source = corpus.docx("with-drawing.docx")
    with zipfile.ZipFile(source) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"<Default ", b'<Default Extension="svg" ContentType="image/svg+xml"/><Default ', 1)
    parts["word/media/image1.svg"] = (
        SVG_HEAD + f"<image xlink:href='data:image/jpeg;base64,{b64(photo)}'/></svg>").encode()
    path = tmp_path / "drawing.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    result, out = sanitized(path)
    assert result.ok, result.reason
    with zipfile.ZipFile(out) as z:
        [picture] = embedded(z.read("word/media/image1.svg"))
    assert_picture_clean(picture, tmp_path, photo)
    assert any(n.startswith("inside image1.svg: inside embedded picture: ") for n in
               result.removed)


def test_a_fragment_after_an_embedded_drawing_is_set_aside_as_a_browser_does(sanitized,
                                                                             tmp_path):
    inner = (SVG_HEAD + "<metadata>Olena Svidok</metadata><linearGradient id='g'/></svg>")
    uri = f"data:image/svg+xml;base64,{b64(inner.encode())}"
    path = write(tmp_path, "fragment.svg", SVG_HEAD + f"<rect fill=\"url('{uri}#g')\"/>"
                 f"<image href='{uri}#Olena%20Svidok'/></svg>")
    result, out = sanitized(path)
    assert result.ok, result.reason
    data = out.read_bytes()
    assert b"Olena" not in data and b"#g&quot;)" in data
    assert all(b"Olena" not in drawing for drawing in embedded(data))
