"""The one place that turns errors into pages.

Every error a witness can meet is an exception carrying its status and a
plain message; anything unexpected becomes a 500 page that says nothing was
kept. No traceback, no request detail, reaches a page or a log.
"""

from __future__ import annotations

import logging

from flask import render_template, request
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger("intake")


class IntakeError(Exception):
    status = 400
    title = "Something is wrong with what was sent"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EmptySubmission(IntakeError):
    status = 400


def _page(status: int, title: str, message: str, nothing_kept: bool = True):
    return render_template("error.html", title=title, message=message,
                           nothing_kept=nothing_kept), status


def init_app(app) -> None:
    @app.errorhandler(IntakeError)
    def _intake(exc: IntakeError):
        return _page(exc.status, _("Your submission was not accepted"), exc.message)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        if request.mimetype == "multipart/form-data" and request.content_length \
                and not request.form and not request.files:
            return _page(400, _("The request could not be understood"),
                         _("What was sent could not be read. Open the form again and "
                           "send it from there. Nothing was kept."))
        return _page(400, _("The form has expired"),
                     _("This form was open too long, or came from another page. "
                       "Open the form again and send it from there. Nothing was kept."))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        limit = app.extensions["intake"].config.max_upload
        return _page(413, _("Too much at once"),
                     _("What you sent is larger than this service accepts "
                       "(%(size)s in total). Send fewer or smaller files, in several "
                       "submissions. Nothing was kept.", size=human_size(limit)))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404:
            return _page(404, _("Page not found"),
                         _("There is no page at this address."), nothing_kept=False)
        if exc.code == 405:
            return _page(405, _("Not allowed"),
                         _("This page cannot be used that way."), nothing_kept=False)
        return _page(exc.code or 400, _("The request could not be understood"),
                     _("What was sent could not be read. Open the form again and "
                       "send it from there. Nothing was kept."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # The type only: a message could quote what the witness sent.
        log.error("internal error: %s", type(exc).__name__)
        return _page(500, _("Nothing was kept"),
                     _("Something went wrong on our side while saving your "
                       "submission. Nothing was kept. Please try again later."))


# Languages that write a decimal comma. Babel's number formatting would load
# its locale data (about 5 MB in every worker) for this one character.
DECIMAL_COMMA = {"uk", "ru", "be"}


def human_size(n: int) -> str:
    """A size as a witness reads it, in the page's language: "2 GiB", "2 ГіБ"."""
    if n < 1024:
        return ngettext("%(num)d byte", "%(num)d bytes", n)
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    number = f"{value:.1f}".removesuffix(".0")
    if get_locale() is not None and get_locale().language in DECIMAL_COMMA:
        number = number.replace(".", ",")
    units = {"KiB": _("%(number)s KiB", number=number),
             "MiB": _("%(number)s MiB", number=number),
             "GiB": _("%(number)s GiB", number=number)}
    return units[unit]
