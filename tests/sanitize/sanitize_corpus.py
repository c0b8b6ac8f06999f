"""A corpus made here, by real tools, with identifying values planted in it.

Pillow, pikepdf, python-docx, mutagen and ffmpeg write the files; ExifTool
plants GPS, serial numbers, names and dates the way cameras and phones do.
Nothing is downloaded. Files are small (a few KiB, media a second long).
"""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

AUTHOR = "Olena Svidok"
SERIAL = "SN7731QX42"
MAKE, MODEL = "AcmeCam", "Phone9Pro"
SOFTWARE = "WitnessCam 4.2"
WHEN = "2024:03:01 10:11:12"
LAT, LON = 50.4501, 30.5234
PLANTED = [AUTHOR, "Olena", "Svidok", SERIAL, MAKE, MODEL, SOFTWARE, "2024:03:01", "2024-03-01",
           "50.4501", "30.5234", "Kyiv street 5", "calibrated-by-olena"]
# ExifTool group-less tag names that identify, whatever their value.
IDENTIFYING = {"GPSLatitude", "GPSLongitude", "GPSPosition", "GPSCoordinates", "Make", "Model",
               "SerialNumber", "Artist", "Author", "Creator", "LastModifiedBy", "By-line",
               "OwnerName", "CameraSerialNumber", "LensSerialNumber", "Copyright",
               "DateTimeOriginal", "CreateDate", "ModifyDate", "ThumbnailImage",
               "PreviewImage", "Software", "Encoder", "Comment", "Title", "Location"}



def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, timeout=120, **kw)


def exiftool_json(path: Path) -> dict:
    out = run("exiftool", "-j", "-a", "-G1", "-n", "-x", "System:all", str(path)).stdout
    return json.loads(out)[0]


def leftovers(path: Path) -> list[str]:
    """What ExifTool still finds that identifies: planted values, or tags that
    identify by their very presence."""
    found = []
    for key, value in exiftool_json(path).items():
        name = key.split(":")[-1]
        text = json.dumps(value)
        if any(p.lower() in text.lower() for p in PLANTED):
            found.append(f"{key}={text[:60]}")
        elif name in IDENTIFYING and key.split(":")[0] not in ("ExifTool", "File") \
                and value not in ("0000:00:00 00:00:00", 0, ""):  # zeroed dates say nothing
            found.append(key)
    return found


def planted_in_bytes(data: bytes) -> list[str]:
    return [p for p in PLANTED if p.encode() in data or p.encode("utf-16-be") in data]


def every_part(data: bytes) -> bytes:
    """The file's bytes with every zip member and PDF stream decompressed:
    where a value hides from a plain search."""
    parts = [data]
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                body = z.read(name)
                parts.append(body)
                if body.startswith((b"PK", b"%PDF")):
                    parts.append(every_part(body))
    if data.startswith(b"%PDF"):
        import pikepdf

        with pikepdf.open(io.BytesIO(data)) as pdf:
            for obj in pdf.objects:
                parts.append(repr(obj).encode(errors="replace"))
                if isinstance(obj, pikepdf.Stream):
                    try:
                        parts.append(obj.read_bytes())
                    except pikepdf.PdfError:
                        parts.append(obj.read_raw_bytes())
    return b"\n".join(parts)


def planted_anywhere(path: Path) -> list[str]:
    return planted_in_bytes(every_part(path.read_bytes()))


