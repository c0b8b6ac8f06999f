"""XML from uploads, parsed safely.

First the rule defusedxml enforces: no document type declaration with an
internal subset, no entity declaration, no external reference; the text is
refused otherwise. The check runs in expat with only those handlers set, so
no Python runs per element (defusedxml's ElementTree builds a tree just to
throw it away, and took most of an office file's cleaning time). Only then
is the text parsed by lxml,
with entities, network and DTD loading off, because rewriting office files
needs lxml's faithful namespace prefixes (Word's mc:Ignorable names
prefixes, which ElementTree would rename).
"""

from __future__ import annotations

from xml.parsers import expat

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from lxml import etree

from intake.server.sanitize.base import Refused

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False, remove_comments=False)


def _forbid_doctype(name, sysid, pubid, has_internal_subset):
    # A bare DOCTYPE naming a DTD (old OpenOffice manifests) declares nothing
    # and is never fetched; an internal subset is where entities live.
    if has_internal_subset:
        raise DTDForbidden(name, sysid, pubid)


def _forbid_entity(name, *_):
    raise EntitiesForbidden(name, None, None, None, None, None)


def _forbid_reference(context, base, system_id, public_id):
    raise ExternalReferenceForbidden(context, base, system_id, public_id)


def check(data: bytes) -> None:
    """Refuses a DTD, an entity declaration or an external reference, and
    text that is not well-formed XML."""
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _forbid_doctype
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_entity
    parser.ExternalEntityRefHandler = _forbid_reference
    try:
        parser.Parse(data, True)
    except Exception as exc:  # noqa: BLE001 - DTDs, entities and plain bad XML alike
        raise Refused("unsafe or malformed XML") from exc


def parse(data: bytes) -> etree._ElementTree:
    check(data)
    return etree.ElementTree(etree.fromstring(data, _PARSER))


def serialize(tree: etree._ElementTree) -> bytes:
    info = tree.docinfo
    return etree.tostring(tree, xml_declaration=True, encoding=info.encoding or "UTF-8",
                          standalone=info.standalone)


def local(name: str) -> str:
    return name.rsplit("}", 1)[-1]
