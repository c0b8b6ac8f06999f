"""The witness's pages: the form and the receipt."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, render_template, request, session
from flask_babel import gettext as _

from intake.server.filenames import BadFilename, check_upload_name
from intake.server.pending_originals import SESSION_KEY, from_session, to_session
from intake.server.receive import Upload, confirm_held, receive
from intake.server.upload_spool import UploadSpool
from intake.server.web.errors import EmptySubmission, IntakeError, human_size
from intake.server.witness.forms import CodenameForm, SubmitForm
from intake.server.witness.uploads import joined_uploads

bp = Blueprint("witness", __name__)


@bp.get("/")
def form():
    intake = current_app.extensions["intake"]
    return render_template("submit.html", form=SubmitForm(),
                           max_upload=human_size(intake.config.max_upload))


def _bad_name_message(reason: str) -> str:
    if reason == "nul":
        return _("A file name contains a NUL character. Rename the file and send it again.")
    if reason == "path":
        return _("A file name contains a folder path. Send the file itself, not its path.")
    return _("A file name is longer than 255 characters. Rename the file and send it again.")


def uploads_from_request() -> list[Upload]:
    uploads = []
    for storage in request.files.getlist("files"):
        if not storage.filename and isinstance(storage.stream, UploadSpool) \
                and storage.stream.size == 0:
            continue  # the empty file field a browser sends when nothing is chosen
        try:
            name = check_upload_name(storage.filename or "")
        except BadFilename as exc:
            raise IntakeError(_bad_name_message(exc.reason)) from exc
        if not isinstance(storage.stream, UploadSpool):
            raise IntakeError(_("A file could not be read. Send the form again."))
        uploads.append(Upload(name, storage.stream))
    return uploads


def check_submission(testimony: str, uploads: list[Upload]) -> None:
    config = current_app.extensions["intake"].config
    if len(testimony) > config.max_testimony_chars:
        raise IntakeError(_("The text is longer than %(n)d characters. Send the rest in "
                            "a file, or in another submission.",
                            n=config.max_testimony_chars))
    if len(uploads) > config.max_files:
        raise IntakeError(_("Too many files at once (at most %(n)d). Send the rest in "
                            "another submission.", n=config.max_files))
    if not testimony.strip() and not uploads:
        raise EmptySubmission(_("The form was empty: write something or choose a file, "
                                "then send it again."))


def receive_form(form, witness_id: str | None = None):
    """The witness form and the follow-up form alike: check, seal, store."""
    testimony = form.testimony.data or ""
    uploads = uploads_from_request()
    try:
        joined = joined_uploads()  # files the page's script sent ahead, in pieces
    except BaseException:
        for up in uploads:
            up.spool.close()
        raise
    uploads += joined.uploads
    try:
        check_submission(testimony, uploads)
        receipt = receive(current_app.extensions["intake"], testimony, uploads,
                          keep_originals=bool(form.keep_original.data), witness_id=witness_id,
                          pending=current_app.extensions["intake.pending"],
                          limits=current_app.extensions.get("intake.sanitize_limits"))
        joined.received()
    finally:
        for up in uploads:
            up.spool.close()
        joined.release()
    if receipt.held:  # the receipt asks about these; only this session may answer
        session[SESSION_KEY] = {**session.get(SESSION_KEY, {}),
                                **{h.item_id: to_session(h) for h in receipt.held}}
    return receipt


@bp.post("/submit")
def submit():
    receipt = receive_form(SubmitForm())
    return render_template("receipt.html", receipt=receipt,
                           words=receipt.codename.split(), form=CodenameForm())


@bp.post("/original")
def original_choice():
    """The witness's answer for a file that could not be cleaned: send it as
    it is, or drop it (intake.server.pending_originals)."""
    held_files = dict(session.get(SESSION_KEY, {}))
    held = from_session(held_files.pop(request.form.get("item", ""), None) or {})
    # The others still open are asked again below, so no answer needs the back button.
    waiting = [h for h in map(from_session, held_files.values())
               if h is not None and h.until > time.time()]
    session[SESSION_KEY] = {h.item_id: to_session(h) for h in waiting}
    if held is None:
        done = "expired"
    elif request.form.get("choice") == "send":
        sent = confirm_held(current_app.extensions["intake"],
                            current_app.extensions["intake.pending"], held)
        done = "sent" if sent else "expired"
    else:
        current_app.extensions["intake.pending"].drop(held.item_id)
        done = "dropped"
    return render_template("original_choice.html", done=done,
                           name=held.name if held else "", waiting=waiting)
