"""The families of file Intake cleans: libmagic's answers mapped to cleaners,
and the kinds the witness form lists. Detection itself runs in the sandbox
(intake.server.sanitize.detect); this module imports nothing heavy.
"""

from __future__ import annotations

# libmagic's answer -> the family that cleans it. Several answers per family:
# libmagic's names vary between versions (audio/x-wav, audio/wav, ...).
FAMILIES: dict[str, str] = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/x-portable-pixmap": "pnm",
    "image/x-portable-greymap": "pnm",
    "image/x-portable-bitmap": "pnm",
    "image/avif": "avif",
    "image/jxl": "jxl",
    "text/html": "html",
    "application/epub+zip": "zip",
    "image/heic": "heif",
    "image/heif": "heif",
    "image/heic-sequence": "heif",
    "image/heif-sequence": "heif",
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "application/zip": "zip",  # maybe an office file: the child looks inside
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "ooxml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "ooxml",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "ooxml",
    "application/vnd.oasis.opendocument.text": "odf",
    "application/vnd.oasis.opendocument.spreadsheet": "odf",
    "application/vnd.oasis.opendocument.presentation": "odf",
    "application/vnd.oasis.opendocument.graphics": "odf",
    "application/vnd.oasis.opendocument.text-template": "odf",
    "application/vnd.oasis.opendocument.spreadsheet-template": "odf",
    "application/vnd.oasis.opendocument.presentation-template": "odf",
    "application/vnd.oasis.opendocument.graphics-template": "odf",
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "application/ogg": "ogg",
    "audio/x-wav": "wav",
    "audio/wav": "wav",
    "audio/x-aiff": "aiff",
    "audio/aiff": "aiff",
    "audio/x-m4a": "mp4",
    "audio/mp4": "mp4",
    "video/mp4": "mp4",
    "video/quicktime": "mp4",
    "video/3gpp": "mp4",
    "video/3gpp2": "mp4",
    "video/x-m4v": "mp4",
    "video/x-matroska": "mkv",
    "video/webm": "webm",
    "video/x-msvideo": "avi",
}

# The kinds of file the witness form says are cleaned (templates/submit.html,
# in its own translated sentence); a test keeps the two in step.
CLEANED_KINDS = ("JPEG", "PNG", "WebP", "GIF", "TIFF", "BMP", "HEIC", "HEIF", "AVIF",
                 "JPEG XL", "PPM", "PGM", "SVG", "PDF", "DOCX", "XLSX", "PPTX", "ODT",
                 "ODS", "ODP", "ODG", "EPUB", "MP3", "M4A", "OGG", "Opus", "FLAC", "WAV",
                 "AIFF", "MP4", "MOV", "3GP", "MKV", "WebM", "AVI")


def family_of(detected_type: str) -> str | None:
    return FAMILIES.get(detected_type.split(";")[0].strip().lower())
