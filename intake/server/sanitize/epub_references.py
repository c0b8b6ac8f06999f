"""What an EPUB's pages and styles may still point at once cleaned.

A reading system opens a book's pages as web pages: an `<img src>`, a
`<link href>`, a style's `url()` or `@import` that names an address outside
the book is fetched as the book is opened, and tells whoever chose the
address that, and when, someone opened it. Only references to files of the
book stay: a relative path that, resolved against the part that names it,
stays inside the package (a `#fragment` too), and the `data:` pictures the
cleaner has cleaned. A link the reader must click (`<a href>`, a form's
action) may also name a web or mail address: the book's words, fetched only
if the reader chooses to. The cleaner (office.py) and the check of its copy
(verify.py) decide with the same rules, here.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

from intake.server.sanitize import css
from intake.server.sanitize.base import field_name

# Attributes whose address is fetched when the page is shown, on any element
# (`background` and `lowsrc` are old HTML's, still loaded; `altimg` is
# MathML's picture of a formula; `manifest` an application cache's list).
FETCHED = {"src", "href", "srcset", "imagesrcset", "poster", "data", "background", "lowsrc",
           "dynsrc", "altimg", "manifest", "icon", "classid", "action", "formaction"}
# Lists of addresses, separated by spaces.
FETCHED_LISTS = {"archive", "ping"}
# Removed wherever they are: `codebase` and `xml:base` change what every
# relative address of the element means; `srcdoc` is a page of its own,
# written in an attribute, that no rule here reads.
ALWAYS_DROPPED = {"codebase", "srcdoc"}
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
# Followed only when the reader clicks: a web or mail address may stay.
CLICKED = {("a", "href"), ("area", "href"), ("form", "action"), ("button", "formaction"),
           ("input", "formaction")}
# Elements whose whole purpose is what they fetch: with an address outside
# the book they go whole, not just the attribute.
EMBEDDING = {"iframe", "frame", "object", "embed", "applet"}
# Elements that go whatever they name: scripts, `<base>` (it changes what
# every relative address of the page means).
DROPPED_ELEMENTS = {"script", "base"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_WEB = ("http://", "https://", "mailto:")


def in_book(value: str, part: str) -> bool:
    """A reference to a file of the book, or a place in one: a relative path
    that, resolved against the part that names it, stays inside the package.
    Read as a URL parser reads it: tabs and newlines dropped, a backslash is
    a slash, `%2e%2e` is `..`. Anything with a scheme (http:, file:, a
    data: URI), `//host`, and an absolute path (`/etc/x`) is outside."""
    address = css.url_form(value).replace("\\", "/")
    if address.startswith("/") or _SCHEME.match(address):
        return False
    path = unquote(re.split(r"[?#]", address, maxsplit=1)[0]).replace("\\", "/")
    if path.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(part), path))
    return not (resolved == ".." or resolved.startswith(("../", "/")))


def clicked_link_kept(value: str, part: str) -> bool:
    """A link followed only on a click: a file of the book, or a web or mail
    address. Not a file: URL, a path outside the book, `//host` (a shared
    folder), a script (javascript:)."""
    return in_book(value, part) or css.url_form(value).lower().startswith(_WEB)


def srcset_addresses(value: str) -> list[str]:
    """The addresses of a srcset, as HTML's parser splits it: each candidate
    is an address up to a space (trailing commas cut), then descriptors up
    to a comma outside parentheses."""
    addresses, at, end = [], 0, len(value)
    while at < end:
        while at < end and (value[at].isspace() or value[at] == ","):
            at += 1
        start = at
        while at < end and not value[at].isspace():
            at += 1
        address = value[start:at]
        if address.endswith(","):
            address = address.rstrip(",")
        else:
            depth = 0  # a comma inside parentheses is a descriptor's
            while at < end and (value[at] != "," or depth):
                if value[at] == "(":
                    depth += 1
                elif value[at] == ")" and depth:
                    depth -= 1
                at += 1
        if address:
            addresses.append(address)
    return addresses


def attribute_dropped(attribute: str) -> str | None:
    """Why an attribute goes whatever its value, or None: event handlers
    (scripts), xml:base, codebase, srcdoc."""
    key = attribute.rsplit("}", 1)[-1]
    if attribute == XML_BASE:
        return "xml:base"
    if key.lower().startswith("on"):
        return "event handler"
    if key.lower() in ALWAYS_DROPPED:
        return key.lower()
    return None


def attribute_kept(tag: str, key: str, value: str, part: str) -> bool:
    """Whether an attribute that is not a `data:` picture may stay."""
    if key in FETCHED_LISTS:
        return all(in_book(v, part) for v in value.split())
    if key in ("srcset", "imagesrcset"):  # imagesrcset: a <link rel="preload">'s
        return all(in_book(v, part) for v in srcset_addresses(value))
    if (tag, key) in CLICKED:
        return clicked_link_kept(value, part)
    return in_book(value, part)


def fetching(tag: str, key: str) -> bool:
    """An attribute whose value is an address the page may fetch or follow."""
    return key in FETCHED or key in FETCHED_LISTS or (tag, key) == ("param", "value")


def meta_refresh(element) -> bool:
    """A <meta http-equiv="refresh">: the page loads another by itself."""
    return any(k.rsplit("}", 1)[-1].lower() == "http-equiv" and v.strip().lower() == "refresh"
               for k, v in element.attrib.items())


def style_kept(target: str, part: str) -> bool:
    """A style's url() or @import target that may stay: a file of the book,
    a place in the page (`url(#shadow)`), or a picture the cleaner embedded
    (pictures are cleaned before this is asked, and a `data:` URL that is not
    one stops the book)."""
    return in_book(target, part) or css.url_form(target).lower().startswith("data:image/")


# An @import rule written plainly, up to its end (media queries, layer()).
_IMPORT_RULE = re.compile(css.WRITTEN_IMPORT.pattern + r"[^;{}]*;?", re.IGNORECASE)


def scrub_style(text: str, part: str, removed: list[str]) -> str | None:
    """The style without what it would fetch from outside the book: such an
    @import goes, such a url() becomes none. None when it could still fetch
    something its text as written does not show, once its escapes are
    decoded (`u\\72l(...)`, `@im\\70ort`, `image-set("...")`): then it goes
    whole, as in an SVG."""

    def imported(found: re.Match) -> str:
        if style_kept(css.target(found), part):
            return found.group(0)
        removed.append("external reference: @import")
        return ""

    def url(found: re.Match) -> str:
        if style_kept(css.target(found), part):
            return found.group(0)
        removed.append("external reference: url()")
        return "none"

    # An @namespace rule's url() is a name, never fetched: it stays as it is
    # (made `none`, the rule would be dropped, and every selector using it).
    def scrub(piece: str) -> str:
        return css.WRITTEN_URL.sub(url, _IMPORT_RULE.sub(imported, piece))

    scrubbed = "".join(piece if named else scrub(piece)
                       for named, piece in css.namespaces_apart(text))
    if not style_clean(scrubbed, part):
        removed.append("external reference: style")
        return None
    return scrubbed


def style_clean(text: str, part: str) -> bool:
    """A style that fetches nothing from outside the book, read as a browser
    reads it."""
    for named, piece in css.namespaces_apart(text):
        if named:
            continue
        targets = css.references(piece)
        if targets is None or not all(style_kept(t, part) for t in targets):
            return False
    return True


UTF8_BOM = b"\xef\xbb\xbf"
# Bytes every encoding a browser may read a style sheet in takes as the same
# ASCII: no byte over 0x7f, no ESC (ISO-2022-JP's escape sequences vanish,
# "ur<ESC>(Bl(" is "url("), no NUL (UTF-16 reads "u<NUL>r<NUL>l<NUL>(" as "url(").
_READ_ALIKE = re.compile(rb"[\t\n\f\r\x20-\x7e]*")


def sheet_read_as_utf8(body: bytes) -> bool:
    """Whether a browser reads a style sheet as the cleaner does, in UTF-8.
    It goes by a byte order mark first, then by the sheet's @charset, then
    by the encoding of the page that links it (CSS Syntax 3, 3.2): with
    UTF-8's mark, or in bytes that read alike in all of them, it is UTF-8."""
    return body.startswith(UTF8_BOM) or _READ_ALIKE.fullmatch(body) is not None


