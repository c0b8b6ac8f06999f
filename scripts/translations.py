"""The message catalogs: extract, update, compile, check.

    python scripts/translations.py extract   # intake/ and templates/ -> translations/messages.pot
    python scripts/translations.py update    # messages.pot -> each language's messages.po
    python scripts/translations.py compile   # each messages.po -> messages.mo (not committed)
    python scripts/translations.py check     # fails on anything missing, stale or malformed

The compiled catalogs are made from the .po files when the package is built
or installed (setup.py); `compile` redoes it in a checkout after an edit.
Nothing here compares bytes that a Babel version decides: plural rules are
compared by the form they choose for each number, catalogs by their messages.

English is the source language: `update` fills the English catalog from the
source text itself, so only Ukrainian, Russian and Belarusian need a person.
See docs/translating.md.
"""

from __future__ import annotations

import argparse
import datetime
import gettext
import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po, write_po

from intake import __version__

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
MAPPING = ROOT / "babel.cfg"
SEARCHED = ("intake", "templates")  # top-level folders holding user-facing text
LOCALES = ("uk", "ru", "be", "en")
SOURCE_LOCALE = "en"
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "N_": None,  # marked only: intake.workstation.refusals
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
}
PROJECT = "Intake"
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]")


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def mo_path(locale: str) -> Path:
    return po_path(locale).with_suffix(".mo")


def _only_searched(path: str) -> bool:
    rel = Path(path).resolve().relative_to(ROOT).parts
    if rel and rel[-1].startswith((".", "_")):  # caches and hidden folders
        return False
    return not rel or rel[0] in SEARCHED


def extract() -> Catalog:
    """Every message marked for translation in intake/ and templates/."""
    with MAPPING.open() as f:
        method_map, options_map = parse_mapping_cfg(f, str(MAPPING))
    catalog = Catalog(project=PROJECT, version=__version__, msgid_bugs_address="", fuzzy=False,
                      charset="utf-8",
                      header_comment=f"# Messages to translate in {PROJECT}.\n"
                                     "# Made by `scripts/translations.py extract`: do not edit.\n#")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True,
            directory_filter=_only_searched):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    return catalog


def _key(message: Message) -> tuple:
    return (message.context, message.id if isinstance(message.id, tuple) else (message.id,))


def _ids(catalog: Catalog) -> set[tuple]:
    return {_key(m) for m in catalog if m.id}


def _write_po(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # No line numbers: a moved line should not churn every catalog.
    write_po(buf, catalog, width=100, sort_output=True, ignore_obsolete=True,
             include_lineno=False)
    path.write_bytes(buf.getvalue())


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def write_template() -> int:
    catalog = extract()
    if TEMPLATE.exists() and _ids(_read(TEMPLATE)) == _ids(catalog):
        # Same messages: keep the file's date so nothing changes.
        catalog.creation_date = _read(TEMPLATE).creation_date
    _write_po(TEMPLATE, catalog)
    return len(_ids(catalog))


def _fill_from_source(catalog: Catalog) -> None:
    for message in catalog:
        if not message.id:
            continue
        message.flags.discard("fuzzy")
        message.string = message.id  # (singular, plural) for a plural message


def _new_catalog(locale: str) -> Catalog:
    header = (f"# {Locale.parse(locale).english_name} messages for {PROJECT}.\n"
              f"# Distributed under the same license as {PROJECT} (AGPL-3.0-or-later).\n"
              "# How to translate: docs/translating.md\n#")
    return Catalog(locale=locale, project=PROJECT, version=__version__, header_comment=header,
                   msgid_bugs_address="", last_translator=f"{PROJECT} translators",
                   language_team=f"{PROJECT} translators", fuzzy=False, charset="utf-8",
                   revision_date=datetime.datetime.now(datetime.UTC))


def update() -> None:
    template = _read(TEMPLATE)
    for locale in LOCALES:
        path = po_path(locale)
        catalog = _read(path, locale) if path.exists() else _new_catalog(locale)
        # A near match is offered as a fuzzy hint; `check` counts it as missing.
        catalog.update(template, update_creation_date=True)
        catalog.fuzzy = False
        if locale == SOURCE_LOCALE:
            _fill_from_source(catalog)
        _write_po(path, catalog)


def compiled(locale: str) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, _read(po_path(locale), locale), use_fuzzy=False)
    return buf.getvalue()


