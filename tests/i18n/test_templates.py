"""No user-facing words in a template outside gettext."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment

from .conftest import ROOT

TEMPLATES = ROOT / "templates"
# Attributes whose values a person reads or hears.
SPOKEN_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description",
                     "aria-roledescription", "aria-placeholder", "label", "abbr"}
# Text that is the same in every language.
ALLOWED = {"Intake"}
# Each {{ }} / {% %} becomes a space: harmless in text and inside a tag alike.
MARK = " "


def _environment() -> Environment:
    return Environment(extensions=["jinja2.ext.i18n"])


def html_without_jinja(source: str) -> str:
    """The template's literal text; each expression or tag becomes MARK.

    Text inside {% trans %}...{% endtrans %} is translated, so it becomes MARK too.
    """
    out, in_trans, after_block_begin = [], 0, False
    for _lineno, kind, value in _environment().lex(source):
        if kind == "whitespace":
            continue
        if kind == "data":
            out.append(MARK if in_trans else value)
        elif kind in ("variable_begin", "block_begin"):
            out.append(MARK)
            after_block_begin = kind == "block_begin"
            continue
        elif kind == "name" and after_block_begin:
            if value == "trans":
                in_trans += 1
            elif value == "endtrans":
                in_trans -= 1
        after_block_begin = False
    return "".join(out)


class _Words(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.skipping = 0

    def _check(self, where: str, text: str) -> None:
        words = text.strip()
        if any(c.isalpha() for c in words) and words not in ALLOWED:
            self.found.append(f"{where}: {words!r}")

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skipping += 1
        for name, value in attrs:
            # A value is shown only on an input that is a button.
            shown_value = name == "value" and tag == "input" and \
                dict(attrs).get("type") in ("submit", "button", "reset")
            if name in SPOKEN_ATTRIBUTES or shown_value:
                self._check(f"<{tag} {name}>", value or "")

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self._check("text", data)


def untranslated(source: str) -> list[str]:
    parser = _Words()
    parser.feed(html_without_jinja(source))
    parser.close()
    return parser.found


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_check():
    names = {p.relative_to(TEMPLATES).as_posix() for p in _templates()}
    assert {"base.html", "submit.html", "receipt.html", "error.html"} <= names


@pytest.mark.parametrize("path", _templates(), ids=lambda p: p.relative_to(TEMPLATES).as_posix())
def test_every_word_in_a_template_goes_through_gettext(path):
    assert untranslated(path.read_text()) == []


@pytest.mark.parametrize(("source", "bad"), [
    ("<p>Hello</p>", True),
    ("<p>{{ _('Hello') }}</p>", False),
    ("<p>{{ name }}: {{ _('sent') }}</p>", False),
    ("<p>{{ name }} was sent</p>", True),
    ('<input placeholder="Your name">', True),
    ("<input placeholder=\"{{ _('Your name') }}\">", False),
    ('<img alt="A map">', True),
    ('<input type="submit" value="Send">', True),
    ('<input type="checkbox" name="confirm" value="yes">', False),
    ('<input type="hidden" name="x" value="token">', False),
    ("{% trans %}Hello {{ who }}{% endtrans %}", False),
    ("{% if x %}<b>Sorry</b>{% endif %}", True),
    ("<style>body { color: red }</style><p> &mdash; 1, 2. </p>", False),
    ("{# a comment in English #}<p>:</p>", False),
    ("<p>{{ _('One') }} Two</p>", True),
])
def test_the_check_finds_words_outside_gettext(source, bad):
    assert bool(untranslated(source)) == bad
