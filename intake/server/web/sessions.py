"""Server-side sessions whose cookie is an opaque random token.

The token is never stored. The row is found by a hash of it, and its contents
are sealed with a key derived from it, so the database alone reveals nothing
about a session, not even when it was used: only the day it expires.

Only a token the server made is taken: 32 random bytes followed by a tag
keyed with the server's secret. A cookie the server did not make (one a
client chose, to learn later what is kept under it) is replaced by a new
token, and nothing is ever stored under it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable

from flask import request
from flask.sessions import SessionInterface, SessionMixin
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.datastructures import CallbackDict

from intake.server.models import WebSession
from intake.server.store import today

COOKIE = "intake_session"


CSRF_KEY = "csrf_token"  # where Flask-WTF keeps its raw token
RANDOM_BYTES = 32
TAG_BYTES = 16


def _tag(secret: bytes, raw: bytes) -> bytes:
    return hmac.new(secret, b"intake-session-token:" + raw, hashlib.sha256).digest()[:TAG_BYTES]


def new_token(secret: bytes) -> str:
    """A session token only this server can have made: random bytes and their tag."""
    raw = secrets.token_bytes(RANDOM_BYTES)
    return base64.urlsafe_b64encode(raw + _tag(secret, raw)).rstrip(b"=").decode()


def issued(secret: bytes, token: str | None) -> bool:
    """Whether this server made the token (in its one spelling), in constant time."""
    if not token or len(token) > 100:
        return False
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return False
    if len(data) != RANDOM_BYTES + TAG_BYTES or \
            base64.urlsafe_b64encode(data).rstrip(b"=").decode() != token:
        return False
    return hmac.compare_digest(data[RANDOM_BYTES:], _tag(secret, data[:RANDOM_BYTES]))


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, token: str | None = None, stored: bool = False,
                 unavailable: bool = False):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.stored = stored  # a row exists for this token
        self.unavailable = unavailable  # the database did not answer: keep nothing
        self.modified = False
        self.read = False
        self.retired: str | None = None

    def __getitem__(self, key):
        self.read = True
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read = True
        return super().get(key, default)

    def regenerate(self) -> None:
        """A new cookie token at login, so a token known before cannot ride along."""
        self.retired, self.token, self.modified = self.token, None, True


def _ids(token: str) -> tuple[str, bytes]:
    raw = token.encode()
    row_id = hashlib.blake2b(raw, digest_size=32, person=b"intake-sess-id").hexdigest()
    key = hashlib.blake2b(raw, digest_size=32, person=b"intake-sess-key").digest()
    return row_id, key


def csrf_for(secret: bytes, token: str) -> str:
    """The form token's secret half, derived from the cookie: kept nowhere."""
    return hmac.new(secret, b"intake-csrf:" + token.encode(), hashlib.sha256).hexdigest()


