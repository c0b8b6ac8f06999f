"""The witness-facing web app."""

from intake.web.app import create_app

__all__ = ["create_app"]
