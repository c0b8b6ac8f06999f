"""An upload spool that never holds plaintext on disk.

Werkzeug spools large uploads to a temporary file in the clear. This object
replaces that file: each chunk is encrypted with a key that lives only in this
object's memory, to an already-unlinked temporary file. While bytes arrive it
hashes them and keeps the first few KiB in memory for type detection.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from intake import secretstream as ss

CHUNK = 64 * 1024
HEAD_BYTES = 64 * 1024


class ChunkedReading:
    """The file API Werkzeug and readers expect (rewind, read), over chunks()."""

    _reader: Iterator[bytes] | None = None
    _pending: bytes = b""

    def chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _rewound(self) -> None:
        """Called on seek(0); a spool still being written finishes its stream here."""

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise OSError("an encrypted spool can only rewind to the start")
        self._rewound()
        self._reader, self._pending = None, b""
        return 0

    def tell(self) -> int:
        return 0 if self._reader is None else -1

    def read(self, n: int = -1) -> bytes:
        if self._reader is None:
            self._reader = self.chunks()
        out = bytearray(self._pending)
        while n < 0 or len(out) < n:
            piece = next(self._reader, None)
            if piece is None:
                break
            out += piece
        if n < 0:
            self._pending = b""
            return bytes(out)
        self._pending = bytes(out[n:])
        return bytes(out[:n])

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


class EncryptedSpool(ChunkedReading):
    def __init__(self, directory: Path):
        # TemporaryFile is unlinked at once (O_TMPFILE on Linux): a crash leaves nothing.
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._pusher: ss.Pusher | None = ss.Pusher(key := ss.new_key())
        self._key, self._header = key, self._pusher.header
        self._buf = bytearray()
        self._sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self._reader: Iterator[bytes] | None = None
        self._pending = b""

    # -- writing, as the multipart parser does -------------------------------
    def write(self, data: bytes) -> int:
        if self._pusher is None:
            raise ValueError("spool is closed for writing")
        self.size += len(data)
        self._sha.update(data)
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[:HEAD_BYTES - len(self.head)])
        self._buf += data
        while len(self._buf) >= CHUNK:
            self._file.write(self._pusher.push(bytes(self._buf[:CHUNK])))
            del self._buf[:CHUNK]
        return len(data)

    def _finish(self) -> None:
        if self._pusher is not None:
            self._file.write(self._pusher.push(bytes(self._buf), final=True))
            self._buf.clear()
            self._pusher = None
            self._file.flush()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    # -- reading back ---------------------------------------------------------
    def chunks(self) -> Iterator[bytes]:
        """The plaintext, decrypted chunk by chunk; may be called repeatedly."""
        self._finish()
        self._file.seek(0)
        puller = ss.Puller(self._key, self._header)
        while True:
            sealed = self._file.read(CHUNK + ss.ABYTES)
            plain, final = puller.pull(sealed)
            if plain:
                yield plain
            if final:
                return

    def _rewound(self) -> None:
        self._finish()

    def writable(self) -> bool:
        return self._pusher is not None

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()
        self._key = b""

    def __enter__(self) -> EncryptedSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
