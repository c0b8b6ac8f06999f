"""The triage pages, served on loopback by `intake vault serve`.

The only modules of the vault that import Flask are this one, desk_exports
(the exports started from it) and desk_access (which decides whom it
answers). Every page gets the witness pages' strict headers, needs no
JavaScript, and shows every value from a submission through the
safe-to-print rule (safe_text.for_page, applied to everything a template
prints; safe_text.for_line in the rows of the list). A file is shown only as
the preview PNG made at import in the parsing sandbox, or as escaped text;
viewing parses nothing and writes nothing. Anything else leaves only as a
download the triager asks for.

Every POST writes to the custody log, which is signed with the custody key:
a desk started with --key holds that key (and only that key) for its run; a
desk started without it shows, but refuses every POST. Re-reading the team's
copies of replies needs the team key itself: it is unlocked from the key file
given with --key, with the passphrase typed on the page, for that one
request (docs/workstation.md, "The desk and its keys").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

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
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from intake.format import teamkeys
from intake.pages.flask_app import new_app, templates_dir
from intake.pages.languages import LANGUAGES as PAGE_LANGUAGES
from intake.pages.sizes import human_size
from intake.pages.typed_back import typed_back
from intake.workstation import (
    cases,
    custody,
    desk_access,
    desk_exports,
    replies,
    stemming,
    threads,
    triage,
)
from intake.workstation.language import LANGUAGES
from intake.workstation.refusals import Refusal
from intake.workstation.safe_names import safe_output_name
from intake.workstation.safe_text import for_line, for_page
from intake.workstation.unlock import load_private_key
from intake.workstation.vault import Vault

# The staff's own language, from the browser's Accept-Language; English otherwise.
UI_LANGUAGES = list(PAGE_LANGUAGES)
TEXT_PREVIEW_BYTES = 256 * 1024

bp = Blueprint("vault", __name__, static_folder=str(templates_dir() / "vault" / "static"),
               static_url_path="/vault-static")


def _vault() -> Vault:
    if "vault" not in g:
        g.vault = Vault(current_app.config["VAULT_ROOT"], current_app.config["VAULT_SIGNER"])
    return g.vault


def _actor() -> str:
    return current_app.config["VAULT_ACTOR"]


def _text_preview(vault: Vault, item: dict) -> str | None:
    """Text shown as escaped text: a testimony or a file of a text type, read
    and decoded, never parsed."""
    if item["kind"] == "original" or (item["kind"] != "testimony"
                                      and not item["detected_type"].startswith("text/")):
        return None
    return vault.read_item(item["item_id"], TEXT_PREVIEW_BYTES).decode(errors="replace")


def _preview_state(vault: Vault, item_id: str) -> tuple[str, str]:
    """What import made of a file: ("picture", "") or ("none"/"limit", reason),
    or ("", "") when nothing was tried."""
    row = vault.conn.execute("SELECT state, reason FROM previews WHERE item_id = ?",
                             (item_id,)).fetchone()
    return (row["state"], row["reason"]) if row else ("", "")


def _opening(vault: Vault):
    """A testimony's first characters, for a row of the list."""
    def read(item_id: str) -> str:
        try:
            data = vault.read_item(item_id, triage.SNIPPET_CHARS * 4)
        except (KeyError, OSError):
            return ""  # one row without its opening; its own page says what is wrong
        text = data.decode(errors="replace")
        cut = len(text) > triage.SNIPPET_CHARS
        return text[:triage.SNIPPET_CHARS] + ("…" if cut else "")
    return read


def _page_number() -> int:
    return triage.small_number(request.args.get("page", "1")) or 1


@bp.get("/")
def index():
    vault = _vault()
    filters = triage.Filters.from_args(request.args)
    page = triage.list_submissions(vault.conn, filters, _page_number(),
                                   opening=_opening(vault))
    return render_template("vault/list.html", page=page, rows=page.rows, f=filters,
                           statuses=triage.STATUSES, priorities=triage.PRIORITIES,
                           sorts=triage.SORTS, languages=LANGUAGES,
                           tags=triage.choices(vault.conn, "tag"),
                           assignees=triage.choices(vault.conn, "assignee"),
                           belarusian=stemming.belarusian_dictionary())


