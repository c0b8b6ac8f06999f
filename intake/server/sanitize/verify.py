"""The cleaned copy is checked before it leaves the sandbox: it opens with a
reader other than the code that wrote it, keeps what the original had
(pixels' size, frames, pages, streams, duration), and carries none of the
metadata its family promises to remove. A copy that fails is a failure like
any other: nothing is kept unless the witness chooses the original.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import zipfile
from collections.abc import Iterator

from intake.server.sanitize import css, xmlsafe
from intake.server.sanitize.base import Cleaned, Refused
from intake.server.sanitize.limits import Limits

PICTURES = {"jpeg", "png", "webp", "gif", "tiff", "bmp", "pnm", "heif", "avif"}
# What Pillow shows in `info` when a picture still carries it.
PICTURE_METADATA = ("xmp", "XML:com.adobe.xmp", "photoshop", "comment", "iptc")
ORIENTATION = 0x0112
# Above these, headers and metadata only: a phone photo's budget is 2 s, and
# HEVC and AV1 decode slowly (their coded bytes are copied, never re-encoded).
DECODE_PIXELS = {"heif": 4_000_000, "avif": 4_000_000}
DECODE_PIXELS_DEFAULT = 24_000_000


class Failed(Refused):
    def __init__(self, what: str):
        super().__init__(f"the cleaned copy failed its check ({what})")


def check(family: str, original: bytes, cleaned: Cleaned, limits: Limits) -> None:
    try:
        if family in PICTURES:
            # Opened, and decoded only when small (DECODE_PIXELS): the copied
            # pictures' limit, which the decoded ones are under too.
            _picture(family, original, cleaned.data, limits.max_pixels_copied)
        elif family == "svg":
            _svg(cleaned.data, limits.max_pixels_copied)
        elif family == "pdf":
            _pdf(original, cleaned.data)
        elif family in ("ooxml", "odf", "epub"):
            _zip(family, cleaned.data, limits.max_pixels_copied)
        elif family in ("mp3", "flac", "ogg"):
            _audio(cleaned.data)
        elif family == "jxl":
            _jxl(cleaned.data)
        else:
            raise Failed(f"no check for {family}")
    except Failed:
        raise
    except Refused as exc:
        raise Failed(exc.reason) from exc
    except Exception as exc:  # noqa: BLE001 - any reader's error means "does not open"
        raise Failed(f"does not open: {type(exc).__name__}") from exc


def _open_picture(family: str, data: bytes):
    from PIL import Image

    if family == "heif":
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False)
    return Image.open(io.BytesIO(data))


def _picture(family: str, original: bytes, data: bytes, max_pixels: int) -> None:
    from PIL import Image, ImageSequence

    Image.MAX_IMAGE_PIXELS = max_pixels
    after = _open_picture(family, data)
    before = _open_picture(family, original)
    if sorted(after.size) != sorted(before.size):  # orientation may have been applied
        raise Failed("picture size changed")
    if getattr(after, "n_frames", 1) != getattr(before, "n_frames", 1):
        raise Failed("frames lost")
    if after.width * after.height <= DECODE_PIXELS.get(family, DECODE_PIXELS_DEFAULT):
        for frame in ImageSequence.Iterator(after):
            frame.load()
    _no_picture_metadata(family, after)


def _no_picture_metadata(family: str, after) -> None:
    leftover = [k for k in PICTURE_METADATA if after.info.get(k)]
    exif = after.getexif()
    allowed = {ORIENTATION}
    if family == "tiff":  # a TIFF's own tags describe its pixels
        from intake.server.sanitize.raster import STRUCTURAL

        allowed |= STRUCTURAL
    if set(exif) - allowed or exif.get_ifd(0x8825) or exif.get_ifd(0x8769):
        leftover.append("EXIF")
    if family == "png":
        leftover += [k for k in after.info if isinstance(after.info[k], str)]
    if leftover:
        raise Failed("metadata left: " + ", ".join(sorted(set(leftover))))


def _svg(data: bytes, max_pixels: int, depth: int = 0) -> None:
    from lxml import etree

    from intake.server.sanitize.svg import DROPPED, SVG_NS, XML_BASE, local_reference

    root = xmlsafe.parse(data).getroot()
    for element in root.iter():
        if not isinstance(element.tag, str):
            raise Failed("comment or instruction left")
        if etree.QName(element).namespace not in (SVG_NS, None) or \
                xmlsafe.local(element.tag) in DROPPED:
            raise Failed("element left: " + xmlsafe.local(element.tag))
        for key, value in element.attrib.items():
            name = xmlsafe.local(key)
            if name.lower().startswith("on") or key == XML_BASE or \
                    (name == "href" and not local_reference(value)):
                raise Failed("active content or external reference left")
            if name == "href" and not value.strip().startswith("#"):
                _embedded_picture(value, max_pixels, depth)
        # Every other attribute is CSS to a browser, escapes and all.
        styles = [v for k, v in element.attrib.items() if xmlsafe.local(k) != "href"]
        if xmlsafe.local(element.tag) == "style":
            styles.append("".join(element.itertext()))
        for style in styles:
            targets = css.plain_urls(style)
            if targets is None:
                raise Failed("a style that may fetch a file left")
            for target in targets:
                if not target.startswith("#") and target.lower() != "none":
                    _embedded_picture(target, max_pixels, depth)


def _embedded_picture(uri: str, max_pixels: int, depth: int) -> None:
    """A picture the drawing embeds opens, and carries no metadata (read by
    Pillow, or by this check again for a drawing inside the drawing)."""
    from intake.server.sanitize.svg import data_picture

    body = data_picture(uri)
    _picture_bytes(body, max_pixels, depth)


def _picture_bytes(body: bytes | None, max_pixels: int, depth: int) -> None:
    from PIL import Image

    from intake.server.sanitize.dispatch import MAX_DEPTH, PICTURE_TYPES, family_of_part

    family = family_of_part(body) if body is not None else None
    if family not in PICTURE_TYPES or depth >= MAX_DEPTH:
        raise Failed("a reference or picture it cannot vouch for left")
    if family == "svg":
        _svg(body, max_pixels, depth + 1)  # type: ignore[arg-type]
        return
    Image.MAX_IMAGE_PIXELS = max_pixels
    picture = _open_picture(family, body)  # type: ignore[arg-type]
    _no_picture_metadata(family, picture)


def _pdf(original: bytes, data: bytes) -> None:
    import pikepdf

    from intake.server.sanitize.pdf_actions import actions
    from intake.server.sanitize.pdf_objects import Nested, dictionaries
    from intake.server.sanitize.signature import signatures_left

    with pikepdf.open(io.BytesIO(original)) as before, pikepdf.open(io.BytesIO(data)) as pdf:
        if len(pdf.pages) != len(before.pages):
            raise Failed("pages lost")
        if "/Info" in pdf.trailer:
            raise Failed("Info dictionary left")
        if pdf.is_encrypted:
            raise Failed("encryption left")
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                keys = set(obj.keys())
                if keys & {"/Metadata", "/PieceInfo", "/LastModified"} or \
                        any(k.startswith("/PTEX.") for k in keys):
                    raise Failed("metadata left")
        try:
            dicts = dictionaries(pdf)
        except Nested as exc:
            raise Failed("nested too deep") from exc
        if (signed := signatures_left(pdf, dicts)) is not None:
            raise Failed(f"digital signature left: {signed}")
        if (acting := actions(dicts, None)) is not None:
            raise Failed(f"{acting} left")
        _pdf_inline_images(pdf, dicts)
    if b"%%EOF" in data[:-8]:
        raise Failed("earlier revision left")


FONT_FILES = frozenset({"/FontFile", "/FontFile2", "/FontFile3"})


def _pdf_inline_images(pdf, dicts: list) -> None:
    """Every inline image (BI ... EI) that is a JPEG, in the pages and in any
    other stream that reads as content, carries no metadata, read by Pillow."""
    import pikepdf

    # A font descriptor's program, even without the /Length1 it should have
    # (LuaTeX leaves it out), is a font: binary that no reader draws.
    fonts = {program.objgen for descriptor in dicts
             for key in FONT_FILES & descriptor.keys()
             if isinstance(program := descriptor.get(key), pikepdf.Stream)}
    owners = list(pdf.pages)
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or "/Length1" in obj or \
                obj.get("/Subtype") in (pikepdf.Name.Image, pikepdf.Name.Type1C,
                                        pikepdf.Name.CIDFontType0C, pikepdf.Name.OpenType) or \
                obj.get("/Type") in (pikepdf.Name.EmbeddedFile, pikepdf.Name.Metadata) or \
                (obj.objgen in fonts and obj.get("/Subtype") != pikepdf.Name.Form):
            continue  # pictures, attachments and font programs are not content
        try:
            if b"BI" in obj.read_bytes():
                owners.append(obj)
        except pikepdf.PdfError:
            continue  # not content a reader could draw
    for owner in owners:
        try:
            instructions = pikepdf.parse_content_stream(owner)
        except (pikepdf.PdfError, TypeError):  # TypeError: objects no content may hold
            continue
        for instruction in instructions:
            if isinstance(instruction, pikepdf.ContentStreamInlineImage):
                _pdf_inline_jpeg(pdf, instruction.iimage)


def _pdf_inline_jpeg(pdf, image) -> None:
    import pikepdf
    from PIL import Image

    filters = image.obj.get("/Filter")
    chain = list(filters) if isinstance(filters, pikepdf.Array) else [filters]
    if not chain or chain[-1] != pikepdf.Name.DCTDecode:
        return
    raw = image.read_raw_bytes()
    if len(chain) > 1:
        outer = pikepdf.Stream(pdf, raw)
        outer.Filter = pikepdf.Array(chain[:-1])
        raw = outer.read_bytes()
    _no_picture_metadata("jpeg", Image.open(io.BytesIO(raw)))


OFFICE_PROPERTIES = ("docProps/core.xml", "docProps/app.xml", "docProps/custom.xml", "meta.xml")


def _page(body: bytes, part: str, max_pixels: int) -> None:
    """An EPUB's XHTML page: no <meta> naming its author or program, every
    picture embedded as a data: URI vouched for, every inline drawing as an
    SVG sent alone would be; no script, event handler, base, refresh or
    reference outside the book (epub_references)."""
    from lxml import etree

    from intake.server.sanitize import epub_references as references
    from intake.server.sanitize.office import LOADING, SVG, page_meta_dropped

    root = xmlsafe.parse(body).getroot()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag == f"{{{SVG}}}svg" and not any(
                a.tag == f"{{{SVG}}}svg" for a in element.iterancestors()):
            _svg(etree.tostring(element), max_pixels)
            continue
        if element.tag.startswith(f"{{{SVG}}}"):
            if not any(a.tag == f"{{{SVG}}}svg" for a in element.iterancestors()):
                raise Failed("a drawing element outside a drawing left")
            continue
        tag = xmlsafe.local(element.tag)
        if tag == "meta" and page_meta_dropped(element.get("name", "")):
            raise Failed("page meta left")
        if tag in references.DROPPED_ELEMENTS or (
                tag == "meta" and references.meta_refresh(element)):
            raise Failed("script, base or refresh left")
        for attribute, value in element.attrib.items():
            key = xmlsafe.local(attribute)
            if references.attribute_dropped(attribute) is not None:
                raise Failed("event handler or base left")
            if key in LOADING and "data:" in css.url_form(value).lower():
                _embedded_picture(css.url_form(value), max_pixels, 0)
            elif key == "style":
                _css(value, part, max_pixels)
            elif references.fetching(tag, key) and \
                    not references.attribute_kept(tag, key, value, part):
                raise Failed("external reference left")
        if tag == "style":
            if len(element):  # a comment's tail is style sheet text too
                raise Failed("a comment or element in a style left")
            _css(element.text or "", part, max_pixels)


_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]*)""", re.IGNORECASE)


