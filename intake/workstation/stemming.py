"""Search terms: each word's dictionary form (lemma) or stem, by language.

| language   | analyser                                                        |
| ---------- | --------------------------------------------------------------- |
| Ukrainian  | pymorphy3 with pymorphy3-dicts-uk: lemmas ("дітей" -> "дитина") |
| Russian    | pymorphy3 with pymorphy3-dicts-ru: lemmas; Snowball stems too   |
| Belarusian | Hunspell's be_BY dictionary (Debian's hunspell-be, through       |
|            | chunspell): its stems are dictionary forms ("бачыла" -> "бачыць") |
| English    | Snowball                                                        |

Belarusian has no Snowball stemmer and no pymorphy3 dictionary. Measured on
130 forms of 20 words (tests/workstation/test_stemming.py), Hunspell's be_BY
joins 91 % of the forms to their word; Apertium's Belarusian analyser 83 %,
the LibreOffice be_BY (GrammarDB) 75 %, Russian Snowball 51 %, pymorphy3's
guesses 37-45 %, the word as written 15 %. Where be_BY is not installed,
Belarusian words are found as written and the desk says so.

A word gets one canonical term (the least of its lemmas, so that the same
word always gets the same one) and any others as extra terms; search.py
keeps the canonical terms aligned word for word with the text so that a match
on a lemma can be highlighted on the word itself. Terms are case-folded, "ё"
is "е", and apostrophes are dropped, so that each is a single FTS5 token.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import pymorphy3
import snowballstemmer

# A word: letters and digits, with apostrophes inside (Ukrainian "під'їзд",
# Belarusian "сям'я"); never an underscore.
WORD = re.compile(r"[^\W_]+(?:['’ʼ‘`][^\W_]+)*")
APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'"})
CYRILLIC_ONLY_UK_BE = set("іїєґў'")
HUNSPELL_DIRS = (Path("/usr/share/hunspell"), Path("/usr/share/myspell/dicts"))
CYRILLIC = ("uk", "ru", "be")
# A longer "word" is no word of these languages: it is indexed as written and
# never handed to an analyser (Hunspell is C++, and runs where the key is).
MAX_WORD_CHARS = 40


@dataclass(frozen=True)
class WordTerms:
    canonical: str
    extra: tuple[str, ...]


def normalize(term: str) -> str:
    """The form a term is stored and searched in: one FTS5 token."""
    term = unicodedata.normalize("NFC", term).casefold().replace("ё", "е")
    return "".join(c for c in term if c.isalnum())


@cache
def _morph(lang: str) -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer(lang=lang)


@cache
def _snowball(name: str):
    return snowballstemmer.stemmer(name)


@cache
def _hunspell():
    """Hunspell with be_BY, or None when the dictionary is not installed."""
    from hunspell import Hunspell

    for folder in HUNSPELL_DIRS:
        if (folder / "be_BY.dic").exists() and (folder / "be_BY.aff").exists():
            return Hunspell("be_BY", hunspell_data_dir=str(folder))
    return None


def belarusian_dictionary() -> bool:
    return _hunspell() is not None


def _is_latin(word: str) -> bool:
    return all(c.isascii() for c in word)


def known_lemmas(word: str, lang: str) -> set[str]:
    """The word's lemmas in `lang`'s dictionary; empty when it does not know the word."""
    if lang == "be":
        speller = _hunspell()
        return set(speller.stem(word)) if speller is not None else set()
    morph = _morph(lang)
    if not morph.word_is_known(word):
        return set()
    return {p.normal_form for p in morph.parse(word) if p.is_known}


def guessed_lemmas(word: str, lang: str) -> set[str]:
    """pymorphy3's guess for a word its dictionary lacks (names, new words)."""
    if lang not in ("uk", "ru"):
        return set()
    return {_morph(lang).parse(word)[0].normal_form}


def _russian_stem(word: str) -> set[str]:
    if CYRILLIC_ONLY_UK_BE & set(word):
        return set()
    return {_snowball("russian").stemWord(word)}


@lru_cache(maxsize=200_000)
def word_terms(word: str, lang: str) -> WordTerms:
    """The terms a word of a text in `lang` is indexed under."""
    word = unicodedata.normalize("NFC", word).casefold().translate(APOSTROPHES)
    if len(word) > MAX_WORD_CHARS:
        return WordTerms(normalize(word), ())
    if _is_latin(word):
        return WordTerms(normalize(_snowball("english").stemWord(word)), ())
    order = [lang] + [o for o in CYRILLIC if o != lang] if lang in CYRILLIC else list(CYRILLIC)
    found: set[str] = set()
    used = ""
    for candidate in order:
        found = known_lemmas(word, candidate)
        if found:
            used = candidate
            break
    if not found:
        found, used = guessed_lemmas(word, lang) or {word}, lang
    if used == "ru":
        found |= _russian_stem(word)
    terms = sorted({normalize(t) for t in found} - {""}) or [normalize(word)]
    return WordTerms(terms[0], tuple(terms[1:]))


@lru_cache(maxsize=20_000)
def query_terms(word: str) -> frozenset[str]:
    """Every term a query word may have been indexed under, whatever the text's language."""
    word = unicodedata.normalize("NFC", word).casefold().translate(APOSTROPHES)
    if len(word) > MAX_WORD_CHARS:
        return frozenset({normalize(word)}) - {""}
    if _is_latin(word):
        return frozenset({normalize(_snowball("english").stemWord(word))})
    terms = {word} | _russian_stem(word)
    for lang in CYRILLIC:
        terms |= known_lemmas(word, lang) or guessed_lemmas(word, lang)
    return frozenset(normalize(t) for t in terms) - {""}


def analyse(text: str, lang: str) -> tuple[list[tuple[int, int]], list[WordTerms]]:
    """The text's words (start, end offsets) and the terms of each."""
    spans, terms = [], []
    for m in WORD.finditer(text):
        spans.append(m.span())
        terms.append(word_terms(m.group(), lang))
    return spans, terms
