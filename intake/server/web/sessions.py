"""Server-side sessions whose cookie is an opaque random token.

The token is never stored. The row is found by a hash of it, and its contents
are sealed with a key derived from it, so the database alone reveals nothing
about a session, not even when it was used: only the day it expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from flask.sessions import SessionInterface, SessionMixin
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from sqlalchemy import delete
from werkzeug.datastructures import CallbackDict

from intake.server.models import WebSession
from intake.server.store import today

COOKIE = "intake_session"


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, token: str | None = None):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.modified = False
        self.retired: str | None = None

    def regenerate(self) -> None:
        """A new cookie token at login, so a token known before cannot ride along."""
        self.retired, self.token, self.modified = self.token, None, True


def _ids(token: str) -> tuple[str, bytes]:
    raw = token.encode()
    row_id = hashlib.blake2b(raw, digest_size=32, person=b"intake-sess-id").hexdigest()
    key = hashlib.blake2b(raw, digest_size=32, person=b"intake-sess-key").digest()
    return row_id, key


class DatabaseSessionInterface(SessionInterface):
    def __init__(self, cookie_name: str = COOKIE, lifetime_days: int = 2):
        # Rows outlive the longest form (a day) and are swept by their day.
        self.cookie_name = cookie_name
        self.lifetime_days = lifetime_days

    def _db(self, app):
        return app.extensions["intake"].db

    def open_session(self, app, request):
        token = request.cookies.get(self.cookie_name)
        if not token or len(token) > 100:
            return ServerSession()
        row_id, key = _ids(token)
        with self._db(app).sessions() as s:
            row = s.get(WebSession, row_id)
            if row is None or row.expires_day < today():
                return ServerSession()
            try:
                data = json.loads(SecretBox(key).decrypt(row.sealed))
            except (CryptoError, ValueError):
                return ServerSession()
        return ServerSession(data, token)

    def save_session(self, app, session, response):
        if not isinstance(session, ServerSession):
            return
        name = self.cookie_name
        secure = app.config["SESSION_COOKIE_SECURE"]
        if not session and session.token is None:
            return
        with self._db(app).sessions() as s:
            if session.retired:
                s.execute(delete(WebSession).where(WebSession.id == _ids(session.retired)[0]))
                session.retired = None
            if not session:
                s.execute(delete(WebSession).where(WebSession.id == _ids(session.token)[0]))
                s.commit()
                response.delete_cookie(name, path="/", secure=secure, httponly=True,
                                       samesite="Strict")
                return
            if not session.modified and session.token is not None:
                return
            token = session.token or secrets.token_urlsafe(32)
            row_id, key = _ids(token)
            sealed = SecretBox(key).encrypt(json.dumps(dict(session)).encode())
            expires = today() + dt.timedelta(days=self.lifetime_days)
            s.merge(WebSession(id=row_id, sealed=bytes(sealed), expires_day=expires))
            s.execute(delete(WebSession).where(WebSession.expires_day < today()))
            s.commit()
        session.token = token
        # A session cookie (no Max-Age): gone when the browser closes.
        response.set_cookie(name, token, path="/", secure=secure, httponly=True,
                            samesite="Strict")