def _css(text: str, part: str, max_pixels: int) -> None:
    """Every picture a style embeds as a plain url(data:...) is vouched for,
    no other data: URL is left where a browser would find one once the
    escapes are decoded (u\\72l(data:...), image-set("data:...")), and
    nothing outside the book is fetched."""
    from intake.server.sanitize.epub_references import style_clean

    if not style_clean(text, part):
        raise Failed("a style that may fetch a file outside the book left")

    def vouched(url: re.Match) -> str:
        if not url.group(2).strip().lower().startswith("data:"):
            return url.group(0)
        _embedded_picture(url.group(2), max_pixels, 0)
        return "none"

    if css.data_urls(_CSS_URL.sub(vouched, text)):
        raise Failed("a picture it cannot vouch for left")


def _odf_part(root, max_pixels: int) -> None:
    from intake.server.sanitize.office import (
        DATABASE_ITEMS,
        NEUTRAL_ODF_NAME,
        ODF_BINARY,
        ODF_BITMAP,
        ODF_DATABASE_NAMES,
        ODF_DESCRIPTIONS,
        ODF_NAME,
        ODF_SHAPES,
    )
    from intake.server.sanitize.svg import forgiving_base64

    for element in root.iter():
        if element.tag in ODF_DESCRIPTIONS:
            raise Failed("picture title or description left")
        if element.tag in ODF_SHAPES or element.tag == ODF_BITMAP:
            name = element.get(ODF_NAME)
            if name is not None and not NEUTRAL_ODF_NAME.fullmatch(name):
                raise Failed("picture name left")
        if any(element.get(a) for a in ODF_DATABASE_NAMES) or (
                xmlsafe.local(element.tag) == "config-item" and element.text
                and any(v in DATABASE_ITEMS for v in element.attrib.values())):
            raise Failed("database name left")
        if element.tag == ODF_BINARY:
            _picture_bytes(forgiving_base64((element.text or "").encode("ascii", "replace")),
                           max_pixels, 0)