@bp.get("/submission/<submission_id>")
def submission(submission_id: str):
    return _submission_page(submission_id)


def _submission_page(submission_id: str, typed: dict | None = None, note: str = "",
                     case: str = "", message: str = "", refused: str = "",
                     refused_at: str = "", stale: bool = False, status: int = 200):
    """The submission's page; after a refused save, with what was typed back in
    its form (`typed` for the triage form, `note`, `case` and `message` for the
    note's, the case's and the reply's), the reason (`refused`, the id of the
    form or field it is about in `refused_at`) and, when another tab or window
    saved meanwhile (`stale`), the values saved now beside it."""
    vault = _vault()
    sub = triage.submission(vault.conn, submission_id)
    if sub is None:
        abort(404)
    for it in sub["items"]:
        it["text"] = _text_preview(vault, it)
        it["preview"], it["preview_reason"] = _preview_state(vault, it["item_id"])
        it["image"] = it["kind"] == "file" and it["preview"] == "picture"
        it["duplicates"] = triage.exact_duplicates(vault.conn, it["item_id"])
        it["near"] = triage.near_duplicates(vault.conn, it["item_id"])
        it["original"] = triage.original_of(vault.conn, it) if it["kind"] == "file" else None
    siblings = [s for s in triage.witness_submissions(vault.conn, sub["witness_id"])
                if s["submission_id"] != submission_id]
    queued = vault.conn.execute("SELECT reply_id, created_at, exported_at FROM replies WHERE "
                                "submission_id = ? ORDER BY created_at",
                                (submission_id,)).fetchall()
    form = {"status": sub["status"], "priority": sub["priority"],
            "assignee": sub["assignee"], "tags": ", ".join(sub["tags"]),
            "version": sub["version"]} | (typed or {})
    return render_template("vault/submission.html", sub=sub, siblings=siblings,
                           statuses=triage.STATUSES, priorities=triage.PRIORITIES,
                           cases=cases.names(vault.conn), replies=queued, form=form,
                           note=note, case=case, message=message, refused=refused,
                           refused_at=refused_at, stale=stale), status


def _can_read_replies() -> bool:
    return current_app.config["VAULT_KEY_FILE"] is not None and \
        current_app.config["VAULT_SIGNER"] is not None


def _thread_page(witness_id: str, opened: dict[str, replies.Opened] | None = None,
                 message: str = "", refused: str = "", refused_at: str = "",
                 status: int = 200):
    """The witness's thread; after a refused reply, with the message typed back
    in the reply form and the reason linked to it (`refused_at`)."""
    vault = _vault()
    events = threads.thread(vault, witness_id)
    if not events:
        abort(404)
    return render_template("vault/witness.html", witness_id=witness_id, events=events,
                           opened=opened or {}, message=message, refused=refused,
                           refused_at=refused_at, can_read=_can_read_replies()), status


@bp.get("/witness/<witness_id>")
def witness(witness_id: str):
    return _thread_page(witness_id)


@bp.post("/witness/<witness_id>/read-replies")
def read_replies(witness_id: str):
    """Opens the team's copies of the replies in this thread with the team key:
    the key file the desk was started with, unlocked with the passphrase typed
    on the page, for this request only. The desk itself holds only the custody
    key; the team key is never kept between requests."""
    if not _can_read_replies():
        abort(400)
    passphrase = request.form.get("passphrase", "").encode()
    try:
        key = load_private_key(current_app.config["VAULT_KEY_FILE"], passphrase)
    except teamkeys.KeyFileError:
        return _thread_page(witness_id, refused=_(
            "The key could not be unlocked with that passphrase. Nothing was opened."),
            status=403)
    try:
        opened = replies.read_thread_replies(_vault(), witness_id, key, _actor())
    finally:
        del key
    return _thread_page(witness_id, opened=opened)


def _back(submission_id: str):
    return redirect(url_for("vault.submission", submission_id=submission_id), code=303)


