"""The life of a submission on the server: from spooled uploads to sealed
envelopes in the store and committed rows in the queue, all or nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from intake.format.envelope import EnvelopeWriter, Recipient
from intake.server import codename, quota
from intake.server.budget import CleaningBudget
from intake.server.models import Item, Submission, Witness
from intake.server.sanitize import Result, detect_type, sanitize
from intake.server.service import Intake
from intake.server.store import Batch, new_id, today
from intake.server.upload_spool import UploadSpool

ITEM_FORMAT = "intake-item/1"
log = logging.getLogger("intake")

Row = tuple[str, str, int, str]  # kind, item id, envelope size, envelope SHA-256


@dataclass
class Upload:
    name: str
    spool: UploadSpool


@dataclass(frozen=True)
class FileOutcome:
    name: str
    detected_type: str
    sanitized: bool


@dataclass(frozen=True)
class Receipt:
    codename: str
    submission_id: str
    files: list[FileOutcome]


def _seal(batch: Batch, recipients: list[Recipient], content: Iterable[bytes],
          metadata: dict) -> tuple[str, int, str]:
    with batch.new_envelope() as (entry, out):
        writer = EnvelopeWriter(out, recipients)  # type: ignore[arg-type]
        for piece in content:
            writer.write(piece)
        writer.close({**metadata, "item_id": entry.item_id})
    return entry.item_id, entry.size, entry.sha256


def _seal_testimony(batch: Batch, intake: Intake, testimony: str, common: dict) -> Row:
    data = testimony.encode()
    sha = hashlib.sha256(data).hexdigest()
    meta = {**common, "kind": "testimony", "detected_type": "text/plain; charset=utf-8",
            "size": len(data), "sha256_received": sha, "sha256_kept": sha,
            "sanitized": False, "sanitizer": None, "removed": [], "flags": []}
    return ("testimony", *_seal(batch, intake.recipients, [data], meta))


def _clean(intake: Intake, up: Upload, budget: CleaningBudget) -> Result:
    """The upload cleaned in the sandbox, within the submission's budget."""
    if budget.spent:
        return Result(False, detect_type(up.spool.head),
                      reason="the submission's cleaning budget is spent")
    started = budget.clock()
    try:
        return sanitize(up.spool, lambda: UploadSpool(intake.store, intake.recipients),
                        limits=budget.limits_for(up.spool.size), sandbox=intake.sandbox)
    finally:
        budget.charge(budget.clock() - started, up.spool.size)


def _seal_upload(batch: Batch, intake: Intake, up: Upload, common: dict,
                 keep_original: bool, budget: CleaningBudget) -> tuple[list[Row], FileOutcome]:
    """Seals one uploaded file: its copy cleaned in the sandbox when the type
    allows (docs/sanitizing.md), else the upload as received, flagged. The
    envelope the upload was written into as it arrived becomes the untouched
    original when the witness asked for one, and is dropped otherwise."""
    # The cleaned copy is sealed into its own envelope as the sandbox hands it back.
    result = _clean(intake, up, budget)
    try:  # the cleaned copy's envelope is closed on every path, sealed or not
        base = {**common, "original_name": up.name, "detected_type": result.detected_type,
                "size": up.spool.size, "sha256_received": up.spool.sha256}
    except BaseException:
        result.close()
        raise
    as_received = {**base, "sha256_kept": up.spool.sha256, "sanitized": False,
                   "sanitizer": None, "sanitizer_version": None, "removed": []}
    outcome = FileOutcome(up.name, result.detected_type, sanitized=result.ok)
    if not result.ok or result.spool is None:
        entry = up.spool.seal(batch, {**as_received, "kind": "file", "flags": result.flags,
                                      "original_kept": False})
        return [("file", entry.item_id, entry.size, entry.sha256)], outcome
    cleaned = result.spool
    assert isinstance(cleaned, UploadSpool)
    try:
        meta = {**base, "kind": "file", "sha256_kept": cleaned.sha256, "sanitized": True,
                "sanitizer": result.sanitizer, "sanitizer_version": result.version,
                "removed": result.removed, "flags": [], "original_kept": keep_original}
        entry = cleaned.seal(batch, meta)
        rows: list[Row] = [("file", entry.item_id, entry.size, entry.sha256)]
    finally:
        result.close()
    if keep_original:
        entry = up.spool.seal(batch, {**as_received, "kind": "original", "flags": [],
                                      "original_kept": True, "original_of": rows[0][1]})
        rows.append(("original", entry.item_id, entry.size, entry.sha256))
    return rows, outcome


