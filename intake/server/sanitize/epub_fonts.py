"""An EPUB's obfuscated fonts, and what else `META-INF/encryption.xml` may say.

A book may obfuscate the fonts it embeds, so that they are not lifted whole
from it: IDPF's algorithm XORs a font's first 1040 bytes with the SHA-1 of
the book's unique identifier, Adobe's its first 1024 with the identifier's
UUID. The cleaner replaces that identifier (it may name a person, and it
ties the book to its other copies), after which such a font would no longer
read: it is de-obfuscated instead, and `encryption.xml` goes. Any other
entry there is encryption the cleaner cannot undo (a shop's DRM), or names
data outside the book: such a book is refused.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from urllib.parse import unquote

from intake.server.sanitize import xmlsafe
from intake.server.sanitize.base import Refused

ENCRYPTION = "META-INF/encryption.xml"
IDPF = "http://www.idpf.org/2008/embedding"
ADOBE = "http://ns.adobe.com/pdf/enc#RC"
XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
OPF = "{http://www.idpf.org/2007/opf}"
DC_IDENTIFIER = "{http://purl.org/dc/elements/1.1/}identifier"
# What IDPF's algorithm takes out of the identifier before hashing it.
_SPACE = re.compile(r"[ \t\r\n]")


def obfuscated_fonts(parts: dict[str, bytes]) -> dict[str, str]:
    """The book's parts that `encryption.xml` says are obfuscated fonts, with
    each one's algorithm; Refused for any other entry."""
    body = parts.get(ENCRYPTION)
    if body is None or not body.strip():
        return {}
    fonts: dict[str, str] = {}
    for data in xmlsafe.parse(body).getroot().iter(f"{XMLENC}EncryptedData"):
        method = data.find(f"{XMLENC}EncryptionMethod")
        reference = data.find(f"{XMLENC}CipherData/{XMLENC}CipherReference")
        algorithm = method.get("Algorithm", "") if method is not None else ""
        uri = reference.get("URI", "") if reference is not None else ""
        # Paths in encryption.xml are the container's, from its root.
        name = posixpath.normpath(unquote(uri)) if uri else ""
        if algorithm not in (IDPF, ADOBE):
            raise Refused("the book is encrypted (DRM): its text cannot be read to be cleaned")
        if name not in parts:
            raise Refused("the book's encryption.xml names a font that is not in it")
        fonts[name] = algorithm
    return fonts


def unique_identifier(parts: dict[str, bytes]) -> str | None:
    """The book's unique identifier, as its package document names it."""
    container = parts.get("META-INF/container.xml")
    if container is None:
        return None
    rootfile = xmlsafe.parse(container).getroot().find(f".//{CONTAINER}rootfile")
    package = parts.get(rootfile.get("full-path", "")) if rootfile is not None else None
    if package is None:
        return None
    root = xmlsafe.parse(package).getroot()
    wanted = root.get("unique-identifier")
    for identifier in root.iter(DC_IDENTIFIER):
        if identifier.get("id") == wanted:
            return identifier.text or ""
    return None


def deobfuscated(font: bytes, algorithm: str, identifier: str) -> bytes:
    """The font as its maker embedded it."""
    if algorithm == IDPF:
        key = hashlib.sha1(_SPACE.sub("", identifier).encode(), usedforsecurity=False).digest()
        length = 1040
    else:
        uuid = identifier.strip().lower().removeprefix("urn:uuid:").replace("-", "")
        try:
            key = bytes.fromhex(uuid)
        except ValueError as exc:
            raise Refused("an obfuscated font's key is not a UUID") from exc
        if len(key) != 16:
            raise Refused("an obfuscated font's key is not a UUID")
        length = 1024
    head = bytes(b ^ key[i % len(key)] for i, b in enumerate(font[:length]))
    return head + font[length:]
