"""The witness app factory: explicit config in, a ready app out, or a clear refusal."""

from __future__ import annotations

import atexit

from flask import Flask

from intake.server import quota
from intake.server.config import Config, load_config
from intake.server.front import HOOKS, FrontHooks
from intake.server.pending_originals import PendingOriginals
from intake.server.sanitize.runner import warm_sandbox
from intake.server.service import prepare
from intake.server.upload_spool import UploadSpool
from intake.server.web.base import base_app, front_limits, login_throttle
from intake.server.web.sessions import COOKIE
from intake.server.witness import proxy_warning, returning, submit
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
    app.extensions[HOOKS] = FrontHooks(
        front_limits(config), max_body=config.max_upload,
        max_form_memory=app.config["MAX_FORM_MEMORY_SIZE"],
        max_parts=app.config["MAX_FORM_PARTS"],
        new_spool=lambda: UploadSpool(intake.store, intake.recipients),
        refusal=lambda environ: _quota_refusal(intake, environ))
    proxy_warning.init_app(app)
    app.extensions["intake.login_throttle"] = login_throttle(config)
    # Uploads that could not be cleaned, held for the receipt's question.
    pending = app.extensions["intake.pending"] = PendingOriginals(intake.store)
    pending.sweep()  # what a worker killed earlier left behind
    atexit.register(pending.stop)
    app.register_blueprint(submit.bp)
    app.register_blueprint(returning.bp)
    return app
