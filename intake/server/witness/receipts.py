"""What a sent form leaves for the page that answers it: post, redirect, get.

A form that changes something answers with a redirect to a page of its own,
so reloading that page, or Tor Browser retrying, sends nothing again. What the
page shows (the new codename, what became of each file) is kept in the
server-side session (intake.server.web.sessions): its row is sealed with a key
that only the witness's cookie carries, so the database alone does not hold
the codename in the clear. The codename is dropped from it as soon as the
witness has shown they wrote it down, when they log out, or after an hour.

Every form carries a random token (`once`). A form sent again with the same
token, as a retry does, is answered with the first answer: a redirect to the
same receipt, and no second submission. The token is claimed in the stored
session before the form is received, so a retry that arrives while the first
is still being received (in this worker or another) waits for its answer
instead of sending it again.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from dataclasses import asdict

from flask import current_app, request, session
from sqlalchemy.exc import SQLAlchemyError

from intake.server.receive import FileOutcome, Receipt
from intake.server.web.errors import StillReceiving

RECEIPTS = "receipts"
ONCE = "once"
ONCE_FIELD = "once"
SHOWN_SECONDS = 3600  # how long a receipt shows the codename at most
KEPT = 5  # receipts a session remembers; older ones are forgotten
CLAIM_SECONDS = 900  # a claim older than this was left by a worker that stopped
WAIT_SECONDS = 30  # how long a retry waits for the first to be received
# Retries that may wait at once in a worker: each holds an app thread while it
# waits, so retries of one slow submission, sent over and over, could hold
# every thread. Past these, a retry is answered at once ("still being received").
WAITING_AT_ONCE = 2
_waiting = threading.BoundedSemaphore(WAITING_AT_ONCE)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ID = re.compile(r"[0-9a-f]{32}")


def new_once() -> str:
    """A fresh token for a form about to be shown."""
    return secrets.token_urlsafe(24)


def sent_once() -> str | None:
    """The form's token, if it carries a well-formed one."""
    token = request.form.get(ONCE_FIELD, "")
    return token if _TOKEN.fullmatch(token) else None


def _stored() -> dict:
    """The session as stored now: another request of it may have changed it."""
    return current_app.session_interface.open_session(current_app, request) or {}


def _store(change) -> None:
    """Folds in the receipts and tokens other requests of this session stored
    meanwhile (another tab), applies change(), and stores the session at once,
    all while the stored row is held: two forms sent at once from one browser
    keep both receipts. The cookie is set on the real answer, as always."""

    def merge(stored: dict) -> None:
        for key in (RECEIPTS, ONCE):
            theirs = stored.get(key)
            if isinstance(theirs, dict):
                # Theirs is newer for every entry this request did not add.
                session[key] = {**session.get(key, {}), **theirs}
        change()

    current_app.session_interface.store_merged(current_app, session, merge)


def _answer(once: dict, token: str) -> str | None:
    """The receipt id, "claimed" while the first is being received, or None."""
    value = once.get(token)
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    if isinstance(value, dict) and value.get("claimed", 0) > time.time():
        return "claimed"
    return None


def answered(token: str | None) -> str | None:
    """The receipt id a form with this token already led to, or None. While
    the first is still being received, waits for it (WAIT_SECONDS at most,
    and only while fewer than WAITING_AT_ONCE others wait), else raises
    StillReceiving."""
    if token is None:
        return None
    answer = _answer(session.get(ONCE, {}), token)
    if answer != "claimed":
        return answer
    if not _waiting.acquire(blocking=False):
        raise StillReceiving()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while answer == "claimed":
            if time.monotonic() > deadline:
                raise StillReceiving()
            time.sleep(1)  # the first request is still sealing; its answer is stored
            answer = _answer(_stored().get(ONCE, {}), token)
        return answer
    finally:
        _waiting.release()


def claim(token: str | None) -> None:
    """Marks the form's token as being received, in the stored session."""
    if token is None:
        return

    def change():
        once = dict(session.get(ONCE, {}))
        once[token] = {"claimed": time.time() + CLAIM_SECONDS}
        session[ONCE] = dict(list(once.items())[-KEPT * 2:])

    _store(change)


def release(token: str | None) -> None:
    """The form was not received: the same token may be sent again."""
    if token is None:
        return

    def change():
        once = dict(session.get(ONCE, {}))
        once.pop(token, None)
        session[ONCE] = once

    # When the database itself refused the form, the claim lapses in its time.
    with contextlib.suppress(SQLAlchemyError):
        _store(change)


def keep(token: str | None, receipt: Receipt, kind: str, alphabet: str = "") -> str:
    """Keeps what the receipt page shows; returns its id."""
    rid = secrets.token_hex(16)

    def change():
        kept = dict(session.get(RECEIPTS, {}))
        kept[rid] = {"kind": kind, "codename": receipt.codename, "alphabet": alphabet,
                     "files": [asdict(f) for f in receipt.files],
                     "until": time.time() + SHOWN_SECONDS, "check": ""}
        session[RECEIPTS] = dict(list(kept.items())[-KEPT:])
        if token is not None:
            once = dict(session.get(ONCE, {}))
            once[token] = rid
            session[ONCE] = dict(list(once.items())[-KEPT * 2:])

    _store(change)
    return rid


def receive_once(receive, kind: str, redirect_to) -> object:
    """Runs receive() once per form token; answers with redirect_to(receipt id).
    receive returns (receipt, alphabet)."""
    token = sent_once()
    earlier = answered(token)
    if earlier:  # the same form again (a reload, a retry): the first answer
        return redirect_to(earlier)
    claim(token)
    try:
        receipt, alphabet = receive()
    except BaseException:
        release(token)
        raise
    return redirect_to(keep(token, receipt, kind, alphabet))


def find(rid: str) -> dict | None:
    """A receipt of this session; a codename shown for its hour is dropped."""
    if not _ID.fullmatch(rid):
        return None
    receipt = session.get(RECEIPTS, {}).get(rid)
    if not isinstance(receipt, dict):
        return None
    if receipt.get("codename") and time.time() > receipt.get("until", 0):
        update(rid, codename="")
        receipt = session[RECEIPTS][rid]
    return receipt


def update(rid: str, **changes) -> None:
    kept = dict(session.get(RECEIPTS, {}))
    kept[rid] = {**kept[rid], **changes}
    session[RECEIPTS] = kept


def outcomes(receipt: dict) -> list[FileOutcome]:
    out = []
    for f in receipt.get("files", []):
        try:
            out.append(FileOutcome(**f))
        except TypeError:
            continue  # a session written by another version: not shown
    return out

