"""Codenames: drawn from the witness's list, read back however they were typed.

The manglings below are written from the rules a witness is promised (case,
separators, NFC/NFKC, the other keyboard's look-alike letters, е/ё/є/э,
и/і/ї/й/ы, г/ґ, у/ў, the apostrophe's forms), not from codename.py's tables.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nacl import pwhash

from intake.server import codename
from intake.server.server_secrets import ServerSecrets

LISTS = ["en", "uk", "ru"]
PROPERTY = settings(max_examples=150, deadline=None, database=None)

# Cyrillic letters and what a witness may type for each: its Latin look-alike
# (in either case), or a sister letter from another Cyrillic keyboard.
CYRILLIC_TYPED = {
    "а": "aA", "с": "cC", "е": "eEєЄёэ", "і": "iIиїйы", "о": "oO", "р": "pP", "х": "xX",
    "у": "yYў", "и": "іiїйы", "ї": "iіиïÏ", "й": "иіi", "є": "еeэ", "ё": "еeëË", "э": "еe",
    "ы": "иіi", "ґ": "гҐ", "г": "ґ", "ў": "уyY",
}
APOSTROPHES = ["'", "\u2019", "\u02bc", "\u2018", "`", "ъ", ""]
LATIN_TYPED = {"a": "аА", "c": "сС", "e": "еЕ", "o": "оО", "p": "рР", "x": "хХ", "y": "уУ",
               "i": "іІ"}
SEPARATORS = st.text(alphabet=" -.,\n\t;_/\u00a0\u2013", max_size=3)


def letters_of(word: str, name: str, draw) -> str:
    out = []
    for ch in word:
        if ch == "\u02bc":
            out.append(draw(st.sampled_from(APOSTROPHES)))
            continue
        if ch == "-":
            out.append(draw(SEPARATORS))
            continue
        typed = (CYRILLIC_TYPED if name != "en" else LATIN_TYPED).get(ch, "")
        choice = draw(st.sampled_from([ch, ch.upper(), *typed]))
        out.append(choice)
    return "".join(out)


@st.composite
def codenames(draw, name: str | None = None):
    name = name or draw(st.sampled_from(LISTS))
    words = codename.wordlist(name).words
    n = codename.words_needed(name)
    return name, draw(st.lists(st.sampled_from(words), min_size=n, max_size=n))


@st.composite
def mangled(draw, name: str, words: list[str]) -> str:
    text = draw(st.text(alphabet=" \n\t", max_size=2))
    for i, word in enumerate(words):
        if i:
            text += draw(SEPARATORS)
        text += letters_of(word, name, draw)
    text += draw(st.text(alphabet=" \n\t", max_size=2))
    return unicodedata.normalize(draw(st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"])), text)


@PROPERTY
@given(st.data())
def test_any_mangling_within_the_rules_reads_back(data):
    name, words = data.draw(codenames())
    shown = " ".join(words)
    canonical = codename.normalise(shown)
    assert canonical is not None
    typed = data.draw(mangled(name, words))
    assert codename.normalise(typed) == canonical, typed


@PROPERTY
@given(st.data())
def test_two_codenames_of_one_list_never_read_the_same(data):
    name = data.draw(st.sampled_from(LISTS))
    _, a = data.draw(codenames(name))
    _, b = data.draw(codenames(name))
    # One word changed is the hardest case: try it as often as two random ones.
    if data.draw(st.booleans()):
        b = [*a]
        b[data.draw(st.integers(0, len(a) - 1))] = data.draw(
            st.sampled_from(codename.wordlist(name).words))
    assume(a != b)
    assert codename.normalise(" ".join(a)) != codename.normalise(" ".join(b))


@PROPERTY
@given(codenames("en"), st.sampled_from(["uk", "ru"]), st.data())
def test_codenames_of_two_alphabets_never_read_the_same(english, other, data):
    _, cyrillic = data.draw(codenames(other))
    assert codename.normalise(" ".join(english[1])) != codename.normalise(" ".join(cyrillic))


@pytest.mark.parametrize("name", LISTS)
def test_every_word_of_a_list_reads_as_itself_in_its_list(name):
    # (Alone, a Russian word may read as two Ukrainian ones: "жёсткий" as
    # "жест кий". A codename is read whole, by the first list that can.)
    wordlist = codename.wordlist(name)
    key = codename.english_key if name == "en" else codename.cyrillic_key
    for word in wordlist.words:
        assert wordlist.read(key(word)) == [wordlist.tokens[key(word)]], word


def test_a_codename_of_a_list_has_its_words_and_at_least_90_bits():
    for name in LISTS:
        words = codename.generate(name).split()
        wordlist = codename.wordlist(name)
        assert len(words) == codename.words_needed(name) == 7
        assert set(words) <= set(wordlist.words)
        assert len(words) * math.log2(len(wordlist.words)) >= 90
    # A stronger setting for English makes every list stronger as well.
    assert all(len(codename.generate(name, 8).split()) == 8 for name in LISTS)
    with pytest.raises(ValueError):
        codename.generate("be")


def test_an_english_codename_keeps_the_derivation_it_always_had():
    """Before the lists, the KDF took lower case with single spaces: it still does."""
    for _ in range(20):
        shown = codename.generate("en")
        assert codename.normalise(shown) == " ".join(shown.lower().split())
    # "yo-yo" and "yoyo" share a key: "yoyo" is drawn, "yo-yo" reads as written.
    assert "yo-yo" not in codename.wordlist("en").words
    assert codename.normalise("abacus yo-yo") == "abacus yo-yo"
    assert codename.normalise("abacus yoyo") == codename.normalise("abacus-yo yo") \
        == "abacus yoyo"
    assert codename.normalise("ABACUS  t-shirt") == codename.normalise("abacus tshirt") \
        == "abacus t-shirt"


def test_separators_and_run_together_words():
    uk = codename.wordlist("uk").words[:7]
    shown = " ".join(uk)
    expected = codename.normalise(shown)
    for typed in ("".join(uk), "-".join(uk), ", ".join(uk), "\n".join(uk), ". ".join(uk),
                  "  " + "   ".join(uk).upper() + "\n"):
        assert codename.normalise(typed) == expected, typed
    assert expected == " ".join(codename.cyrillic_key(w) for w in uk)


def test_a_ukrainian_codename_typed_on_a_russian_keyboard():
    # No і, ї, є, ґ or apostrophe on a Russian keyboard: и, е, г and ъ (or nothing).
    words = [w for w in codename.wordlist("uk").words if set(w) & set("іїєґʼ")][:7]
    on_russian = [w.translate(str.maketrans({"і": "и", "ї": "и", "є": "е", "ґ": "г", "ʼ": "ъ"}))
                  for w in words]
    assert codename.normalise(" ".join(on_russian)) == codename.normalise(" ".join(words))


def test_text_that_is_no_codename():
    for text in ("", "   ", "nope", "not my words at all", "абракадабра", "x" * 5000,
                 codename.wordlist("uk").words[0] + " zzzz"):
        assert codename.normalise(text) is None
        assert codename.secret_for_sign_in(text).startswith("\0")
    shown = codename.generate("ru")
    assert codename.secret_for_sign_in(shown) == codename.normalise(shown)


def test_the_derivation_takes_the_canonical_form():
    server = ServerSecrets(form_key=b"f" * 32, lookup_salt=b"l" * 16, reply_salt=b"r" * 16)
    words = codename.wordlist("uk").words[100:107]
    one = codename.derive(codename.secret_for_sign_in(" ".join(words)), server)
    two = codename.derive(codename.secret_for_sign_in("-".join(words).upper()), server)
    other = codename.derive(codename.secret_for_sign_in(" ".join(words[:6])), server)
    assert one.lookup_hash == two.lookup_hash != other.lookup_hash
    assert bytes(one.reply_key) == bytes(two.reply_key) != bytes(other.reply_key)
    assert one.derivation == codename.KEYED_BLAKE2B


def test_the_derived_values_need_the_server_secrets_and_are_apart():
    server = ServerSecrets(form_key=b"f" * 32, lookup_salt=b"l" * 16, reply_salt=b"r" * 16)
    other_server = ServerSecrets(form_key=b"f" * 32, lookup_salt=b"L" * 16,
                                 reply_salt=b"R" * 16)
    canonical = codename.normalise(codename.generate("en"))
    here, there = codename.derive(canonical, server), codename.derive(canonical, other_server)
    assert here.lookup_hash != there.lookup_hash
    assert bytes(here.reply_key) != bytes(there.reply_key)
    # The lookup id and the reply seed are independent: same salts, other keys.
    same_salts = ServerSecrets(form_key=b"f" * 32, lookup_salt=b"s" * 16, reply_salt=b"s" * 16)
    both = codename.derive(canonical, same_salts)
    assert bytes.fromhex(both.lookup_hash) != bytes(both.reply_key)


def test_the_argon2id_derivation_of_older_records_is_unchanged():
    """Records of derivation 1 hold these values: the function must not move."""
    server = ServerSecrets(form_key=b"f" * 32, lookup_salt=b"l" * 16, reply_salt=b"r" * 16)
    old = codename.derive_argon2id("abacus abdomen", server, opslimit=1, memlimit=8192)
    lookup = pwhash.argon2id.kdf(32, b"abacus abdomen", b"l" * 16, opslimit=1, memlimit=8192)
    assert old.lookup_hash == hashlib.sha256(lookup).hexdigest()
    assert old.derivation == codename.ARGON2ID
    assert old.lookup_hash != codename.derive("abacus abdomen", server).lookup_hash


@pytest.mark.parametrize(("lang", "words", "shown"), [
    ("en", 7, "Your codename has 7 words."), ("uk", 7, "має 7 слів."),
    ("uk", 3, "має 3 слова."), ("ru", 7, "В вашем кодовом имени 7 слов."),
    ("ru", 1, "1 слово. Запишите его"), ("be", 7, "У вашым кодавым імені 7 слоў."),
    ("be", 2, "2 словы."),
])
def test_the_help_for_writing_a_codename_down_speaks_each_language(app, lang, words, shown):
    from flask import render_template
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale(lang):
        page = render_template("_codename_help.html", words=["w"] * words)
    assert shown in page
    assert page.count('id="') == 1 and 'aria-labelledby="codename-help-title"' in page


def test_never_under_90_bits_whatever_the_setting():
    for name in LISTS:
        size = len(codename.wordlist(name).words)
        for english_words in (1, 6, 7, 8):
            n = codename.words_needed(name, english_words)
            assert n * math.log2(size) >= 90 and (n - 1) * math.log2(size) < max(
                90, english_words * math.log2(7775))
