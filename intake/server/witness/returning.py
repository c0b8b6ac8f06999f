"""A returning witness: codename login, their record, replies, follow-ups.

The codename is used once per login to derive the lookup id and the reply key,
then dropped. The reply key lives in the server-side session, sealed with a
key only the witness's cookie carries, and only until the session ends.
"""

from __future__ import annotations

import base64
import io
import time
from functools import wraps

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from nacl.public import PrivateKey
from sqlalchemy import delete, select

from intake.format.envelope import EnvelopeError, open_envelope
from intake.server import codename
from intake.server.front import HEAD_AT
from intake.server.models import Reply, Submission, Witness
from intake.server.witness.forms import CodenameForm, FollowUpForm
from intake.server.witness.submit import receive_form

bp = Blueprint("returning", __name__)
MAX_CODENAME_CHARS = 300


def _intake():
    return current_app.extensions["intake"]


def _throttle():
    return current_app.extensions["intake.login_throttle"]


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


def _try_later(seconds: int):
    return render_template("login_wait.html", minutes=_minutes(seconds)), 429


@bp.get("/login")
def login():
    return render_template("login.html", form=CodenameForm())


@bp.post("/login")
def login_post():
    intake, throttle = _intake(), _throttle()
    wait = throttle.wait_seconds()
    if wait:
        return _try_later(wait)
    form = CodenameForm()
    text = (form.codename.data or "")[:MAX_CODENAME_CHARS]
    # Always the same work, whether or not the codename exists, whatever the list.
    derived = codename.derive(codename.secret_for_sign_in(text), intake.secrets,
                              intake.config.kdf_opslimit, intake.config.kdf_memlimit)
    wait = throttle.wait_seconds(derived.lookup_hash)
    if wait:
        return _try_later(wait)
    with intake.db.sessions() as s:
        witness = s.scalars(select(Witness).where(
            Witness.lookup_hash == derived.lookup_hash)).first()
    if witness is None:
        throttle.failed(derived.lookup_hash)
        return render_template("login_failed.html"), 403
    throttle.succeeded(derived.lookup_hash)
    keep = {k: session[k] for k in ("lang",) if k in session}  # the language stays
    session.clear()
    session.regenerate()
    session.update(keep)
    session["witness"] = {"id": witness.id,
                          "reply_key": base64.b64encode(bytes(derived.reply_key)).decode(),
                          "seen": intake.clock()}
    return redirect(url_for("returning.account"))


def _alive(state: dict) -> bool:
    """Whether the session was alive when this request began: under the
    server's front, when its head arrived, so a follow-up whose files take
    longer than session_lifetime to arrive is not thrown away at its end."""
    intake = _intake()
    now = intake.clock()
    head_at = request.environ.get(HEAD_AT)
    began = now if head_at is None else now - max(0.0, time.monotonic() - head_at)
    return began - state.get("seen", 0) <= intake.config.session_lifetime


def keep_alive() -> None:
    """A logged-in witness's files arriving in pieces (/uploads/) is activity:
    it keeps their session alive for the form that follows."""
    state = session.get("witness")
    if state and _alive(state):
        state["seen"] = _intake().clock()
        session["witness"] = state


def witness_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        state = session.get("witness")
        if not state:
            return redirect(url_for("returning.login"))
        intake = _intake()
        if not _alive(state):
            session.clear()  # the session row, and the reply key in it, are deleted
            return render_template("session_ended.html"), 401
        state["seen"] = intake.clock()
        session["witness"] = state
        g.witness_id = state["id"]
        g.reply_key = PrivateKey(base64.b64decode(state["reply_key"]))
        return view(*args, **kwargs)

    return wrapper


def _replies(witness_id: str, key: PrivateKey) -> list[dict]:
    out = []
    with _intake().db.sessions() as s:
        rows = s.scalars(select(Reply).where(Reply.witness_id == witness_id)
                         .order_by(Reply.received_day, Reply.id)).all()
    for r in rows:
        try:
            text, _meta = open_envelope(io.BytesIO(r.envelope), key)
            out.append({"id": r.id, "day": r.received_day, "text": text.decode(),
                        "ok": True})
        except (EnvelopeError, UnicodeDecodeError):
            out.append({"id": r.id, "day": r.received_day, "text": "", "ok": False})
    return out


@bp.get("/account")
@witness_required
def account():
    with _intake().db.sessions() as s:
        days = s.scalars(select(Submission.received_day)
                         .where(Submission.witness_id == g.witness_id)
                         .order_by(Submission.received_day)).all()
    return render_template("account.html", submissions=days,
                           replies=_replies(g.witness_id, g.reply_key), form=FollowUpForm())


@bp.post("/account/add")
@witness_required
def follow_up():
    receipt = receive_form(FollowUpForm(), witness_id=g.witness_id)
    return render_template("followup_done.html", receipt=receipt)


@bp.post("/account/replies/<reply_id>/delete")
@witness_required
def delete_reply(reply_id: str):
    with _intake().db.sessions() as s:
        done = s.execute(delete(Reply).where(Reply.id == reply_id,
                                             Reply.witness_id == g.witness_id))
        s.commit()
    if done.rowcount != 1:
        abort(404)
    return redirect(url_for("returning.account"))


@bp.post("/logout")
def logout():
    session.clear()
    return render_template("logged_out.html")

