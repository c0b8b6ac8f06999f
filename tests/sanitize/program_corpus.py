# ruff: noqa: E501
"""Files made by the programs witnesses use, from the test data that packages
on PyPI and npm ship: Microsoft Word, Excel and PowerPoint (Windows and Mac),
Google Docs' and Google Sheets' exports, LibreOffice (Windows, Linux and
macOS; ODT, ODS and DOCX), WPS Office, ONLYOFFICE, Word's, Acrobat's and
Google Docs' PDFs, pdfTeX, a scanner, iPhone, Samsung (a 200-megapixel
Galaxy S24 Ultra photo among them), Huawei, Xiaomi and Nokia phones, and
cameras. Nothing here is made by this project: each file is what its program
wrote, and the program is the one its own bytes name (docProps/app.xml's
Application, meta.xml's generator, a PDF's /Producer, EXIF's Make and
Model); Google's exports name none, and are told by the marks their program
property lists.

`make test` runs this file before pytest: each archive is downloaded once
from the package index's simple page or with npm, its SHA-256 checked, and only the listed members are copied
into the virtualenv's folder (`program-corpus/`, ignored by git). A missing
download or a wrong hash stops `make test`.

Each file lists what identifies in it: `carries` are strings found in its
bytes (zip members and PDF streams decompressed), `tags` are ExifTool tags
it has. The test (test_program_corpus.py) checks both against the original,
so a list that no longer matches its file fails, and then that none is left
after cleaning.
"""

from __future__ import annotations

import hashlib
import html
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Archive:
    registry: str  # "pypi" (a source distribution) or "npm" (the package tarball)
    package: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Sample:
    name: str  # its name in the corpus folder
    archive: str
    member: str  # its path in the archive
    program: str  # what made it, as its own bytes tell
    family: str
    carries: tuple[str, ...]  # identifying strings in its bytes
    tags: tuple[str, ...] = ()  # identifying ExifTool tags (group-less names)
    cleaned: bool = True  # False: refused, and the witness told
    # A file a program put inside the member, a PDF: the /Type of the PDF
    # stream that holds it, taken out as it is.
    inside: str = ""


