"""Language detection measured on short Cyrillic texts: the same situations
told in Ukrainian, Russian and Belarusian (tests/workstation/data/short_texts.tsv),
where shared words make the languages hard to tell apart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from intake.workstation import language

DATA = Path(__file__).parent / "data" / "short_texts.tsv"


def texts() -> list[tuple[str, str]]:
    lines = DATA.read_text().splitlines()
    return [tuple(line.split("\t", 1)) for line in lines if line and not line.startswith("#")]


def test_short_texts_are_told_apart():
    right, seen, wrong = Counter(), Counter(), []
    for lang, text in texts():
        seen[lang] += 1
        got = language.detect(text)
        if got == lang:
            right[lang] += 1
        else:
            wrong.append((lang, got, text))
    print({lang: f"{right[lang]}/{seen[lang]}" for lang in seen}, wrong)
    assert seen["uk"] == seen["ru"] == seen["be"] == 50
    assert sum(right.values()) / sum(seen.values()) >= 0.95, wrong
    for lang in ("uk", "ru", "be"):
        assert right[lang] / seen[lang] >= 0.94, (lang, wrong)
    assert right["en"] == seen["en"]


def test_no_letters_is_undetermined():
    for text in ("", "12345 !!!", "☺ ☺", "2026-03-05"):
        assert language.detect(text) == language.UNDETERMINED
