"""The staff app factory."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_wtf.csrf import CSRFProtect

from intake.config import Config, load_config
from intake.staff.accounts import Authenticator
from intake.staff.views import bp
from intake.throttle import Throttle
from intake.web import errors, headers, i18n
from intake.web.app import ROOT, prepare
from intake.web.sessions import DatabaseSessionInterface

STAFF_COOKIE = "intake_staff_session"


def create_staff_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    intake = prepare(config)
    app = Flask("intake.staff", template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "templates" / "static"))
    app.extensions["intake"] = intake
    app.extensions["intake.staff_auth"] = Authenticator(intake.db, config.kdf_opslimit,
                                                        config.kdf_memlimit,
                                                        clock=lambda: intake.clock())
    app.extensions["intake.staff_throttle"] = Throttle(
        per_id_limit=config.login_attempts_per_codename,
        global_limit=config.login_attempts_global, window_seconds=config.login_window)
    app.config.update(
        SECRET_KEY=intake.secrets.form_key,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,  # reply bundles are small
        WTF_CSRF_TIME_LIMIT=config.csrf_time_limit,
        WTF_CSRF_SSL_STRICT=False,
        SESSION_COOKIE_SECURE=False,
    )
    app.session_interface = DatabaseSessionInterface(cookie_name=STAFF_COOKIE)
    Babel(app, locale_selector=lambda: i18n.select_locale(request),
          default_translation_directories=str(ROOT / "translations"))
    i18n.init_app(app)
    app.jinja_env.globals["get_locale"] = get_locale
    CSRFProtect(app)
    headers.init_app(app)
    errors.init_app(app)
    app.register_blueprint(bp)
    return app
