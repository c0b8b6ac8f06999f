"""The one place that turns errors into pages.

Every error a witness can meet is an exception carrying its status and a
plain message; anything unexpected becomes a 500 page that says nothing was
kept. No traceback, no request detail, reaches a page or a log.
"""

from __future__ import annotations

import errno
import logging

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from intake.pages.sizes import human_size
from intake.pages.typed_back import typed_back
from intake.server.front import FRONT_ERROR
from intake.server.quota import QuotaExceeded
from intake.server.receive import CommitUncertain
from intake.server.web.i18n import grouped

log = logging.getLogger("intake")


class IntakeError(Exception):
    status = 400
    title = "Something is wrong with what was sent"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EmptySubmission(IntakeError):
    status = 400


class Busy(IntakeError):
    """The day's quota is spent, or the disk is near full: try later."""

    status = 503


class StillReceiving(Exception):
    """The same form was sent again while the first is still being received."""

    status = 409


class Refused(Exception):
    """The front refused a request before the app saw it (intake.server.front)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _page(status: int, title: str, message: str, nothing_kept: bool = True,
          typed: str = ""):
    return render_template("error.html", title=title, message=message,
                           nothing_kept=nothing_kept, typed=typed), status


def _limits():
    config = current_app.extensions["intake"].config
    return config.max_testimony_chars, config.max_files


def _too_long() -> str:
    return _("The text is longer than %(n)s characters. Nothing was kept. Send it again "
             "with the rest in a file, or in another submission.", n=grouped(_limits()[0]))


def _too_many() -> str:
    return _("Too many files at once (at most %(n)d). Nothing was kept. Send them again, "
             "the rest in another submission.", n=_limits()[1])


def _too_large(limit: int) -> str:
    return _("What you sent is larger than this service accepts (%(size)s in total). "
             "Send fewer or smaller files, in several submissions. Nothing was kept.",
             size=human_size(limit))


def _refused_page(reason: str):
    """The page for each of the front's refusals (intake.server.front)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    if reason == "408":
        return _page(408, _("The connection was too slow"),
                     _("What you sent stopped arriving, or came too slowly to be "
                       "received. Nothing was kept. Check your connection and send "
                       "the form again; several smaller submissions may go through "
                       "where one large one does not."))
    if reason == "413":
        return _page(413, _("Too much at once"), _too_large(limit))
    if reason == "too_long":
        return _page(413, _("Too much at once"), _too_long())
    if reason == "too_many":
        return _page(413, _("Too much at once"), _too_many())
    if reason in ("414", "431"):
        return _page(int(reason), _("The request could not be understood"),
                     _("The address or the request was too long to be read. Open the "
                       "form from the start and send it from there. Nothing was kept."))
    if reason == "quota":
        return _busy_page()
    if reason == "pool":
        return _page(503, _("The service is busy"),
                     _("This service is receiving a lot at the moment. Nothing was kept. "
                       "Please try again in a few minutes."))
    return _page(400, _("The request could not be understood"),
                 _("What was sent could not be read. Open the form again and "
                   "send it from there. Nothing was kept."))


def _busy_page():
    return _page(503, _("The service is full for now"),
                 _("This service has received as much as it can keep today. Nothing "
                   "was kept. Please try again tomorrow, or later today."))


def init_app(app) -> None:
    @app.before_request
    def _front_refusal():
        reason = request.environ.get(FRONT_ERROR)
        if reason:
            raise Refused(reason)

    @app.errorhandler(Refused)
    def _refused(exc: Refused):
        return _refused_page(exc.reason)

    @app.errorhandler(Busy)
    @app.errorhandler(QuotaExceeded)
    def _busy(exc):
        return _busy_page()

    @app.errorhandler(StillReceiving)
    def _still_receiving(exc):
        return _page(409, _("Still being received"),
                     _("What you sent is still being received: it does not need to be "
                       "sent again. Wait a minute, then reload this page to see your "
                       "receipt."), nothing_kept=False)

    @app.errorhandler(IntakeError)
    def _intake(exc: IntakeError):
        return _page(exc.status, _("Your submission was not accepted"), exc.message,
                     typed=typed_back(("testimony",), trusted=True))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        if request.mimetype == "multipart/form-data" and request.content_length \
                and not request.form and not request.files:
            return _page(400, _("The request could not be understood"),
                         _("What was sent could not be read. Open the form again and "
                           "send it from there. Nothing was kept."))
        return _page(400, _("The form has expired"),
                     _("This form was open too long, or came from another page. "
                       "Open the form again and send it from there. Nothing was kept."),
                     typed=typed_back(("testimony",)))

    @app.errorhandler(RequestEntityTooLarge)
    def _entity_too_large(exc):
        # Werkzeug says the same for a body too large, a text field too long
        # and too many parts: the body's length tells the first apart, the
        # files it had begun to receive the last (only the one limit that was
        # passed is named).
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        if limit and (request.content_length or 0) > limit:
            return _page(413, _("Too much at once"), _too_large(limit))
        if getattr(request, "files_begun", 0) >= _limits()[1]:
            return _page(413, _("Too much at once"), _too_many())
        return _page(413, _("Too much at once"), _too_long())

    @app.errorhandler(CommitUncertain)
    def _uncertain(exc):
        log.error("database stopped answering during a commit")
        return _page(503, _("We cannot tell whether it was kept"),
                     _("Our database stopped answering while your submission was being "
                       "saved, so we cannot tell whether it was kept. Please send it "
                       "again in a few minutes; if both arrive, we will see that they are "
                       "the same."), nothing_kept=False)

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database_down(exc):
        log.error("database unavailable: %s", type(exc).__name__)
        return _page(503, _("The service cannot save right now"),
                     _("Our database is not answering. Nothing was kept. Please try "
                       "again in a few minutes."))

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
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.error("disk full")
            return _page(507, _("The service has no room right now"),
                         _("Our disk is full. Nothing was kept. Please try again later."))
        # The type only: a message could quote what the witness sent.
        log.error("internal error: %s", type(exc).__name__)
        return _page(500, _("Nothing was kept"),
                     _("Something went wrong on our side while saving your "
                       "submission. Nothing was kept. Please try again later."))
