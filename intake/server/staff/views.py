"""The staff pages: login, the queue, downloads, reply uploads, deletion, audit."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, fields
from functools import wraps

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from intake.format.bundle import BundleError
from intake.pages.flask_app import templates_dir
from intake.pages.sizes import human_size
from intake.server import queue
from intake.server.models import AuditEntry, Item, StaffUser, Submission
from intake.server.reply_import import import_replies
from intake.server.staff import audit
from intake.server.store import today
from intake.server.web.errors import IntakeError
from intake.server.web.i18n import address_choice

# The staff pages' own stylesheet, beside their templates.
bp = Blueprint("staff", __name__, static_folder=str(templates_dir() / "staff" / "static"),
               static_url_path="/staff-static")
bp.add_app_template_filter(human_size, "human_size")


def _intake():
    return current_app.extensions["intake"]


@bp.get("/login")
def login():
    return render_template("staff/login.html")


@bp.post("/login")
def login_post():
    name = (request.form.get("name") or "")[:64]
    user = current_app.extensions["intake.staff_auth"].login(
        name, request.form.get("password") or "", request.form.get("code") or "")
    if user is None:
        return render_template("staff/login.html", failed=True), 403
    # The language stays: the session's, or the one the login page's address
    # carried (a choice made before there was a session to keep it in).
    lang = session.get("lang") or address_choice()
    keep = {"lang": lang} if lang else {}
    session.clear()
    session.regenerate()
    session.update(keep)
    session["staff"] = {"id": user.id, "account": _account_mark(user),
                        "seen": _intake().clock()}
    audit.record(_intake().db, user.name, "login")
    return redirect(url_for("staff.queue_page"))


def _account_mark(user: StaffUser) -> str:
    """What a session holds of the account it logged in to, beside its id: a
    removed account's id is given to the next one made (SQLite reuses the
    highest), and a session must not pass to it. Keyed with the app's secret,
    made of what a new account, or a new password or second factor, changes."""
    made = "\0".join((str(user.id), user.name, user.password_hash, user.totp_secret))
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, b"intake-staff-account:" + made.encode(), hashlib.sha256).hexdigest()


def staff_required(admin: bool = False):
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            state = session.get("staff")
            intake = _intake()
            if not state or intake.clock() - state.get("seen", 0) > \
                    intake.config.session_lifetime:
                session.clear()
                return redirect(url_for("staff.login"))
            with intake.db.sessions() as s:
                user = s.get(StaffUser, state.get("id"))
            if user is None or not hmac.compare_digest(str(state.get("account", "")),
                                                       _account_mark(user)):
                session.clear()
                return redirect(url_for("staff.login"))
            if admin and not user.is_admin:
                abort(403)
            state["seen"] = intake.clock()
            session["staff"] = state
            g.staff = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


@bp.post("/logout")
def logout():
    # The login page that follows still speaks the language chosen.
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("staff.login"))


QUEUE_PER_PAGE = 50
QUEUE_SORTS = {
    "oldest": (Item.received_day.asc(), Item.id.asc()),
    "newest": (Item.received_day.desc(), Item.id.desc()),
    "largest": (Item.size.desc(), Item.id.asc()),
    "witness": (Submission.witness_id.asc(), Item.received_day.asc(), Item.id.asc()),
}


@dataclass
class QueueFilters:
    """The queue's filters, from the page's query arguments (anything else ignored)."""

    state: str = ""       # waiting / exported / "" for both
    kind: str = ""        # testimony / file / original
    witness: str = ""
    day_from: str = ""
    day_to: str = ""
    sort: str = "oldest"

    @classmethod
    def from_args(cls, args) -> QueueFilters:
        f = cls(**{x.name: str(args.get(x.name) or "").strip()[:64] for x in fields(cls)
                   if args.get(x.name)})
        f.state = f.state if f.state in ("waiting", "exported") else ""
        f.kind = f.kind if f.kind in ("testimony", "file", "original") else ""
        f.witness = f.witness if f.witness.isalnum() else ""
        f.sort = f.sort if f.sort in QUEUE_SORTS else "oldest"
        for name in ("day_from", "day_to"):
            try:
                dt.date.fromisoformat(getattr(f, name))
            except ValueError:
                setattr(f, name, "")
        return f

    def args(self, **changes: str) -> dict[str, str]:
        """The filters as query arguments, for links that keep them."""
        values = {x.name: getattr(self, x.name) for x in fields(self)} | changes
        return {k: v for k, v in values.items() if v and not (k == "sort" and v == "oldest")}

    def where(self) -> list:
        clauses = []
        if self.state:
            clauses.append(Item.state == self.state)
        if self.kind:
            clauses.append(Item.kind == self.kind)
        if self.witness:
            clauses.append(Submission.witness_id == self.witness)
        if self.day_from:
            clauses.append(Item.received_day >= dt.date.fromisoformat(self.day_from))
        if self.day_to:
            clauses.append(Item.received_day <= dt.date.fromisoformat(self.day_to))
        return clauses


def _page_number(pages: int) -> int:
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and len(raw) < 7 else 1
    return min(max(1, number), pages)


@bp.get("/")
@staff_required()
def queue_page():
    """The queue a page at a time, with counts; filters and order stay on every page."""
    f = QueueFilters.from_args(request.args)
    joined = select(Item, Submission.witness_id).join(Submission,
                                                      Item.submission_id == Submission.id)
    with _intake().db.sessions() as s:
        by_state = dict(s.execute(select(Item.state, func.count()).group_by(Item.state)).all())
        total = s.scalar(select(func.count()).select_from(Item).join(
            Submission, Item.submission_id == Submission.id).where(*f.where())) or 0
        pages = max(1, -(-total // QUEUE_PER_PAGE))
        number = _page_number(pages)
        rows = s.execute(joined.where(*f.where()).order_by(*QUEUE_SORTS[f.sort])
                         .limit(QUEUE_PER_PAGE).offset((number - 1) * QUEUE_PER_PAGE)).all()
        witnesses = sorted({w for _, w in rows})
        per_witness = dict(s.execute(
            select(Submission.witness_id, func.count(Item.id))
            .join(Item, Item.submission_id == Submission.id)
            .where(Submission.witness_id.in_(witnesses), Item.state == "waiting")
            .group_by(Submission.witness_id)).all()) if witnesses else {}
    first = (number - 1) * QUEUE_PER_PAGE + 1 if rows else 0
    return render_template("staff/queue.html", rows=rows, f=f, total=total, number=number,
                           pages=pages, first=first, last=first + len(rows) - 1 if rows else 0,
                           waiting=by_state.get("waiting", 0),
                           exported=by_state.get("exported", 0), per_witness=per_witness)


def _selected_ids() -> list[str] | None:
    ids = request.form.getlist("item")
    return ids or None


@bp.post("/download")
@staff_required()
def download():
    intake = _intake()
    ids = _selected_ids()
    selection = queue.select_items(intake, item_ids=ids)
    if not selection.entries:
        raise IntakeError(_("There is nothing new to download."))
    audit.record(intake.db, g.staff.name, "download",
                 f"{len(selection.entries)} item(s)")
    name = f"intake-bundle-{today().isoformat()}.tar"
    return Response(stream_with_context(queue.stream(intake, ids)),
                    mimetype="application/x-tar",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/replies")
@staff_required()
def replies_page():
    return render_template("staff/replies.html")


def _reasons() -> dict[str, str]:
    """Why a reply bundle, or a reply in it, was refused: the reasons the
    import gives (in English, for logs and the console), in the page's words."""
    return {
        "not a readable reply bundle": _("not a readable reply bundle"),
        "the reply bundle is damaged": _("the reply bundle is damaged"),
        "not a reply bundle (no manifest at the start)":
            _("not a reply bundle (no manifest at the start)"),
        "not a reply bundle (unknown format)": _("not a reply bundle (unknown format)"),
        "the reply bundle's manifest is damaged": _("the reply bundle's manifest is damaged"),
        "damaged: size or SHA-256 does not match the manifest":
            _("damaged: size or SHA-256 does not match the manifest"),
        "no such witness on this server (deleted, or another server's)":
            _("no such witness on this server (deleted, or another server's)"),
        "not sealed to this witness's reply key": _("not sealed to this witness's reply key"),
        "not in the manifest": _("not in the manifest"),
        "missing from the bundle": _("missing from the bundle"),
    }