def write_epub(path: Path, opf: str, parts: dict[str, str | bytes]) -> Path:
    """An EPUB as a book maker writes it: the mimetype first and stored, the
    container naming OEBPS/content.opf, then `parts` (names in the zip)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                   '<rootfile full-path="OEBPS/content.opf" '
                   'media-type="application/oebps-package+xml"/></rootfiles></container>')
        z.writestr("OEBPS/content.opf", opf)
        for name, data in parts.items():
            z.writestr(name, data)
    return path


PACKAGE = "http://schemas.openxmlformats.org/package/2006/"


def relationship(rid: str, kind: str, target: str) -> bytes:
    """An OOXML relationship; `kind` after the package namespace, or a whole URI."""
    uri = kind if kind.startswith("http") else PACKAGE + kind
    return f'<Relationship Id="{rid}" Type="{uri}" Target="{target}"/>'.encode()


def relationships(rid: str, kind: str, target: str) -> bytes:
    """A relationships part holding one."""
    return (f'<?xml version="1.0"?><Relationships xmlns="{PACKAGE}relationships">'.encode()
            + relationship(rid, kind, target) + b"</Relationships>")


def package_with(source: Path, path: Path, added: dict[str, bytes],
                 inserted: dict[str, bytes]) -> Path:
    """A copy of the zip package `source` at `path`, with the parts `added`
    and, in each part named in `inserted`, its bytes put before the part's
    closing tag (a relationship, a content type)."""
    with zipfile.ZipFile(source) as z:
        parts = {info.filename: z.read(info) for info in z.infolist()}
    for name, text in inserted.items():
        body = parts[name]
        end = body.rindex(b"</")
        parts[name] = body[:end] + text + body[end:]
    parts.update(added)
    with zipfile.ZipFile(path, "w") as z:
        for name, body in parts.items():
            z.writestr(name, body, zipfile.ZIP_STORED if name == "mimetype"
                       else zipfile.ZIP_DEFLATED)
    return path


def exiftool_write(path: Path, *tags: str) -> None:
    run("exiftool", "-q", "-q", "-overwrite_original", "-n", *tags, str(path))


CAMERA_TAGS = (f"-GPSLatitude={LAT}", "-GPSLatitudeRef=N", f"-GPSLongitude={LON}",
               "-GPSLongitudeRef=E", f"-Make={MAKE}", f"-Model={MODEL}",
               f"-SerialNumber={SERIAL}", f"-Artist={AUTHOR}", f"-Software={SOFTWARE}",
               f"-DateTimeOriginal={WHEN}", f"-XMP-dc:Creator={AUTHOR}")


def picture(size=(96, 64)):
    from PIL import Image

    image = Image.new("RGB", size)
    image.putdata([((x * 7) % 256, (y * 11) % 256, (x * y) % 256)
                   for y in range(size[1]) for x in range(size[0])])
    return image


def icc_profile(description: str) -> bytes:
    """A minimal ICC v2 profile whose only tag is its description."""
    text = description.encode() + b"\0"
    tag = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 79
    body_offset = 128 + 4 + 12
    header = bytearray(128)
    header[4:8], header[12:16], header[16:20] = b"none", b"mntr", b"RGB "
    header[20:24], header[36:40] = b"XYZ ", b"acsp"
    profile = bytes(header) + struct.pack(">I", 1) + \
        struct.pack(">4sII", b"desc", body_offset, len(tag)) + tag
    return struct.pack(">I", len(profile)) + profile[4:]


def standard_icc() -> bytes:
    """A standard sRGB profile as programs ship it: lcms's, in pikepdf."""
    import pikepdf

    return (Path(pikepdf.__file__).parent / "pdfa" / "data" / "sRGB.icc").read_bytes()


def with_tag(profile: bytes, signature: bytes, text: str) -> bytes:
    """The profile with one more tag (a 'text' tag), as a tool that writes the
    device's model or owner into a standard profile leaves it."""
    (count,) = struct.unpack(">I", profile[128:132])
    table = bytearray()
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", profile[132 + 12 * i:144 + 12 * i])
        table += struct.pack(">4sII", sig, offset + 12, size)
    body = profile[132 + 12 * count:]
    body += b"\0" * (-len(body) % 4)
    tag = b"text" + b"\0" * 4 + text.encode() + b"\0"
    offset = 132 + 12 * (count + 1) + len(body)
    table += struct.pack(">4sII", signature, offset, len(tag))
    out = profile[:128] + struct.pack(">I", count + 1) + bytes(table) + body + tag
    return struct.pack(">I", len(out)) + out[4:]


