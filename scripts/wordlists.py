"""The Ukrainian and Russian codename word lists, made again from their sources.

    python scripts/wordlists.py build   # writes intake/server/wordlists/{uk,ru}.txt
    python scripts/wordlists.py check   # makes them again and compares with the files

Sources (intake/server/wordlists/README.md says more, with their licences):
wordfreq's frequencies put the words in order, most common first; pymorphy3
and its dictionaries keep nouns and adjectives in their dictionary form that
are no names, abbreviations, slang or archaisms; Debian's hunspell
dictionaries keep words that are a headword in lower case (no proper names);
wordlists_stop.txt drops words a witness should not carry on paper. Of what
is left, a word is taken in order of frequency unless its key (the form
codename.normalise reads, look-alike letters folded) equals a key already
taken, is a prefix of one or has one as a prefix, is one letter (changed,
added or dropped) away from one, or is made only of letters that Latin ones
look like (it could be read as English). The first 7,776 words are the list.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from intake.server.codename import LATIN_TYPABLE, cyrillic_key

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "intake" / "server" / "wordlists"
STOP = Path(__file__).with_name("wordlists_stop.txt")
SIZE = 7776


@dataclass(frozen=True)
class Language:
    code: str
    hunspell: str  # the dictionary's name, and its Debian package
    package: str
    letters: str  # the alphabet, apostrophe included where the language has one

    @property
    def alphabet(self) -> re.Pattern:
        return re.compile(f"[{self.letters}]+")


LANGUAGES = {
    "uk": Language("uk", "uk_UA", "hunspell-uk", "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя'"),
    "ru": Language("ru", "ru_RU", "hunspell-ru", "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"),
}
# Grammemes of a reading we never take: names, places, organisations, brands,
# abbreviations, informal, slang, archaic, literary, misspelt, dialect,
# obscene; pronoun-like, possessive and superlative adjectives.
BAD = {"Name", "Surn", "Patr", "Geox", "Orgn", "Trad", "Abbr", "Init", "Infr", "Slng",
       "Arch", "Litr", "Erro", "Dist", "Obsc", "Hypo", "Apro", "Poss", "Supr", "Prnt"}
# A word with any reading of these is out, whatever its other readings.
BAD_ANY = {"Slng", "Obsc", "Infr", "Abbr"}
NAMES = {"Name", "Surn", "Patr", "Geox", "Orgn", "Trad"}


def stop_list() -> tuple[tuple[str, ...], frozenset[str]]:
    """Keys no word may start with, and keys no word may be ("=word")."""
    stems, exact = [], set()
    for line in STOP.read_text(encoding="utf-8").splitlines():
        for entry in line.split("#", 1)[0].split():
            if entry.startswith("="):
                exact.add(cyrillic_key(entry[1:]))
            else:
                stems.append(cyrillic_key(entry))
    return tuple(stems), frozenset(exact)


def dictionary_form(word: str, parses, spelt_with_e=None) -> bool:
    """A noun in the nominative (singular, or plural for plural-only nouns), or
    an adjective in the masculine nominative singular; nothing bad; and no
    reading as another part of speech (a verb, an adverb, a preposition...),
    so the word means one kind of thing. A Russian word with ё must also be
    unambiguous when written with е, as most text writes it."""
    readings = [p for p in parses if not NAMES & set(p.tag.grammemes)]
    if spelt_with_e is not None:
        if any(p.normal_form != word for p in spelt_with_e):
            return False
        readings += spelt_with_e
    if not readings or any(BAD_ANY & set(p.tag.grammemes) for p in parses):
        return False
    if any(p.tag.POS not in ("NOUN", "ADJF") for p in readings):
        return False
    for p in readings:
        g = set(p.tag.grammemes)
        if p.normal_form != word or g & BAD or "nomn" not in g:
            continue
        if p.tag.POS == "NOUN" and ("plur" not in g or "Pltm" in g):
            return True
        if p.tag.POS == "ADJF" and "masc" in g and "plur" not in g:
            return True
    return False


def headwords(lang: Language, words: list[str]) -> set[str]:
    """The words hunspell knows as a headword of their own, in lower case."""
    out = subprocess.run(["hunspell", "-d", lang.hunspell, "-i", "utf-8", "-s"],
                         input="\n".join(words) + "\n", capture_output=True, text=True,
                         check=True).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == parts[1]:
            found.add(parts[0])
    return found


class Taken:
    """Keys taken so far, and what makes a new one clash with them."""

    def __init__(self):
        self.keys: set[str] = set()
        self.prefixes: set[str] = set()  # every proper prefix of a key taken
        self.changed: set[str] = set()  # each key with one letter blanked
        self.shorter: set[str] = set()  # each key with one letter dropped

    def clashes(self, key: str) -> bool:
        cuts = range(len(key))
        return (key in self.keys or key in self.prefixes or key in self.shorter
                or any(key[:i] in self.keys for i in range(1, len(key)))
                or any(key[:i] + "\0" + key[i + 1:] in self.changed for i in cuts)
                or any(key[:i] + key[i + 1:] in self.keys for i in cuts))

    def take(self, key: str) -> None:
        cuts = range(len(key))
        self.keys.add(key)
        self.prefixes.update(key[:i] for i in range(1, len(key)))
        self.changed.update(key[:i] + "\0" + key[i + 1:] for i in cuts)
        self.shorter.update(key[:i] + key[i + 1:] for i in cuts)


def frequencies(lang: Language) -> dict[str, float]:
    """wordfreq's words written in the language's alphabet, and how often."""
    import wordfreq

    return {word: f for word, f in wordfreq.get_frequency_dict(lang.code, "best").items()
            if lang.alphabet.fullmatch(word)}


def build(lang: Language) -> list[str]:
    import pymorphy3

    morph = pymorphy3.MorphAnalyzer(lang=lang.code)
    stems, exact = stop_list()
    # A lemma's frequency: the frequencies of its forms that are forms of no
    # other lemma ("року" could be of рік or рок: it counts for neither).
    scored: dict[str, float] = {}
    for word, f in frequencies(lang).items():
        lemmas = {p.normal_form for p in morph.parse(word)}
        if len(lemmas) == 1:
            lemma = lemmas.pop()
            scored[lemma] = scored.get(lemma, 0.0) + f
    candidates = {}
    for word, f in scored.items():
        key = cyrillic_key(word)
        if not (3 <= len(word.replace("'", "")) <= 9 and len(key) >= 3
                and lang.alphabet.fullmatch(word)) or key.startswith(stems) or key in exact:
            continue
        with_e = morph.parse(word.replace("ё", "е")) if "ё" in word else None
        if dictionary_form(word, morph.parse(word), with_e):
            candidates[word] = f
    order = sorted(candidates, key=lambda w: (-candidates[w], w))
    known = headwords(lang, order)
    taken, words = Taken(), []
    for word in order:
        if word not in known:
            continue
        key = cyrillic_key(word)
        if set(key) <= LATIN_TYPABLE or taken.clashes(key):
            continue
        taken.take(key)
        words.append(word.replace("'", "\u02bc"))  # the Ukrainian apostrophe, a letter
        if len(words) == SIZE:
            return words
    raise SystemExit(f"{lang.code}: only {len(words)} words pass the rules, {SIZE} needed")


def sources(lang: Language) -> str:
    dicts = f"pymorphy3-dicts-{lang.code}"
    deb = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", lang.package],
                         capture_output=True, text=True, check=True).stdout
    return (f"wordfreq {metadata.version('wordfreq')}, pymorphy3 {metadata.version('pymorphy3')}, "
            f"{dicts} {metadata.version(dicts)}, {lang.package} {deb}")


MADE_FROM = "# Made by scripts/wordlists.py from "


def render(lang: Language, words: list[str]) -> str:
    header = [
        f"# Codename words ({lang.code}): {len(words)} words, one a line, most common first.",
        MADE_FROM + sources(lang) + ";",
        "# see README.md beside this file for the rules and the licences (CC BY-SA 4.0).",
    ]
    return "\n".join(header + words) + "\n"


def main(argv: list[str] | None = None) -> int:
    """0: done or the same; 1: a file differs; 3: other sources installed than
    a file was made from, so it cannot be checked here."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("--lang", choices=sorted(LANGUAGES), action="append")
    args = parser.parse_args(argv)
    status = 0
    for code in args.lang or sorted(LANGUAGES):
        lang, path = LANGUAGES[code], OUT / f"{code}.txt"
        if args.command == "check":
            made_from = path.read_text(encoding="utf-8").splitlines()[1]
            if made_from != MADE_FROM + sources(lang) + ";":
                print(f"{path.relative_to(ROOT)}: {made_from[2:]}\n"
                      f"  installed here: {sources(lang)}", file=sys.stderr)
                status = max(status, 3)
                continue
        text = render(lang, build(lang))
        if args.command == "build":
            path.write_text(text, encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: {SIZE} words")
        elif path.read_text(encoding="utf-8") != text:
            print(f"{path.relative_to(ROOT)} differs from what its sources make", file=sys.stderr)
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
