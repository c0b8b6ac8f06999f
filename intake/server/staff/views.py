"""The staff pages: login, the queue, downloads, reply uploads, deletion, audit."""

from __future__ import annotations

from collections import defaultdict
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
from sqlalchemy import select

from intake.format.bundle import BundleError
from intake.server import queue
from intake.server.models import AuditEntry, Item, StaffUser, Submission
from intake.server.reply_import import import_replies
from intake.server.staff import audit
from intake.server.store import today
from intake.server.web.errors import IntakeError

bp = Blueprint("staff", __name__)


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
    keep = {k: session[k] for k in ("lang",) if k in session}  # the language stays
    session.clear()
    session.regenerate()
    session.update(keep)
    session["staff"] = {"id": user.id, "seen": _intake().clock()}
    audit.record(_intake().db, user.name, "login")
    return redirect(url_for("staff.queue_page"))


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
                user = s.get(StaffUser, state["id"])
            if user is None:
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
    session.clear()
    return redirect(url_for("staff.login"))


@bp.get("/")
@staff_required()
def queue_page():
    with _intake().db.sessions() as s:
        rows = s.execute(select(Item, Submission.witness_id)
                         .join(Submission, Item.submission_id == Submission.id)
                         .order_by(Submission.witness_id, Item.received_day, Item.id)).all()
    witnesses: dict[str, dict] = defaultdict(lambda: {"items": [], "new": 0, "size": 0,
                                                      "downloaded": 0})
    for item, witness_id in rows:
        w = witnesses[witness_id]
        w["items"].append(item)
        w["size"] += item.size
        if item.state == "waiting":
            w["new"] += 1
        else:
            w["downloaded"] += 1
    return render_template("staff/queue.html", witnesses=dict(witnesses))


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
        raise IntakeError(_("That file is not a sound reply bundle: %(why)s", why=str(exc))) \
            from exc
    audit.record(intake.db, g.staff.name, "upload replies",
                 f"{report.added} added, {report.duplicates} already here, "
                 f"{len(report.rejected)} rejected")
    return render_template("staff/replies.html", report=report)


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


@bp.get("/audit")
@staff_required(admin=True)
def audit_page():
    with _intake().db.sessions() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).all()
    return render_template("staff/audit.html", entries=entries)
