"""Words from documents, for the vault's full-text search.

Runs only in the parsing sandbox (intake.workstation.parse_child), once, at
import. PDF through poppler's pdftotext, reading the file from memory (a
memfd); Office Open XML and OpenDocument by streaming their XML parts through
defusedxml's SAX parser (no DTD, no entities), counting as it goes: at most
MAX_PARTS parts, MAX_PART_BYTES of XML each once decompressed (so a zip bomb
stops there, whatever sizes the zip claims), elements nested at most
MAX_DEPTH deep, and `limit` characters of text in all. A document that is too
large, broken or hostile gives no text; the file itself is kept as it is.

The readers are imported only where they read, so the processes that hold
keys never load them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess

MAX_PART_BYTES = 32 * 1024 * 1024
MAX_PARTS = 2000
MAX_DEPTH = 200
READ = 64 * 1024

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


class Unreadable(Exception):
    """The document gives no text; the message is a short reason code."""


def kind_of(detected_type: str) -> str | None:
    """"pdf", "office" or None: which extraction a detected type gets."""
    mime = detected_type.split(";")[0].strip().lower()
    if mime == "application/pdf":
        return "pdf"
    return "office" if mime in OFFICE_PARTS else None


def pdf_text(data: bytes, limit: int, seconds: int) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        raise Unreadable("no-pdftotext")
    fd = os.memfd_create("document")
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        done = subprocess.run([tool, "-q", "-enc", "UTF-8", f"/proc/self/fd/{fd}", "-"],
                              pass_fds=(fd,), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=seconds, check=False)
    except subprocess.TimeoutExpired as exc:
        raise Unreadable("time") from exc
    finally:
        os.close(fd)
    if done.returncode != 0:
        raise Unreadable("broken")
    return done.stdout[:limit * 4].decode(errors="replace")[:limit]


def _words_handler(limit: int):
    from xml.sax.handler import ContentHandler

    class Words(ContentHandler):
        def __init__(self):
            super().__init__()
            self.words: list[str] = []
            self.size, self.depth, self.limit = 0, 0, limit

        def startElement(self, name, attrs):  # noqa: N802 (SAX's name)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise Unreadable("nested")

        def endElement(self, name):  # noqa: N802
            self.depth -= 1

        def characters(self, content):
            if content.strip() and self.size < self.limit:
                self.words.append(content.strip())
                self.size += len(content)

    return Words()


def _part_words(z, info, words) -> None:
    from defusedxml.sax import make_parser

    parser = make_parser()
    parser.forbid_dtd = True  # office XML has none; refusing it stops entity tricks
    parser.setContentHandler(words)
    read = 0
    with z.open(info) as f:
        while chunk := f.read(READ):
            read += len(chunk)
            if read > MAX_PART_BYTES:
                raise Unreadable("part-too-large")
            parser.feed(chunk)
            if words.size >= words.limit:
                return
    parser.close()


def office_text(data: bytes, detected_type: str, limit: int) -> str:
    import zipfile
    from xml.sax import SAXException

    from defusedxml import DefusedXmlException

    parts = OFFICE_PARTS[detected_type.split(";")[0].strip().lower()]
    words = _words_handler(limit)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            if len(infos) > MAX_PARTS:
                raise Unreadable("too-many-parts")
            for info in infos:
                if parts.match(info.filename):
                    _part_words(z, info, words)
                if words.size >= limit:
                    break
    except Unreadable:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, SAXException, DefusedXmlException,
            OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise Unreadable("broken") from exc
    return " ".join(words.words)[:limit]
