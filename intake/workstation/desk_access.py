"""Whom the desk answers: only the browser that opened the address printed by
`intake vault serve`, and only under this machine's own names.

Each run makes two fresh random secrets. The URL it prints carries the
first (`?token=`); the first request with it gets, in exchange, a cookie
holding the second, and a redirect to the same page without the token, so
the token leaves the address bar and the history. Every later request must
carry that cookie. Both secrets live only in this process's memory and are
worth nothing after it stops; both are compared in constant time. Any Host
header but the address served on (127.0.0.1, localhost, or [::1] when bound
there) is refused first, which stops DNS rebinding: a page elsewhere cannot
reach the desk under its own name.

The server itself sends no `Server` header (QuietHandler); every answer,
refusals included, gets the strict headers of intake.pages.headers.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Flask, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

COOKIE = "intake_desk"
TOKEN = "token"  # noqa: S105 (the name of the URL parameter, not a secret)


class WrongHost(HTTPException):
    code = 421
    description = "wrong host"


class NotOpened(HTTPException):
    code = 403
    description = "not opened with this run's address"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


@dataclass(frozen=True)
class Access:
    token: str
    session: str
    hosts: frozenset[str]

    @classmethod
    def fresh(cls, host: str, port: int) -> Access:
        """New secrets for one run of the desk bound to `host`:`port`."""
        shown = f"[{host}]" if ":" in host else host
        names = {shown, "localhost"} if host in ("127.0.0.1", "::1") else {shown}
        hosts = {f"{name}:{port}" for name in names}
        if port == 80:
            hosts |= names
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), frozenset(hosts))

    def url(self, host: str, port: int) -> str:
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/?{TOKEN}={self.token}"


def init_app(app: Flask, access: Access) -> None:
    @app.before_request
    def _guard():
        # No Host header at all (HTTP/1.0) would leave request.host to the
        # address bound, which is always listed: such a request is refused.
        if not request.environ.get("HTTP_HOST") or request.host not in access.hosts:
            raise WrongHost()
        if _same(request.cookies.get(COOKIE, ""), access.session):
            return None
        token = request.args.get(TOKEN, "")
        if request.method == "GET" and token and _same(token, access.token):
            rest = [(k, v) for k, v in request.args.items(multi=True) if k != TOKEN]
            response = redirect(request.path + (f"?{urlencode(rest)}" if rest else ""), 303)
            response.set_cookie(COOKIE, access.session, httponly=True, samesite="Strict",
                                path="/")
            return response
        raise NotOpened()


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without the `Server` header (no banner)."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b""]


def bind(host: str, port: int) -> BaseWSGIServer:
    """The server, bound (port 0: any free one) but answering nothing until
    its `app` is set: the secrets are made for the port actually bound."""
    return make_server(host, port, _not_ready, threaded=True, request_handler=QuietHandler)
