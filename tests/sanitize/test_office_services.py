"""A document saved from a SharePoint or OneDrive library carries the
library's properties of it in `customXml/` (who created and edited it, by
display name and account), and a labelled one its sensitivity label in
`docMetadata/` (with the organisation's tenant id). Neither is the text:
both go, with what names them, and Writer still opens the copy."""

from __future__ import annotations

import re
import zipfile

from sanitize.sanitize_corpus import (
    AUTHOR,
    package_with,
    planted_in_bytes,
    relationship,
    relationships,
    run,
)

TENANT = "5f1a0c3e-8d2b-4c71-9e6a-3b4d2f7a9c10"
LIBRARY = (
    '<?xml version="1.0" encoding="utf-8"?><p:properties xmlns:p="http://schemas.microsoft.com/'
    'office/2006/metadata/properties" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<documentManagement><_dlc_DocId>SITE-12-345</_dlc_DocId><Reviewer><UserInfo>"
    f"<DisplayName>{AUTHOR}</DisplayName><AccountId>12</AccountId><AccountType/></UserInfo>"
    "</Reviewer></documentManagement></p:properties>")
ITEM_PROPS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?><ds:datastoreItem ds:itemID='
    '"{8A1C7E3B-1F2D-4E5A-9B6C-7D8E9F0A1B2C}" xmlns:ds="http://schemas.openxmlformats.org/'
    'officeDocument/2006/customXml"><ds:schemaRefs><ds:schemaRef ds:uri="http://schemas.'
    'microsoft.com/office/2006/metadata/properties"/></ds:schemaRefs></ds:datastoreItem>')
LABEL = (
    '<?xml version="1.0" encoding="utf-8" standalone="yes"?><clbl:labelList xmlns:clbl='
    '"http://schemas.microsoft.com/office/2020/mipLabelMetadata"><clbl:label id="{3e1c9f1a-'
    f'2b4d-4c5e-8f6a-7b8c9d0e1f2a}}" enabled="1" method="Standard" siteId="{{{TENANT}}}" '
    'removed="0"/></clbl:labelList>')


def _from_a_library(source, path):
    """`source` as Word saves it from a labelled document library."""
    office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    return package_with(source, path, {
        "customXml/item1.xml": LIBRARY.encode(),
        "customXml/itemProps1.xml": ITEM_PROPS.encode(),
        "customXml/_rels/item1.xml.rels": relationships("rId1", office + "customXmlProps",
                                                        "itemProps1.xml"),
        "docMetadata/LabelInfo.xml": LABEL.encode(),
    }, {
        "word/_rels/document.xml.rels": relationship("rIdLib", office + "customXml",
                                                     "../customXml/item1.xml"),
        "_rels/.rels": relationship("rIdLabel", "http://schemas.microsoft.com/office/2020/02/"
                                    "relationships/classificationlabels",
                                    "docMetadata/LabelInfo.xml"),
        "[Content_Types].xml": b'<Override PartName="/customXml/itemProps1.xml" ContentType='
        b'"application/vnd.openxmlformats-officedocument.customXmlProperties+xml"/><Override '
        b'PartName="/docMetadata/LabelInfo.xml" ContentType="application/vnd.ms-office.'
        b'classificationlabels+xml"/>',
    })


def test_a_library_documents_service_parts_go_and_it_still_opens(corpus, sanitized, tmp_path):
    original = _from_a_library(corpus.docx(), tmp_path / "library.docx")
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert {"part customXml/item1.xml", "part docMetadata/LabelInfo.xml"} <= set(result.removed)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        everything = b"".join(z.read(name) for name in names)
    assert not [n for n in names if n.startswith(("customXml/", "docMetadata/"))]
    assert planted_in_bytes(everything) == [] and TENANT.encode() not in everything
    assert b"customXml" not in everything and b"LabelInfo" not in everything
    converted = tmp_path / "text"
    run("soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
        "--convert-to", "txt:Text", "--outdir", str(converted), str(out))
    text = (converted / f"{out.stem}.txt").read_text(encoding="utf-8-sig")
    assert "The shelling began at six in the morning." in text


