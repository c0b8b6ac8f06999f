"""A book's obfuscated fonts (IDPF's algorithm, or Adobe's) are keyed by its
unique identifier, which the cleaner replaces: they are de-obfuscated, so
the cleaned book still shows them, and encryption.xml goes. A book whose
encryption.xml says anything else (a shop's DRM, a font not in the book)
is refused with the reason."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from sanitize.sanitize_corpus import write_epub

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
IDENTIFIER = "urn:uuid:7b1f0c2e-4d3a-4e5f-9a8b-1c2d3e4f5a6b"
IDPF = "http://www.idpf.org/2008/embedding"
ADOBE = "http://ns.adobe.com/pdf/enc#RC"


def _obfuscated(font: bytes, algorithm: str, identifier: str) -> bytes:
    """As a book maker (Sigil, calibre, InDesign) obfuscates: the spec's steps."""
    if algorithm == IDPF:
        key = hashlib.sha1("".join(identifier.split()).encode()).digest()  # noqa: S324
        length = 1040
    else:
        key, length = bytes.fromhex(identifier.removeprefix("urn:uuid:").replace("-", "")), 1024
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(font[:length])) + font[length:]


def _book(tmp_path: Path, algorithm: str, uri: str = "OEBPS/fonts/DejaVuSans.ttf",
          identifier: str = IDENTIFIER) -> Path:
    opf = f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:identifier id="other">isbn:000</dc:identifier>
<dc:identifier id="id">
  {identifier}
</dc:identifier><dc:title>Diary</dc:title><dc:language>uk</dc:language></metadata>
<manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/>
<item id="f" href="fonts/DejaVuSans.ttf" media-type="font/ttf"/></manifest>
<spine><itemref idref="c"/></spine></package>"""
    page = ('<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
            "<head><title>Day one</title><style>@font-face { font-family: D; src: "
            'url(fonts/DejaVuSans.ttf) } p { font-family: D }</style></head><body>'
            "<p>The convoy passed at dawn.</p></body></html>")
    encryption = (
        '<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:'
        'container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        f'<enc:EncryptionMethod Algorithm="{algorithm}"/><enc:CipherData>'
        f'<enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData></encryption>')
    font = FONT.read_bytes()
    hidden = _obfuscated(font, algorithm, identifier.strip()) if algorithm in (IDPF, ADOBE) \
        else font
    return write_epub(tmp_path / "book.epub", opf, {
        "OEBPS/c.xhtml": page, "OEBPS/fonts/DejaVuSans.ttf": hidden,
        "META-INF/encryption.xml": encryption})


@pytest.mark.parametrize("algorithm", [IDPF, ADOBE], ids=["IDPF", "Adobe"])
def test_an_obfuscated_font_is_readable_after_the_identifier_is_replaced(sanitized, tmp_path,
                                                                         algorithm):
    original = _book(tmp_path, algorithm)
    with zipfile.ZipFile(original) as z:
        assert z.read("OEBPS/fonts/DejaVuSans.ttf") != FONT.read_bytes()
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert {"font obfuscation", "part META-INF/encryption.xml", "opf:identifier"} \
        <= set(result.removed)
    with zipfile.ZipFile(out) as z:
        assert z.read("OEBPS/fonts/DejaVuSans.ttf") == FONT.read_bytes()
        assert "META-INF/encryption.xml" not in z.namelist()
        assert IDENTIFIER.encode() not in z.read("OEBPS/content.opf")


@pytest.mark.parametrize(("algorithm", "uri", "reason"), [
    ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/fonts/DejaVuSans.ttf", "DRM"),
    (IDPF, "http://fonts.example/DejaVuSans.ttf", "not in it"),
    (IDPF, "OEBPS/fonts/Missing.ttf", "not in it"),
], ids=["a shop's DRM", "a font elsewhere", "a font not in the book"])
def test_a_book_encrypted_otherwise_is_refused_with_the_reason(sanitized, tmp_path, algorithm,
                                                               uri, reason):
    result, _out = sanitized(_book(tmp_path, algorithm, uri))
    assert not result.ok and reason in result.reason


def test_the_check_refuses_a_book_that_keeps_its_encryption_xml(sanitized, tmp_path):
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = _book(tmp_path, IDPF)
    _result, out = sanitized(original)
    kept = tmp_path / "kept.epub"
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(kept, "w") as w:
        for info in z.infolist():
            w.writestr(info, z.read(info))
        w.writestr("META-INF/encryption.xml", "<encryption/>")
    with pytest.raises(Failed, match="encryption.xml left"):
        check("epub", original.read_bytes(), Cleaned(kept.read_bytes()), Limits())
