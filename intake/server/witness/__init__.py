"""The witness-facing web app."""

from intake.server.witness.app import create_app

__all__ = ["create_app"]