class Corpus:
    """`scale` multiplies picture sides and media durations (the benchmark
    uses larger files than the tests)."""

    def __init__(self, root: Path, scale: int = 1):
        self.root, self.scale = root, scale
        self.size = (96 * scale, 64 * scale)
        self.SINE = ("-f", "lavfi", "-i", f"sine=frequency=440:duration={scale}")
        self.VIDEO = ("-f", "lavfi", "-i",
                      f"testsrc=size={96 * scale}x{64 * scale}:rate=10:duration={scale}")

    def path(self, name: str) -> Path:
        return self.root / name

    # -- images -----------------------------------------------------------------
    def jpeg(self, name="photo.jpg", orientation=6, icc_description=None, icc=None) -> Path:
        path = self.path(name)
        thumb = self.path(f"thumb-{name}")
        picture((32, 24)).save(thumb, quality=80)
        exiftool_write(thumb, *CAMERA_TAGS)  # the thumbnail keeps its own EXIF
        extra = {"icc_profile": icc} if icc else \
            {"icc_profile": icc_profile(icc_description)} if icc_description else {}
        picture(self.size).save(path, quality=90, comment=f"taken by {AUTHOR}".encode(), **extra)
        exiftool_write(path, *CAMERA_TAGS, f"-Orientation={orientation}",
                       f"-IPTC:By-line={AUTHOR}", "-IPTC:City=Kyiv street 5",
                       f"-ThumbnailImage<={thumb}")
        return path

    def mpo(self) -> Path:
        """A JPEG followed, as MPO files and phone portraits do, by a second frame."""
        first = self.jpeg("first.jpg", orientation=1).read_bytes()
        second = io.BytesIO()
        picture((200, 100)).save(second, "JPEG", comment=AUTHOR.encode())
        mpf = b"MPF\0" + b"MM\0*" + b"\0" * 8
        segment = b"\xff\xe2" + struct.pack(">H", len(mpf) + 2) + mpf
        path = self.path("portrait.jpg")
        path.write_bytes(first[:2] + segment + first[2:] + second.getvalue())
        return path

    def png(self) -> Path:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Author", AUTHOR)
        info.add_itxt("Description", "Kyiv street 5")
        info.add_text("Software", SOFTWARE)
        path = self.path("screen.png")
        picture(self.size).save(path, pnginfo=info, icc_profile=icc_profile("calibrated-by-olena"))
        exiftool_write(path, *CAMERA_TAGS)
        return path

    def webp(self) -> Path:
        path = self.path("picture.webp")
        picture(self.size).save(path, "WEBP", lossless=True)
        exiftool_write(path, *CAMERA_TAGS)
        return path

    def gif(self) -> Path:
        path = self.path("anim.gif")
        frames = [picture().convert("P"), picture((96, 64)).rotate(90).convert("P")]
        frames[0].save(path, save_all=True, append_images=frames[1:], loop=0,
                       comment=AUTHOR.encode())
        exiftool_write(path, f"-XMP-dc:Creator={AUTHOR}")
        return path

    def tiff(self) -> Path:
        path = self.path("scan.tif")
        picture(self.size).save(path, tiffinfo={315: AUTHOR, 271: MAKE, 272: MODEL,
                                                305: SOFTWARE, 306: WHEN},
                                icc_profile=icc_profile("calibrated-by-olena"))
        exiftool_write(path, *CAMERA_TAGS, "-Orientation=6")
        return path

    def bmp(self) -> Path:
        path = self.path("plain.bmp")
        picture(self.size).save(path)
        return path

    def heic(self) -> Path:
        import pillow_heif
        from PIL import Image

        pillow_heif.register_heif_opener()
        exif = Image.Exif()
        exif.update({271: MAKE, 272: MODEL, 315: AUTHOR, 305: SOFTWARE})
        exif.get_ifd(0x8825).update({1: "N", 2: (50.0, 27.0, 0.36), 3: "E",
                                     4: (30.0, 31.0, 24.24)})
        path = self.path("phone.heic")
        picture((64, 64)).save(path, "HEIF", exif=exif.tobytes(), quality=90)
        return path

    def svg(self) -> Path:
        path = self.path("drawing.svg")
        path.write_text(
            '<?xml version="1.0"?>\n<!-- drawn by Olena Svidok -->\n'
            '<svg xmlns="http://www.w3.org/2000/svg" '
            'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
            'xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" width="10" height="10" '
            'sodipodi:docname="/home/Olena/Kyiv street 5.svg" inkscape:version="1.2">'
            '<metadata><rdf:RDF><rdf:Description><dc:creator>Olena Svidok</dc:creator>'
            '</rdf:Description></rdf:RDF></metadata>'
            '<sodipodi:namedview inkscape:window-width="800"/>'
            '<rect width="5" height="5" fill="red"/><text x="1" y="9">map</text></svg>')
        return path

    # -- documents --------------------------------------------------------------
    def pdf(self) -> Path:
        """A PDF with text, Info, XMP, PieceInfo, a thumbnail, an annotation with
        an author, an embedded JPEG with EXIF, and an earlier revision (an
        incremental update) that still names the author."""
        import pikepdf

        pdf = pikepdf.new()
        pdf.add_blank_page(page_size=(300, 200))
        page = pdf.pages[0]
        font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                    Subtype=pikepdf.Name.Type1,
                                                    BaseFont=pikepdf.Name.Helvetica))
        jpeg = self.jpeg("inside.jpg", orientation=1)
        from PIL import Image

        with Image.open(jpeg) as im:
            w, h = im.size
        image = pikepdf.Stream(pdf, jpeg.read_bytes(), Type=pikepdf.Name.XObject,
                               Subtype=pikepdf.Name.Image, Width=w, Height=h,
                               ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8,
                               Filter=pikepdf.Name.DCTDecode)
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font),
                                            XObject=pikepdf.Dictionary(Im1=image))
        page.Contents = pdf.make_stream(
            b"BT /F1 14 Tf 20 150 Td (The convoy passed at dawn.) Tj ET "
            b"q 96 0 0 64 20 20 cm /Im1 Do Q")
        page.obj.PieceInfo = pikepdf.Dictionary(
            Illustrator=pikepdf.Dictionary(Private=pikepdf.String(AUTHOR)))
        page.obj.Thumb = pdf.make_stream(b"\0" * 30, Width=1, Height=10,
                                         ColorSpace=pikepdf.Name.DeviceRGB,
                                         BitsPerComponent=8)
        page.obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(
            pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Text,
                               Rect=[10, 10, 30, 30], Contents=pikepdf.String("look here"),
                               T=pikepdf.String(AUTHOR), M=pikepdf.String("D:20240301101112"),
                               CreationDate=pikepdf.String("D:20240301101112")))]))
        pdf.docinfo["/Author"] = AUTHOR
        pdf.docinfo["/Creator"] = SOFTWARE
        pdf.docinfo["/CreationDate"] = "D:20240301101112"
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:creator"] = [AUTHOR]
            meta["xmp:CreatorTool"] = SOFTWARE
        first = io.BytesIO()
        pdf.save(first, object_stream_mode=pikepdf.ObjectStreamMode.disable,
                 compress_streams=False)
        data = first.getvalue()
        path = self.path("paper.pdf")
        path.write_bytes(data + _incremental_info_update(data))
        return path

    def signed_pdf(self, name: str = "signed.pdf") -> Path:
        """The PDF above, signed as a reader signs it: a signature field whose
        dictionary names the signer, the place, the reason and a phone, an
        appearance on the page, a document security store with the
        certificate, and a CMS signature over the byte range made by OpenSSL
        with a certificate naming the witness (a qualified certificate
        carries a tax number)."""
        import pikepdf

        key, cert = self.certificate()
        der_cert = run("openssl", "x509", "-in", str(cert), "-outform", "DER").stdout
        with pikepdf.open(self.pdf()) as pdf:
            signature = pdf.make_indirect(pikepdf.Dictionary(
                Type=pikepdf.Name.Sig, Filter=pikepdf.Name("/Adobe.PPKLite"),
                SubFilter=pikepdf.Name("/adbe.pkcs7.detached"), Name=pikepdf.String(AUTHOR),
                M=pikepdf.String("D:20240301101112+02'00'"),
                Location=pikepdf.String("Kyiv street 5"), Reason=pikepdf.String("my account"),
                ContactInfo=pikepdf.String("+380501234567"),
                ByteRange=pikepdf.Array([0, 9_999_999_999, 9_999_999_999, 9_999_999_999]),
                Contents=pikepdf.String(b"\0" * 8192)))
            shown = pdf.make_stream(b"BT /F1 8 Tf 2 2 Td (Signed by " + AUTHOR.encode()
                                    + b") Tj ET", Type=pikepdf.Name.XObject,
                                    Subtype=pikepdf.Name.Form, BBox=[0, 0, 120, 20])
            widget = pdf.make_indirect(pikepdf.Dictionary(
                Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Sig,
                T=pikepdf.String("Signature1"), V=signature, Rect=[150, 20, 270, 40], F=4,
                P=pdf.pages[0].obj, AP=pikepdf.Dictionary(N=shown)))
            pdf.pages[0].obj.Annots.append(widget)
            pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[widget], SigFlags=3)
            pdf.Root.DSS = pikepdf.Dictionary(Certs=[pdf.make_stream(der_cert)])
            pdf.Root.Perms = pikepdf.Dictionary(DocMDP=signature)
            unsigned = io.BytesIO()
            pdf.save(unsigned, object_stream_mode=pikepdf.ObjectStreamMode.disable)
        data = unsigned.getvalue()
        # The byte range: all but the hex string /Contents will hold, written
        # in place of the placeholder with as many characters.
        placeholder = re.search(rb"/ByteRange \[[^\]]*\]", data)
        hole = re.search(rb"/Contents <(0+)>", data)
        assert placeholder is not None and hole is not None
        start, end = hole.start(1) - 1, hole.end(1) + 1
        ranges = f"/ByteRange [ 0 {start} {end} {len(data) - end} ]".encode()
        data = data[:placeholder.start()] + ranges.ljust(len(placeholder.group(0))) \
            + data[placeholder.end():]
        signed = self.path("signed-range.bin")
        signed.write_bytes(data[:start] + data[end:])
        cms = run("openssl", "cms", "-sign", "-binary", "-outform", "DER", "-in", str(signed),
                  "-signer", str(cert), "-inkey", str(key)).stdout
        assert len(cms) * 2 <= end - start - 2
        path = self.path(name)
        path.write_bytes(data[:start + 1] + cms.hex().encode().ljust(end - start - 2, b"0")
                         + data[end - 1:])
        return path

    def epub(self) -> Path:
        """A one-page EPUB 3."""
        opf = ('<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/'
               'opf" version="3.0" unique-identifier="id"><metadata xmlns:dc="http://purl.org/'
               'dc/elements/1.1/"><dc:identifier id="id">urn:uuid:1</dc:identifier><dc:title>'
               "Diary</dc:title><dc:language>uk</dc:language></metadata><manifest><item id=\"c\" "
               'href="c.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref '
               'idref="c"/></spine></package>')
        page = ('<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/'
                'xhtml"><head><title>Day one</title></head><body><p>The convoy passed at dawn.'
                "</p></body></html>")
        return write_epub(self.path("book.epub"), opf, {"OEBPS/c.xhtml": page})

    def certificate(self) -> tuple[Path, Path]:
        """A key and a self-signed certificate naming the witness, made by
        OpenSSL (a qualified certificate carries a tax number)."""
        key, cert = self.path("signer.key"), self.path("signer.pem")
        if not cert.exists():
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                "-keyout", str(key), "-out", str(cert), "-subj",
                f"/CN={AUTHOR}/serialNumber=TINUA-{SERIAL}/emailAddress=olena@example.org")
        return key, cert

    def signed_office(self, family: str) -> Path:
        """A DOCX, ODT or EPUB holding an XML signature in the part its
        format signs in, with the witness's certificate and the signing time,
        as Word, LibreOffice or a publisher's tool writes one (the signature
        value itself is not checked by the cleaner: it goes either way)."""
        import base64

        _key, cert = self.certificate()
        der = run("openssl", "x509", "-in", str(cert), "-outform", "DER").stdout
        signature = (
            '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#" Id="idPackageSignature">'
            "<SignedInfo><SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#"
            'rsa-sha256"/></SignedInfo><SignatureValue>AAAA</SignatureValue><KeyInfo><X509Data>'
            f"<X509Certificate>{base64.b64encode(der).decode()}</X509Certificate></X509Data>"
            "</KeyInfo><Object><SignatureProperties><SignatureProperty Target=\"#idPackage"
            'Signature"><mdssi:SignatureTime xmlns:mdssi="http://schemas.openxmlformats.org/'
            "package/2006/digital-signature\"><mdssi:Value>2024-03-01T10:11:12Z</mdssi:Value>"
            "</mdssi:SignatureTime></SignatureProperty></SignatureProperties></Object>"
            "</Signature>")
        source = {"docx": self.docx, "odt": self.odt, "epub": self.epub}[family]()
        path = self.path(f"signed.{family}")
        if family != "docx":
            name = "META-INF/documentsignatures.xml" if family == "odt" else \
                "META-INF/signatures.xml"
            return package_with(source, path, {name: (
                '<document-signatures xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                f'digitalsignature:1.0">{signature}</document-signatures>').encode()}, {})
        return package_with(source, path, {
            "_xmlsignatures/origin.sigs": b"",
            "_xmlsignatures/sig1.xml": signature.encode(),
            "_xmlsignatures/_rels/origin.sigs.rels": relationships(
                "rId1", "relationships/digital-signature/signature", "sig1.xml"),
        }, {
            "_rels/.rels": relationship("rIdSig", "relationships/digital-signature/origin",
                                        "_xmlsignatures/origin.sigs"),
            "[Content_Types].xml": b'<Default Extension="sigs" ContentType="application/vnd.'
            b'openxmlformats-package.digital-signature-origin"/><Override PartName='
            b'"/_xmlsignatures/sig1.xml" ContentType="application/vnd.openxmlformats-'
            b'package.digital-signature-xmlsignature+xml"/>',
        })

    def docx(self, name="report.docx") -> Path:
        import datetime as dt

        import docx

        document = docx.Document()
        first = document.add_paragraph("The shelling began at six in the morning.")
        document.add_paragraph("Three buildings on the square were hit.")
        document.add_comment(first.runs, text="check the hour", author=AUTHOR,
                             initials="OS")
        props = document.core_properties
        props.author, props.last_modified_by = AUTHOR, AUTHOR
        props.comments, props.title = "Kyiv street 5", "report"
        props.created = dt.datetime(2024, 3, 1, 10, 11, 12)
        path = self.path(name)
        document.save(path)
        _plant_docx_extras(path)
        return path

    def xlsx(self) -> Path:
        import datetime as dt

        import openpyxl
        from openpyxl.comments import Comment

        book = openpyxl.Workbook()
        sheet = book.active
        sheet["A1"], sheet["B1"] = "casualties", 3
        sheet["A1"].comment = Comment("counted twice", AUTHOR)
        book.properties.creator = book.properties.lastModifiedBy = AUTHOR
        book.properties.created = dt.datetime(2024, 3, 1, 10, 11, 12)
        saved = io.BytesIO()
        book.save(saved)
        path = self.path("count.xlsx")
        # "Read-only recommended", as Excel writes it: with the user's name.
        with zipfile.ZipFile(saved) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                body = src.read(info)
                if info.filename == "xl/workbook.xml":
                    body = body.replace(b"<workbookPr", (
                        f'<fileSharing readOnlyRecommended="1" userName="{AUTHOR}"/>'
                        "<workbookPr").encode(), 1)
                    assert AUTHOR.encode() in body
                dst.writestr(info, body)
        return path

    def pptx(self) -> Path:
        import datetime as dt

        from pptx import Presentation

        deck = Presentation()
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = "Checkpoint north of the river"
        deck.core_properties.author = deck.core_properties.last_modified_by = AUTHOR
        deck.core_properties.created = dt.datetime(2024, 3, 1, 10, 11, 12)
        path = self.path("briefing.pptx")
        deck.save(path)
        with zipfile.ZipFile(path, "a") as z:  # as PowerPoint writes comment authors
            z.writestr("ppt/commentAuthors.xml", (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<p:cmAuthorLst xmlns:p="http://schemas.openxmlformats.org/presentationml/'
                f'2006/main"><p:cmAuthor id="1" name="{AUTHOR}" initials="OS" lastIdx="1" '
                'clrIdx="0"/></p:cmAuthorLst>'))
        return path

    def odt(self) -> Path:
        office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
        text = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
        dc, meta = "http://purl.org/dc/elements/1.1/", \
            "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
        manifest = ("urn:oasis:names:tc:opendocument:xmlns:manifest:1.0")
        content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content '
                   f'xmlns:office="{office}" xmlns:text="{text}" xmlns:dc="{dc}" '
                   f'office:version="1.2"><office:body><office:text>'
                   f'<text:p>The bridge was closed at noon.<office:annotation>'
                   f'<dc:creator>{AUTHOR}</dc:creator><dc:date>2024-03-01T10:11:12</dc:date>'
                   f'<text:p>verify</text:p></office:annotation></text:p>'
                   f'</office:text></office:body></office:document-content>')
        meta_xml = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta '
                    f'xmlns:office="{office}" xmlns:meta="{meta}" xmlns:dc="{dc}" '
                    f'office:version="1.2"><office:meta>'
                    f'<meta:initial-creator>{AUTHOR}</meta:initial-creator>'
                    f'<dc:creator>{AUTHOR}</dc:creator>'
                    f'<meta:creation-date>2024-03-01T10:11:12</meta:creation-date>'
                    f'<meta:generator>{SOFTWARE}</meta:generator>'
                    f'<meta:user-defined meta:name="Place">Kyiv street 5</meta:user-defined>'
                    f'</office:meta></office:document-meta>')
        manifest_xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            f'xmlns:manifest="{manifest}" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="/" manifest:version="1.2" '
            'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
            '<manifest:file-entry manifest:full-path="content.xml" '
            'manifest:media-type="text/xml"/>'
            '<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
            '<manifest:file-entry manifest:full-path="Thumbnails/thumbnail.png" '
            'manifest:media-type="image/png"/></manifest:manifest>')
        thumb = io.BytesIO()
        picture((16, 16)).save(thumb, "PNG")
        path = self.path("notes.odt")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(zipfile.ZipInfo("mimetype", (2024, 3, 1, 10, 11, 12)),
                       "application/vnd.oasis.opendocument.text")
            for name, body in (("content.xml", content), ("meta.xml", meta_xml),
                               ("META-INF/manifest.xml", manifest_xml),
                               ("Thumbnails/thumbnail.png", thumb.getvalue())):
                z.writestr(zipfile.ZipInfo(name, (2024, 3, 1, 10, 11, 12)), body,
                           compress_type=zipfile.ZIP_DEFLATED)
            z.comment = AUTHOR.encode()
        return path

    # -- audio and video ---------------------------------------------------------
    def ffmpeg(self, name: str, *args: str) -> Path:
        path = self.path(name)
        run("ffmpeg", "-hide_banner", "-v", "error", "-y", *args, str(path))
        return path

    TAGS = ("-metadata", f"artist={AUTHOR}", "-metadata", "comment=Kyiv street 5",
            "-metadata", "creation_time=2024-03-01T10:11:12Z")

    def mp3(self) -> Path:
        from mutagen.id3 import APIC, ID3, TPE1, TXXX

        path = self.ffmpeg("voice.mp3", *self.SINE, "-c:a", "libmp3lame", "-b:a", "64k")
        tags = ID3()
        tags.add(TPE1(encoding=3, text=AUTHOR))
        tags.add(TXXX(encoding=3, desc="serial", text=SERIAL))
        tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="cover",
                      data=self.jpeg("cover.jpg", orientation=1).read_bytes()))
        tags.save(path)
        return path

    def flac(self) -> Path:
        from mutagen.flac import FLAC, Picture

        path = self.ffmpeg("voice.flac", *self.SINE, "-c:a", "flac")
        audio = FLAC(path)
        audio["artist"], audio["serial"] = AUTHOR, SERIAL
        cover = Picture()
        cover.data, cover.mime, cover.type = (self.jpeg("cover2.jpg", orientation=1)
                                              .read_bytes(), "image/jpeg", 3)
        audio.add_picture(cover)
        audio.save()
        return path

    def opus(self) -> Path:
        from mutagen.oggopus import OggOpus

        path = self.ffmpeg("voice.opus", *self.SINE, "-c:a", "libopus", "-b:a", "32k")
        audio = OggOpus(path)
        audio["artist"], audio["location"] = AUTHOR, "Kyiv street 5"
        audio.save()
        return path

    def wav(self) -> Path:
        return self.ffmpeg("voice.wav", *self.SINE, *self.TAGS, "-c:a", "pcm_s16le")

    def aiff(self) -> Path:
        return self.ffmpeg("voice.aiff", *self.SINE, *self.TAGS, "-write_id3v2", "1")

    def m4a(self) -> Path:
        path = self.ffmpeg("memo.m4a", *self.SINE, *self.TAGS, "-c:a", "aac", "-b:a", "48k")
        exiftool_write(path, f"-Keys:GPSCoordinates={LAT}, {LON}", f"-Keys:Make={MAKE}")
        return path

    def mp4(self, name="clip.mp4", fmt="mp4") -> Path:
        """Video, audio, a timed-text track (as drones write GPS) and a timecode
        data track: only the video and the audio may survive."""
        srt = self.path("gps.srt")
        srt.write_text(f"1\n00:00:00,000 --> 00:00:01,000\nGPS {LAT} {LON}\n")
        path = self.ffmpeg(name, *self.VIDEO, *self.SINE, "-i", str(srt), "-map", "0",
                           "-map", "1", "-map", "2", *self.TAGS, "-metadata",
                           f"location=+{LAT}+{LON}/", "-c:v", "libx264",
                           "-preset", "ultrafast", "-c:a", "aac", "-c:s", "mov_text",
                           "-timecode", "10:11:12:00", "-f", fmt)
        exiftool_write(path, f"-Keys:GPSCoordinates={LAT}, {LON}", f"-Keys:Make={MAKE}",
                       f"-Keys:Model={MODEL}", f"-UserData:Make={MAKE}")
        return path

    def mov(self) -> Path:
        return self.mp4("clip.mov", "mov")

    def motion_jpeg(self, name: str = "camera.mov", *args: str, seconds: int = 0) -> Path:
        """Video as cameras that record Motion JPEG store it: every frame a
        photo with its EXIF (GPS, serial number), XMP, IPTC and comment,
        copied as it is, with sound; ffmpeg puts the index at the end unless
        told otherwise."""
        photo = self.jpeg("frame.jpg", orientation=1)
        seconds = seconds or self.scale
        return self.ffmpeg(name, "-framerate", "10", "-loop", "1", "-t", str(seconds), "-i",
                           str(photo), "-f", "lavfi", "-i", f"sine=duration={seconds}",
                           "-c:v", "copy", "-c:a", "aac", *args)

    def mkv(self) -> Path:
        return self.ffmpeg("clip.mkv", *self.VIDEO, *self.SINE, *self.TAGS,
                           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus")

    def webm(self) -> Path:
        return self.ffmpeg("clip.webm", *self.VIDEO, *self.SINE, *self.TAGS,
                           "-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus")

    def fragmented_mp4(self) -> Path:
        """An MP4 in fragments whose first fragment is in the index's sample
        tables (ffmpeg's `frag_keyframe` without `empty_moov`): a layout the
        box-by-box rewrite leaves to ffmpeg."""
        return self.ffmpeg("fragments.mp4", *self.VIDEO, *self.SINE, *self.TAGS,
                           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                           "-movflags", "frag_keyframe")

    def avi(self) -> Path:
        return self.ffmpeg("clip.avi", *self.VIDEO, *self.SINE, *self.TAGS,
                           "-c:v", "mpeg4", "-c:a", "pcm_s16le")

    # -- hostile -------------------------------------------------------------
    def truncated_jpeg(self) -> Path:
        data = self.jpeg("whole.jpg").read_bytes()
        path = self.path("truncated.jpg")
        path.write_bytes(data[:len(data) * 2 // 3])
        return path

    def broken_xref_pdf(self) -> Path:
        data = self.pdf().read_bytes()
        path = self.path("broken.pdf")
        start = data.rindex(b"startxref")
        path.write_bytes(data[:start] + b"startxref\n999999\n%%EOF\n")
        return path

    def huge_png(self) -> Path:
        """50,000 x 50,000 pixels declared, a few KiB on disk."""
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + \
                struct.pack(">I", zlib.crc32(kind + body))

        row = b"\0" * (1 + 50_000 // 8)
        stream = zlib.compressobj(9)
        idat = b"".join(stream.compress(row) for _ in range(2000)) + stream.flush()
        path = self.path("bomb.png")
        path.write_bytes(b"\x89PNG\r\n\x1a\n" +
                         chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 1, 0, 0, 0, 0))
                         + chunk(b"tEXt", b"Author\0" + AUTHOR.encode())
                         + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
        return path

    def zip_bomb_docx(self) -> Path:
        path = self.docx("bomb.docx")
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("word/media/filler.bin", b"\0" * (64 * 1024 * 1024),
                       compress_type=zipfile.ZIP_DEFLATED)
        return path


def _incremental_info_update(data: bytes) -> bytes:
    """An incremental update, as editors append: a new Info that no longer names
    the author. The earlier Info stays in the file's bytes."""
    import re

    size = int(re.findall(rb"/Size (\d+)", data)[-1])
    root = re.findall(rb"/Root (\d+ \d+ R)", data)[-1]
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    offset = len(data)
    body = f"{size} 0 obj\n<< /Title (report) >>\nendobj\n".encode()
    xref_at = offset + len(body)
    xref = f"xref\n{size} 1\n{offset:010d} 00000 n \n".encode()
    trailer = (b"trailer\n<< /Size " + str(size + 1).encode() + b" /Root " + root +
               f" /Info {size} 0 R /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n".encode())
    return body + xref + trailer


def _plant_docx_extras(path: Path) -> None:
    """What python-docx cannot write but Word does: a tracked change with its
    author and date, rsids, a people list, a thumbnail, printer settings."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    document = parts["word/document.xml"].decode()
    insertion = (f'<w:p w:rsidR="00A1B2C3" w:rsidRDefault="00A1B2C3"><w:ins w:id="901" '
                 f'w:author="{AUTHOR}" w:date="2024-03-01T10:11:12Z"><w:r><w:t>'
                 f'A tank stood at the corner.</w:t></w:r></w:ins></w:p>')
    document = document.replace("<w:sectPr", insertion + "<w:sectPr", 1)
    parts["word/document.xml"] = document.encode()
    settings = parts["word/settings.xml"].decode()
    parts["word/settings.xml"] = settings.replace(
        "</w:settings>", '<w:rsids><w:rsidRoot w:val="00A1B2C3"/><w:rsid w:val="00A1B2C3"/>'
        '</w:rsids></w:settings>').encode()
    parts["word/people.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w15:people '
        f'xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml" xmlns:w="{w}">'
        f'<w15:person w15:author="{AUTHOR}"><w15:presenceInfo w15:providerId="AD" '
        f'w15:userId="olena@example.org"/></w15:person></w15:people>').encode()
    thumb = io.BytesIO()
    picture((16, 16)).save(thumb, "JPEG")
    parts["docProps/thumbnail.jpeg"] = thumb.getvalue()
    parts["word/printerSettings/printerSettings1.bin"] = f"printer of {AUTHOR}".encode()
    rels = parts["_rels/.rels"].decode()
    parts["_rels/.rels"] = rels.replace("</Relationships>", (
        '<Relationship Id="rIdThumb" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/thumbnail" Target="docProps/thumbnail.jpeg"/>'
        '</Relationships>')).encode()
    doc_rels = parts["word/_rels/document.xml.rels"].decode()
    parts["word/_rels/document.xml.rels"] = doc_rels.replace("</Relationships>", (
        '<Relationship Id="rIdPrn" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/printerSettings" Target="printerSettings/printerSettings1.bin"/>'
        '<Relationship Id="rIdPeople" Type="http://schemas.microsoft.com/office/2011/'
        'relationships/people" Target="people.xml"/></Relationships>')).encode()
    types = parts["[Content_Types].xml"].decode()
    parts["[Content_Types].xml"] = types.replace("</Types>", (
        '<Default Extension="jpeg" ContentType="image/jpeg"/>'
        '<Default Extension="bin" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.printerSettings"/>'
        '<Override PartName="/word/people.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.people+xml"/></Types>')).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(zipfile.ZipInfo(name, (2024, 3, 1, 10, 11, 12)), body,
                       compress_type=zipfile.ZIP_DEFLATED)


