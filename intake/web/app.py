"""The app factory: explicit config in, a ready app out, or a clear refusal."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_wtf.csrf import CSRFProtect

from intake import server_secrets
from intake.config import Config, load_config
from intake.db import Database
from intake.receive import Intake
from intake.store import Store
from intake.teamkeys import load_key_folder
from intake.throttle import Throttle
from intake.web import errors, headers, i18n, proxy_warning, returning, witness
from intake.web.sessions import COOKIE, DatabaseSessionInterface
from intake.web.socket_body import read_body_from_socket
from intake.web.upload_request import EncryptedUploadRequest

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = list(i18n.LANGUAGES)


def _locale() -> str:
    return i18n.select_locale(request)


def prepare(config: Config) -> Intake:
    """Checks keys and folders and opens the database. Raises on what it cannot trust."""
    recipients = load_key_folder(config.keys_dir)
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(config.store_dir)
    store.init()
    db = Database(config.effective_database_url)
    db.create_all()
    return Intake(config, db, store, recipients,
                  server_secrets.load_or_create(config.secrets_file))


def login_throttle(config: Config) -> Throttle:
    return Throttle(per_id_limit=config.login_attempts_per_codename,
                    global_limit=config.login_attempts_global,
                    window_seconds=config.login_window)


def base_app(name: str, intake: Intake, *, cookie_name: str, max_upload: int) -> Flask:
    """What the witness and staff apps share: templates, secrets, server-side
    sessions, languages, CSRF, security headers and the one error handler."""
    app = Flask(name, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "templates" / "static"))
    app.extensions["intake"] = intake
    app.config.update(
        SECRET_KEY=intake.secrets.form_key,
        MAX_CONTENT_LENGTH=max_upload,
        WTF_CSRF_TIME_LIMIT=intake.config.csrf_time_limit,
        WTF_CSRF_SSL_STRICT=False,  # onion services are plain HTTP inside Tor
        SESSION_COOKIE_SECURE=False,
        SEND_FILE_MAX_AGE_DEFAULT=0,
    )
    app.session_interface = DatabaseSessionInterface(cookie_name=cookie_name)
    Babel(app, locale_selector=_locale,
          default_translation_directories=str(ROOT / "translations"))
    i18n.init_app(app)
    app.jinja_env.globals["get_locale"] = get_locale
    CSRFProtect(app)
    headers.init_app(app)
    errors.init_app(app)
    # Werkzeug's request log names the client and the time: never enable it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return app


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    app = base_app("intake", prepare(config), cookie_name=COOKIE,
                   max_upload=config.max_upload)
    app.request_class = EncryptedUploadRequest
    app.config.update(MAX_FORM_MEMORY_SIZE=config.max_testimony_chars * 4 + 4096,
                      MAX_FORM_PARTS=config.max_files + 16)
    proxy_warning.init_app(app)
    app.extensions["intake.login_throttle"] = login_throttle(config)
    app.register_blueprint(witness.bp)
    app.register_blueprint(returning.bp)
    app.wsgi_app = read_body_from_socket(app.wsgi_app)  # type: ignore[method-assign]
    return app
