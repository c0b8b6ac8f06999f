"""A Flask app that renders the project's templates in the four languages and
answers with the strict headers: the base of the witness, staff and desk apps."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from flask import Flask
from flask_babel import Babel, get_locale

from intake.pages import headers


def templates_dir() -> Path:
    """The `templates/` folder, installed as the package intake.templates."""
    return Path(str(files("intake.templates")))


def translations_dir() -> Path:
    """The `translations/` folder, installed as the package intake.translations."""
    return Path(str(files("intake.translations")))


def new_app(name: str, locale_selector: Callable[[], str]) -> Flask:
    app = Flask(name, template_folder=str(templates_dir()),
                static_folder=str(templates_dir() / "static"))
    Babel(app, locale_selector=locale_selector,
          default_translation_directories=str(translations_dir()))
    app.jinja_env.globals["get_locale"] = get_locale
    headers.init_app(app)
    return app
