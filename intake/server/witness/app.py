"""The witness app factory: explicit config in, a ready app out, or a clear refusal."""

from __future__ import annotations

import atexit

from flask import Flask

from intake.server import quota, resumable
from intake.server.config import Config, load_config
from intake.server.front import HOOKS, FrontHooks
from intake.server.pending_originals import PendingOriginals
from intake.server.resumable import Partials
from intake.server.sanitize.runner import warm_sandbox
from intake.server.service import prepare
from intake.server.upload_spool import UploadSpool
from intake.server.web.base import base_app, front_limits, login_throttle
from intake.server.web.sessions import COOKIE
from intake.server.witness import proxy_warning, returning, submit, uploads
from intake.server.witness.upload_request import EncryptedUploadRequest


def _quota_refusal(intake, environ: dict) -> str | None:
    """A submission the day's quota cannot take is refused before its body is read."""
    if not environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        return None
    length = environ.get("CONTENT_LENGTH", "")
    return "quota" if quota.refusal(intake, int(length) if length.isdigit() else None) \
        else None


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    intake = prepare(config)
    intake.sandbox = warm_sandbox()  # this process's own; its zygote starts with the first file
    app = base_app("intake", intake, cookie_name=COOKIE, max_upload=config.max_upload)
    app.request_class = EncryptedUploadRequest
    app.config.update(MAX_FORM_MEMORY_SIZE=config.max_testimony_chars * 4 + 4096,
                      MAX_FORM_PARTS=config.max_files + 16)
    # Files sent ahead in pieces by the page's script (intake.server.witness.uploads).
    partials = app.extensions[uploads.PARTIALS] = Partials(
        config.data_dir / resumable.FOLDER, config.partial_upload_days, config.max_upload,
        config.disk_reserve)
    partials.init()
    app.extensions[HOOKS] = FrontHooks(
        front_limits(config), max_body=config.max_upload,
        max_form_memory=app.config["MAX_FORM_MEMORY_SIZE"],
        max_parts=app.config["MAX_FORM_PARTS"],
        new_spool=lambda: UploadSpool(intake.store, intake.recipients),
        refusal=lambda environ: _quota_refusal(intake, environ),
        body_sink=lambda environ: uploads.open_piece(partials, intake.secrets.form_key,
                                                     environ))
    proxy_warning.init_app(app)
    app.extensions["intake.login_throttle"] = login_throttle(config)
    # Uploads that could not be cleaned, held for the receipt's question.
    pending = app.extensions["intake.pending"] = PendingOriginals(intake.store)
    pending.sweep()  # what a worker killed earlier left behind
    atexit.register(pending.stop)
    app.register_blueprint(submit.bp)
    app.register_blueprint(returning.bp)
    app.register_blueprint(uploads.bp)
    app.extensions["csrf"].exempt(uploads.bp)  # its creation checks the token itself
    return app
