"""Search terms: words as written, and their stems where Snowball has a stemmer.

Snowball (the snowballstemmer package) stems English and Russian. It has no
Ukrainian or Belarusian stemmer, so for those languages search matches the
word forms as written (case- and diacritic-folded by FTS5) and prefix
queries ("дит*") stand in for stemming.
"""

from __future__ import annotations

import re
from functools import cache

import snowballstemmer

WORD = re.compile(r"\w+", re.UNICODE)
STEMMERS = {"en": "english", "ru": "russian"}


@cache
def _stemmer(lang: str):
    return snowballstemmer.stemmer(STEMMERS[lang])


def _latin(word: str) -> bool:
    return word.isascii()


def stem_word(word: str, lang: str) -> str | None:
    word = word.casefold()
    if _latin(word):
        return _stemmer("en").stemWord(word)
    if lang == "ru":
        return _stemmer("ru").stemWord(word.replace("ё", "е"))
    return None


def stems(text: str, lang: str) -> str:
    """The stems column of the index: one stem per stemmable word, in order."""
    out = []
    for word in WORD.findall(text):
        s = stem_word(word, lang)
        if s:
            out.append(s)
    return " ".join(out)


def query_stems(word: str) -> set[str]:
    """Every stem a query word might have been indexed under."""
    word = word.casefold()
    if _latin(word):
        return {_stemmer("en").stemWord(word)}
    return {_stemmer("ru").stemWord(word.replace("ё", "е"))}