ARCHIVES = {
    "python-docx": Archive("pypi", "python-docx", "1.2.0", "python_docx-1.2.0.tar.gz",
                           "7bc9d7b7d8a69c9c02ca09216118c86552704edc23bac179283f2e38f86220ce"),
    "python-pptx": Archive("pypi", "python-pptx", "1.0.2", "python_pptx-1.0.2.tar.gz",
                           "479a8af0eaf0f0d76b6f00b0887732874ad2e3188230315290cd1f9dd9cc7095"),
    "xlsx2csv": Archive("pypi", "xlsx2csv", "0.8.6", "xlsx2csv-0.8.6.tar.gz",
                        "618fc502612860de8ab8e3d6195e99ef332fffc68337f6b89e59690aad0d20b5"),
    "olefile": Archive("pypi", "olefile", "0.47", "olefile-0.47.zip",
                       "599383381a0bf3dfbd932ca0ca6515acd174ed48870cbf7fee123d698c192c1c"),
    "pypdf": Archive("pypi", "pypdf", "7.1.1", "pypdf-7.1.1.tar.gz",
                     "2eff4e2fc5fb22a6d6711e6f1166cdc9ab5765d90cd0d77dfea3f4aa91a27b1d"),
    "pillow-heif": Archive("pypi", "pillow-heif", "1.9.0", "pillow_heif-1.9.0.tar.gz",
                           "8a13d15106c9dbbd66a65966edee2ee0de3950c18dc3ea42912442cda803ea4c"),
    "piexif": Archive("pypi", "piexif", "1.1.3", "piexif-1.1.3.zip",
                      "83cb35c606bf3a1ea1a8f0a25cb42cf17e24353fd82e87ae3884e74a302a5f1b"),
    "jpeg-exif": Archive("npm", "jpeg-exif", "1.1.4", "jpeg-exif-1.1.4.tgz",
                         "a24f344926937e91628690dc0893e38682e2ac2bc3b530ee2ccc7f1ebb2a6e41"),
    "exif-parser": Archive("npm", "exif-parser", "0.1.12", "exif-parser-0.1.12.tgz",
                           "b3eaa69cf318f4c9a483b7a19f17ceffd96dd2dcb03366f1c19d37b4d1156981"),
    "exif": Archive("pypi", "exif", "1.0.3", "exif-1.0.3.tar.gz",
                    "4314c05f179145154f762416c0ef2a481cab331257fd910708a02c6e604e0c02"),
    "docx2python": Archive("pypi", "docx2python", "3.6.2", "docx2python-3.6.2.tar.gz",
                           "321474584384d6472a74211d2524b6580c4abcd72db8c3e27d2a6ef38b4f484c"),
    "xlrd": Archive("pypi", "xlrd", "1.2.0", "xlrd-1.2.0.tar.gz",
                    "546eb36cee8db40c3eaa46c351e67ffee6eeb5fa2650b71bc4c758a29a1b29b2"),
    "pyexcel-xlsx": Archive("pypi", "pyexcel-xlsx", "0.6.1", "pyexcel_xlsx-0.6.1.tar.gz",
                            "80b7985d394b73abf5c52212027bbbc0c7f6090192bcbc76403f8672d74c7960"),
    "pyexcel-ods": Archive("pypi", "pyexcel-ods", "0.6.0", "pyexcel-ods-0.6.0.tar.gz",
                           "f61b56515fd4ccd4687f0a112422f74ce8535247ad2da49db90038d7e3ed397c"),
    "ezodf": Archive("pypi", "ezodf", "0.3.2", "ezodf-0.3.2.tar.gz",
                     "000da534f689c6d55297a08f9e2ed7eada9810d194d31d164388162fb391122d"),
    "odfdo": Archive("pypi", "odfdo", "3.27.3", "odfdo-3.27.3.tar.gz",
                     "20d87b7842193917f9804011c83b28a5925a5ff3211d4ac4c5cdade20d5eb54a"),
    "onlyoffice-plone": Archive("pypi", "onlyoffice-plone", "4.1.0", "onlyoffice_plone-4.1.0.tar.gz",
                                "2ce8113c983f78a07db895f8927e8bbf38256d494196c5cd148cda2ff5a414b5"),
}

DOCX = "python_docx-1.2.0/"
PPTX = "python_pptx-1.0.2/features/steps/test_files/"
HEIF = "pillow_heif-1.9.0/tests/images/"
PDF = "pypdf-7.1.1/resources/"
D2P = "docx2python-3.6.2/tests/resources/"
OFFICE_TAGS = ("Creator", "LastModifiedBy", "Company", "Application")

