"""Signed files: a signature names its signer (the certificate inside it,
and in a PDF the /Name, /Location and /ContactInfo beside it) and says when,
to the second. A cleaned PDF keeps its fields, unsigned, and poppler's
pdfsig, a reader's own check, finds no signer in it; an office file or a
book loses the parts its format signs in."""

from __future__ import annotations

import io

import pytest

from sanitize.sanitize_corpus import AUTHOR, planted_in_bytes, run


def _flat(path) -> bytes:
    """Every object and stream of a PDF, decompressed."""
    import pikepdf

    with pikepdf.open(path) as pdf:
        flat = io.BytesIO()
        pdf.save(flat, compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.disable,
                 stream_decode_level=pikepdf.StreamDecodeLevel.generalized)
    return flat.getvalue()


def _signer(path) -> str:
    result = run("pdfsig", str(path))
    return result.stdout.decode(errors="replace")


def test_a_signed_pdf_loses_its_signer_and_keeps_its_text_and_field(corpus, sanitized):
    import pikepdf

    original = corpus.signed_pdf()
    said = _signer(original)
    assert f"Signer Certificate Common Name: {AUTHOR}" in said  # a reader sees it signed
    assert "Signing Time" in said
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert {"digital signature", "signature field V", "signature field AP",
            "document security store", "signature permissions"} <= set(result.removed)
    flat = _flat(out)
    assert planted_in_bytes(flat) == []
    assert AUTHOR.encode() not in flat and AUTHOR.encode().hex().encode() not in flat.lower()
    assert b"+380501234567" not in flat
    assert "not signed" in _signer(out) and AUTHOR not in _signer(out)
    with pikepdf.open(out) as pdf:
        field = pdf.Root.AcroForm.Fields[0]
        assert str(field.FT) == "/Sig" and field.T == "Signature1"  # the field stays
        assert "/SigFlags" not in pdf.Root.AcroForm
    text = run("pdftotext", str(out), "-").stdout.decode()
    assert "The convoy passed at dawn." in text


@pytest.mark.parametrize("left", ["dictionary", "field value", "appearance", "store", "perms"])
def test_the_check_refuses_a_copy_that_keeps_any_of_a_signature(corpus, left):
    """Should the cleaner miss any part of a signature, the copy is refused."""
    import pikepdf

    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.pdf import clean
    from intake.server.sanitize.verify import Failed, check

    original = corpus.signed_pdf().read_bytes()
    cleaned = clean(original, Limits(), lambda *_: None)
    with pikepdf.open(io.BytesIO(cleaned.data)) as pdf:
        check("pdf", original, cleaned, Limits())  # the cleaner's own copy passes
        field = pdf.Root.AcroForm.Fields[0]
        if left == "dictionary":
            field.V = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Sig,
                                                           Name=pikepdf.String(AUTHOR)))
        elif left == "field value":
            field.V = pdf.make_indirect(pikepdf.Dictionary(Filter=pikepdf.Name("/Adobe.PPKLite")))
        elif left == "appearance":
            field.AP = pikepdf.Dictionary(N=pdf.make_stream(b"BT (x) Tj ET"))
        elif left == "store":
            pdf.Root.DSS = pikepdf.Dictionary(Certs=[pdf.make_stream(b"certificate")])
        else:
            pdf.Root.Perms = pikepdf.Dictionary()
        tampered = io.BytesIO()
        pdf.save(tampered)
    with pytest.raises(Failed, match="signature"):
        check("pdf", original, Cleaned(tampered.getvalue()), Limits())


SIGNATURE_PARTS = {"docx": ["_xmlsignatures/origin.sigs", "_xmlsignatures/sig1.xml",
                            "_xmlsignatures/_rels/origin.sigs.rels"],
                   "odt": ["META-INF/documentsignatures.xml"],
                   "epub": ["META-INF/signatures.xml"]}


@pytest.mark.parametrize("family", SIGNATURE_PARTS)
def test_an_office_file_or_book_loses_its_signatures(corpus, sanitized, family):
    """Word's `_xmlsignatures/`, ODF's `META-INF/documentsignatures.xml`, an
    EPUB's `META-INF/signatures.xml`: each names the signer in its
    certificate and says when it signed. They go, with what pointed at them."""
    import zipfile

    original = corpus.signed_office(family)
    with zipfile.ZipFile(original) as z:
        assert set(SIGNATURE_PARTS[family]) <= set(z.namelist())
        assert b"2024-03-01T10:11:12Z" in z.read(SIGNATURE_PARTS[family][-1 if family != "docx"
                                                                        else 1])
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert {f"part {name}" for name in SIGNATURE_PARTS[family]} <= set(result.removed)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        everything = b"".join(z.read(name) for name in names)
    assert not set(SIGNATURE_PARTS[family]) & set(names)
    assert planted_in_bytes(everything) == []
    assert b"xmldsig" not in everything and b"2024-03-01T10:11:12Z" not in everything
    assert b"digital-signature" not in everything.replace(
        b"package.digital-signature-origin", b"")  # the relationship and override are gone


@pytest.mark.parametrize("family", SIGNATURE_PARTS)
def test_the_check_refuses_a_copy_that_keeps_a_signature_part(corpus, sanitized, tmp_path,
                                                              family):
    """Should the cleaner keep a signature part, the copy is refused."""
    import zipfile

    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = corpus.signed_office(family)
    result, out = sanitized(original)
    assert result.ok, result.reason
    kind = {"docx": "ooxml", "odt": "odf", "epub": "epub"}[family]
    check(kind, original.read_bytes(), Cleaned(out.read_bytes()), Limits())
    part = SIGNATURE_PARTS[family][-1 if family != "docx" else 1]
    with zipfile.ZipFile(original) as z:
        signature = z.read(part)
    kept = tmp_path / f"kept.{family}"
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(kept, "w") as w:
        for info in z.infolist():
            w.writestr(info, z.read(info))
        w.writestr(part, signature)
    with pytest.raises(Failed, match="part left"):
        check(kind, original.read_bytes(), Cleaned(kept.read_bytes()), Limits())
