"""A Flask request whose file uploads spool encrypted, never in the clear."""

from __future__ import annotations

from flask import Request, current_app

from intake.spool import EncryptedSpool


class EncryptedUploadRequest(Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        return EncryptedSpool(current_app.extensions["intake"].config.spool_dir)
