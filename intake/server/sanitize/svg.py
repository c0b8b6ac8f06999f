"""SVG: only the drawing stays.

Kept: elements in the SVG namespace and attributes without a namespace or in
the XLink and XML namespaces. Gone: every other namespace (Inkscape and
Sodipodi keep the author's file paths and names there, RDF and Dublin Core
the author), `<metadata>`, comments and processing instructions, scripts,
`<foreignObject>` (HTML inside a picture), event handlers (`on*`), and every
reference outside the file: an href that is not `#fragment` or a `data:`
image, a CSS `url()` or `@import` that points elsewhere (a picture that
calls home when opened). A prefix used but never declared (common in files
cut out of bigger documents) is declared for the parse, then removed with
its namespace.
"""

from __future__ import annotations

import re

from lxml import etree

from intake.server.sanitize import xmlsafe
from intake.server.sanitize.base import Cleaned, Refused, field_name, unique

SVG_NS = "http://www.w3.org/2000/svg"
KEPT_ATTRIBUTE_NS = ("", "http://www.w3.org/1999/xlink", "http://www.w3.org/XML/1998/namespace")
DROPPED = {"metadata", "script", "foreignObject"}
UNDECLARED = "urn:x-intake:undeclared:"
_PREFIX_USED = re.compile(rb"[<\s/]([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*")
_PREFIX_DECLARED = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(?!#|data:image/)[^)]*\)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import[^;]*;?", re.IGNORECASE)


def local_reference(value: str) -> bool:
    value = value.strip()
    return value.startswith("#") or value.lower().startswith("data:image/")


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


def _css(text: str) -> str:
    return _CSS_IMPORT.sub("", _CSS_URL.sub("none", text))


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


def _scrub_attributes(element, removed: list[str]) -> None:
    for attribute in list(element.attrib):
        attr_ns = etree.QName(attribute).namespace or ""
        key = xmlsafe.local(attribute)
        value = element.attrib[attribute]
        if attr_ns not in KEPT_ATTRIBUTE_NS:
            removed.append(f"{field_name(key, 24)} attribute (other namespace)")
        elif key.lower().startswith("on"):
            removed.append("event handler")
        elif key == "href" and not local_reference(value):
            removed.append("external reference")
        else:
            if "url(" in value.lower() or "@import" in value.lower():
                cleaned = _css(value)
                if cleaned != value:
                    element.attrib[attribute] = cleaned
                    removed.append("external reference")
            continue
        del element.attrib[attribute]
    if xmlsafe.local(element.tag) == "style" and element.text:
        cleaned = _css(element.text)
        if cleaned != element.text:
            element.text = cleaned
            removed.append("external reference")


def _walk(parent, removed: list[str]) -> None:
    for element in list(parent):
        why = _dropped(element)
        if why is not None:
            removed.append(why)
            parent.remove(element)  # its tail text goes too: whitespace, in SVG
            continue
        _scrub_attributes(element, removed)
        _walk(element, removed)


def clean(data: bytes) -> Cleaned:
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
    _scrub_attributes(root, removed)
    _walk(root, removed)
    # Namespace declarations no element uses any more go too.
    etree.cleanup_namespaces(root)
    # The root element alone: comments and instructions outside it are left behind.
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Cleaned(data, unique(removed),
                   tool=f"lxml {etree.__version__}", detected_type="image/svg+xml")
