"""PDF with pikepdf (qpdf): metadata removed object by object, then the whole
file written anew. A full rewrite keeps only reachable objects, so earlier
revisions left behind by incremental saves are gone too. Text stays text.

Gone: the Info dictionary, XMP streams on the catalog and on every object,
PieceInfo (application private data), pdfTeX's /PTEX.* records of included
figures, /LastModified, page thumbnails, the document ids (a new random
first id, the second derived from the content), annotation authors and dates,
the EXIF/XMP inside embedded JPEG images (image XObjects, and inline images
in every content stream: pages, form XObjects, patterns, annotations'
appearances, Type 3 glyphs), the metadata of attached files
(each cleaned as if sent alone: pictures, PDFs, office files; plain text is
kept; an attachment of any other kind, or one that cannot be cleaned, keeps
the whole file as received, flagged), digital signatures (signature.py), and
what would act outside the file when it is opened (pdf_actions.py).
"""

from __future__ import annotations

import io
import os
import re

from intake.server.sanitize import jpeg, pdf_actions, signature
from intake.server.sanitize.base import Cleaned, CleanPart, Refused, unique
from intake.server.sanitize.limits import Limits
from intake.server.sanitize.pdf_objects import Nested, dictionaries

MARKUP_PRIVATE = ("/T", "/M", "/CreationDate", "/NM")


def _jpeg_chain(image) -> tuple[list, list] | None:
    """The filters of an image's dictionary and their parameters, when it is a
    JPEG (DCTDecode, alone or last in the chain); else None."""
    import pikepdf

    filters = image.get("/Filter")
    chain = list(filters) if isinstance(filters, pikepdf.Array) else [filters]
    if not chain or chain[-1] != pikepdf.Name.DCTDecode:
        return None
    parms = image.get("/DecodeParms")
    chain_parms = list(parms) if isinstance(parms, pikepdf.Array) else [parms] * len(chain)
    return chain, chain_parms


def _clean_jpeg(pdf, raw: bytes, chain: list, chain_parms: list, max_pixels: int) -> Cleaned:
    """The JPEG inside an image's data, everything before DCTDecode undone
    (Flate, ASCII85...), cleaned; Refused when it cannot be."""
    import pikepdf

    try:
        if len(chain) > 1:
            outer = pikepdf.Stream(pdf, raw)
            outer.Filter = pikepdf.Array(chain[:-1])
            if any(p is not None for p in chain_parms[:-1]):
                outer.DecodeParms = pikepdf.Array(
                    [p if p is not None else pikepdf.Dictionary() for p in chain_parms[:-1]])
            raw = outer.read_bytes()
        return jpeg.clean(raw, max_pixels)
    except (Refused, pikepdf.PdfError) as exc:
        raise Refused("an image inside could not be cleaned") from exc


def _clean_image(pdf, obj, removed: list[str], max_pixels: int) -> None:
    """A JPEG image (DCTDecode, alone or last in a filter chain) keeps no EXIF
    or XMP; one that cannot be cleaned stops the whole file."""
    import pikepdf

    found = _jpeg_chain(obj)
    if found is None:
        return
    chain, chain_parms = found
    parms = chain_parms[-1] if chain_parms else None
    try:
        raw = obj.read_raw_bytes()
    except pikepdf.PdfError as exc:
        raise Refused("an image inside could not be cleaned") from exc
    cleaned = _clean_jpeg(pdf, raw, chain, chain_parms, max_pixels)
    if cleaned.removed or len(chain) > 1:
        obj.write(cleaned.data, filter=pikepdf.Name.DCTDecode,
                  decode_parms=parms if isinstance(parms, pikepdf.Dictionary) else None)
        removed += [f"embedded image {name}" for name in cleaned.removed]


# What an inline image's data may not hold once cleaned: what a reader could
# take for its end (EI between white space, before the next operator).
_FALSE_END = re.compile(rb"[\0\t\n\f\r ]EI(?:[\0\t\n\f\r /<\[(%]|$)")
_INLINE_DROPPED = ("/Filter", "/DecodeParms", "/Length", "/L")