def _zip(family: str, data: bytes, max_pixels: int) -> None:
    from intake.server.sanitize import epub_references as references
    from intake.server.sanitize.office import (
        CONNECTION_DROPPED,
        CONNECTION_EMPTIED,
        DOCUMENT_IDS,
        DRAWING_PROPERTIES,
        DRAWING_TEXT,
        ODF_FIELDS,
        PROTECTION_ITEMS,
        SPREADSHEET,
        XLINK_HREF,
        document_uid,
        dropped_part,
        field_instructions,
        field_path,
        neutral_name,
        odf_link_kept,
        protection_hash,
    )

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        if z.testzip() is not None:
            raise Failed("damaged zip")
        names = z.namelist()
        kinds = references.manifest_kinds({n: z.read(n) for n in names
                                           if n.lower().endswith(".opf")}) \
            if family == "epub" else {}
        if family in ("odf", "epub") and names[:1] != ["mimetype"]:
            raise Failed("mimetype not first")
        if family == "epub" and "META-INF/encryption.xml" in names:
            raise Failed("encryption.xml left")
        for name in names:
            lower = name.lower()
            if dropped_part(name):
                raise Failed(f"part left: {lower.rsplit('/', 1)[-1][:30]}")
            kind = references.part_kind(name, kinds) if family == "epub" else None
            if kind == "page":
                _page(z.read(name), name, max_pixels)
                continue
            if kind == "style":
                sheet = z.read(name)
                if not references.sheet_read_as_utf8(sheet):
                    raise Failed("a style sheet a browser may read in another encoding left")
                _css(sheet.decode("utf-8-sig"), name, max_pixels)
                continue
            if kind == "drawing":
                _svg(z.read(name), max_pixels)
                continue
            if not name.endswith((".xml", ".rels", ".opf", ".ncx")):
                continue
            body = z.read(name)
            if not body.strip():
                continue
            root = xmlsafe.parse(body).getroot()
            if family == "odf":
                _odf_part(root, max_pixels)
            if family == "epub" and lower.endswith((".opf", ".ncx")) and \
                    not references.opf_clean(root, name):
                raise Failed("external reference left in the package document")
            if family == "ooxml" and any(field_path(text) is not None
                                         for _, text in field_instructions(root)):
                raise Failed("field file path left")
            if name in OFFICE_PROPERTIES and any(len(e) for e in root):
                raise Failed("document properties left")
            for element in root.iter():
                if not isinstance(element.tag, str):
                    continue
                if element.tag in ODF_FIELDS and ((element.text or "").strip() or len(element)):
                    raise Failed("document field left: " + xmlsafe.local(element.tag))
                if xmlsafe.local(element.tag) in DRAWING_PROPERTIES and (
                        DRAWING_TEXT & set(element.attrib)
                        or element.get("name", neutral_name(element)) != neutral_name(element)):
                    raise Failed("picture name or description left")
                attrs = {xmlsafe.local(k): v for k, v in element.attrib.items()}
                tag = xmlsafe.local(element.tag)
                if element.tag.startswith(f"{{{SPREADSHEET}}}") and (
                        attrs.get("refreshedBy")
                        or {"refreshedDate", "refreshedDateIso"} & set(attrs)
                        or any((tag, k) in CONNECTION_DROPPED
                               or ((tag, k) in CONNECTION_EMPTIED and v)
                               for k, v in attrs.items())):
                    raise Failed("pivot table or data connection details left")
                href = element.get(XLINK_HREF)
                if family == "odf" and href is not None and \
                        not odf_link_kept(element, href, set(names), name):
                    raise Failed("external link left")
                if any("rsid" in k.lower() for k in attrs) or attrs.get("author") or \
                        attrs.get("initials"):
                    raise Failed("authors or revision ids left")
                if family == "ooxml" and (tag in DOCUMENT_IDS
                                          or any(map(document_uid, element.attrib))):
                    raise Failed("document ids left")
                if tag == "modifyVerifier" or any(protection_hash(tag, k) for k in attrs) or (
                        tag.startswith("config-item")
                        and PROTECTION_ITEMS & set(attrs.values())):
                    raise Failed("password hash left")
                if attrs.get("TargetMode") == "External":
                    from intake.server.sanitize.office import INERT, _written_link

                    kind = attrs.get("Type", "").rsplit("/")[-1]
                    target = attrs.get("Target", "")
                    if target != INERT and not _written_link(kind, target):
                        raise Failed("external relationship left")


