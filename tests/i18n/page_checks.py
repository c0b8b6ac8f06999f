"""Checks a person's browser makes of any page, shared by the staff pages' and
the desk's browser tests: ids are unique, nothing scrolls sideways, every
control is reached with Tab and shows where the focus is, and no English
sentence is left on a page in another language."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

from .conftest import ROOT


def screenshots(tmp_path_factory, name: str) -> Path:
    """Where screenshots go: a temporary folder, unless INTAKE_TEST_ARTIFACTS
    names one to keep them in (never the checkout by default)."""
    kept = os.environ.get("INTAKE_TEST_ARTIFACTS")
    if not kept:
        return tmp_path_factory.mktemp(name)
    folder = Path(kept) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


DUPLICATE_IDS = """() => {
  const seen = {}, twice = [];
  for (const el of document.querySelectorAll('[id]')) {
    if (seen[el.id]) twice.push(el.id); seen[el.id] = true;
  }
  return twice;
}"""

# Marks every control a keyboard should reach (one per group of radio buttons,
# as Tab moves between groups) and returns how many there are.
MARK_CONTROLS = """() => {
  const sel = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]),' +
              'select:not([disabled]), textarea:not([disabled]), summary, [tabindex]';
  const groups = new Set();
  let n = 0;
  for (const el of document.querySelectorAll(sel)) {
    if (el.tabIndex < 0 || !el.getClientRects().length) continue;
    if (el.type === 'radio') { if (groups.has(el.name)) continue; groups.add(el.name); }
    el.setAttribute('data-control', String(n++));
  }
  return n;
}"""

FOCUSED = """(defaultRing) => {
  const el = document.activeElement, style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) ||
               (defaultRing && style.outlineStyle === 'auto');
  const key = el.type === 'radio'
    ? document.querySelector(`input[type=radio][name="${el.name}"][data-control]`)
    : el;
  return {control: key && key.getAttribute('data-control'), ring: ring,
          what: el.outerHTML.slice(0, 120)};
}"""


def duplicate_ids(page) -> list[str]:
    return page.evaluate(DUPLICATE_IDS)


def fits_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def keyboard_problems(page, default_ring: bool = False) -> list[str]:
    """Tabs through the page from its start: every control must be reached,
    each with a visible focus ring (3 px outline in the stylesheets; the
    browser's own ring counts only on a page that gets no stylesheet)."""
    total = page.evaluate(MARK_CONTROLS)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached, problems = set(), []
    # A date field takes a Tab for each of its parts: room for those too.
    for _ in range(total * 3 + 3):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED, default_ring)
        if focused["control"] is None:
            if focused["what"].startswith("<body"):
                break  # past the last control
            problems.append(f"focus went to a non-control: {focused['what']}")
            continue
        if not focused["ring"]:
            problems.append(f"no visible focus: {focused['what']}")
        reached.add(int(focused["control"]))
    missed = sorted(set(range(total)) - reached)
    if missed:
        shown = page.evaluate("""(missed) => missed.map(n =>
            document.querySelector(`[data-control="${n}"]`).outerHTML.slice(0, 120))""", missed)
        problems += [f"never reached by Tab: {what}" for what in shown]
    return problems


PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")


@cache
def english_sentences(lang: str) -> tuple[str, ...]:
    """Pieces of every English source string that the catalog of `lang`
    translates differently: pieces of two words or more, between placeholders."""
    with (ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    pieces = set()
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if english in strings:
                continue
            for piece in PLACEHOLDER.split(english):
                piece = piece.strip(" .,:;()")
                if len(piece) >= 12 and " " in piece and piece not in "".join(strings):
                    pieces.add(piece)
    return tuple(sorted(pieces))


def english_left(page, lang: str) -> list[str]:
    """English sentences shown on a page that should be in `lang`."""
    if lang == "en":
        return []
    text = page.evaluate("document.title + '\\n' + document.body.innerText")
    return [p for p in english_sentences(lang) if p in text]
