"""Which language a testimony is in: Ukrainian, Russian, Belarusian or English.

A script heuristic rather than a statistical model: the three Cyrillic
languages are told apart reliably by letters only one or two of them use
(і ї є ґ: Ukrainian; ы э ъ ё: Russian; ў and і with ы: Belarusian), it needs
no data files, and it gives the same answer on every machine.
"""

from __future__ import annotations

from collections import Counter

LANGUAGES = ("uk", "ru", "be", "en")
UNDETERMINED = "und"


def _is_cyrillic(c: str) -> bool:
    return "\u0400" <= c <= "\u04ff"


def _is_latin(c: str) -> bool:
    return c.isascii() and c.isalpha()


def detect(text: str) -> str:
    letters = Counter(c for c in text.lower() if c.isalpha())
    cyrillic = sum(n for c, n in letters.items() if _is_cyrillic(c))
    latin = sum(n for c, n in letters.items() if _is_latin(c))
    if not cyrillic and not latin:
        return UNDETERMINED
    if latin > cyrillic:
        return "en"
    n = letters.__getitem__
    soft_ru = n("ы") + n("э")  # shared by Russian and Belarusian
    scores = {
        # ї є ґ are Ukrainian only; і is Ukrainian or Belarusian.
        "uk": 3 * (n("ї") + n("є") + n("ґ")) + (n("і") if not soft_ru else 0) + n("и") // 4,
        # ъ and щ never occur in Belarusian, і never in Russian.
        "ru": 3 * n("ъ") + soft_ru + n("ё") + n("щ") + (n("и") if not n("і") else 0) // 4,
        # ў is Belarusian only; і together with ы/э is too; Belarusian has no и.
        "be": 4 * n("ў") + (n("і") + soft_ru if n("і") and soft_ru else 0),
    }
    if n("и"):
        scores["be"] //= 2
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] > 0 else UNDETERMINED