def compile_all() -> None:
    for locale in LOCALES:
        mo_path(locale).write_bytes(compiled(locale))


def _forms(message: Message) -> list[str]:
    if isinstance(message.string, (tuple, list)):
        return list(message.string)
    return [message.string or ""]


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def same_plural_rule(a: str, b: str, numbers: Iterable[int] = range(10_000)) -> bool:
    """Two C plural expressions choose the same form for every number (the rule
    is periodic in 100 at most for the languages here; 10,000 leaves margin)."""
    first, second = gettext.c2py(a), gettext.c2py(b)
    return all(first(n) == second(n) for n in numbers)


def message_problems(catalog: Catalog, locale: str) -> list[str]:
    """What is wrong with one language's catalog, one line per problem."""
    out = []
    expected = get_plural(locale)
    if catalog.num_plurals != expected.num_plurals or \
            not same_plural_rule(catalog.plural_expr, expected.plural_expr):
        out.append(f"{locale}: Plural-Forms header is {catalog.plural_forms!r}, "
                   f"which does not choose the forms of {expected.plural_forms!r}")
    for message in catalog:
        if not message.id:
            continue
        label = f"{locale}: {message.id if isinstance(message.id, str) else message.id[0]!r}"
        forms = _forms(message)
        if message.fuzzy:
            out.append(f"{label}: marked fuzzy (check the translation, then remove the flag)")
        if message.pluralizable and len(forms) != expected.num_plurals:
            out.append(f"{label}: {len(forms)} plural forms, expected {expected.num_plurals}")
        if not all(f.strip() for f in forms):
            out.append(f"{label}: not translated")
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for form in forms:
            if _placeholders(form) != wanted:
                out.append(f"{label}: placeholders {sorted(_placeholders(form))} "
                           f"!= {sorted(wanted)} in {form!r}")
    for message, errors in catalog.check():
        out.extend(f"{locale}: {message.id!r}: {e}" for e in errors)
    return out


def problems(locales: Iterable[str] = LOCALES) -> list[str]:
    """Everything `check` reports: a stale template, missing catalogs, bad entries."""
    out = []
    if not TEMPLATE.exists():
        return [f"{TEMPLATE.relative_to(ROOT)} is missing: run `extract`"]
    template_ids = _ids(_read(TEMPLATE))
    source_ids = _ids(extract())
    for key in sorted(source_ids - template_ids, key=str):
        out.append(f"messages.pot: lacks {key[1][0]!r} (run `extract` then `update`)")
    for key in sorted(template_ids - source_ids, key=str):
        out.append(f"messages.pot: still has {key[1][0]!r}, gone from the code (run `extract`)")
    for locale in locales:
        if not po_path(locale).exists():
            out.append(f"{locale}: {po_path(locale).relative_to(ROOT)} is missing")
            continue
        catalog = _read(po_path(locale), locale)
        ids = _ids(catalog)
        for key in sorted(source_ids - ids, key=str):
            out.append(f"{locale}: lacks {key[1][0]!r} (run `update`, then translate)")
        out.extend(message_problems(catalog, locale))
        try:
            compiled(locale)
        except Exception as exc:  # noqa: BLE001 - whatever Babel says, the catalog is broken
            out.append(f"{locale}: messages.po does not compile ({exc})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("extract", "update", "compile", "check"))
    args = parser.parse_args(argv)
    if args.command == "extract":
        print(f"{write_template()} messages in {TEMPLATE.relative_to(ROOT)}")
    elif args.command == "update":
        update()
        print("updated: " + ", ".join(LOCALES))
    elif args.command == "compile":
        compile_all()
        print("compiled: " + ", ".join(LOCALES))
    else:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        if found:
            print(f"{len(found)} problem(s) in the translations", file=sys.stderr)
            return 1
        print("translations complete: " + ", ".join(LOCALES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
