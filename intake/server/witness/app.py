"""The witness app factory: explicit config in, a ready app out, or a clear refusal."""

from __future__ import annotations

import atexit

from flask import Flask, request, url_for

from intake.server import quota, resumable
from intake.server.config import Config, load_config
from intake.server.front import FRONT_ERROR, HOOKS, FrontHooks
from intake.server.pending_originals import PendingOriginals
from intake.server.resumable import Partials
from intake.server.sanitize.runner import warm_sandbox
from intake.server.service import prepare
from intake.server.store import PoolKeeper
from intake.server.upload_spool import UploadSpool
from intake.server.web.base import base_app, front_limits, login_throttle
from intake.server.web.i18n import PREFIX, init_url_languages
from intake.server.web.sessions import COOKIE
from intake.server.witness import proxy_warning, returning, submit, uploads
from intake.server.witness.upload_request import EncryptedUploadRequest


def pool_reserve(config: Config) -> int:
    """The envelopes one submission may need at most: each file and its
    cleaned copy, and the testimony."""
    return 2 * config.max_files + 2


def _quota_refusal(intake, environ: dict) -> str | None:
    """A submission the day's quota cannot take is refused before its body is
    read; so is one the envelope pool may not hold, rather than let its
    envelopes be born with the time they arrived (a pool that is missing
    altogether is doctor's to report: the worker's keeper makes it)."""
    if not environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        return None
    left = intake.store.pool_count()
    if left is not None and left < pool_reserve(intake.config):
        return "pool"
    length = environ.get("CONTENT_LENGTH", "")
    return "quota" if quota.refusal(intake, int(length) if length.isdigit() else None) \
        else None


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    intake = prepare(config)
    # Each worker's own: its zygote starts as the worker begins to serve (warm_up).
    intake.sandbox = warm_sandbox()
    app = base_app("intake", intake, cookie_name=COOKIE, max_upload=config.max_upload)
    app.request_class = EncryptedUploadRequest
    app.config.update(MAX_FORM_MEMORY_SIZE=config.max_testimony_chars * 4 + 4096,
                      MAX_FORM_PARTS=config.max_files + 16)
    # Files sent ahead in pieces by the page's script (intake.server.witness.uploads).
    partials = app.extensions[uploads.PARTIALS] = Partials(
        config.data_dir / resumable.FOLDER, config.partial_upload_days, config.max_upload,
        config.disk_reserve)
    partials.init()
    # Tops the envelope pool and the upload folder pool up at fixed times of
    # the clock, once serving.
    keeper = app.extensions["intake.pool_keeper"] = PoolKeeper(intake.store)
    atexit.register(keeper.stop)
    folder_keeper = app.extensions["intake.upload_pool_keeper"] = PoolKeeper(
        partials, what="upload folder", size=resumable.POOL_SIZE, low=resumable.POOL_LOW)
    atexit.register(folder_keeper.stop)
    app.extensions[HOOKS] = FrontHooks(
        front_limits(config), max_body=config.max_upload,
        max_form_memory=app.config["MAX_FORM_MEMORY_SIZE"],
        max_parts=app.config["MAX_FORM_PARTS"],
        new_spool=lambda: UploadSpool(intake.store, intake.recipients),
        refusal=lambda environ: _quota_refusal(intake, environ),
        body_sink=lambda environ: uploads.open_piece(partials, intake.secrets.form_key,
                                                     environ),
        warm_up=lambda: _warm_up(intake, keeper, folder_keeper))
    proxy_warning.init_app(app)
    app.extensions["intake.login_throttle"] = login_throttle(config)
    # Uploads that could not be cleaned, held for the receipt's question.
    pending = app.extensions["intake.pending"] = PendingOriginals(intake.store)
    pending.sweep()  # what a worker killed earlier left behind
    atexit.register(pending.stop)
    app.register_blueprint(submit.bp, url_prefix=PREFIX)
    app.register_blueprint(returning.bp, url_prefix=PREFIX)
    app.register_blueprint(uploads.bp)
    app.extensions["csrf"].exempt(uploads.bp)  # its creation checks the token itself
    _old_form_addresses(app)
    init_url_languages(app, front_error=FRONT_ERROR)
    app.jinja_env.globals["witness_nav"] = _witness_nav
    return app


def _warm_up(intake, *keepers: PoolKeeper) -> None:
    """As a worker begins to serve: its cleaners' sandbox, and the pools' keepers."""
    for keeper in keepers:
        keeper.start()
    intake.sandbox.start()


def _witness_nav() -> dict:
    """The links every witness page carries: the form, and the way back."""
    here = {"witness.form": "form", "returning.login": "login"}.get(request.endpoint or "", "")
    return {"form": url_for("witness.form"), "login": url_for("returning.login"), "here": here}


# Where the forms were sent before the language was part of the address: a
# form opened then is still received (in the session's or the browser's
# language), and answered with a redirect to an address that has one.
OLD_FORM_ADDRESSES = {"/submit": "witness.submit", "/original": "witness.original_choice",
                      "/login": "returning.login_post", "/account/add": "returning.follow_up",
                      "/account/replies/<reply_id>/delete": "returning.delete_reply",
                      "/logout": "returning.logout"}


def _old_form_addresses(app: Flask) -> None:
    for rule, endpoint in OLD_FORM_ADDRESSES.items():
        app.add_url_rule(rule, "old:" + endpoint, app.view_functions[endpoint],
                         methods=["POST"])
