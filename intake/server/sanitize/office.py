"""Office Open XML (docx, xlsx, pptx) and OpenDocument (odt, ods, odp):
the zip is read with bomb checks and written anew.

Gone: document properties (core, app, custom; ODF meta.xml), thumbnails,
printer settings, attached-template paths, absolute file paths, the authors,
initials and dates of comments and tracked changes, the user name in a
workbook's file sharing settings, people lists (with their e-mail ids),
revision-session ids (rsids), zip timestamps and comments, what ODF's
document fields show, and links out of the package (OOXML's external
relationships, ODF's xlink:href) but web and mail hyperlinks, the files
Word fields name in their instructions (INCLUDEPICTURE, LINK...), ODF frame
and shape names (LibreOffice names a picture's frame after its file), their
titles and descriptions, and a mail merge's data source names, and an EPUB
page's <meta> naming its author or program, its scripts and event handlers,
and every reference it or its styles make outside the book
(epub_references).
Pictures inside the document (a phone photo pasted into a report keeps its
GPS) go through the same cleaners as pictures sent alone, chosen by their
bytes; one that cannot be cleaned stops the whole file, which is then kept
as received and flagged.
So do pictures written inline in base64: an EPUB page's data: URIs (in
<img>, styles and style sheets), inline <svg> drawings (through the SVG
cleaner), ODF's office:binary-data.
The document's text, tables, pictures and comments' words stay.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

from intake.server.sanitize import css, epub_fonts, xmlsafe
from intake.server.sanitize import epub_references as references
from intake.server.sanitize.base import (
    Cleaned,
    CleanPart,
    CleanPicture,
    Refused,
    bomb,
    field_name,
    unique,
)
from intake.server.sanitize.limits import Limits

EPOCH = (1980, 1, 1, 0, 0, 0)
CORE = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        b'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        b'xmlns:dcterms="http://purl.org/dc/terms/"/>')
APP = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
       b'extended-properties"/>')
CUSTOM = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
          b'custom-properties"/>')
META = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:'
        b'office:1.0" office:version="1.2"><office:meta/></office:document-meta>')
REPLACED = {"docProps/core.xml": CORE, "docProps/app.xml": APP,
            "docProps/custom.xml": CUSTOM, "meta.xml": META}

# Attributes whose value names a person or a moment: emptied (required ones)
# or removed (optional ones), wherever they appear. userName: who made a
# workbook "read-only recommended" (fileSharing) or a shared one's revisions.
# refreshedBy: who last refreshed a pivot table (its cache definition), with
# the time (refreshedDate, a serial day, and refreshedDateIso).
EMPTIED = {"author", "initials", "displayName", "userName", "refreshedBy"}
DROPPED = {"date", "dateUtc", "userId", "providerId", "lastIdx", "refreshedDate",
           "refreshedDateIso"}
# A workbook's data connections (xl/connections.xml) name the file they read
# from and how they log in: the source file's path (sourceFile, odcFile,
# textPr's sourceFile), the connection string (a path and a user id) and the
# command (which names the file for an Excel or Access source), a web query's
# address, saved credentials. Required ones are emptied, the rest removed;
# the connection stays, so that pivot tables and query tables that name it
# still open.
SPREADSHEET = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
CONNECTION_EMPTIED = {("dbPr", "connection")}
CONNECTION_DROPPED = {("connection", "sourceFile"), ("connection", "odcFile"),
                      ("connection", "description"), ("connection", "credentials"),
                      ("connection", "singleSignOnId"), ("connection", "savePassword"),
                      ("dbPr", "command"), ("textPr", "sourceFile"), ("webPr", "url"),
                      ("webPr", "post")}
# Ids a document keeps through every save and every copy made of it (Word's
# docId, PowerPoint's creationId of a slide, master or layout, Excel's
# documentId and its objects' uids): like rsids, they tie the copy to other
# files made from the same one, as those on a seized computer. Dropped whole:
# all are optional, in namespaces an older reader may ignore.
DOCUMENT_IDS = frozenset({"docId", "creationId", "revisionPtr"})
# Elements removed wholly, and elements whose text is emptied.
ELEMENTS_DROPPED = {"rsids", "rsid", "presenceInfo", "absPath", "attachedTemplate", "docVars",
                    *DOCUMENT_IDS}
TEXT_EMPTIED = {"author", "creator", "creator-initials", "author-name", "author-initials",
                "sender-firstname", "sender-lastname", "sender-email"}
ODF_DATE = "{http://purl.org/dc/elements/1.1/}date"
# OpenDocument's document fields: what they show is copied from the file's
# properties (meta.xml, which is replaced), its path on disk, its template's
# or the user's settings (the sender fields: the name, address and phone
# LibreOffice's user data holds). The field stays, its shown result and the
# values it caches are emptied. Matched in the text namespace only: other
# vocabularies use the same local names for the document's own words.
ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
ODF_FIELDS = {f"{{{ODF_TEXT}}}{name}" for name in (
    "author-name", "author-initials", "creator", "initial-creator", "printed-by",
    "creation-date", "creation-time", "modification-date", "modification-time",
    "print-date", "print-time", "editing-cycles", "editing-duration", "file-name",
    "template-name", "user-defined", "title", "subject", "description", "keywords",
    "sender-firstname", "sender-lastname", "sender-initials", "sender-title",
    "sender-position", "sender-email", "sender-phone-private", "sender-fax",
    "sender-company", "sender-phone-work", "sender-street", "sender-city",
    "sender-postal-code", "sender-country", "sender-state-or-province")}
# The current date and time, as a date or time field not fixed by its author
# showed them when the file was last saved.
ODF_CLOCK = {f"{{{ODF_TEXT}}}date", f"{{{ODF_TEXT}}}time"}
PRIVATE_RELS = ("/thumbnail", "/printerSettings", "/attachedTemplate")
PRINTER_ITEMS = {"PrinterName", "PrinterSetup", "PrinterPaperFromSetup"}
# The mail merge's data source and table a Writer document last used
# (settings.xml), as its database fields name them.
DATABASE_ITEMS = {"CurrentDatabaseDataSource", "CurrentDatabaseCommand"}


SPREADSHEET_REVISION = "{http://schemas.microsoft.com/office/spreadsheetml/"


def document_uid(attribute: str) -> bool:
    """Excel's `xr:uid` (and its later namespaces'): an object's id for good
    (DOCUMENT_IDS)."""
    return attribute.startswith(SPREADSHEET_REVISION) and attribute.endswith("}uid")


# A password's hash, kept to check it when protection is lifted: offline it
# can be tried against guesses as fast as a machine hashes, and a password is
# often one its owner uses elsewhere. The protection itself stays, without
# a password. Word's document and write protection, Excel's sheet, workbook,
# range and file-sharing ones, PowerPoint's modify password (its whole
# element is the hash); in ODF a table's, a section's or the document's
# protection key and the tracked changes' one.
PROTECTED = {"documentProtection", "writeProtection", "sheetProtection", "workbookProtection",
             "protectedRange", "fileSharing"}
PROTECTION_HASHES = {"password", "hash", "salt", "hashValue", "saltValue", "spinCount",
                     "algorithmName", "cryptSpinCount", "cryptProviderType",
                     "cryptAlgorithmClass", "cryptAlgorithmType", "cryptAlgorithmSid",
                     "cryptProvider", "algIdExt", "algIdExtSource", "cryptProviderTypeExt",
                     "cryptProviderTypeExtSource", "workbookPassword", "revisionsPassword",
                     "reservationPassword", "workbookHashValue", "workbookSaltValue",
                     "workbookSpinCount", "workbookAlgorithmName", "revisionsHashValue",
                     "revisionsSaltValue", "revisionsSpinCount", "revisionsAlgorithmName"}
ODF_PROTECTION_KEYS = {"protection-key", "protection-key-digest-algorithm",
                       "protection-key-digest-algorithm-2"}
PROTECTION_ITEMS = {"RedlineProtectionKey", "ModifyPasswordInfo"}


def protection_hash(tag: str, key: str) -> bool:
    """Whether the attribute `key` (its local name) of an element `tag` holds
    (or describes) a password's hash."""
    return (tag in PROTECTED and key in PROTECTION_HASHES) or key in ODF_PROTECTION_KEYS