@bp.post("/submission/<submission_id>/triage")
def update(submission_id: str):
    form = request.form
    status = form.get("status") or None
    priority = triage.small_number(form.get("priority", ""), 2)
    # Both come from menus: any other value is a forged form, not a typing slip.
    if (status is not None and status not in triage.STATUSES) or \
            (form.get("priority") and priority not in triage.PRIORITIES):
        abort(400)
    try:
        with _vault().transaction() as conn:
            triage.update(conn, submission_id, status=status, priority=priority,
                          assignee=form.get("assignee"),
                          tags=form.get("tags", "").split(",") if "tags" in form else None,
                          actor=_actor(), version=form.get("version", ""))
    except triage.TriageError as exc:
        # Nothing was written (one transaction); the page keeps what was typed.
        # A stale form gets the stored state's version, so saving it again is
        # a choice made with the values saved now in view.
        stale = isinstance(exc, triage.Stale)
        typed = {k: form[k] for k in ("status", "assignee", "tags") if k in form}
        if priority is not None:
            typed["priority"] = priority
        if not stale:
            typed["version"] = form.get("version", "")
        return _submission_page(submission_id, typed=typed, refused=_refusal_text(exc),
                                refused_at=exc.field or "triage-form", stale=stale,
                                status=409 if stale else 400)
    return _back(submission_id)


@bp.post("/submission/<submission_id>/note")
def note(submission_id: str):
    body = request.form.get("note", "")
    try:
        with _vault().transaction() as conn:
            triage.add_note(conn, submission_id, body, _actor())
    except triage.TriageError as exc:
        return _submission_page(submission_id, note=body, refused=_refusal_text(exc),
                                refused_at="note", status=400)
    return _back(submission_id)


@bp.post("/submission/<submission_id>/case")
def add_to_case(submission_id: str):
    name = request.form.get("case", "")
    try:
        cases.add(_vault(), name, [submission_id], _actor())
    except cases.CaseError as exc:
        # Nothing was written (checked first, or rolled back); the name stays typed.
        return _submission_page(submission_id, case=name, refused=_refusal_text(exc),
                                refused_at="case", status=400)
    return _back(submission_id)


def _witness_of(submission_id: str) -> str:
    row = _vault().conn.execute("SELECT witness_id FROM submissions WHERE submission_id = ?",
                                (submission_id,)).fetchone()
    if row is None:
        abort(404)
    return row[0]


@bp.post("/submission/<submission_id>/reply")
def reply(submission_id: str):
    """A reply from the submission's page or (`back` "thread") the witness's
    thread; a refused one brings back the page it was written on, message kept."""
    message = request.form.get("message", "")
    thread = request.form.get("back") == "thread"
    try:
        replies.write_reply(_vault(), submission_id, message, _actor())
    except replies.ReplyError as exc:
        # Refused before anything is sealed, written or logged (write_reply).
        if thread:
            return _thread_page(_witness_of(submission_id), message=message,
                                refused=_refusal_text(exc), refused_at="message", status=400)
        return _submission_page(submission_id, message=message, refused=_refusal_text(exc),
                                refused_at="message", status=400)
    if thread:
        return redirect(url_for("vault.witness", witness_id=_witness_of(submission_id))
                        + "#message", code=303)
    return _back(submission_id)


def _item_or_404(item_id: str) -> dict:
    item = triage.item(_vault().conn, item_id)
    if item is None:
        abort(404)
    return item


@bp.get("/item/<item_id>/preview.png")
def preview(item_id: str):
    """The PNG made at import by the parsing sandbox; nothing is decoded here.
    Originals never have one: they are only downloaded on request."""
    row = _vault().conn.execute(
        "SELECT p.png FROM previews p JOIN items i ON i.item_id = p.item_id WHERE"
        " p.item_id = ? AND p.state = 'picture' AND i.kind = 'file'", (item_id,)).fetchone()
    if row is None or row["png"] is None:
        abort(404)
    return current_app.response_class(bytes(row["png"]), mimetype="image/png")


