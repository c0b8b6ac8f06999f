"""The server's queue: which envelopes wait, and exporting them as a bundle.

An export holds the database's "export" lock from choosing its items to
marking them exported, so two exports at once (two staff downloads, the CLI
and a download, two servers) never put the same item in two bundles: the
second waits, then finds only what the first left. An item whose envelope
file is gone is left out (and marked `missing`), never allowed to break the
bundle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from intake.format import bundle
from intake.format.teamkeys import b64
from intake.server.models import Item, Submission, Witness
from intake.server.service import Intake
from intake.server.store import fsync_dir, today


@dataclass
class Selection:
    entries: list[bundle.Entry]
    witnesses: dict[str, str]  # witness id -> reply public key (base64)

    @property
    def item_ids(self) -> list[str]:
        return [e.item_id for e in self.entries]


def select_items(intake: Intake, item_ids: list[str] | None = None,
                 include_exported: bool = False) -> Selection:
    with intake.db.sessions() as s:
        q = select(Item, Submission).join(Submission, Item.submission_id == Submission.id)
        if item_ids is not None:
            q = q.where(Item.id.in_(item_ids))
        elif not include_exported:
            q = q.where(Item.state == "waiting")
        rows = list(s.execute(q.order_by(Submission.received_day, Submission.id, Item.id)))
        gone = [i.id for i, _sub in rows if not intake.store.path_for(i.id).exists()]
        if gone:
            s.execute(update(Item).where(Item.id.in_(gone)).where(Item.state == "waiting")
                      .values(state="missing"))
            s.commit()
        rows = [(i, sub) for i, sub in rows if i.id not in gone]
        entries = [bundle.Entry(i.id, sub.id, sub.witness_id, i.kind, i.size, i.sha256,
                                i.received_day.isoformat()) for i, sub in rows]
        ids = {e.witness_id for e in entries}
        keys = {w.id: b64(w.reply_public_key)
                for w in s.scalars(select(Witness).where(Witness.id.in_(ids)))} if ids else {}
    return Selection(entries, keys)


def mark_exported(intake: Intake, item_ids: list[str]) -> None:
    with intake.db.sessions() as s:
        for item_id in item_ids:
            row = s.get(Item, item_id)
            if row is not None:
                row.state, row.exported_day = "exported", today()
        s.commit()


def stream(intake: Intake, item_ids: list[str] | None = None) -> Iterator[bytes]:
    """The bundle's bytes, under the export lock; the items count as exported
    once the last byte is out. An export that ran meanwhile may have taken
    them: then the bundle holds what is left, perhaps nothing."""
    with intake.db.lock("export"):
        selection = select_items(intake, item_ids=item_ids)
        yield from bundle.iter_bundle(today().isoformat(), selection.entries,
                                      selection.witnesses, intake.store.open)
        mark_exported(intake, selection.item_ids)


def export(intake: Intake, out: Path, include_exported: bool = False) -> int:
    """Writes the bundle beside `out`, makes it durable, renames it, then marks
    the items exported, all under the export lock. Returns how many envelopes
    it holds."""
    with intake.db.lock("export"):
        selection = select_items(intake, include_exported=include_exported)
        tmp = out.with_name(f".{out.name}.partial")
        try:
            with open(tmp, "wb") as f:
                bundle.write(f, today().isoformat(), selection.entries, selection.witnesses,
                             intake.store.open)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, out)
            fsync_dir(out.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        mark_exported(intake, selection.item_ids)
    return len(selection.entries)
