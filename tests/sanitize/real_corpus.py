# ruff: noqa: E501
"""Files written by the programs witnesses use, with identifying values in them.

LibreOffice (headless) writes ODT, ODS, ODP, ODG, DOCX, XLSX, PPTX and PDF
from flat OpenDocument sources that carry an author, tracked changes,
comments and custom properties, as a user's documents do; the DOCX is also
re-zipped with `zip -r` (directory entries, as any archiver leaves them).
pdfTeX writes a paper with an included PDF figure and a JPEG photo.
libheif's heif-enc, libavif's avifenc and libjxl's cjxl encode a camera JPEG
into HEIC, AVIF and JPEG XL, keeping its EXIF (GPS, serial number) as phones
do. ExifTool plants what cameras write. Nothing is downloaded.

Microsoft Office, Google Docs, OnlyOffice and phone cameras cannot run here:
LibreOffice's Word, Excel and PowerPoint filters, python-docx/openpyxl (the
other corpus) and these encoders stand in for them.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from sanitize.sanitize_corpus import AUTHOR, CAMERA_TAGS, SERIAL, exiftool_write, picture

TOOLS = ("soffice", "pdflatex", "heif-enc", "avifenc", "cjxl", "zip", "exiftool")

OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
NS = (f'xmlns:office="{OFFICE}" '
      'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
      'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
      'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
      'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
      'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
      'xmlns:dc="http://purl.org/dc/elements/1.1/" '
      'xmlns:xlink="http://www.w3.org/1999/xlink" '
      'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
      'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
      'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"')
META = (f"<office:meta><meta:initial-creator>{AUTHOR}</meta:initial-creator>"
        f"<dc:creator>{AUTHOR}</dc:creator><dc:title>Statement</dc:title>"
        "<meta:creation-date>2024-03-01T10:11:12</meta:creation-date>"
        f'<meta:user-defined meta:name="Phone">{SERIAL}</meta:user-defined>'
        "</office:meta>")
ANNOTATION = (f"<office:annotation><dc:creator>{AUTHOR}</dc:creator>"
              "<dc:date>2024-03-01T10:11:12</dc:date><text:p>check the date</text:p>"
              "</office:annotation>")
# Flat OpenDocument sources (long lines: XML as LibreOffice reads it).
TEXT = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document {NS} office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
{META}
<office:body><office:text>
<text:tracked-changes><text:changed-region text:id="c1"><text:insertion>
<office:change-info><dc:creator>{AUTHOR}</dc:creator><dc:date>2024-03-01T10:11:12</dc:date>
</office:change-info></text:insertion></text:changed-region></text:tracked-changes>
<text:p>I saw the convoy on the bridge.{ANNOTATION}</text:p>
<text:p><text:change-start text:change-id="c1"/>Added later.<text:change-end text:change-id="c1"/></text:p>
<text:p>Signed: <text:author-name>{AUTHOR}</text:author-name></text:p>
<text:p>Linked: <draw:frame draw:name="Linked" svg:width="4cm" svg:height="3cm" text:anchor-type="as-char"><draw:image xlink:href="file:///home/OlenaSvidok/Pictures/photo.jpg" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/></draw:frame> <text:a xlink:type="simple" xlink:href="file:///home/OlenaSvidok/Documents/report.pdf">my report</text:a></text:p>
<text:p>From <text:file-name text:display="full">statement.fodt</text:file-name>, begun by <text:initial-creator>{AUTHOR}</text:initial-creator> on <text:creation-date text:date-value="2024-03-01T10:11:12">01/03/24</text:creation-date> <text:creation-time text:time-value="2024-03-01T10:11:12">10:11:12</text:creation-time>, template <text:template-name text:display="full">t.ott</text:template-name>, phone <text:user-defined text:name="Phone">{SERIAL}</text:user-defined>.</text:p>
</office:text></office:body></office:document>
"""
SHEET = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document {NS} office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
{META}
<office:body><office:spreadsheet><table:table table:name="Losses">
<table:table-row><table:table-cell office:value-type="string"><text:p>Tanks</text:p>{ANNOTATION}</table:table-cell>
<table:table-cell office:value-type="float" office:value="3"><text:p>3</text:p></table:table-cell></table:table-row>
</table:table></office:spreadsheet></office:body></office:document>
"""
SLIDES = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document {NS} office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.{{kind}}">
{META}
<office:body><office:{{body}}><draw:page draw:name="One">
<draw:frame svg:x="2cm" svg:y="2cm" svg:width="10cm" svg:height="3cm"><draw:text-box>
<text:p>The shelling started at dawn.</text:p></draw:text-box></draw:frame>{ANNOTATION}
</draw:page></office:{{body}}></office:body></office:document>
"""
TEX = r"""\documentclass{article}
\usepackage{graphicx}
\begin{document}
\title{Report on the shelling}\author{A witness}\date{}\maketitle
The shelling started at dawn. Searchable words: convoy bridge.

\includegraphics[width=4cm]{figure.pdf}
\includegraphics[width=4cm]{photo.jpg}
\end{document}
"""


