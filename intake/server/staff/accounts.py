"""Staff accounts: an Argon2id password and a TOTP code, both required."""

from __future__ import annotations

import datetime as dt
import hmac
import threading
import time
import unicodedata
from dataclasses import dataclass

import pyotp
from nacl import pwhash
from nacl.exceptions import InvalidkeyError
from sqlalchemy import or_, select, update

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


def _find(s, name: str) -> StaffUser | None:
    """The account of that name as typed, else of its NFKC form (accounts
    made before names were stored in that form keep working)."""
    found = {u.name: u for u in s.scalars(select(StaffUser).where(  # one query either way
        StaffUser.name.in_({name, staff_name(name)})))}
    return found.get(name) or found.get(staff_name(name))


def remove(db, name: str) -> None:
    """Deletes an account; its sessions end at their next request."""
    with db.sessions() as s:
        user = _find(s, name)
        if user is None:
            raise AccountError(f"there is no staff account named {name}")
        s.delete(user)
        s.commit()


def unlock(db, name: str) -> bool:
    """Clears a lock and the count of wrong codes; False if it was not locked."""
    with db.sessions() as s:
        user = _find(s, name)
        if user is None:
            raise AccountError(f"there is no staff account named {name}")
        was_locked = user.locked_day is not None or user.totp_failures > 0
        user.locked_day, user.totp_failures = None, 0
        s.commit()
    return was_locked


def staff_name(typed: str) -> str:
    """A name as stored and as looked up: NFKC, so that the forms a keyboard
    or a browser may send of the same letters (composed or not, full-width)
    are one name."""
    return unicodedata.normalize("NFKC", typed)


# Scripts one name is written in together, as Unicode's "highly restrictive"
# profile (UTS #39) allows: Japanese mixes kanji with both kana, Korean hanja
# with hangul, Chinese hanzi with bopomofo. None of them passes for a Latin,
# Cyrillic or Greek letter.
WRITTEN_TOGETHER = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HANGUL",
                              "BOPOMOFO"})


def _script(ch: str) -> str:
    """The script a name's letter is written in, by its Unicode name
    (LATIN, CYRILLIC, ...; CJK for those written together); digits, - and _
    belong to none."""
    if ch in "-_" or ch.isdigit():
        return ""
    first = unicodedata.name(ch, "?").split(" ")[0]
    return "CJK" if first in WRITTEN_TOGETHER else first


def _look_alike(name: str) -> str:
    """One form for the names that would pass for each other: NFKC, case
    folded, NFKC again (Unicode's NFKC_Casefold, nearly); a name stored
    before names were kept in NFKC (`ａｌｉｃｅ`) is read so too."""
    return staff_name(staff_name(name).casefold())


def add(db, name: str, password: str, opslimit: int, memlimit: int,
        admin: bool = False) -> NewAccount:
    name = staff_name(name)
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
        raise AccountError("a staff name is 1-64 letters, digits, - or _")
    if len({_script(ch) for ch in name} - {""}) > 1:
        # "аlice" with a Cyrillic а would pass for "alice" in every list.
        raise AccountError("a staff name is written in one alphabet: this one mixes "
                           f"{' and '.join(sorted({_script(ch) for ch in name} - {''}))}")
    if len(password) < 12:
        raise AccountError("the password must have at least 12 characters")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise AccountError("the password holds a line break or another control character, "
                           "which a browser's password field cannot take (a password file "
                           "is read whole: remove any blank line)")
    secret = pyotp.random_base32()
    with db.sessions() as s:
        taken = {_look_alike(other): other for other in s.scalars(select(StaffUser.name))}
        if _look_alike(name) in taken:
            other = taken[_look_alike(name)]
            raise AccountError(f"a staff account named {name} exists already" if other == name
                               else f"a staff account named {other} exists already, "
                               f"and {name} would pass for it")
        s.add(StaffUser(name=name, password_hash=hash_password(password, opslimit, memlimit),
                        totp_secret=secret, last_totp_counter=0, is_admin=admin))
        s.commit()
    return NewAccount(name, password, secret)


def forget_used_codes(db, now: float) -> int:
    """The last code taken tells when its owner last logged in, to the half
    minute. Once no code at or before it can be valid (the window around
    now), the hourly pass (intake.server.tidy) moves it on to the last code
    that no longer can: the same for every account idle since, so it tells
    only when the pass ran. It never goes back: a code once used stays
    refused, even when the clock is stepped back after the pass (0 would
    make it valid again). Returns how many it moved."""
    forgotten = int(now) // TOTP_STEP - 2
    with db.sessions() as s:
        done = s.execute(update(StaffUser).where(StaffUser.last_totp_counter < forgotten)
                         .values(last_totp_counter=forgotten))
        s.commit()
    return done.rowcount


LOCK_AFTER = 5  # wrong codes in a row, after a right password


class Authenticator:
    """Checks name, password and TOTP with the same work for every failure.

    Only someone who knows the password can lock an account: wrong codes are
    counted only after a right password, and LOCK_AFTER of them in a row lock
    it for the rest of the day (or until `intake staff unlock`). Wrong
    passwords lock nothing: a stranger who knows a staff name cannot keep its
    owner out. The answer is the same in every case, so a locked account does
    not tell a guesser that the password was right. A code is used once:
    the database takes it only if it is later than the last one taken, so two
    logins racing with one code cannot both succeed."""

    def __init__(self, db, opslimit: int, memlimit: int, clock=time.time):
        self.db, self.clock = db, clock
        # A real hash to verify against when the name is unknown: equal timing.
        self._dummy = hash_password("not a real password", opslimit, memlimit)
        # Argon2id holds memlimit bytes while it runs: a few at a time.
        self._gate = threading.BoundedSemaphore(2)

    def _password_ok(self, stored: str, password: str) -> bool:
        try:
            with self._gate:
                return pwhash.verify(stored.encode(), password.encode())
        except InvalidkeyError:
            return False

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()

    def login(self, name: str, password: str, code: str) -> StaffUser | None:
        with self.db.sessions() as s:
            user = _find(s, name)
        password_ok = self._password_ok(user.password_hash if user else self._dummy, password)
        counter = self._totp_counter(user.totp_secret if user else pyotp.random_base32(), code)
        if user is None or not password_ok:
            return None
        today = self._today()
        not_locked = or_(StaffUser.locked_day.is_(None), StaffUser.locked_day < today)
        with self.db.sessions() as s:
            if counter is None:
                s.execute(update(StaffUser).where(StaffUser.id == user.id, not_locked)
                          .values(totp_failures=StaffUser.totp_failures + 1))
                s.execute(update(StaffUser).where(StaffUser.id == user.id,
                                                  StaffUser.totp_failures >= LOCK_AFTER)
                          .values(locked_day=today, totp_failures=0))
                s.commit()
                return None
            # A code already used is refused, even within its window.
            taken = s.execute(update(StaffUser).where(
                StaffUser.id == user.id, StaffUser.last_totp_counter < counter, not_locked)
                .values(last_totp_counter=counter, totp_failures=0, locked_day=None))
            s.commit()
            if taken.rowcount != 1:
                return None
            return s.get(StaffUser, user.id)

    def _totp_counter(self, secret: str, code: str) -> int | None:
        totp = pyotp.TOTP(secret)
        now = int(self.clock()) // TOTP_STEP
        found = None
        code = (code or "").strip().replace(" ", "")
        for counter in (now - 1, now, now + 1):
            if hmac.compare_digest(totp.generate_otp(counter).encode(), code.encode()):
                found = counter
        return found