# Digital signatures: each holds its signer's certificate (a name, an
# e-mail, in a qualified one a tax number) and the time of signing. The
# cleaned copy is not what was signed, so none of them could still hold.
SIGNATURE_PARTS = ("meta-inf/documentsignatures.xml", "meta-inf/macrosignatures.xml",
                   "meta-inf/packagesignatures.xml", "meta-inf/signatures.xml")


# Data a document carries for the services it passed through, not its text:
# `customXml/` holds a SharePoint or OneDrive library's properties of it (who
# created and edited it, by display name and account), and `docMetadata/` its
# sensitivity label, with the organisation's tenant id.
SERVICE_PARTS = ("customxml/", "docmetadata/")


def dropped_part(name: str) -> bool:
    """A part that goes whole: thumbnails, printer settings, signatures, the
    data of the services a document passed through."""
    lower = name.lower()
    return (lower.startswith(("docprops/thumbnail", "thumbnails/", "_xmlsignatures/",
                              *SERVICE_PARTS))
            or "/printersettings/" in lower or lower in SIGNATURE_PARTS)


def _read_all(zf: zipfile.ZipFile, limits: Limits) -> list[tuple[zipfile.ZipInfo, bytes]]:
    infos = zf.infolist()
    if len(infos) > limits.zip_entries:
        raise bomb("zip bomb: too many entries")
    if sum(i.file_size for i in infos) > limits.zip_total:
        raise bomb("zip bomb: expands too much")
    parts, total = [], 0
    for info in infos:
        if info.file_size > 1024 * 1024 and \
                info.file_size > limits.zip_ratio * max(info.compress_size, 1):
            raise bomb("zip bomb: compression ratio")
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)  # never more than the header promised
        total += len(data)
        if len(data) > info.file_size or total > limits.zip_total:
            raise bomb("zip bomb: expands too much")
        parts.append((info, data))
    return parts


# Word fields whose shown result is the author's name, a file path or a date
# from the document's properties: the result is emptied, the field kept.
IDENTIFYING_FIELD = re.compile(r"^\s*(AUTHOR|USERNAME|USERINITIALS|USERADDRESS|LASTSAVEDBY|"
                               r"FILENAME|TEMPLATE|CREATEDATE|SAVEDATE|PRINTDATE|DOCPROPERTY|"
                               r"INFO)\b", re.IGNORECASE)
COMMENT_TIMES = {"dt", "created"}  # on PowerPoint comments (cm)
# Word fields whose instruction names a file: INCLUDEPICTURE and INCLUDETEXT
# (the file included), LINK (the linked file, after its class), HYPERLINK to
# anything but a web or mail address (a file: URL, a path). The path goes,
# the field stays with an empty one: `INCLUDEPICTURE ""`.
PATH_FIELD = re.compile(r"^\s*(INCLUDEPICTURE|INCLUDETEXT|LINK|HYPERLINK)\b", re.IGNORECASE)
_FIELD_TOKEN = re.compile(r'"[^"]*"?|\S+')
_FIELD_SWITCH = re.compile(r"\\[A-Za-z*@#!]$")
HYPERLINK_SWITCH_ARGUMENTS = {"\\l", "\\o", "\\t"}