def available() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def run(*args: str, cwd: Path | None = None, timeout: int = 180) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=timeout, cwd=cwd)


class RealCorpus:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._profile = root / "lo-profile"

    def _soffice(self, target: str, sources: list[Path], out: Path) -> None:
        run("soffice", f"-env:UserInstallation=file://{self._profile}", "--headless",
            "--norestore", "--convert-to", target, "--outdir", str(out), *map(str, sources),
            timeout=300)

    def office(self) -> list[Path]:
        """LibreOffice's own formats and its Microsoft Office filters."""
        # The folder's name is planted: a file-name field shows the whole path.
        src = self.root / "home_Olena_Svidok"
        src.mkdir(exist_ok=True)
        sources = {"statement.fodt": TEXT, "losses.fods": SHEET,
                   "slides.fodp": SLIDES.format(kind="presentation", body="presentation"),
                   "map.fodg": SLIDES.format(kind="graphics", body="drawing")}
        for name, text in sources.items():
            (src / name).write_text(text)
        out = self.root / "lo"
        plan = [("odt", ["statement.fodt"]), ("docx", ["statement.fodt"]),
                ("ods", ["losses.fods"]), ("xlsx", ["losses.fods"]),
                ("odp", ["slides.fodp"]), ("pptx", ["slides.fodp"]), ("odg", ["map.fodg"])]
        for target, names in plan:
            self._soffice(target, [src / n for n in names], out)
        made = sorted(p for p in out.iterdir() if p.is_file())
        # The same DOCX re-zipped with directory entries, as `zip -r` leaves it.
        unpacked = self.root / "unzipped"
        with zipfile.ZipFile(out / "statement.docx") as z:
            z.extractall(unpacked)
        rezipped = self.root / "rezipped.docx"
        run("zip", "-q", "-r", "-X", str(rezipped), ".", cwd=unpacked)
        return [*made, rezipped, *self._variants(out)]

    def _variants(self, out: Path) -> list[Path]:
        """What other writers add to the same documents: LibreOffice desktop's
        empty accelerator settings, an empty font table, and a picture linked
        from the web (a tracking pixel that calls home when the file opens)."""
        desktop = self.root / "desktop.odt"
        shutil.copy(out / "statement.odt", desktop)
        with zipfile.ZipFile(desktop, "a") as z:
            z.writestr("Configurations2/accelerator/current.xml", b"")
        linked = self.root / "linked.docx"
        with zipfile.ZipFile(out / "statement.docx") as src, \
                zipfile.ZipFile(linked, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                body = src.read(info)
                if info.filename == "word/fontTable.xml":
                    body = b""
                elif info.filename == "word/_rels/document.xml.rels":
                    body = body.replace(b"</Relationships>", (
                        b'<Relationship Id="rIdPixel" Type="http://schemas.openxmlformats.org/'
                        b'officeDocument/2006/relationships/image" TargetMode="External" '
                        b'Target="http://tracker.example/p.png?who=Olena%20Svidok"/>'
                        b"</Relationships>"))
                dst.writestr(info, body)
        return [desktop, linked]

    def camera_jpeg(self, name: str = "camera.jpg", size=(640, 480)) -> Path:
        path = self.root / name
        picture(size).save(path, quality=90)
        exiftool_write(path, *CAMERA_TAGS)
        return path

    def paper(self) -> Path:
        """pdfTeX with a PDF figure (its own Info dictionary, which pdfTeX
        records as /PTEX.InfoDict) and a camera photo."""
        work = self.root / "tex"
        work.mkdir(exist_ok=True)
        figure = picture((120, 80))
        figure.save(work / "figure.pdf", "PDF", title="figure", author=AUTHOR)
        shutil.copy(self.camera_jpeg("tex-photo.jpg"), work / "photo.jpg")
        (work / "paper.tex").write_text(TEX)
        run("pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex", cwd=work)
        return work / "paper.pdf"

    def phone_pictures(self) -> list[Path]:
        """HEIC, AVIF and JPEG XL encoded from a camera JPEG, EXIF and all."""
        jpeg = self.camera_jpeg()
        heic, avif, jxl = (self.root / n for n in ("phone.heic", "phone.avif", "phone.jxl"))
        run("heif-enc", "-q", "80", str(jpeg), "-o", str(heic))
        run("avifenc", "-s", "8", str(jpeg), str(avif))
        run("cjxl", str(jpeg), str(jxl))
        exiftool_write(jxl, *CAMERA_TAGS)  # cjxl keeps the JPEG's bytes, not its EXIF box
        return [heic, avif, jxl]

    def all(self) -> list[Path]:
        return [*self.office(), self.paper(), *self.phone_pictures()]
