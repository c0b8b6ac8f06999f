"""The staff app factory."""

from __future__ import annotations

from flask import Flask

from intake.server.config import Config, load_config
from intake.server.front import HOOKS, FrontHooks
from intake.server.service import prepare
from intake.server.staff import errors
from intake.server.staff.accounts import Authenticator
from intake.server.staff.views import bp
from intake.server.web.base import base_app, front_limits

STAFF_COOKIE = "intake_staff_session"


def create_staff_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    intake = prepare(config)
    # Reply bundles are small; nothing else is uploaded here.
    app = base_app("intake.server.staff", intake, cookie_name=STAFF_COOKIE,
                   max_upload=64 * 1024 * 1024)
    app.extensions["intake.staff_auth"] = Authenticator(intake.db, config.kdf_opslimit,
                                                        config.kdf_memlimit,
                                                        clock=lambda: intake.clock())
    # Its only upload, a reply bundle, is held in memory (up to 64 MiB).
    app.extensions[HOOKS] = FrontHooks(front_limits(config), max_body=64 * 1024 * 1024)
    app.register_blueprint(bp)
    errors.init_app(app)  # staff words instead of the witness pages' own
    return app
