"""Each family: ExifTool finds none of the planted values after cleaning, and
the content survives (pixels, dimensions, text, duration, streams)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from sanitize.sanitize_corpus import (
    leftovers,
    picture,
    planted_in_bytes,
    run,
    standard_icc,
    with_tag,
)


def pixels(path_or_bytes):
    from PIL import Image

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as im:
        return im.size, im.convert("RGBA").tobytes()


def assert_clean(result, out: Path):
    assert result.ok, result.reason
    assert result.removed, "the cleaner should name what it removed"
    assert planted_in_bytes(json.dumps(result.removed).encode()) == []  # names, not values
    assert leftovers(out) == []
    assert planted_in_bytes(out.read_bytes()) == []


# -- images ---------------------------------------------------------------------

def test_jpeg_is_cleaned_without_recompression(corpus, sanitized):
    original = corpus.jpeg()
    result, out = sanitized(original)
    assert_clean(result, out)
    assert pixels(out) == pixels(original)  # the same entropy-coded data, same decode
    names = set(result.removed)
    assert {"EXIF:GPSLatitude", "EXIF:Make", "EXIF:ThumbnailImage", "XMP", "IPTC/Photoshop",
            "Comment"} <= names
    assert all(not n.startswith("EXIF:") or "Olena" not in n for n in names)
    # Orientation alone is kept, so the picture still shows the right way up.
    tags = json.loads(run("exiftool", "-j", "-a", "-G1", "-n", str(out)).stdout)[0]
    assert tags["IFD0:Orientation"] == 6
    assert not [k for k in tags if k.startswith(("IFD1", "ExifIFD", "GPS", "XMP", "IPTC"))]


@pytest.mark.parametrize("variant", ["progressive", "cmyk", "no-jfif", "restart-markers"])
def test_jpeg_variants_keep_identical_pixels(corpus, sanitized, tmp_path, variant):
    """Several scans, Adobe's CMYK marker, EXIF-first files as cameras write
    them, restart intervals: the rewrite must keep every one decodable."""
    from sanitize.sanitize_corpus import CAMERA_TAGS, exiftool_write, picture

    path = tmp_path / f"{variant}.jpg"
    image = picture((120, 80))
    options = {"progressive": {"progressive": True}, "cmyk": {},
               "no-jfif": {}, "restart-markers": {"restart_marker_rows": 1}}[variant]
    (image.convert("CMYK") if variant == "cmyk" else image).save(path, quality=85, **options)
    exiftool_write(path, *CAMERA_TAGS, "-Orientation=3")
    if variant == "no-jfif":
        exiftool_write(path, "-JFIF:all=")
        assert b"JFIF" not in path.read_bytes()[:200]
    result, out = sanitized(path)
    assert_clean(result, out)
    assert pixels(out) == pixels(path)
    tags = json.loads(run("exiftool", "-j", "-G1", "-n", str(out)).stdout)[0]
    assert tags["IFD0:Orientation"] == 3


def test_jpeg_thumbnail_with_its_own_exif_is_gone(corpus, sanitized):
    original = corpus.jpeg("thumbed.jpg")
    assert b"Exif" in original.read_bytes()[200:]  # the thumbnail carries EXIF too
    result, out = sanitized(original)
    assert out.read_bytes().count(b"\xff\xd8") == 1  # one picture: no thumbnail left
    assert "EXIF:ThumbnailImage" in result.removed


def test_jpeg_extra_frames_after_end_of_image_are_dropped(corpus, sanitized):
    original = corpus.mpo()
    result, out = sanitized(original)
    assert_clean(result, out)
    data = out.read_bytes()
    assert data.count(b"\xff\xd8\xff") == 1 and data.endswith(b"\xff\xd9")
    assert "MPF (extra images)" in result.removed
    assert any("after end of image" in n for n in result.removed)
    assert pixels(out)[0] == (96, 64)


def test_jpeg_identifying_icc_profile_is_dropped_standard_one_kept(corpus, sanitized):
    result, out = sanitized(corpus.jpeg("calibrated.jpg", icc_description="calibrated-by-olena"))
    assert_clean(result, out)
    assert "ICC profile (not a standard one)" in result.removed
    standard = corpus.jpeg("srgb.jpg", icc=standard_icc())
    result, out = sanitized(standard)
    assert result.ok and b"ICC_PROFILE" in out.read_bytes()
    assert standard_icc()[4:] in out.read_bytes()


def test_a_profile_is_standard_by_its_bytes_not_its_description(corpus, sanitized, tmp_path):
    """A standard sRGB with a device tag added still calls itself sRGB; a
    PNG's iCCP chunk has a name of its writer's choosing."""
    from PIL import Image, ImageCms

    from intake.server.sanitize import icc

    marked = with_tag(standard_icc(), b"dmdd", "Olena Svidok's phone SN7731QX42")
    assert icc.description(marked) == icc.description(standard_icc()) == "sRGB"
    pillow = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert icc.is_standard(pillow)  # lcms writes the time into it: that alone may differ
    result, out = sanitized(corpus.jpeg("marked.jpg", icc=marked))
    assert_clean(result, out)
    assert "ICC profile (not a standard one)" in result.removed
    assert b"ICC_PROFILE" not in out.read_bytes()
    for name, profile, kept in (("marked", marked, False), ("standard", standard_icc(), True)):
        for fmt in ("PNG", "WEBP"):
            path = tmp_path / f"{name}.{fmt.lower()}"
            info = {}
            if fmt == "PNG":
                from PIL import PngImagePlugin

                info["pnginfo"] = PngImagePlugin.PngInfo()
            picture().save(path, fmt, icc_profile=profile, lossless=True, **info)
            data = path.read_bytes()
            if fmt == "PNG":  # the chunk's name, as a colour tool names it
                start = data.index(b"iCCP") + 4
                old = data[start:data.index(b"\0", start)]
                chunk_at = start - 8
                (length,) = struct.unpack(">I", data[chunk_at:start - 4])
                payload = b"Olena Svidok MacBook" + data[start + len(old):start + length]
                data = (data[:chunk_at] + struct.pack(">I", len(payload)) + b"iCCP" + payload
                        + struct.pack(">I", zlib.crc32(b"iCCP" + payload))
                        + data[start + length + 4:])
                path.write_bytes(data)
            result, out = sanitized(path)
            assert result.ok, result.reason
            assert planted_in_bytes(out.read_bytes()) == [], (name, fmt)
            with Image.open(out) as image:
                assert (image.info.get("icc_profile") == profile) is kept, (name, fmt)
                assert bool(image.info.get("icc_profile")) is kept, (name, fmt)


def test_png_text_time_exif_and_icc_are_dropped_pixels_kept(corpus, sanitized):
    original = corpus.png()
    result, out = sanitized(original)
    assert_clean(result, out)
    assert pixels(out) == pixels(original)
    assert {"tEXt:Author", "iTXt:Description", "ICC profile (not a standard one)"} <= \
        set(result.removed)


def test_webp_exif_and_xmp_are_dropped_pixels_kept(corpus, sanitized):
    original = corpus.webp()
    result, out = sanitized(original)
    assert_clean(result, out)
    assert pixels(out) == pixels(original)
    assert {"EXIF", "XMP"} <= set(result.removed)


def test_gif_comment_and_xmp_are_dropped_frames_kept(corpus, sanitized):
    from PIL import Image, ImageSequence

    original = corpus.gif()
    result, out = sanitized(original)
    assert_clean(result, out)
    with Image.open(original) as a, Image.open(out) as b:
        frames_a = [f.convert("RGB").tobytes() for f in ImageSequence.Iterator(a)]
        frames_b = [f.convert("RGB").tobytes() for f in ImageSequence.Iterator(b)]
    assert frames_a == frames_b and len(frames_b) == 2
    assert {"Comment", "XMP"} <= set(result.removed)


def test_tiff_is_rebuilt_from_pixels_without_its_tags(corpus, sanitized):
    """Re-saving the opened image would keep its tags and ICC profile: the
    cleaner copies the pixels into a fresh image, turned as the tag said."""
    from PIL import Image, ImageOps

    original = corpus.tiff()
    result, out = sanitized(original)
    assert_clean(result, out)
    with Image.open(original) as im:
        upright = ImageOps.exif_transpose(im).convert("RGBA")
    assert pixels(out) == (upright.size, upright.tobytes())
    assert pixels(out)[0] == (64, 96)  # orientation 6 applied: the picture stands
    assert {"TIFF:Artist", "TIFF:Make", "ICC profile (not a standard one)"} <= \
        set(result.removed)


@pytest.mark.parametrize(("sent", "kept"), [
    ("raw", "raw"), ("tiff_lzw", "tiff_lzw"), ("tiff_adobe_deflate", "tiff_adobe_deflate"),
    ("jpeg", "tiff_adobe_deflate"),  # lossy: written losslessly, the decoded pixels kept
])
def test_tiff_keeps_a_lossless_compression_and_never_a_lossy_one(tmp_path, sanitized,
                                                                 sent, kept):
    from PIL import Image

    from sanitize.sanitize_corpus import picture

    original = tmp_path / f"{sent}.tif"
    picture((192, 128)).save(original, compression=sent)
    result, out = sanitized(original)
    assert result.ok
    with Image.open(out) as cleaned, Image.open(original) as received:
        assert cleaned.info["compression"] == kept
        assert cleaned.convert("RGB").tobytes() == received.convert("RGB").tobytes()


def test_bmp_keeps_its_pixels(corpus, sanitized):
    original = corpus.bmp()
    result, out = sanitized(original)
    assert result.ok and pixels(out) == pixels(original)


def test_heic_from_a_phone_loses_exif_and_keeps_its_size(corpus, sanitized):
    original = corpus.heic()
    result, out = sanitized(original)
    assert_clean(result, out)
    assert result.detected_type.startswith("image/hei")
    import pillow_heif  # noqa: F401  (registers the opener pixels() needs)

    pillow_heif.register_heif_opener()
    assert pixels(out)[0] == pixels(original)[0]


def test_heic_with_two_pictures_keeps_both_as_coded(corpus, sanitized):
    """An iPhone keeps an edit beside the photo, each with its own EXIF: both
    pictures stay, decoded pixels identical, and neither keeps its EXIF."""
    import pillow_heif
    from PIL import Image

    from sanitize.sanitize_corpus import AUTHOR, MAKE, MODEL, picture

    exif = Image.Exif()
    exif.update({271: MAKE, 272: MODEL, 315: AUTHOR})
    both = pillow_heif.from_pillow(picture((64, 64)))
    both.add_from_pillow(picture((48, 32)))
    for image in both:
        image.info["exif"] = exif.tobytes()
    original = corpus.path("edited.heic")
    both.save(original, quality=90)
    assert original.read_bytes().count(MAKE.encode()) == 2
    result, out = sanitized(original)
    assert_clean(result, out)
    assert result.tool == "intake heif items"  # rewritten, not re-encoded
    before, after = pillow_heif.open_heif(original), pillow_heif.open_heif(out)
    assert len(after) == 2
    for one, two in zip(before, after, strict=True):
        assert two.size == one.size and not two.info.get("exif")
        assert two.to_pillow().tobytes() == one.to_pillow().tobytes()


def test_svg_loses_metadata_comments_and_editor_paths(corpus, sanitized):
    result, out = sanitized(corpus.svg())
    assert result.ok, result.reason
    text = out.read_text()
    assert "Olena" not in text and "Kyiv" not in text
    assert "<rect" in text and ">map</text>" in text


# -- documents ----------------------------------------------------------------------

def pdf_text(path: Path) -> str:
    return run("pdftotext", "-layout", str(path), "-").stdout.decode()


def test_pdf_is_rewritten_whole_text_stays_searchable(corpus, sanitized):
    import pikepdf

    original = corpus.pdf()
    assert b"Olena" in original.read_bytes()
    result, out = sanitized(original)
    assert_clean(result, out)
    assert "The convoy passed at dawn." in pdf_text(out)
    assert pdf_text(out) == pdf_text(original)
    assert out.stat().st_size < original.stat().st_size * 1.2  # no balloon
    # Decompress every stream: the earlier revision, the PieceInfo, the
    # annotation's author and the embedded JPEG's EXIF are gone everywhere.
    with pikepdf.open(out) as pdf:
        flat = io.BytesIO()
        pdf.save(flat, compress_streams=False,
                 stream_decode_level=pikepdf.StreamDecodeLevel.none,
                 object_stream_mode=pikepdf.ObjectStreamMode.disable)
        assert "/Info" not in pdf.trailer
        assert "/Thumb" not in pdf.pages[0].obj and "/PieceInfo" not in pdf.pages[0].obj
        assert pdf.pages[0].obj.Annots[0].Contents == "look here"
    assert planted_in_bytes(flat.getvalue()) == []
    names = set(result.removed)
    # The newest Info holds only a title: the author was in the earlier revision.
    assert {"Info:Title", "XMP metadata", "PieceInfo", "page thumbnail",
            "annotation T"} <= names
    assert any(n.startswith("embedded image EXIF:GPS") for n in names)


def _with_attachment(corpus, tmp_path, photo: bytes) -> Path:
    import pikepdf

    path = tmp_path / "with-attachment.pdf"
    with pikepdf.open(corpus.pdf()) as pdf:
        pdf.attachments["evidence.jpg"] = pikepdf.AttachedFileSpec(pdf, photo,
                                                                   mime_type="image/jpeg")
        pdf.save(path)
    return path


def _attached(path: Path) -> bytes:
    import pikepdf

    with pikepdf.open(path) as pdf:
        return pdf.attachments["evidence.jpg"].get_file().read_bytes()


def test_pictures_attached_to_a_pdf_are_cleaned(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("evidence.jpg", orientation=1).read_bytes()
    original = _with_attachment(corpus, tmp_path, photo)
    assert planted_in_bytes(_attached(original)) != []
    result, out = sanitized(original)
    assert result.ok, result.reason
    attached = _attached(out)
    assert planted_in_bytes(attached) == [] and pixels(attached) == pixels(photo)
    assert any(n.startswith("inside attachment: ") and "GPS" in n for n in result.removed)
    assert pdf_text(out) == pdf_text(original)


def test_a_broken_picture_attached_to_a_pdf_keeps_the_file_as_received(corpus, sanitized,
                                                                       tmp_path):
    photo = corpus.jpeg("evidence.jpg", orientation=1).read_bytes()[:300]
    result, _ = sanitized(_with_attachment(corpus, tmp_path, photo))
    assert not result.ok and "a file inside" in result.reason


def test_an_attachment_without_its_optional_type_is_found_and_cleaned(corpus, sanitized,
                                                                      tmp_path):
    import pikepdf

    photo = corpus.jpeg("evidence.jpg", orientation=1).read_bytes()
    original = _with_attachment(corpus, tmp_path, photo)
    untyped = tmp_path / "untyped.pdf"
    with pikepdf.open(original) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream) and obj.get("/Type") == pikepdf.Name.EmbeddedFile:
                del obj["/Type"]  # optional in the PDF specification
        pdf.save(untyped)
    result, out = sanitized(untyped)
    assert result.ok, result.reason
    assert planted_in_bytes(_attached(out)) == []


@pytest.mark.parametrize(("attached", "cleaned"), [
    (b"Notes taken on the day, plain text.\n", True),
    (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4, False),  # a video: not ours
])
def test_attachments_of_other_kinds_are_kept_only_when_nothing_can_hide_in_them(
        corpus, sanitized, tmp_path, attached, cleaned):
    result, _ = sanitized(_with_attachment(corpus, tmp_path, attached))
    assert result.ok == cleaned, result.reason
    if not cleaned:
        assert "a file inside is of a kind that cannot be cleaned" in result.reason


def test_an_iphone_photo_inside_is_cleaned_too(corpus, sanitized, tmp_path):
    heic = corpus.heic().read_bytes()
    assert planted_in_bytes(heic) != []
    result, out = sanitized(_with_attachment(corpus, tmp_path, heic))
    assert result.ok, result.reason
    assert planted_in_bytes(_attached(out)) == []


def test_a_document_embedded_in_a_document_is_cleaned_as_one_sent_alone(corpus, sanitized,
                                                                        tmp_path):
    inner, _ = _with_photo(corpus, tmp_path)  # a report with a photo, authors, rsids
    outer = tmp_path / "outer.docx"
    outer.write_bytes(corpus.docx("outer-source.docx").read_bytes())
    with zipfile.ZipFile(outer, "a") as z:
        z.writestr("word/embeddings/Microsoft_Word_Document.docx", inner.read_bytes())
    assert planted_in_bytes(all_parts(outer)) != []
    result, out = sanitized(outer)
    assert result.ok, result.reason
    with zipfile.ZipFile(out) as z:
        nested = z.read("word/embeddings/Microsoft_Word_Document.docx")
    assert planted_in_bytes(all_parts(io.BytesIO(nested))) == []
    assert "A tank stood at the corner." in all_parts(io.BytesIO(nested)).decode("utf-8",
                                                                                 "replace")


def test_an_attachment_keeps_no_dates_checksum_or_path(corpus, sanitized, tmp_path):
    """/Params holds dates and the MD5 of the file before cleaning; the file
    specification's names can be full paths. Also without the optional /Type."""
    import pikepdf

    photo = corpus.jpeg("evidence.jpg", orientation=1).read_bytes()
    original = tmp_path / "with-params.pdf"
    with pikepdf.open(_with_attachment(corpus, tmp_path, photo)) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream) and obj.get("/Type") == pikepdf.Name.EmbeddedFile:
                del obj["/Type"]
                obj["/Params"] = pikepdf.Dictionary(
                    CheckSum=pikepdf.String(b"\x01" * 16),
                    ModDate=pikepdf.String("D:20240301101112"))
            if isinstance(obj, pikepdf.Dictionary) and "/EF" in obj:
                obj["/UF"] = pikepdf.String("C:\\Users\\Olena Svidok\\Desktop\\evidence.jpg")
        pdf.save(original)
    result, out = sanitized(original)
    assert result.ok, result.reason
    with pikepdf.open(out) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream):
                assert "/Params" not in obj
            if isinstance(obj, pikepdf.Dictionary) and "/EF" in obj:
                assert str(obj["/UF"]) == "evidence.jpg"


