"""Opening one envelope of a bundle into a file: read, hash, decrypt, hash and
write in one pass, in bounded memory, at the speed of the format.

Above SMALL, three threads share the work, each on its own core when there
is one (the SHA-256s and libsodium release the GIL):

    reader   preadv()s the member in blocks of about 2 MiB into a few reused
             buffers and hashes them (the envelope's SHA-256, checked against
             the manifest)
    caller   decrypts and authenticates chunk by chunk (intake.format.envelope)
    writer   hashes the plaintext (checked against the sealed sha256_kept;
             `intake decrypt` skips this) and writes it, 2 MiB per call

Between them at most QUEUE_DEPTH blocks wait, so memory stays flat whatever
the size (about 15 MiB of buffers). The caller writes into a file it made for this item and keeps it
only once unseal() returns: an envelope is whole only at its end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import threading
from dataclasses import dataclass

from nacl.public import PrivateKey

from intake.format import secretstream as ss
from intake.format.envelope import CHUNK, EnvelopeError, EnvelopeReader

FRAME = CHUNK + ss.ABYTES
READ_BLOCK = 32 * FRAME  # about 2 MiB: few hand-overs between threads, little memory
WRITE_BATCH = 32  # chunks of plaintext per write
QUEUE_DEPTH = 3
FLUSH_BEHIND = 8 * 1024 * 1024
SMALL = 2 * 1024 * 1024  # envelopes up to this size are opened without threads


class Truncated(EnvelopeError):
    pass


@dataclass(frozen=True)
class Unsealed:
    metadata: dict
    envelope_sha256: str
    content_sha256: str
    content_size: int


_END = object()


class _Source:
    """The envelope's bytes as a file EnvelopeReader can read(), filled by a
    thread that reads ahead and hashes what it read. The blocks are a few
    buffers read into and handed back, never allocated again."""

    def __init__(self, fd: int, offset: int, size: int):
        self.sha = hashlib.sha256()
        self._full: queue.Queue = queue.Queue()
        self._free: queue.Queue = queue.Queue()
        self._made = 0
        self._stop = threading.Event()
        self._block, self._pos, self._len = memoryview(b""), 0, 0
        self._held: bytearray | None = None
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(fd, offset, size),
                                        name="intake-read", daemon=True)
        self._thread.start()

    def _run(self, fd: int, offset: int, size: int) -> None:
        end = offset + size
        try:
            while offset < end:
                buf = self._take_free()
                if buf is None:
                    return
                want = min(READ_BLOCK, end - offset)
                got = os.preadv(fd, [memoryview(buf)[:want]], offset)
                if not got:
                    raise Truncated("truncated: the bundle ends inside it")
                self.sha.update(memoryview(buf)[:got])
                offset += got
                self._full.put((buf, got))
            self._full.put(_END)
        except (OSError, EnvelopeError) as exc:
            self._full.put(exc if isinstance(exc, EnvelopeError)
                           else Truncated(f"truncated: the bundle cannot be read ({exc.strerror})"))

    def _take_free(self) -> bytearray | None:
        if self._made <= QUEUE_DEPTH and self._free.empty():
            self._made += 1
            return bytearray(READ_BLOCK)
        while not self._stop.is_set():
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def _next_block(self) -> bool:
        if self._held is not None:
            self._free.put(self._held)
            self._held = None
        if self._done:
            return False
        item = self._full.get()
        if item is _END:
            self._done = True
            return False
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._held, self._len = item
        self._block, self._pos = memoryview(self._held), 0
        return True

    def read(self, n: int) -> bytes:
        if self._len - self._pos >= n:
            self._pos += n
            return bytes(self._block[self._pos - n:self._pos])
        parts = [bytes(self._block[self._pos:self._len])] if self._len > self._pos else []
        want = n - (self._len - self._pos)
        self._pos = self._len
        while want > 0 and self._next_block():
            take = min(want, self._len)
            parts.append(bytes(self._block[:take]))
            self._pos = take
            want -= take
        return b"".join(parts)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def digest(self) -> str:
        self._thread.join()
        return self.sha.hexdigest()


class _Sink:
    """Hashes and writes the plaintext in a thread of its own."""

    def __init__(self, fd: int, flush_behind: bool, hash_content: bool):
        self.sha = hashlib.sha256() if hash_content else None
        self.size = 0
        self._fd, self._flush_behind = fd, flush_behind
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="intake-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        flushed = 0
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller finds the error at close()
            try:
                if self.sha is not None:
                    for piece in batch:
                        self.sha.update(piece)
                _write_all(self._fd, batch)
                self.size += sum(map(len, batch))
                if self._flush_behind and self.size - flushed >= FLUSH_BEHIND:
                    # Starts writing this stretch to disk now, so that the
                    # final fsync has little left to do.
                    os.posix_fadvise(self._fd, flushed, self.size - flushed,
                                     os.POSIX_FADV_DONTNEED)
                    flushed = self.size
            except OSError as exc:
                self._error = exc

    def put(self, batch: list[bytes]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _write_all(fd: int, pieces: list[bytes]) -> None:
    views = [memoryview(p) for p in pieces if p]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def unseal(bundle_fd: int, offset: int, size: int, key: PrivateKey, out_fd: int, *,
           flush_behind: bool = False, hash_content: bool = True,
           small: int = SMALL) -> Unsealed:
    """Decrypts the envelope at [offset, offset + size) of `bundle_fd` into
    `out_fd`. Raises EnvelopeError (the message is safe to show) when the
    envelope is not whole; OSError when the output cannot be written.
    `hash_content=False` leaves content_sha256 empty and saves its cost; an
    envelope of at most `small` bytes is opened without threads."""
    if size <= small:
        return _unseal_small(bundle_fd, offset, size, key, out_fd, hash_content)
    source = _Source(bundle_fd, offset, size)
    sink: _Sink | None = None
    try:
        reader = EnvelopeReader(source, key)  # type: ignore[arg-type]
        sink = _Sink(out_fd, flush_behind, hash_content)
        batch: list[bytes] = []
        for piece in reader.content():
            batch.append(piece)
            if len(batch) == WRITE_BATCH:
                sink.put(batch)
                batch = []
        if batch:
            sink.put(batch)
        done, sink = sink, None
        done.close()
        assert reader.metadata is not None
        return Unsealed(reader.metadata, source.digest(),
                        done.sha.hexdigest() if done.sha is not None else "", done.size)
    finally:
        if sink is not None:
            with contextlib.suppress(OSError):  # the envelope's own failure is reported
                sink.close()
        source.close()


def _unseal_small(bundle_fd: int, offset: int, size: int, key: PrivateKey, out_fd: int,
                  hash_content: bool) -> Unsealed:
    """A small envelope (a testimony, most often) in one read and one write:
    starting threads would cost more than they save."""
    raw = os.pread(bundle_fd, size, offset)
    if len(raw) != size:
        raise Truncated("truncated: the bundle ends inside it")
    reader = EnvelopeReader(io.BytesIO(raw), key)
    pieces = list(reader.content())
    _write_all(out_fd, pieces)
    assert reader.metadata is not None
    content_sha = ""
    if hash_content:
        sha = hashlib.sha256()
        for piece in pieces:
            sha.update(piece)
        content_sha = sha.hexdigest()
    return Unsealed(reader.metadata, hashlib.sha256(raw).hexdigest(), content_sha,
                    sum(map(len, pieces)))