def field_path(instruction: str) -> str | None:
    """The instruction a path-bearing Word field is given instead (its file
    path emptied), or None when it names no file."""
    found = PATH_FIELD.match(instruction)
    if found is None:
        return None
    keyword = found.group(1).upper()
    tokens = _FIELD_TOKEN.findall(instruction[found.end():])
    if keyword == "HYPERLINK":
        skip, address = False, None
        for token in tokens:
            if skip:
                skip = False
            elif _FIELD_SWITCH.match(token):
                skip = token.lower() in HYPERLINK_SWITCH_ARGUMENTS
            elif address is None:
                address = token.strip('"').strip()
        if address is None or address == "" or \
                _written_link("hyperlink", address.replace("\\\\", "\\")):
            return None  # a place in the document, or a web or mail address
        return 'HYPERLINK ""'
    arguments = [t for t in tokens if not _FIELD_SWITCH.match(t)]
    if keyword == "LINK" and arguments and re.fullmatch(r"[A-Za-z][\w.]{0,39}", arguments[0]):
        if arguments[1:2] == ['""'] and len(arguments) == 2:
            return None
        return f'LINK {arguments[0]} ""'
    if arguments == ['""']:
        return None
    return f'{keyword} ""'


def field_instructions(root):
    """Each Word field's instruction: (the elements that hold it, its text).
    A simple field's is its w:instr attribute; a complex field's is the
    w:instrText between its begin and separate (or end), in document order,
    nested fields apart."""
    stack: list[list] = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = xmlsafe.local(element.tag)
        if tag == "fldSimple":
            yield [element], next((v for k, v in element.attrib.items()
                                   if xmlsafe.local(k) == "instr"), "")
        elif tag == "fldChar":
            kind = next((v for k, v in element.attrib.items()
                         if xmlsafe.local(k) == "fldCharType"), "")
            if kind == "begin":
                stack.append([])
            elif kind in ("separate", "end") and stack:
                held = stack[-1]
                if held is not None and held:
                    yield held, "".join(e.text or "" for e in held)
                stack[-1] = None  # the instruction is over
                if kind == "end":
                    stack.pop()
        elif tag == "instrText" and stack and stack[-1] is not None:
            stack[-1].append(element)


def _scrub_field_paths(root, removed: list[str]) -> bool:
    changed = False
    for elements, instruction in list(field_instructions(root)):
        replacement = field_path(instruction)
        if replacement is None:
            continue
        first = elements[0]
        if xmlsafe.local(first.tag) == "fldSimple":
            key = next(k for k in first.attrib if xmlsafe.local(k) == "instr")
            first.set(key, f" {replacement} ")
        else:
            first.text = f" {replacement} "
            for other in elements[1:]:
                other.text = ""
        removed.append("field file path")
        changed = True
    return changed


def _scrub_fields(root, removed: list[str]) -> bool:
    """Empties what identifying Word fields show: simple ones, and complex ones
    (begin, instruction, separate, result, end) in document order."""
    changed, state = False, None  # None, "instruction", "result"
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = xmlsafe.local(element.tag)
        attrs = {xmlsafe.local(k): v for k, v in element.attrib.items()}
        if tag == "fldSimple" and IDENTIFYING_FIELD.match(attrs.get("instr", "")):
            for text in element.iter():
                if isinstance(text.tag, str) and xmlsafe.local(text.tag) == "t" and text.text:
                    text.text = ""
                    removed.append("field result (author, file or date)")
                    changed = True
        elif tag == "fldChar":
            kind = attrs.get("fldCharType")
            state = "instruction" if kind == "begin" else \
                ("result" if kind == "separate" and state == "identifying" else
                 None if kind == "end" else state)
        elif tag == "instrText" and state == "instruction" and \
                IDENTIFYING_FIELD.match(element.text or ""):
            state = "identifying"
        elif tag == "t" and state == "result" and element.text:
            element.text = ""
            removed.append("field result (author, file or date)")
            changed = True
    return changed


