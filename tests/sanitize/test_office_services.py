"""A document saved from a SharePoint or OneDrive library carries the
library's properties of it in `customXml/` (who created and edited it, by
display name and account), and a labelled one its sensitivity label in
`docMetadata/` (with the organisation's tenant id). Neither is the text:
both go, with what names them, and Writer still opens the copy."""

from __future__ import annotations

import zipfile

from sanitize.sanitize_corpus import AUTHOR, planted_in_bytes, run

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
    with zipfile.ZipFile(source) as z:
        parts = {info.filename: z.read(info) for info in z.infolist()}
    parts["customXml/item1.xml"] = LIBRARY.encode()
    parts["customXml/itemProps1.xml"] = ITEM_PROPS.encode()
    parts["customXml/_rels/item1.xml.rels"] = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/customXmlProps" Target="itemProps1.xml"/>'
        b"</Relationships>")
    parts["docMetadata/LabelInfo.xml"] = LABEL.encode()
    parts["word/_rels/document.xml.rels"] = parts["word/_rels/document.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdLib" Type="http://schemas.openxmlformats.'
        b'org/officeDocument/2006/relationships/customXml" Target="../customXml/item1.xml"/>'
        b"</Relationships>")
    parts["_rels/.rels"] = parts["_rels/.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdLabel" Type="http://schemas.microsoft.com/'
        b'office/2020/02/relationships/classificationlabels" Target="docMetadata/LabelInfo.xml"'
        b"/></Relationships>")
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/customXml/itemProps1.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.customXmlProperties+xml"/><Override PartName='
        b'"/docMetadata/LabelInfo.xml" ContentType="application/vnd.ms-office.classification'
        b'labels+xml"/></Types>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    return path


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