def _audio(data: bytes) -> None:
    import mutagen

    audio = mutagen.File(io.BytesIO(data))
    if audio is None:
        raise Failed("does not open")
    if audio.tags:
        raise Failed("tags left")
    if getattr(audio, "pictures", None):
        raise Failed("pictures left")
    if any(getattr(block, "code", 0) in (2, 5, 6)  # APPLICATION, CUESHEET, PICTURE
           for block in getattr(audio, "metadata_blocks", ())):
        raise Failed("metadata block left")
    if b"APETAGEX" in data or data[-128:-125] == b"TAG":
        raise Failed("tags left")


def _jxl(data: bytes) -> None:
    from intake.server.sanitize.heif import boxes
    from intake.server.sanitize.jxl import KEPT, SIGNATURE

    if data.startswith(b"\xff\x0a"):
        return
    if not data.startswith(SIGNATURE):
        raise Failed("not JPEG XL")
    if any(kind not in KEPT for kind, *_ in boxes(data, 0, len(data))):
        raise Failed("metadata box left")


# -- media: ffprobe, which is not the code that wrote the file ----------------

FEED_AFTER_INDEX = 8 * 1024 * 1024  # of media data: enough for ffprobe to read the streams
AVI = "video/x-msvideo"
# A camera's data where a codec configuration should be: ffmpeg takes an AVI
# stream's `strd` chunk (EXIF after "AVIF", Casio's "CASI", Samsung's
# "Zora") for the configuration of a stream that has none.
CAMERA_DATA = (b"AVIF", b"CASI", b"Zora", b"II*\0", b"MM\0*")
EXIF = b"Exif\0\0"
# What a JPEG's metadata segments start with (EXIF with GPS, XMP, IPTC):
# none is left in a video's copy, whose Motion JPEG frames may carry them.
JPEG_METADATA = (EXIF, b"http://ns.adobe.com/xap/1.0/", b"Photoshop 3.0\0")
HEX_LINE = re.compile(r"^[0-9a-f]{8}: ([0-9a-f ]{40})", re.MULTILINE)
PIECE = 1024 * 1024


