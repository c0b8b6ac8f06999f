"""Which language a page speaks, and the links that change it without JavaScript.

A witness picks a language from a link on any page (`?lang=uk`). The choice is
kept in the server-side session, whose cookie lasts until the browser closes:
never in a cookie of its own, never longer than the visit. Without a choice the
browser's Accept-Language decides, and English is the last resort. Tor Browser
always asks for English, so the links, not the header, are what most witnesses
will use.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from flask import Flask, Request, g, has_request_context, request, session
from flask_babel import get_locale, ngettext

from intake.pages.languages import DEFAULT, LANGUAGES

QUERY = "lang"
SESSION_KEY = "lang"


@dataclass(frozen=True)
class LanguageLink:
    code: str
    name: str
    href: str
    current: bool


def select_locale(req: Request) -> str:
    """The session's choice, else the browser's wish, else English."""
    if not has_request_context():
        return DEFAULT
    # g keeps the choice made at the start of the request, so a page rendered
    # just after the session is cleared (logging out) still speaks it.
    chosen = session.get(SESSION_KEY) or g.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return chosen
    return req.accept_languages.best_match(list(LANGUAGES)) or DEFAULT


def remember_choice() -> None:
    """Stores a `?lang=` choice for the rest of the visit; unknown codes are ignored."""
    code = request.args.get(QUERY)
    if code in LANGUAGES and session.get(SESSION_KEY) != code:
        session[SESSION_KEY] = code
    g.setdefault(SESSION_KEY, session.get(SESSION_KEY))


def _href(code: str) -> str:
    # A page that answered a form (the receipt) cannot be fetched again: its
    # links open the form in a new tab, so the codename stays on screen.
    path = request.path if request.method in ("GET", "HEAD") else "/"
    # One leading slash only: "//host/x" would be a link to another site.
    path = "/" + quote(path.lstrip("/"))
    args = [(k, v) for k, v in request.args.items(multi=True) if k != QUERY]
    return f"{request.script_root}{path}?{urlencode([*args, (QUERY, code)])}"


def language_links() -> list[LanguageLink]:
    current = str(get_locale() or DEFAULT)
    return [LanguageLink(code, name, _href(code), code == current)
            for code, name in LANGUAGES.items()]


def links_open_new_tab() -> bool:
    return request.method not in ("GET", "HEAD")


def files_count(n: int) -> str:
    """'1 file', '2 files'; in Ukrainian '1 файл', '2 файли', '5 файлів'."""
    return ngettext("%(num)d file", "%(num)d files", n)


def init_app(app: Flask) -> None:
    """Call after Babel(app, locale_selector=...): the hook and template helpers."""
    # First of the before_request hooks, so every later one speaks the choice.
    app.before_request_funcs.setdefault(None, []).insert(0, remember_choice)
    app.jinja_env.globals.update(get_locale=get_locale,
                                 language_links=language_links,
                                 links_open_new_tab=links_open_new_tab,
                                 files_count=files_count)
