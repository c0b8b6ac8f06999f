"""A multipart body parsed as it arrives, a piece at a time, by Werkzeug's
sans-IO MultipartDecoder: text fields are kept in memory (each bounded), and
each file part goes into a spool made by `new_spool` (an UploadSpool, which
seals it into its envelope as it arrives). The request later sees the same
form and files Werkzeug's own parser would have made.

feed() only parses: it returns the file bytes to write, and the caller seals
them (seal(), in a sealing thread) and hashes them (hash(), in a hashing
thread) while the next piece arrives. Each step must see the pieces in the
order feed() returned them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

Write = tuple[Any, bytes]  # (spool, bytes)


class TooManyParts(Exception):
    """More parts than the form may have."""


class FormTooLarge(Exception):
    """A text field longer than the form allows."""


def _charset(content_type: str | None) -> str:
    """The charsets Werkzeug's parser honours for a text part; UTF-8 otherwise."""
    charset = parse_options_header(content_type or "")[1].get("charset", "").lower()
    return charset if charset in {"ascii", "us-ascii", "utf-8", "iso-8859-1"} else "utf-8"


class StreamedForm:
    def __init__(self, boundary: bytes, new_spool: Callable[[], Any], max_field: int,
                 max_parts: int):
        # Werkzeug bounds its buffer by this too: the unparsed rest of one piece.
        self._decoder = MultipartDecoder(boundary, max_form_memory_size=max_field + 512 * 1024)
        self._new_spool = new_spool
        self._max_field, self._max_parts = max_field, max_parts
        self._parts = 0
        self._field: tuple[str, str, bytearray] | None = None  # name, charset, value
        self._spool: Any = None
        self.spools: list[Any] = []
        self.fields: list[tuple[str, str]] = []
        self.files: list[tuple[str, FileStorage]] = []
        self.complete = False

    def feed(self, data: bytes | None) -> list[Write]:
        """Parses the next piece of the body (None: the body ended)."""
        self._decoder.receive_data(data)
        writes: list[Write] = []
        while True:
            event = self._decoder.next_event()  # ValueError: malformed
            if isinstance(event, NeedData):
                break
            if isinstance(event, Epilogue):
                self.complete = True
                break
            if isinstance(event, (Field, File)):
                self._parts += 1
                if self._parts > self._max_parts:
                    raise TooManyParts()
            if isinstance(event, Field):
                self._field = (event.name, _charset(event.headers.get("content-type")),
                               bytearray())
            elif isinstance(event, File):
                self._field = None
                self._spool = spool = self._new_spool()
                self.spools.append(spool)
                self.files.append((event.name, FileStorage(spool, event.filename, event.name,
                                                           headers=event.headers)))
            elif isinstance(event, Data):
                self._data(event, writes)
        if data is None and not self.complete:
            raise ValueError("the form ended before its last boundary")
        return writes

    def _data(self, event: Data, writes: list[Write]) -> None:
        if self._field is not None:
            name, charset, value = self._field
            value += event.data
            if len(value) > self._max_field:
                raise FormTooLarge()
            if not event.more_data:
                self.fields.append((name, value.decode(charset, "replace")))
                self._field = None
        elif self._spool is not None and event.data:
            writes.append((self._spool, event.data))

    @staticmethod
    def seal(writes: list[Write]) -> list[tuple[Any, bytes, list[bytes]]]:
        return [(spool, data, spool.seal_piece(data)) for spool, data in writes]

    @staticmethod
    def hash(sealed: list[tuple[Any, bytes, list[bytes]]]) -> None:
        for spool, data, written in sealed:
            spool.hash_piece(data, written)

    def form(self) -> tuple[MultiDict, MultiDict]:
        return MultiDict(self.fields), MultiDict(self.files)

    def close(self) -> None:
        """Closes every spool: a sealed one is kept, any other dropped."""
        failure: BaseException | None = None
        for spool in self.spools:
            try:
                spool.close()
            except BaseException as exc:  # the others are closed all the same
                failure = failure or exc
        if failure is not None:
            raise failure