def test_a_jpeg_behind_another_filter_in_a_pdf_is_cleaned(corpus, sanitized, tmp_path):
    import zlib

    import pikepdf

    photo = corpus.jpeg("evidence.jpg", orientation=1).read_bytes()
    original = tmp_path / "chained.pdf"
    with pikepdf.open(corpus.pdf()) as pdf:
        image = pikepdf.Stream(pdf, zlib.compress(photo))
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height = 768, 512
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
        image.Filter = pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.DCTDecode])
        pdf.pages[0].Resources.XObject[pikepdf.Name("/Im9")] = image
        pdf.pages[0].contents_add(pikepdf.Stream(pdf, b"q 10 0 0 10 0 0 cm /Im9 Do Q"))
        pdf.save(original)
    result, out = sanitized(original)
    assert result.ok, result.reason
    with pikepdf.open(out) as pdf:
        cleaned = pdf.pages[0].Resources.XObject["/Im9"].read_raw_bytes()
    assert cleaned.startswith(b"\xff\xd8") and planted_in_bytes(cleaned) == []
    assert pixels(cleaned) == pixels(photo)


@pytest.mark.parametrize(("what", "data"), [
    ("rtf", b"{\\rtf1{\\info{\\author Olena Svidok}}Notes}"),
    ("postscript", b"%!PS-Adobe-3.0\n%%For: Olena Svidok\n"),
    ("html", b"<html><meta name=author content='Olena Svidok'></html>"),
])
def test_text_that_is_really_a_document_is_not_kept_as_plain_text(corpus, sanitized, tmp_path,
                                                                  what, data):
    result, _ = sanitized(_with_attachment(corpus, tmp_path, data))
    assert not result.ok and "a file inside" in result.reason


