"""Codenames: the witness's only credential, never stored.

A codename is a few words drawn with `secrets` from one word list, in the
alphabet the witness chose: English (the EFF large list), Ukrainian or
Russian (wordlists/README.md). What the server stretches is the
codename's canonical form (`normalise`), the sequence of its words' keys, so a
codename typed in another case, with other separators or none, or with
look-alike letters from another keyboard signs in all the same, whichever list
it was drawn from.

From the canonical form the server derives, with keyed BLAKE2b under two
separate secret keys, a lookup id, of which only a hash is kept, and the seed
of an X25519 key pair to which staff seal replies; only its public half is
kept. A codename carries at least 90 random bits: nothing can be guessed, so a
memory-hard function would only make every login costly for the server
(docs/witnesses.md). Records made before (derivation 1) were stretched with
Argon2id; `derive_argon2id` still finds them.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from nacl import pwhash
from nacl.encoding import RawEncoder
from nacl.hash import blake2b
from nacl.public import PrivateKey, PublicKey

from intake.server.server_secrets import ServerSecrets

# The lists a codename is drawn from, by language code, and their files.
LISTS = {"en": "eff_large.txt", "uk": "uk.txt", "ru": "ru.txt"}
CYRILLIC = ("uk", "ru")  # tried in this order: the first that reads the text wins
MIN_BITS = 90  # no codename is weaker, whatever the settings
# Longer input is no codename; bounding it bounds the work done on it.
MAX_CHARS = 400
# The EFF list's two spellings of one key: only "yoyo" is drawn (see _english).
_NOT_DRAWN = frozenset({"yo-yo"})

# Apostrophes a Ukrainian or Belarusian writer may type, and the Russian hard
# sign that stands where they write one: not letters of any key.
_APOSTROPHES = "'\u2019\u02bc\u2018`\u00b4\u02b9\u2032\uff07"
# Latin and Cyrillic letters that look alike in lower case, as a codename is
# shown: typed on the other alphabet's keyboard, they mean the same letter.
_LOOKALIKES = dict(zip("aceiopxyïë", "асеіорхуїё", strict=True))
# Cyrillic letters that one language writes and another's keyboard lacks or
# confuses, folded to one: е/є/ё/э, и/і/ї/й/ы, г/ґ, у/ў.
_VARIANTS = {"є": "е", "ё": "е", "э": "е", "і": "и", "ї": "и", "й": "и", "ы": "и",
             "ґ": "г", "ў": "у", "ъ": ""}

_TO_CYRILLIC = str.maketrans(
    {**{c: "" for c in _APOSTROPHES}, **_VARIANTS,
     **{lat: _VARIANTS.get(cyr, cyr) for lat, cyr in _LOOKALIKES.items()}})
_TO_LATIN = str.maketrans(
    {**{c: "" for c in _APOSTROPHES}, **{cyr: lat for lat, cyr in _LOOKALIKES.items()}})
# The letters of a Cyrillic key that Latin letters can stand for: a Cyrillic
# word needs one letter outside them, or it could be read as English.
LATIN_TYPABLE = frozenset(_TO_CYRILLIC[ord(lat)] for lat in _LOOKALIKES)


def _letters(text: str, table: dict[int, str]) -> str:
    """The letters of text, folded by table; separators and marks dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(table)
    return "".join(c for c in folded if c.isalpha())


def cyrillic_key(word: str) -> str:
    """A Cyrillic word's key: what any of its look-alike spellings folds to."""
    return _letters(word, _TO_CYRILLIC)


def english_key(word: str) -> str:
    return _letters(word, _TO_LATIN)


@dataclass(frozen=True)
class WordList:
    """One list: the words drawn (as shown), and each key's canonical token."""

    name: str
    words: tuple[str, ...]
    tokens: dict[str, str]
    lengths: tuple[int, ...] = field(init=False)  # of the keys, shortest first

    def __post_init__(self):
        object.__setattr__(self, "lengths", tuple(sorted({len(k) for k in self.tokens})))

    def words_for(self, english_words: int) -> int:
        """Words of this list as strong as english_words of the English list,
        and never under MIN_BITS (counted exactly, in integers)."""
        needed = max(len(wordlist("en").words) ** english_words, 2 ** MIN_BITS)
        n = 1
        while len(self.words) ** n < needed:
            n += 1
        return n

    def read(self, letters: str) -> list[str] | None:
        """The tokens that letters is made of, or None.

        No key is a prefix of another, so at each place at most one key fits:
        reading greedily is the only way to read the text.
        """
        out, i = [], 0
        while i < len(letters):
            for n in self.lengths:
                token = self.tokens.get(letters[i:i + n])
                if token is not None:
                    out.append(token)
                    i += n
                    break
            else:
                return None
        return out or None


