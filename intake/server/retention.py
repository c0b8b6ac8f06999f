"""Retention: the server keeps only what staff have not yet carried away.

Two rules, run once a day (intake-retention.timer runs `intake retention run`):

- an item exported to staff more than `exported_days` days ago is deleted,
  its envelope file and its row (until staff confirmation exists, an export is
  taken as confirmed; the workstation keeps its copy);
- a witness with no activity for more than `inactive_days` days is deleted with
  every submission and item of theirs, exported or not, and their files.

A submission left with no item is deleted too, and so are expired sessions
and the replies of a deleted witness. Days only: all counted in whole UTC
days, as the database holds no time of day.

Then the store is reconciled with the database (intake.server.reconcile):
an envelope file with no row from before today is deleted (an attempt that
failed after placing it); a waiting item whose file is gone is marked
`missing`, so exports skip it and `intake doctor` names it.

One run at a time across every server sharing the database (a lock): a
second run meanwhile says so and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import click
from sqlalchemy import delete, exists, select

from intake.server.config import ConfigError, load_config
from intake.server.db import Database, LockBusy
from intake.server.models import Item, Reply, Submission, WebSession, Witness
from intake.server.reconcile import reconcile
from intake.server.store import Store, today

DEFAULT_EXPORTED_DAYS = 7
DEFAULT_INACTIVE_DAYS = 365

log = logging.getLogger("intake")


@dataclass
class RetentionReport:
    items: list[str] = field(default_factory=list)
    submissions: int = 0
    witnesses: int = 0
    sessions: int = 0
    replies: int = 0
    files_not_deleted: int = 0
    orphan_files: int = 0
    missing_files: int = 0
    leftovers: int = 0


def run_retention(db: Database, store: Store, exported_days: int = DEFAULT_EXPORTED_DAYS,
                  inactive_days: int = DEFAULT_INACTIVE_DAYS, on_day: dt.date | None = None,
                  dry_run: bool = False) -> RetentionReport:
    """Deletes rows in one transaction, then the files of the deleted items.

    Rows go first: a crash between the two leaves a file with no row (ciphertext
    that nothing points to), never a row whose file is gone.
    """
    if exported_days < 0 or inactive_days < 1:
        raise ValueError("exported_days must be 0 or more, inactive_days 1 or more")
    on_day = on_day or today()
    with db.lock("retention", wait=False):
        report = _run(db, store, exported_days, inactive_days, on_day, dry_run)
        if not dry_run:
            found = reconcile(db, store, on_day)
            report.orphan_files, report.missing_files = found.orphans, found.missing
            report.leftovers = found.leftovers
    return report


def _run(db: Database, store: Store, exported_days: int, inactive_days: int,
         on_day: dt.date, dry_run: bool) -> RetentionReport:
    exported_before = on_day - dt.timedelta(days=exported_days)
    inactive_before = on_day - dt.timedelta(days=inactive_days)
    report = RetentionReport()
    with db.sessions() as s:
        stale_witnesses = select(Witness.id).where(Witness.last_active_day < inactive_before)
        stale_submissions = select(Submission.id).where(
            Submission.witness_id.in_(stale_witnesses))
        report.items = list(s.scalars(select(Item.id).where(
            ((Item.state == "exported") & (Item.exported_day < exported_before))
            | Item.submission_id.in_(stale_submissions)).order_by(Item.id)))
        report.witnesses = len(list(s.scalars(stale_witnesses)))
        if dry_run:
            return report
        if report.items:
            s.execute(delete(Item).where(Item.id.in_(report.items)))
        emptied = delete(Submission).where(~exists().where(Item.submission_id == Submission.id))
        report.submissions = s.execute(emptied).rowcount
        gone = select(Witness.id).where(Witness.last_active_day < inactive_before).where(
            ~exists().where(Submission.witness_id == Witness.id))
        # A witness's replies go with them (they reference the witness).
        report.replies = s.execute(delete(Reply).where(Reply.witness_id.in_(gone))).rowcount
        report.witnesses = s.execute(
            delete(Witness).where(Witness.last_active_day < inactive_before)
            .where(~exists().where(Submission.witness_id == Witness.id))).rowcount
        report.sessions = s.execute(
            delete(WebSession).where(WebSession.expires_day < on_day)).rowcount
        s.commit()
    for item_id in report.items:
        try:
            store.delete(item_id)
        except OSError as exc:
            report.files_not_deleted += 1
            log.error("retention: cannot delete an envelope file: %s", exc.strerror)
    return report


@click.group()
def retention() -> None:
    """Delete what the server no longer needs to keep."""


@retention.command("run")
@click.option("--exported-days", type=click.IntRange(min=0), default=DEFAULT_EXPORTED_DAYS,
              show_default=True, envvar="INTAKE_RETENTION_EXPORTED_DAYS",
              help="Delete items exported to staff more than this many days ago.")
@click.option("--inactive-days", type=click.IntRange(min=1), default=DEFAULT_INACTIVE_DAYS,
              show_default=True, envvar="INTAKE_RETENTION_INACTIVE_DAYS",
              help="Delete witnesses inactive for more than this many days, with all "
                   "they sent.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def retention_run(exported_days: int, inactive_days: int, dry_run: bool) -> None:
    """Apply the retention rules once (a daily timer runs this)."""
    try:
        config = load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    db = Database(config.effective_database_url)
    try:
        db.migrate()
        report = run_retention(db, Store(config.store_dir), exported_days, inactive_days,
                               dry_run=dry_run)
    except LockBusy:
        click.echo("retention: another run is under way (on this or another server); "
                   "nothing done")
        return
    finally:
        db.dispose()
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"retention: {verb} {len(report.items)} item(s), "
               f"{report.witnesses} witness(es)"
               + ("" if dry_run else f", {report.submissions} emptied submission(s), "
                  f"{report.sessions} expired session(s), {report.replies} reply(ies); "
                  f"store: {report.orphan_files} file(s) without a row and "
                  f"{report.leftovers} unfinished upload(s) deleted, "
                  f"{report.missing_files} item(s) marked missing"))
    if report.files_not_deleted:
        raise click.ClickException(f"{report.files_not_deleted} envelope file(s) could not "
                                   "be deleted; their rows are gone, see the log")


@retention.command("tidy")
def retention_tidy() -> None:
    """Keep the time of day off the disk; sweep abandoned uploads (hourly)."""
    from intake.server.tidy import tidy

    try:
        config = load_config()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    report = tidy(config)
    click.echo(f"tidy: {report.pool_added} file(s) added to the pool, "
               f"{report.folders_added} folder(s) to the upload pool, "
               f"{report.normalised} path(s) set to their day, "
               f"{report.leftovers} abandoned upload(s) deleted, "
               f"{report.partial_uploads} expired resumable upload(s) deleted")
