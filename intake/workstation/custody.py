"""The custody log: every action on the vault, each entry hash-chained to the
last and signed with the vault's custody key.

    hash      = SHA-256 over the UTF-8 of the JSON array
                [seq, at, actor, action, subject, detail, prev_hash]
                (compact separators "," and ":", non-ASCII kept as is)
    signature = Ed25519 over "intake-custody/1\\n" + hash (its 64 hex digits)

`detail` is itself a JSON text, hashed as the string stored. The first
entry's prev_hash is 64 zeros.

The custody key is an Ed25519 key made for this vault the first time the
team key unlocks it. Its private half is kept in the vault sealed to the
team's public key (crypto_box_seal), and a binding (a crypto_box from the
team key to itself, over the custody public key) shows that whoever made it
held the team's private key: a custody key slipped in by someone without the
team key fails that check. So an entry can be written only by a command run
with the team key (and its passphrase), and a log rewritten and re-hashed by
anyone else fails at the first changed entry's signature. Against the team
itself the proof is the log's head, carried in every case export
(check_head): a later rewrite of anything before it is caught.
docs/workstation.md says what the log proves, and against whom.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import Box, PrivateKey, SealedBox
from nacl.signing import SigningKey, VerifyKey
from nacl.utils import random as random_bytes

from intake.format import untrusted_json
from intake.format.envelope import FINGERPRINT_BYTES, fingerprint

GENESIS = "0" * 64
SIGN_CONTEXT = b"intake-custody/1\n"
HEAD_FORMAT = "intake-custody-head/1"
SEALED_SEED_BYTES = 48 + 32  # crypto_box_seal of the 32-byte seed
BINDING_BYTES = 24 + 16 + 32  # crypto_box: nonce, MAC, the custody public key


class CustodyLocked(Exception):
    """An entry cannot be written: the custody key is not unlocked in this run."""


class CustodyKeyError(Exception):
    """The vault's custody key does not open with, or was not made by, this team key."""


class WrongTeamKey(CustodyKeyError):
    """The team key given is another team's: the vault's custody key was made
    with a different one. A refusal, not a sign of tampering."""


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, detail: str,
               prev_hash: str) -> str:
    doc = json.dumps([seq, at, actor, action, subject, detail, prev_hash],
                     ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def key_id(verify_key: VerifyKey) -> str:
    return hashlib.sha256(bytes(verify_key)).hexdigest()[:32]


@dataclass(frozen=True)
class Signer:
    """The unlocked custody key: held in memory for one run, never written."""

    signing_key: SigningKey

    @property
    def key_id(self) -> str:
        return key_id(self.signing_key.verify_key)

    def sign(self, digest: str) -> str:
        return self.signing_key.sign(SIGN_CONTEXT + digest.encode()).signature.hex()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: object) -> bytes:
    """Base64 from a vault row, which may hold anything: ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("not text")
    return base64.b64decode(value, validate=True)


def _b64_size(value: object) -> int | None:
    try:
        return len(_unb64(value))
    except ValueError:
        return None


def is_hex(value: object, digits: int) -> bool:
    """A text of exactly `digits` lowercase hex digits, as this module writes them."""
    return isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{digits}}}", value) is not None


@dataclass(frozen=True)
class StoredKey:
    """The vault's custody_key row, its public values checked for form."""

    key_id: str
    verify_key: VerifyKey
    team_fingerprint: str
    row: sqlite3.Row


def _stored_key(conn: sqlite3.Connection) -> StoredKey | None:
    """The vault's custody key, or None when it has none yet. Every value in
    vault.db may be anything SQLite holds: CustodyKeyError when the row is not
    one this module writes, or there is more than one."""
    rows = conn.execute("SELECT * FROM custody_key LIMIT 2").fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise CustodyKeyError("the vault holds more than one custody key: the vault was "
                              "tampered with")
    row = rows[0]
    if not (is_hex(row["verify_key"], 64) and is_hex(row["team_fingerprint"],
                                                     2 * FINGERPRINT_BYTES)
            and _b64_size(row["sealed_seed"]) == SEALED_SEED_BYTES
            and _b64_size(row["binding"]) == BINDING_BYTES):
        raise CustodyKeyError("the vault's custody key is malformed: the vault was tampered "
                              "with")
    verify = VerifyKey(bytes.fromhex(row["verify_key"]))
    if row["key_id"] != key_id(verify):
        raise CustodyKeyError("the vault's custody key is stored under another key id: the "
                              "vault was tampered with")
    return StoredKey(row["key_id"], verify, row["team_fingerprint"], row)


