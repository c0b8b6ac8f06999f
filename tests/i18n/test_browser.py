"""The witness's journey in a real browser: headless Chromium, JavaScript off.

The real server (`python -m intake serve`) runs on a free 127.0.0.1 port with
temporary data and a team public key. Each language is chosen from the page's
own links, at a phone's width and a laptop's; screenshots go to a temporary
folder (or to $INTAKE_TEST_ARTIFACTS, to keep them). axe-core audits every
witness page; it is injected by this harness alone, into a separate context
where JavaScript is on only for the audit (the pages carry one script of their own,
for resumable uploads: with JavaScript on, the form's files go through it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from babel.support import Translations
from browsers import launched_chromium, missing
from nacl import pwhash
from support import free_port

from intake.format import teamkeys
from intake.server.store import today

from .conftest import LANGS, ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (360, 1280)
BUDGET = 30 * 1024
TOR_BROWSER_LANGUAGE = "en-US"  # what Tor Browser asks for, whatever the witness reads
TESTIMONY = {
    "uk": "Я бачив колону техніки біля школи о шостій ранку.",
    "ru": "Я видел колонну техники у школы в шесть утра.",
    "be": "Я бачыў калону тэхнікі каля школы а шостай раніцы.",
    "en": "I saw a column of vehicles by the school at six in the morning.",
}





def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server stopped (exit {proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)  # polling for readiness, not a correctness wait
    pytest.fail(f"the server did not answer within 60 s:\n{log.read_text()}")


class Served(str):
    """A running server's address, and where its data is."""

    data_dir: Path


@contextlib.contextmanager
def serving(base: Path, **settings: str):
    """`python -m intake serve` on 127.0.0.1 with data under base, stopped at the end."""
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, _key = teamkeys.generate("team", base / "workstation",
                                  b"correct horse battery staple", cheap)
    keys = base / "keys"
    keys.mkdir()
    pub.rename(keys / "team.pub")
    port = free_port()
    env = {**os.environ, "INTAKE_DATA_DIR": str(base / "data"), "INTAKE_KEYS_DIR": str(keys),
           "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192",
           **{f"INTAKE_{k.upper()}": v for k, v in settings.items()}}
    env.pop("INTAKE_CONFIG", None)
    log = base / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = Served(f"http://127.0.0.1:{port}")
    url.data_dir = base / "data"
    try:
        _wait_until_serving(url + "/en/", proc, log)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # gunicorn's quick shutdown
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server, with its default limits."""
    with serving(tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    """Debian's Chromium, driven by Playwright; closed before the server stops."""
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots go: a temporary folder, unless INTAKE_TEST_ARTIFACTS
    names one to keep them in (never the checkout by default)."""
    kept = os.environ.get("INTAKE_TEST_ARTIFACTS")
    if not kept:
        return tmp_path_factory.mktemp("i18n-artifacts")
    folder = Path(kept) / "i18n"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def measured(artifacts):
    """Bytes each page took, written to sizes.json beside the screenshots at the end."""
    sizes: dict[str, int] = {}
    yield sizes
    (artifacts / "sizes.json").write_text(json.dumps(dict(sorted(sizes.items())), indent=1))


def gettext(lang: str, text: str) -> str:
    return Translations.load(str(ROOT / "translations"), [lang]).gettext(text)


@dataclass
class Visit:
    """One browser context's page, with what the server sent it."""

    page: object
    responses: list = field(default_factory=list)

    def goto(self, url: str):
        return self.page.goto(url, wait_until="load")

    def set_cookies(self) -> list[str]:
        return [h["value"] for r in self.responses for h in r.headers_array()
                if h["name"].lower() == "set-cookie"]

    def transferred(self, since: int) -> int:
        """Bytes on the wire (headers and bodies) for responses since index `since`."""
        total = 0
        for response in self.responses[since:]:
            sizes = response.request.sizes()
            total += sizes["responseHeadersSize"] + sizes["responseBodySize"]
        return total

    def lang(self) -> str:
        return self.page.locator("html").get_attribute("lang")

    def fits_width(self) -> bool:
        return self.page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth")


