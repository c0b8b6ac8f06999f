"""Which cleaner a file gets, told from its bytes inside the sandbox: libmagic
first, then the file's own structure where libmagic guesses (a zip is told by
its members, an ISO media file by its brands, SVG and HTML by their markup).

This runs in the child, never in the web worker: libmagic parses hostile
bytes too. `prepare()` loads libmagic and its database before the child
confines itself (the loader looks for the library in ways the sandbox forbids).
"""

from __future__ import annotations

import io
import zipfile

from intake.server.sanitize.families import FAMILIES

_MAGIC = None
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
               b"mif2")
AVIF_BRANDS = (b"avif", b"avis")
JXL_CONTAINER = b"\0\0\0\x0cJXL \r\n\x87\n"


def prepare() -> None:
    global _MAGIC
    if _MAGIC is None:
        import magic

        _MAGIC = magic.Magic(mime=True)


def libmagic(head: bytes) -> str:
    prepare()
    if not head:
        return "application/x-empty"
    return _MAGIC.from_buffer(head)  # type: ignore[union-attr]


def _brands(head: bytes) -> set[bytes]:
    if head[4:8] != b"ftyp":
        return set()
    size = int.from_bytes(head[:4], "big")
    box = head[8:min(max(size, 16), 256)]
    return {box[0:4], *(box[i:i + 4] for i in range(8, len(box) - 3, 4))}


def is_svg(head: bytes) -> bool:
    # A byte-order mark, an XML declaration, comments or a DOCTYPE may come first.
    start = head[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    return start.startswith(b"<") and b"<svg" in start


def is_html(head: bytes) -> bool:
    start = head[:1024].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html")) or \
        (start.startswith(b"<") and b"<html" in start[:512])


def zip_kind(data: bytes) -> str | None:
    """'ooxml', 'odf' or 'epub' from the members of a zip (a docx re-zipped
    with `zip -r` is application/octet-stream to libmagic), None otherwise."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            mimetype = z.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, NotImplementedError):
        return None
    if "[Content_Types].xml" in names:
        return "ooxml"
    mimetype = mimetype.strip()
    if mimetype == b"application/epub+zip":
        return "epub"
    if mimetype.startswith(b"application/vnd.oasis.opendocument."):
        return "odf"
    return None


def family(head: bytes, found: str) -> str | None:
    """The cleaner for a file whose first bytes are `head` and whose libmagic
    type is `found`; 'zip' means "look at its members" (see zip_kind)."""
    found = found.split(";")[0].strip().lower()
    brands = _brands(head)
    if brands & set(AVIF_BRANDS):
        return "avif"
    if brands & set(HEIF_BRANDS) and not brands & {b"isom", b"mp41", b"mp42", b"qt  "}:
        return "heif"
    if head.startswith((b"\xff\x0a", JXL_CONTAINER)):
        return "jxl"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if found.startswith("text/") or found in ("application/xml", "image/svg+xml"):
        if is_svg(head):
            return "svg"
        if is_html(head):
            return "html"
    if found == "application/octet-stream" and head.startswith(b"ID3"):
        # An ID3 tag longer than the head (a cover picture) hides the MPEG
        # frames from libmagic; the mp3 cleaner checks that they follow.
        return "mp3"
    return FAMILIES.get(found)
