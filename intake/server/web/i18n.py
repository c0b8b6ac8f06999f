"""Which language a page speaks, and the links that change it without JavaScript.

On the witness's pages the language is the first part of the address
(`/uk/…`, `/en/…`), so links, bookmarks, a reload and a cleared cookie all
keep it, and an error page speaks it with no cookie at all. A first visit to
an address without one (`/`) is redirected to it, the browser's
Accept-Language deciding; old `?lang=` links are redirected the same way.
Tor Browser always asks for English, so the links, not the header, are what
most witnesses will use.

Pages without a language in their address (the staff's) keep a `?lang=`
choice in the server-side session, whose cookie lasts until the browser
closes, once there is one to keep it in (after a login): a choice is never
the reason a session row is written. Until then the address carries it
(`?lang=`, which every address the page makes keeps). Static
files take no choice at all, and the witness's pages and uploads never
store one: their addresses carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from flask import (
    Flask,
    Request,
    current_app,
    g,
    has_request_context,
    redirect,
    request,
    session,
)
from flask_babel import get_locale, ngettext

from intake.pages.languages import DEFAULT, LANGUAGES

QUERY = "lang"
SESSION_KEY = "lang"
URL_LANGUAGES = "intake.url_languages"  # app.extensions key: its addresses carry the language
# The URL rule part that names a language: only the four, so no other
# address is ever read as one.
PREFIX = "/<any(" + ", ".join(LANGUAGES) + "):lang>"


@dataclass(frozen=True)
class LanguageLink:
    code: str
    name: str
    href: str
    current: bool


def url_language(path: str) -> str | None:
    """The language an address starts with (`/uk/…` is "uk"), or None."""
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in LANGUAGES and path.startswith("/" + first) else None


def _rest(path: str) -> str:
    """The address without its language: `/uk/login` is `/login`."""
    code = url_language(path)
    return path[len(code) + 1:] or "/" if code else path


def browser_language(req: Request) -> str:
    return req.accept_languages.best_match(list(LANGUAGES)) or DEFAULT


def address_choice(req: Request | None = None) -> str | None:
    """A `?lang=` choice in the address, if it names one of the languages."""
    code = (req or request).args.get(QUERY)
    return code if code in LANGUAGES else None


def select_locale(req: Request) -> str:
    """The address's language (its first part, else its `?lang=`), else the
    session's choice, else the browser's wish, else English."""
    if not has_request_context():
        return DEFAULT
    in_url = url_language(req.path) or address_choice(req)
    if in_url:
        return in_url
    # g keeps the choice made at the start of the request, so a page rendered
    # just after the session is cleared (logging out) still speaks it.
    chosen = session.get(SESSION_KEY) or g.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return chosen
    return browser_language(req)


def _static(endpoint: str | None) -> bool:
    """A static file (the app's or a blueprint's), not a page."""
    return bool(endpoint) and (endpoint == "static" or endpoint.endswith(".static"))


def remember_choice() -> None:
    """Stores a `?lang=` choice for the rest of the visit in a session that
    is kept anyway (its row exists: someone logged in); unknown codes are
    ignored. Nothing is stored, nor the session even read, for a static file
    or an address that names its language, and nothing is stored in an app
    whose addresses all carry it: a request with no session writes nothing."""
    if url_language(request.path) or _static(request.endpoint):
        return
    code = address_choice()
    if code and not current_app.extensions.get(URL_LANGUAGES) \
            and getattr(session, "stored", True) and session.get(SESSION_KEY) != code:
        session[SESSION_KEY] = code
    g.setdefault(SESSION_KEY, session.get(SESSION_KEY))


def _carry_choice(endpoint: str, values: dict) -> None:
    """A `?lang=` choice no session keeps (no one has logged in yet) goes on
    in every address the page makes (its links, its form, a redirect)."""
    if not has_request_context() or _static(endpoint) or QUERY in values \
            or current_app.extensions.get(URL_LANGUAGES) or url_language(request.path):
        return
    code = address_choice()
    if code and code != session.get(SESSION_KEY):
        values[QUERY] = code


def _safe_path(path: str) -> str:
    # One leading slash only: "//host/x" would be a link to another site.
    return "/" + quote(path.lstrip("/"))


def _query(without: str = QUERY) -> str:
    args = [(k, v) for k, v in request.args.items(multi=True) if k != without]
    return "?" + urlencode(args) if args else ""


def with_language(code: str, path: str | None = None) -> str:
    """The same address (or path) in another language, its query kept."""
    rest = _rest(request.path if path is None else path)
    return f"{request.script_root}/{code}{_safe_path(rest)}"


def _href(code: str) -> str:
    if url_language(request.path):
        # A page that answered a form (an error) has no address of its own
        # to show again: the start, in that language.
        if request.method not in ("GET", "HEAD"):
            return f"{request.script_root}/{code}/"
        return with_language(code) + _query()
    path = request.path if request.method in ("GET", "HEAD") else "/"
    args = [(k, v) for k, v in request.args.items(multi=True) if k != QUERY]
    return f"{request.script_root}{_safe_path(path)}?{urlencode([*args, (QUERY, code)])}"


def language_links() -> list[LanguageLink]:
    current = str(get_locale() or DEFAULT)
    return [LanguageLink(code, name, _href(code), code == current)
            for code, name in LANGUAGES.items()]


def links_open_new_tab() -> bool:
    """A page that answers a form cannot be fetched again. The witness's pages
    all answer a form with a redirect to an address, so only the staff's
    remain."""
    return request.method not in ("GET", "HEAD") and not url_language(request.path)


def start_href() -> str:
    """The start, in the address's language when it has one."""
    code = url_language(request.path)
    return f"{request.script_root}/{code}/" if code else f"{request.script_root}/"


