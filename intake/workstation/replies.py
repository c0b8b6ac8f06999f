"""Replies to witnesses: sealed here to the witness's reply key, carried to the
server in a reply bundle. Format in docs/workstation.md.

    reply envelope = intake.envelope with one recipient, the witness's reply
                     public key; content: the message as UTF-8; metadata:
                     {"format": "intake-reply/1", "reply_id", "witness_id",
                      "submission_id", "written_day"}
    team copy      = the same content sealed to the team's keys (those the
                     vault learnt on import), kept as VAULT/replies/<id>.team.env;
                     metadata: the reply's, with "format": "intake-reply-copy/1"
                     and "envelope_sha256", the SHA-256 of the witness's envelope
    reply bundle   = POSIX tar, manifest.json first, then replies/<reply id>.env

The witness's envelope opens only with their codename; the team copy lets the
team re-read exactly what it sent, with the team key. Both hashes go into the
custody log when the reply is written, and every re-reading is logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey

from intake.format.envelope import EnvelopeError, Recipient, fingerprint, open_envelope, seal
from intake.format.reply_bundle import entry_for, iter_reply_bundle
from intake.workstation import custody
from intake.workstation.folders import Folder
from intake.workstation.refusals import N_, Refusal
from intake.workstation.safe_text import has_controls
from intake.workstation.vault import Vault, valid_id

REPLY_FORMAT = "intake-reply/1"
COPY_FORMAT = "intake-reply-copy/1"
MAX_MESSAGE_CHARS = 20_000


class ReplyError(Refusal):
    """A reply that cannot be written; the message says why."""


def remember_team_key(conn: sqlite3.Connection, public_key: PublicKey, name: str) -> None:
    """Records a team public key (on import), so that replies are sealed to it too."""
    conn.execute("INSERT OR IGNORE INTO team_keys (fingerprint, public_key, name)"
                 " VALUES (?, ?, ?)", (fingerprint(public_key).hex(),
                                       base64.b64encode(bytes(public_key)).decode(), name))


def team_recipients(conn: sqlite3.Connection) -> list[Recipient]:
    return [Recipient(PublicKey(base64.b64decode(r[0], validate=True)))
            for r in conn.execute("SELECT public_key FROM team_keys ORDER BY fingerprint")]


def copy_name(reply_id: str) -> str:
    return f"{valid_id(reply_id)}.team.env"


def copy_path(vault: Vault, reply_id: str) -> Path:
    """For messages and tests; the file is reached through vault.replies."""
    return vault.replies_dir / copy_name(reply_id)


def _write_new(folder: Folder, name: str, data: bytes) -> None:
    """A new file in a folder held open (exclusive, never through a link), durable."""
    with os.fdopen(folder.create(name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read(folder: Folder, name: str) -> bytes:
    with os.fdopen(folder.open_read(name), "rb") as f:
        return f.read()


def _sealed(recipients: list[Recipient], message: str, meta: dict) -> bytes:
    buf = io.BytesIO()
    seal(buf, recipients, [message.encode()], meta)
    return buf.getvalue()


def write_reply(vault: Vault, submission_id: str, message: str,
                actor: str | None = None) -> str:
    # A browser sends a textarea's line breaks as CRLF: kept as one line break,
    # so the limit counts what the form's maxlength counts.
    message = message.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not message:
        raise ReplyError(N_("the reply is empty"))
    if len(message) > MAX_MESSAGE_CHARS:
        raise ReplyError(N_("the reply is longer than %(n)d characters"), n=MAX_MESSAGE_CHARS)
    if has_controls(message):  # as a note: nothing the witness's page would hide or obey
        raise ReplyError(N_("the reply may not hold control characters other than line "
                            "breaks and tabs"))
    row = vault.conn.execute(
        "SELECT s.witness_id, w.reply_public_key FROM submissions s LEFT JOIN witnesses w"
        " ON w.witness_id = s.witness_id WHERE s.submission_id = ?", (submission_id,)).fetchone()
    if row is None:
        raise ReplyError(N_("no submission %(id)s in this vault"), id=submission_id)
    if not row["reply_public_key"]:
        raise ReplyError(N_("this witness has no reply key in the vault (import a newer "
                            "bundle)"))
    team = team_recipients(vault.conn)
    if not team:
        raise ReplyError(N_("the vault knows no team key to keep a copy of the reply with; "
                            "import a bundle with the team key first"))
    recipient = Recipient(PublicKey(base64.b64decode(row["reply_public_key"], validate=True)))
    reply_id = secrets.token_hex(16)
    meta = {"format": REPLY_FORMAT, "reply_id": reply_id, "witness_id": row["witness_id"],
            "submission_id": submission_id, "written_day": dt.date.today().isoformat()}
    try:
        data = _sealed([recipient], message, meta)
    except CryptoError as exc:  # imported before bundles were refused such keys
        raise ReplyError(N_("this witness's reply key cannot be used (it is damaged or "
                            "forged)")) from exc
    sha = hashlib.sha256(data).hexdigest()
    copy = _sealed(team, message, {**meta, "format": COPY_FORMAT, "envelope_sha256": sha})
    copy_sha = hashlib.sha256(copy).hexdigest()
    fingerprints = [r.fingerprint.hex() for r in team]
    name, team_name = f"{reply_id}.env", copy_name(reply_id)
    try:
        _write_new(vault.replies, name, data)
        _write_new(vault.replies, team_name, copy)
        with vault.transaction() as conn:
            conn.execute("INSERT INTO replies (reply_id, witness_id, submission_id, created_at,"
                         " size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                         (reply_id, row["witness_id"], submission_id, custody.now(),
                          len(data), sha))
            conn.execute("INSERT INTO reply_copies (reply_id, size, sha256, fingerprints)"
                         " VALUES (?, ?, ?, ?)", (reply_id, len(copy), copy_sha,
                                                  json.dumps(fingerprints)))
            custody.append(conn, "reply", f"submission:{submission_id}",
                           {"reply_id": reply_id, "sha256": sha, "team_copy_sha256": copy_sha,
                            "team_keys": fingerprints}, actor)
    except BaseException:
        vault.replies.remove_own(name)  # only what this call made
        vault.replies.remove_own(team_name)
        raise
    return reply_id


def read_reply(vault: Vault, reply_id: str, key: PrivateKey) -> str:
    """The message of a reply, from the team's copy: checked against the SHA-256
    recorded when it was written and against the reply it copies."""
    row = vault.conn.execute(
        "SELECT r.*, c.sha256 AS copy_sha256 FROM replies r JOIN reply_copies c"
        " ON c.reply_id = r.reply_id WHERE r.reply_id = ?", (reply_id,)).fetchone()
    if row is None:
        raise ReplyError(N_("no team copy was kept of this reply"))
    data = _read(vault.replies, copy_name(reply_id))
    if hashlib.sha256(data).hexdigest() != row["copy_sha256"]:
        raise ReplyError(N_("the team copy changed on disk since it was written"))
    try:
        content, meta = open_envelope(io.BytesIO(data), key)
    except EnvelopeError as exc:
        raise ReplyError(N_("the team copy cannot be opened with this key (%(why)s)"),
                         why=str(exc)) from exc
    expected = {"format": COPY_FORMAT, "reply_id": reply_id, "witness_id": row["witness_id"],
                "submission_id": row["submission_id"], "envelope_sha256": row["sha256"]}
    if any(meta.get(k) != v for k, v in expected.items()):
        raise ReplyError(N_("the team copy does not belong to this reply"))
    return content.decode()


@dataclass(frozen=True)
class Opened:
    """A team copy opened: the message, or (ok False) why it could not be read."""

    text: str
    ok: bool


def read_thread_replies(vault: Vault, witness_id: str, key: PrivateKey,
                        actor: str | None = None) -> dict[str, Opened]:
    """Opens the team copy of every reply to one witness, by reply id. Logged."""
    out: dict[str, Opened] = {}
    ids = [r[0] for r in vault.conn.execute(
        "SELECT r.reply_id FROM replies r JOIN reply_copies c ON c.reply_id = r.reply_id"
        " WHERE r.witness_id = ? ORDER BY r.created_at", (witness_id,))]
    for reply_id in ids:
        try:
            out[reply_id] = Opened(read_reply(vault, reply_id, key), True)
        except (ReplyError, OSError, UnicodeDecodeError) as exc:
            out[reply_id] = Opened(str(exc), False)
    if ids:
        with vault.transaction() as conn:
            custody.append(conn, "read replies", f"witness:{witness_id}",
                           {"replies": ids, "opened": [i for i in ids if out[i].ok]}, actor)
    return out


def export_replies(vault: Vault, out: Path, include_exported: bool = False,
                   actor: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Writes the queued replies as one bundle; marks them exported. Returns how
    many. `progress(done, total)` is told after each reply is checked.

    The bundle is made as the case package is: under the open folder `out` is
    in, first as a partial file of this run's own (exclusive, never through a
    link), then given its name without replacing anything; on failure only
    what this run made is removed."""
    custody.require(vault.conn)  # before anything is written outside the vault
    where = "" if include_exported else " WHERE exported_at IS NULL"
    rows = vault.conn.execute(
        f"SELECT * FROM replies{where} ORDER BY created_at, reply_id").fetchall()  # noqa: S608
    replies = []
    for r in rows:
        body = _read(vault.replies, f"{valid_id(r['reply_id'])}.env")
        if hashlib.sha256(body).hexdigest() != r["sha256"]:
            raise ReplyError(N_("reply %(id)s changed on disk since it was written; not "
                                "exporting it"), id=r["reply_id"])
        replies.append((entry_for(r["reply_id"], r["witness_id"], body, r["submission_id"]),
                        body))
        if progress is not None:
            progress(len(replies), len(rows))
    out = Path(os.path.abspath(out))
    folder = Folder.existing(out.parent)
    tmp = f".{out.name}.{secrets.token_hex(4)}.partial"
    sha = hashlib.sha256()
    try:
        with os.fdopen(folder.create(tmp), "wb") as f:
            for piece in iter_reply_bundle(dt.date.today().isoformat(), replies):
                sha.update(piece)
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        try:
            folder.place(tmp, out.name)
        except FileExistsError:
            raise ReplyError(N_("%(file)s exists already; choose another name"),
                             file=str(out)) from None
    except BaseException:
        folder.made.undo()
        raise
    finally:
        folder.close()
    with vault.transaction() as conn:
        at = custody.now()
        for r in rows:
            conn.execute("UPDATE replies SET exported_at = ? WHERE reply_id = ?",
                         (at, r["reply_id"]))
        custody.append(conn, "export replies", f"replies:{out.name}",
                       {"replies": [r["reply_id"] for r in rows],
                        "sha256": sha.hexdigest()}, actor)
    return len(rows)
