"""The Ukrainian and Russian codename word lists: their rules, checked on the
committed files, and scripts/wordlists.py making the same files again."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from intake.server import codename

ROOT = Path(__file__).resolve().parents[1]
WORDLISTS = ROOT / "intake" / "server" / "wordlists"
ALPHABETS = {"uk": set("абвгґдеєжзиіїйклмнопрстуфхцчшщьюяʼ"),
             "ru": set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")}


def committed(name: str) -> tuple[list[str], list[str]]:
    lines = (WORDLISTS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    return header, [line for line in lines if not line.startswith("#")]


def keys(name: str) -> list[str]:
    return [codename.cyrillic_key(w) for w in committed(name)[1]]


@pytest.mark.parametrize("name", ["uk", "ru"])
def test_size_letters_and_strength(name):
    header, words = committed(name)
    assert len(words) == len(set(words)) == 7776
    assert header[0].startswith(f"# Codename words ({name}): 7776 words")
    assert "CC BY-SA 4.0" in header[2]
    for word in words:
        assert set(word) <= ALPHABETS[name], word
        assert 3 <= len(word.replace("ʼ", "")) <= 9, word
        assert word == word.lower() and word.strip() == word
    # 7 words of 7,776: as strong as 7 English words, and at least 90 bits.
    assert codename.words_needed(name) == 7
    assert 7 * math.log2(len(words)) >= 90


@pytest.mark.parametrize("name", ["uk", "ru"])
def test_unique_after_normalisation_and_never_a_prefix(name):
    ks = keys(name)
    assert len(set(ks)) == len(ks)
    ordered = sorted(ks)
    # In sorted order a key that is a prefix of another comes right before one it starts.
    clashes = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b.startswith(a)]
    assert clashes == []


@pytest.mark.parametrize("name", ["uk", "ru"])
def test_no_two_words_one_letter_apart(name):
    """Changed, added or dropped: no typo turns a word into another."""
    ks = set(keys(name))
    changed = defaultdict(list)
    for k in ks:
        for i in range(len(k)):
            changed[(i, k[:i] + k[i + 1:], len(k))].append(k)
    assert [group for group in changed.values() if len(group) > 1] == []
    added = [(k, k[:i] + k[i + 1:]) for k in ks for i in range(len(k)) if k[:i] + k[i + 1:] in ks]
    assert added == []


@pytest.mark.parametrize("name", ["uk", "ru"])
def test_no_word_reads_as_english_nor_holds_a_stopped_word(name):
    stop = (ROOT / "scripts" / "wordlists_stop.txt").read_text(encoding="utf-8")
    entries = [e for line in stop.splitlines() for e in line.split("#", 1)[0].split()]
    stems = tuple(codename.cyrillic_key(e) for e in entries if not e.startswith("="))
    exact = {codename.cyrillic_key(e[1:]) for e in entries if e.startswith("=")}
    assert len(stems) > 100 and len(exact) > 1000
    for word, key in zip(committed(name)[1], keys(name), strict=True):
        assert not key.startswith(stems) and key not in exact, word
        assert not set(key) <= codename.LATIN_TYPABLE, word
        assert codename.wordlist(name).read(key) == [key]


def test_the_english_list_reads_one_way():
    words = codename.wordlist("en").words
    assert len(words) == 7775
    ks = sorted(codename.english_key(w) for w in words)
    assert len(set(ks)) == len(ks)
    assert [(a, b) for a, b in zip(ks, ks[1:], strict=False) if b.startswith(a)] == []


def _sources_installed() -> bool:
    if shutil.which("hunspell") is None:
        return False
    found = subprocess.run(["hunspell", "-D"], input="", capture_output=True, text=True)
    return "uk_UA" in found.stderr and "ru_RU" in found.stderr


@pytest.mark.skipif(not _sources_installed(),
                    reason="hunspell with hunspell-uk and hunspell-ru is not installed")
def test_the_script_makes_the_committed_lists_again():
    # One process a language, side by side: each takes a minute or two.
    runs = [subprocess.Popen([sys.executable, str(ROOT / "scripts" / "wordlists.py"), "check",
                              "--lang", name], stderr=subprocess.PIPE, text=True)
            for name in ("uk", "ru")]
    errors = [run.communicate(timeout=900)[1] for run in runs]
    results = [(run.returncode, err) for run, err in zip(runs, errors, strict=True)]
    if any(code == 3 for code, _ in results):
        pytest.skip("other versions of the sources are installed:\n"
                    + "".join(err for _, err in results))
    assert [code for code, _ in results] == [0, 0], results


# Codenames already handed out must keep signing in: a list, once issued, never
# changes. A new rule or source makes a new list under a new name.
ISSUED = {
    "eff_large.txt": "6d557f0693958fb5e650b68b5bee585eb82cf4da32965505c789e924743bc522",
    "uk.txt": "b3b29e0d13b17efc7c200504dad4aae07ccebe6478294e6e7d7a17b8681f4433",
    "ru.txt": "cbd59bd19984969290fdc06b61a5cb72d07186f5fdb759916655bacf56a9f024",
}


@pytest.mark.parametrize("name", sorted(ISSUED))
def test_an_issued_list_never_changes(name):
    import hashlib
    from importlib.resources import files

    data = files("intake.server.wordlists").joinpath(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ISSUED[name], \
        f"{name} changed: codenames drawn from it would no longer sign in"
