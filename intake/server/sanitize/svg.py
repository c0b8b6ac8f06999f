"""SVG: only the drawing stays.

Kept: elements in the SVG namespace and attributes without a namespace or in
the XLink and XML namespaces, but `xml:base`. Gone: every other namespace
(Inkscape and Sodipodi keep the author's file paths and names there, RDF and
Dublin Core the author), `<metadata>`, comments and processing instructions, scripts,
`<foreignObject>` (HTML inside a picture), event handlers (`on*`), and every
reference outside the file: an href that is not `#fragment` or a `data:`
image, a CSS `url()` or `@import` that points elsewhere (a picture that
calls home when opened). Every attribute but an href is read as CSS, as a
browser reads a presentation attribute, and a style that could still fetch
something once its escapes are decoded (`u\\72l(...)`, `@im\\70ort`,
`image-set("...")`) goes whole: the attribute, or the style sheet's text.
A prefix used but never declared (common in files cut out of bigger
documents) is declared for the parse, then removed with its namespace.

A picture embedded as a `data:image/...` URI (Inkscape's default when a
photo is imported) is decoded, cleaned by the cleaner of its kind, told by
its bytes, as if it had been sent alone, and embedded again in base64 under
the type its cleaned bytes have. One that is not a picture the sanitizer
cleans, that does not decode, or that cannot be cleaned stops the whole
file: it is refused, never passed on with its metadata.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from lxml import etree

from intake.server.sanitize import css, xmlsafe
from intake.server.sanitize.base import Cleaned, CleanPicture, Refused, field_name, unique

SVG_NS = "http://www.w3.org/2000/svg"
XML_NS = "http://www.w3.org/XML/1998/namespace"
KEPT_ATTRIBUTE_NS = ("", "http://www.w3.org/1999/xlink", XML_NS)
# xml:base: a viewer that honours it resolves even href="#id" against it, in
# a file chosen by whoever wrote the drawing. Nothing kept needs it.
XML_BASE = f"{{{XML_NS}}}base"
DROPPED = {"metadata", "script", "foreignObject"}
UNDECLARED = "urn:x-intake:undeclared:"
_PREFIX_USED = re.compile(rb"[<\s/]([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*")
_PREFIX_DECLARED = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
# Every url(...): quoted either way, or bare up to the closing parenthesis (an
# unterminated quote is taken bare, and never kept).
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"\s*\)|'([^']*)'\s*\)|([^)]*)\)?)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import[^;]*;?", re.IGNORECASE)
_DATA_URI = re.compile(r"data:([^,]*),", re.IGNORECASE)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")
_ASCII_WHITESPACE = re.compile(rb"[\t\n\f\r ]")
_FRAGMENT = re.compile(r"[A-Za-z_][\w.:-]{0,63}")


def local_reference(value: str) -> bool:
    value = value.strip()
    return value.startswith("#") or value.lower().startswith("data:image/")


def data_picture(value: str) -> bytes | None:
    """The bytes of a `data:image/...` URI, decoded as a browser decodes them
    (the fragment set aside, percent-decoding, then forgiving base64 when
    `;base64` is given); None when the value is not such a URI. A payload a
    browser would not decode is Refused: it is not passed on unexamined."""
    value = value.strip().split("#", 1)[0]
    found = _DATA_URI.match(value)
    if found is None:
        return None
    kind, *parameters = found.group(1).split(";")
    if not kind.strip().lower().startswith("image/"):
        return None
    try:
        body = unquote_to_bytes(value[found.end():])
    except (TypeError, ValueError) as exc:
        raise Refused("a picture inside the drawing does not decode") from exc
    if not any(p.strip().lower() == "base64" for p in parameters):
        return body
    return forgiving_base64(body)


def forgiving_base64(body: bytes) -> bytes:
    """Base64 decoded as a browser decodes it (whitespace ignored, padding
    optional); Refused when it would not decode."""
    body = _ASCII_WHITESPACE.sub(b"", body)
    if len(body) % 4 == 0:
        body = body[:-2] if body.endswith(b"==") else body.removesuffix(b"=")
    if len(body) % 4 == 1 or _BASE64.fullmatch(body) is None:
        raise Refused("a picture inside the drawing does not decode")
    try:
        return base64.b64decode(body + b"=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise Refused("a picture inside the drawing does not decode") from exc


class Pictures:
    """Cleans each embedded picture once (a drawing may repeat one) and gives
    back the URI it is embedded again with."""

    def __init__(self, clean_picture: CleanPicture, removed: list[str]):
        self.clean_picture, self.removed = clean_picture, removed
        self.done: dict[str, str] = {}

    def __call__(self, value: str) -> str | None:
        """The cleaned URI for a data:image value; None if it is not one."""
        if value in self.done:
            return self.done[value]
        body = data_picture(value)
        if body is None:
            return None
        data, kind = self.clean_picture(body, self.removed)
        uri = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
        _, hash_sign, fragment = value.strip().partition("#")
        if hash_sign and _FRAGMENT.fullmatch(fragment):  # an element of the picture
            uri += "#" + fragment
        elif hash_sign:
            self.removed.append("embedded picture fragment")
        self.done[value] = uri
        return uri


def _declare_prefixes(data: bytes) -> bytes:
    """Declares, on the root element, prefixes the file uses but never
    declares, so that it parses; their elements and attributes go later."""
    missing = set(_PREFIX_USED.findall(data)) - set(_PREFIX_DECLARED.findall(data)) \
        - {b"xml", b"xmlns", b"http", b"https", b"data", b"urn"}
    if not missing:
        return data
    at = re.search(rb"<svg\b", data)
    if at is None:
        return data
    extra = b"".join(b' xmlns:%s="%s%s"' % (p, UNDECLARED.encode(), p) for p in sorted(missing))
    return data[:at.end()] + extra + data[at.end():]


def _scrub_css(text: str, pictures: Pictures, removed: list[str]) -> str:
    """A style's url() that points outside the file becomes none; one that
    embeds a picture gets the cleaned picture; @import goes."""
    dropped = []

    def url(found: re.Match) -> str:
        target = next(g for g in found.groups() if g is not None)
        if target.strip().startswith("#"):
            return found.group(0)
        uri = pictures(target)
        if uri is None:
            dropped.append(target)
            return "none"
        return f'url("{uri}")'

    cleaned = _CSS_URL.sub(url, text)
    without_imports = _CSS_IMPORT.sub("", cleaned)
    if dropped or without_imports != cleaned:
        removed.append("external reference")
    return without_imports


def _scrub_style(text: str, pictures: Pictures, removed: list[str]) -> str | None:
    """The style with its references scrubbed; None when it could still fetch
    something the patterns above do not see (an escape, image-set("...")):
    then it goes whole, as an external reference does."""
    scrubbed = _scrub_css(text, pictures, removed)
    if css.plain_urls(scrubbed) is None:
        removed.append("external reference")
        return None
    return scrubbed


def css_pictures(text: str, pictures: Callable[[str], str | None]) -> str:
    """Only the pictures a style embeds (url(data:...)) are replaced by their
    cleaned copies; other url()s stay (a document's own parts). A data: URI
    that is not a picture is Refused: nothing is passed on unexamined."""

    def url(found: re.Match) -> str:
        target = next(g for g in found.groups() if g is not None)
        if not target.strip().lower().startswith("data:"):
            return found.group(0)
        uri = pictures(target)
        if uri is None:
            raise Refused("a file embedded as a data: URI is not a picture")
        return f'url("{uri}")'

    return _CSS_URL.sub(url, text)


def _dropped(element) -> str | None:
    """Why an element goes (with everything inside it), or None."""
    if not isinstance(element.tag, str):
        return "comment" if isinstance(element, etree._Comment) else "processing instruction"
    namespace = etree.QName(element).namespace or ""
    name = xmlsafe.local(element.tag)
    if namespace not in (SVG_NS, ""):
        return f"element {field_name(name, 24)} (other namespace)"
    if name in DROPPED:
        return name
    if name in ("set", "animate") and \
            xmlsafe.local(element.get("attributeName", "")) == "href":
        return "external reference"
    return None


def _scrub_attributes(element, removed: list[str], pictures: Pictures) -> None:
    for attribute in list(element.attrib):
        attr_ns = etree.QName(attribute).namespace or ""
        key = xmlsafe.local(attribute)
        value = element.attrib[attribute]
        if attr_ns not in KEPT_ATTRIBUTE_NS:
            removed.append(f"{field_name(key, 24)} attribute (other namespace)")
        elif attribute == XML_BASE:
            removed.append("xml:base")
        elif key.lower().startswith("on"):
            removed.append("event handler")
        elif key == "href" and not local_reference(value):
            removed.append("external reference")
        elif key == "href" and not value.strip().startswith("#"):
            uri = pictures(value)
            if uri is None:  # no comma: not a URI a browser would read
                removed.append("external reference")
            else:
                element.attrib[attribute] = uri
                continue
        else:
            # A presentation attribute is CSS to a browser, escapes and all.
            scrubbed = _scrub_style(value, pictures, removed)
            if scrubbed is not None:
                if scrubbed != value:
                    element.attrib[attribute] = scrubbed
                continue
        del element.attrib[attribute]
    if xmlsafe.local(element.tag) == "style":
        # Its style sheet is all the text directly inside it, the text after
        # a child element or comment too: the children go, that text stays.
        text = (element.text or "") + "".join(child.tail or "" for child in element)
        for child in list(element):
            removed.append(_dropped(child) or
                           f"element {field_name(xmlsafe.local(child.tag), 24)} in a style")
            element.remove(child)
        element.text = _scrub_style(text, pictures, removed) if text else None


def _walk(parent, removed: list[str], pictures: Pictures) -> None:
    for element in list(parent):
        why = _dropped(element)
        if why is not None:
            removed.append(why)
            parent.remove(element)  # its tail text goes too: whitespace, in SVG
            continue
        _scrub_attributes(element, removed, pictures)
        _walk(element, removed, pictures)


def clean(data: bytes, clean_picture: CleanPicture) -> Cleaned:
    """`clean_picture` cleans a picture embedded in the drawing (its bytes,
    the removed fields to add to) and gives its cleaned bytes and their
    media type; it raises Refused for one it cannot clean."""
    try:
        tree = xmlsafe.parse(data)
    except (Refused, etree.XMLSyntaxError):
        xmlsafe.check(data)  # a DTD or an entity stays a refusal
        try:
            tree = xmlsafe.parse(_declare_prefixes(data))
        except etree.XMLSyntaxError as exc:
            raise Refused("malformed SVG") from exc
    root = tree.getroot()
    if xmlsafe.local(root.tag) != "svg":
        raise Refused("unsupported type (XML that is not SVG)")
    removed: list[str] = [f"top-level {type(node).__name__.strip('_').lower()}"
                          for node in (*root.itersiblings(preceding=True), *root.itersiblings())]
    pictures = Pictures(clean_picture, removed)
    _scrub_attributes(root, removed, pictures)
    _walk(root, removed, pictures)
    # Namespace declarations no element uses any more go too.
    etree.cleanup_namespaces(root)
    # The root element alone: comments and instructions outside it are left behind.
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Cleaned(data, unique(removed),
                   tool=f"lxml {etree.__version__}", detected_type="image/svg+xml")
