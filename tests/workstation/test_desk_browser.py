"""The desk in a real browser over 10,000 submissions in four languages:
`intake vault serve` as a process on a free loopback port, Debian's Chromium
through Playwright with JavaScript off (the pages carry none), and axe-core
injected by this harness alone into a context where JavaScript is on only for
the audit, as the witness pages' tests do (tests/i18n/test_browser.py).

Paging and filters, a Ukrainian search that finds the forms of a word, a
thread with a reply re-read with the team key, and a case exported from the
desk; then every page audited in each language. The desk is started with
--key, as a triager who changes things starts it, and each browser context
first opens the address it printed (test_desk_access_browser.py shows that
nothing else opens it)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from browsers import launched_chromium, missing
from i18n.test_browser import AXE, audit

LANGS = ("uk", "ru", "be", "en")
COUNT = re.compile(r"^(\d+) ")


@pytest.fixture(scope="module")
def served(caseload, tmp_path_factory):
    """`intake vault serve --key` over the generated vault, stopped at the end of
    the module: (the desk's base address, the address it printed, with its token)."""
    exports = tmp_path_factory.mktemp("desk-exports")
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "intake", "vault", "serve", "--vault", str(caseload.root),
         "--port", "0", "--key", str(caseload.key_file),
         "--passphrase-file", str(caseload.passphrase_file), "--exports", str(exports)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=\S+", line)
        assert found, line + (proc.stdout.read() if proc.poll() is not None else "")
        assert "Read-only" not in line
        yield found.group(1), found.group(0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def desk_url(served):
    return served[0]


@pytest.fixture(scope="module")
def browser(desk_url):
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def opened(browser, served):
    """A new browser context that has opened the desk's printed address (its
    token exchanged for the run's cookie), and a page in it."""
    def make(lang: str = "en", javascript: bool = False):
        context = browser.new_context(java_script_enabled=javascript, bypass_csp=javascript,
                                      viewport={"width": 1280, "height": 900}, locale=lang,
                                      service_workers="block")
        page = context.new_page()
        assert page.goto(served[1]).status == 200 and "token" not in page.url
        return context, page
    return make


def _count(page) -> int:
    return int(COUNT.match(page.locator("#count").inner_text()).group(1))


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).click()


def test_pages_keep_the_filters_and_the_order(opened, desk_url, caseload):
    context, page = opened()
    try:
        page.goto(desk_url + "/")
        assert _count(page) == 10_000
        assert "page 1 of 200" in page.locator("#count").inner_text()
        page.locator("select[name=language]").select_option("uk")
        page.locator("select[name=sort]").select_option("oldest")
        _submit(page, "form.filters button[type=submit]")
        total = _count(page)
        assert total == caseload.detected["uk"]
        days = []
        for number in (1, 2, 3):
            assert f"page {number} of {-(-total // 50)}" in page.locator("#count").inner_text()
            assert page.locator("table.list tbody tr").count() == 50
            days += page.locator("table.list tbody tr td:first-child").all_inner_texts()
            assert set(page.locator("table.list tbody tr td:nth-child(5)").all_inner_texts()) \
                == {"Ukrainian"}
            with page.expect_navigation():
                page.locator("nav.pages a[rel=next]").first.click()
        assert days == sorted(days) and len(days) == 150
        query = parse_qs(urlparse(page.url).query)
        assert query == {"language": ["uk"], "sort": ["oldest"], "page": ["4"]}
        assert page.locator("select[name=language]").input_value() == "uk"
        assert page.locator("select[name=sort]").input_value() == "oldest"
    finally:
        context.close()


def test_a_ukrainian_search_finds_the_inflected_forms(opened, desk_url, caseload):
    context, page = opened()
    try:
        page.goto(desk_url + "/")
        page.locator("#query").fill("дитина")
        _submit(page, "form.filters button[type=submit]")
        assert _count(page) == len(caseload.child_uk)
        marked = {m.casefold() for m in page.locator("p.snippet mark").all_inner_texts()}
        assert {"дитини", "дітей"} <= marked, marked
        assert marked <= {"дитина", "дитини", "дитину", "дитиною", "діти", "дітей", "дітьми"}
        shown = {href.rsplit("/", 1)[1] for href in page.locator(
            "table.list a[href^='/submission/']").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))")}
        assert len(shown) == 50 and shown <= caseload.child_uk
    finally:
        context.close()


