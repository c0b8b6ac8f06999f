"""SVG: metadata elements, comments, and editor attributes (Inkscape and
Sodipodi store the author's file paths and names there) are removed."""

from __future__ import annotations

from lxml import etree

from intake.server.sanitize import xmlsafe
from intake.server.sanitize.base import Cleaned, Refused, unique

EDITORS = ("inkscape.org", "sodipodi", "ns.adobe.com", "purl.org/dc",
           "www.w3.org/1999/02/22-rdf-syntax-ns")


def clean(data: bytes) -> Cleaned:
    tree = xmlsafe.parse(data)
    root = tree.getroot()
    if xmlsafe.local(root.tag) != "svg":
        raise Refused("unsupported type (XML that is not SVG)")
    removed: list[str] = [f"top-level {type(node).__name__.strip('_').lower()}"
                          for node in (*root.itersiblings(preceding=True), *root.itersiblings())]
    for element in list(root.iter()):
        if element is root:
            pass
        elif not isinstance(element.tag, str):
            removed.append("comment" if isinstance(element, etree._Comment)
                           else "processing instruction")
            element.getparent().remove(element)
            continue
        elif xmlsafe.local(element.tag) == "metadata" or any(
                e in element.tag for e in EDITORS):
            removed.append(xmlsafe.local(element.tag))
            element.getparent().remove(element)
            continue
        for attribute in list(element.attrib):
            if any(e in attribute for e in EDITORS):
                removed.append(f"{xmlsafe.local(attribute)} attribute")
                del element.attrib[attribute]
    # The root element alone: comments and instructions outside it are left behind.
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Cleaned(data, unique(removed),
                   tool=f"lxml {etree.__version__}", detected_type="image/svg+xml")