def test_the_check_refuses_a_copy_that_keeps_a_service_part(corpus, sanitized, tmp_path):
    import pytest

    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = _from_a_library(corpus.docx(), tmp_path / "library.docx")
    _result, out = sanitized(original)
    kept = tmp_path / "kept.docx"
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(kept, "w") as w:
        for info in z.infolist():
            w.writestr(info, z.read(info))
        w.writestr("customXml/item1.xml", LIBRARY)
    with pytest.raises(Failed, match="part left"):
        check("ooxml", original.read_bytes(), Cleaned(kept.read_bytes()), Limits())


REVISION = ('<xr:revisionPtr xmlns:xr="http://schemas.microsoft.com/office/spreadsheetml/2014/'
            'revision" revIDLastSave="0" documentId="8_{4C1D5E2A-7B3F-4A6E-9D8C-1E2F3A4B5C6D}" '
            'xr10:uidLastSave="{00000000-0000-0000-0000-000000000000}" xmlns:xr10="http://'
            'schemas.microsoft.com/office/spreadsheetml/2016/revision10"/>')
SHEET_UID = b'xr:uid="{9A8B7C6D-5E4F-4321-8765-0FEDCBA98765}"'


def _ids(data: bytes) -> list[bytes]:
    import re

    return re.findall(rb"<[\w]+:(?:docId|creationId|revisionPtr)\b|\b\w+:uid=", data)


def test_ids_kept_through_every_copy_of_a_document_go(corpus, sanitized, tmp_path):
    """Word's docId (python-docx's template carries Word's), PowerPoint's
    creationIds (python-pptx's masters and layouts carry them), Excel's
    documentId and uids: each ties a copy to the files made from the same
    original. They go; the extension that held a creationId goes with it,
    and Impress still opens the presentation."""
    book = corpus.xlsx()
    with zipfile.ZipFile(book) as z:
        parts = {info.filename: z.read(info) for info in z.infolist()}
    workbook = parts["xl/workbook.xml"]
    parts["xl/workbook.xml"] = re.sub(
        rb"(<workbook\b[^>]*>)", lambda m: m.group(1) + REVISION.encode(), workbook, count=1)
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(
        b"<sheet ", b'<sheet xmlns:xr="http://schemas.microsoft.com/office/spreadsheetml/2014/'
        b'revision" ' + SHEET_UID + b" ", 1)
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    for original in (corpus.docx(), corpus.pptx(), book):
        with zipfile.ZipFile(original) as z:
            assert _ids(b"".join(z.read(n) for n in z.namelist())), original.name
        result, out = sanitized(original)
        assert result.ok, result.reason
        with zipfile.ZipFile(out) as z:
            everything = b"".join(z.read(n) for n in z.namelist())
        assert _ids(everything) == [], original.name
        assert b"<p:ext uri=\"{BB962C8B-B14F-4D97-AF65-F5344CB8AC3E}\"/>" not in everything
        if original.suffix == ".pptx":
            converted = tmp_path / "pdf"
            run("soffice", f"-env:UserInstallation=file://{tmp_path}/lo", "--headless",
                "--convert-to", "pdf", "--outdir", str(converted), str(out))
            assert (converted / f"{out.stem}.pdf").stat().st_size > 0


def test_the_check_refuses_a_copy_that_keeps_a_document_id(corpus, sanitized, tmp_path):
    import pytest

    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = corpus.docx()
    _result, out = sanitized(original)
    kept = tmp_path / "kept.docx"
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(kept, "w") as w:
        for info in z.infolist():
            body = z.read(info)
            if info.filename == "word/settings.xml":
                body = body.replace(b"</w:settings>", b'<w14:docId xmlns:w14="http://schemas.'
                                    b'microsoft.com/office/word/2010/wordml" w14:val="24062061"/>'
                                    b"</w:settings>")
            w.writestr(info, body)
    check("ooxml", original.read_bytes(), Cleaned(out.read_bytes()), Limits())
    with pytest.raises(Failed, match="document ids left"):
        check("ooxml", original.read_bytes(), Cleaned(kept.read_bytes()), Limits())
