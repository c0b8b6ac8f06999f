"""Opening one envelope of a bundle into a file: read, hash, decrypt, hash and
write in one pass, in bounded memory, at the speed of the format.

Above SMALL, three threads share the work, each on its own core when there
is one (the SHA-256s and libsodium release the GIL):

    reader   preadv()s the member in blocks of about 1 MiB into a few reused
             buffers and hashes them (the envelope's SHA-256, checked against
             the manifest)
    caller   decrypts and authenticates chunk by chunk (intake.format.envelope)
    writer   hashes the plaintext (checked against the sealed sha256_kept;
             `intake decrypt` skips this) and writes it past the page cache
             (O_DIRECT, _Direct), 1 MiB per call

Between them at most QUEUE_DEPTH blocks wait, so memory stays flat whatever
the size (about 10 MiB of buffers). The caller writes into a file it made
for this item and keeps it only once unseal() returns: an envelope is whole
only at its end.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import mmap
import os
import queue
import threading
from dataclasses import dataclass

from nacl.public import PrivateKey

from intake.format import secretstream as ss
from intake.format.envelope import CHUNK, EnvelopeError, EnvelopeReader

FRAME = CHUNK + ss.ABYTES
READ_BLOCK = 16 * FRAME  # about 1 MiB
WRITE_BATCH = 16  # chunks of plaintext per write
QUEUE_DEPTH = 4
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


class _Direct:
    """Writing past the page cache (O_DIRECT): the disk takes the plaintext from
    one page-aligned buffer, so no kernel page is allocated and filled for it
    (on a virtual machine that costs more than the decryption), and no copy of
    it lingers in memory. O_DIRECT wants aligned addresses, lengths and
    offsets: the unaligned tail is written the ordinary way at the end.
    Filesystems without it (tmpfs) get ordinary writes."""

    BLOCK = 4096

    def __init__(self, fd: int):
        self._fd = fd
        self._buf: mmap.mmap | None = None
        self._fill = 0
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        with contextlib.suppress(OSError):  # EINVAL: not on this filesystem
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
                self._buf = mmap.mmap(-1, READ_BLOCK - READ_BLOCK % self.BLOCK)  # aligned

    def write(self, pieces: list[bytes]) -> None:
        if self._buf is None:
            _write_all(self._fd, pieces)
            return
        size = len(self._buf)
        for piece in pieces:
            view, at = memoryview(piece), 0
            while at < len(view):
                n = min(len(view) - at, size - self._fill)
                self._buf[self._fill:self._fill + n] = view[at:at + n]
                self._fill, at = self._fill + n, at + n
                if self._fill == size:
                    self._send(size)

    def _send(self, n: int) -> None:
        assert self._buf is not None
        try:
            _write_all(self._fd, [memoryview(self._buf)[:n]])
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._leave()  # took the flag but refuses the writes: write them plainly
            _write_all(self._fd, [memoryview(self._buf)[:n]])
        self._fill = 0

    def _leave(self) -> None:
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)

    def close(self) -> None:
        if self._buf is None:
            return
        buf, fill = self._buf, self._fill
        aligned = fill - fill % self.BLOCK
        if aligned:
            self._send(aligned)
        self._leave()
        _write_all(self._fd, [memoryview(buf)[aligned:fill]])
        self._buf = None
        buf.close()


class _Sink:
    """Hashes and writes the plaintext in a thread of its own."""

    def __init__(self, fd: int, hash_content: bool):
        self.sha = hashlib.sha256() if hash_content else None
        self.size = 0
        self._out = _Direct(fd)
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="intake-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller finds the error at close()
            try:
                if self.sha is not None:
                    for piece in batch:
                        self.sha.update(piece)
                self._out.write(batch)
                self.size += sum(map(len, batch))
            except OSError as exc:
                self._error = exc
        if self._error is None:
            try:
                self._out.close()
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
           hash_content: bool = True, small: int = SMALL) -> Unsealed:
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
        sink = _Sink(out_fd, hash_content)
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
