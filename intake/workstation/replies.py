"""Replies to witnesses: sealed here to the witness's reply key, carried to the
server in a reply bundle. Format in docs/workstation.md.

    reply envelope = intake.envelope with one recipient, the witness's reply
                     public key; content: the message as UTF-8; metadata:
                     {"format": "intake-reply/1", "reply_id", "witness_id",
                      "submission_id", "written_day"}
    reply bundle   = POSIX tar, manifest.json first, then replies/<reply id>.env
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import secrets
from pathlib import Path

from nacl.public import PublicKey

from intake.format.envelope import Recipient, seal
from intake.format.reply_bundle import entry_for, iter_reply_bundle
from intake.workstation import custody
from intake.workstation.vault import Vault

REPLY_FORMAT = "intake-reply/1"
MAX_MESSAGE_CHARS = 20_000


class ReplyError(Exception):
    """A reply that cannot be written; the message says why."""


def write_reply(vault: Vault, submission_id: str, message: str,
                actor: str | None = None) -> str:
    message = message.strip()
    if not message:
        raise ReplyError("the reply is empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ReplyError(f"the reply is longer than {MAX_MESSAGE_CHARS} characters")
    row = vault.conn.execute(
        "SELECT s.witness_id, w.reply_public_key FROM submissions s LEFT JOIN witnesses w"
        " ON w.witness_id = s.witness_id WHERE s.submission_id = ?", (submission_id,)).fetchone()
    if row is None:
        raise ReplyError(f"no submission {submission_id} in this vault")
    if not row["reply_public_key"]:
        raise ReplyError("this witness has no reply key in the vault (import a newer bundle)")
    recipient = Recipient(PublicKey(base64.b64decode(row["reply_public_key"], validate=True)))
    reply_id = secrets.token_hex(16)
    meta = {"format": REPLY_FORMAT, "reply_id": reply_id, "witness_id": row["witness_id"],
            "submission_id": submission_id, "written_day": dt.date.today().isoformat()}
    buf = io.BytesIO()
    seal(buf, [recipient], [message.encode()], meta)
    data = buf.getvalue()
    path = vault.reply_path(reply_id)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    sha = hashlib.sha256(data).hexdigest()
    try:
        with vault.transaction() as conn:
            conn.execute("INSERT INTO replies (reply_id, witness_id, submission_id, created_at,"
                         " size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                         (reply_id, row["witness_id"], submission_id, custody.now(),
                          len(data), sha))
            custody.append(conn, "reply", f"submission:{submission_id}",
                           {"reply_id": reply_id, "sha256": sha}, actor)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return reply_id


def export_replies(vault: Vault, out: Path, include_exported: bool = False,
                   actor: str | None = None) -> int:
    """Writes the queued replies as one bundle; marks them exported. Returns how many."""
    where = "" if include_exported else " WHERE exported_at IS NULL"
    rows = vault.conn.execute(
        f"SELECT * FROM replies{where} ORDER BY created_at, reply_id").fetchall()  # noqa: S608
    replies = []
    for r in rows:
        body = vault.reply_path(r["reply_id"]).read_bytes()
        if hashlib.sha256(body).hexdigest() != r["sha256"]:
            raise ReplyError(f"reply {r['reply_id']} changed on disk since it "
                             "was written; not exporting it")
        replies.append((entry_for(r["reply_id"], r["witness_id"], body, r["submission_id"]),
                        body))
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with open(tmp, "wb") as f:
            for piece in iter_reply_bundle(dt.date.today().isoformat(), replies):
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with vault.transaction() as conn:
        at = custody.now()
        for r in rows:
            conn.execute("UPDATE replies SET exported_at = ? WHERE reply_id = ?",
                         (at, r["reply_id"]))
        custody.append(conn, "export replies", f"replies:{out.name}",
                       {"replies": [r["reply_id"] for r in rows],
                        "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}, actor)
    return len(rows)