def test_an_svg_after_a_byte_order_mark_and_a_comment_is_still_cleaned(corpus, sanitized,
                                                                        tmp_path):
    svg = (b"\xef\xbb\xbf<!-- drawn on the day -->\n<svg xmlns='http://www.w3.org/2000/svg'>"
           b"<metadata><author>Olena Svidok</author></metadata><rect width='4' height='4'/>"
           b"</svg>")
    result, out = sanitized(_with_attachment(corpus, tmp_path, svg))
    assert result.ok, result.reason
    assert b"Olena" not in _attached(out) and b"<rect" in _attached(out)


@pytest.mark.parametrize(("part", "data"), [
    ("word/embeddings/oleObject1.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504),
    ("word/media/clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64)),
    ("word/embeddings/archive.zip", b"PK\x03\x04" + bytes(64)),
])
def test_a_part_no_cleaner_handles_keeps_an_office_file_as_received(corpus, sanitized,
                                                                    tmp_path, part, data):
    original = tmp_path / "with-part.docx"
    original.write_bytes(corpus.docx().read_bytes())
    with zipfile.ZipFile(original, "a") as z:
        z.writestr(part, data)
    result, _ = sanitized(original)
    assert not result.ok and "cannot be cleaned" in result.reason


def test_an_odf_embedded_objects_properties_are_replaced(corpus, sanitized, tmp_path):
    original = tmp_path / "with-object.odt"
    original.write_bytes(corpus.odt().read_bytes())
    meta = ('<?xml version="1.0" encoding="UTF-8"?><office:document-meta xmlns:office='
            '"urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:meta='
            '"urn:oasis:names:tc:opendocument:xmlns:meta:1.0"><office:meta>'
            '<meta:initial-creator>Olena Svidok</meta:initial-creator>'
            '<meta:printed-by>Olena Svidok</meta:printed-by></office:meta>'
            '</office:document-meta>')
    with zipfile.ZipFile(original, "a") as z:
        z.writestr("Object 1/meta.xml", meta)
    result, out = sanitized(original)
    assert result.ok, result.reason
    with zipfile.ZipFile(out) as z:
        assert b"Olena" not in z.read("Object 1/meta.xml")


ODF_FIELDS = (
    '<text:file-name text:display="full">/home/olena.svidok/statement.odt</text:file-name>'
    '<text:template-name text:display="full">/home/olena.svidok/t.ott</text:template-name>'
    '<text:initial-creator>Olena Svidok</text:initial-creator><text:creator>Olena Svidok'
    '</text:creator><text:printed-by>Olena Svidok</text:printed-by>'
    '<text:author-name>Olena Svidok</text:author-name><text:author-initials>OS'
    '</text:author-initials><text:sender-lastname>Svidok</text:sender-lastname>'
    '<text:sender-phone-work>SN7731QX42</text:sender-phone-work>'
    '<text:creation-date text:date-value="2024-03-01T10:11:12">2024-03-01</text:creation-date>'
    '<text:creation-time text:time-value="2024-03-01T10:11:12">10:11:12</text:creation-time>'
    '<text:modification-date text:date-value="2024-03-01">2024-03-01</text:modification-date>'
    '<text:print-date text:date-value="2024-03-01">2024-03-01</text:print-date>'
    '<text:print-time text:time-value="10:11:12">10:11:12</text:print-time>'
    '<text:editing-cycles>7</text:editing-cycles>'
    '<text:editing-duration text:duration="PT3H">03:00:00</text:editing-duration>'
    '<text:user-defined text:name="Place" office:string-value="Kyiv street 5">Kyiv street 5'
    '</text:user-defined>'
    '<text:date text:date-value="2024-03-01">2024-03-01</text:date>'
    '<text:date text:fixed="true" text:date-value="2023-01-01">the day it began</text:date>')


def test_odf_document_fields_lose_names_paths_and_dates(corpus, sanitized, tmp_path):
    """A field shows a value from the document's properties, its path on
    disk or the user's own data: the field stays, what it shows goes."""
    original = tmp_path / "fields.odt"
    with zipfile.ZipFile(corpus.odt()) as src, zipfile.ZipFile(original, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "content.xml":
                body = body.replace(b"<office:body>", b'<office:body xmlns:text='
                                    b'"urn:oasis:names:tc:opendocument:xmlns:text:1.0">')
                body = body.replace(b"</office:text>",
                                    f"<text:p>Fields: {ODF_FIELDS}</text:p></office:text>"
                                    .encode())
            dst.writestr(info, body)
    result, out = sanitized(original)
    assert result.ok, result.reason
    with zipfile.ZipFile(out) as z:
        content = z.read("content.xml")
    assert planted_in_bytes(content) == []
    assert b"olena" not in content.lower() and b"/home" not in content
    assert b"10:11" not in content and b"PT3H" not in content and b">7<" not in content
    assert b"the day it began" in content and b"2023-01-01" in content  # fixed by its author
    assert content.count(b"<text:file-name") == 1  # the fields stay, emptied
    assert {"document field file-name", "document field creation-date",
            "document field sender-phone-work"} <= set(result.removed)


ODF_LINKS = (
    '<draw:frame><draw:image xlink:href="file:///home/OlenaSvidok/photo.jpg"/></draw:frame>'
    '<draw:frame><draw:image xlink:href="../../../home/OlenaSvidok/photo.jpg"/></draw:frame>'
    '<draw:frame><draw:image xlink:href="http://tracker.example/p.png?who=Svidok"/>'
    '</draw:frame><text:a xlink:href="file:///C:/Users/OlenaSvidok/report.pdf">mine</text:a>'
    '<text:section-source xlink:href="/home/OlenaSvidok/part.odt"/>'
    '<text:a xlink:href="https://example.org/news">news</text:a>'
    '<text:a xlink:href="mailto:desk@example.org">desk</text:a>'
    '<text:a xlink:href="#chapter2">below</text:a>'
    '<draw:frame><draw:image xlink:href="Pictures/inside.png"/></draw:frame>'
    '<draw:frame><draw:object xlink:href="./Object 1"/></draw:frame>')


def test_odf_links_outside_the_package_are_pointed_nowhere(corpus, sanitized, tmp_path):
    """A picture or section linked from the disk or the web names a folder
    or calls home; a file: hyperlink names a folder. Parts of the package,
    places in the document and web or mail hyperlinks stay."""
    png = io.BytesIO()
    from sanitize.sanitize_corpus import picture

    picture((8, 8)).save(png, "PNG")
    original = tmp_path / "links.odt"
    namespaces = (b'<office:body xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
                  b'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
                  b'xmlns:xlink="http://www.w3.org/1999/xlink">')
    with zipfile.ZipFile(corpus.odt()) as src, zipfile.ZipFile(original, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "content.xml":
                body = body.replace(b"<office:body>", namespaces).replace(
                    b"</office:text>", f"<text:p>{ODF_LINKS}</text:p></office:text>".encode())
            dst.writestr(info, body)
        dst.writestr("Pictures/inside.png", png.getvalue())
        dst.writestr("Object 1/content.xml", b'<?xml version="1.0"?><office:document-content '
                     b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"/>')
    result, out = sanitized(original)
    assert result.ok, result.reason
    with zipfile.ZipFile(out) as z:
        content = z.read("content.xml")
    assert b"Svidok" not in content and b"tracker" not in content
    assert content.count(b'xlink:href="about:blank"') == 5
    for kept in (b"https://example.org/news", b"mailto:desk@example.org", b"#chapter2",
                 b"Pictures/inside.png", b"./Object 1"):
        assert b'xlink:href="' + kept + b'"' in content
    assert {"external image link", "external a link", "external section-source link"} <= \
        set(result.removed)


def docx_text(path: Path) -> list[str]:
    import docx

    return [p.text for p in docx.Document(str(path)).paragraphs]


def all_parts(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return b"".join(z.read(i) for i in z.infolist())


def test_docx_loses_authors_rsids_people_thumbnail_and_keeps_text(corpus, sanitized):
    original = corpus.docx()
    assert b"Olena" in all_parts(original)
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.detected_type.endswith("wordprocessingml.document")
    assert docx_text(out) == docx_text(original)
    assert "A tank stood at the corner." in docx_text(out) or \
        "A tank stood at the corner." in all_parts(out).decode()
    parts = all_parts(out)
    assert planted_in_bytes(parts) == []
    assert b"rsid" not in parts and b"presenceInfo" not in parts
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert not [n for n in names if "thumbnail" in n or "printerSettings" in n]
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"check the hour" in z.read("word/comments.xml")  # the words stay
    assert leftovers(out) == []
    assert {"core.xml:creator", "core.xml:lastModifiedBy", "rsid", "zip timestamps"} <= \
        set(result.removed)


def _with_photo(corpus, tmp_path) -> tuple[Path, bytes]:
    """A report with a phone photo pasted in: the photo carries GPS, camera
    serials and a thumbnail with its own EXIF."""
    import docx

    photo = corpus.jpeg("pasted.jpg", orientation=1)
    document = docx.Document(str(corpus.docx()))
    document.add_picture(str(photo))
    path = tmp_path / "report-with-photo.docx"
    document.save(path)
    return path, photo.read_bytes()


def _media(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n.startswith(("word/media/", "Pictures/"))}


def test_pictures_inside_office_files_are_cleaned_like_pictures_sent_alone(corpus, sanitized,
                                                                          tmp_path):
    original, photo = _with_photo(corpus, tmp_path)
    assert planted_in_bytes(all_parts(original)) != []  # the photo's EXIF, in the zip
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert planted_in_bytes(all_parts(out)) == []
    (name, cleaned), = _media(out).items()
    extracted = tmp_path / "extracted.jpg"
    extracted.write_bytes(cleaned)
    assert leftovers(extracted) == []
    assert pixels(cleaned) == pixels(photo)  # segments rewritten, not recompressed
    assert any(n.startswith("inside ") and "GPS" in n for n in result.removed), result.removed
    assert docx_text(out) == docx_text(original)


def test_odt_pictures_are_cleaned_too(corpus, sanitized, tmp_path):
    photo = corpus.jpeg("pasted.jpg", orientation=1).read_bytes()
    original = tmp_path / "with-picture.odt"
    original.write_bytes(corpus.odt().read_bytes())
    with zipfile.ZipFile(original, "a") as z:
        z.writestr("Pictures/100000000000.jpg", photo)
    result, out = sanitized(original)
    assert result.ok, result.reason
    (name, cleaned), = _media(out).items()
    assert name == "Pictures/100000000000.jpg"
    assert planted_in_bytes(cleaned) == [] and pixels(cleaned) == pixels(photo)


def test_picture_names_and_descriptions_that_hold_its_file_are_gone(corpus, sanitized,
                                                                   tmp_path):
    """Word names a picture after its file and older versions describe it by
    its full path; python-docx and python-pptx write the file's name too."""
    import docx
    from pptx import Presentation

    photo = tmp_path / "IMG_Svidok_20240301.jpg"
    photo.write_bytes(corpus.jpeg("pasted.jpg", orientation=1).read_bytes())
    document = docx.Document(str(corpus.docx()))
    document.add_picture(str(photo))
    word = tmp_path / "with-named-photo.docx"
    document.save(word)
    with zipfile.ZipFile(word) as z:
        xml = z.read("word/document.xml").decode()
    xml = xml.replace('<wp:docPr id=', '<wp:docPr descr="C:\\Users\\OlenaSvidok\\Pictures'
                      '\\IMG_1.jpg" title="Olena\'s title" id=', 1)
    xml = xml.replace("</w:body>", (
        '<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml" alt="Svidok" '
        'style="width:10pt;height:10pt"><v:imagedata xmlns:o="urn:schemas-microsoft-com:office:'
        'office" o:title="IMG_Svidok" o:href="file:///C:/Users/OlenaSvidok/a.jpg"/></v:shape>'
        '<wps:cNvPr xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"'
        ' id="9" name="Svidok box" descr="IMG_2"/></w:pict></w:r></w:p></w:body>'), 1)
    rewritten = tmp_path / "word.docx"
    with zipfile.ZipFile(word) as src, zipfile.ZipFile(rewritten, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, xml if info.filename == "word/document.xml" else src.read(info))
    deck = Presentation()
    deck.slides.add_slide(deck.slide_layouts[6]).shapes.add_picture(str(photo), 0, 0)
    slides = tmp_path / "deck.pptx"
    deck.save(slides)
    for original in (rewritten, slides):
        assert b"Svidok" in all_parts(original)
        result, out = sanitized(original)
        assert result.ok, result.reason
        parts = all_parts(out)
        assert b"Svidok" not in parts and b"IMG_" not in parts and b"descr=" not in parts
        assert b'name="Picture ' in parts
        assert "picture or shape name" in result.removed
    assert docx_text(out := sanitized(rewritten)[1]) == docx_text(rewritten)
    assert b"<v:imagedata" in all_parts(out)


def test_a_picture_inside_that_cannot_be_cleaned_keeps_the_file_as_received(corpus, sanitized,
                                                                           tmp_path):
    original, _ = _with_photo(corpus, tmp_path)
    broken = tmp_path / "broken-photo.docx"
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.startswith("word/media/"):
                body = body[:200]  # a truncated JPEG
            dst.writestr(info, body)
    result, out = sanitized(broken)
    assert not result.ok and out is None
    assert "a file inside" in result.reason


def test_xlsx_loses_creator_and_comment_author_keeps_cells(corpus, sanitized):
    import openpyxl

    original = corpus.xlsx()
    assert b"Olena" in all_parts(original)
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.detected_type.endswith("spreadsheetml.sheet")
    assert planted_in_bytes(all_parts(out)) == []
    sheet = openpyxl.load_workbook(out).active
    assert (sheet["A1"].value, sheet["B1"].value) == ("casualties", 3)
    assert "counted twice" in sheet["A1"].comment.text
    assert leftovers(out) == []


PIVOT_CACHE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<pivotCacheDefinition '
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" refreshedBy="Olena '
    'Svidok" refreshedDate="45352.4244" refreshedDateIso="2024-03-01T10:11:12" '
    'createdVersion="6" refreshedVersion="6" recordCount="1"><cacheSource type="external" '
    'connectionId="1"/><cacheFields count="1"><cacheField name="casualties" numFmtId="0">'
    '<sharedItems/></cacheField></cacheFields></pivotCacheDefinition>')
CONNECTIONS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<connections '
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><connection id="1" '
    'name="counts" type="1" refreshedVersion="6" savePassword="1" '
    'sourceFile="C:\\Users\\OlenaSvidok\\Documents\\contacts.accdb" '
    'odcFile="C:\\Users\\OlenaSvidok\\Documents\\My Data Sources\\counts.odc">'
    '<dbPr connection="Provider=Microsoft.ACE.OLEDB.12.0;User ID=olena.svidok;Data Source='
    'C:\\Users\\OlenaSvidok\\Documents\\contacts.accdb" command="SELECT * FROM '
    '`C:\\Users\\OlenaSvidok\\x.xlsx`.`Sheet1$`"/></connection><connection id="2" '
    'name="notes" type="6"><textPr sourceFile="/home/olena.svidok/notes.csv"/></connection>'
    '<connection id="3" name="web" type="4"><webPr url="http://192.0.2.7/Svidok/table"/>'
    '</connection></connections>')


def test_xlsx_pivot_caches_and_data_connections_lose_names_and_paths(corpus, sanitized,
                                                                      tmp_path):
    """Excel records who refreshed a pivot table and when, and a data
    connection's source file, connection string (with the user id) and
    command; the connections stay, so what names them still opens."""
    import openpyxl

    original = tmp_path / "pivot.xlsx"
    with zipfile.ZipFile(corpus.xlsx()) as src, zipfile.ZipFile(original, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "[Content_Types].xml":
                body = body.replace(b"</Types>", (
                    b'<Override PartName="/xl/connections.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.connections+xml"/>'
                    b'<Override PartName="/xl/pivotCache/pivotCacheDefinition1.xml" '
                    b'ContentType="application/vnd.openxmlformats-officedocument.'
                    b'spreadsheetml.pivotCacheDefinition+xml"/></Types>'))
            elif info.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(b"</Relationships>", (
                    b'<Relationship Id="rIdC" Type="http://schemas.openxmlformats.org/'
                    b'officeDocument/2006/relationships/connections" Target="connections.xml"/>'
                    b"</Relationships>"))
            dst.writestr(info, body)
        dst.writestr("xl/connections.xml", CONNECTIONS)
        dst.writestr("xl/pivotCache/pivotCacheDefinition1.xml", PIVOT_CACHE)
    result, out = sanitized(original)
    assert result.ok, result.reason
    parts = all_parts(out)
    assert b"Svidok" not in parts and b"45352" not in parts
    assert b"Users" not in parts and b"olena" not in parts.lower() and b"192.0.2.7" not in parts
    with zipfile.ZipFile(out) as z:
        connections = z.read("xl/connections.xml")
        cache = z.read("xl/pivotCache/pivotCacheDefinition1.xml")
    assert connections.count(b"<connection ") == 3 and b'connection=""' in connections
    assert b'refreshedBy=""' in cache and b"refreshedDate" not in cache
    assert {"data connection sourceFile", "data connection connection",
            "data connection command", "data connection url"} <= set(result.removed)
    assert openpyxl.load_workbook(out).active["B1"].value == 3


def test_pptx_loses_authors_keeps_slides(corpus, sanitized):
    from pptx import Presentation

    original = corpus.pptx()
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert planted_in_bytes(all_parts(out)) == []
    deck = Presentation(str(out))
    assert deck.slides[0].shapes.title.text == "Checkpoint north of the river"
    assert leftovers(out) == []


def test_odt_loses_meta_thumbnail_annotation_author(corpus, sanitized):
    original = corpus.odt()
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert result.detected_type == "application/vnd.oasis.opendocument.text"
    assert planted_in_bytes(all_parts(out)) == []
    with zipfile.ZipFile(out) as z:
        assert z.namelist()[0] == "mimetype"
        assert z.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        assert "Thumbnails/thumbnail.png" not in z.namelist()
        assert b"Thumbnails" not in z.read("META-INF/manifest.xml")
        content = z.read("content.xml").decode()
        assert not z.comment
    assert "The bridge was closed at noon." in content and "verify" in content
    assert leftovers(out) == []
    assert "meta.xml:initial-creator" in result.removed


# -- audio and video -------------------------------------------------------------

def probe(path: Path) -> dict:
    return json.loads(run("ffprobe", "-v", "quiet", "-print_format", "json", "-show_format",
                          "-show_streams", str(path)).stdout)


def av_streams(info: dict) -> list[str]:
    return [s["codec_type"] for s in info["streams"]
            if s["codec_type"] in ("video", "audio")
            and not s.get("disposition", {}).get("attached_pic")]


@pytest.mark.parametrize("family", ["mp3", "flac", "opus", "wav", "aiff", "m4a"])
def test_audio_loses_every_tag_and_picture_keeps_duration(corpus, sanitized, family):
    original = getattr(corpus, family)()
    result, out = sanitized(original)
    assert_clean(result, out)
    before, after = probe(original), probe(out)
    assert av_streams(after) == ["audio"]
    assert len(after["streams"]) == 1  # no cover picture left
    assert abs(float(after["format"]["duration"]) - float(before["format"]["duration"])) < 0.05
    assert not after["format"].get("tags", {}).keys() - {"encoder", "major_brand",
                                                          "minor_version",
                                                          "compatible_brands"}


def _id3_alone(tmp_path: Path) -> bytes:
    """An ID3v2.4 tag by itself, as mutagen writes one."""
    from mutagen.id3 import ID3, TPE1, TXXX

    path = tmp_path / "tag.id3"
    path.write_bytes(b"")
    tags = ID3()
    tags.add(TPE1(encoding=3, text="Olena Svidok"))
    tags.add(TXXX(encoding=3, desc="serial", text="SN7731QX42"))
    tags.save(path, v2_version=4)
    return path.read_bytes()


def _decodes(path: Path) -> None:
    errors = run("ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-").stderr
    assert errors == b"", errors


def test_mp3_keeps_only_the_first_files_frames(corpus, sanitized, tmp_path):
    """A second file joined with cat brings its ID3 tag; ID3v2.4 allows a tag
    at the end; any bytes may follow the last frame. Only the frames stay."""
    first = corpus.mp3().read_bytes()
    before = probe(corpus.mp3())
    for name, data in (("joined.mp3", first + corpus.mp3().read_bytes()),
                       ("tag-at-end.mp3", first + _id3_alone(tmp_path)),
                       ("trailing.mp3", first + b"notes of Olena Svidok, SN7731QX42\n")):
        original = tmp_path / name
        original.write_bytes(data)
        result, out = sanitized(original)
        assert result.ok, result.reason
        assert planted_in_bytes(out.read_bytes()) == [], name
        assert any(n.startswith("data after the audio") for n in result.removed), name
        after = probe(out)
        assert abs(float(after["format"]["duration"])
                   - float(before["format"]["duration"])) < 0.05
        _decodes(out)


def test_flac_keeps_no_application_block_and_nothing_after_its_frames(corpus, sanitized,
                                                                    tmp_path):
    """flac --keep-foreign-metadata keeps a WAV's bext chunk in an APPLICATION
    block; bytes after the last frame are read by no player."""
    data = corpus.flac().read_bytes()
    assert data[4] & 0x7F == 0 and not data[4] & 0x80  # STREAMINFO, and more blocks
    bext = b"riff" + b"bext" + b"Olena Svidok, recorder SN7731QX42".ljust(256, b"\0")
    block = bytes([2]) + len(bext).to_bytes(3, "big") + bext
    data = data[:4 + 38] + block + data[4 + 38:] + b"ID3 and notes: Olena Svidok"
    original = tmp_path / "foreign.flac"
    original.write_bytes(data)
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert planted_in_bytes(out.read_bytes()) == []
    assert b"riff" not in out.read_bytes()
    assert "FLAC:APPLICATION block" in result.removed
    assert any(n.startswith("data after the audio") for n in result.removed)
    assert probe(out)["format"]["duration"] == probe(corpus.flac())["format"]["duration"]
    _decodes(out)


def test_chained_ogg_keeps_only_its_first_link(corpus, sanitized, tmp_path):
    """cat one.opus two.opus plays both: the second link has its own tags."""
    from mutagen.oggopus import OggOpus

    one = tmp_path / "one.opus"
    one.write_bytes(corpus.opus().read_bytes())
    first = OggOpus(one)
    first.delete()
    one_data = one.read_bytes()
    original = tmp_path / "chained.opus"
    original.write_bytes(one_data + corpus.opus().read_bytes())  # tagged
    assert planted_in_bytes(original.read_bytes())
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert planted_in_bytes(out.read_bytes()) == []
    assert any(n.startswith("data after the first stream") for n in result.removed)
    assert out.read_bytes().count(b"OpusHead") == 1
    _decodes(out)


@pytest.mark.parametrize("family", ["mp4", "mov", "mkv", "webm", "avi"])
def test_video_keeps_only_video_and_audio_streams_copied(corpus, sanitized, family):
    original = getattr(corpus, family)()
    result, out = sanitized(original)
    assert_clean(result, out)
    before, after = probe(original), probe(out)
    assert av_streams(after) == av_streams(before) == ["video", "audio"]
    assert len(after["streams"]) == 2  # timed text and timecode tracks are gone
    if family in ("mp4", "mov"):
        assert len(before["streams"]) > 2
        assert any("stream (" in n for n in result.removed)
    assert abs(float(after["format"]["duration"]) - float(before["format"]["duration"])) < 0.1
    for a, b in zip(before["streams"][:2], after["streams"][:2], strict=True):
        assert (a["codec_name"], a.get("width"), a.get("sample_rate")) == \
            (b["codec_name"], b.get("width"), b.get("sample_rate"))
    # Stream copy: the first video packet is byte for byte the original's.
    first = [run("ffmpeg", "-v", "error", "-i", str(p), "-map", "0:v:0", "-c", "copy",
                 "-frames:v", "1", "-f", "data", "-").stdout for p in (original, out)]
    assert first[0] == first[1] and first[0]


def test_mp3_whose_tag_is_longer_than_the_head_is_still_found(corpus, sanitized):
    """libmagic sees only the first 64 KiB: a big cover picture hides the audio."""
    import os

    from mutagen.id3 import APIC, ID3

    original = corpus.mp3()
    tags = ID3(original)
    tags.add(APIC(encoding=3, mime="image/jpeg", type=4, desc="back",
                  data=os.urandom(100_000)))
    tags.save(original)
    result, out = sanitized(original)
    assert_clean(result, out)
    assert result.family == "mp3" and out.stat().st_size < 100_000


def test_mp4_with_its_index_at_the_end_is_read_from_memory(corpus, sanitized):
    """A phone writes the index (moov) after the data: ffmpeg must seek its input."""
    original = corpus.ffmpeg("late-index.mp4", *corpus.VIDEO, *corpus.SINE, *corpus.TAGS,
                             "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
    data = original.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")
    result, out = sanitized(original)
    assert_clean(result, out)
    assert av_streams(probe(out)) == ["video", "audio"]


def test_plain_text_is_kept_as_received_and_flagged(tmp_path, sanitized):
    note = tmp_path / "note.txt"
    note.write_text("I saw them at the station.\n")
    result, out = sanitized(note)
    assert not result.ok and out is None
    assert result.flags == ["not sanitized: unsupported type"]
    assert result.detected_type.startswith("text/plain")


def test_type_is_chosen_from_content_not_name(corpus, sanitized, tmp_path):
    disguised = tmp_path / "holiday.txt"
    disguised.write_bytes(corpus.jpeg("disguised.jpg").read_bytes())
    result, out = sanitized(disguised)
    assert result.ok and result.family == "jpeg" and leftovers(out) == []


def test_cleaning_is_deterministic(corpus, sanitized):
    original = corpus.mp4("again.mp4")
    first, _ = sanitized(original)
    second, _ = sanitized(original)
    assert first.spool.sha256 == second.spool.sha256



def test_a_pdf_restricted_by_an_owner_password_is_cleaned_and_left_unencrypted(corpus, sanitized,
                                                                                tmp_path):
    """Many institutions' PDFs forbid copying or editing with an owner password
    alone: any reader opens them. Such a file is cleaned as any other, written
    out unencrypted, without the owner password's hash; one that needs a
    password to open is still refused; the check refuses an encrypted copy."""
    import pikepdf

    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    restricted = tmp_path / "restricted.pdf"
    locked = tmp_path / "locked.pdf"
    with pikepdf.open(corpus.pdf()) as pdf:
        permissions = pikepdf.Permissions(extract=False, modify_other=False)
        pdf.save(restricted, encryption=pikepdf.Encryption(owner="Olena1985", user="", R=6,
                                                            allow=permissions))
        pdf.save(locked, encryption=pikepdf.Encryption(owner="Olena1985", user="Olena1985",
                                                        R=6))
    result, out = sanitized(restricted)
    assert_clean(result, out)
    assert "encryption (owner password only)" in result.removed
    with pikepdf.open(out) as pdf:
        assert not pdf.is_encrypted and "/Encrypt" not in pdf.trailer
    assert "The convoy passed at dawn." in pdf_text(out)
    refused, _ = sanitized(locked)
    assert not refused.ok and refused.reason == "encrypted PDF"
    again = tmp_path / "again.pdf"
    with pikepdf.open(out) as pdf:
        pdf.save(again, encryption=pikepdf.Encryption(owner="Olena1985", user="", R=6))
    with pytest.raises(Failed, match="encryption left"):
        check("pdf", restricted.read_bytes(), Cleaned(again.read_bytes()), Limits())


def test_a_font_program_without_its_length1_is_not_read_as_content(corpus, sanitized,
                                                                   tmp_path):
    """LuaTeX writes TrueType programs without the /Length1 they should have
    (the LuaTeX manual itself): the check took them for content, and a font
    whose bytes read as a dictionary holding a reference made it fail, so a
    real PDF was refused. A font descriptor's program is a font, whatever its
    dictionary says; a stream that no content parser can read is not drawn."""
    import pikepdf

    program = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").read_bytes()
    assert b"BI" in program
    path = tmp_path / "luatex-like.pdf"
    with pikepdf.open(corpus.pdf()) as pdf:
        font_file = pdf.make_stream(program + b"\n<< /A 1 0 R >> BDC EMC")  # no /Length1
        descriptor = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/DejaVuSans"), Flags=32,
            FontBBox=[0, 0, 1000, 1000], ItalicAngle=0, Ascent=900, Descent=-200,
            CapHeight=700, StemV=80, FontFile2=font_file))
        pdf.pages[0].Resources.Font.F2 = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType,
            BaseFont=pikepdf.Name("/DejaVuSans"), FirstChar=32, LastChar=32, Widths=[318],
            FontDescriptor=descriptor))
        # Another stream no content parser can read, named by nothing.
        pdf.Root.Stray = pdf.make_stream(b"<< /A 1 0 R >> BDC EMC BI /W 1 /H 1 ID x EI")
        pdf.save(path)
    result, out = sanitized(path)
    assert result.ok, result.reason
    assert "The convoy passed at dawn." in pdf_text(out)