# -- what each part of the book is ------------------------------------------

PAGES = (".xhtml", ".html", ".htm", ".xht")
MEDIA_TYPES = {"application/xhtml+xml": "page", "text/html": "page", "text/css": "style",
               "image/svg+xml": "drawing"}
OPF = "{http://www.idpf.org/2007/opf}"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"


def manifest_kinds(parts: dict[str, bytes]) -> dict[str, str]:
    """What the package documents say each part is: a reading system goes by
    the manifest's media type, not by the name, so a page named `c.txt` is a
    page all the same."""
    from intake.server.sanitize import xmlsafe

    kinds: dict[str, str] = {}
    for name, body in parts.items():
        if not name.lower().endswith(".opf") or not body.strip():
            continue
        for item in xmlsafe.parse(body).getroot().iter(f"{OPF}item"):
            kind = MEDIA_TYPES.get(item.get("media-type", "").split(";")[0].strip().lower())
            href = css.url_form(item.get("href", ""))
            if kind is None or not in_book(href, name):
                continue
            path = unquote(re.split(r"[?#]", href, maxsplit=1)[0])
            kinds[posixpath.normpath(posixpath.join(posixpath.dirname(name), path))] = kind
    return kinds


def part_kind(name: str, kinds: dict[str, str]) -> str | None:
    """What a part is (a page, a style sheet, a drawing), by its name or the
    manifest; None for the package's own documents, whatever the manifest
    says of them."""
    lower = name.lower()
    if lower.endswith((".opf", ".ncx")) or lower.startswith("meta-inf/"):
        return None
    by_name = "page" if lower.endswith(PAGES) else "style" if lower.endswith(".css") else \
        "drawing" if lower.endswith(".svg") else None
    return by_name or kinds.get(name)