def probe(fd: int | None, feed: Cleaned | None = None, before=None) -> tuple[dict, dict]:
    """ffprobe's view of the memory file `fd`, or of `feed` (the MP4
    rewrite's new index and the start of its media data, held back for this
    while the rest is still to be read from the upload) sent through a pipe:
    the rewrite puts the index first, which holds every stream and the
    duration, and the copy is never put together in memory. `before`, if
    callable, is collected while this ffprobe runs."""
    out = os.memfd_create("probe", os.MFD_CLOEXEC)
    source = f"/dev/fd/{fd}" if feed is None else "pipe:0"
    try:
        proc = subprocess.Popen(["ffprobe", "-v", "quiet", "-print_format", "json",
                                 "-show_format", "-show_streams", "-show_data", source],
                                stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.DEVNULL,
                                pass_fds=(fd,) if fd is not None else ())
        if feed is not None:
            _send(feed, proc.stdin)  # type: ignore[arg-type]
        original = before() if callable(before) else (before or {})
        if proc.wait(timeout=60) != 0:
            raise Failed("does not open")
        os.lseek(out, 0, os.SEEK_SET)
        return json.loads(os.read(out, 16 * 1024 * 1024) or b"{}"), original
    finally:
        os.close(out)


def _send(feed: Cleaned, pipe) -> None:
    budget = FEED_AFTER_INDEX
    try:
        pipe.write(feed.data)
        pipe.flush()
        for offset, length in feed.ranges:
            end = offset + min(length, budget)
            budget -= end - offset
            while offset < end:
                sent = os.sendfile(pipe.fileno(), feed.fd, offset, end - offset)  # type: ignore[arg-type]
                if sent == 0:
                    return
                offset += sent
            if budget <= 0:
                return
    except BrokenPipeError:
        pass  # ffprobe has read what it needs
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()


