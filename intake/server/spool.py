"""The file API that Werkzeug and the sanitizer expect (rewind, read) over a
spool that can only be read back chunk by chunk (UploadSpool)."""

from __future__ import annotations

from collections.abc import Iterator

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