def _scrub_xml(name: str, tree, removed: list[str]) -> bool:
    root = tree.getroot()
    changed = _scrub_fields(root, removed)
    changed = _scrub_field_paths(root, removed) or changed
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        tag = xmlsafe.local(element.tag)
        if tag in ELEMENTS_DROPPED and element.getparent() is not None:
            parent = element.getparent()
            parent.remove(element)
            # An extension (PowerPoint's creationId's) must hold something:
            # left empty, it goes too.
            if xmlsafe.local(parent.tag) == "ext" and len(parent) == 0 and \
                    parent.getparent() is not None:
                parent.getparent().remove(parent)
            removed.append(tag)
            changed = True
            continue
        changed = _drawing_names(element, removed) or changed
        if element.tag in ODF_FIELDS or (element.tag in ODF_CLOCK and element.get(
                f"{{{ODF_TEXT}}}fixed") != "true"):
            changed = _empty_field(element, removed) or changed
            continue
        if (tag in TEXT_EMPTIED or element.tag == ODF_DATE) and element.text:
            element.text = ""
            removed.append(f"{tag} (comments and changes)")
            changed = True
        if tag == "modifyVerifier" or (tag.startswith("config-item") and any(
                v in PROTECTION_ITEMS for v in element.attrib.values())):
            if element.getparent() is not None:
                element.getparent().remove(element)
                removed.append("password hash")
                changed = True
            continue
        if tag == "config-item" and any(v in PRINTER_ITEMS for v in element.attrib.values()):
            element.text = ""
            removed.append("printer settings")
            changed = True
        if tag == "config-item" and element.text and \
                any(v in DATABASE_ITEMS for v in element.attrib.values()):
            element.text = ""
            removed.append("database name")
            changed = True
        for attribute in list(element.attrib):
            key = xmlsafe.local(attribute)
            if key in EMPTIED or (tag == "cmAuthor" and key == "name") or \
                    (tag == "author" and key == "name"):
                if element.attrib[attribute]:
                    element.attrib[attribute] = ""
                    removed.append(f"{key} (comments and changes)")
                    changed = True
            elif key in DROPPED or "rsid" in key.lower() or \
                    (tag == "cm" and key in COMMENT_TIMES):
                del element.attrib[attribute]
                removed.append("rsid" if "rsid" in key.lower() else
                               f"{key} (comments and changes)")
                changed = True
            elif document_uid(attribute):
                del element.attrib[attribute]
                removed.append("uid")
                changed = True
            elif protection_hash(tag, key):
                del element.attrib[attribute]
                removed.append("password hash")
                changed = True
    return changed


# DrawingML's non-visual properties of a picture or shape (Word's wp:docPr,
# pic:cNvPr, PowerPoint's and Excel's p:cNvPr, xdr:cNvPr, in any of their
# namespaces, strict and Word 2010's wps and wpg among them): Word names an
# inserted picture after its file and older versions wrote its full path as
# the description. The name becomes a neutral one from the shape's id; the
# description and title (alt text) go. VML's pictures keep their file's name
# as o:title and a linked one's path as o:href; shapes their alt text.
DRAWING_PROPERTIES = {"docPr", "cNvPr"}
DRAWING_TEXT = {"descr", "title"}
VML = "urn:schemas-microsoft-com:vml"
VML_OFFICE = "urn:schemas-microsoft-com:office:office"
VML_DROPPED = {f"{{{VML_OFFICE}}}title", f"{{{VML_OFFICE}}}href", f"{{{VML_OFFICE}}}althref",
               "alt"}


def neutral_name(element) -> str:
    parent = element.getparent()
    picture = xmlsafe.local(element.tag) == "docPr" or (
        parent is not None and xmlsafe.local(parent.tag) == "nvPicPr")
    number = element.get("id", "")
    number = number if number.isdigit() and len(number) <= 10 else ""
    return f"{'Picture' if picture else 'Shape'} {number}".strip()


def _drawing_names(element, removed: list[str]) -> bool:
    changed = False
    tag = xmlsafe.local(element.tag)
    if tag in DRAWING_PROPERTIES:  # transitional, strict, Word 2010's wps and wpg
        if "name" in element.attrib and element.get("name") != neutral_name(element):
            element.set("name", neutral_name(element))
            removed.append("picture or shape name")
            changed = True
        for attribute in DRAWING_TEXT & set(element.attrib):
            del element.attrib[attribute]
            removed.append(f"picture or shape {attribute}")
            changed = True
    elif element.tag.startswith(f"{{{VML}}}"):
        for attribute in VML_DROPPED & set(element.attrib):
            del element.attrib[attribute]
            removed.append(f"VML {xmlsafe.local(attribute)}")
            changed = True
    return changed


def _scrub_connections(tree, removed: list[str]) -> bool:
    changed = False
    for element in tree.getroot().iter(f"{{{SPREADSHEET}}}*"):
        tag = xmlsafe.local(element.tag)
        for attribute in list(element.attrib):
            key = (tag, xmlsafe.local(attribute))
            if key in CONNECTION_EMPTIED and element.attrib[attribute]:
                element.attrib[attribute] = ""
            elif key in CONNECTION_DROPPED:
                del element.attrib[attribute]
            else:
                continue
            removed.append(f"data connection {key[1]}")
            changed = True
    return changed


def _empty_field(element, removed: list[str]) -> bool:
    """An ODF document field: its shown text and its children go, and so do
    the values it caches (date-value, time-value, duration, office:value...)."""
    changed = bool(element.text) or len(element) > 0
    element.text = None
    for child in list(element):
        element.remove(child)
    for attribute in list(element.attrib):
        key = xmlsafe.local(attribute)
        if key.endswith("value") or key == "duration":
            del element.attrib[attribute]
            changed = True
    if changed:
        removed.append(f"document field {xmlsafe.local(element.tag)}")
    return changed


def _prune_rels(name: str, tree, dropped: set[str], removed: list[str]) -> bool:
    base = posixpath.dirname(posixpath.dirname(name))
    changed = False
    for rel in list(tree.getroot()):
        target = rel.get("Target", "")
        kind = field_name(rel.get("Type", "").rsplit("/")[-1])
        resolved = posixpath.normpath(posixpath.join(base, target)).lstrip("/")
        if rel.get("Type", "").endswith(PRIVATE_RELS) or resolved in dropped or \
                target.lstrip("/") in dropped:
            tree.getroot().remove(rel)
            removed.append("relationship " + kind)
            changed = True
        elif rel.get("TargetMode") == "External" and not _written_link(kind, target):
            # A picture, frame, template or OLE link fetched when the file is
            # opened calls home; a file: path names a folder. Pointed nowhere,
            # so the document's references to it stay valid.
            rel.set("Target", INERT)
            removed.append(f"external {kind} link")
            changed = True
    return changed