def _reason(why: str) -> str:
    return _reasons().get(why, why)


@bp.post("/replies")
@staff_required()
def replies_upload():
    intake = _intake()
    upload = request.files.get("bundle")
    if upload is None:
        raise IntakeError(_("Choose a reply bundle file first."))
    try:
        report = import_replies(intake, upload.stream)
    except BundleError as exc:
        raise IntakeError(_("That file is not a sound reply bundle: %(why)s",
                            why=_reason(str(exc)))) from exc
    finally:
        upload.close()  # a large one waits in a temporary file: gone now, refused or not
    audit.record(intake.db, g.staff.name, "upload replies",
                 f"{report.added} added, {report.duplicates} already here, "
                 f"{len(report.rejected)} rejected")
    return render_template("staff/replies.html", report=report,
                           rejected=[(name, _reason(why)) for name, why in report.rejected])


@bp.post("/delete")
@staff_required()
def delete_items():
    intake = _intake()
    ids = request.form.getlist("item")
    with intake.db.sessions() as s:
        items = s.scalars(select(Item).where(Item.id.in_(ids))).all() if ids else []
        waiting = [i for i in items if i.state == "waiting"]
        if not items:
            raise IntakeError(_("Choose the items to delete first."))
        if waiting:
            raise IntakeError(_("Only items that were downloaded can be deleted. "
                                "Download them and import them on the workstation first."))
        if request.form.get("confirm") != "yes":
            return render_template("staff/confirm_delete.html", items=items)
        for item in items:
            intake.store.delete(item.id)
            s.delete(item)
        s.commit()
    audit.record(intake.db, g.staff.name, "delete", f"{len(items)} item(s)")
    return redirect(url_for("staff.queue_page"))


