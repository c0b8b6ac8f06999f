"""The witness's pages: the form and the receipt.

Every form here answers with a redirect (intake.server.witness.receipts), so
no page a witness can reload is the answer to a form.
"""

from __future__ import annotations

import hmac
import time

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from intake.pages.sizes import human_size
from intake.server import codename
from intake.server.filenames import BadFilename, check_upload_name
from intake.server.models import Item
from intake.server.pending_originals import SESSION_KEY, from_session, to_session
from intake.server.receive import Upload, confirm_held, receive
from intake.server.upload_spool import UploadSpool
from intake.server.web.errors import EmptySubmission, IntakeError
from intake.server.web.i18n import grouped
from intake.server.witness import receipts
from intake.server.witness.forms import (
    ALPHABETS,
    DEFAULT_ALPHABET,
    FILE_FIELDS,
    CodenameForm,
    SubmitForm,
)
from intake.server.witness.uploads import joined_uploads

bp = Blueprint("witness", __name__)
CHOICE_KEY = "original_done"  # the answer to a held file's question, for the next page
ANSWERED_KEY = "originals_answered"  # item id -> what the witness's answer did
ANSWERS_KEPT = 20
SENT_WAIT_SECONDS = 5  # how long a second "send" waits for the first to be stored
MAX_CODENAME_CHARS = 300


def limits() -> dict:
    """The limits a form states, as the page's reader writes them."""
    config = current_app.extensions["intake"].config
    return {"max_upload": human_size(config.max_upload),
            "max_chars": config.max_testimony_chars, "max_files": config.max_files,
            "file_fields": FILE_FIELDS}


@bp.get("/")
def form():
    form = SubmitForm()
    form.alphabet.data = DEFAULT_ALPHABET.get(str(get_locale()), "en")
    return render_template("submit.html", form=form, once=receipts.new_once(), **limits())


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
        raise IntakeError(_("The text is longer than %(n)s characters. Send the rest in "
                            "a file, or in another submission.",
                            n=grouped(config.max_testimony_chars)))
    if len(uploads) > config.max_files:
        raise IntakeError(_("Too many files at once (at most %(n)d). Send the rest in "
                            "another submission.", n=config.max_files))
    if not testimony.strip() and not uploads:
        raise EmptySubmission(_("The form was empty: write something or choose a file, "
                                "then send it again."))


def chosen_alphabet(form) -> str:
    """The word list a new witness chose on the form; else the page's."""
    field = getattr(form, "alphabet", None)
    chosen = field.data if field is not None else None
    return chosen if chosen in ALPHABETS else DEFAULT_ALPHABET.get(str(get_locale()), "en")


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
                          limits=current_app.extensions.get("intake.sanitize_limits"),
                          codename_list=chosen_alphabet(form))
        joined.received()
    finally:
        for up in uploads:
            up.spool.close()
        joined.release()
    if receipt.held:  # the receipt asks about these; only this session may answer
        session[SESSION_KEY] = {**session.get(SESSION_KEY, {}),
                                **{h.item_id: to_session(h) for h in receipt.held}}
    return receipt


def to_receipt(rid: str):
    return redirect(url_for("witness.receipt", rid=rid), 303)


@bp.post("/submit")
def submit():
    form = SubmitForm()
    return receipts.receive_once(lambda: (receive_form(form), chosen_alphabet(form)),
                                 "new", to_receipt)


@bp.get("/receipt/<rid>")
def receipt(rid: str):
    """The receipt: the codename until the witness has shown they wrote it
    down (or for an hour), and what became of each file."""
    kept = receipts.find(rid)
    if kept is None:
        return render_template("receipt_gone.html"), 404
    check = kept.get("check", "")
    if check:
        receipts.update(rid, check="")  # said once
    files = receipts.outcomes(kept)
    if kept.get("kind") == "added":
        return render_template("followup_done.html", receipt={"files": files})
    words = kept.get("codename", "").split()
    return render_template("receipt.html", receipt={"files": files}, words=words, rid=rid,
                           check=check, alphabet=kept.get("alphabet", ""),
                           form=CodenameForm())


@bp.post("/receipt/<rid>/check")
def check_codename(rid: str):
    """The witness types the codename from their paper. A typo keeps the
    codename on screen, and says so; a match drops it from the session."""
    kept = receipts.find(rid)
    if kept is None or not kept.get("codename"):
        return redirect(url_for("witness.receipt", rid=rid), 303)
    typed = (CodenameForm().codename.data or "")[:MAX_CODENAME_CHARS]
    shown = codename.normalise(kept["codename"]) or ""
    same = hmac.compare_digest((codename.normalise(typed) or "\0").encode(), shown.encode())
    if same:
        receipts.update(rid, codename="", check="ok")
    else:
        receipts.update(rid, check="mismatch")
    return redirect(url_for("witness.receipt", rid=rid), 303)


def _was_sent(item_id: str, wait: bool) -> bool:
    """Whether the held file joined its submission: another request of this
    session (the same button pressed twice) sent it. When that request may
    still be storing it (the choice had not expired), waits a moment for it."""
    deadline = time.monotonic() + (SENT_WAIT_SECONDS if wait else 0)
    while True:
        with current_app.extensions["intake"].db.sessions() as s:
            if s.get(Item, item_id) is not None:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


@bp.post("/original")
def original_choice():
    """The witness's answer for a file that could not be cleaned: send it as
    it is, or drop it (intake.server.pending_originals). The same answer
    sent twice (a double click) is told what the first did."""
    item_id = request.form.get("item", "")
    held_files = dict(session.get(SESSION_KEY, {}))
    held = from_session(held_files.pop(item_id, None) or {})
    waiting = [h for h in map(from_session, held_files.values())
               if h is not None and h.until > time.time()]
    session[SESSION_KEY] = {h.item_id: to_session(h) for h in waiting}
    answered = dict(session.get(ANSWERED_KEY, {}))
    earlier = answered.get(item_id) if held is None else None
    pending = current_app.extensions["intake.pending"]
    if isinstance(earlier, dict):
        done, name = earlier.get("done", ""), earlier.get("name", "")
        done = "already_sent" if done in ("sent", "already_sent") else done
    elif held is None:
        done, name = "expired", ""
    else:
        name = held.name
        # Taken meanwhile by the same choice sent at once: not ours to take.
        still_open = held.until > time.time()
        if request.form.get("choice") == "send":
            if confirm_held(current_app.extensions["intake"], pending, held):
                done = "sent"
            else:
                done = "already_sent" if _was_sent(held.item_id, still_open) else "expired"
        elif _was_sent(held.item_id, False):
            done = "already_sent"
        else:
            pending.drop(held.item_id)
            done = "dropped"
    if done in ("sent", "already_sent", "dropped"):
        answered[item_id] = {"done": done, "name": name}
        session[ANSWERED_KEY] = dict(list(answered.items())[-ANSWERS_KEPT:])
    session[CHOICE_KEY] = {"done": done, "name": name}
    return redirect(url_for("witness.original_done"), 303)


@bp.get("/original")
def original_done():
    # Kept, not popped: a reload shows the same answer (and emptying the
    # session would end its cookie, and the forms on this page with it).
    answer = session.get(CHOICE_KEY) or {}
    # The others still open are asked again here, so no answer needs the back button.
    waiting = [h for h in map(from_session, session.get(SESSION_KEY, {}).values())
               if h is not None and h.until > time.time()]
    return render_template("original_choice.html", done=answer.get("done", ""),
                           name=answer.get("name", ""), waiting=waiting)