def open_visit(browser, *, width: int, javascript: bool, height: int = 900,
               scale: float = 1) -> tuple[object, Visit]:
    context = browser.new_context(
        java_script_enabled=javascript, bypass_csp=javascript,
        viewport={"width": width, "height": height}, device_scale_factor=scale,
        locale=TOR_BROWSER_LANGUAGE, service_workers="block")
    visit = Visit(context.new_page())
    visit.page.on("response", lambda response: visit.responses.append(response))
    return context, visit


def choose_language(visit: Visit, server: str, lang: str) -> None:
    visit.goto(server + "/")
    assert visit.lang() == "en"  # Tor Browser asks for English
    with visit.page.expect_navigation():
        visit.page.locator(f'nav.languages a[hreflang="{lang}"]').click()
    assert visit.lang() == lang
    assert urlsplit(visit.page.url).path == f"/{lang}/"


def send(page) -> None:
    with page.expect_navigation():
        page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()


def send_testimony(visit: Visit, lang: str, files: list[Path],
                   alphabet: str = "en") -> list[str]:
    """Fills the form, attaches the files (one field each), sends it; returns
    the codename's words."""
    page = visit.page
    page.locator("textarea[name=testimony]").fill(TESTIMONY[lang])
    for n, f in enumerate(files, start=1):
        page.locator(f"#files-{n}").set_input_files(str(f))
    page.locator(f"input[name=alphabet][value={alphabet}]").check()
    send(page)
    words = page.locator("#codename span").all_inner_texts()
    letters = r"[a-z-]+" if alphabet == "en" else r"[а-яіїєґёʼ'-]+"
    assert len(words) >= 7 and all(re.fullmatch(letters, w) for w in words), words
    return words


def counts(server: Served) -> tuple[int, int]:
    """Witnesses and submissions in the server's database."""
    with contextlib.closing(sqlite3.connect(server.data_dir / "intake.db")) as db:
        return (db.execute("select count(*) from witnesses").fetchone()[0],
                db.execute("select count(*) from submissions").fetchone()[0])


@pytest.fixture
def two_files(tmp_path) -> list[Path]:
    notes = tmp_path / "notes.txt"
    notes.write_text("Street, house 12. Three trucks, no plates.\n")
    table = tmp_path / "times.csv"
    table.write_text("time,what\n06:00,trucks\n06:20,soldiers\n")
    return [notes, table]


