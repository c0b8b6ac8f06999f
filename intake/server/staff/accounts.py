"""Staff accounts: an Argon2id password and a TOTP code, both required."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import pyotp
from nacl import pwhash
from nacl.exceptions import InvalidkeyError
from sqlalchemy import select

from intake.server import codename
from intake.server.models import StaffUser

TOTP_STEP = 30


class AccountError(Exception):
    """The message is shown on the server console."""


@dataclass(frozen=True)
class NewAccount:
    name: str
    password: str
    totp_secret: str

    def provisioning_uri(self, issuer: str = "Intake staff") -> str:
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.name,
                                                             issuer_name=issuer)


def suggest_password() -> str:
    return codename.generate("en", 7)


def hash_password(password: str, opslimit: int, memlimit: int) -> str:
    return pwhash.argon2id.str(password.encode(), opslimit=opslimit,
                               memlimit=memlimit).decode()


def add(db, name: str, password: str, opslimit: int, memlimit: int,
        admin: bool = False) -> NewAccount:
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
        raise AccountError("a staff name is 1-64 letters, digits, - or _")
    if len(password) < 12:
        raise AccountError("the password must have at least 12 characters")
    secret = pyotp.random_base32()
    with db.sessions() as s:
        if s.scalars(select(StaffUser).where(StaffUser.name == name)).first():
            raise AccountError(f"a staff account named {name} exists already")
        s.add(StaffUser(name=name, password_hash=hash_password(password, opslimit, memlimit),
                        totp_secret=secret, last_totp_counter=0, is_admin=admin))
        s.commit()
    return NewAccount(name, password, secret)


class Authenticator:
    """Checks name, password and TOTP with the same work for every failure."""

    def __init__(self, db, opslimit: int, memlimit: int, clock=time.time):
        self.db, self.clock = db, clock
        # A real hash to verify against when the name is unknown: equal timing.
        self._dummy = hash_password("not a real password", opslimit, memlimit)

    def _password_ok(self, stored: str, password: str) -> bool:
        try:
            return pwhash.verify(stored.encode(), password.encode())
        except InvalidkeyError:
            return False

    def login(self, name: str, password: str, code: str) -> StaffUser | None:
        with self.db.sessions() as s:
            user = s.scalars(select(StaffUser).where(StaffUser.name == name)).first()
            password_ok = self._password_ok(user.password_hash if user else self._dummy,
                                            password)
            counter = self._totp_counter(user.totp_secret if user else pyotp.random_base32(),
                                         code)
            if user is None or not password_ok or counter is None:
                return None
            if counter <= user.last_totp_counter:
                return None  # a code already used: refused, even within its window
            user.last_totp_counter = counter
            s.commit()
            return user

    def _totp_counter(self, secret: str, code: str) -> int | None:
        totp = pyotp.TOTP(secret)
        now = int(self.clock()) // TOTP_STEP
        found = None
        code = (code or "").strip().replace(" ", "")
        for counter in (now - 1, now, now + 1):
            if hmac.compare_digest(totp.generate_otp(counter).encode(), code.encode()):
                found = counter
        return found
