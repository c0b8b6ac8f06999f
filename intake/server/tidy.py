"""The hourly pass that keeps the time of day off the disk.

A file's mtime can be set back to its day, but its change time (ctime) and
birth time cannot: the kernel stamps them. So instead of hiding them, the
pass makes them all the same, and says nothing:

- envelope files are born as empty files from a pool this pass makes
  (store/.pool), so their birth time is the time of a pass, not of a
  submission; a submission takes one by renaming it;
- so are the folders of files sent ahead in pieces, with every file they
  will hold (uploads/.pool, intake.server.resumable);
- every file and folder under the data folder gets its times set to the
  midnight (UTC) of the day it already shows, which stamps every change time
  with this pass's time: after it, no file says when anything happened that
  day, only that the pass ran;
- server-secrets.json is written anew from a pool file, so its birth time is
  a pass's too; SQLite's WAL is checkpointed and truncated;
- uploads abandoned by a process that died (`.tmp-` files idle an hour) are
  deleted, and so are resumable uploads (data/uploads) not added to for
  `partial_upload_days` whole days (intake.server.resumable);
- the last TOTP code each staff account used, which dates its last login to
  the half minute, is moved on to the pass's own once it could no longer be
  used again, the same for every idle account; never back, so that no code
  used comes back with a clock stepped back
  (intake.server.staff.accounts.forget_used_codes).

Between a submission and the next pass, its files' change times (and the
store folder's) show the second it arrived: that window is at most the
pass's interval, an hour with the shipped timer (docs/operations.md).
Unfinished uploads (`.tmp-`) are left as they are until they finish or are
swept. `intake retention tidy` runs it; deploy/systemd/intake-tidy.timer
runs that hourly.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

from intake.server import resumable, server_secrets
from intake.server.config import Config
from intake.server.db import Database
from intake.server.resumable import Partials
from intake.server.staff.accounts import forget_used_codes
from intake.server.store import LEFTOVER_AFTER, TMP_PREFIX, Store, coarsen_mtime


@dataclass
class TidyReport:
    pool_added: int = 0
    folders_added: int = 0
    normalised: int = 0
    leftovers: int = 0
    partial_uploads: int = 0
    codes_forgotten: int = 0


def _day_of(mtime: float) -> dt.date:
    return dt.datetime.fromtimestamp(mtime, dt.UTC).date()


def tidy(config: Config, now: float | None = None) -> TidyReport:
    now = time.time() if now is None else now
    report = TidyReport()
    store = Store(config.store_dir)
    store.init()
    report.leftovers = store.remove_leftovers(LEFTOVER_AFTER)
    partials = Partials(config.data_dir / resumable.FOLDER, config.partial_upload_days,
                        config.max_upload, day=lambda: _day_of(now))
    report.partial_uploads = partials.remove_expired()
    report.pool_added = store.fill_pool()
    report.folders_added = partials.fill_pool()
    if config.secrets_file.exists():
        server_secrets.rewrite(config.secrets_file, store.take_from_pool)
    db = Database(config.effective_database_url)
    try:
        db.migrate()
        report.codes_forgotten = forget_used_codes(db, now)
        db.checkpoint()
    finally:
        db.dispose()  # last: closing SQLite's last connection removes its WAL
    report.normalised = normalise_times(config.data_dir, now)
    return report


def normalise_times(root: Path, now: float) -> int:
    """Sets every file's and folder's times to the midnight of its own day,
    deepest first: setting a file's times changes only its own change time."""
    count = 0
    for folder, _dirs, files in os.walk(root, topdown=False):
        paths = [Path(folder) / name for name in files] + [Path(folder)]
        for path in paths:
            try:
                mtime = path.lstat().st_mtime
                if path.name.startswith(TMP_PREFIX) and now - mtime < LEFTOVER_AFTER:
                    continue  # an upload arriving: its mtime says it is alive
                # A link's own times, never its target's: nothing outside is touched.
                coarsen_mtime(path, _day_of(mtime), follow_symlinks=path == root)
                count += 1
            except FileNotFoundError:
                continue
    return count