def assert_session_cookies_only(visit: Visit) -> None:
    for header in visit.set_cookies():
        attrs = {p.strip().split("=", 1)[0].lower() for p in header.split(";")[1:]}
        assert not attrs & {"expires", "max-age"}, header
    for cookie in visit.page.context.cookies():
        assert cookie["expires"] == -1, cookie  # gone when the browser closes


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGS)
def test_witness_sends_testimony(browser, server, artifacts, measured, two_files, lang, width):
    context, visit = open_visit(browser, width=width, javascript=False)
    try:
        choose_language(visit, server, lang)
        form = visit.page
        assert form.locator("button[type=submit]").inner_text() == gettext(lang, "Send securely")
        # Every field has a label that names it.
        for field in form.locator("textarea, input[type=file], input[type=radio]").all():
            field_id = field.get_attribute("id")
            assert form.locator(f"label[for='{field_id}']").inner_text().strip()
        assert form.locator("input[type=file][name=files]").count() >= 5
        assert visit.fits_width()
        form.screenshot(path=artifacts / f"{lang}-{width}-1-form.png", full_page=True)

        before = len(visit.responses)
        visit.goto(f"{server}/{lang}/")
        measured["form"] = max(measured.get("form", 0), visit.transferred(before))
        before = len(visit.responses)
        words = send_testimony(visit, lang, two_files)
        measured["receipt"] = max(measured.get("receipt", 0), visit.transferred(before))
        receipt = visit.page
        assert visit.lang() == lang
        assert receipt.locator("h1").inner_text() == gettext(lang, "Received. Thank you.")
        assert receipt.locator("ul.files li").count() == 2
        assert visit.fits_width()
        receipt.screenshot(path=artifacts / f"{lang}-{width}-2-receipt.png", full_page=True)
        assert len(" ".join(words)) > 20
        assert_session_cookies_only(visit)
        assert max(measured.values()) < BUDGET, measured
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGS)
def test_witness_comes_back_with_the_codename(browser, server, artifacts, two_files,
                                              lang, width):
    context, visit = open_visit(browser, width=width, javascript=False)
    try:
        choose_language(visit, server, lang)
        words = send_testimony(visit, lang, two_files)
        visit.goto(f"{server}/{lang}/")
        with visit.page.expect_navigation():  # the way back, from the landing page
            visit.page.get_by_role("link", name=gettext(lang, "I already have a codename")
                                   ).click()
        assert visit.lang() == lang
        visit.page.locator("input[name=codename]").fill(" ".join(words))
        with visit.page.expect_navigation():
            visit.page.locator("form[action$='/login'] button[type=submit]").click()
        account = visit.page
        account.screenshot(path=artifacts / f"{lang}-{width}-3-account.png", full_page=True)
        assert account.url.endswith("/account")
        days = account.locator("ul.days li").all_inner_texts()
        assert len(days) == 1 and today().isoformat() in days[0], days
        assert visit.fits_width()
        assert visit.lang() == lang, "the language chosen before logging in was lost"
        assert_session_cookies_only(visit)
    finally:
        context.close()


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.map(n => n.target.join(' '))}));
}"""


def audit(page) -> list[dict]:
    """Every violation axe-core finds on the page, whatever its impact."""
    page.add_script_tag(content=AXE.read_text())
    return page.evaluate(AXE_RUN)


def witness_pages_in_a_browser(visit: Visit, server: str, lang: str, files: list[Path]):
    """Yields (name, page) for every witness page, in `lang`."""
    page = visit.page
    visit.goto(f"{server}/{lang}/")
    yield "form", page
    words = send_testimony(visit, lang, files)
    yield "receipt", page
    page.locator("input[name=codename]").fill("not my words at all")
    with page.expect_navigation():
        page.locator("form[action$='/check'] button[type=submit]").click()
    yield "receipt after a typo", page
    page.locator("input[name=codename]").fill(" ".join(words))
    with page.expect_navigation():
        page.locator("form[action$='/check'] button[type=submit]").click()
    yield "receipt confirmed", page
    visit.goto(f"{server}/{lang}/receipt/{'0' * 32}")
    yield "receipt gone", page
    visit.goto(f"{server}/{lang}/")
    send(page)
    yield "empty submission", page
    visit.goto(f"{server}/{lang}/no-such-page")
    yield "not found", page
    assert visit.goto(f"{server}/{lang}/login").status == 200
    yield "login", page
    page.locator("input[name=codename]").fill("not my words at all")
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()
    yield "login failed", page
    page.locator("input[name=codename]").fill(" ".join(words))
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()
    yield "account", page
    page.locator("textarea[name=testimony]").fill(TESTIMONY[lang])
    send(page)
    yield "follow-up received", page
    visit.goto(f"{server}/{lang}/account")
    with page.expect_navigation():
        page.locator("form[action$='/logout'] button[type=submit]").click()
    yield "logged out", page


@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_no_violation_on_any_witness_page(browser, server, two_files,
                                                            artifacts, lang):
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    context, visit = open_visit(browser, width=1280, javascript=True)
    found, seen = {}, []
    try:
        for name, page in witness_pages_in_a_browser(visit, server, lang, two_files):
            seen.append(name)
            assert visit.lang() == lang, name
            ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
            assert len(ids) == len(set(ids)), (name, ids)  # each id once
            found[name] = audit(page)
    finally:
        context.close()
    (artifacts / f"axe-{lang}.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))
    assert {"form", "receipt", "receipt after a typo", "empty submission", "not found",
            "login failed", "account", "follow-up received", "logged out"} <= set(seen)
    assert {name: v for name, v in found.items() if v} == {}  # none, whatever the impact


@pytest.mark.parametrize(("width", "height", "scale"), [
    (320, 640, 1),   # the narrowest phone
    (640, 450, 2),   # a 1280 x 900 window at 200 % zoom
])
def test_pages_fit_narrow_screens_and_zoom_without_javascript(browser, server, two_files,
                                                              artifacts, width, height, scale):
    context, visit = open_visit(browser, width=width, height=height, scale=scale,
                                javascript=False)
    try:
        for lang in ("uk", "be"):  # the longest words of the four
            for name, page in witness_pages_in_a_browser(visit, server, lang, two_files):
                assert visit.fits_width(), f"{name} ({lang}) scrolls sideways at {width}px"
                if name == "form":
                    page.screenshot(path=artifacts / f"{lang}-{width}x{scale}-zoom.png",
                                    full_page=True)
    finally:
        context.close()


def test_focus_is_visible_and_the_skip_link_appears(browser, server):
    context, visit = open_visit(browser, width=360, javascript=False)
    try:
        visit.goto(server + "/uk/")
        page = visit.page
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => {
          const el = document.activeElement, style = getComputedStyle(el);
          const box = el.getBoundingClientRect();
          return {cls: el.className, outline: style.outlineStyle,
                  width: parseFloat(style.outlineWidth), top: box.top, height: box.height};
        }""")
        assert focused["cls"] == "skip"
        assert focused["outline"] != "none" and focused["width"] >= 2
        assert focused["top"] >= 0 and focused["height"] > 0  # on screen once focused
        for _ in range(6):
            page.keyboard.press("Tab")
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", page.evaluate("document.activeElement.outerHTML")
    finally:
        context.close()