INERT = "about:blank"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ODF_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
# ODF's hyperlinks, which the author wrote and which nothing follows when the
# file is opened: a web or mail address there is the document's words.
ODF_HYPERLINKS = {f"{{{ODF_TEXT}}}a", f"{{{ODF_DRAW}}}a"}


def odf_link_kept(element, href: str, members: set[str], part: str) -> bool:
    """An ODF xlink:href that may stay: a part of the package (a picture, an
    embedded object; relative to the package or to the part's own folder),
    a place in the document (#bookmark), or a web or mail address in a
    hyperlink. Anything else (a picture or section linked from the disk or
    the web, a file: hyperlink, a path outside the package) names a folder
    or calls home."""
    from urllib.parse import unquote

    if href.startswith("#") or href == INERT:
        return True
    if element.tag in ODF_HYPERLINKS and _written_link("hyperlink", href):
        return True
    if ":" in href.split("/", 1)[0] or href.startswith(("/", "\\")):
        return False  # a scheme (file:, http: on a picture...) or an absolute path
    path = unquote(href)
    for base in ("", posixpath.dirname(part)):
        resolved = posixpath.normpath(posixpath.join(base, path))
        if resolved.startswith("../") or resolved == "..":
            continue
        if resolved in members or any(m.startswith(resolved + "/") for m in members):
            return True
    return False


def _odf_links(name: str, tree, members: set[str], removed: list[str]) -> bool:
    changed = False
    for element in tree.getroot().iter():
        if not isinstance(element.tag, str):
            continue
        href = element.get(XLINK_HREF)
        if href is not None and not odf_link_kept(element, href, members, name):
            element.set(XLINK_HREF, INERT)
            removed.append(f"external {xmlsafe.local(element.tag)} link")
            changed = True
    return changed


def _written_link(kind: str, target: str) -> bool:
    """A hyperlink the author wrote into the text, to a web or mail address:
    the document's words, fetched by nothing when the file is opened."""
    return kind == "hyperlink" and target.lower().startswith(("http://", "https://",
                                                              "mailto:"))


def _prune_listing(name: str, tree, dropped: set[str]) -> bool:
    """[Content_Types].xml overrides and ODF manifest entries of dropped parts."""
    changed = False
    for entry in list(tree.getroot()):
        if not isinstance(entry.tag, str):
            continue
        values = [v.lstrip("/") for k, v in entry.attrib.items()
                  if xmlsafe.local(k) in ("PartName", "full-path")]
        if any(v in dropped or (v.endswith("/") and any(d.startswith(v) for d in dropped)
                                and v.lower().startswith("thumbnails"))
               for v in values):
            tree.getroot().remove(entry)
            changed = True
    return changed


def _property_names(name: str, data: bytes) -> list[str]:
    tree = xmlsafe.parse(data)
    names = []
    root = tree.getroot()
    for element in root.iter():
        parent = element.getparent()
        if not isinstance(element.tag, str) or parent is None:
            continue
        tag = xmlsafe.local(element.tag)
        if tag == "meta" or not (parent is root or xmlsafe.local(parent.tag) == "meta"):
            continue  # only the properties themselves, not the values' wrappers
        label = element.get("name") or element.get(
            "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}name")
        names.append(f"{posixpath.basename(name)}:{tag}"
                     + (f":{field_name(label)}" if label else ""))
    return names


def _kind(names: set[str], parts: dict[str, bytes]) -> tuple[str, str]:
    if "[Content_Types].xml" in names:
        for prefix, kind in (("word/", "wordprocessingml.document"),
                             ("xl/", "spreadsheetml.sheet"),
                             ("ppt/", "presentationml.presentation")):
            if any(n.startswith(prefix) for n in names):
                return "ooxml", "application/vnd.openxmlformats-officedocument." + kind
        return "ooxml", "application/vnd.openxmlformats-package"
    mimetype = parts.get("mimetype", b"").decode("ascii", "replace").strip()
    if mimetype.startswith("application/vnd.oasis.opendocument."):
        return "odf", mimetype
    if mimetype == "application/epub+zip":
        return "epub", mimetype
    raise Refused("unsupported type (a zip archive that is not an office file)")


DC = "{http://purl.org/dc/elements/1.1/}"
OPF_DROPPED = {"creator", "contributor", "publisher", "rights", "date", "source", "description"}
EPOCH_ISO = "2000-01-01T00:00:00Z"


def _scrub_opf(tree, removed: list[str]) -> None:
    """An EPUB's package document: who made it, when, with what, and the
    book's own id (replaced: one is required, and it may name a person)."""
    import uuid

    for element in list(tree.getroot().iter()):
        if not isinstance(element.tag, str) or element.getparent() is None:
            continue
        tag = xmlsafe.local(element.tag)
        parent = xmlsafe.local(element.getparent().tag)
        if element.tag.startswith(DC) and tag in OPF_DROPPED:
            element.getparent().remove(element)
            removed.append(f"opf:{tag}")
        elif element.tag.startswith(DC) and tag == "identifier":
            element.text = f"urn:uuid:{uuid.uuid4()}"
            removed.append("opf:identifier")
        elif tag == "meta" and parent == "metadata":
            if element.get("property") == "dcterms:modified":
                element.text = EPOCH_ISO
            elif element.get("name") != "cover" and element.get("property") != "dcterms:modified":
                element.getparent().remove(element)
                removed.append("opf:meta " + field_name(element.get("name")
                                                        or element.get("property") or "?"))
        elif tag == "docAuthor" and parent == "ncx":
            element.getparent().remove(element)
            removed.append("ncx:docAuthor")


