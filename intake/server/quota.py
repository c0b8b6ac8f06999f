"""The day's quota: a flood can fill neither the disk nor the day, and
witnesses are still served while it lasts.

Three limits, counted from the database (today's submissions and the bytes
of today's envelopes), the envelopes held for a witness's answer (they
reach the queue only if confirmed, but take the disk meanwhile) and the
filesystem:

- free space on the store under `disk_reserve`: nothing more is accepted
  (the disk stays usable for what is already kept);
- today's envelopes and those held over `daily_upload_bytes`: submissions with files are
  refused, testimony alone (a few KB) is still taken;
- today's submissions at `daily_submissions`: no more today.

A refusal is a page in the witness's language saying to try later, before
the body is read when the front can tell (intake.server.front), and again
before anything is written. `intake doctor` reports the day's use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from dataclasses import dataclass

from sqlalchemy import func, select

from intake.server.models import Item, Submission
from intake.server.pending_originals import FOLDER as PENDING
from intake.server.store import today

TEXT_ONLY = 1024 * 1024  # a body under this carries testimony, or tiny files


class QuotaExceeded(Exception):
    """The day's quota, or the disk's reserve, is reached: try later."""


@dataclass(frozen=True)
class Usage:
    day: dt.date
    submissions: int
    stored_bytes: int  # today's queued envelopes, and those held for an answer
    free_bytes: int


def _held_bytes(store_root) -> int:
    """Envelopes held for a witness's answer (intake.server.pending_originals)."""
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(os.path.join(store_root, PENDING)):
            with contextlib.suppress(FileNotFoundError):  # answered or expired meanwhile
                total += entry.stat(follow_symlinks=False).st_size
    return total


def usage(db, store_root, day: dt.date | None = None) -> Usage:
    day = day or today()
    with db.sessions() as s:
        submissions = s.scalar(select(func.count()).select_from(Submission)
                               .where(Submission.received_day == day)) or 0
        stored = s.scalar(select(func.coalesce(func.sum(Item.size), 0))
                          .where(Item.received_day == day)) or 0
    return Usage(day, submissions, int(stored) + _held_bytes(store_root),
                 shutil.disk_usage(store_root).free)


def refusal(intake, incoming: int | None) -> str | None:
    """None if a submission of `incoming` bytes (None: unknown) may come in."""
    config = intake.config
    use = usage(intake.db, intake.store.root)
    incoming = incoming or 0
    if use.free_bytes - incoming < config.disk_reserve:
        return "disk"
    if use.submissions >= config.daily_submissions:
        return "submissions"
    if incoming > TEXT_ONLY and use.stored_bytes + incoming > config.daily_upload_bytes:
        return "bytes"
    return None


def check(intake, incoming: int) -> None:
    reason = refusal(intake, incoming)
    if reason is not None:
        raise QuotaExceeded(reason)