def _inline_image(pdf, image, removed: list[str], max_pixels: int) -> bytes | None:
    """The content-stream bytes of an inline image (BI ... ID ... EI) with its
    JPEG cleaned, or None when it needs nothing (it is not a JPEG, or its
    JPEG carries nothing to remove)."""
    import pikepdf

    info = image.obj  # its dictionary, abbreviations expanded
    found = _jpeg_chain(info)
    if found is None:
        return None  # samples only (raw, Flate, LZW, RunLength, CCITT): no metadata
    chain, chain_parms = found
    # qpdf's span ends at EI, with the white space before it.
    raw = image.read_raw_bytes().rstrip(b"\0\t\n\f\r ")
    declared = info.get("/Length", info.get("/L"))
    if declared is not None and int(declared) != len(raw):
        # A reader that trusts the length would read what qpdf did not.
        raise Refused("an image inside could not be cleaned")
    cleaned = _clean_jpeg(pdf, raw, chain, chain_parms, max_pixels)
    if not cleaned.removed and len(chain) == 1:
        return None
    if _FALSE_END.search(cleaned.data):
        raise Refused("an image inside could not be cleaned")
    removed += [f"embedded image {name}" for name in cleaned.removed]
    parms = chain_parms[-1] if chain_parms else None
    entries = pikepdf.Dictionary({k: info[k] for k in info if k not in _INLINE_DROPPED})
    entries.Filter = pikepdf.Name.DCTDecode
    if isinstance(parms, pikepdf.Dictionary):
        entries.DecodeParms = parms
    written = entries.unparse().strip()  # << /Key value ... >>
    if not (written.startswith(b"<<") and written.endswith(b">>")):
        raise Refused("an image inside could not be cleaned")
    return b"BI\n" + written[2:-2].strip() + b"\nID\n" + cleaned.data + b"\nEI"


def _clean_content(pdf, owner, removed: list[str], max_pixels: int) -> bytes | None:
    """The content stream of `owner` (a page, whose contents may be several
    streams, or a form, pattern, appearance or glyph stream) with the JPEG
    of every inline image in it cleaned; None when nothing changed."""
    import pikepdf

    parts = owner if isinstance(owner, pikepdf.Stream) else owner.get("/Contents")
    parts = list(parts) if isinstance(parts, pikepdf.Array) else [parts]
    try:
        data = b"\n".join(p.read_bytes() for p in parts if isinstance(p, pikepdf.Stream))
    except pikepdf.PdfError as exc:  # a reader might still find images in it
        raise Refused("a page's content could not be read") from exc
    if b"BI" not in data:
        return None
    try:
        instructions = pikepdf.parse_content_stream(owner)
    except pikepdf.PdfError as exc:
        raise Refused("a page's content could not be read") from exc
    pieces: list[bytes] = []
    batch: list = []
    changed = False
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            try:
                image = _inline_image(pdf, instruction.iimage, removed, max_pixels)
            except pikepdf.PdfError as exc:
                raise Refused("an image inside could not be cleaned") from exc
            if image is not None:
                if batch:
                    pieces.append(pikepdf.unparse_content_stream(batch))
                    batch = []
                pieces.append(image)
                changed = True
                continue
        batch.append(instruction)
    if not changed:
        return None
    if batch:
        pieces.append(pikepdf.unparse_content_stream(batch))
    return b"\n".join(pieces)


def _content_streams(dicts: list) -> list:
    """Every stream that holds content other than a page's own: form
    XObjects, tiling patterns, annotations' appearances (/AP: /N, /R, /D,
    each a stream or a dictionary of them) and Type 3 glyphs (/CharProcs),
    found also inside dictionaries written in place (an annotation or a font
    not an object of its own)."""
    import pikepdf

    found: dict[tuple[int, int], object] = {}

    def add(stream) -> None:
        if isinstance(stream, pikepdf.Stream):
            found.setdefault(stream.objgen, stream)

    for obj in dicts:
        if isinstance(obj, pikepdf.Stream) and (obj.get("/Subtype") == pikepdf.Name.Form
                                                or obj.get("/PatternType") == 1):
            add(obj)
        appearance = obj.get("/AP")
        if isinstance(appearance, pikepdf.Dictionary):
            for kind in appearance.values():
                add(kind)
                if isinstance(kind, pikepdf.Dictionary) and not isinstance(kind, pikepdf.Stream):
                    for state in kind.values():
                        add(state)
        glyphs = obj.get("/CharProcs")
        if isinstance(glyphs, pikepdf.Dictionary):
            for glyph in glyphs.values():
                add(glyph)
    return list(found.values())


def _clean_contents(pdf, dicts: list, removed: list[str], max_pixels: int) -> None:
    """Inline images (BI ... EI) in every content stream: a JPEG among them
    keeps no EXIF or XMP, as an image XObject does not; one that cannot be
    cleaned stops the whole file."""
    import pikepdf

    pages = set()
    for page in pdf.pages:
        contents = page.obj.get("/Contents")
        parts = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
        pages.update(p.objgen for p in parts if isinstance(p, pikepdf.Stream))
        cleaned = _clean_content(pdf, page.obj, removed, max_pixels)
        if cleaned is not None:
            page.obj.Contents = pdf.make_stream(cleaned)
    for stream in _content_streams(dicts):
        if stream.objgen in pages:
            continue
        cleaned = _clean_content(pdf, stream, removed, max_pixels)
        if cleaned is not None:
            stream.write(cleaned)  # compressed again when the file is saved


