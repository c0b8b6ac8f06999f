"""The browser checks of page_checks.py are not vacuous: each finds the fault
it is there for on a page made to have it, and passes the same page fixed."""

from __future__ import annotations

import pytest
from browsers import launched_chromium

from .page_checks import duplicate_ids, english_left, fits_width, keyboard_problems

STYLE = """<style>
:focus-visible { outline: 3px solid #c25e00; }
.bare:focus-visible { outline: none; }
</style>"""


@pytest.fixture(scope="module")
def page():
    with launched_chromium() as chromium:
        context = chromium.new_context(java_script_enabled=False,
                                       viewport={"width": 320, "height": 640})
        try:
            yield context.new_page()
        finally:
            context.close()


def _show(page, body: str) -> None:
    page.set_content(f"<!doctype html><html lang='uk'><head>{STYLE}</head>"
                     f"<body>{body}</body></html>")


def test_duplicate_ids_are_found(page):
    _show(page, "<p id='a'>x</p><p id='b'>y</p><p id='a'>z</p>")
    assert duplicate_ids(page) == ["a"]
    _show(page, "<p id='a'>x</p><p id='b'>y</p>")
    assert duplicate_ids(page) == []


def test_sideways_scrolling_is_found(page):
    _show(page, "<div style='width: 400px'>wide</div>")
    assert not fits_width(page)
    _show(page, "<div style='overflow-x: auto'><div style='width: 400px'>wide</div></div>")
    assert fits_width(page)


def test_a_control_without_a_focus_ring_is_found(page):
    _show(page, "<a href='#1'>one</a> <button class='bare'>two</button> <input id='x'>")
    problems = keyboard_problems(page)
    assert len(problems) == 1 and "no visible focus" in problems[0] and "bare" in problems[0]
    _show(page, "<a href='#1'>one</a> <button>two</button> <input id='x'>")
    assert keyboard_problems(page) == []


def test_a_control_tab_never_reaches_is_found(page):
    _show(page, "<a href='#1'>one</a> <span tabindex='0' style='display: none'>gone</span>"
                "<button tabindex='-1'>skipped</button> <a href='#2' tabindex='0'>two</a>")
    assert keyboard_problems(page) == []  # hidden and tabindex=-1 are not meant to be reached
    _show(page, "<a href='#1'>one</a> <a href='#2' tabindex='0'>two</a>"
                "<div inert><button>three</button></div>")
    problems = keyboard_problems(page)
    assert len(problems) == 1 and "never reached" in problems[0] and "three" in problems[0]


def test_english_left_on_a_ukrainian_page_is_found(page):
    _show(page, "<p>Черга</p><p>Download selected (or all new if none is selected)</p>")
    left = english_left(page, "uk")
    assert len(left) == 1 and left[0].startswith("Download selected"), left
    _show(page, "<p>Черга</p><p>Завантажити вибрані (або всі нові, якщо нічого не вибрано)</p>")
    assert english_left(page, "uk") == []
