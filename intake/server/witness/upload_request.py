"""A Flask request whose file uploads are sealed as they arrive, never in the clear."""

from __future__ import annotations

from flask import Request, current_app
from werkzeug.formparser import FormDataParser, MultiPartParser

from intake.server.upload_spool import UploadSpool

READ_SIZE = 512 * 1024


class LargeReadFormDataParser(FormDataParser):
    """Werkzeug's parser, reading the body in 512 KiB pieces instead of 64 KiB:
    each read through gunicorn copies what it holds ahead, so fewer reads cost
    much less CPU. The piece must stay under the form-memory limit, which
    Werkzeug applies to its parse buffer."""

    def _parse_multipart(self, stream, mimetype, content_length, options):
        limit = self.max_form_memory_size
        parser = MultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=limit,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
            buffer_size=min(READ_SIZE, limit // 2) if limit else READ_SIZE,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class EncryptedUploadRequest(Request):
    form_data_parser_class = LargeReadFormDataParser

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        intake = current_app.extensions["intake"]
        spool = UploadSpool(intake.store, intake.recipients)
        self.__dict__.setdefault("_upload_spools", []).append(spool)
        return spool

    def close(self) -> None:
        """Werkzeug closes the files it finished parsing; a part cut short (the
        client left, the disk filled) was never handed over, so every spool this
        request opened is closed here: its envelope removed, its threads ended."""
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