def files_count(n: int) -> str:
    """'1 file', '2 files'; in Ukrainian '1 файл', '2 файли', '5 файлів'."""
    return ngettext("%(num)d file", "%(num)d files", n)


def grouped(n: int) -> str:
    """A count as the page's readers write it: 200,000 or 200 000."""
    text = f"{n:,}"
    return text if str(get_locale() or DEFAULT) == "en" else text.replace(",", "\u00a0")


def init_app(app: Flask) -> None:
    """Call after Babel(app, locale_selector=...): the hook and template helpers."""
    # First of the before_request hooks, so every later one speaks the choice.
    app.before_request_funcs.setdefault(None, []).insert(0, remember_choice)
    app.url_defaults(_carry_choice)
    app.jinja_env.globals.update(get_locale=get_locale,
                                 language_links=language_links,
                                 links_open_new_tab=links_open_new_tab,
                                 files_count=files_count, grouped=grouped,
                                 start_href=start_href)


def init_url_languages(app: Flask, *, keep: tuple[str, ...] = ("/static/", "/uploads/"),
                       front_error: str = "") -> None:
    """For an app whose pages carry their language in the address: every
    address is made with it, and an address without it is redirected (a GET;
    a form sent to an old address is still answered, in the session's or the
    browser's language). Addresses under `keep` are not pages."""
    app.extensions[URL_LANGUAGES] = True

    @app.url_value_preprocessor
    def _pull(endpoint, values):
        if values and "lang" in values:
            g.url_lang = values.pop("lang")

    @app.url_defaults
    def _add(endpoint, values):
        if "lang" not in values and app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values["lang"] = g.get("url_lang") or str(get_locale() or DEFAULT)

    def _redirect():
        if request.method not in ("GET", "HEAD") or request.path.startswith(keep) \
                or (front_error and request.environ.get(front_error)):
            return None
        code = request.args.get(QUERY)
        in_url = url_language(request.path)
        if in_url and code not in LANGUAGES:
            return None
        if code not in LANGUAGES:
            code = session.get(SESSION_KEY) if session.get(SESSION_KEY) in LANGUAGES \
                else browser_language(request)
        # 302: where `/` leads depends on the browser, so it is never cached.
        return redirect(with_language(code) + _query(), 302)

    app.before_request_funcs.setdefault(None, []).insert(0, _redirect)