# -- pictures written inline, as base64 ---------------------------------------

SVG = "http://www.w3.org/2000/svg"
EPUB_PAGES = references.PAGES
# Attributes that load what they name: a data: URI there is a file inside.
# `background` (on body, table, td, th) and `lowsrc` are HTML's old ones,
# which browsers still load.
LOADING = {"src", "href", "srcset", "poster", "data", "background", "lowsrc"}
# A page's <meta name=...> that says who made it, with what, about what.
PAGE_META_DROPPED = {"author", "creator", "generator", "description", "keywords",
                     "copyright", "publisher", "contributor", "owner", "reply-to",
                     "designer", "date", "rights"}


def page_meta_dropped(name: str) -> bool:
    name = name.strip().lower()
    return name in PAGE_META_DROPPED or name.startswith(("dc.", "dcterms.", "dc:", "dcterms:"))


def _scrub_page(tree, part: str, clean_picture: CleanPicture, removed: list[str]) -> None:
    """An EPUB's XHTML page: pictures embedded as data: URIs (an <img>'s src,
    a style's url()) are cleaned as if sent alone and embedded again; each
    inline <svg> goes through the SVG cleaner whole; <meta> naming the author,
    the program or the subject goes; so does every reference outside the
    book (epub_references), scripts and event handlers. The page's title and
    text stay."""
    from intake.server.sanitize import svg

    pictures = svg.Pictures(clean_picture, removed)
    root = tree.getroot()
    inline = [e for e in root.iter(f"{{{SVG}}}svg")
              if not any(a.tag == f"{{{SVG}}}svg" for a in e.iterancestors())]
    for element in inline:  # replaced whole by the SVG cleaner's copy
        cleaned = svg.clean(etree_bytes(element), clean_picture)
        removed += [f"inline drawing: {n}" for n in cleaned.removed]
        replacement = xmlsafe.parse(cleaned.data).getroot()
        replacement.tail = element.tail
        if element.getparent() is None:  # a page that is a drawing
            tree._setroot(replacement)
            root = replacement
        else:
            element.getparent().replace(element, replacement)
    # Walked from the root, so that what is inside an element that goes is
    # not looked at.
    pending = [root]
    while pending:
        element = pending.pop()
        if _scrub_page_element(element, part, pictures, removed):
            pending.extend(e for e in element if isinstance(e.tag, str))


def _scrub_page_element(element, part: str, pictures, removed: list[str]) -> bool:
    """One element of a page scrubbed; False when it went, or is an inline
    drawing (cleaned already)."""
    if element.tag == f"{{{SVG}}}svg":
        return False
    tag = xmlsafe.local(element.tag)
    if element.tag.startswith(f"{{{SVG}}}"):  # not inside a drawing: nothing draws it
        return _drop(element, "drawing element outside a drawing", removed)
    if tag == "meta" and page_meta_dropped(element.get("name", "")):
        return _drop(element, "page meta " + field_name(element.get("name", ""), 24), removed)
    if tag == "meta" and references.meta_refresh(element):
        return _drop(element, "meta refresh", removed)
    if tag in references.DROPPED_ELEMENTS:
        return _drop(element, tag, removed)
    outside = []
    for attribute, value in list(element.attrib.items()):
        key = xmlsafe.local(attribute)
        # A URL parser drops tabs inside an address: "da&#9;ta:" is data:.
        address = css.url_form(value) if key in LOADING else ""
        why = references.attribute_dropped(attribute)
        if why is not None:
            removed.append(why)
            del element.attrib[attribute]
        elif key == "style":
            scrubbed = references.scrub_style(style_pictures(value, pictures), part, removed)
            if scrubbed is None:
                del element.attrib[attribute]
            elif scrubbed != value:
                element.set(attribute, scrubbed)
        elif "data:" in address.lower():
            uri = pictures(address) if address.lower().startswith("data:") else None
            if uri is None:
                raise Refused(NOT_A_PICTURE)
            element.set(attribute, uri)
        elif references.fetching(tag, key) and \
                not references.attribute_kept(tag, key, value, part):
            outside.append(attribute)
    if outside and tag in references.EMBEDDING:
        return _drop(element, f"external reference: {field_name(tag, 24)}", removed)
    for attribute in outside:
        removed.append(f"external reference: {field_name(tag, 24)} "
                       f"{field_name(xmlsafe.local(attribute), 24)}")
        del element.attrib[attribute]
    if tag == "style":
        # Its style sheet is all the text directly inside it, the text
        # after a comment too; a reader that takes the page for HTML
        # reads the comment as style sheet text: the children go.
        text = (element.text or "") + "".join(child.tail or "" for child in element)
        for child in list(element):
            removed.append("comment or element in a style")
            element.remove(child)
        element.text = references.scrub_style(style_pictures(text, pictures), part, removed) \
            if text else None
    return True


def _drop(element, why: str, removed: list[str]) -> bool:
    """Removes the element and what is inside it; the text after it stays."""
    parent = element.getparent()
    if parent is None:
        raise Refused("a page of the book is malformed")
    removed.append(why)
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
    return False


NOT_A_PICTURE = "a file embedded in a page is not a picture that can be cleaned"


def style_pictures(text: str, pictures) -> str:
    """The style with the pictures it embeds as url(data:...) cleaned. A
    data: URL a browser would find that the plain url( match does not see
    (`u\\72l(data:...)`, `url(d\\61ta:...)`, `image-set("data:...")`,
    `@import "data:..."`) is not passed on unexamined: the book is refused,
    as for a picture that cannot be cleaned."""
    from intake.server.sanitize import svg

    cleaned = 0

    def counted(value: str) -> str | None:
        nonlocal cleaned
        uri = pictures(value)
        cleaned += uri is not None
        return uri

    scrubbed = svg.css_pictures(text, counted)
    # Each picture written back shows once; anything more was not cleaned.
    if css.data_urls(scrubbed) != cleaned:
        raise Refused(NOT_A_PICTURE)
    return scrubbed


