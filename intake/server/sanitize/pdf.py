"""PDF with pikepdf (qpdf): metadata removed object by object, then the whole
file written anew. A full rewrite keeps only reachable objects, so earlier
revisions left behind by incremental saves are gone too. Text stays text.

Gone: the Info dictionary, XMP streams on the catalog and on every object,
PieceInfo (application private data), pdfTeX's /PTEX.* records of included
figures, /LastModified, page thumbnails, the document ids (a new random
first id, the second derived from the content), annotation authors and dates,
the EXIF/XMP inside embedded JPEG images, and the metadata of attached files
(each cleaned as if sent alone: pictures, PDFs, office files; plain text is
kept; an attachment of any other kind, or one that cannot be cleaned, keeps
the whole file as received, flagged).
"""

from __future__ import annotations

import io
import os
import re

from intake.server.sanitize import jpeg
from intake.server.sanitize.base import Cleaned, CleanPart, Refused, unique
from intake.server.sanitize.limits import Limits

MARKUP_PRIVATE = ("/T", "/M", "/CreationDate", "/NM")


def _clean_image(pdf, obj, removed: list[str], max_pixels: int) -> None:
    """A JPEG image (DCTDecode, alone or last in a filter chain) keeps no EXIF
    or XMP; one that cannot be cleaned stops the whole file."""
    import pikepdf

    filters = obj.get("/Filter")
    chain = list(filters) if isinstance(filters, pikepdf.Array) else [filters]
    if not chain or chain[-1] != pikepdf.Name.DCTDecode:
        return
    parms = obj.get("/DecodeParms")
    chain_parms = list(parms) if isinstance(parms, pikepdf.Array) else [parms] * len(chain)
    parms = chain_parms[-1] if chain_parms else None
    try:
        raw = obj.read_raw_bytes()
        if len(chain) > 1:
            # Everything before DCTDecode undone (Flate, ASCII85...), the JPEG left as it is.
            outer = pikepdf.Stream(pdf, raw)
            outer.Filter = pikepdf.Array(chain[:-1])
            if any(p is not None for p in chain_parms[:-1]):
                outer.DecodeParms = pikepdf.Array(
                    [p if p is not None else pikepdf.Dictionary() for p in chain_parms[:-1]])
            raw = outer.read_bytes()
        cleaned = jpeg.clean(raw, max_pixels)
    except (Refused, pikepdf.PdfError) as exc:
        raise Refused("an image inside could not be cleaned") from exc
    if cleaned.removed or len(chain) > 1:
        obj.write(cleaned.data, filter=pikepdf.Name.DCTDecode,
                  decode_parms=parms if isinstance(parms, pikepdf.Dictionary) else None)
        removed += [f"embedded image {name}" for name in cleaned.removed]


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
            raise Refused("encrypted PDF")
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