SAMPLES = (
    # Microsoft Word
    Sample("word2011-mac.docx", "python-docx", DOCX + "tests/test_files/test.docx",
           "Microsoft Macintosh Word 14.0 (Word 2011 for Mac)", "docx",
           ("Cisco Employee", "Steve Canny", "w:rsidR", "docProps/thumbnail.jpeg"),
           ("Creator", "LastModifiedBy", "Application")),
    Sample("word365-comments.docx", "python-docx", DOCX + "features/steps/test_files/comments-rich-para.docx",
           "Microsoft Office Word 16.0 (Word 2016 or later, Windows)", "docx",
           ('w:author="Steve Canny"', 'w:initials="SJC"', "2025-06-07T11:20:00Z", "w:rsidR"),
           ("Application",)),
    Sample("word2011-printer.docx", "python-docx", DOCX + "features/steps/test_files/sct-section-props.docx",
           "Microsoft Macintosh Word 14.0 (Word 2011 for Mac)", "docx",
           ("Steve Canny", "Cisco Systems, Inc.", "printerSettings1.bin", "docProps/thumbnail.jpeg"),
           OFFICE_TAGS),
    Sample("word2016-hyperlinks.docx", "python-docx", DOCX + "features/steps/test_files/par-hyperlinks.docx",
           "Microsoft Office Word 16.0 (Windows)", "docx",
           ("Steve Canny", "Cisco Systems, Inc.", "w:rsidR"), ("Creator", "Company", "Application")),
    Sample("word2011-two-authors.docx", "python-docx", DOCX + "features/steps/test_files/tab-stops.docx",
           "Microsoft Macintosh Word 14.0 (Word 2011 for Mac)", "docx",
           ("David Woods", "Steve Canny", "w:rsidR"), ("Creator", "LastModifiedBy", "Application")),
    Sample("word2011-pictures.docx", "python-docx", DOCX + "tests/test_files/having-images.docx",
           "Microsoft Macintosh Word 14.0, with PNGs from Adobe ImageReady", "docx",
           ("Steve Canny", "Cisco Systems, Inc.", "Adobe ImageReady", "docProps/thumbnail.jpeg"),
           OFFICE_TAGS),
    Sample("word2010.doc", "olefile", "olefile-0.47/tests/images/test-ole-file.doc",
           "Microsoft Office Word 14.0 (Word 2010), Word 97-2003 format", "doc",
           ("Laurence Ipsum",), ("Author", "LastModifiedBy"), cleaned=False),
    # Google Docs, LibreOffice, WPS Office
    Sample("google-docs.docx", "docx2python", D2P + "test-docx2python-conversion-google_docs.docx",
           "Google Docs' DOCX export (2020): no docProps at all; Google's marks are every rsid "
           "00000000, paragraph ids counted from 00000001 and a font table of Arial alone",
           "docx", ()),
    Sample("libreoffice7-windows.docx", "docx2python", D2P + "libreoffice_conversion.docx",
           "LibreOffice 7.1.4.2 for Windows, saving as DOCX a document WPS Writer 11 made "
           "(KSOProductBuildVer 2052-11.1.0.10667 and WPS's document id ICV kept)", "docx",
           ("Administrator", "LibreOffice/7.1.4.2$Windows_X86_64",
            "1BB17B8DB1A4468C936C389332FB391A", "2052-11.1.0.10667"),
           ("Creator", "LastModifiedBy", "LastPrinted", "Application", "ICV",
            "KSOProductBuildVer")),
    Sample("libreoffice33-windows.odt", "ezodf", "ezodf-0.3.2/tests/data/empty.odt",
           "LibreOffice 3.3 for Windows (meta.xml generator LibreOffice/3.3$Win32)", "odt",
           ("Manfred Moitzi", "LibreOffice/3.3$Win32", "Thumbnails/thumbnail.png"),
           ("Initial-creator", "Creator", "Generator", "Creation-date")),
    Sample("libreoffice26-mac.odt", "odfdo", "odfdo-3.27.3/src/odfdo/templates/lpod_styles.odt",
           "LibreOffice 26.2 for macOS on Apple silicon, re-saving a document from 2009", "odt",
           ("LibreOffice/26.2.0.3$MacOSX_AARCH64", "2009-08-25T15:21:27"),
           ("Generator", "Creation-date", "Editing-duration")),
    # Microsoft PowerPoint
    Sample("powerpoint2011-notes.pptx", "python-pptx", PPTX + "prs-notes.pptx",
           "Microsoft Macintosh PowerPoint 14.0 (PowerPoint 2011 for Mac)", "pptx",
           ("Steve Canny", "neopraxis.org", "printerSettings1.bin", "docProps/thumbnail.jpeg"),
           ("LastModifiedBy", "Company", "Application")),
    Sample("powerpoint2013.pptx", "python-pptx", PPTX + "shp-embedded-pptx.pptx",
           "Microsoft Office PowerPoint 15.0 (PowerPoint 2013, Windows)", "pptx",
           ("yocanny", "docProps/thumbnail.jpeg"), ("Creator", "LastModifiedBy", "Application")),
    Sample("powerpoint2016-mac-ole.pptx", "python-pptx", PPTX + "shp-access-ole-object.pptx",
           "Microsoft Macintosh PowerPoint 16.0, with an embedded Excel workbook", "pptx",
           ("Steve Canny", "neopraxis.org", "/Users/scanny/", "docProps/thumbnail.jpeg"),
           ("LastModifiedBy", "Company", "Application")),
    Sample("powerpoint2011-links.pptx", "python-pptx", PPTX + "ext-rels.pptx",
           "Microsoft Macintosh PowerPoint 14.0 (PowerPoint 2011 for Mac)", "pptx",
           ("Steve Canny", "neopraxis.org", "printerSettings1.bin"),
           ("LastModifiedBy", "Company", "Application")),
    # Microsoft Excel
    Sample("excel2016-mac.xlsx", "python-pptx", PPTX + "shp-embedded-xlsx.xlsx",
           "Microsoft Macintosh Excel 16.0", "xlsx",
           ("Steve Canny", "/Users/scanny/"), ("Creator", "LastModifiedBy", "Application")),
    Sample("excel2007-dates.xlsx", "xlsx2csv", "xlsx2csv-0.8.6/test/datetime.xlsx",
           "Microsoft Excel 12.0 (Excel 2007)", "xlsx",
           ("Saida Temirkhodjaeva", "Dunkin' Donuts", "docProps/thumbnail.jpeg"), OFFICE_TAGS),
    Sample("excel2010-printer.xlsx", "xlsx2csv", "xlsx2csv-0.8.6/test/float.xlsx",
           "Microsoft Excel 14.0 (Excel 2010)", "xlsx",
           ("lminnkhanov", "MFI Soft", "printerSettings1.bin"), OFFICE_TAGS),
    Sample("excel2007-columns.xlsx", "xlsx2csv", "xlsx2csv-0.8.6/test/last-column-empty.xlsx",
           "Microsoft Excel 12.0 (Excel 2007)", "xlsx",
           ("Kathleen LaVallee", "docProps/thumbnail.jpeg"), ("Creator", "LastModifiedBy", "Application")),
    Sample("workbook-shared.xlsx", "xlsx2csv", "xlsx2csv-0.8.6/test/empty_row.xlsx",
           "a writer stamping Excel 2007's build (fileVersion rupBuild 4505), app.xml left empty",
           "xlsx", ("jboss",)),
    # Google Sheets, WPS Spreadsheets, LibreOffice Calc
    Sample("google-sheets-comment.xlsx", "xlrd", "xlrd-1.2.0/tests/test_comments_gdocs.xlsx",
           "Google Sheets' XLSX export (2013), with a cell comment: no docProps; Google's marks "
           "are the Mac Excel namespaces (mx, mv) on an empty workbookPr and calcPr, "
           "sheets listed state=\"visible\" first, columns 17.14 wide", "xlsx", ()),
    Sample("wps-spreadsheets.xlsx", "pyexcel-xlsx", "pyexcel_xlsx-0.6.1/tests/fixtures/hidden_sheets.xlsx",
           "WPS Spreadsheets 10.1 (Kingsoft, Chinese), app.xml Application \"WPS 表格\"", "xlsx",
           ("chenfu", "WPS 表格", "2052-10.1.0.5740"),
           ("Creator", "Application", "KSOProductBuildVer")),
    Sample("libreoffice5-linux.ods", "pyexcel-ods", "pyexcel-ods-0.6.0/tests/fixtures/ods_formats.ods",
           "LibreOffice 5.0.3.2 for Linux, a spreadsheet first made by OpenOffice", "ods",
           ("Chenfu Wang", "LibreOffice/5.0.3.2$Linux_X86_64", "Thumbnails/thumbnail.png"),
           ("Initial-creator", "Generator", "Creation-date", "Editing-duration")),
    Sample("libreoffice5-mac-comment.ods", "pyexcel-ods",
           "pyexcel-ods-0.6.0/tests/fixtures/comment-in-cell.ods",
           "LibreOffice 5.4.3.2 for macOS, with a dated cell comment", "ods",
           ("LibreOffice/5.4.3.2$MacOSX_X86_64", "2018-05-23T00:00:00", "Thumbnails/thumbnail.png"),
           ("Generator", "Creation-date", "Editing-duration")),
    # PDF
    Sample("word365.pdf", "pypdf", PDF + "git.pdf",
           "Microsoft Word for Microsoft 365 (French), its PDF export", "pdf",
           ("Mohamed Ali ZORGATI", "C5497DE0-1D8C-4EA1-BB50-D789AA612722"),
           ("Author", "Producer", "CreatorTool", "DocumentID")),
    Sample("google-docs.pdf", "pypdf", PDF + "example.pdf",
           "Google Docs' PDF export (Skia/PDF m103), then annotated in a PDF viewer", "pdf",
           ("Google Docs Renderer", "Ievgen", "040b87eb-6149-4ff6-931c-8e9052a99338"),
           ("Producer", "DocumentID")),
    Sample("pdftex-xmp.pdf", "pypdf", PDF + "outline-without-title.pdf",
           "pdfTeX-1.40.23 (TeX Live 2021), hyperref with XMP", "pdf",
           ("pdfTeX-1.40.23", "TeX Live 2021"), ("Producer", "PTEX_Fullbanner")),
    Sample("pdftex-photos.pdf", "pypdf", PDF + "side-by-side-subfig.pdf",
           "pdfTeX-1.40.23, with included camera JPEGs", "pdf",
           ("pdfTeX-1.40.23", "NIKON"), ("Producer", "PTEX_Fullbanner")),
    Sample("excel-pdfmaker.pdf", "pypdf", PDF + "issue-914-xmp-data.pdf",
           "Acrobat PDFMaker 19 for Excel (Chinese), Adobe PDF Library 19.12.68", "pdf",
           ("微软用户", "微软中国", "5e037688-4d15-4367-b9fb-0c806e9cf004"),
           ("Author", "Company", "CreatorTool", "DocumentID")),
    Sample("epson-scan.pdf", "pypdf", PDF + "indirect-rotation.pdf",
           "EPSON Scan (a scanner's PDF)", "pdf", ("EPSON Scan",), ("Producer",)),
    Sample("onlyoffice8.pdf", "onlyoffice-plone",
           "onlyoffice_plone-4.1.0/src/onlyoffice/plone/browser/app_data/en/new.pdf",
           "ONLYOFFICE Docs 8.1.1, its blank PDF form: the form's editable source (a DOCXF, "
           "whose app.xml names ONLYOFFICE too) rides along in a /MetaOForm object no page uses",
           "pdf", ("ONLYOFFICE/8.1.1.27", "/MetaOForm"),
           ("Producer", "Creator", "CreatorTool", "CreateDate")),
    Sample("onlyoffice8-form.docx", "onlyoffice-plone",
           "onlyoffice_plone-4.1.0/src/onlyoffice/plone/browser/app_data/en/new.pdf",
           "ONLYOFFICE Docs 8.1.1: the DOCX it wrote as that PDF's editable source, as it "
           "keeps it in the PDF's /MetaOForm stream (its app.xml names ONLYOFFICE)",
           "docx", ("ONLYOFFICE/8.1.1.27",), ("Application",), inside="/MetaOForm"),
    # Phones
    Sample("iphone-xs.heic", "pillow-heif", HEIF + "heif_other/empty_icc.heic",
           "Apple iPhone XS, iOS 14.6 (two pictures, each with its EXIF and XMP)", "heic",
           ("iPhone XS", "back dual camera 4.25mm"),
           ("GPSLatitude", "GPSLongitude", "Make", "Model", "LensModel", "DateTimeOriginal")),
    Sample("iphone-13-pro.heic", "pillow-heif", HEIF + "heif_other/pug.heic",
           "Apple iPhone 13 Pro, iOS 16.2 (with an HDR gain map)", "heic",
           ("iPhone 13 Pro", "back dual wide camera 5.7mm"),
           ("GPSLatitude", "GPSLongitude", "Make", "Model", "LensModel", "DateTimeOriginal")),
    Sample("galaxy-s25-ultra.heic", "pillow-heif", HEIF + "heif_special/aux_YCbCr.heic",
           "Samsung Galaxy S25 Ultra, firmware S938BXXS3AYDA", "heic",
           ("Galaxy S25 Ultra", "S938BXXS3AYDA", "J50XSRD00SM"),
           ("GPSLatitude", "GPSLongitude", "Make", "Model", "ImageUniqueID", "DateTimeOriginal")),
    Sample("xiaomi.heic", "pillow-heif", HEIF + "heif_special/xiaomi.heic",
           "Xiaomi M2012K11AG (Redmi K40 / POCO F3)", "heic",
           ("M2012K11AG",), ("GPSLatitude", "GPSLongitude", "Make", "Model", "DateTimeOriginal")),
    Sample("galaxy-s24-ultra-200mp.heic", "pillow-heif", HEIF + "heif_special/200MP.heic",
           "Samsung Galaxy S24 Ultra, a 200-megapixel photo (16320x12240) with an HDR gain map",
           "heic", ("Galaxy S24 Ultra", "HK0XLQE00VM"),
           ("Make", "Model", "ImageUniqueID", "DateTimeOriginal")),
    Sample("huawei-p20-pro.jpg", "exif", "exif-1.0.3/exif/tests/github_issue_12.jpg",
           "Huawei P20 Pro (CLT-L09), EMUI 9 build 9.0.0.168(C782E3R1P9), GPS fix from the "
           "cell network", "jpeg",
           ("HUAWEI", "CLT-L09", "9.0.0.168(C782E3R1P9)", "CELLID"),
           ("Make", "Model", "Software", "DateTimeOriginal", "GPSDateStamp",
            "GPSProcessingMethod", "ThumbnailImage")),
    Sample("galaxy-s3-mini.jpg", "exif", "exif-1.0.3/exif/tests/gitlab_issue_28.jpg",
           "Samsung Galaxy S III mini (GT-I8190), firmware I8190XXAMA3, with Samsung's maker "
           "note", "jpeg",
           ("GT-I8190", "I8190XXAMA3"),
           ("Make", "Model", "Software", "DateTimeOriginal", "MakerNoteVersion",
            "ThumbnailImage")),
    Sample("iphone-6-plus.jpg", "jpeg-exif", "package/test/IMG_0001.JPG",
           "Apple iPhone 6 Plus, iOS 9.3", "jpeg",
           ("iPhone 6 Plus", "back camera 4.15mm"),
           ("GPSLatitude", "GPSLongitude", "Make", "Model", "LensModel", "DateTimeOriginal",
            "ThumbnailImage")),
    Sample("lumia-820.jpg", "exif-parser", "package/test/starfish.jpg",
           "Nokia Lumia 820, Windows Phone", "jpeg",
           ("Lumia 820", "Windows Phone"),
           ("GPSLatitude", "GPSLongitude", "Make", "Model", "DateTimeOriginal", "ThumbnailImage")),
    # Cameras
    Sample("olympus-stylus1.jpg", "piexif", "piexif-1.1.3/tests/images/r_olympus.jpg",
           "Olympus STYLUS1, firmware F.0", "jpeg",
           ("V5CF00002", "0266310000262001", "STYLUS1"),
           ("SerialNumber", "InternalSerialNumber", "Make", "Model", "DateTimeOriginal")),
    Sample("sigma-dp3.jpg", "piexif", "piexif-1.1.3/tests/images/r_sigma.jpg",
           "Sigma DP3 Merrill, through SIGMA Photo Pro 5.4.1", "jpeg",
           ("SIGMA DP3 Merrill", "SIGMA Photo Pro"),
           ("SerialNumber", "ImageUniqueID", "Make", "Model", "DateTimeOriginal")),
    Sample("nikon-d2h-gps.jpg", "python-docx", DOCX + "features/steps/test_files/court-exif.jpg",
           "Nikon D2H, GPS written by Opanda PowerExif", "jpeg",
           ("NIKON D2H", "Opanda PowerExif"),
           ("GPSLatitude", "GPSLongitude", "Make", "Model", "DateTimeOriginal")),
    Sample("nikon-d300.jpg", "python-docx", DOCX + "tests/test_files/300-dpi.jpg",
           "Nikon D300, through Adobe Photoshop Elements 8 for Mac", "jpeg",
           ("NIKON D300", "Photoshop Elements 8.0 Macintosh"),
           ("SerialNumber", "Make", "Model", "DateTimeOriginal")),
)


