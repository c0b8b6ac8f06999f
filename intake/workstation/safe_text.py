"""Safe to print: names and text from a submission, shown instead of obeyed.

A witness's file name or testimony (or a hostile bundle's member name) may
carry terminal escape sequences, bidi overrides that reorder what is shown,
zero-width characters or line breaks that forge a second line of output.
Every such character is written out as a visible escape instead:

    ESC          -> \\x1b        (control characters, \\xNN)
    U+202E       -> \\u202e      (format, separator, private-use, unassigned)

`for_terminal` makes one line of everything (line breaks too) and doubles a
backslash, so that an escape cannot be faked by typing one; `for_page` keeps
line breaks, tabs and backslashes, which a page shows as they are; `for_line`
is `for_page` on one line, for a row of the desk's list (a line break shows
as " ⏎ "). The desk applies `for_page` to every value a template prints and
`for_line` to the rows' snippets (desk.py), the search index keeps its text
as `for_page` shows it (search.py), and the commands apply `for_terminal` to
every name they print (cli.py): this module is the one place the rule lives
(docs/workstation.md, "Safe to print"). `for_page` and `for_line` change
nothing they have already shown, so text kept shown (the index) is shown
again unchanged.
"""

from __future__ import annotations

import unicodedata

# Unicode general categories that are never shown as themselves: controls (Cc),
# format characters such as bidi overrides and zero-width marks (Cf), line and
# paragraph separators (Zl, Zp), surrogates (Cs), private use (Co), unassigned (Cn).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
PAGE_KEEPS = frozenset("\n\r\t")
WRITTEN_KEEPS = frozenset("\n\t")  # a textarea's line breaks are made \n first
LINE_BREAK = " \u23ce "  # " ⏎ "


def has_controls(text: str) -> bool:
    """Whether written text (a note, a reply) holds a control character other
    than a line break or a tab."""
    return any(unicodedata.category(c) == "Cc" and c not in WRITTEN_KEEPS for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def is_hidden(char: str) -> bool:
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def _visible(text: str, keep: frozenset[str], backslash: str) -> str:
    if text.isprintable() and (backslash == "\\" or "\\" not in text):
        return text  # the common case, at C speed
    out = []
    for char in text:
        if char == "\\":
            out.append(backslash)
        elif char in keep or not is_hidden(char):
            out.append(char)
        else:
            out.append(_escape(char))
    return "".join(out)


def for_terminal(text: object) -> str:
    """One line, every hidden character escaped."""
    return _visible(str(text), frozenset(), "\\\\")


def for_page(text: object) -> str:
    """Line breaks and tabs kept, every other hidden character escaped."""
    return _visible(str(text), PAGE_KEEPS, "\\")


def for_line(text: object) -> str:
    """`for_page` on one line: a line break shows as " ⏎ ", a tab or a carriage
    return as a space."""
    shown = for_page(text)
    if shown.isprintable():
        return shown
    return shown.replace("\r\n", "\n").replace("\n", LINE_BREAK).translate(
        {ord("\r"): " ", ord("\t"): " "})