def test_the_audit_finds_what_it_should(browser):
    """The harness is not vacuous: a field without a label and grey-on-grey text fail."""
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    context, visit = open_visit(browser, width=800, javascript=True)
    try:
        visit.page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                               '<p style="color:#aaa;background:#bbb">faint</p>'
                               '<form><input name="x"></form></main></html>')
        ids = {v["id"]: v["impact"] for v in audit(visit.page)}
    finally:
        context.close()
    assert ids.get("label") == "critical" and ids.get("color-contrast") == "serious", ids


# -- the way back, one submission per form, the language in the address, limits ----------

BOTH = ("uk", "en")  # each proof in Ukrainian as well as English


def sign_in(visit: Visit, typed: str) -> None:
    page = visit.page
    field = page.locator("input[name=codename]")
    # A plain text field: the witness sees what they type, with no script.
    assert field.get_attribute("type") == "text"
    assert field.get_attribute("autocomplete") == "off"
    field.fill(typed)
    assert field.input_value() == typed
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()


@pytest.mark.parametrize("lang", BOTH)
def test_the_way_back_is_found_from_the_landing_page(browser, server, two_files, lang):
    alphabet = "uk" if lang == "uk" else "en"
    context, visit = open_visit(browser, width=360, javascript=False)
    try:
        choose_language(visit, server, lang)
        assert visit.page.locator("input[name=alphabet]:checked").get_attribute("value") \
            == alphabet  # the page's language chooses the words
        words = send_testimony(visit, lang, two_files[:1], alphabet)
        help_text = visit.page.locator(".codename-help").inner_text()
        assert gettext(lang, "How to write your codename down") in help_text
        # Later, a new visit: the landing page, then the link in the witness's language.
        visit.page.context.clear_cookies()
        choose_language(visit, server, lang)
        link = visit.page.get_by_role("link", name=gettext(lang, "I already have a codename"))
        assert link.count() == 1
        with visit.page.expect_navigation():
            link.click()
        assert visit.lang() == lang and visit.page.url.endswith(f"/{lang}/login")
        sign_in(visit, "not my codename at all")
        error = visit.page.locator("p.error").inner_text()
        assert error == gettext(lang, "That codename did not work. Check each word on your "
                                      "paper and try again. The words must be in the same "
                                      "order.")
        assert visit.lang() == lang
        # Typed carelessly: capitals, hyphens, no spaces, look-alike letters.
        typed = "-".join(words).upper()
        if lang == "uk":
            typed = "".join(words).upper().replace("А", "A").replace("О", "O")
        sign_in(visit, typed)
        assert visit.page.url.endswith(f"/{lang}/account"), visit.page.url
        assert visit.lang() == lang
    finally:
        context.close()


