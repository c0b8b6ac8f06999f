"""An upload sealed into its envelope as it arrives: one pass, no clear text.

Each file part is written straight into an envelope for the team's keys,
under a temporary name in the store, never into a clear-text temporary file.
The envelope's file key stays in this object's memory, so the server can
still read the upload back (to detect its type and strip its metadata) until
it is sealed or dropped; then the key is gone.

When the upload is kept as received, seal() appends the metadata and the same
file becomes the stored envelope: the bytes are written once.

Writes come from one thread at a time, in order: the front's sealing threads
(intake.server.form_stream), or the request's thread when Werkzeug parses
the body itself (the app's stream_factory). A chunked upload can feed one
the same way, a piece at a time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator

from intake.format.envelope import EnvelopeWriter, Recipient
from intake.server.spool import HEAD_BYTES, ChunkedReading
from intake.server.store import Batch, HashingWriter, Staged, Store

BUFFER = 1024 * 1024


class UploadSpool(ChunkedReading):
    def __init__(self, store: Store, recipients: Iterable[Recipient]):
        self.item_id, self.tmp_path, fd = store.new_temporary()
        self._final_path = store.path_for(self.item_id)
        try:
            self._file = os.fdopen(fd, "wb", buffering=BUFFER)
        except BaseException:
            os.close(fd)
            self.tmp_path.unlink(missing_ok=True)
            raise
        try:
            self._out = HashingWriter(self._file)
            self._writer = EnvelopeWriter(self._out, recipients)  # type: ignore[arg-type]
        except BaseException:
            self._file.close()
            self.tmp_path.unlink(missing_ok=True)
            raise
        self._sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.sealed = False

    # -- writing, as the multipart parser does --------------------------------
    def write(self, data: bytes) -> int:
        self.size += len(data)
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[:HEAD_BYTES - len(self.head)])
        self._sha.update(data)
        self._writer.write(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    # -- reading back ---------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        """The upload's bytes, decrypted from its own envelope; may be called again."""
        self._file.flush()
        with open(self.tmp_path, "rb") as written:
            yield from self._writer.written_content(written)

    def writable(self) -> bool:
        return not self.sealed

    # -- ending ---------------------------------------------------------------
    def seal(self, batch: Batch, metadata: dict) -> Staged:
        """Closes the envelope with its metadata and hands it to the batch, which
        places it in the store with the rest of the submission, or drops it."""
        self._reader = None
        self._writer.close({**metadata, "item_id": self.item_id})
        self._file.flush()
        os.fsync(self._file.fileno())
        if os.fstat(self._file.fileno()).st_size != self._out.size:
            raise OSError("the envelope on disk is not the size that was written")
        self._file.close()
        self.sealed = True
        entry = Staged(self.item_id, self.tmp_path, self._final_path,
                       self._out.sha.hexdigest(), self._out.size)
        batch.adopt(entry)
        return entry

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        """Unsealed, the envelope is dropped: nothing of a failed request stays."""
        self._reader = None
        try:
            if not self._file.closed:
                self._file.close()
        finally:
            if not self.sealed:
                self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> UploadSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