def _lines(name: str) -> list[str]:
    text = resources.files("intake.server.wordlists").joinpath(LISTS[name]).read_text(
        encoding="utf-8")
    return [w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")]


def _english() -> WordList:
    # The canonical token of an English word is its spelling, so an English
    # codename's canonical form is what it has always been: its words in lower
    # case with one space between them. "yo-yo" and "yoyo" share a key: only
    # "yoyo" is drawn, and "yo-yo" signs in when typed with its hyphen.
    spellings = _lines("en")
    tokens = {english_key(w): w for w in spellings if w not in _NOT_DRAWN}
    words = tuple(w for w in spellings if w not in _NOT_DRAWN)
    if len(spellings) != 7776 or len(tokens) != len(words):
        raise RuntimeError("the English word list is damaged")
    return WordList("en", words, tokens)


def _cyrillic(name: str) -> WordList:
    words = tuple(_lines(name))
    tokens = {cyrillic_key(w): cyrillic_key(w) for w in words}
    if len(tokens) != len(words) or len(words) < 7776 or any(
            set(key) <= LATIN_TYPABLE for key in tokens):
        raise RuntimeError(f"the {name} word list is damaged")
    return WordList(name, words, tokens)


@cache
def _english_spellings() -> frozenset[str]:
    return frozenset(_lines("en"))


@cache
def wordlist(name: str) -> WordList:
    if name not in LISTS:
        raise ValueError(f"no word list {name!r}")
    return _english() if name == "en" else _cyrillic(name)


def words_needed(list_name: str, english_words: int = 7) -> int:
    """How many words a codename from list_name has (english_words: the English minimum)."""
    return wordlist(list_name).words_for(english_words)


def generate(list_name: str, english_words: int = 7) -> str:
    """A new codename from list_name, as shown to the witness: words and spaces.

    It has as many words as keep at least the strength of english_words words
    of the English list (7: 90.5 bits).
    """
    words = wordlist(list_name).words
    n = words_needed(list_name, english_words)
    return " ".join(secrets.choice(words) for _ in range(n))


def normalise(text: str) -> str | None:
    """The canonical form of a codename however it was typed, or None.

    Case, spaces, any separators or none between the words, NFC or NFKC forms,
    look-alike letters from the other alphabet's keyboard, е/ё/є/э, и/і/ї/й/ы,
    г/ґ, у/ў and the apostrophe's forms are forgiven. The result is the words'
    tokens with one space between them: for English their spelling, for the
    Cyrillic lists their keys. Every Cyrillic word has a letter that no Latin
    letter looks like, so a text reads as English or as Cyrillic, never both;
    a text that both Cyrillic lists can read gets the first one's reading. That
    depends on the text's letters alone, so the derivation never depends on
    the list.
    """
    if len(text) > MAX_CHARS:
        return None
    plain = unicodedata.normalize("NFKC", text).casefold().split()
    if plain and all(w in _english_spellings() for w in plain):
        return " ".join(plain)  # an English codename typed as shown, "yo-yo" included
    english = wordlist("en").read(_letters(text, _TO_LATIN))
    if english:
        return " ".join(english)
    letters = _letters(text, _TO_CYRILLIC)
    for name in CYRILLIC:
        words = wordlist(name).read(letters)
        if words:
            return " ".join(words)
    return None


def secret_for_sign_in(text: str) -> str:
    """What a sign-in stretches: the canonical codename, or for text that is no
    codename a string that no codename normalises to, so every sign-in does
    the same work and fails the same way."""
    return normalise(text) or "\0" + text[:MAX_CHARS]


# How a witness record's values were derived (witnesses.derivation).
ARGON2ID = 1  # records made before codenames were derived by a keyed hash
KEYED_BLAKE2B = 2  # every new record


@dataclass(frozen=True)
class Derived:
    lookup_hash: str
    reply_key: PrivateKey
    derivation: int

    @property
    def reply_public_key(self) -> PublicKey:
        return self.reply_key.public_key


def _keyed(secret: bytes, key: bytes, person: bytes) -> bytes:
    return blake2b(secret, digest_size=32, key=key, person=person, encoder=RawEncoder)


def derive(canonical: str, server: ServerSecrets) -> Derived:
    """The lookup hash and reply key of a canonical codename (see normalise).

    Keyed BLAKE2b, one key (a secret salt of server-secrets.json) per value and
    its own personalisation, so the two values are independent and neither can
    be tested offline without the server's secrets.
    """
    secret = canonical.encode()
    lookup = _keyed(secret, server.lookup_salt, b"intake.lookup")
    seed = _keyed(secret, server.reply_salt, b"intake.reply")
    return Derived(hashlib.sha256(lookup).hexdigest(), PrivateKey.from_seed(seed),
                   KEYED_BLAKE2B)


def derive_argon2id(canonical: str, server: ServerSecrets, opslimit: int,
                    memlimit: int) -> Derived:
    """The same values as records of derivation 1 hold (Argon2id, the same salts)."""
    secret = canonical.encode()
    lookup = pwhash.argon2id.kdf(32, secret, server.lookup_salt,
                                 opslimit=opslimit, memlimit=memlimit)
    seed = pwhash.argon2id.kdf(32, secret, server.reply_salt,
                               opslimit=opslimit, memlimit=memlimit)
    return Derived(hashlib.sha256(lookup).hexdigest(), PrivateKey.from_seed(seed), ARGON2ID)