def corpus_root() -> Path:
    """In the virtualenv, where `make test` fetches it, unless told elsewhere."""
    return Path(os.environ.get("INTAKE_PROGRAM_CORPUS", Path(sys.prefix) / "program-corpus"))


def folder(root: Path) -> Path:
    """Where the files are, under the corpus folder."""
    return root / "files"


def identifying(path: Path, sample: Sample) -> list[str]:
    """Which of the sample's identifying values `path` holds: its strings in
    any part (decompressed; UTF-8 or UTF-16), its tags as ExifTool reads them."""
    from sanitize.sanitize_corpus import every_part, exiftool_json

    data = every_part(path.read_bytes())
    found = [v for v in sample.carries
             if any(v.encode(code) in data for code in ("utf-8", "utf-16-le", "utf-16-be"))]
    tags = {key.split(":")[-1] for key, value in exiftool_json(path).items()
            if value not in ("", None, [])}
    return found + sorted(set(sample.tags) & tags)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_pypi(archive: Archive, into: Path) -> Path:
    """The source distribution straight from the package index's simple page
    (PEP 503), the address pip itself reads: nothing is built or run to get
    it (pip download would build each package's metadata, with build tools
    it fetches unpinned). Its SHA-256 is checked by the caller."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    page_url = f"{index}/{archive.package}/"
    with urllib.request.urlopen(page_url, timeout=120) as answer:  # noqa: S310 - https index
        page = answer.read().decode()
    for href in re.findall(r'href="([^"]+)"', page):
        url = urllib.parse.urljoin(page_url, html.unescape(href))
        if urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] == archive.filename:
            path = into / archive.filename
            with urllib.request.urlopen(url, timeout=900) as answer, open(path, "wb") as f:  # noqa: S310
                shutil.copyfileobj(answer, f)
            return path
    raise SystemExit(f"program corpus: {archive.filename} is not on {page_url}")


def _download(archive: Archive, into: Path) -> Path:
    """The archive from its registry; npm checks the registry's integrity
    sum, and the caller the SHA-256 of both kinds."""
    if archive.registry == "pypi":
        try:
            return _from_pypi(archive, into)
        except OSError as exc:
            raise SystemExit(f"program corpus: could not download {archive.filename}: "
                             f"{exc}") from exc
    command = ["npm", "pack", "--silent", "--ignore-scripts", "--pack-destination",
               str(into), f"{archive.package}@{archive.version}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    path = into / archive.filename
    if done.returncode != 0 or not path.exists():
        raise SystemExit(f"program corpus: could not download {archive.filename}:\n"
                         f"{done.stdout}{done.stderr}")
    return path


def _extract(archive: Path, members: dict[str, str], out: Path) -> None:
    """Only the listed members, each to its corpus name; nothing else leaves
    the archive, whatever paths it holds."""
    found = {}
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for member, name in members.items():
                found[name] = z.read(member)
    else:
        with tarfile.open(archive) as t:
            for member, name in members.items():
                f = t.extractfile(member)
                if f is None:
                    raise SystemExit(f"program corpus: {member} is not a file in {archive.name}")
                found[name] = f.read()
    for name, data in found.items():
        (out / name).write_bytes(data)


def fetch(root: Path) -> None:
    archives = root / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    out = folder(root)
    out.mkdir(exist_ok=True)
    for key, archive in ARCHIVES.items():
        path = archives / archive.filename
        if not path.exists() or _sha256(path) != archive.sha256:
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                got = _download(archive, Path(tmp))
                digest = _sha256(got)
                if digest != archive.sha256:
                    raise SystemExit(f"program corpus: {archive.filename} has SHA-256 {digest}, "
                                     f"expected {archive.sha256}")
                shutil.move(got, path)
        members = {s.member: s.name for s in SAMPLES if s.archive == key and not s.inside}
        _extract(path, members, out)
        for sample in SAMPLES:
            if sample.archive == key and sample.inside:
                (out / sample.name).write_bytes(
                    _embedded((out / members[sample.member]).read_bytes(), sample.inside))


def _embedded(pdf: bytes, kind: str) -> bytes:
    """The one stream of this /Type in a PDF, as it is stored decoded."""
    import pikepdf  # the server's, in the virtualenv this runs in

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        found = [o.read_bytes() for o in doc.objects
                 if isinstance(o, pikepdf.Stream) and o.get("/Type") == pikepdf.Name(kind)]
    if len(found) != 1:
        raise SystemExit(f"program corpus: {len(found)} streams of type {kind}, not one")
    return found[0]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: program_corpus.py FOLDER")
    fetch(Path(sys.argv[1]))
    (Path(sys.argv[1]) / ".fetched").touch()
