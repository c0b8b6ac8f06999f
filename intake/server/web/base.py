"""The base both server apps are built on."""

from __future__ import annotations

import logging

from flask import Flask, request, send_from_directory
from flask_wtf.csrf import CSRFProtect

from intake.pages.flask_app import new_app
from intake.server.config import Config
from intake.server.front import Limits
from intake.server.service import Intake
from intake.server.throttle import Throttle
from intake.server.web import errors, i18n
from intake.server.web.sessions import DatabaseSessionInterface


def _locale() -> str:
    return i18n.select_locale(request)


def login_throttle(config: Config) -> Throttle:
    return Throttle(per_id_limit=config.login_attempts_per_codename,
                    window_seconds=config.login_window)


def front_limits(config: Config) -> Limits:
    return Limits(head_timeout=config.head_timeout, min_rate=config.min_upload_rate,
                  window=config.rate_window)


# Headers that carry a time: the file's (Last-Modified, and the ETag made
# from it) or the server's clock (Date, Expires, Age).
CLOCK_HEADERS = ("Date", "Expires", "Last-Modified", "ETag", "Age")
CONDITIONS = ("HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE", "HTTP_IF_NONE_MATCH",
              "HTTP_IF_MATCH", "HTTP_IF_RANGE")


def no_file_times(app: Flask) -> None:
    """No answer carries a time: static files go out without an ETag or a
    Last-Modified (made from the file's mtime, none of a client's business),
    and no answer has an Expires (Werkzeug makes one from the live clock for
    any max_age) or a Date. Caching is refused by Cache-Control alone
    (intake.pages.headers)."""
    folder = app.static_folder

    def static(filename: str):
        return send_from_directory(folder, filename, etag=False, conditional=False,
                                   max_age=None)

    if "static" in app.view_functions:
        app.view_functions["static"] = static

    @app.before_request
    def _no_conditions():
        # A conditional request (If-Modified-Since and the like) would learn a
        # file's time from whether it gets 304 or 200, on every static route,
        # a blueprint's (the staff pages' own) included: none is honoured.
        for key in CONDITIONS:
            request.environ.pop(key, None)

    @app.after_request
    def _no_times(response):
        for name in CLOCK_HEADERS:
            response.headers.pop(name, None)
        return response


def base_app(name: str, intake: Intake, *, cookie_name: str, max_upload: int) -> Flask:
    """What the witness and staff apps share: templates, secrets, server-side
    sessions, languages, CSRF, security headers and the one error handler."""
    app = new_app(name, _locale)
    app.extensions["intake"] = intake
    app.config.update(
        SECRET_KEY=intake.secrets.form_key,
        MAX_CONTENT_LENGTH=max_upload,
        WTF_CSRF_TIME_LIMIT=intake.config.csrf_time_limit,
        WTF_CSRF_SSL_STRICT=False,  # onion services are plain HTTP inside Tor
        SESSION_COOKIE_SECURE=False,
        SEND_FILE_MAX_AGE_DEFAULT=0,
    )
    app.session_interface = DatabaseSessionInterface(cookie_name=cookie_name)
    i18n.init_app(app)
    CSRFProtect(app)
    errors.init_app(app)
    no_file_times(app)
    # Werkzeug's request log names the client and the time: never enable it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return app