def check_team(stored: StoredKey, team_key: PrivateKey) -> None:
    """WrongTeamKey unless `team_key` is the one the custody key was made
    with, by the fingerprint recorded beside it: every command decides so."""
    if stored.team_fingerprint != fingerprint(team_key.public_key).hex():
        shown = ":".join(stored.team_fingerprint[i:i + 4]
                         for i in range(0, len(stored.team_fingerprint), 4))
        raise WrongTeamKey(f"not this vault's team key: its custody log is signed with the "
                           f"key of team key {shown}")


def _check_binding(stored: StoredKey, team_key: PrivateKey) -> VerifyKey:
    try:
        bound = Box(team_key, team_key.public_key).decrypt(_unb64(stored.row["binding"]))
    except (CryptoError, ValueError) as exc:
        raise CustodyKeyError("the vault's custody key was not made with this team key: "
                              "the vault was tampered with") from exc
    if bound != bytes(stored.verify_key):
        raise CustodyKeyError("the vault's custody key was not made with this team key: "
                              "the vault was tampered with")
    return stored.verify_key


def unlock(conn: sqlite3.Connection, team_key: PrivateKey, actor: str | None = None) -> Signer:
    """The vault's custody key, opened with the team key; made (and its making
    logged) the first time. Call outside a transaction."""
    stored = _stored_key(conn)
    team_fp = fingerprint(team_key.public_key).hex()
    if stored is None:
        seed = random_bytes(32)
        signer = Signer(SigningKey(seed))
        verify = bytes(signer.signing_key.verify_key)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _stored_key(conn) is not None:  # another run made it meanwhile
                conn.execute("ROLLBACK")
                return unlock(conn, team_key, actor)
            conn.execute(
                "INSERT INTO custody_key (key_id, verify_key, team_fingerprint, sealed_seed,"
                " binding, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (signer.key_id, verify.hex(), team_fp,
                 _b64(SealedBox(team_key.public_key).encrypt(seed)),
                 _b64(bytes(Box(team_key, team_key.public_key).encrypt(verify))), now()))
            _append(conn, signer, "custody key", "vault",
                    {"key_id": signer.key_id, "verify_key": verify.hex(),
                     "team_key": team_fp}, actor)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return signer
    check_team(stored, team_key)
    verify = _check_binding(stored, team_key)
    try:
        seed = SealedBox(team_key).decrypt(_unb64(stored.row["sealed_seed"]))
        signer = Signer(SigningKey(seed))
    except (CryptoError, ValueError) as exc:
        raise CustodyKeyError("the vault's custody key does not open with this team key") \
            from exc
    if bytes(signer.signing_key.verify_key) != bytes(verify):
        raise CustodyKeyError("the vault's custody key does not match its public half")
    return signer


def require(conn: sqlite3.Connection) -> Signer:
    """The custody key unlocked on this connection; CustodyLocked when there is
    none. Work that writes outside the vault before its entry asks first."""
    signer = getattr(conn, "signer", None)
    if signer is None:
        raise CustodyLocked("this needs the team key: the custody log is signed with it "
                            "(give --key)")
    return signer


def append(conn: sqlite3.Connection, action: str, subject: str, detail: dict | None = None,
           actor: str | None = None) -> str:
    """Adds one entry, signed with the key unlocked on this connection; call
    inside the transaction that does the action."""
    return _append(conn, require(conn), action, subject, detail, actor)


def _append(conn: sqlite3.Connection, signer: Signer, action: str, subject: str,
            detail: dict | None, actor: str | None) -> str:
    last = conn.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
    at = now()
    actor = " ".join((actor or default_actor()).split())
    text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = entry_hash(seq, at, actor, action, subject, text, prev)
    conn.execute("INSERT INTO custody (seq, at, actor, action, subject, detail, prev_hash, hash,"
                 " key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (seq, at, actor, action, subject, text, prev, digest, signer.key_id,
                  signer.sign(digest)))
    return digest


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head: str
    broken_seq: int | None = None
    reason: str = ""
    key_id: str = ""
    unsigned: int = 0  # entries from before the vault had a custody key


