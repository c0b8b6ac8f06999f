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
from intake.server.pending_originals import Held, PendingOriginals
from intake.server.sanitize import Limits, Result, sanitize
from intake.server.service import Intake
from intake.server.store import Batch, Staged, new_id, today
from intake.server.upload_spool import UploadSpool

log = logging.getLogger("intake")

ITEM_FORMAT = "intake-item/1"

Row = tuple[str, str, int, str]  # kind, item id, envelope size, envelope SHA-256


@dataclass
class Upload:
    name: str
    spool: UploadSpool


# What became of each file, as the receipt tells it and the envelope records it.
CLEANED = "cleaned"
KEPT_BY_CHOICE = "kept as received: the witness asked on the form to keep originals"
CONFIRMED = "kept as received: the witness confirmed it on the receipt, after a warning"
HELD, NOT_KEPT = "held", "not kept"

# Why a file could not be cleaned, as the receipt tells it: a stable code
# (templates/_file_outcomes.html matches on it, never on the reason's words).
HOSTILE = "hostile"  # a bomb, past a limit, nested too deep: never stored
UNSUPPORTED = "unsupported"  # a kind no cleaner here handles
TOO_LARGE = "too large"  # past what can be cleaned in memory
TOO_LONG = "too long"  # stopped by its own time or CPU limit
OUT_OF_TIME = "out of time"  # the submission's cleaning budget ran out first
DAMAGED = "damaged"  # anything else: malformed, a part inside, the check failed
# The reason given for a file the budget left unexamined, or cut short.
BUDGET_SPENT = "the submission's cleaning budget is spent"


@dataclass
class FileOutcome:
    name: str
    detected_type: str
    outcome: str  # CLEANED, KEPT_BY_CHOICE, HELD (the receipt asks) or NOT_KEPT
    reason: str = ""  # why it could not be cleaned: a fixed English phrase
    hostile: bool = False  # a bomb or past a limit: never offered as it is
    item_id: str = ""  # HELD: the id the receipt's choice names
    why: str = ""  # why it could not be cleaned: HOSTILE, UNSUPPORTED, ... (above)

    @property
    def sanitized(self) -> bool:
        return self.outcome == CLEANED


@dataclass(frozen=True)
class Receipt:
    codename: str
    submission_id: str
    files: list[FileOutcome]
    held: list[Held]


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


def _clean(intake: Intake, up: Upload, budget: CleaningBudget,
           limits: Limits | None) -> tuple[Result, str]:
    """The upload cleaned in the sandbox, within the submission's budget; and,
    when it is not cleaned, why (a code: HOSTILE, UNSUPPORTED...).

    A file the budget leaves unexamined, or whose cleaning the budget cut
    short, is OUT_OF_TIME: nothing is known of it (it may be a bomb), so it
    is never stored, whatever the witness chose."""
    if budget.spent:
        # The worker runs no parser, so the type stays unknown: the child tells it.
        return Result(False, "application/octet-stream", reason=BUDGET_SPENT), OUT_OF_TIME
    own = (limits or Limits()).for_size(up.spool.size)
    given = budget.limits_for(up.spool.size, limits)
    cut = given.cpu_seconds < own.cpu_seconds or given.wall_seconds < own.wall_seconds
    started = budget.clock()
    try:
        result = sanitize(up.spool, lambda: UploadSpool(intake.store, intake.recipients),
                          limits=given, sandbox=intake.sandbox)
    finally:
        budget.charge(budget.clock() - started, up.spool.size)
    if result.ok:
        return result, ""
    if result.timed_out and cut:
        result.reason = f"{BUDGET_SPENT} ({result.reason})"
        return result, OUT_OF_TIME
    return result, _why(result)


def _why(result: Result) -> str:
    """The code for a cleaner's refusal. Its reasons are fixed phrases of the
    cleaners (intake/server/sanitize), told apart here, in one place."""
    if result.hostile:
        return HOSTILE
    if result.timed_out:
        return TOO_LONG
    if result.reason.startswith(("unsupported type", "HTML")):
        return UNSUPPORTED
    if "too large to clean" in result.reason:
        return TOO_LARGE
    return DAMAGED