def test_a_thread_with_a_reply_the_team_can_reread(opened, desk_url, caseload):
    witness_id, message = next(iter(caseload.replied.items()))
    context, page = opened()
    try:
        page.goto(f"{desk_url}/witness/{witness_id}")
        submissions = page.locator("li.event-submission").count()
        assert submissions == len(caseload.threads[witness_id])
        assert page.locator("li.event-reply").count() == 1
        assert message not in page.content()
        page.locator("#passphrase").fill(caseload.passphrase_file.read_text().strip())
        _submit(page, "form[action$='/read-replies'] button[type=submit]")
        assert page.locator("pre.reply-text").inner_text() == message
        events = page.locator("ol.thread > li").evaluate_all(
            "items => items.map(li => li.className)")
        assert events[0] == "event-submission" and events.index("event-reply") >= 1
    finally:
        context.close()


def _finished_job(page) -> None:
    for _ in range(600):  # the job runs in the desk's process; the triager reloads
        if "Running:" not in page.locator("#state").inner_text():
            return
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError("the export did not finish within a minute")


def test_a_case_exported_from_the_desk(opened, desk_url, caseload):
    context, page = opened()
    try:
        page.goto(desk_url + "/")
        with page.expect_navigation():
            page.locator("nav.desk a[href='/exports']").click()
        page.locator("select#case").select_option(caseload.case)
        _submit(page, "form[action$='/exports/case'] button[type=submit]")
        _finished_job(page)
        assert page.locator("#state").inner_text().startswith("Done:")
        folder = Path(page.locator("dd.path").inner_text())
        sums = (folder / "SHA256SUMS").read_bytes()
        assert hashlib.sha256(sums).hexdigest() in page.locator("dl.facts").inner_text()
        for line in sums.decode().splitlines():
            digest, name = line.split("  ", 1)
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    finally:
        context.close()


def desk_pages(page, desk_url: str, caseload):
    """Yields (name, page) for every page of the desk, in the context's language."""
    page.goto(desk_url + "/?page=2")
    yield "list", page
    page.goto(desk_url + "/?query=%D0%B4%D0%B8%D1%82%D0%B8%D0%BD%D0%B0&status=new")
    yield "search", page
    submission = page.locator("table.list a[href^='/submission/']").first.get_attribute("href")
    page.goto(desk_url + submission)
    yield "submission", page
    witness_id = next(iter(caseload.replied))
    page.goto(f"{desk_url}/witness/{witness_id}")
    yield "thread", page
    page.locator("#passphrase").fill(caseload.passphrase_file.read_text().strip())
    with page.expect_navigation():
        page.locator("form[action$='/read-replies'] button[type=submit]").click()
    yield "thread, replies opened", page
    page.goto(desk_url + "/exports")
    yield "exports", page
    with page.expect_navigation():
        page.locator("form[action$='/exports/replies'] button[type=submit]").click()
    yield "export job", page
    _finished_job(page)
    yield "export done", page
    page.goto(desk_url + "/nowhere")
    yield "not found", page


@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_nothing_on_any_desk_page(opened, desk_url, caseload, lang):
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    context, page = opened(lang, javascript=True)
    found, seen = {}, []
    try:
        for name, shown in desk_pages(page, desk_url, caseload):
            seen.append(name)
            assert shown.locator("html").get_attribute("lang") == lang, name
            found[name] = audit(shown)
    finally:
        context.close()
    assert len(seen) == 9
    problems = {name: [(v["id"], v["nodes"][:3]) for v in vs] for name, vs in found.items() if vs}
    assert problems == {}
