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
from intake.server.witness import receipts
from intake.server.witness.forms import CodenameForm, FollowUpForm
from intake.server.witness.submit import MAX_CODENAME_CHARS, limits, receive_form, to_receipt

bp = Blueprint("returning", __name__)


def _intake():
    return current_app.extensions["intake"]


def _throttle():
    return current_app.extensions["intake.login_throttle"]


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


def _back_to_login(**said):
    # What the page says rides in its address, not the session: emptying a
    # session ends its cookie, and the form on the page would expire with it.
    return redirect(url_for("returning.login", **said), 303)


def _try_later(seconds: int):
    return _back_to_login(wait=_minutes(seconds))


@bp.get("/login")
def login():
    wait = request.args.get("wait", "")
    return render_template("login.html", form=CodenameForm(),
                           failed=request.args.get("failed") == "1",
                           wait=min(int(wait), 24 * 60) if wait.isdigit() else 0)


@bp.post("/login")
def login_post():
    intake, throttle = _intake(), _throttle()
    wait = throttle.wait_seconds()
    if wait:
        return _try_later(wait)
    form = CodenameForm()
    text = (form.codename.data or "")[:MAX_CODENAME_CHARS]
    # Always the same work, whether or not the codename exists, whatever the list.
    canonical = codename.secret_for_sign_in(text)
    derived = codename.derive(canonical, intake.secrets)
    counted = derived.lookup_hash  # failures are counted by the keyed hash alone
    wait = throttle.wait_seconds(counted)
    if wait:
        return _try_later(wait)
    witness, derived = _find_witness(intake, canonical, derived)
    if witness is None:
        throttle.failed(counted)
        return _back_to_login(failed=1)
    throttle.succeeded(counted)
    # A new session: no codename a receipt was showing comes along.
    session.clear()
    session.regenerate()
    session["witness"] = {"id": witness.id,
                          "reply_key": base64.b64encode(bytes(derived.reply_key)).decode(),
                          "seen": intake.clock()}
    return redirect(url_for("returning.account"), 303)


def _legacy_records_remain(intake, s) -> bool:
    """Whether any record of derivation 1 (Argon2id) is left. None is ever made
    again, so once there are none the answer stays no for this worker."""
    cache = current_app.extensions.setdefault("intake.legacy_codenames", {})
    if cache.get("remain", True):
        cache["remain"] = s.scalars(select(Witness.id).where(
            Witness.derivation == codename.ARGON2ID).limit(1)).first() is not None
    return cache["remain"]


def _find_witness(intake, canonical: str, derived: codename.Derived):
    """The witness whose record the codename derives, and how it was derived.

    A record made while codenames were stretched with Argon2id is found by
    that derivation, which costs what it did then; it is tried only while such
    records remain (retention removes them once idle).
    """
    with intake.db.sessions() as s:
        witness = s.scalars(select(Witness).where(
            Witness.lookup_hash == derived.lookup_hash,
            Witness.derivation == codename.KEYED_BLAKE2B)).first()
        if witness is None and _legacy_records_remain(intake, s):
            old = codename.derive_argon2id(canonical, intake.secrets,
                                           intake.config.kdf_opslimit,
                                           intake.config.kdf_memlimit)
            witness = s.scalars(select(Witness).where(
                Witness.lookup_hash == old.lookup_hash,
                Witness.derivation == codename.ARGON2ID)).first()
            if witness is not None:
                derived = old
    return witness, derived


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


def _session_minutes() -> int:
    return _minutes(_intake().config.session_lifetime)


def _session_ended():
    """The page for a request whose session had ended. A follow-up written
    for longer than the session lasts is not kept; its text (never its
    files) is given back, so the witness can copy it and send it again
    once logged in. It is kept nowhere."""
    sent = request.method == "POST" and (request.endpoint or "").endswith(
        "returning.follow_up")
    typed = ""
    if sent:
        typed = (request.form.get("testimony") or "")[:_intake().config.max_testimony_chars]
    return render_template("session_ended.html", sent=sent, typed=typed,
                           minutes=_session_minutes()), 401


def witness_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        state = session.get("witness")
        if not state:
            return redirect(url_for("returning.login"), 303)
        intake = _intake()
        if not _alive(state):
            session.clear()  # the session row, and the reply key in it, are deleted
            return _session_ended()
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
                           replies=_replies(g.witness_id, g.reply_key), form=FollowUpForm(),
                           once=receipts.new_once(), session_minutes=_session_minutes(),
                           **limits())


@bp.post("/account/add")
@witness_required
def follow_up():
    form = FollowUpForm()
    return receipts.receive_once(
        lambda: (receive_form(form, witness_id=g.witness_id), ""), "added", to_receipt)


@bp.post("/account/replies/<reply_id>/delete")
@witness_required
def delete_reply(reply_id: str):
    with _intake().db.sessions() as s:
        done = s.execute(delete(Reply).where(Reply.id == reply_id,
                                             Reply.witness_id == g.witness_id))
        s.commit()
    if done.rowcount != 1:
        abort(404)
    return redirect(url_for("returning.account"), 303)


@bp.post("/logout")
def logout():
    session.clear()  # the session row goes, and any codename a receipt still held
    return redirect(url_for("returning.logged_out"), 303)


@bp.get("/logged-out")
def logged_out():
    return render_template("logged_out.html")