class DatabaseSessionInterface(SessionInterface):
    """A session row is written only when there is something to keep (a
    language chosen, a login): a witness who only opens the form and sends it
    gets a cookie, and the database gets nothing until the submission."""

    def __init__(self, cookie_name: str = COOKIE, lifetime_days: int = 2):
        # Rows outlive the longest form (a day) and are swept by their day.
        self.cookie_name = cookie_name
        self.lifetime_days = lifetime_days

    def _db(self, app):
        return app.extensions["intake"].db

    def open_session(self, app, request):
        token = request.cookies.get(self.cookie_name)
        if not issued(app.secret_key, token):
            # Never adopted: a new token of our own, and nothing of the old one.
            return self._fresh(app, new_token(app.secret_key))
        row_id, key = _ids(token)
        try:
            with self._db(app).sessions() as s:
                row = s.get(WebSession, row_id)
        except SQLAlchemyError:
            # Pages (the error page first) must still render; nothing is kept.
            return self._fresh(app, token, unavailable=True)
        data = self._opened(row, key)
        if data is None:
            return self._fresh(app, token)
        data[CSRF_KEY] = csrf_for(app.secret_key, token)
        return ServerSession(data, token, stored=True)

    @staticmethod
    def _fresh(app, token: str, unavailable: bool = False) -> ServerSession:
        return ServerSession({CSRF_KEY: csrf_for(app.secret_key, token)}, token,
                             unavailable=unavailable)

    def save_session(self, app, session, response):
        if not isinstance(session, ServerSession) or session.unavailable:
            return
        kept = {k: v for k, v in session.items() if k != CSRF_KEY}
        gone = [session.retired] if session.retired else []
        if session.stored and not kept and session.token:
            gone.append(session.token)  # emptied (logged out, ended)
        if gone:
            with self._db(app).sessions() as s:
                s.execute(delete(WebSession).where(WebSession.id.in_([_ids(t)[0]
                                                                     for t in gone])))
                s.commit()
            session.retired, session.stored = None, session.stored and bool(kept)
        if kept and (session.modified or session.token is None):
            token = session.token or new_token(app.secret_key)
            self._keep(app, token, kept)
            # Stored: the end of the request writes it again only if it changes
            # again, not over what another request of it stored meanwhile.
            session.token, session.stored, session.modified = token, True, False
        elif not kept and session.modified:
            response.delete_cookie(self.cookie_name, path="/",
                                   secure=app.config["SESSION_COOKIE_SECURE"],
                                   httponly=True, samesite="Strict")
            return
        if session.token and (session.stored or session.read) \
                and request.cookies.get(self.cookie_name) != session.token:
            self._set_cookie(app, response, session.token)  # new, or a cookie and no row

    def store_merged(self, app, session, merge: Callable[[dict], None]) -> None:
        """Stores the session at once (not at the end of the request), after
        merge(stored) has folded into it what other requests of the same
        session stored meanwhile. The row is read and written in one
        transaction that holds it (the database, with SQLite), so two
        requests of one session at once (two tabs sending their forms)
        never lose each other's changes. The cookie is set on the request's
        own answer, as always."""
        if not isinstance(session, ServerSession) or session.unavailable:
            return
        token = session.token or new_token(app.secret_key)
        row_id, key = _ids(token)
        hold = update(WebSession).where(WebSession.id == row_id) \
            .values(expires_day=WebSession.expires_day)
        for attempt in (1, 2):
            try:
                with self._db(app).sessions() as s:
                    s.execute(hold)  # a write first: the row is ours until the commit
                    row = s.get(WebSession, row_id)
                    merge(self._opened(row, key) or {})
                    kept = {k: v for k, v in session.items() if k != CSRF_KEY}
                    values = self._sealed(key, kept)
                    if row is None:
                        s.add(WebSession(id=row_id, **values))
                    else:
                        row.sealed, row.expires_day = values["sealed"], values["expires_day"]
                    s.commit()
                break
            except IntegrityError:
                # Both found no row and both inserted: now there is one to hold.
                if attempt == 2:
                    raise
        session.token, session.stored, session.modified = token, True, False

    def _opened(self, row: WebSession | None, key: bytes) -> dict | None:
        if row is None or row.expires_day < today():
            return None
        try:
            data = json.loads(SecretBox(key).decrypt(row.sealed))
        except (CryptoError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _sealed(self, key: bytes, data: dict) -> dict:
        return {"sealed": bytes(SecretBox(key).encrypt(json.dumps(data).encode())),
                "expires_day": today() + dt.timedelta(days=self.lifetime_days)}

    def _keep(self, app, token: str, data: dict) -> None:
        """Writes the row, made or replaced. Two requests of one new session
        (two tabs, a form sent twice) may both find no row and both insert:
        the one that loses the race stores its state as an update instead of
        failing, so neither is answered that nothing could be stored."""
        row_id, key = _ids(token)
        values = self._sealed(key, data)
        db = self._db(app)
        replace = update(WebSession).where(WebSession.id == row_id).values(**values)
        try:
            with db.sessions() as s:
                if s.execute(replace).rowcount == 0:
                    s.add(WebSession(id=row_id, **values))
                s.execute(delete(WebSession).where(WebSession.expires_day < today()))
                s.commit()
        except IntegrityError:
            # Inserted meanwhile by the other request: the row is there now.
            with db.sessions() as s:
                s.execute(replace)
                s.commit()

    def _set_cookie(self, app, response, token: str) -> None:
        # A session cookie (no Max-Age): gone when the browser closes.
        response.set_cookie(self.cookie_name, token, path="/",
                            secure=app.config["SESSION_COOKIE_SECURE"], httponly=True,
                            samesite="Strict")