def _scrub_drawing(name: str, body: bytes, clean_picture: CleanPicture,
                   removed: list[str]) -> bytes:
    """A drawing of the book, cleaned as an SVG sent alone (as a part told
    by its bytes would be, but a page may show it however it begins)."""
    from intake.server.sanitize import svg

    try:
        cleaned = svg.clean(body, clean_picture)
    except Refused as exc:
        raise Refused(f"a file inside could not be cleaned ({exc.reason})",
                      hostile=exc.hostile) from exc
    label = field_name(posixpath.basename(name), 24)
    removed += [f"inside {label}: {n}" for n in cleaned.removed]
    return cleaned.data


def etree_bytes(element) -> bytes:
    from lxml import etree

    return etree.tostring(element)


def _scrub_stylesheet(body: bytes, part: str, clean_picture: CleanPicture,
                      removed: list[str]) -> bytes:
    from intake.server.sanitize import svg

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused("a style sheet of the book is not UTF-8") from exc
    scrubbed = references.scrub_style(style_pictures(text, svg.Pictures(clean_picture, removed)),
                                      part, removed)
    if scrubbed is None:  # it could fetch what a plain reading does not show
        return b""
    out = body if scrubbed == text else scrubbed.encode("utf-8")
    # Read here as UTF-8, it must be read so by a browser too, whatever its
    # @charset or its page's encoding say: UTF-8's byte order mark wins.
    return out if references.sheet_read_as_utf8(out) else references.UTF8_BOM + out


ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
ODF_BINARY = f"{{{ODF_OFFICE}}}binary-data"


def _odf_binary(tree, clean_picture: CleanPicture, removed: list[str]) -> bool:
    """Pictures an ODF part holds inline (office:binary-data in a draw:image,
    a draw:fill-image, a background or a list bullet), as flat documents
    converted to a package keep them: cleaned as if sent alone, written back."""
    import base64

    from intake.server.sanitize import svg

    changed = False
    for element in tree.getroot().iter(ODF_BINARY):
        body = svg.forgiving_base64((element.text or "").encode("ascii", "replace"))
        data, _ = clean_picture(body, removed)
        element.text = base64.b64encode(data).decode("ascii")
        for child in list(element):
            element.remove(child)
        changed = True
    return changed


# -- ODF names of frames and shapes -----------------------------------------

ODF_SVG = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
ODF_NAME = f"{{{ODF_DRAW}}}name"
# LibreOffice names an inserted picture's frame after its file
# ("IMG_20260301_101112"), and a bitmap fill after its file too. Shapes and
# frames get a neutral name ("Image 3", "Shape 4", "Bitmap 1") consistent
# across the file's parts, and so do the attributes and links that name
# them; titles and descriptions (alt text) go.
ODF_SHAPES = {f"{{{ODF_DRAW}}}{n}" for n in (
    "frame", "g", "custom-shape", "rect", "line", "polyline", "polygon", "regular-polygon",
    "path", "circle", "ellipse", "connector", "caption", "measure", "control",
    "page-thumbnail")}
ODF_BITMAP = f"{{{ODF_DRAW}}}fill-image"
ODF_SHAPE_REFERENCES = {f"{{{ODF_DRAW}}}chain-next-name", f"{{{ODF_DRAW}}}copy-of"}
ODF_BITMAP_REFERENCES = {f"{{{ODF_DRAW}}}fill-image-name"}
ODF_DESCRIPTIONS = {f"{{{ODF_SVG}}}title", f"{{{ODF_SVG}}}desc"}
ODF_DISPLAY_NAME = f"{{{ODF_DRAW}}}display-name"
NEUTRAL_ODF_NAME = re.compile(r"(Image|Object|Shape|Bitmap) [0-9]{1,9}")
# A mail merge's data source (its registered name, which is often the
# address book's or file's) on database fields: emptied; what the fields show
# (a recipient's name) too.
ODF_DATABASE_NAMES = {f"{{{ODF_TEXT}}}database-name", f"{{{ODF_TEXT}}}table-name"}


class OdfNames:
    def __init__(self) -> None:
        self.names: dict[tuple[str, str], str] = {}

    def neutral(self, kind: str, name: str) -> str:
        key = ("Bitmap" if kind == "Bitmap" else "Shape", name)
        if key not in self.names:
            self.names[key] = f"{kind} {len(self.names) + 1}"
        return self.names[key]


def _shape_kind(element) -> str:
    children = {xmlsafe.local(c.tag) for c in element if isinstance(c.tag, str)}
    return "Image" if "image" in children else "Object" if children & {
        "object", "object-ole"} else "Shape"


