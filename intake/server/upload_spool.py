"""An upload sealed into its envelope as it arrives: one pass, no clear text.

Werkzeug would spool a large upload to a clear-text temporary file. Instead
each file part is written straight into an envelope for the team's keys, under
a temporary name in the store. The envelope's file key stays in this object's
memory, so the server can still read the upload back (to detect its type and
strip its metadata) until it is sealed or dropped; then the key is gone.

When the upload is kept as received, seal() appends the metadata and the same
file becomes the stored envelope: the bytes are written once.

While a large part arrives, the request's thread only parses the body: one
helper thread seals, another computes both SHA-256s (of the bytes received,
of the envelope) and writes the envelope, past the page cache
(intake.direct_io). Each is a bounded pipeline stage (intake.background).
The helpers start only once a part passes 1 MiB, and end when the part does
(Werkzeug rewinds the file then): smaller parts, and everything after, are
handled in the calling thread, so a request with many files holds helper
threads for one part at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator

from intake.format.envelope import EnvelopeWriter, Recipient
from intake.server.background import Background
from intake.server.direct_io import DirectAppender
from intake.server.spool import ChunkedReading
from intake.server.store import TMP_PREFIX, Batch, HashingWriter, Staged, Store, new_id

HEAD_BYTES = 64 * 1024
HELPERS_AFTER = 1024 * 1024


class UploadSpool(ChunkedReading):
    def __init__(self, store: Store, recipients: Iterable[Recipient]):
        self.item_id = new_id()
        self.tmp_path = store.root / f"{TMP_PREFIX}{self.item_id}"
        self._final_path = store.path_for(self.item_id)
        self._fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._file = DirectAppender(self._fd)
            self._out = HashingWriter(self._file)  # type: ignore[arg-type]
            self._writer = EnvelopeWriter(self._out, recipients)  # type: ignore[arg-type]
        except BaseException:
            os.close(self._fd)
            self.tmp_path.unlink(missing_ok=True)
            raise
        self._hasher: Background | None = None  # hashes, and writes the envelope
        self._sealer: Background | None = None
        self._helpers_allowed = True
        self._sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.sealed = False

    # -- writing, as the multipart parser does --------------------------------
    def write(self, data: bytes) -> int:
        data = bytes(data)  # used later, in other threads: it must not change
        self.size += len(data)
        if len(self.head) < HEAD_BYTES:
            self.head += data[:HEAD_BYTES - len(self.head)]
        if self._sealer is None and self._helpers_allowed and self.size > HELPERS_AFTER:
            self._start_helpers()
        if self._sealer is None or self._hasher is None:
            self._sha.update(data)
            self._writer.write(data)
        else:
            self._hasher.submit(self._sha.update, data)
            self._sealer.submit(self._writer.write, data)
        return len(data)

    def _start_helpers(self) -> None:
        hasher = Background("intake-hash")
        try:
            sealer = Background("intake-seal")
        except BaseException:
            hasher.stop()
            raise
        self._out.helper = self._hasher = hasher
        self._sealer = sealer

    def _drain(self) -> None:
        if self._sealer is not None and self._hasher is not None:
            self._sealer.drain()  # a failed write is reported before any hash
            self._hasher.drain()

    def _settle(self) -> None:
        """Ends the helper threads once all they hold is done; what follows
        happens in the calling thread."""
        self._helpers_allowed = False
        sealer, hasher, self._sealer, self._hasher = self._sealer, self._hasher, None, None
        try:
            if sealer is not None:
                sealer.stop()  # first: it still hands envelope bytes to the hasher
        finally:
            try:
                if hasher is not None:
                    hasher.stop()
            finally:
                self._out.helper = None  # only now: no sealing job is left to use it
        self._file.pause()

    def _rewound(self) -> None:
        # Werkzeug rewinds a file part when it has arrived whole.
        self._settle()

    @property
    def sha256(self) -> str:
        self._drain()
        return self._sha.hexdigest()

    # -- reading back ---------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        """The upload's bytes, decrypted from its own envelope; may be called again."""
        self._settle()
        self._file.flush()  # from here on, ordinary writes
        with open(self.tmp_path, "rb") as written:
            yield from self._writer.written_content(written)

    def writable(self) -> bool:
        return not self.sealed

    # -- ending ---------------------------------------------------------------
    def seal(self, batch: Batch, metadata: dict) -> Staged:
        """Closes the envelope with its metadata and hands it to the batch, which
        places it in the store with the rest of the submission, or drops it."""
        self._reader = None
        self._settle()
        self._writer.close({**metadata, "item_id": self.item_id})
        self._file.flush()
        os.fsync(self._fd)
        if os.fstat(self._fd).st_size != self._out.size:
            raise OSError("the envelope on disk is not the size that was written")
        self._close_file()
        self.sealed = True
        entry = Staged(self.item_id, self.tmp_path, self._final_path,
                       self._out.sha.hexdigest(), self._out.size)
        batch.adopt(entry)
        return entry

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _close_file(self) -> None:
        try:
            self._file.close()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def close(self) -> None:
        """Unsealed, the envelope is dropped: nothing of a failed request stays."""
        self._reader = None
        try:
            with contextlib.suppress(Exception):  # its error was reported already
                self._settle()
            self._close_file()
        finally:
            if not self.sealed:
                self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> UploadSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
