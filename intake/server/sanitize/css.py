"""CSS read as a browser reads it, to tell what a style could fetch.

A browser decodes escapes before it knows a word (CSS Syntax 3, "consume an
escaped code point"): `u\\72l(`, `\\75rl(` and `@im\\70ort` are url() and
@import to it, and so is an escape inside the address. Patterns matched on
the text as written miss them. So the words are looked for in the decoded
text too, which is only read, never written back: decoding changes what a
style means (`"a\\"b"`).
"""

from __future__ import annotations

import re

# CSS Syntax 3, 3.3: newlines are normalised before anything is read.
_NEWLINES = re.compile(r"\r\n|[\r\f]")
# A backslash and 1-6 hex digits with one optional whitespace after them, or
# any other character; before a newline it continues a string (taken as
# nothing here, which joins words and only finds more), at the end U+FFFD.
_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})[ \t\n]?|(\n)|(.)|$)", re.DOTALL)
# What fetches besides url(): src() is its newer twin, image() and image-set()
# (-webkit- too) take a bare string, @import a string as well. Matched
# anywhere, inside a longer word or a string too: finding more is safe.
_FETCHING = re.compile(r"@import|(?:src|image|image-set)\(", re.IGNORECASE)
_URL = re.compile(r"url\(", re.IGNORECASE)
# A url() written plainly: no escape, and no quote, parenthesis or space in
# its target, so the text as written says all a browser will read in it.
# Every run of spaces is taken whole (*+): with an empty target between two
# \s*, a url( and a long run of spaces and no ")" would be tried at every
# split of the run, a time the square of its length.
_PLAIN_URL = re.compile(r"""url\(\s*+(["']?)([^\s"'()\\]*+)\1\s*+\)""", re.IGNORECASE)


def _code_point(found: re.Match) -> str:
    digits, newline, other = found.groups()
    if digits is not None:
        value = int(digits, 16)
        return "\ufffd" if value == 0 or 0xD800 <= value <= 0xDFFF or value > 0x10FFFF \
            else chr(value)
    if newline is not None:
        return ""
    return other if other is not None else "\ufffd"


def unescape(text: str) -> str:
    """The text with its escapes decoded, as a browser reads each word."""
    return _ESCAPE.sub(_code_point, _NEWLINES.sub("\n", text).replace("\0", "\ufffd"))


def plain_urls(text: str) -> list[str] | None:
    """The targets of a style's url()s when each is written plainly and
    nothing else in it can fetch; None when a browser could fetch what the
    text as written does not show: a url() or @import spelled with escapes, a
    url() whose target holds an escape, a quote or a space, image-set("..."),
    image("..."), src(...), or @import at all."""
    decoded = unescape(text)
    if _FETCHING.search(decoded):
        return None
    plain = [found.group(2) for found in _PLAIN_URL.finditer(text)]
    # A plain url() decodes to itself: any other url( the decoding shows is hidden.
    if len(_URL.findall(decoded)) != len(plain):
        return None
    return plain


# A url() and an @import whose target the text as written shows whole: a
# string without escape or newline, or a bare target without escape, quote,
# parenthesis or space (a space ends a bare one; inside quotes it is a name's).
# Runs are taken whole (*+), as in _PLAIN_URL.
_STRING = r"""(?:"([^"\\\n]*+)"|'([^'\\\n]*+)')"""
WRITTEN_URL = re.compile(rf"""url\(\s*+(?:{_STRING}|([^\s"'()\\]*+))\s*+\)""", re.IGNORECASE)
WRITTEN_IMPORT = re.compile(rf"@import\s*+(?:{_STRING}|{WRITTEN_URL.pattern})", re.IGNORECASE)
_IMPORT = re.compile(r"@import", re.IGNORECASE)
# What fetches a string's address besides url() and @import.
_FETCHING_STRING = re.compile(r"(?:src|image|image-set)\(", re.IGNORECASE)


def target(found: re.Match) -> str:
    """The address a WRITTEN_URL or WRITTEN_IMPORT match names."""
    return next(g for g in found.groups() if g is not None)


def references(text: str) -> list[str] | None:
    """Every address a style could fetch, its url()s' and @imports' targets,
    when the text as written shows each whole; None when a browser could
    fetch what it does not show: a url() or @import spelled with escapes, a
    target holding an escape, image-set("..."), image("..."), src(...)."""
    decoded = unescape(text)
    if _FETCHING_STRING.search(decoded):
        return None
    urls = [target(found) for found in WRITTEN_URL.finditer(text)]
    imports = [target(found) for found in WRITTEN_IMPORT.finditer(text)]
    # Decoding only adds words: a url( or @import it shows beyond the ones
    # written plainly is hidden.
    if len(_URL.findall(decoded)) != len(urls) or len(_IMPORT.findall(decoded)) != len(imports):
        return None
    return urls + imports


# Where a browser could take a data: URL from: the start of a url() or of a
# string (image-set("data:..."), @import "data:..."), after the C0 controls
# and spaces a URL parser strips. Counted generously: a string that merely
# says "data:" counts too; a selector such as `.metadata:hover` does not.
_DATA_URL = re.compile(r"""[("'][\x00-\x20]*data:""", re.IGNORECASE)
# A URL parser drops tabs and newlines anywhere in an address ("da\tta:").
_URL_DROPPED = re.compile(r"[\t\n\r]")
_URL_STRIPPED = "".join(map(chr, range(0x21)))


def url_form(value: str) -> str:
    """An address as a URL parser reads it: tabs and newlines dropped, C0
    controls and spaces at either end stripped."""
    return _URL_DROPPED.sub("", value).strip(_URL_STRIPPED)


def data_urls(text: str) -> int:
    """How many data: URLs a browser could find in a style once its escapes
    are decoded, however they are written: `u\\72l(data:...)`,
    `url(d\\61ta:...)`, `image-set("data:..." 1x)` count as `url(data:...)` does."""
    return len(_DATA_URL.findall(_URL_DROPPED.sub("", unescape(text))))


# The statements a style sheet may start with, in their order (CSS Syntax 3,
# CSS Namespaces 3): @charset, @imports, then @namespaces, all written
# plainly (no escape, no comment), each ended by its semicolon. A namespace
# is a name, never fetched, whether written as a string or as url(); the
# others are what they are anywhere.
_IDENT = r"[A-Za-z_-][A-Za-z0-9_-]*+"
_LEADING = re.compile(
    rf"""(?P<space>\s++)|(?P<charset>@charset "[^"\\\n]*+";)"""
    rf"""|(?P<import>{WRITTEN_IMPORT.pattern}[^;{{}}/\\]*+;)"""
    rf"""|(?P<namespace>@namespace\s++(?:{_IDENT}\s*+)?(?:{_STRING}|{WRITTEN_URL.pattern})\s*+;)""",
    re.IGNORECASE)


def namespaces_apart(text: str) -> list[tuple[bool, str]]:
    """The style cut into pieces, each with whether it is an @namespace rule
    at the sheet's head, which names and fetches nothing (a url() in it
    included); the other pieces are read as any style is. Anything that is
    not plainly one of the leading statements ends the head."""
    pieces: list[tuple[bool, str]] = []
    pos = 0
    while (found := _LEADING.match(text, pos)) is not None and found.end() > pos:
        pieces.append((found.lastgroup == "namespace", found.group(0)))
        pos = found.end()
    pieces.append((False, text[pos:]))
    return pieces

