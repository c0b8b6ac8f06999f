"""XML from uploads, parsed safely.

defusedxml first rejects entity expansion, external entities and DTDs; only
then is the text parsed again by lxml (without entities, network or DTD
loading), because rewriting office files needs lxml's faithful namespace
prefixes (Word's mc:Ignorable names prefixes, which ElementTree would rename).
"""

from __future__ import annotations

import defusedxml.ElementTree as safe_et
from lxml import etree

from intake.sanitize.base import Refused

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False, remove_comments=False)


def parse(data: bytes) -> etree._ElementTree:
    try:
        safe_et.fromstring(data, forbid_dtd=True)
    except Exception as exc:  # noqa: BLE001 - DTDs, entities and plain bad XML alike
        raise Refused("unsafe or malformed XML") from exc
    return etree.ElementTree(etree.fromstring(data, _PARSER))


def serialize(tree: etree._ElementTree) -> bytes:
    info = tree.docinfo
    return etree.tostring(tree, xml_declaration=True, encoding=info.encoding or "UTF-8",
                          standalone=info.standalone)


def local(name: str) -> str:
    return name.rsplit("}", 1)[-1]
