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
def test_a_first_visit_is_sent_to_the_browsers_language(client, header, expected):
    headers = {"Accept-Language": header} if header else {}
    first = client.get("/", headers=headers)
    assert first.status_code == 302 and first.headers["Location"] == f"/{expected}/"
    assert "no-store" in first.headers["Cache-Control"]  # never cached
    assert page_lang(client.get(first.headers["Location"], headers=headers)) == expected


@pytest.mark.parametrize("lang", LANGS)
def test_the_address_decides_whatever_the_browser_asks(client, lang):
    other = "en" if lang != "en" else "uk"
    for path in (f"/{lang}/", f"/{lang}/login", f"/{lang}/nowhere"):
        assert page_lang(client.get(path, headers={"Accept-Language": other})) == lang, path


def test_the_language_keeps_no_cookie_and_no_session_row(app, client):
    client.get("/?lang=be")
    response = client.get("/be/")
    assert all("lang" not in c.lower() for c in response.headers.getlist("Set-Cookie"))
    from intake.server.models import WebSession
    with app.extensions["intake"].db.sessions() as s:
        assert s.query(WebSession).count() == 0


def _session_rows(app) -> int:
    from intake.server.models import WebSession
    with app.extensions["intake"].db.sessions() as s:
        return s.query(WebSession).count()


@pytest.mark.parametrize("path", ["/static/style.css?lang=ru", "/static/uploads.js?lang=be",
                                  "/static/nowhere.css?lang=uk"])
def test_a_static_file_with_a_language_writes_nothing(app, path):
    """A static file takes no language choice: no session row, no cookie,
    however many are asked for."""
    for _ in range(5):
        with app.test_client().get(path) as response:
            assert response.status_code in (200, 404)
            assert not response.headers.getlist("Set-Cookie")
    assert _session_rows(app) == 0


def test_a_language_in_an_address_that_is_not_a_page_is_not_stored(app):
    """Resumable uploads and forms sent to old addresses are answered in the
    address's `?lang=` without storing it."""
    client = app.test_client()
    assert client.options("/uploads/?lang=ru").status_code == 204
    token = csrf_token(client)
    answer = client.post("/login?lang=uk", data={"csrf_token": token, "codename": "no such"})
    assert answer.status_code in (302, 303) and answer.headers["Location"].startswith("/uk/")
    assert _session_rows(app) == 0


@pytest.mark.parametrize(("old", "new"), [
    ("/?lang=uk", "/uk/"),
    ("/login?lang=be", "/be/login"),
    ("/ru/login?lang=uk", "/uk/login"),
    ("/en/?lang=ru&x=1", "/ru/?x=1"),
    ("/login", "/ru/login"),  # no choice: the browser's language
])
def test_old_links_are_redirected(client, old, new):
    response = client.get(old, headers={"Accept-Language": "ru"})
    assert response.status_code == 302 and response.headers["Location"] == new


def test_a_form_sent_to_an_old_address_is_still_received(client):
    token = csrf_token(client, "/uk/")
    sent = client.post("/submit", data={"csrf_token": token, "testimony": "old form"},
                       headers={"Accept-Language": "uk"})
    assert sent.status_code == 303 and sent.headers["Location"].startswith("/uk/receipt/")


def test_the_language_survives_logging_in_and_out(client):
    """Logging in replaces the session (against fixation); the address keeps the language."""
    receipt = submit(client, "testimony", lang="be")
    code = codename_of(receipt.get_data(as_text=True))
    done = login(client, code, "be")
    assert done.headers["Location"] == "/be/account"
    assert page_lang(client.get("/be/account", headers={"Accept-Language": "en"})) == "be"
    token = csrf_token(client, "/be/login")
    out = client.post("/be/logout", data={"csrf_token": token}, headers={"Accept-Language": "en"})
    assert out.headers["Location"] == "/be/logged-out"
    assert page_lang(client.get(out.headers["Location"])) == "be"


def test_an_unknown_language_is_ignored(client):
    assert client.get("/?lang=xx", headers={"Accept-Language": "ru"}).headers["Location"] \
        == "/ru/"
    assert client.get("/?lang=../../etc", headers={"Accept-Language": "uk"}
                      ).headers["Location"] == "/uk/"
    assert client.get("/xx/", headers={"Accept-Language": "uk"}).headers["Location"] \
        == "/uk/xx/"  # then "not found", in Ukrainian


def test_an_expired_form_speaks_the_address_language_without_a_cookie(client):
    """Tor Browser cleared its cookies: the form's token no longer fits."""
    token = csrf_token(client, "/uk/")
    client.delete_cookie("intake_session")
    page = client.post("/uk/submit", data={"csrf_token": token, "testimony": "x"},
                       headers={"Accept-Language": "en-US"})
    assert page.status_code == 400 and page_lang(page) == "uk"
    assert 'href="/uk/"' in page.get_data(as_text=True)


@pytest.mark.parametrize("lang", LANGS)
def test_every_witness_page_offers_the_four_languages(client, lang):
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
            assert url.path.startswith(f"/{a['hreflang']}/"), (page.name, a["href"])
            assert "lang" not in parse_qs(url.query), page.name
            assert a.get("target") is None, page.name
            if page.method == "POST":
                assert url.path == f"/{a['hreflang']}/", page.name  # the start


@pytest.mark.parametrize("lang", LANGS)
def test_every_witness_page_links_the_way_back(client, lang):
    for page in witness_pages(client, lang):
        assert f'href="/{lang}/login"' in page.html, page.name


def test_a_link_from_the_receipt_shows_it_in_that_language(client):
    receipt = submit(client, "testimony").get_data(as_text=True)
    href = [a["href"] for a in language_links(receipt) if a["hreflang"] == "ru"][0]
    assert re.fullmatch(r"/ru/receipt/[0-9a-f]{32}", href)
    response = client.get(href)
    assert response.status_code == 200 and page_lang(response) == "ru"


def test_links_keep_the_other_query_parameters(app):
    from intake.server.web import i18n

    with app.test_request_context("/uk/somewhere?page=2"):
        hrefs = {link.code: link.href for link in i18n.language_links()}
    assert hrefs["be"] == "/be/somewhere?page=2"
    with app.test_request_context("/somewhere?page=2&lang=uk"):  # the staff's pages
        hrefs = {link.code: link.href for link in i18n.language_links()}
    assert hrefs["be"] == "/somewhere?page=2&lang=be"


@pytest.mark.parametrize("path", ["//elsewhere.example/x", "///elsewhere.example",
                                  "/a b/<c>", "/uk//elsewhere.example/x"])
def test_links_never_lead_to_another_site(client, path):
    # PATH_INFO as a raw request line "GET //elsewhere.example/x" gives it.
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    if response.status_code == 302:
        target = response.headers["Location"]
        assert target.startswith("/") and not target.startswith("//"), target
        assert " " not in target and "<" not in target
        return
    page = response.get_data(as_text=True)
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
    for page in witness_pages(client, lang):
        text = _VisibleText()
        text.feed(page.html)
        runs = set(ENGLISH_RUN.findall(" ".join(text.parts))) - NAMES
        # A sentence has small words; "JPEG, PNG, WebP" or "Tor Browser" has none.
        sentences = {r for r in runs if len(re.findall(r"\b[a-z]{2,}\b", r)) >= 2}
        assert sentences == set(), page.name
