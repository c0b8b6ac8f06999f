"""Every page of the desk in a real browser, in the four languages, JavaScript off.

A small vault is filled the way a team fills one: submissions sent through
the intake server's own form (a testimony with a picture and a text file,
a follow-up, more than one page of the list), exported as a bundle and
imported with `intake vault import`; a reply written and a case made with
the vault's commands. `intake vault serve --key` serves it on a free loopback
port and each browser context opens the address it printed. The language is
chosen from the desk's own links. axe-core audits each page (every impact
counts), injected by this harness alone into a context where JavaScript is on
only for the audit; the same pages at 320 px, JavaScript off, must not scroll
sideways, must have unique ids, must be walked with Tab with a visible focus
everywhere, and must show no English sentence in another language.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from browsers import launched_chromium, missing
from i18n.page_checks import (
    duplicate_ids,
    english_left,
    fits_width,
    keyboard_problems,
    screenshots,
)
from i18n.test_browser import AXE, audit
from test_triage_pages import picture
from vault_helpers import PASSPHRASE, Desk, make_server, make_team
from werkzeug.serving import make_server as wsgi_server

from intake.workstation.jobs import Jobs
from intake.workstation.replies import ReplyError

LANGS = ("uk", "ru", "be", "en")
REPLY = "Дякуємо. Чи можете надіслати ще фото?"
MORE = 55  # past the list's 50 a page


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    """A vault filled through the server's form and the vault's own commands:
    (desk, the rich submission's id, its witness's id)."""
    root = tmp_path_factory.mktemp("desk-pages")
    team = make_team(root, "team")
    server = make_server(root, team)
    desk = Desk(root / "vault", team)
    try:
        first = server.submit("Бачив колону техніки біля школи. Дитина плакала.",
                              files=[(picture(7), "roof.jpg"),
                                     (b"Street, house 12. Three trucks.\n", "notes.txt")])
        server.submit_again(first.witness_id, "Ще одне: вони повернулися ввечері.")
        for n in range(MORE):
            server.submit(f"Testimony number {n}: trucks by the river at dawn.")
        desk.import_(server.export(root / "bundle.tar"))
    finally:
        server.close()
    desk.run("reply", first.submission_id, input=REPLY)
    desk.run("case-add", "school", first.submission_id)
    return desk, first.submission_id, first.witness_id


@contextmanager
def serving(desk: Desk, *args: str):
    """`intake vault serve` over the vault: the address it printed, with its token."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "intake", "vault", "serve", "--vault", str(desk.root),
         "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        assert found, line + (proc.stdout.read() if proc.poll() is not None else "")
        yield found.group(0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def served(vault, tmp_path_factory):
    """`intake vault serve --key`, as a triager who changes things starts it."""
    desk = vault[0]
    exports = tmp_path_factory.mktemp("desk-pages-exports")
    with serving(desk, *desk.key_args(), "--exports", str(exports)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(served):
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return screenshots(tmp_path_factory, "desk")


def _open(browser, served: str, width: int, javascript: bool):
    context = browser.new_context(java_script_enabled=javascript, bypass_csp=javascript,
                                  viewport={"width": width, "height": 800}, locale="en-US",
                                  service_workers="block")
    page = context.new_page()
    assert page.goto(served).status == 200 and "token" not in page.url
    return context, page


def _click(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).first.click()


def _finished(page) -> None:
    for _ in range(600):  # the job runs in the desk's process; the triager reloads
        if page.locator("#state").get_attribute("role") == "alert" or \
                page.locator("progress").count() == 0:
            return
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError("the export did not finish within a minute")


def desk_pages(page, base: str, lang: str, submission_id: str, witness_id: str):
    """Yields (name, page) for every page of the desk, in `lang`."""
    assert page.locator("html").get_attribute("lang") == "en"  # the browser asks for English
    _click(page, f'nav.languages a[hreflang="{lang}"]')
    yield "list", page
    _click(page, "nav.pages a[rel=next]")
    assert "page=2" in page.url
    yield "list, second page", page
    page.locator("#query").fill("дитина")
    _click(page, "form.filters button[type=submit]")
    yield "search", page
    page.goto(base + "/?query=zzzzzz&status=closed", wait_until="load")
    yield "nothing matches", page
    page.goto(f"{base}/submission/{submission_id}", wait_until="load")
    yield "submission", page
    # A form made before another tab saved: refused, with both sets of values.
    page.locator("#triage-form input[name=version]").evaluate(
        "input => { input.value = 'older'; }")
    page.locator("#triage-form input[name=assignee]").fill("Олена")
    _click(page, "#triage-form button[type=submit]")
    assert page.locator("#triage-form input[name=assignee]").input_value() == "Олена"
    yield "triage saved in another tab", page
    # Refusals of the other forms: the same page, the reason linked to the
    # field, what was typed still in it.
    page.goto(f"{base}/submission/{submission_id}", wait_until="load")
    page.locator("#case").fill("Школа\u200b№5")
    _click(page, "form[action$='/case'] button[type=submit]")
    assert "Школа" in page.locator("#case").input_value()
    assert page.locator('[role=alert] a[href="#case"]').count() == 1
    yield "case name refused", page
    # As a browser that does not stop the typing at maxlength sends it.
    page.locator("#message").evaluate(
        "area => { area.value = 'Дякуємо. ' + 'д'.repeat(20000); }")
    _click(page, "form[action$='/reply'] button[type=submit]")
    assert page.locator("#message").input_value().startswith("Дякуємо. ддд")
    assert page.locator('[role=alert] a[href="#message"]').count() == 1
    yield "reply refused", page
    # More than the desk takes in one request: a page that says so.
    page.locator("#triage-form input[name=tags]").evaluate(
        "input => { input.value = 'т'.repeat(1024 * 1024); }")
    with page.expect_navigation() as answered:
        page.locator("#triage-form button[type=submit]").click()
    assert answered.value.status == 413
    assert "(1 " in page.locator("p.error").inner_text()  # the limit, in the page's units
    yield "too large", page
    page.goto(f"{base}/witness/{witness_id}", wait_until="load")
    yield "thread", page
    page.locator("#message").fill("   ")
    _click(page, "form[action$='/reply'] button[type=submit]")
    assert page.locator("#message").input_value() == "   "
    assert page.locator('[role=alert] a[href="#message"]').count() == 1
    yield "thread, reply refused", page
    page.locator("#passphrase").fill("not the passphrase")
    _click(page, "form[action$='/read-replies'] button[type=submit]")
    yield "thread, wrong passphrase", page
    page.locator("#passphrase").fill(PASSPHRASE)
    _click(page, "form[action$='/read-replies'] button[type=submit]")
    assert page.locator("pre.reply-text").inner_text() == REPLY
    yield "thread, replies opened", page
    page.goto(base + "/exports", wait_until="load")
    yield "exports", page
    _click(page, "form[action$='/exports/case'] button[type=submit]")
    _finished(page)
    yield "case exported", page
    page.goto(base + "/exports", wait_until="load")
    _click(page, "form[action$='/exports/replies'] button[type=submit]")
    _finished(page)
    yield "replies exported", page
    page.goto(base + "/exports", wait_until="load")
    yield "exports with jobs", page
    page.goto(f"{base}/submission/{submission_id}", wait_until="load")
    # A form kept open across a restart of the desk: its token no longer holds.
    page.locator("form[action$='/note'] input[name=csrf_token]").evaluate(
        "input => { input.value = 'stale'; }")
    page.locator("#note").fill("seen")
    _click(page, "form[action$='/note'] button[type=submit]")
    yield "form expired", page
    page.goto(base + "/nowhere", wait_until="load")
    yield "not found", page


PAGES = 19


@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_nothing_on_any_desk_page_in_each_language(browser, served, vault, lang):
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    _desk, submission_id, witness_id = vault
    context, page = _open(browser, served, 1280, javascript=True)
    found = {}
    try:
        for name, shown in desk_pages(page, served.split("/?")[0], lang, submission_id,
                                      witness_id):
            assert shown.locator("html").get_attribute("lang") == lang, name
            found[name] = audit(shown)
    finally:
        context.close()
    assert len(found) == PAGES
    problems = {name: [(v["id"], v["impact"], v["nodes"][:3]) for v in vs]
                for name, vs in found.items() if vs}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("lang", LANGS)
def test_desk_pages_at_320_px_by_keyboard_in_each_language(browser, served, vault, lang,
                                                           artifacts):
    _desk, submission_id, witness_id = vault
    context, page = _open(browser, served, 320, javascript=False)
    problems, seen = {}, []
    try:
        for name, shown in desk_pages(page, served.split("/?")[0], lang, submission_id,
                                      witness_id):
            seen.append(name)
            assert shown.locator("html").get_attribute("lang") == lang, name
            shown.screenshot(path=artifacts / f"{lang}-320-{name.replace(' ', '-')}.png",
                             full_page=True)
            found = [f"duplicate id {i}" for i in duplicate_ids(shown)]
            if not fits_width(shown):
                found.append("scrolls sideways at 320 px")
            found += keyboard_problems(shown)
            found += [f"left in English: {s!r}" for s in english_left(shown, lang)]
            if found:
                problems[name] = found
        assert len(seen) == PAGES
    finally:
        context.close()
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)


def test_the_language_chosen_stays_sizes_speak_it_and_testimony_says_its_own(browser, served,
                                                                           vault):
    _desk, submission_id, witness_id = vault
    context, page = _open(browser, served, 1280, javascript=False)
    base = served.split("/?")[0]
    try:
        _click(page, 'nav.languages a[hreflang="be"]')
        page.goto(f"{base}/witness/{witness_id}", wait_until="load")
        assert page.locator("html").get_attribute("lang") == "be"
        assert page.locator('nav.languages a[aria-current="true"]').get_attribute(
            "hreflang") == "be"
        sizes = page.locator("ul.files li").all_inner_texts()
        assert sizes and all(re.search(r"\((\d+ байт\w*|[\d,]+ КіБ)\)", s) for s in sizes), \
            sizes
        page.goto(f"{base}/exports", wait_until="load")
        assert page.locator("html").get_attribute("lang") == "be"
        # The testimony says which language it is in, whatever the page's.
        page.goto(f"{base}/submission/{submission_id}", wait_until="load")
        assert page.locator("section.item-testimony pre.text").get_attribute("lang") == "uk"
        page.goto(f"{base}/?query=%D0%B4%D0%B8%D1%82%D0%B8%D0%BD%D0%B0", wait_until="load")
        assert page.locator("p.snippet").first.get_attribute("lang") == "uk"
    finally:
        context.close()


def _checked(page, lang: str, default_ring: bool = False) -> list[str]:
    found = [f"duplicate id {i}" for i in duplicate_ids(page)]
    if not fits_width(page):
        found.append("scrolls sideways at 320 px")
    return found + keyboard_problems(page, default_ring) + [
        f"left in English: {s!r}" for s in english_left(page, lang)]


@pytest.mark.parametrize("lang", LANGS)
def test_refusals_in_each_language(browser, served, vault, lang):
    """A browser that did not open the printed address, and a desk started
    without the team key asked to change something: each refusal is a page
    in the browser's language that passes the same checks."""
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    desk, submission_id, _witness = vault
    base = served.split("/?")[0]
    problems = {}
    for javascript, width in ((True, 1280), (False, 320)):
        stranger = browser.new_context(java_script_enabled=javascript, bypass_csp=javascript,
                                       viewport={"width": width, "height": 800}, locale=lang)
        try:
            page = stranger.new_page()
            assert page.goto(base + "/").status == 403
            assert page.locator("html").get_attribute("lang") == lang
            # Nothing but the refusal reaches this browser, its stylesheets neither:
            # the browser's own focus ring is what it shows.
            name = "not opened" + (" (axe)" if javascript else "")
            problems[name] = audit(page) if javascript else _checked(page, lang,
                                                                      default_ring=True)
        finally:
            stranger.close()
    with serving(desk) as read_only:
        for javascript, width in ((True, 1280), (False, 320)):
            context, page = _open(browser, read_only, width, javascript)
            try:
                _click(page, f'nav.languages a[hreflang="{lang}"]')
                page.goto(f"{read_only.split('/?')[0]}/submission/{submission_id}",
                          wait_until="load")
                page.locator("#note").fill("seen")
                with page.expect_navigation():
                    page.locator("form[action$='/note'] button[type=submit]").click()
                assert page.locator("html").get_attribute("lang") == lang
                assert "intake vault serve --key" in page.locator("p.error").inner_text()
                name = "without the key" + (" (axe)" if javascript else "")
                problems[name] = audit(page) if javascript else _checked(page, lang)
            finally:
                context.close()
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)


