"""The triage pages, served on loopback by `intake vault serve`.

The only module of the vault that imports Flask. Every page gets the witness
pages' strict headers, needs no JavaScript, and shows a file only as a fresh
re-encoded picture or as escaped text; anything else leaves only as a
download the triager asks for, and every such step goes into the custody log.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from intake.pages.flask_app import new_app, templates_dir
from intake.pages.languages import LANGUAGES as PAGE_LANGUAGES
from intake.workstation import cases, custody, images, replies, triage
from intake.workstation.language import LANGUAGES
from intake.workstation.safe_names import safe_output_name
from intake.workstation.vault import Vault

# The staff's own language, from the browser's Accept-Language; English otherwise.
UI_LANGUAGES = list(PAGE_LANGUAGES)
TEXT_PREVIEW_BYTES = 256 * 1024

bp = Blueprint("vault", __name__, static_folder=str(templates_dir() / "vault" / "static"),
               static_url_path="/vault-static")


def _vault() -> Vault:
    if "vault" not in g:
        g.vault = Vault(current_app.config["VAULT_ROOT"])
    return g.vault


def _actor() -> str:
    return current_app.config["VAULT_ACTOR"]


def _text_preview(vault: Vault, item: dict) -> str | None:
    if item["kind"] != "testimony" and not item["detected_type"].startswith("text/"):
        return None
    with open(vault.item_path(item["item_id"]), "rb") as f:
        return f.read(TEXT_PREVIEW_BYTES).decode(errors="replace")


@bp.get("/")
def index():
    vault = _vault()
    filters = triage.Filters.from_args(request.args)
    rows = triage.list_submissions(vault.conn, filters)
    return render_template("vault/list.html", rows=rows, f=filters,
                           statuses=triage.STATUSES, priorities=triage.PRIORITIES,
                           sorts=triage.SORTS, languages=LANGUAGES,
                           tags=triage.choices(vault.conn, "tag"),
                           assignees=triage.choices(vault.conn, "assignee"))


@bp.get("/submission/<submission_id>")
def submission(submission_id: str):
    vault = _vault()
    sub = triage.submission(vault.conn, submission_id)
    if sub is None:
        abort(404)
    with vault.transaction() as conn:
        custody.append(conn, "view", f"submission:{submission_id}", {}, _actor())
    for it in sub["items"]:
        it["text"] = _text_preview(vault, it)
        it["image"] = it["kind"] == "file" and it["phash"] is not None
        it["duplicates"] = triage.exact_duplicates(vault.conn, it["item_id"])
        it["near"] = triage.near_duplicates(vault.conn, it["item_id"])
        it["original"] = triage.original_of(vault.conn, it) if it["kind"] == "file" else None
    siblings = [s for s in triage.witness_submissions(vault.conn, sub["witness_id"])
                if s["submission_id"] != submission_id]
    queued = vault.conn.execute("SELECT reply_id, created_at, exported_at FROM replies WHERE "
                                "submission_id = ? ORDER BY created_at",
                                (submission_id,)).fetchall()
    return render_template("vault/submission.html", sub=sub, siblings=siblings,
                           statuses=triage.STATUSES, priorities=triage.PRIORITIES,
                           cases=cases.names(vault.conn), replies=queued)


@bp.get("/witness/<witness_id>")
def witness(witness_id: str):
    subs = triage.witness_submissions(_vault().conn, witness_id)
    if not subs:
        abort(404)
    return render_template("vault/witness.html", witness_id=witness_id, subs=subs)


def _back(submission_id: str):
    return redirect(url_for("vault.submission", submission_id=submission_id), code=303)


@bp.post("/submission/<submission_id>/triage")
def update(submission_id: str):
    form = request.form
    priority = form.get("priority", "")
    try:
        with _vault().transaction() as conn:
            triage.update(conn, submission_id, status=form.get("status") or None,
                          priority=int(priority) if priority.isdigit() else None,
                          assignee=form.get("assignee"),
                          tags=form.get("tags", "").split(",") if "tags" in form else None,
                          actor=_actor())
    except triage.TriageError:
        abort(400)
    return _back(submission_id)


@bp.post("/submission/<submission_id>/note")
def note(submission_id: str):
    try:
        with _vault().transaction() as conn:
            triage.add_note(conn, submission_id, request.form.get("note", ""), _actor())
    except triage.TriageError:
        abort(400)
    return _back(submission_id)


@bp.post("/submission/<submission_id>/case")
def add_to_case(submission_id: str):
    try:
        cases.add(_vault(), request.form.get("case", ""), [submission_id], _actor())
    except cases.CaseError:
        abort(400)
    return _back(submission_id)


@bp.post("/submission/<submission_id>/reply")
def reply(submission_id: str):
    try:
        replies.write_reply(_vault(), submission_id, request.form.get("message", ""), _actor())
    except replies.ReplyError:
        abort(400)
    return _back(submission_id)


def _item_or_404(item_id: str) -> dict:
    item = triage.item(_vault().conn, item_id)
    if item is None:
        abort(404)
    return item


@bp.get("/item/<item_id>/preview.png")
def preview(item_id: str):
    item = _item_or_404(item_id)
    if item["kind"] != "file":
        abort(404)  # originals are never previewed, only downloaded on request
    try:
        png = images.preview_png(_vault().item_path(item_id))
    except images.NotAnImage:
        abort(404)
    return current_app.response_class(png, mimetype="image/png")


def _download(item: dict, action: str):
    vault = _vault()
    with vault.transaction() as conn:
        custody.append(conn, action, f"item:{item['item_id']}",
                       {"submission_id": item["submission_id"],
                        "sha256_kept": item["sha256_kept"]}, _actor())
    name = safe_output_name(item["original_name"], f"file-{item['item_id'][:8]}")
    return send_file(vault.item_path(item["item_id"]), mimetype="application/octet-stream",
                     as_attachment=True, download_name=name, etag=False, max_age=0)


@bp.post("/item/<item_id>/download")
def download(item_id: str):
    item = _item_or_404(item_id)
    if item["kind"] == "original":
        abort(404)
    return _download(item, "download")


@bp.post("/item/<item_id>/original")
def original(item_id: str):
    item = _item_or_404(item_id)
    if item["kind"] != "original" or request.form.get("confirm") != "yes":
        abort(400)
    return _download(item, "view original")


def _error(status: int, title: str, message: str):
    return render_template("vault/error.html", title=title, message=message), status


def _errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return _error(400, _("The form has expired"),
                      _("Open the page again and repeat what you did."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404:
            return _error(404, _("Not found"), _("There is nothing at this address."))
        return _error(exc.code or 400, _("Not done"),
                      _("That request could not be carried out. Nothing was changed."))


def _locale() -> str:
    return request.accept_languages.best_match(UI_LANGUAGES) or "en"


def create_vault_app(vault_root: Path, actor: str | None = None) -> Flask:
    Vault(vault_root).close()  # creates the folders and tables, or fails here
    app = new_app("intake.workstation", _locale)
    app.config.update(
        SECRET_KEY=os.urandom(32),  # forms live as long as this process
        VAULT_ROOT=vault_root,
        VAULT_ACTOR=actor or custody.default_actor(),
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=1024 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=0,
    )
    CSRFProtect(app)

    @app.teardown_appcontext
    def _close(_exc):
        vault = g.pop("vault", None)
        if vault is not None:
            vault.close()

    _errors(app)
    app.register_blueprint(bp)
    return app
