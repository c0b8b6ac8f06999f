"""Which language a page speaks: the link's choice, else the browser's, else English."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import LANGS, codename_of, csrf_token, login, submit, witness_pages

HTML_LANG = re.compile(r'<html lang="([a-z]+)">')


def page_lang(response) -> str:
    return HTML_LANG.search(response.get_data(as_text=True)).group(1)


class LanguageNav(HTMLParser):
    """The links inside <nav class="languages">, with their attributes."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav" and "languages" in (attrs.get("class") or "").split():
            self.depth = 1
        elif self.depth and tag == "a":
            self.links.append(attrs)

    def handle_endtag(self, tag):
        if tag == "nav":
            self.depth = 0


def language_links(html: str) -> list[dict]:
    nav = LanguageNav()
    nav.feed(html)
    return nav.links


@pytest.mark.parametrize(("header", "expected"), [
    ("uk-UA,uk;q=0.9,en;q=0.5", "uk"),
    ("ru-RU", "ru"),
    ("be", "be"),
    ("en-US,en;q=0.5", "en"),
    ("fr-FR,de;q=0.8", "en"),
    ("pl,ru;q=0.3,uk;q=0.7", "uk"),
    ("", "en"),
])
def test_accept_language_sets_the_default(client, header, expected):
    headers = {"Accept-Language": header} if header else {}
    assert page_lang(client.get("/", headers=headers)) == expected


@pytest.mark.parametrize("lang", LANGS)
def test_a_chosen_language_lasts_for_the_visit(client, lang):
    other = "en" if lang != "en" else "uk"
    first = client.get(f"/?lang={lang}", headers={"Accept-Language": other})
    assert page_lang(first) == lang
    # Later pages without the parameter, whatever the browser asks for.
    assert page_lang(client.get("/", headers={"Accept-Language": other})) == lang
    assert page_lang(client.get("/nowhere", headers={"Accept-Language": other})) == lang


def test_the_choice_is_in_a_browser_session_cookie_only(client):
    response = client.get("/?lang=be")
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies, "the choice must be kept in the server-side session"
    for cookie in cookies:
        attrs = [part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]]
        assert "expires" not in attrs and "max-age" not in attrs, cookie
        name, value = cookie.split(";", 1)[0].split("=", 1)
        assert name == "intake_session"
        assert "be" not in value.split("-") and len(value) >= 40  # an opaque token
    # Nothing names the language outside the session.
    assert all("lang" not in c.lower() for c in cookies)


def test_the_choice_survives_logging_in_and_out(client):
    """Logging in replaces the session (against fixation); the language must come along."""
    receipt = submit(client, "testimony")
    code = codename_of(receipt.get_data(as_text=True))
    client.get("/login?lang=be", headers={"Accept-Language": "en"})
    assert login(client, code).status_code == 302
    assert page_lang(client.get("/account", headers={"Accept-Language": "en"})) == "be"
    token = csrf_token(client, "/login")
    out = client.post("/logout", data={"csrf_token": token}, headers={"Accept-Language": "en"})
    assert page_lang(out) == "be"


def test_an_unknown_language_is_ignored(client):
    response = client.get("/?lang=xx", headers={"Accept-Language": "ru"})
    assert page_lang(response) == "ru"
    assert page_lang(client.get("/?lang=../../etc", headers={"Accept-Language": "uk"})) == "uk"


def test_changing_the_language_again_replaces_the_choice(client):
    client.get("/?lang=uk")
    assert page_lang(client.get("/?lang=be")) == "be"
    assert page_lang(client.get("/")) == "be"


@pytest.mark.parametrize("lang", LANGS)
def test_every_witness_page_offers_the_four_languages(client, lang):
    client.get(f"/?lang={lang}")
    pages = witness_pages(client, lang)
    assert {p.name for p in pages} >= {"form", "receipt", "empty submission", "not found"}
    for page in pages:
        assert f'<html lang="{lang}">' in page.html, page.name
        links = language_links(page.html)
        assert [a["hreflang"] for a in links] == ["uk", "ru", "be", "en"], page.name
        current = [a["hreflang"] for a in links if a.get("aria-current") == "true"]
        assert current == [lang], page.name
        for a in links:
            url = urlsplit(a["href"])
            assert parse_qs(url.query)["lang"] == [a["hreflang"]], page.name
            if page.method == "POST":
                # The page cannot be fetched again: open the form in a new tab instead.
                assert url.path == "/" and a.get("target") == "_blank", page.name
                assert "noopener" in a.get("rel", ""), page.name
            else:
                assert a.get("target") is None, page.name


def test_a_link_from_the_receipt_opens_the_form_in_that_language(client):
    client.get("/?lang=en")
    receipt = [p for p in witness_pages(client, "en") if p.name == "receipt"][0]
    href = [a["href"] for a in language_links(receipt.html) if a["hreflang"] == "ru"][0]
    response = client.get(href)
    assert response.status_code == 200
    assert page_lang(response) == "ru"


def test_links_keep_the_other_query_parameters(app):
    with app.test_request_context("/somewhere?page=2&lang=uk"):
        from intake.server.web import i18n

        hrefs = {link.code: link.href for link in i18n.language_links()}
    assert hrefs["be"] == "/somewhere?page=2&lang=be"


@pytest.mark.parametrize("path", ["//elsewhere.example/x", "///elsewhere.example",
                                  "/a b/<c>"])
def test_links_never_lead_to_another_site(client, path):
    # PATH_INFO as a raw request line "GET //elsewhere.example/x" gives it.
    page = client.get("/", environ_overrides={"PATH_INFO": path}).get_data(as_text=True)
    assert len(language_links(page)) == 4
    for a in language_links(page):
        assert a["href"].startswith("/") and not a["href"].startswith("//"), a["href"]
        assert " " not in a["href"] and "<" not in a["href"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_witness_page_is_small(client, lang):
    """The budget: each page with its style sheet under 30 KB, as sent over Tor."""
    with client.get("/static/style.css") as response:
        assert response.status_code == 200
        css = response.data
    assert b"@font-face" not in css and b"url(" not in css
    client.get(f"/?lang={lang}")
    for page in witness_pages(client, lang):
        total = len(page.html.encode()) + len(css)
        assert total < 30 * 1024, (page.name, total)
        assert "<img" not in page.html


class _VisibleText(HTMLParser):
    """Text a reader sees, without the codename's words (they are English on purpose)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self.skip or tag in ("style", "script") or "codename" in classes:
            self.skip += 1

    def handle_endtag(self, tag):
        if self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?:[ ,']+[A-Za-z]{2,})+\b")
NAMES = {"Tor Browser"}  # the same in every language


@pytest.mark.parametrize("lang", ["uk", "ru", "be"])
def test_no_english_is_left_on_a_witness_page(client, lang):
    """Catches text that reaches a page without gettext, from Python as well as templates."""
    client.get(f"/?lang={lang}")
    for page in witness_pages(client, lang):
        text = _VisibleText()
        text.feed(page.html)
        runs = set(ENGLISH_RUN.findall(" ".join(text.parts))) - NAMES
        # A sentence has small words; "JPEG, PNG, WebP" or "Tor Browser" has none.
        sentences = {r for r in runs if len(re.findall(r"\b[a-z]{2,}\b", r)) >= 2}
        assert sentences == set(), page.name