def check_signature(verify_key: VerifyKey, digest: str, signature: str) -> bool:
    try:
        verify_key.verify(SIGN_CONTEXT + digest.encode(), bytes.fromhex(signature))
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def verify(conn: sqlite3.Connection, team_key: PrivateKey | None = None) -> Verdict:
    """Walks the chain and every signature; with `team_key`, also checks that
    the custody key is the team's. Names the first entry that breaks.
    Raises WrongTeamKey, as unlock does, when `team_key` is another team's:
    that says nothing about the log.

    What the vault itself proves about the log's start: a stored custody key
    was recorded, when it was made, by a signed `custody key` entry naming
    it, and nothing was signed before it; so a vault that holds a custody key
    holds that entry as its first signed one, and a vault that holds
    submissions holds entries (every import is one). A log cut at its end is
    whole by itself: only the head an earlier export carries (check_head)
    shows that."""
    try:
        stored = _stored_key(conn)
    except CustodyKeyError as exc:
        return Verdict(False, 0, GENESIS, None, str(exc))
    kid = stored.key_id if stored else ""
    prev, expected_seq, count, unsigned = GENESIS, 1, 0, 0
    signed = False
    for row in conn.execute("SELECT * FROM custody ORDER BY seq"):
        seq = row["seq"]
        problem = _entry_problem(row, expected_seq, prev, stored, signed)
        if problem:
            return Verdict(False, count, prev, seq if type(seq) is int else None, problem, kid,
                           unsigned)
        if row["signature"] is None:
            if row["action"] == "custody key":  # unlock signs it, always
                return Verdict(False, count, prev, seq, f"entry {seq} records the making of a "
                               "custody key but is not signed: signatures were stripped", kid,
                               unsigned)
            unsigned += 1
        elif not signed:
            signed = True
            if not _records_key(row, stored):
                return Verdict(False, count, prev, seq, f"entry {seq} is the first signed one "
                               "but does not record the vault's custody key", kid, unsigned)
        prev, expected_seq, count = row["hash"], seq + 1, count + 1
    if stored is not None and not signed:
        reason = ("the log is empty, but the vault holds a custody key: the signed entry "
                  "that recorded it, and every entry after it, were removed" if not count else
                  "the vault holds a custody key but no entry is signed: the entry that "
                  "recorded it, and every one after it, were removed or stripped of their "
                  "signatures")
        return Verdict(False, count, prev, None, reason, kid, unsigned)
    if count and not signed:
        return Verdict(False, count, prev, None, "no entry is signed: this vault has no "
                       "custody key yet (run a vault command with --key)", kid, unsigned)
    if not count and conn.execute("SELECT EXISTS (SELECT 1 FROM submissions)").fetchone()[0]:
        return Verdict(False, 0, prev, None, "the log is empty, but the vault holds "
                       "submissions: their imports were logged, and the entries were removed")
    if team_key is not None and stored is not None:
        # After the walk: the fingerprint check_team reads is the one the
        # custody key's own signed entry records.
        check_team(stored, team_key)
        try:
            _check_binding(stored, team_key)
        except CustodyKeyError as exc:
            return Verdict(False, count, prev, None, str(exc), kid, unsigned)
    return Verdict(True, count, prev, None, "", kid, unsigned)


def _records_key(row: sqlite3.Row, stored: StoredKey) -> bool:
    """Whether `row` is the entry unlock writes when it makes the custody key."""
    if row["action"] != "custody key" or row["subject"] != "vault":
        return False
    try:
        detail = untrusted_json.loads(row["detail"])
    except ValueError:
        return False
    return isinstance(detail, dict) and detail.get("key_id") == stored.key_id \
        and detail.get("verify_key") == bytes(stored.verify_key).hex() \
        and detail.get("team_key") == stored.team_fingerprint


HASHED = ("at", "actor", "action", "subject", "detail", "prev_hash")