def receive(intake: Intake, testimony: str, uploads: list[Upload], keep_originals: bool,
            witness_id: str | None = None) -> Receipt:
    """Seals everything, then places it and commits; on any failure keeps nothing.

    A new witness gets a fresh codename; a returning one (witness_id) does not.
    """
    quota.check(intake, len(testimony.encode()) + sum(up.spool.size for up in uploads))
    secret, derived = "", None
    if witness_id is None:
        secret = codename.generate(intake.config.codename_words)
        derived = codename.derive(secret, intake.secrets, intake.config.kdf_opslimit,
                                  intake.config.kdf_memlimit)
        witness_id = new_id()
    day = today()
    submission_id = new_id()
    common = {"format": ITEM_FORMAT, "submission_id": submission_id,
              "witness_id": witness_id, "received_day": day.isoformat(),
              "choices": {"keep_original": keep_originals}}
    rows: list[Row] = []
    outcomes: list[FileOutcome] = []
    batch = intake.store.batch()
    budget = CleaningBudget(intake.config.clean_cpu_seconds, intake.config.clean_bytes)
    try:
        if testimony.strip():
            rows.append(_seal_testimony(batch, intake, testimony, common))
        for up in uploads:
            more, outcome = _seal_upload(batch, intake, up, common, keep_originals, budget)
            rows += more
            outcomes.append(outcome)
        session = _stage(intake, batch, day, witness_id, submission_id, derived, rows)
    except BaseException:
        batch.discard()
        raise
    try:
        with session:
            session.commit()
    except BaseException as exc:
        # The commit's answer is lost: the rows may be in. Ask again before
        # deleting anything (a placed envelope may be what was committed).
        fate = _committed(intake, submission_id)
        if fate:
            log.warning("receive: the answer to a commit was lost; it had committed")
            return Receipt(secret, submission_id, outcomes)
        if fate is None:
            # Left for reconcile (retention) to settle once the database answers.
            raise CommitUncertain() from exc
        batch.discard()
        raise
    return Receipt(secret, submission_id, outcomes)


class CommitUncertain(Exception):
    """The database stopped answering during the commit: whether the
    submission was kept is unknown. Its envelopes stay; retention deletes
    them later if no row turns up."""


def _committed(intake: Intake, submission_id: str) -> bool | None:
    try:
        with intake.db.sessions() as s:
            return s.get(Submission, submission_id) is not None
    except SQLAlchemyError:
        return None


def _stage(intake: Intake, batch: Batch, day: dt.date, witness_id: str, submission_id: str,
           derived: codename.Derived | None, rows: list[Row]) -> Session:
    """Adds and flushes the rows, then places the envelopes in the store; the
    caller commits the session returned."""
    s = intake.db.sessions()
    try:
        if derived is not None:
            s.add(Witness(id=witness_id, lookup_hash=derived.lookup_hash,
                          reply_public_key=bytes(derived.reply_public_key),
                          created_day=day, last_active_day=day))
        else:
            witness = s.get(Witness, witness_id)
            if witness is None:
                raise LookupError("unknown witness")
            witness.last_active_day = day
        s.flush()
        s.add(Submission(id=submission_id, witness_id=witness_id, received_day=day))
        s.flush()
        for kind, item_id, size, sha in rows:
            s.add(Item(id=item_id, submission_id=submission_id, kind=kind, size=size,
                       sha256=sha, received_day=day, state="waiting"))
        s.flush()
        batch.place()
    except BaseException:
        s.close()
        raise
    return s
