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
same receipt, and no second submission.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict

from flask import request, session

from intake.server.receive import FileOutcome, Receipt

RECEIPTS = "receipts"
ONCE = "once"
ONCE_FIELD = "once"
SHOWN_SECONDS = 3600  # how long a receipt shows the codename at most
KEPT = 5  # receipts a session remembers; older ones are forgotten
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ID = re.compile(r"[0-9a-f]{32}")


def new_once() -> str:
    """A fresh token for a form about to be shown."""
    return secrets.token_urlsafe(24)


def sent_once() -> str | None:
    """The form's token, if it carries a well-formed one."""
    token = request.form.get(ONCE_FIELD, "")
    return token if _TOKEN.fullmatch(token) else None


def answered(token: str | None) -> str | None:
    """The receipt id a form with this token already led to, or None."""
    if token is None:
        return None
    rid = session.get(ONCE, {}).get(token)
    return rid if isinstance(rid, str) and _ID.fullmatch(rid) else None


def keep(token: str | None, receipt: Receipt, kind: str, alphabet: str = "") -> str:
    """Keeps what the receipt page shows; returns its id."""
    rid = secrets.token_hex(16)
    kept = dict(session.get(RECEIPTS, {}))
    kept[rid] = {"kind": kind, "codename": receipt.codename, "alphabet": alphabet,
                 "files": [asdict(f) for f in receipt.files],
                 "until": time.time() + SHOWN_SECONDS, "check": ""}
    session[RECEIPTS] = dict(list(kept.items())[-KEPT:])
    if token is not None:
        once = dict(session.get(ONCE, {}))
        once[token] = rid
        session[ONCE] = dict(list(once.items())[-KEPT * 2:])
    return rid


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

