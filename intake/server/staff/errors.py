"""Error pages in staff words, on the staff pages' own template.

The base app (intake.server.web.errors) speaks to witnesses: "Nothing was
kept", "Open the form again", Tor Browser advice. Staff are told what
happened to their request instead. Registered after the base's handlers,
these replace them for the same exceptions.
"""

from __future__ import annotations

import errno
import logging

from flask import current_app, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from intake.pages.sizes import human_size
from intake.server.web.errors import Refused

log = logging.getLogger("intake")


def page(status: int, title: str, message: str):
    return render_template("staff/error.html", title=title, message=message), status


def _unreadable(status: int):
    return page(status, _("The request could not be understood"),
                _("What was sent could not be read. Open the page again from the staff "
                  "pages and try once more."))


def _too_large():
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return page(413, _("Too much at once"),
                _("A reply bundle can be at most %(size)s. Nothing was received.",
                  size=human_size(limit)))


def init_app(app) -> None:
    @app.errorhandler(Refused)
    def _refused(exc: Refused):
        if exc.reason == "413":
            return _too_large()
        if exc.reason in ("too_long", "too_many"):  # a form too large to hold
            return page(413, _("Too much at once"),
                        _("What was sent could not be read. Open the page again from the "
                          "staff pages and try once more."))
        if exc.reason == "408":
            return page(408, _("The connection was too slow"),
                        _("What was sent stopped arriving. Nothing was received. Check "
                          "the connection and try again."))
        status = int(exc.reason) if exc.reason.isdigit() else 400
        return _unreadable(status)

    @app.errorhandler(RequestEntityTooLarge)
    def _entity_too_large(exc):
        return _too_large()

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return page(400, _("The form has expired"),
                    _("This form was open too long, or came from another page. Nothing "
                      "was done. Open it again from the staff pages."))

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database_down(exc):
        log.error("database unavailable: %s", type(exc).__name__)
        return page(503, _("The database is not answering"),
                    _("What you asked was not done. Try again in a few minutes; "
                      "intake doctor, on the server, says what is wrong."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404:
            return page(404, _("Page not found"), _("There is no page at this address."))
        if exc.code == 405:
            return page(405, _("Not allowed"), _("This page cannot be used that way."))
        return _unreadable(exc.code or 400)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.error("disk full")
            return page(507, _("The server's disk is full"),
                        _("What you asked may not have been done. Look at the queue "
                          "before trying again, and free space on the server."))
        log.error("internal error: %s", type(exc).__name__)  # the type only, as for witnesses
        return page(500, _("Not done"),
                    _("Something went wrong on the server. What you asked may not have "
                      "been done: look at the queue before trying again. The server's "
                      "log names the kind of error."))
