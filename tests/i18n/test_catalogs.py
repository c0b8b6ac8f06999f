"""The catalogs: every message translated in every language, with the right plural forms."""

from __future__ import annotations

import copy
import io

import pytest
from babel.messages.pofile import read_po
from flask import render_template_string, session

from .conftest import LANGS

SLAVIC_PLURALS = ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
                  "(n%100<10 || n%100>=20) ? 1 : 2);")
PLURAL_FORMS = {"uk": SLAVIC_PLURALS, "ru": SLAVIC_PLURALS, "be": SLAVIC_PLURALS,
                "en": "nplurals=2; plural=(n != 1);"}


def _catalog(translations, lang):
    with translations.po_path(lang).open("rb") as f:
        return read_po(f, locale=lang)


def test_the_catalogs_are_complete_and_current(translations):
    """Fails on a message missing from messages.pot or lacking a translation in any
    language, a fuzzy or malformed entry, or a catalog that does not compile."""
    assert translations.problems() == []


def test_the_installed_catalogs_say_what_the_po_files_say(translations):
    """The .mo files are compiled at install time, not committed: each says,
    message by message, what its .po says (whatever Babel compiled it)."""
    from babel.messages.mofile import read_mo

    for lang in LANGS:
        with translations.mo_path(lang).open("rb") as f:
            installed = _messages(read_mo(f))
        assert installed == _messages(_catalog(translations, lang)), lang


def _messages(catalog) -> dict:
    def plain(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    return {plain(m.id): plain(m.string) for m in catalog if m.id}


def test_every_language_has_a_catalog(translations):
    assert set(translations.LOCALES) == set(LANGS)
    template = _catalog(translations, "en")
    assert len([m for m in template if m.id]) > 50


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_header(translations, lang):
    """The same rule as written by any Babel version: compared by the form it
    picks for each number, not by its spelling."""
    catalog = _catalog(translations, lang)
    written = PLURAL_FORMS[lang]
    assert catalog.num_plurals == int(written.split("nplurals=")[1].split(";")[0])
    rule = written.split("plural=")[1].rstrip(";")
    assert translations.same_plural_rule(catalog.plural_expr, rule)
    # Ukrainian: 1 файл, 2 файли, 5 файлів, 11 файлів, 21 файл, 22 файли, 111 файлів
    if lang in ("uk", "ru", "be"):
        import gettext

        choose = gettext.c2py(catalog.plural_expr)
        assert [choose(n) for n in (1, 2, 5, 11, 12, 21, 22, 25, 111, 112, 121)] == \
            [0, 1, 2, 2, 2, 0, 1, 2, 2, 2, 0]


def test_a_plural_rule_that_chooses_otherwise_is_caught(translations):
    english = "(n != 1)"
    assert translations.same_plural_rule(english, "n != 1")
    assert not translations.same_plural_rule(english, "(n > 1)")
    slavic_old = PLURAL_FORMS["uk"].split("plural=")[1].rstrip(";")
    slavic_new = ("n % 10 == 1 && n % 100 != 11 ? 0 : n % 10 >= 2 && n % 10 <= 4 && "
                  "(n % 100 < 12 || n % 100 > 14) ? 1 : 2")
    assert translations.same_plural_rule(slavic_old, slavic_new)  # Babel 2.18 vs 2.19
    assert not translations.same_plural_rule(slavic_old, slavic_new.replace("<= 4", "<= 3"))


@pytest.mark.parametrize("lang", ["uk", "ru", "be"])
def test_the_check_finds_a_missing_translation(translations, lang):
    catalog = _catalog(translations, lang)
    assert translations.message_problems(catalog, lang) == []
    broken = copy.deepcopy(catalog)
    singular = next(m for m in broken if m.id and not m.pluralizable)
    singular.string = ""
    plural = next(m for m in broken if m.pluralizable)
    plural.string = (*plural.string[:-1], "")
    found = translations.message_problems(broken, lang)
    assert any("not translated" in p and repr(singular.id) in p for p in found)
    assert any("not translated" in p and repr(plural.id[0]) in p for p in found)


def test_the_check_finds_wrong_placeholders_and_fuzzy_entries(translations):
    catalog = copy.deepcopy(_catalog(translations, "uk"))
    formatted = next(m for m in catalog if m.id and "python-format" in m.flags
                     and not m.pluralizable)
    formatted.string = "без заповнювача"
    fuzzy = next(m for m in catalog if m.id and m is not formatted)
    fuzzy.flags.add("fuzzy")
    found = translations.message_problems(catalog, "uk")
    assert any("placeholders" in p for p in found)
    assert any("fuzzy" in p for p in found)


def test_the_check_finds_a_wrong_plural_header(translations):
    with translations.po_path("uk").open("rb") as f:
        text = f.read().replace(b"nplurals=3", b"nplurals=2")

    catalog = read_po(io.BytesIO(text), locale="uk")
    assert any("Plural-Forms" in p for p in translations.message_problems(catalog, "uk"))


FILES = {
    "uk": {1: "1 файл", 2: "2 файли", 4: "4 файли", 5: "5 файлів", 11: "11 файлів",
           12: "12 файлів", 21: "21 файл", 22: "22 файли", 25: "25 файлів", 111: "111 файлів"},
    "ru": {1: "1 файл", 2: "2 файла", 4: "4 файла", 5: "5 файлов", 11: "11 файлов",
           12: "12 файлов", 21: "21 файл", 22: "22 файла", 25: "25 файлов", 111: "111 файлов"},
    "be": {1: "1 файл", 2: "2 файлы", 4: "4 файлы", 5: "5 файлаў", 11: "11 файлаў",
           12: "12 файлаў", 21: "21 файл", 22: "22 файлы", 25: "25 файлаў", 111: "111 файлаў"},
    "en": {1: "1 file", 2: "2 files", 4: "4 files", 5: "5 files", 11: "11 files",
           12: "12 files", 21: "21 files", 22: "22 files", 25: "25 files", 111: "111 files"},
}


@pytest.mark.parametrize("lang", LANGS)
def test_counts_take_the_right_plural_form_when_rendered(app, lang):
    with app.test_request_context("/"):
        session["lang"] = lang
        for n, expected in FILES[lang].items():
            assert render_template_string("{{ files_count(n) }}", n=n) == expected