def _av(info: dict) -> list[str]:
    return sorted(s.get("codec_type", "?") for s in info.get("streams", [])
                  if s.get("codec_type") in ("video", "audio")
                  and not s.get("disposition", {}).get("attached_pic"))


def check_media(cleaned: Cleaned) -> None:
    """Against `cleaned.before`, ffprobe's view of the upload (or the
    rewrite's reading of it). Every copy is also searched for JPEG metadata
    segments, which Motion JPEG frames carry and a stream copy keeps: the
    whole of ffmpeg's copy, the start held back of a streamed rewrite (whose
    frames were edited on the way, intake.server.sanitize.jpeg_frames)."""
    _no_jpeg_metadata(cleaned)
    if cleaned.sized:
        after, original = _probe_sized(cleaned)
        if "channels" in original["streams"][0]:  # a WAV or AIFF rewrite's
            _same_sound(after, original)
    else:
        whole = not cleaned.data and cleaned.ranges[:1] == [(0, cleaned.length)]
        after, original = probe(cleaned.fd, None if whole else cleaned,  # type: ignore[arg-type]
                                cleaned.before)
    compare(after, original)


def _same_sound(after: dict, original: dict) -> None:
    """One audio stream, of the rate and channels the rewrite read."""
    streams = [s for s in after.get("streams", []) if s.get("codec_type") == "audio"]
    was = original["streams"][0]
    if len(streams) != 1 or abs(float(streams[0].get("sample_rate") or 0)
                                - was["sample_rate"]) >= 1 \
            or streams[0].get("channels") != was["channels"]:
        raise Failed("audio format changed")


