"""The server's queue: export waiting envelopes as a bundle."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from intake import bundle
from intake.models import Item, Submission, Witness
from intake.receive import Intake
from intake.store import fsync_dir, today
from intake.teamkeys import b64


def waiting(intake: Intake, include_exported: bool = False) -> list[tuple[Item, Submission]]:
    with intake.db.sessions() as s:
        q = select(Item, Submission).join(Submission, Item.submission_id == Submission.id)
        if not include_exported:
            q = q.where(Item.state == "waiting")
        return list(s.execute(q.order_by(Submission.received_day, Submission.id, Item.id)))


def export(intake: Intake, out: Path, include_exported: bool = False) -> int:
    """Writes the bundle beside `out`, makes it durable, renames it, then marks
    the items exported. Returns how many envelopes it holds."""
    rows = waiting(intake, include_exported)
    entries = [bundle.Entry(i.id, s.id, s.witness_id, i.kind, i.size, i.sha256,
                            i.received_day.isoformat()) for i, s in rows]
    with intake.db.sessions() as s:
        ids = {e.witness_id for e in entries}
        keys = {w.id: b64(w.reply_public_key)
                for w in s.scalars(select(Witness).where(Witness.id.in_(ids)))} if ids else {}
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with open(tmp, "wb") as f:
            bundle.write(f, today().isoformat(), entries, keys, intake.store.open)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with intake.db.sessions() as s:
        for item, _sub in rows:
            row = s.get(Item, item.id)
            row.state, row.exported_day = "exported", today()
        s.commit()
    return len(entries)