def scrub_opf(tree, part: str, removed: list[str]) -> bool:
    """A package document's manifest items, metadata links and guide entries
    that name something outside the book go (a reading system may fetch a
    remote resource or a linked record as the book opens), and so do spine
    entries that named a removed item."""
    root = tree.getroot()
    gone = set()
    for element in list(root.iter()):
        href = element.get("href")
        if not isinstance(element.tag, str) or href is None or in_book(href, part) or \
                element.getparent() is None:
            continue
        gone.add(element.get("id", ""))
        removed.append(f"external reference: opf {field_name(element.tag.rsplit('}', 1)[-1], 24)}")
        element.getparent().remove(element)
    for itemref in list(root.iter(f"{OPF}itemref")):
        if itemref.get("idref", "") in gone - {""} and itemref.getparent() is not None:
            itemref.getparent().remove(itemref)
    for content in _ncx_contents(root):
        if not clicked_link_kept(content.get("src"), part):
            # A table of contents entry is followed on a click, as a link is;
            # one naming a file: path or a shared folder names where the
            # book was made. It points at the contents file itself instead.
            content.set("src", "")
            removed.append("external reference: ncx content")
    return bool(gone)


def _ncx_contents(root) -> list:
    """The NCX's `<content src>` elements: its table of contents' entries."""
    return [e for e in root.iter() if isinstance(e.tag, str) and e.tag == f"{NCX}content"
            and e.get("src") is not None]


def opf_clean(root, part: str) -> bool:
    """A package document or NCX that names nothing outside the book but
    the web and mail addresses of table of contents entries."""
    return all(in_book(e.get("href"), part) for e in root.iter() if e.get("href") is not None) \
        and all(clicked_link_kept(e.get("src"), part) for e in _ncx_contents(root))
