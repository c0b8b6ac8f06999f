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

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from babel.support import Translations
from nacl import pwhash

from intake.format import teamkeys
from intake.server.store import today

from .conftest import LANGS, ROOT

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WIDTHS = (360, 1280)
BUDGET = 30 * 1024
TOR_BROWSER_LANGUAGE = "en-US"  # what Tor Browser asks for, whatever the witness reads
TESTIMONY = {
    "uk": "Я бачив колону техніки біля школи о шостій ранку.",
    "ru": "Я видел колонну техники у школы в шесть утра.",
    "be": "Я бачыў калону тэхнікі каля школы а шостай раніцы.",
    "en": "I saw a column of vehicles by the school at six in the morning.",
}


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing; `make test` installs it")
    pytest.skip(f"{what} is missing; `make test` installs it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m intake serve` on 127.0.0.1, stopped at the end of the module."""
    base = tmp_path_factory.mktemp("server")
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, _key = teamkeys.generate("team", base / "workstation",
                                  b"correct horse battery staple", cheap)
    keys = base / "keys"
    keys.mkdir()
    pub.rename(keys / "team.pub")
    port = _free_port()
    env = {**os.environ, "INTAKE_DATA_DIR": str(base / "data"), "INTAKE_KEYS_DIR": str(keys),
           "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192"}
    env.pop("INTAKE_CONFIG", None)
    log = base / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url + "/", proc, log)
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
def browser(server):
    """Debian's Chromium, driven by Playwright; closed before the server stops."""
    if not CHROMIUM.exists():
        _missing("Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python (the test extra in pyproject.toml)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


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


def send_testimony(visit: Visit, lang: str, files: list[Path]) -> list[str]:
    """Fills the form, attaches the files, sends it; returns the codename's words."""
    page = visit.page
    page.locator("textarea[name=testimony]").fill(TESTIMONY[lang])
    page.locator("input[type=file][name=files]").set_input_files([str(f) for f in files])
    with page.expect_navigation():
        page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()
    words = page.locator("#codename span").all_inner_texts()
    assert len(words) >= 7 and all(re.fullmatch(r"[a-z-]+", w) for w in words), words
    return words


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
        for name in ("testimony", "files"):
            field_id = form.locator(f"[name={name}]").get_attribute("id")
            assert form.locator(f"label[for='{field_id}']").inner_text().strip()
        assert visit.fits_width()
        form.screenshot(path=artifacts / f"{lang}-{width}-1-form.png", full_page=True)

        before = len(visit.responses)
        visit.goto(server + "/")
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
        login = visit.goto(server + "/login")
        assert login.status == 200 and visit.lang() == lang
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
    visit.goto(f"{server}/?lang={lang}")
    yield "form", page
    words = send_testimony(visit, lang, files)
    yield "receipt", page
    visit.goto(server + "/")
    with page.expect_navigation():
        page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()
    yield "empty submission", page
    visit.goto(server + "/no-such-page")
    yield "not found", page
    assert visit.goto(server + "/login").status == 200
    yield "login", page
    page.locator("input[name=codename]").fill("not my words at all")
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()
    yield "login failed", page
    visit.goto(server + "/login")
    page.locator("input[name=codename]").fill(" ".join(words))
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()
    visit.goto(f"{server}/account?lang={lang}")
    yield "account", page
    with page.expect_navigation():
        page.locator("form[action$='/logout'] button[type=submit]").click()
    yield "logged out", page


@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_no_serious_violation_on_any_witness_page(browser, server, two_files,
                                                            artifacts, lang):
    if not AXE.exists():
        _missing("node_modules/axe-core (npm ci)")
    context, visit = open_visit(browser, width=1280, javascript=True)
    found, seen = {}, []
    try:
        for name, page in witness_pages_in_a_browser(visit, server, lang, two_files):
            seen.append(name)
            assert visit.lang() == lang, name
            found[name] = audit(page)
    finally:
        context.close()
    (artifacts / f"axe-{lang}.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))
    assert {"form", "receipt", "empty submission", "not found"} <= set(seen)
    serious = {name: [v for v in violations if v["impact"] in ("serious", "critical")]
               for name, violations in found.items()}
    assert {name: v for name, v in serious.items() if v} == {}


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
        visit.goto(server + "/?lang=uk")
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
        _missing("node_modules/axe-core (npm ci)")
    context, visit = open_visit(browser, width=800, javascript=True)
    try:
        visit.page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                               '<p style="color:#aaa;background:#bbb">faint</p>'
                               '<form><input name="x"></form></main></html>')
        ids = {v["id"]: v["impact"] for v in audit(visit.page)}
    finally:
        context.close()
    assert ids.get("label") == "critical" and ids.get("color-contrast") == "serious", ids