def test_a_running_export_and_a_failed_one_in_each_language(browser, vault, tmp_path):
    """The job page while an export runs, and after one failed: states too
    brief to catch in a real export, held here by exports that wait and that
    fail, in the desk's own app on a loopback port."""
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    desk = vault[0]
    app = desk.app(exports_dir=tmp_path)
    jobs = app.extensions.setdefault("intake.jobs", Jobs())
    release = threading.Event()

    def slow(job):
        job.progress(3, 10)
        release.wait(120)

    def broken(job):
        job.progress(1, 10)
        raise ReplyError("%(file)s exists already; choose another name", file="replies.tar")

    running, failed = jobs.start("case", "school", slow), jobs.start("replies", "", broken)
    server = wsgi_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    problems = {}
    try:
        for lang in LANGS:
            for javascript, width in ((True, 1280), (False, 320)):
                context = browser.new_context(java_script_enabled=javascript,
                                              bypass_csp=javascript, locale="en-US",
                                              viewport={"width": width, "height": 800})
                try:
                    page = context.new_page()
                    for name, job in (("running", running), ("failed", failed)):
                        page.goto(f"{base}/exports/{job.job_id}?lang={lang}")
                        assert page.locator("html").get_attribute("lang") == lang
                        if name == "running":
                            assert page.locator("progress").get_attribute("value") == "3"
                        else:
                            # The reason in the page's language, the file's name as it is.
                            reason = page.locator("#state").inner_text()
                            assert "replies.tar" in reason
                            assert (lang == "en") == ("exists already" in reason)
                        key = f"{name}, {lang}" + (" (axe)" if javascript else "")
                        problems[key] = audit(page) if javascript else _checked(page, lang)
                finally:
                    context.close()
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