@pytest.mark.parametrize("lang", BOTH)
def test_reload_and_retry_send_nothing_twice(browser, server, two_files, lang):
    context, visit = open_visit(browser, width=1280, javascript=False)
    try:
        visit.goto(f"{server}/{lang}/")
        page = visit.page
        before = counts(server)
        # A flaky circuit: the same POST, body and cookie, arrives twice; the
        # browser sees the answer to the second.
        seen = []

        def twice(route):
            first = route.fetch(max_redirects=0)
            second = route.fetch(max_redirects=0)
            seen.extend([first.status, first.headers.get("location"),
                         second.status, second.headers.get("location")])
            route.fulfill(response=second)

        page.route("**/submit", twice)
        words = send_testimony(visit, lang, two_files)
        page.unroute("**/submit")
        assert seen[0] == seen[2] == 303 and seen[1] == seen[3], seen  # the same receipt
        assert counts(server) == (before[0] + 1, before[1] + 1)
        receipt_url = page.url
        assert re.search(rf"/{lang}/receipt/[0-9a-f]{{32}}$", receipt_url)
        # Reloading the receipt shows the same codename and sends nothing.
        page.reload()
        assert page.url == receipt_url
        assert page.locator("#codename span").all_inner_texts() == words
        assert counts(server) == (before[0] + 1, before[1] + 1)
        # Back to the form and forward again: still nothing new.
        page.go_back()
        page.go_forward()
        assert counts(server) == (before[0] + 1, before[1] + 1)
        # A follow-up, retried the same way, joins once.
        page.locator("input[name=codename]").fill(" ".join(words))
        with page.expect_navigation():
            page.locator("form[action$='/check'] button[type=submit]").click()
        visit.goto(f"{server}/{lang}/login")
        sign_in(visit, " ".join(words))
        page.route("**/account/add", twice)
        page.locator("textarea[name=testimony]").fill(TESTIMONY[lang])
        send(page)
        page.unroute("**/account/add")
        page.reload()
        assert counts(server) == (before[0] + 1, before[1] + 2)
        assert page.locator("h1").inner_text() == gettext(lang, "Received. Thank you.")
    finally:
        context.close()


@pytest.mark.parametrize("lang", BOTH)
def test_a_typo_in_the_check_keeps_the_codename(browser, server, two_files, lang):
    context, visit = open_visit(browser, width=360, javascript=False)
    try:
        visit.goto(f"{server}/{lang}/")
        words = send_testimony(visit, lang, two_files[:1])
        page = visit.page
        # The receipt has each id once.
        ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
        assert len(ids) == len(set(ids)), ids
        typo = " ".join(words[:-1] + [words[-1][:-1]])
        page.locator("input[name=codename]").fill(typo)
        with page.expect_navigation():
            page.locator("form[action$='/check'] button[type=submit]").click()
        assert page.locator("#codename span").all_inner_texts() == words  # still there
        said = page.locator("[role=alert]").inner_text()
        assert said == gettext(lang, "What you typed did not match your codename. Compare it "
                                     "with the words above, word by word, correct your "
                                     "paper, and try again.")
        page.reload()  # said once; the codename stays
        assert page.locator("[role=alert]").count() == 0
        assert page.locator("#codename span").all_inner_texts() == words
        page.locator("input[name=codename]").fill(" ".join(words))
        with page.expect_navigation():
            page.locator("form[action$='/check'] button[type=submit]").click()
        assert page.locator("#codename").count() == 0  # confirmed: no longer shown
        assert page.locator("[role=status]").inner_text() == gettext(
            lang, "It matches: you wrote your codename down correctly. It is no longer "
                  "shown here.")
    finally:
        context.close()


