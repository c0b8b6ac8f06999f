"""The desk's exports: a case package and a reply bundle, started with a form
(POST, CSRF) and run by the same code as `intake vault export-case` and
`intake vault export-replies`, each in a job whose page shows its progress and,
once done, where the result is and its SHA-256s. Both write to the custody
log, so each job opens the vault with the custody key the desk holds (a desk
without one refuses the POST first, desk.py).

The job page has no automatic refresh: the triager reloads it. (A
<meta http-equiv="refresh"> would work under the pages' CSP, but a page that
reloads itself on a timer fails WCAG 2.2.1, which axe-core checks.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from intake.workstation import cases, custody, replies
from intake.workstation.folders import Folder
from intake.workstation.jobs import Job, Jobs
from intake.workstation.safe_names import safe_output_name
from intake.workstation.vault import Vault

bp = Blueprint("exports", __name__, url_prefix="/exports")


def _jobs() -> Jobs:
    return current_app.extensions.setdefault("intake.jobs", Jobs())


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            sha.update(block)
    return sha.hexdigest()


def _stamp() -> str:
    """The UTC time and a few random letters: two exports started within the
    same second get folders of their own."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def _folder() -> Path:
    """The exports folder, made (or set) 0700 and never a link."""
    folder = current_app.config["VAULT_EXPORTS"]
    Folder.open(folder).close()
    return folder


def _signer() -> custody.Signer:
    return current_app.config["VAULT_SIGNER"]


def _export_case(root: Path, signer: custody.Signer, case: str, out: Path, actor: str):
    def work(job: Job) -> None:
        with Vault(root, signer) as vault:
            job.count = cases.export(vault, case, out, actor, progress=job.progress)
            head = vault.conn.execute(
                "SELECT hash FROM custody WHERE action = 'export case' AND subject = ?"
                " ORDER BY seq DESC LIMIT 1", (f"case:{case}",)).fetchone()[0]
        job.path = str(out)
        job.listing = (out / "SHA256SUMS").read_text()
        job.hashes = {"SHA256SUMS": _sha256(out / "SHA256SUMS"), "custody": head}
    return work


def _export_replies(root: Path, signer: custody.Signer, out: Path, include_exported: bool,
                    actor: str):
    def work(job: Job) -> None:
        with Vault(root, signer) as vault:
            job.count = replies.export_replies(vault, out, include_exported, actor,
                                               progress=job.progress)
        job.path = str(out)
        job.hashes = {out.name: _sha256(out)}
        job.done = job.total = job.count
    return work


@bp.get("")
def page():
    with Vault(current_app.config["VAULT_ROOT"]) as vault:
        names = cases.names(vault.conn)
        waiting = vault.conn.execute(
            "SELECT COUNT(*) FROM replies WHERE exported_at IS NULL").fetchone()[0]
    return render_template("vault/exports.html", cases=names, waiting=waiting,
                           jobs=_jobs().all(), folder=current_app.config["VAULT_EXPORTS"])


@bp.post("/case")
def case():
    root = current_app.config["VAULT_ROOT"]
    name = request.form.get("case", "")
    with Vault(root) as vault:
        if name not in cases.names(vault.conn):
            abort(400)
    out = _folder() / f"case-{safe_output_name(name, 'case')}-{_stamp()}"
    job = _jobs().start("case", name, _export_case(root, _signer(), name, out,
                                                   current_app.config["VAULT_ACTOR"]))
    return redirect(url_for("exports.job", job_id=job.job_id), code=303)


@bp.post("/replies")
def replies_bundle():
    out = _folder() / f"replies-{_stamp()}.tar"
    if out.exists():
        abort(409)
    job = _jobs().start("replies", "", _export_replies(
        current_app.config["VAULT_ROOT"], _signer(), out, request.form.get("all") == "yes",
        current_app.config["VAULT_ACTOR"]))
    return redirect(url_for("exports.job", job_id=job.job_id), code=303)


@bp.get("/<job_id>")
def job(job_id: str):
    found = _jobs().get(job_id)
    if found is None:
        abort(404)
    return render_template("vault/job.html", job=found)
