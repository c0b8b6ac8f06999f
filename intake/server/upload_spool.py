"""An upload sealed into its envelope as it arrives: one pass, no clear text.

Each file part is written straight into an envelope for the team's keys,
under a temporary name in the store, never into a clear-text temporary file.
The envelope's file key stays in this object's memory, so the server can
still read the upload back (to detect its type and strip its metadata) until
it is sealed or dropped; then the key is gone.

When the upload is kept as received, seal() appends the metadata and the same
file becomes the stored envelope: the bytes are written once.

A piece is taken in two steps that may run in two threads at once for
successive pieces: seal_piece() encrypts and writes it and returns the
envelope bytes it wrote, hash_piece() hashes the piece and those bytes
(hashlib and libsodium let go of the GIL, so the two use two cores). The
front pipelines them (intake.server.front); write() does both in turn, for
Werkzeug's stream_factory and anything else that writes a piece at a time (a
chunked upload can feed one the same way). Each step sees the pieces in order.

Envelope bytes go straight to the kernel, which is told every few MiB to
start writing them out, so the closing fsync has little left to wait for.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator

from intake.format.envelope import EnvelopeWriter, Recipient
from intake.server.spool import HEAD_BYTES, ChunkedReading
from intake.server.store import Batch, Staged, Store, coarsen_mtime
from intake.write_all import write_all

WRITEBACK = 8 * 1024 * 1024


class EnvelopeFile:
    """The envelope's file, written unbuffered; what was written waits in
    `unhashed` until hash_piece() takes it."""

    def __init__(self, fd: int):
        self.fd = fd
        self.size = 0
        self.sha = hashlib.sha256()
        self.unhashed: list[bytes] = []
        self._started = 0  # bytes the kernel was asked to write out

    def write(self, data: bytes) -> int:
        self.writelines([data])
        return len(data)

    def writelines(self, pieces: list[bytes]) -> None:
        """Writes the pieces with as few system calls as it can (writev), no
        copy of them made."""
        self.size += write_all(self.fd, pieces)
        self.unhashed += pieces
        if self.size - self._started >= WRITEBACK:
            # Starts writing back the range (and drops it from the cache once on disk).
            os.posix_fadvise(self.fd, self._started, self.size - self._started,
                             os.POSIX_FADV_DONTNEED)
            self._started = self.size

    def taken(self) -> list[bytes]:
        out, self.unhashed = self.unhashed, []
        return out


class UploadSpool(ChunkedReading):
    def __init__(self, store: Store, recipients: Iterable[Recipient]):
        self._store = store
        self.item_id, self.tmp_path, self._fd = store.new_temporary()
        self._final_path = store.path_for(self.item_id)
        try:
            self._out = EnvelopeFile(self._fd)
            self._writer = EnvelopeWriter(self._out, recipients)  # type: ignore[arg-type]
        except BaseException:
            os.close(self._fd)
            self.tmp_path.unlink(missing_ok=True)
            raise
        self._sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.sealed = False

    # -- writing, as the multipart parser does --------------------------------
    def write(self, data: bytes) -> int:
        self.hash_piece(data, self.seal_piece(data))
        return len(data)

    def seal_piece(self, data: bytes) -> list[bytes]:
        """Encrypts and writes a piece; returns the envelope bytes written."""
        self.size += len(data)
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[:HEAD_BYTES - len(self.head)])
        self._writer.write(data)
        return self._out.taken()

    def hash_piece(self, data: bytes, written: list[bytes]) -> None:
        self._sha.update(data)
        for piece in written:
            self._out.sha.update(piece)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    # -- reading back ---------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        """The upload's bytes, decrypted from its own envelope; may be called again."""
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
        self.hash_piece(b"", self._out.taken())
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
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def close(self) -> None:
        """Unsealed, the envelope is dropped: nothing of a failed request stays."""
        self._reader = None
        try:
            self._close_file()
        finally:
            if not self.sealed and self.tmp_path.exists():
                self._store.recycle(self.tmp_path)  # back to the pool, emptied
                # The removal stamped the store folder with this second (the
                # empty file field every browser without JavaScript sends).
                coarsen_mtime(self.tmp_path.parent)

    def __enter__(self) -> UploadSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