@pytest.mark.parametrize("lang", BOTH)
def test_the_language_outlives_cleared_cookies(browser, server, lang):
    context, visit = open_visit(browser, width=360, javascript=False)
    try:
        choose_language(visit, server, lang)
        page = visit.page
        page.locator("textarea[name=testimony]").fill(TESTIMONY[lang])
        context.clear_cookies()  # Tor Browser's "New Identity", or its cookie rules
        send(page)
        assert visit.lang() == lang
        assert page.locator("h1").inner_text() == gettext(lang, "The form has expired")
        with page.expect_navigation():
            page.get_by_role("link", name=gettext(lang, "Back to the start")).click()
        assert visit.lang() == lang and page.url.endswith(f"/{lang}/")
        context.clear_cookies()
        page.reload()
        assert visit.lang() == lang
    finally:
        context.close()


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server with small limits, so each can be passed in a test."""
    with serving(tmp_path_factory.mktemp("small"), max_upload="64KiB",
                 max_testimony_chars="1000", max_files="3") as url:
        yield url


@pytest.mark.parametrize("lang", BOTH)
def test_each_refusal_names_the_one_limit_passed(browser, small_server, tmp_path, lang):
    limits = {"text": "1" + ("\u00a0" if lang != "en" else ",") + "000",
              "files": "3", "size": "64 KiB" if lang == "en" else gettext(lang, "%(number)s KiB")
              % {"number": "64"}}
    small = []
    for n in range(4):
        small.append(tmp_path / f"note{n}.txt")
        small[-1].write_text(f"note {n}\n")
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(100 * 1024))
    written = "Я бачила колону <о шостій> & автобуси.\nДругий рядок."
    context, visit = open_visit(browser, width=360, javascript=False)
    try:
        page = visit.page
        visit.goto(f"{small_server}/{lang}/")
        stated = page.locator("#limits").inner_text()
        for shown in limits.values():  # the form states all three
            assert shown in stated, (shown, stated)
        cases = {
            "text": lambda: page.locator("textarea[name=testimony]").fill("x" * 1001),
            "files": lambda: (page.locator("textarea[name=testimony]").fill(written),
                              page.locator("#files-1").set_input_files(
                                  [str(f) for f in small])),
            "size": lambda: page.locator("#files-1").set_input_files(str(large)),
        }
        before = counts(small_server)
        for limit, fill in cases.items():
            visit.goto(f"{small_server}/{lang}/")
            fill()
            send(page)
            assert visit.lang() == lang, limit
            said = page.locator("p.error").inner_text()
            assert limits[limit] in said, (limit, said)
            for other, shown in limits.items():
                if other != limit:
                    assert shown not in said, (limit, other, said)
            # What was written comes back to be copied (a file too large is
            # refused before the form is read: its page has nothing to give).
            typed = {"text": "x" * 1001, "files": written}.get(limit)
            assert (page.locator("#typed").input_value() if typed else None) == typed, limit
        assert counts(small_server) == before  # nothing kept
    finally:
        context.close()


def test_the_new_controls_work_by_keyboard(browser, server):
    context, visit = open_visit(browser, width=320, javascript=False)
    try:
        visit.goto(server + "/uk/")
        page = visit.page
        assert visit.fits_width()
        # The way back is reached with Tab and followed with Enter.
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.getAttribute('href')") == "/uk/login":
                break
        else:
            raise AssertionError("the way back is not reachable by Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/uk/login")
        # On the form: the words of the codename change with the arrow keys.
        visit.goto(server + "/uk/")
        page.locator("input[name=alphabet][value=uk]").focus()
        page.keyboard.press("ArrowDown")
        assert page.locator("input[name=alphabet]:checked").get_attribute("value") == "ru"
        # Each file field is reached by Tab, in order.
        page.locator("#testimony").focus()
        reached = []
        for _ in range(8):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.id"))
        assert [i for i in reached if i.startswith("files-")][:5] == \
            [f"files-{n}" for n in range(1, 6)], reached
    finally:
        context.close()
