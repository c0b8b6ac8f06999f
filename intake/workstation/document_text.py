"""Words from documents, for the vault's full-text search.

PDF through poppler's pdftotext (a separate process, with a time limit);
Office Open XML and OpenDocument by reading their XML parts with defusedxml.
Both are bounded: a document that is too large, broken or hostile gives no
text, never an error, and the file itself is kept as it is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from defusedxml import ElementTree

MAX_PART_BYTES = 32 * 1024 * 1024  # uncompressed, per XML part: a zip bomb stops here
PDF_SECONDS = 60

OFFICE_PARTS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        re.compile(r"^word/(document|footnotes|endnotes|header\d*|footer\d*)\.xml$"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        re.compile(r"^ppt/slides/slide\d+\.xml$"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        re.compile(r"^xl/sharedStrings\.xml$"),
    "application/vnd.oasis.opendocument.text": re.compile(r"^content\.xml$"),
    "application/vnd.oasis.opendocument.spreadsheet": re.compile(r"^content\.xml$"),
    "application/vnd.oasis.opendocument.presentation": re.compile(r"^content\.xml$"),
}


def extract(path: Path, detected_type: str, limit: int) -> str | None:
    """The document's words (at most `limit` characters), or None."""
    mime = detected_type.split(";")[0].strip()
    if mime == "application/pdf":
        return _pdf(path, limit)
    if mime in OFFICE_PARTS:
        return _office(path, OFFICE_PARTS[mime], limit)
    return None


def _pdf(path: Path, limit: int) -> str | None:
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "-q", "-enc", "UTF-8", str(path), "-"],
                              capture_output=True, timeout=PDF_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return None
    return done.stdout[:limit * 4].decode(errors="replace")[:limit] or None


def _office(path: Path, parts: re.Pattern, limit: int) -> str | None:
    words: list[str] = []
    size = 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not parts.match(info.filename) or info.file_size > MAX_PART_BYTES:
                    continue
                root = ElementTree.fromstring(z.read(info))
                for node in root.iter():
                    if node.text and node.text.strip():
                        words.append(node.text.strip())
                        size += len(node.text)
                if size >= limit:
                    break
    except Exception:  # noqa: BLE001  (a broken or hostile document: no text, no failure)
        return None
    return " ".join(words)[:limit] or None
