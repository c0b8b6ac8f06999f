"""Texts get their language and search terms from a child, never where the key is."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from intake.workstation import language, search, stemming
from intake.workstation.importer import import_bundle
from intake.workstation.sandbox import Sandbox
from intake.workstation.text_analysis import LIMITS, TextAnalyser, analyse_here

UK = "Я бачив, як дітей вивезли з інтернату на автобусах."
RU = "Я видел, как детей вывезли из интерната на автобусах."
BE = "Я бачыў, як дзяцей вывезлі з інтэрната на аўтобусах."


def _models_loaded() -> list[str]:
    caches = {"lingua": language._detector, "pymorphy3": stemming._morph,
              "hunspell": stemming._hunspell}
    return [name for name, cache in caches.items() if cache.cache_info().currsize]


def _forget_models() -> None:
    language._detector.cache_clear()
    stemming._morph.cache_clear()
    stemming._hunspell.cache_clear()
    stemming.word_terms.cache_clear()


def test_an_import_loads_no_language_model_where_the_key_is(server, desk, tmp_path):
    _forget_models()
    sent = {lang: server.submit(text) for lang, text in (("uk", UK), ("ru", RU), ("be", BE))}
    result = desk.import_(server.export(tmp_path / "b.tar"))
    assert "3 new" in result.output
    assert _models_loaded() == [], "the importing process loaded language models"
    with desk.open() as v:
        langs = dict(v.conn.execute("SELECT submission_id, language FROM submissions"))
        terms = dict(v.conn.execute("SELECT submission_id, terms FROM search"))
        found = v.conn.execute("SELECT submission_id FROM search WHERE search MATCH ?",
                               (search.fts_query("дитина"),)).fetchall()  # "дітей"
    assert langs == {s.submission_id: lang for lang, s in sent.items()}
    assert terms == {s.submission_id: analyse_here(text).terms
                     for s, text in ((sent["uk"], UK), (sent["ru"], RU), (sent["be"], BE))}
    assert [r[0] for r in found] == [sent["uk"].submission_id]


def test_the_importing_process_loads_no_analyser_at_all():
    """Not even their code: only the text analyser's child imports them."""
    code = ("import sys, intake.workstation.cli, intake.workstation.importer, "
            "intake.workstation.decrypt; print(' '.join(sorted(set(sys.modules) & "
            "{'lingua', 'pymorphy3', 'snowballstemmer', 'hunspell'})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""


def test_the_child_answers_as_the_analysis_here_would():
    with TextAnalyser(Sandbox()) as texts:
        for text in (UK, RU, BE, "Files, part 1", "12 34", "Діти \u202eвідкрито\u202c", "",
                     " \n!? ", "\x1b"):
            assert texts.analyse(text) == analyse_here(text)


def test_the_child_is_isolated_where_it_can_be_and_plain_where_not():
    isolated = Sandbox().text_command(LIMITS)
    assert isolated[:2] == [Sandbox().command("image", "PNG")[0], "-rnm"]
    assert "isolated" in isolated
    box = Sandbox(unshare="/nonexistent/unshare")
    plain = box.text_command(LIMITS)
    assert plain[0] == sys.executable and "plain" in plain
    with TextAnalyser(box) as texts:  # still a child: it never holds the key
        assert texts.analyse(UK).lang == "uk"


# -- a child that fails or lies ------------------------------------------------------------

ANSWER = r"""
import json, struct, sys
def answer(raw):
    sys.stdout.buffer.write(struct.pack(">I", len(raw)) + raw)
    sys.stdout.buffer.flush()
head = sys.stdin.buffer.read(4)
sys.stdin.buffer.read(struct.unpack(">I", head)[0])
"""
FAKES = {
    "ends": "",
    "not json": "answer(b'not json')",
    "no such language": 'answer(json.dumps({"lang": "xx", "terms": "", "more": ""}).encode())',
    "markup in its terms": ('answer(json.dumps({"lang": "uk", "terms": "<b>x</b>", '
                            '"more": ""}).encode())'),
    "a list": "answer(b'[1, 2]')",
    "nested deep": "answer(b'[' * 20000 + b']' * 20000)",
    "too long": "sys.stdout.buffer.write(struct.pack('>I', 1 << 30)); sys.stdout.flush()",
    "twice": ('raw = json.dumps({"lang": "uk", "terms": "", "more": ""}).encode()\n'
              'sys.stdout.buffer.write(2 * (struct.pack(">I", len(raw)) + raw))\n'
              'sys.stdout.flush()'),
    "hangs": "import time; time.sleep(600)",
}


class _Fake(Sandbox):
    """A sandbox whose text child is a script, and which counts its starts."""

    def __init__(self, script: str, starts: Path):
        super().__init__(unshare="/nonexistent/unshare")
        self.script, self.starts = script, starts

    def text_command(self, limits: dict) -> list[str]:
        count = f"open({str(self.starts)!r}, 'a').write('x')\n"
        return [sys.executable, "-c", count + ANSWER + self.script]


@pytest.mark.parametrize("fake", FAKES)
def test_a_child_that_fails_or_lies_leaves_the_text_searchable_as_written(fake, tmp_path):
    starts = tmp_path / "starts"
    with TextAnalyser(_Fake(FAKES[fake], starts), deadline=2) as texts:
        got = texts.analyse(UK)
    assert (got.lang, got.terms, got.more) == ("und", "", "")
    assert got.body == search.body_of(UK)
    assert got.problem.startswith("the text analyser")
    assert starts.read_text() == "xx", "not tried again with a new child"


def test_an_import_stopped_early_does_not_wait_for_the_child(tmp_path):
    texts = TextAnalyser(_Fake(FAKES["hangs"], tmp_path / "starts"), deadline=300)
    pending = texts.submit(UK)
    while not (tmp_path / "starts").exists():
        time.sleep(0.05)
    started = time.monotonic()
    texts.close(abandon=True)
    assert time.monotonic() - started < 60  # the deadline is 300 s
    assert pending.result().problem


def test_an_import_with_a_failing_child_keeps_every_item_and_says_so(server, desk, tmp_path):
    sent = server.submit(UK)
    bundle = server.export(tmp_path / "b.tar")
    with desk.open() as vault:
        summary = import_bundle(vault, bundle, desk.private_key, "team.key",
                                sandbox=_Fake(FAKES["not json"], tmp_path / "starts"))
        assert len(summary.new) == 1
        assert any("searchable as written only" in note for note in summary.notes)
        assert vault.conn.execute("SELECT language FROM submissions").fetchone()[0] == "und"
        found = vault.conn.execute("SELECT submission_id FROM search WHERE search MATCH ?",
                                   (search.fts_query("інтернату"),)).fetchall()
    assert [r[0] for r in found] == [sent.submission_id]


def test_texts_without_a_word_start_no_child(server, desk, tmp_path):
    server.submit("", files=[(b"\x00\x01 not text", "a.bin")])
    server.submit(" \n?! ")
    starts = tmp_path / "starts"
    with desk.open() as vault:
        summary = import_bundle(vault, server.export(tmp_path / "b.tar"), desk.private_key,
                                "team.key", sandbox=_Fake(FAKES["ends"], starts))
        langs = {r[0] for r in vault.conn.execute("SELECT language FROM submissions")}
    assert len(summary.new) == 2 and not summary.notes  # a file, and a testimony of no words
    assert langs == {"", "und"} and not starts.exists()  # the file alone has no language
