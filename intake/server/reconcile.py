"""The store and the database, reconciled both ways.

- An envelope file with no row: a submission that failed after placing it,
  or whose commit's fate was unknown (intake.server.receive leaves such
  files rather than risk deleting what was committed). Once it is more than
  a day old (its mtime is its day), no commit can still be coming: deleted.
- A waiting item whose envelope file is gone: marked `missing`, so exports
  skip it instead of failing, and `intake doctor` names it.
- A `.tmp-` file that nothing has written for an hour: an upload whose
  process died (a finished attempt removes its own). Deleted.

find() only looks (for `intake doctor`); reconcile() acts (retention and
`intake store tidy`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update

from intake.server.db import Database
from intake.server.models import Item
from intake.server.store import LEFTOVER_AFTER, SUFFIX, TMP_PREFIX, Store


@dataclass
class Found:
    orphan_ids: list[str] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)
    leftover_names: list[str] = field(default_factory=list)

    @property
    def orphans(self) -> int:
        return len(self.orphan_ids)

    @property
    def missing(self) -> int:
        return len(self.missing_ids)

    @property
    def leftovers(self) -> int:
        return len(self.leftover_names)


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def find(db: Database, store: Store, on_day: dt.date, now: float | None = None) -> Found:
    now = time.time() if now is None else now
    found = Found()
    files: dict[str, float] = {}
    for entry in os.scandir(store.root):
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        if entry.name.endswith(SUFFIX):
            files[entry.name[:-len(SUFFIX)]] = mtime
        elif entry.name.startswith(TMP_PREFIX) and now - mtime > LEFTOVER_AFTER:
            found.leftover_names.append(entry.name)
    with db.sessions() as s:
        rows = dict(s.execute(select(Item.id, Item.state)).all())
    settled = _midnight(on_day - dt.timedelta(days=1))
    found.orphan_ids = sorted(i for i, mtime in files.items()
                              if i not in rows and mtime < settled)
    found.missing_ids = sorted(i for i, state in rows.items()
                               if state == "waiting" and i not in files)
    return found


def reconcile(db: Database, store: Store, on_day: dt.date, now: float | None = None) -> Found:
    found = find(db, store, on_day, now)
    for item_id in found.orphan_ids:
        with db.sessions() as s:  # looked up again: a row may have come meanwhile
            if s.get(Item, item_id) is None:
                store.delete(item_id)
    for name in found.leftover_names:
        (store.root / name).unlink(missing_ok=True)
    if found.missing_ids:
        with db.sessions() as s:
            s.execute(update(Item).where(Item.id.in_(found.missing_ids))
                      .where(Item.state == "waiting").values(state="missing"))
            s.commit()
    return found
