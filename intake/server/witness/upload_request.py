"""A Flask request whose file uploads are sealed as they arrive, never in the clear.

Two ways in, one spool. Under the server's front (intake.server.front) the
body was parsed as it arrived and the request finds the form ready in its
environ. Under any other WSGI server (and Flask's test client) Werkzeug parses
the body itself, and its stream_factory hands every file part an UploadSpool.
"""

from __future__ import annotations

from flask import Request, current_app
from werkzeug.formparser import FormDataParser

from intake.server.front import FORM
from intake.server.upload_spool import UploadSpool


class ParsedForm(FormDataParser):
    """The form the front parsed as the body arrived."""

    def __init__(self, form, files):
        super().__init__()
        self._parsed = (form, files)

    def parse(self, stream, mimetype, content_length, options=None):
        return (stream, *self._parsed)


class EncryptedUploadRequest(Request):
    def make_form_data_parser(self) -> FormDataParser:
        streamed = self.environ.get(FORM)
        if streamed is not None:
            return ParsedForm(*streamed.form())
        return FormDataParser(stream_factory=self._new_spool,
                              max_form_memory_size=self.max_form_memory_size,
                              max_content_length=self.max_content_length,
                              max_form_parts=self.max_form_parts,
                              cls=self.parameter_storage_class)

    def _new_spool(self, total_content_length, content_type, filename=None,
                   content_length=None) -> UploadSpool:
        intake = current_app.extensions["intake"]
        spool = UploadSpool(intake.store, intake.recipients)
        self.__dict__.setdefault("_upload_spools", []).append(spool)
        return spool

    @property
    def files_begun(self) -> int:
        """How many file parts this request began to receive (Werkzeug's own
        parser; under the front, the front counts them)."""
        return len(self.__dict__.get("_upload_spools", []))

    def close(self) -> None:
        """Werkzeug closes the files it finished parsing; a part cut short (the
        client left, the disk filled) was never handed over, so every spool this
        request opened is closed here: its envelope removed."""
        try:
            super().close()
        finally:
            failure: BaseException | None = None
            for spool in self.__dict__.pop("_upload_spools", []):
                try:
                    spool.close()
                except BaseException as exc:  # the others are closed all the same
                    failure = failure or exc
            if failure is not None:
                raise failure