def _download(item: dict, action: str):
    vault = _vault()
    try:
        fd = vault.open_item(item["item_id"])
    except (KeyError, OSError):
        abort(404)
    data = os.fdopen(fd, "rb")
    try:
        with vault.transaction() as conn:
            custody.append(conn, action, f"item:{item['item_id']}",
                           {"submission_id": item["submission_id"],
                            "sha256_kept": item["sha256_kept"]}, _actor())
    except BaseException:
        data.close()
        raise
    name = safe_output_name(item["original_name"], f"file-{item['item_id'][:8]}")
    return send_file(data, mimetype="application/octet-stream",
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


def _refusal_text(exc: Refusal) -> str:
    """A refusal's reason in the page's language, as a sentence: the vault's
    refusals are also printed after "error: " on the console, so many start
    in lower case and end without a full stop."""
    text = _(exc.message, **exc.values)
    if not exc.message.startswith("%("):  # a path or a name stays as it is
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _error(status: int, title: str, message: str, typed: str = ""):
    return render_template("vault/error.html", title=title, message=message,
                           typed=typed), status


def _typed_back() -> str:
    """A reply or note sent after the desk was started again: its page gives
    it back (intake.pages.typed_back)."""
    return typed_back(("message", "note"),
                      trusted=request.headers.get("Origin") == request.host_url[:-1])


def _errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return _error(400, _("The form has expired"),
                      _("Open the page again and repeat what you did."), _typed_back())

    @app.errorhandler(desk_access.NotOpened)
    def _not_opened(exc):
        # A form sent after the desk was started again lands here.
        return _error(403, _("Open the desk's own address"),
                      _("This desk answers only the browser that opened the address "
                        "printed by intake vault serve. Open that address again."),
                      _typed_back())

    @app.errorhandler(desk_access.WrongHost)
    def _wrong_host(exc):
        return _error(421, _("Wrong address"),
                      _("The desk answers only at 127.0.0.1 or localhost on this "
                        "computer."))

    @app.errorhandler(custody.CustodyLocked)
    def _locked(exc):
        return _error(403, _("The team key is needed"),
                      _("This desk was started without the team key, so it shows the "
                        "vault but changes nothing: changes and downloads go into the "
                        "custody log, which is signed with the team key. Start it with "
                        "intake vault serve --key."))

    @app.errorhandler(Refusal)
    def _refused(exc: Refusal):
        # A case or a reply that cannot be made: the reason, in the page's language.
        return _error(400, _("Not done"), _refusal_text(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404:
            return _error(404, _("Not found"), _("There is nothing at this address."))
        if exc.code == 413:  # refused before the form was read, so nothing of it was kept
            return _error(413, _("Too large"), _(
                "What was sent is larger than the desk takes at once (%(limit)s), so "
                "nothing was saved. Go back and shorten it.",
                limit=human_size(current_app.config["MAX_CONTENT_LENGTH"])))
        return _error(exc.code or 400, _("Not done"),
                      _("That request could not be carried out. Nothing was changed."))


# The triager picks the desk's language from a link on any page (`?lang=uk`),
# as a witness does; the choice lives in the desk's session cookie, which ends
# with the browser. Without a choice the browser's Accept-Language decides.
LANG_QUERY = "lang"


def _locale() -> str:
    chosen = session.get(LANG_QUERY)
    if chosen in PAGE_LANGUAGES:
        return chosen
    return request.accept_languages.best_match(UI_LANGUAGES) or "en"


def _remember_language() -> None:
    code = request.args.get(LANG_QUERY)
    if code in PAGE_LANGUAGES and session.get(LANG_QUERY) != code:
        session[LANG_QUERY] = code


@dataclass(frozen=True)
class LanguageLink:
    code: str
    name: str
    href: str
    current: bool


def _language_links() -> list[LanguageLink]:
    """This page in each language (a page that answered a POST: the list)."""
    path = request.path if request.method in ("GET", "HEAD") else "/"
    path = "/" + quote(path.lstrip("/"))  # one leading slash: never another host
    args = [(k, v) for k, v in request.args.items(multi=True) if k != LANG_QUERY]
    current = str(get_locale() or "en")
    return [LanguageLink(code, name, f"{path}?{urlencode([*args, (LANG_QUERY, code)])}",
                         code == current) for code, name in PAGE_LANGUAGES.items()]


def _reasons() -> dict[str, str]:
    return {"unsupported type": _("unsupported type"), "empty file": _("empty file"),
            "the cleaner could not start": _("the cleaner could not start"),
            "memory limit reached": _("memory limit reached"),
            "CPU time limit reached": _("CPU time limit reached"),
            "time limit reached": _("time limit reached"),
            "cleaned file too large": _("cleaned file too large"),
            "the submission's cleaning budget is spent":
                _("the submission's cleaning budget is spent")}


def _flag_text(flag: str) -> str:
    """A sanitizer's flag, sealed in English by the server, in the page's
    language where it is one the server writes; any other stays as it came."""
    head, sep, why = flag.partition(": ")
    if head == "not sanitized" and sep:
        return _("not sanitized: %(why)s", why=_reasons().get(why, why))
    return flag


def _shown(value):
    """Jinja's finalize: every value a template prints from data goes through
    the safe-to-print rule (translations and markup made by templates pass)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return for_page(value)
    return value


def _read_only() -> None:
    """Every POST of the desk writes to the custody log (a change, a download,
    a reply, a re-reading, an export): without the custody key, refused before
    anything is done."""
    if request.method == "POST" and current_app.config["VAULT_SIGNER"] is None:
        raise custody.CustodyLocked("the desk was started without --key")


def create_vault_app(vault_root: Path, actor: str | None = None, *,
                     access: desk_access.Access | None = None,
                     signer: custody.Signer | None = None,
                     key_file: Path | None = None,
                     exports_dir: Path | None = None) -> Flask:
    """The desk. `intake vault serve` always passes `access` (whom to answer);
    an app made without it answers anyone, for in-process test clients only.
    Without `signer` (the unlocked custody key) it shows but changes nothing.
    `key_file` (the team's private key file, given with the signer) lets it
    open the team's copies of replies, the passphrase asked each time;
    `exports_dir` is where exports started from the desk go (VAULT/exports)."""
    vault_root = Path(os.path.abspath(vault_root))
    Vault(vault_root).close()  # creates the folders and tables, or fails here
    app = new_app("intake.workstation", _locale)
    app.config.update(
        SECRET_KEY=os.urandom(32),  # forms live as long as this process
        VAULT_ROOT=vault_root,
        VAULT_KEY_FILE=key_file,
        VAULT_EXPORTS=Path(os.path.abspath(exports_dir or vault_root / "exports")),
        VAULT_ACTOR=actor or custody.default_actor(),
        VAULT_SIGNER=signer,
        WTF_CSRF_SSL_STRICT=False,
        # A reply may take longer than an hour to write; the token still ends
        # with this process, whose key signs it, and the desk answers only
        # the browser that opened its address (desk_access).
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=1024 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=0,
        SESSION_COOKIE_NAME="intake_desk_form",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
    )
    app.jinja_env.finalize = _shown
    if access is not None:
        desk_access.init_app(app, access)
    CSRFProtect(app)
    app.before_request(_remember_language)
    app.before_request(_read_only)
    app.jinja_env.globals["language_links"] = _language_links
    # A testimony's detected language goes on the element that shows it, so a
    # screen reader speaks it in that language whatever the page's.
    app.jinja_env.globals["known_languages"] = tuple(PAGE_LANGUAGES)
    # The most each typed field takes, as the checks behind the forms count it:
    # the browser stops the typing there, long before the request is too large.
    app.jinja_env.globals["most_chars"] = {
        "note": triage.NOTE_CHARS, "message": replies.MAX_MESSAGE_CHARS,
        "case": cases.NAME_CHARS, "assignee": triage.ASSIGNEE_CHARS}

    @app.teardown_appcontext
    def _close(_exc):
        vault = g.pop("vault", None)
        if vault is not None:
            vault.close()

    _errors(app)
    app.add_template_filter(for_line, "one_line")
    app.add_template_filter(human_size, "human_size")
    app.add_template_filter(_flag_text, "flag_text")
    app.register_blueprint(bp)
    app.register_blueprint(desk_exports.bp)
    return app
