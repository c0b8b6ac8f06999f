"""The staff pages in a real browser, in the four languages, JavaScript off.

`python -m intake staff serve` runs on a free 127.0.0.1 port over a data
folder filled beforehand through the server's own code: more submissions
than one page of the queue holds, some already downloaded, a witness with a
reply waiting, and staff accounts with their TOTP secrets (pyotp makes the
codes). Each walk logs in with a fresh account (a TOTP code counts once) and
visits every staff page in one language, chosen from the page's own links.
axe-core audits each page (every impact counts), injected by this harness
alone into a context where JavaScript is on only for the audit; the same
pages at 320 px, JavaScript off, must not scroll sideways, must have unique
ids, must be walked with Tab with a visible focus everywhere, and must show
no English sentence in another language.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from browsers import launched_chromium, missing
from nacl import pwhash
from support import free_port

from intake.format import teamkeys
from intake.format.reply_bundle import entry_for, iter_reply_bundle

from .conftest import LANGS, codename_of, submit
from .page_checks import (
    duplicate_ids,
    english_left,
    fits_width,
    keyboard_problems,
    screenshots,
)
from .test_browser import (
    AXE,
    _wait_until_serving,
    audit,
)

PASSWORD = "seven long words for the staff member"
ACCOUNTS = 12
SUBMISSIONS = 70  # more than the queue's 50 a page


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A filled data folder, then the staff app serving it: (address, accounts, bundle)."""
    from support import make_config
    from test_returning import seal_reply

    from intake.server.queue import export
    from intake.server.receive import receive
    from intake.server.staff.accounts import add
    from intake.server.store import new_id
    from intake.server.witness import create_app

    base = tmp_path_factory.mktemp("staff")
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, _key = teamkeys.generate("team", base / "workstation",
                                  b"correct horse battery staple", cheap)
    keys = base / "keys"
    keys.mkdir()
    pub.rename(keys / "team.pub")
    config = make_config(base, keys)
    witness_app = create_app(config)
    intake = witness_app.extensions["intake"]
    try:
        code = codename_of(submit(witness_app.test_client(), "The first testimony").text)
        for n in range(SUBMISSIONS):
            receive(intake, f"Testimony number {n}", [], keep_originals=False)
        export(intake, base / "bundle.tar")  # all of those are now downloaded
        for n in range(3):
            receive(intake, f"Still new {n}", [], keep_originals=False)
        rid, wid, env = seal_reply(witness_app, code, "Can you send the document?")
        bundle = base / "replies.tar"
        bundle.write_bytes(b"".join(iter_reply_bundle("2026-01-01",
                                                      [(entry_for(rid, wid, env), env)])))
        # A reply for a witness this server does not know: refused by name.
        stray = base / "stray.tar"
        stray.write_bytes(b"".join(iter_reply_bundle(
            "2026-01-01", [(entry_for(new_id(), "f" * 32, env), env)])))
        accounts = [(f"staff{n}", add(intake.db, f"staff{n}", PASSWORD, 1, 8192,
                                      admin=True).totp_secret) for n in range(ACCOUNTS)]
        members = [(f"member{n}", add(intake.db, f"member{n}", PASSWORD, 1, 8192,
                                      admin=False).totp_secret) for n in range(2 * len(LANGS))]
    finally:
        intake.close()

    port = free_port()
    env = {**os.environ, "INTAKE_DATA_DIR": str(config.data_dir),
           "INTAKE_KEYS_DIR": str(keys), "INTAKE_KDF_OPSLIMIT": "1",
           "INTAKE_KDF_MEMLIMIT": "8192"}
    env.pop("INTAKE_CONFIG", None)
    log = base / "staff.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake", "staff", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url + "/login", proc, log)
        yield url, accounts, (bundle, stray), members
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(site):
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return screenshots(tmp_path_factory, "staff")


@pytest.fixture(scope="module")
def account(site):
    """Hands out the next unused staff account: (name, TOTP)."""
    left = list(site[1])

    def take():
        name, secret = left.pop(0)
        return name, pyotp.TOTP(secret)
    return take


@pytest.fixture(scope="module")
def member(site):
    """Hands out the next unused account that is not an administrator."""
    left = list(site[3])

    def take():
        name, secret = left.pop(0)
        return name, pyotp.TOTP(secret)
    return take


def _click(page, selector: str) -> None:
    with page.expect_navigation():
        page.locator(selector).first.click()