def _seal_upload(batch: Batch, intake: Intake, up: Upload, common: dict,
                 keep_original: bool, pending: PendingOriginals | None,
                 held: list[tuple[Staged, FileOutcome]],
                 limits: Limits | None, budget: CleaningBudget) -> tuple[list[Row], FileOutcome]:
    """Seals one uploaded file: its copy cleaned in the sandbox; or, when it
    cannot be cleaned, the upload as received only if the witness asked to
    keep originals; else its envelope is held for the receipt to ask
    (`held`), or dropped. The envelope the upload was written into as it
    arrived becomes the untouched original when the witness asked for one."""
    # The cleaned copy is sealed into its own envelope as the sandbox hands it back.
    result, why = _clean(intake, up, budget, limits)
    try:  # the cleaned copy's envelope is closed on every path, sealed or not
        base = {**common, "original_name": up.name, "detected_type": result.detected_type,
                "size": up.spool.size, "sha256_received": up.spool.sha256}
    except BaseException:
        result.close()
        raise
    as_received = {**base, "sha256_kept": up.spool.sha256, "sanitized": False,
                   "sanitizer": None, "sanitizer_version": None, "removed": []}
    outcome = FileOutcome(up.name, result.detected_type, CLEANED)
    if not result.ok or result.spool is None:
        result.close()
        outcome.reason, outcome.hostile, outcome.why = result.reason, result.hostile, why
        failed = {**as_received, "kind": "file", "flags": result.flags,
                  "original_kept": True}
        if result.hostile or why == OUT_OF_TIME:
            # A bomb is not forwarded, whatever was chosen; nor is a file the
            # budget left unexamined, which may be one.
            outcome.outcome = NOT_KEPT
        elif keep_original:
            outcome.outcome = KEPT_BY_CHOICE
            entry = up.spool.seal(batch, {**failed, "outcome": KEPT_BY_CHOICE})
            return [("file", entry.item_id, entry.size, entry.sha256)], outcome
        elif pending is not None:
            outcome.outcome = HELD
            # Reaches the queue only if the witness confirms: the record says so.
            entry = pending.seal(up.spool, {**failed, "outcome": CONFIRMED})
            outcome.item_id = entry.item_id
            held.append((entry, outcome))
        else:
            outcome.outcome = NOT_KEPT
        return [], outcome
    cleaned = result.spool
    assert isinstance(cleaned, UploadSpool)
    try:
        meta = {**base, "kind": "file", "sha256_kept": cleaned.sha256, "sanitized": True,
                "sanitizer": result.sanitizer, "sanitizer_version": result.version,
                "removed": result.removed, "flags": [], "original_kept": keep_original,
                "outcome": CLEANED}
        entry = cleaned.seal(batch, meta)
        rows: list[Row] = [("file", entry.item_id, entry.size, entry.sha256)]
    finally:
        result.close()
    if keep_original:
        entry = up.spool.seal(batch, {**as_received, "kind": "original", "flags": [],
                                      "original_kept": True, "original_of": rows[0][1],
                                      "outcome": KEPT_BY_CHOICE})
        rows.append(("original", entry.item_id, entry.size, entry.sha256))
    return rows, outcome


def receive(intake: Intake, testimony: str, uploads: list[Upload], keep_originals: bool,
            witness_id: str | None = None, pending: PendingOriginals | None = None,
            limits: Limits | None = None, codename_list: str = "en") -> Receipt:
    """Seals everything, then places it and commits; on any failure keeps nothing.

    A new witness gets a fresh codename drawn from codename_list (the alphabet
    they chose: codename.LISTS); a returning one (witness_id) does not.
    Files that could not be cleaned are held in `pending` for the receipt to
    ask about; without it they are not kept.
    """
    quota.check(intake, len(testimony.encode()) + sum(up.spool.size for up in uploads))
    secret, derived = "", None
    if witness_id is None:
        secret = codename.generate(codename_list, intake.config.codename_words)
        canonical = codename.normalise(secret)
        if canonical is None:
            raise RuntimeError(f"the {codename_list} word list cannot read its own codenames")
        derived = codename.derive(canonical, intake.secrets)
        witness_id = new_id()
    day = today()
    submission_id = new_id()
    common = {"format": ITEM_FORMAT, "submission_id": submission_id,
              "witness_id": witness_id, "received_day": day.isoformat(),
              "choices": {"keep_original": keep_originals}}
    rows: list[Row] = []
    outcomes: list[FileOutcome] = []
    staged_held: list[tuple[Staged, FileOutcome]] = []
    batch = intake.store.batch()
    if pending is not None:
        pending.sweep()
    budget = CleaningBudget.for_submission(intake.config.clean_cpu_seconds,
                                           intake.config.clean_bytes,
                                           [up.spool.size for up in uploads])
    try:
        if testimony.strip():
            rows.append(_seal_testimony(batch, intake, testimony, common))
        for up in uploads:
            more, outcome = _seal_upload(batch, intake, up, common, keep_originals, pending,
                                         staged_held, limits, budget)
            rows += more
            outcomes.append(outcome)
        session = _stage(intake, batch, day, witness_id, submission_id, derived, rows)
    except BaseException:
        batch.discard()
        _drop(staged_held)
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
        elif fate is None:
            # Left for reconcile (retention) to settle once the database answers.
            _drop(staged_held)
            raise CommitUncertain() from exc
        else:
            batch.discard()
            _drop(staged_held)
            raise
    return Receipt(secret, submission_id, outcomes,
                   _hold(pending, staged_held, submission_id))


def _drop(staged_held: list[tuple[Staged, FileOutcome]]) -> None:
    for entry, _ in staged_held:
        entry.tmp_path.unlink(missing_ok=True)


def _hold(pending: PendingOriginals | None, staged: list[tuple[Staged, FileOutcome]],
          submission_id: str) -> list[Held]:
    """Held files go to the pending folder once the submission is in; one that
    cannot be placed is not kept, and the receipt says so."""
    held = []
    for entry, outcome in staged:
        try:
            held.append(pending.place(entry, outcome.name, submission_id))  # type: ignore[union-attr]
        except OSError:
            entry.tmp_path.unlink(missing_ok=True)
            outcome.outcome, outcome.item_id = NOT_KEPT, ""
    return held


def confirm_held(intake: Intake, pending: PendingOriginals, held: Held) -> bool:
    """The witness chose to send a held file as received: it joins its
    submission in the queue. False when its time has passed."""
    path = pending.take(held)
    if path is None:
        return False
    try:
        with intake.db.sessions() as s:
            s.add(Item(id=held.item_id, submission_id=held.submission_id, kind="file",
                       size=held.size, sha256=held.sha256, received_day=today(),
                       state="waiting"))
            s.commit()
    except BaseException:
        path.unlink(missing_ok=True)  # nothing half-kept: no row, no file
        raise
    return True


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
                          derivation=derived.derivation,
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
