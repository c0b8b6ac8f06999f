"""Which language a testimony is in: Ukrainian, Russian, Belarusian or English.

lingua (lingua-language-detector) is made for short texts: it scores the
letter n-grams of each candidate language and knows the letters only one of
them uses (ї є ґ, ў, ъ ы э). Restricted to the four languages the service
speaks, it named 155 of 158 short texts correctly (98 %), against 110 for the
letter heuristic it replaced; allowing the other Cyrillic languages as well
(Bulgarian, Macedonian, Serbian, Kazakh, Mongolian) or all 75 made it worse
(151). tests/workstation/test_language.py measures it on
tests/workstation/data/short_texts.tsv. Its models are inside the package.
"""

from __future__ import annotations

from functools import cache

LANGUAGES = ("uk", "ru", "be", "en")
UNDETERMINED = "und"


@cache
def _detector():
    """lingua's detector and its languages' codes. Imported here, when the
    first text is detected: a process that only names the languages (the
    importer, which holds the key) never loads lingua."""
    from lingua import Language, LanguageDetectorBuilder

    codes = {Language.UKRAINIAN: "uk", Language.RUSSIAN: "ru", Language.BELARUSIAN: "be",
             Language.ENGLISH: "en"}
    return LanguageDetectorBuilder.from_languages(*codes).build(), codes


def detect(text: str) -> str:
    """The language code, or "und" when the text has no letters to go by."""
    if not any(c.isalpha() for c in text):
        return UNDETERMINED
    detector, codes = _detector()
    found = detector.detect_language_of(text[:2000])  # the opening says enough
    return codes.get(found, UNDETERMINED) if found is not None else UNDETERMINED