def _clean_attachment(stream, removed: list[str], clean_part: CleanPart) -> None:
    import pikepdf

    try:
        body = stream.read_bytes()
    except pikepdf.PdfError as exc:
        raise Refused("an attachment inside is malformed") from exc
    cleaned = clean_part("attachment", body, removed, False)
    if cleaned is not body:
        stream.write(cleaned)  # compressed again when the file is saved
    if "/Params" in stream:  # dates, and the checksum of the file before cleaning
        del stream["/Params"]
        removed.append("attachment Params")


def _attachments(obj) -> list:
    """The embedded-file streams a file specification names (/EF: /F, /UF,
    ...); their /Type is optional, so they are found through it."""
    import pikepdf

    found = []
    if isinstance(obj, pikepdf.Stream) and obj.get("/Type") == pikepdf.Name.EmbeddedFile:
        found.append(obj)
    files = obj.get("/EF")
    if isinstance(files, pikepdf.Dictionary):
        for key in ("/F", "/UF", "/DOS", "/Mac", "/Unix"):  # a path can name a person
            if isinstance(obj.get(key), pikepdf.String):
                obj[key] = pikepdf.String(re.split(r"[/\\:]", str(obj[key]))[-1])
        found += [files[k] for k in files if isinstance(files[k], pikepdf.Stream)]
    return found


def clean(data: bytes, limits: Limits, clean_part: CleanPart) -> Cleaned:
    import pikepdf

    try:
        # No repair: a file qpdf would have to reconstruct goes to the triager as it is.
        pdf = pikepdf.open(io.BytesIO(data), attempt_recovery=False)
    except pikepdf.PasswordError as exc:
        raise Refused("encrypted PDF") from exc
    except pikepdf.PdfError as exc:
        raise Refused("malformed PDF") from exc
    removed: list[str] = []
    attached: set[tuple[int, int]] = set()
    max_pixels = limits.max_pixels_copied  # a JPEG inside is copied as coded, not decoded
    with pdf:
        if pdf.is_encrypted:
            # Opened without a password: only an owner password restricts it
            # (printing, copying), as many institutions' PDFs are. Written out
            # unencrypted, as any reader shows it, and without the owner
            # password's hash (/O), which can be tried offline against guesses.
            removed.append("encryption (owner password only)")
        info = pdf.trailer.get("/Info")
        if info is not None:
            removed += [f"Info:{str(k)[1:]}" for k in info]
            del pdf.trailer["/Info"]
        if "/ID" in pdf.trailer:
            removed.append("document ID")
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                continue
            for key in list(obj.keys()):
                # pdfTeX's record of each included figure (its file name and its
                # own Info dictionary), and the page's last edit time.
                if key.startswith("/PTEX.") or key == "/LastModified":
                    del obj[key]
                    removed.append(key[1:])
            if "/Metadata" in obj:
                del obj["/Metadata"]
                removed.append("XMP metadata")
            if "/PieceInfo" in obj:
                del obj["/PieceInfo"]
                removed.append("PieceInfo")
            if obj.get("/Type") == pikepdf.Name.Page and "/Thumb" in obj:
                del obj["/Thumb"]
                removed.append("page thumbnail")
            subtype = obj.get("/Subtype")
            if isinstance(obj, pikepdf.Stream) and subtype == pikepdf.Name.Image:
                _clean_image(pdf, obj, removed, max_pixels)
            attachment = obj.get("/Type") in (pikepdf.Name.EmbeddedFile, pikepdf.Name.Filespec)
            if attachment and "/Params" in obj:  # the attached file's dates and checksum
                del obj["/Params"]
                removed.append("attachment Params")
            for stream in _attachments(obj):
                if stream.objgen not in attached:
                    attached.add(stream.objgen)
                    _clean_attachment(stream, removed, clean_part)
        try:
            dicts = dictionaries(pdf)
        except Nested as exc:
            raise Refused("malformed PDF (nested too deep)") from exc
        signature.remove_signatures(pdf, dicts, removed)
        pdf_actions.actions(dicts, removed)
        _clean_contents(pdf, dicts, removed, max_pixels)
        for page in pdf.pages:
            for annot in page.obj.get("/Annots", []):
                if not isinstance(annot, pikepdf.Dictionary) or \
                        annot.get("/Subtype") == pikepdf.Name.Widget:
                    continue  # a form field's /T is its name, not an author
                for key in MARKUP_PRIVATE:
                    if key in annot:
                        del annot[key]
                        removed.append(f"annotation {key[1:]}")
        out = io.BytesIO()
        pdf.remove_unreferenced_resources()
        # A new random first id; qpdf derives the second from the content
        # (its other way would hash the time of day into the file).
        pdf.trailer.ID = pikepdf.Array([pikepdf.String(os.urandom(16)),
                                        pikepdf.String(os.urandom(16))])
        pdf.save(out, deterministic_id=True, fix_metadata_version=False,
                 compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.preserve)
    return Cleaned(out.getvalue(), unique(removed), tool=f"pikepdf {pikepdf.__version__}",
                   detected_type="application/pdf")
