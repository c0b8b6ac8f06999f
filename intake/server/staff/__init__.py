"""The staff app: a second Flask app, on its own port and its own onion service
with client authorization. Staff see the queue, download bundles, upload
replies and delete what they have imported."""

from intake.server.staff.app import create_staff_app

__all__ = ["create_staff_app"]
