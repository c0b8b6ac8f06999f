"""The witness app factory: explicit config in, a ready app out, or a clear refusal."""

from __future__ import annotations

import atexit

from flask import Flask

from intake.server.config import Config, load_config
from intake.server.pending_originals import PendingOriginals
from intake.server.sanitize.runner import warm_sandbox
from intake.server.service import prepare
from intake.server.web.base import base_app, login_throttle
from intake.server.web.sessions import COOKIE
from intake.server.witness import proxy_warning, returning, submit
from intake.server.witness.socket_body import read_body_from_socket
from intake.server.witness.upload_request import EncryptedUploadRequest


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    intake = prepare(config)
    intake.sandbox = warm_sandbox()  # this process's own; its zygote starts with the first file
    app = base_app("intake", intake, cookie_name=COOKIE, max_upload=config.max_upload)
    app.request_class = EncryptedUploadRequest
    app.config.update(MAX_FORM_MEMORY_SIZE=config.max_testimony_chars * 4 + 4096,
                      MAX_FORM_PARTS=config.max_files + 16)
    proxy_warning.init_app(app)
    app.extensions["intake.login_throttle"] = login_throttle(config)
    # Uploads that could not be cleaned, held for the receipt's question.
    pending = app.extensions["intake.pending"] = PendingOriginals(intake.store)
    pending.sweep()  # what a worker killed earlier left behind
    atexit.register(pending.stop)
    app.register_blueprint(submit.bp)
    app.register_blueprint(returning.bp)
    app.wsgi_app = read_body_from_socket(app.wsgi_app)  # type: ignore[method-assign]
    return app