def staff_pages(page, url: str, lang: str, account, bundles: tuple[Path, Path]):
    """Yields (name, page) for every staff page, in `lang`."""
    page.goto(url + "/login", wait_until="load")
    assert page.locator("html").get_attribute("lang") == "en"  # Tor Browser asks for English
    _click(page, f'nav.languages a[hreflang="{lang}"]')
    yield "login", page
    page.locator("#name").fill("nobody")
    page.locator("#password").fill("not the password at all")
    page.locator("#code").fill("123456")
    _click(page, "form[action^='/login'] button[type=submit]")
    yield "login failed", page

    _log_in(page, url, lang, account)
    yield "queue", page
    page.locator("select[name=state]").select_option("exported")
    page.locator("select[name=sort]").select_option("newest")
    _click(page, "form.filters button[type=submit]")
    _click(page, "nav.pages a[rel=next]")
    assert "page=2" in page.url
    yield "queue, second page", page
    _click(page, "table a.sid")
    assert "witness=" in page.url
    yield "queue of one witness", page
    page.goto(url + "/?day_from=2000-01-01&day_to=2000-01-02", wait_until="load")
    yield "queue, nothing matches", page

    page.goto(url + "/?state=exported", wait_until="load")
    page.locator("table input[type=checkbox]").first.check()
    _click(page, "button[formaction$='/delete']")
    yield "confirm delete", page
    page.goto(url + "/?state=waiting", wait_until="load")
    page.locator("table input[type=checkbox]").first.check()
    _click(page, "button[formaction$='/delete']")
    yield "delete refused", page

    page.goto(url + "/replies", wait_until="load")
    yield "replies", page
    bundle, stray = bundles
    page.locator("#bundle").set_input_files(str(bundle))
    _click(page, "form[enctype='multipart/form-data'] button[type=submit]")
    yield "replies uploaded", page
    page.locator("#bundle").set_input_files(str(stray))
    _click(page, "form[enctype='multipart/form-data'] button[type=submit]")
    assert page.locator("ul.rejected li").count() == 1
    yield "a reply rejected", page
    page.locator("#bundle").set_input_files({"name": "x.tar", "mimeType": "application/x-tar",
                                             "buffer": b"not a tar"})
    _click(page, "form[enctype='multipart/form-data'] button[type=submit]")
    yield "replies refused", page

    page.goto(url + "/audit", wait_until="load")
    yield "audit", page
    page.goto(url + "/nowhere", wait_until="load")
    yield "not found", page
    page.goto(url + "/", wait_until="load")
    _click(page, "form[action$='/logout'] button[type=submit]")
    assert page.url.endswith("/login")
    yield "logged out", page


PAGES = 15


def _log_in(page, url: str, lang: str, account) -> None:
    page.goto(f"{url}/login?lang={lang}", wait_until="load")
    name, totp = account()
    page.locator("#name").fill(name)
    page.locator("#password").fill(PASSWORD)
    page.locator("#code").fill(totp.now())
    _click(page, "form[action^='/login'] button[type=submit]")
    assert page.url == url + "/", page.url


def _context(browser, width: int, javascript: bool):
    return browser.new_context(java_script_enabled=javascript, bypass_csp=javascript,
                               viewport={"width": width, "height": 800}, locale="en-US",
                               service_workers="block")


@pytest.mark.parametrize("lang", LANGS)
def test_axe_finds_nothing_on_any_staff_page(browser, site, account, lang):
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    url, _accounts, bundle, _members = site
    context = _context(browser, 1280, javascript=True)
    found = {}
    try:
        for name, page in staff_pages(context.new_page(), url, lang, account, bundle):
            assert page.locator("html").get_attribute("lang") == lang, name
            found[name] = audit(page)
    finally:
        context.close()
    assert len(found) == PAGES
    problems = {name: [(v["id"], v["impact"], v["nodes"][:3]) for v in vs]
                for name, vs in found.items() if vs}
    assert problems == {}


@pytest.mark.parametrize("lang", LANGS)
def test_staff_pages_at_320_px_by_keyboard_in_each_language(browser, site, account, lang,
                                                            artifacts):
    url, _accounts, bundle, _members = site
    context = _context(browser, 320, javascript=False)
    problems, seen = {}, []
    try:
        for name, page in staff_pages(context.new_page(), url, lang, account, bundle):
            seen.append(name)
            assert page.locator("html").get_attribute("lang") == lang, name
            found = [f"duplicate id {i}" for i in duplicate_ids(page)]
            page.screenshot(path=artifacts / f"{lang}-320-{name.replace(' ', '-')}.png",
                            full_page=True)
            if not fits_width(page):
                found.append("scrolls sideways at 320 px")
            found += keyboard_problems(page)
            found += [f"left in English: {s!r}" for s in english_left(page, lang)]
            if found:
                problems[name] = found
        assert len(seen) == PAGES
    finally:
        context.close()
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)


def test_sizes_and_the_audit_log_speak_the_language(browser, site, account):
    """Sizes in the queue and what the log records (a login, a download...) are
    shown in the reader's words, not as stored."""
    url, _accounts, bundle, _members = site
    context = _context(browser, 1280, javascript=False)
    try:
        for name, page in staff_pages(context.new_page(), url, "uk", account, bundle):
            if name == "queue":
                sizes = page.locator("table tbody td:nth-child(4)").all_inner_texts()
                assert sizes and all(s.endswith(" байт") or s.endswith(" байти")
                                     or s.endswith(" байтів") for s in sizes), sizes
            if name == "audit":
                shown = page.locator("table tbody td:nth-child(3)").all_inner_texts()
                assert "вхід" in shown
                assert not {"login", "delete", "download", "upload replies"} & set(shown)
                break
    finally:
        context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_a_member_who_is_not_an_administrator(browser, site, member, lang):
    """No audit log in the menu; asked for it anyway, a refusal page that
    passes the same checks."""
    if not AXE.exists():
        missing("node_modules/axe-core (npm ci)")
    url = site[0]
    problems = {}
    for javascript, width in ((True, 1280), (False, 320)):
        context = _context(browser, width, javascript)
        try:
            page = context.new_page()
            _log_in(page, url, lang, member)
            assert page.locator("nav.staff a[href$='/audit']").count() == 0
            assert page.goto(url + "/audit", wait_until="load").status == 403
            assert page.locator("html").get_attribute("lang") == lang
            if javascript:
                problems["refused (axe)"] = audit(page)
            else:
                found = [f"duplicate id {i}" for i in duplicate_ids(page)]
                found += [] if fits_width(page) else ["scrolls sideways at 320 px"]
                found += keyboard_problems(page) + [
                    f"left in English: {s!r}" for s in english_left(page, lang)]
                problems["refused"] = found
        finally:
            context.close()
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