def _probe_sized(cleaned: Cleaned) -> tuple[dict, dict]:
    """ffprobe's view of a copy of which only the start is at hand: in a
    memory file as long as the whole copy, the rest a hole that takes no
    memory, so that the reader knows where the file ends."""
    fd = os.memfd_create("start", os.MFD_CLOEXEC)
    try:
        view = memoryview(cleaned.data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, cleaned.length)
        return probe(fd)[0], cleaned.before  # type: ignore[return-value]
    finally:
        os.close(fd)


def _pieces(cleaned: Cleaned) -> Iterator[bytes]:
    """The copy as far as it is at hand, in pieces: what is held, then the
    memory file's ranges."""
    yield cleaned.data
    for offset, length in cleaned.ranges:
        end = offset + length
        while offset < end:
            piece = os.pread(cleaned.fd, min(PIECE, end - offset), offset)  # type: ignore[arg-type]
            if not piece:
                raise Failed("cut short")
            yield piece
            offset += len(piece)


def _no_jpeg_metadata(cleaned: Cleaned) -> None:
    seen = FrameMetadata()
    for piece in _pieces(cleaned):
        seen.feed(piece)


class FrameMetadata:
    """Searches a copy, fed in pieces, for what JPEG metadata segments start
    with, across the pieces' edges."""

    OVERLAP = max(map(len, JPEG_METADATA)) - 1

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, piece: bytes) -> None:
        if not piece:
            return
        seen = self._tail + piece[:self.OVERLAP]
        if any(mark in piece or mark in seen for mark in JPEG_METADATA):
            raise Failed("metadata left: EXIF, XMP or IPTC in a frame")
        # From the pieces before too: a mark may span more than two short pieces.
        self._tail = seen[-self.OVERLAP:] if len(piece) < self.OVERLAP else \
            piece[-self.OVERLAP:]


def _codec_configuration(stream: dict) -> bytes:
    """A stream's codec configuration (extradata), from ffprobe's hex dump."""
    text = stream.get("extradata") or ""
    data = bytes.fromhex("".join(HEX_LINE.findall(text)))
    if len(data) != int(stream.get("extradata_size", len(data))):
        raise Failed("codec configuration unread")
    return data


def compare(after: dict, original: dict) -> None:
    """ffprobe's view of the copy against its view of the upload."""
    for stream in after.get("streams", []):
        configuration = _codec_configuration(stream)
        if configuration.startswith(CAMERA_DATA) or EXIF in configuration:
            raise Failed("metadata left: a camera's data as codec configuration")
    if not _av(after) or _av(after) != _av(original):
        raise Failed("audio or video streams lost")
    was, now = (float(i.get("format", {}).get("duration") or 0) for i in (original, after))
    if was and abs(now - was) > max(0.5, was * 0.02):
        raise Failed("duration changed")
    tags = {k.lower() for k in after.get("format", {}).get("tags", {})}
    if tags - {"major_brand", "minor_version", "compatible_brands", "encoder"}:
        raise Failed("container tags left")