@bp.errorhandler(IntakeError)
def _refused(exc: IntakeError):
    """A request staff made that could not be carried out, in staff words (the
    app's own handler speaks to witnesses)."""
    return render_template("staff/error.html", message=exc.message), exc.status


# What the audit log stores, in English, as records; shown in the reader's words.
_ITEMS = re.compile(r"(\d+) item\(s\)")
_REPLIES = re.compile(r"(\d+) added, (\d+) already here, (\d+) rejected")


def _action(action: str) -> str:
    names = {"login": _("logged in"), "download": _("downloaded a bundle"),
             "upload replies": _("uploaded replies"), "delete": _("deleted items")}
    return names.get(action, action)


def _detail(detail: str) -> str:
    if found := _ITEMS.fullmatch(detail):
        n = int(found.group(1))
        return ngettext("%(num)d item", "%(num)d items", n)
    if found := _REPLIES.fullmatch(detail):
        added, dup, bad = (int(x) for x in found.groups())
        return _("%(added)d added, %(dup)d already here, %(bad)d rejected.",
                 added=added, dup=dup, bad=bad)
    return detail


@bp.get("/audit")
@staff_required(admin=True)
def audit_page():
    with _intake().db.sessions() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).all()
    rows = [(e.day.isoformat(), e.staff_name, _action(e.action), _detail(e.detail))
            for e in entries]
    return render_template("staff/audit.html", rows=rows)