def _odf_names(tree, names: OdfNames, removed: list[str]) -> bool:
    changed = False
    for element in list(tree.getroot().iter()):
        if not isinstance(element.tag, str):
            continue
        if element.tag in ODF_DESCRIPTIONS and element.getparent() is not None:
            element.getparent().remove(element)
            removed.append(f"picture or shape {xmlsafe.local(element.tag)}")
            changed = True
            continue
        if xmlsafe.local(element.tag).startswith("database-") and \
                element.tag.startswith(f"{{{ODF_TEXT}}}"):
            for attribute in ODF_DATABASE_NAMES & set(element.attrib):
                if element.get(attribute):
                    element.set(attribute, "")
                    removed.append("database name")
                    changed = True
            if xmlsafe.local(element.tag) == "database-display":
                changed = _empty_field(element, removed) or changed
        if element.tag in ODF_SHAPES or element.tag == ODF_BITMAP:
            name = element.get(ODF_NAME)
            kind = "Bitmap" if element.tag == ODF_BITMAP else _shape_kind(element)
            if name is not None and names.neutral(kind, name) != name:
                element.set(ODF_NAME, names.neutral(kind, name))
                removed.append("picture or shape name")
                changed = True
            if element.tag == ODF_BITMAP and ODF_DISPLAY_NAME in element.attrib:
                del element.attrib[ODF_DISPLAY_NAME]
                changed = True
        for attribute in (ODF_SHAPE_REFERENCES | ODF_BITMAP_REFERENCES) & set(element.attrib):
            kind = "Bitmap" if attribute in ODF_BITMAP_REFERENCES else "Shape"
            value = element.get(attribute)
            if value and names.neutral(kind, value) != value:
                element.set(attribute, names.neutral(kind, value))
                changed = True
        href = element.get(XLINK_HREF, "")
        if href.startswith("#") and "|" in href:  # a link to a frame: "#name|graphic"
            target, _, what = href[1:].rpartition("|")
            if what in ("graphic", "frame", "ole") and names.neutral("Shape", target) != target:
                element.set(XLINK_HREF, f"#{names.neutral('Shape', target)}|{what}")
                changed = True
    return changed


def clean(data: bytes, limits: Limits, clean_part: CleanPart,
          clean_picture: CleanPicture) -> Cleaned:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise Refused("malformed zip") from exc
    with zf:
        parts = _read_all(zf, limits)
        comment = zf.comment
    by_name = {info.filename: body for info, body in parts}
    family, kind = _kind(set(by_name), by_name)
    removed: list[str] = ["zip timestamps"]
    if comment:
        removed.append("zip comment")
    dropped = {n for n in by_name if dropped_part(n)}
    fonts: dict[str, str] = {}
    identifier = ""
    if family == "epub" and epub_fonts.ENCRYPTION in by_name:
        # Read before the identifier that keys them is replaced (_scrub_opf).
        fonts = epub_fonts.obfuscated_fonts(by_name)
        if fonts:
            found = epub_fonts.unique_identifier(by_name)
            if found is None:
                raise Refused("the book's fonts are obfuscated with an identifier it does not "
                              "have")
            identifier = found
        dropped.add(epub_fonts.ENCRYPTION)
    removed += [f"part {field_name(n)}" for n in sorted(dropped)]
    out_parts: list[tuple[str, bytes]] = []
    members = {n for n in by_name if n not in dropped}
    odf_names = OdfNames()
    kinds = references.manifest_kinds(by_name) if family == "epub" else {}
    for info, body in parts:
        name = info.filename
        kind = references.part_kind(name, kinds) if family == "epub" else None
        if name in dropped or info.is_dir():
            continue
        if name in fonts:
            body = epub_fonts.deobfuscated(body, fonts[name], identifier)
            removed.append("font obfuscation")
        replaced = REPLACED.get(name)
        if replaced is None and family == "odf" and name.endswith("/meta.xml"):
            replaced = META  # an embedded object's own properties ("Object 1/meta.xml")
        if replaced is not None:
            removed += _property_names(name, body)
            body = replaced
        elif not body.strip():
            pass  # an empty part (LibreOffice's Configurations2/accelerator/current.xml)
        elif kind == "page":
            try:
                tree = xmlsafe.parse(body)
            except Refused:
                raise
            except Exception as exc:  # noqa: BLE001 - a page that is not XHTML
                raise Refused("a page of the book is malformed") from exc
            _scrub_page(tree, name, clean_picture, removed)
            body = xmlsafe.serialize(tree)
        elif kind == "style":
            body = _scrub_stylesheet(body, name, clean_picture, removed)
        elif kind == "drawing":  # told by its name or the manifest, not by its first bytes
            body = _scrub_drawing(name, body, clean_picture, removed)
        elif name.endswith((".xml", ".rels", ".opf", ".ncx")) and name != "mimetype":
            tree = xmlsafe.parse(body)
            changed = _scrub_xml(name, tree, removed)
            if family == "epub" and name.endswith((".opf", ".ncx")):
                _scrub_opf(tree, removed)
                references.scrub_opf(tree, name, removed)
                changed = True
            if name.endswith(".rels"):
                changed = _prune_rels(name, tree, dropped, removed) or changed
            if family == "odf":
                changed = _odf_links(name, tree, members, removed) or changed
                changed = _odf_binary(tree, clean_picture, removed) or changed
                changed = _odf_names(tree, odf_names, removed) or changed
            if family == "ooxml" and posixpath.basename(name) == "connections.xml":
                changed = _scrub_connections(tree, removed) or changed
            if name in ("[Content_Types].xml", "META-INF/manifest.xml"):
                changed = _prune_listing(name, tree, dropped) or changed
            if changed:
                body = xmlsafe.serialize(tree)
        elif name != "mimetype":
            body = clean_part(name, body, removed, True)
        out_parts.append((name, body))
    if family in ("odf", "epub"):  # the mimetype entry must come first, stored
        out_parts.sort(key=lambda p: p[0] != "mimetype")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, body in out_parts:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" \
                else zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            z.writestr(info, body)
    return Cleaned(out.getvalue(), unique(removed), tool="intake zip rewrite; lxml",
                   detected_type=kind)