def _entry_problem(row: sqlite3.Row, expected_seq: int, prev: str, stored: StoredKey | None,
                   signed: bool) -> str:
    """What is wrong with one entry, read as anything SQLite may hold."""
    seq = row["seq"]
    if type(seq) is not int:
        return f"the entry after entry {expected_seq - 1} is not numbered with an integer"
    if seq != expected_seq:
        return f"entry {seq} follows entry {expected_seq - 1}: entries are missing"
    if row["prev_hash"] != prev:
        return f"entry {seq} does not point to the entry before it"
    if not all(isinstance(row[column], str) for column in (*HASHED, "hash")):
        return f"entry {seq} holds a value that is not text: it was changed after it was written"
    digest = entry_hash(seq, row["at"], row["actor"], row["action"], row["subject"],
                        row["detail"], row["prev_hash"])
    if digest != row["hash"]:
        return f"entry {seq} was changed after it was written"
    if row["signature"] is None:
        return f"entry {seq} is not signed" if signed else ""
    if stored is None or row["key_id"] != stored.key_id:
        return f"entry {seq} is signed with a key this vault does not hold"
    if not isinstance(row["signature"], str) or not check_signature(stored.verify_key, digest,
                                                                     row["signature"]):
        return f"entry {seq}'s signature does not verify: it was rewritten"
    return ""


def head(conn: sqlite3.Connection) -> dict:
    """The log's head as a case export carries it: the last entry's number and
    hash, signed again as one statement with the custody public key beside it."""
    last = conn.execute("SELECT seq, hash, signature FROM custody ORDER BY seq DESC LIMIT 1"
                        ).fetchone()
    stored = _stored_key(conn)
    if last is None or stored is None:
        raise CustodyLocked("the custody log has no signed head yet")
    return {"format": HEAD_FORMAT, "seq": last["seq"], "hash": last["hash"],
            "key_id": stored.key_id, "verify_key": bytes(stored.verify_key).hex(),
            "signature": last["signature"]}


MAX_SEQ = 2**63 - 1  # SQLite's largest integer


class MalformedHead(ValueError):
    """An export's custody-head.json is not a head this module writes."""


@dataclass(frozen=True)
class CarriedHead:
    """The head an export carries, every value checked for form."""

    seq: int
    hash: str
    verify_key: VerifyKey
    signature: str


def read_head(carried: object) -> CarriedHead:
    """The head in an export's custody-head.json (parsed JSON, from outside):
    MalformedHead unless it is one head() writes. Its values are not quoted
    back: a reason names the field only."""
    if not isinstance(carried, dict):
        raise MalformedHead("it is not a JSON object")
    if carried.get("format") != HEAD_FORMAT:
        raise MalformedHead(f"it is not {HEAD_FORMAT}")
    seq = carried.get("seq")
    if type(seq) is not int or not 1 <= seq <= MAX_SEQ:  # bool, float, 1e400, 10**29: no
        raise MalformedHead("its seq is not an entry number")
    for field, digits in (("hash", 64), ("verify_key", 64), ("signature", 128)):
        if not is_hex(carried.get(field), digits):
            raise MalformedHead(f"its {field} is not {digits} hex digits")
    return CarriedHead(seq, carried["hash"], VerifyKey(bytes.fromhex(carried["verify_key"])),
                       carried["signature"])


def check_head(conn: sqlite3.Connection, carried: CarriedHead) -> str | None:
    """None when the log still holds the head an earlier export carried
    (read_head); otherwise what changed."""
    if not check_signature(carried.verify_key, carried.hash, carried.signature):
        return "the export's custody head is not signed by its custody key"
    try:
        stored = _stored_key(conn)
    except CustodyKeyError as exc:
        return str(exc)
    if stored is None or bytes(stored.verify_key) != bytes(carried.verify_key):
        return "the vault's custody key is not the one that signed the export: the log was " \
               "re-signed"
    seq = carried.seq
    row = conn.execute("SELECT hash FROM custody WHERE seq = ?", (seq,)).fetchone()
    if row is None:
        return f"entry {seq}, the export's head, is gone from the log"
    if row["hash"] != carried.hash:
        return f"entry {seq} is not the one the export carries: the log was rewritten"
    return None


def entries_for(conn: sqlite3.Connection, subjects: set[str]) -> list[dict]:
    rows = conn.execute("SELECT * FROM custody ORDER BY seq").fetchall()
    return [dict(r) for r in rows if r["subject"] in subjects]
