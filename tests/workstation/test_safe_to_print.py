"""Safe to print, and the safe-name rule: whatever a witness (or a seized server)
sends, what reaches a terminal, a page or the disk shows hidden characters
instead of obeying them, and a file name is one plain name."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.workstation.safe_names import safe_output_name
from intake.workstation.safe_text import HIDDEN_CATEGORIES, for_line, for_page, for_terminal


@pytest.mark.parametrize(("raw", "terminal"), [
    ("photo.jpg", "photo.jpg"),
    ("Фото з мосту.jpg", "Фото з мосту.jpg"),
    ("\x1b[2J\x1b]0;owned\x07", "\\x1b[2J\\x1b]0;owned\\x07"),
    ("invoice\u202egpj.exe", "invoice\\u202egpj.exe"),
    ("two\nlines\r", "two\\x0alines\\x0d"),
    ("nul\x00", "nul\\x00"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("C:\\new", "C:\\\\new"),
    ("\u2028\U000e0041", "\\u2028\\U000e0041"),
])
def test_for_terminal(raw, terminal):
    assert for_terminal(raw) == terminal


def test_for_page_keeps_line_breaks_and_backslashes():
    assert for_page("a\r\nb\tc\\d\x1b[1m\u202ee") == "a\r\nb\tc\\d\\x1b[1m\\u202ee"


def test_for_line_keeps_a_row_to_one_line():
    assert for_line("first\r\nsecond\tthird\x1b[1m\u202e") == \
        "first ⏎ second third\\x1b[1m\\u202e"


@settings(max_examples=300, database=None, deadline=None)  # a busy machine is no failure
@given(st.text())
def test_nothing_hidden_survives(text):
    def hidden(shown: str) -> set[str]:
        return {c for c in shown if unicodedata.category(c) in HIDDEN_CATEGORIES}

    assert hidden(for_terminal(text)) == set()
    assert hidden(for_page(text)) <= set("\n\r\t")
    assert hidden(for_line(text)) == set() and "\n" not in for_line(text)
    # What a page shows is shown again unchanged: the index keeps text shown.
    assert for_page(for_page(text)) == for_page(text)
    assert for_line(for_page(text)) == for_line(text)


@settings(max_examples=300, database=None, deadline=None)  # a busy machine is no failure
@given(st.text(), st.sampled_from(["file-0123abcd", "testimony"]))
def test_a_safe_name_is_one_plain_name(name, fallback):
    safe = safe_output_name(name, fallback)
    assert safe and safe not in (".", "..") and "/" not in safe and "\0" not in safe
    assert not safe.startswith((".", "-", " ")) and not safe.endswith((".", " "))
    assert len(safe.encode()) <= 200
    assert not [c for c in safe if unicodedata.category(c) in HIDDEN_CATEGORIES]
    assert not set(safe) & set('<>:"\\|?*')


@pytest.mark.parametrize(("name", "safe"), [
    ("../../.bashrc", "_.._.bashrc"),
    ("/home/user/.vimrc", "_home_user_.vimrc"),
    ("..", "file-0123abcd"),
    ("-rf", "_rf"),
    ("what? why*.txt", "what_ why_.txt"),
    ("photo\u202egpj.exe", "photo_gpj.exe"),
    ("x" * 300 + ".jpeg", "x" * 195 + ".jpeg"),
])
def test_the_safe_name_rule(name, safe):
    assert safe_output_name(name, "file-0123abcd") == safe
