"""A protected document keeps its password's hash, to check it when the
protection is lifted: offline, it can be tried against guesses as fast as a
machine hashes, and a password is often one its owner uses elsewhere. The
hashes go; the protection stays, without a password, and the text with it."""

from __future__ import annotations

import re
import zipfile

import pytest

from sanitize.sanitize_corpus import package_with, run

PASSWORD = "Olena1985"
MODERN = (b'algorithmName="SHA-512" hashValue="k5Yl1Wm0f8Q8xJq7pH2tVqFj2u7Q9q0L5h9dXo3Jr'
          b'0x1aN5nO7k3E1s9w2Xy4zB6cD8eF0gH2iJ4kL6mN8oP0qQ==" saltValue="c2FsdHNhbHRzYWx0c2'
          b'FsdA==" spinCount="100000" ')
HASHES = re.compile(rb'(?:password|hashValue|saltValue|hashData|saltData|w:hash|w:salt|'
                    rb'workbookPassword|protection-key)="[^"]+"|RedlineProtectionKey'
                    rb'|ModifyPasswordInfo|modifyVerifier')


def _protected(corpus, tmp_path, kind: str):
    """A protected file as each program writes one: openpyxl's sheet and
    workbook passwords (with a SHA-512 hash beside the legacy one, as Excel
    writes it now), LibreOffice's ODS made from it, Word's document
    protection and PowerPoint's modify password."""
    import openpyxl

    if kind in ("xlsx", "ods"):
        book = openpyxl.Workbook()
        sheet = book.active
        sheet["A1"] = "The convoy passed at dawn."
        sheet.protection.sheet = True
        sheet.protection.password = PASSWORD
        book.security.workbookPassword = PASSWORD
        book.security.lockStructure = True
        plain = tmp_path / "protected-plain.xlsx"
        book.save(plain)
        with zipfile.ZipFile(plain) as z:
            sheet_xml = z.read("xl/worksheets/sheet1.xml")
        xlsx = package_with(plain, tmp_path / "protected.xlsx", {
            "xl/worksheets/sheet1.xml": sheet_xml.replace(b"<sheetProtection ",
                                                          b"<sheetProtection " + MODERN)}, {})
        if kind == "xlsx":
            return xlsx
        run("soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
            "--convert-to", "ods", "--outdir", str(tmp_path), str(xlsx))
        return tmp_path / "protected.ods"
    if kind == "docx":
        source = corpus.docx()
        with zipfile.ZipFile(source) as z:
            settings = z.read("word/settings.xml")
        protection = (b'<w:documentProtection w:edit="readOnly" w:enforcement="1" '
                      b'w:cryptProviderType="rsaAES" w:cryptAlgorithmClass="hash" '
                      b'w:cryptAlgorithmType="typeAny" w:cryptAlgorithmSid="14" '
                      b'w:cryptSpinCount="100000" w:hash="k5Yl1Wm0f8Q8xJq7pH2tVq==" '
                      b'w:salt="c2FsdHNhbHRzYWx0c2FsdA=="/>')
        settings = re.sub(rb"(<w:settings\b[^>]*>)", lambda m: m.group(1) + protection,
                          settings, count=1)
        return package_with(source, tmp_path / "protected.docx",
                            {"word/settings.xml": settings}, {})
    source = corpus.pptx()
    verifier = (b'<p:modifyVerifier cryptProviderType="rsaAES" cryptAlgorithmClass="hash" '
                b'cryptAlgorithmType="typeAny" cryptAlgorithmSid="14" spinCount="100000" '
                b'saltData="c2FsdHNhbHRzYWx0c2FsdA==" hashData="k5Yl1Wm0f8Q8xJq7pH2tVq=="/>')
    return package_with(source, tmp_path / "protected.pptx", {}, {"ppt/presentation.xml":
                                                                   verifier})


def _everything(path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return b"".join(z.read(name) for name in z.namelist())


@pytest.mark.parametrize("kind", ["xlsx", "ods", "docx", "pptx"])
def test_a_password_hash_goes_and_the_protection_and_text_stay(corpus, sanitized, tmp_path,
                                                               kind):
    original = _protected(corpus, tmp_path, kind)
    assert HASHES.search(_everything(original)), kind
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert "password hash" in result.removed
    cleaned = _everything(out)
    assert HASHES.findall(cleaned) == []
    if kind == "xlsx":
        assert b'<sheetProtection ' in cleaned and b'sheet="1"' in cleaned
    if kind == "ods":
        assert b'table:protected="true"' in cleaned
    if kind == "docx":
        assert b'w:edit="readOnly"' in cleaned
    if kind in ("xlsx", "ods"):
        converted = tmp_path / "csv"
        run("soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
            "--convert-to", "csv", "--outdir", str(converted), str(out))
        assert "The convoy passed at dawn." in (converted / f"{out.stem}.csv").read_text()


# Where each kind keeps its hash, and one to put back into a cleaned copy.
PUT_BACK = {"xlsx": ("xl/worksheets/sheet1.xml", b"<sheetProtection ",
                     b'<sheetProtection password="8444" '),
            "ods": ("content.xml", b'table:protected="true"',
                    b'table:protected="true" table:protection-key="J/HgqkMtelhuRHNGQstVw1gxQ6c="'),
            "docx": ("word/settings.xml", b"<w:documentProtection ",
                     b'<w:documentProtection w:hash="k5Yl1Wm0f8Q8xJq7pH2tVq==" '),
            "pptx": ("ppt/presentation.xml", b"</p:presentation>",
                     b'<p:modifyVerifier hashData="k5Yl1Wm0f8Q8xJq7pH2tVq=="/></p:presentation>')}


@pytest.mark.parametrize("kind", PUT_BACK)
def test_the_check_refuses_a_copy_that_keeps_a_password_hash(corpus, sanitized, tmp_path, kind):
    """Should the cleaner miss a hash, the copy is refused."""
    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = _protected(corpus, tmp_path, kind)
    _result, out = sanitized(original)
    family = "odf" if kind == "ods" else "ooxml"
    check(family, original.read_bytes(), Cleaned(out.read_bytes()), Limits())
    part, where, back = PUT_BACK[kind]
    with zipfile.ZipFile(out) as z:
        body = z.read(part)
    assert where in body
    kept = package_with(out, tmp_path / f"kept.{kind}", {part: body.replace(where, back, 1)}, {})
    with pytest.raises(Failed, match="password hash left"):
        check(family, original.read_bytes(), Cleaned(kept.read_bytes()), Limits())
