"""Opening one envelope of a bundle into a file: read, hash, decrypt, hash and
write in one pass, in bounded memory, at the speed of the format.

Above SMALL, threads share the work, each on its own core when there is one
(the SHA-256s, the reads and writes and libsodium release the GIL). With
both hashes (`vault import`), three:

    reader   pread()s the member frame by frame, each straight into the bytes
             object libsodium then opens, and hashes it (the envelope's
             SHA-256, checked against the manifest); BATCH frames (about
             1 MiB) are handed over at a time
    caller   decrypts and authenticates chunk by chunk
             (intake.format.envelope.PayloadOpener): nothing else, so the
             thread that cannot be split does as little as it can
    writer   hashes the plaintext (checked against the sealed sha256_kept)
             and writes it through the page cache, which it lets go of a few
             MiB behind (_Behind)

With the envelope's hash only (`intake decrypt`), two: the caller reads and
decrypts, the writer hashes what was read and writes what was decrypted. The
reader's and the writer's work would otherwise share one core (1.2 CPU
seconds per GiB) while the caller's (1.0) had the other, waiting: two even
halves took a 1 GiB envelope from about 1.3 s to about 1.15 s here.

Those threads are for an envelope opened alone. When a bundle holds several
large ones, intake.workstation.ahead opens them side by side instead, each
in one thread (`alone=False`): one core per envelope, each frame hashed,
opened, hashed and written while it is in that core's cache, costs less CPU
than handing every frame from thread to thread (bench/README.md).

Between the threads at most QUEUE_DEPTH batches wait, so memory stays flat whatever
the size (about 10 MiB of chunks). The caller writes into a file it made for
this item and keeps it only once unseal() returns: an envelope is whole only
at its end.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from nacl.public import PrivateKey

from intake.allocator import keep_freed_memory
from intake.format.envelope import (
    FRAME,
    MAX_HEADER,
    EnvelopeError,
    EnvelopeReader,
    PayloadOpener,
)
from intake.write_all import write_all

BATCH = 16  # frames handed over at once: about 1 MiB
KEEP_BEHIND = 8 * 1024 * 1024  # written plaintext left in the page cache while it is written back
LET_GO = 4 * 1024 * 1024  # advised away at a time
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


class _Hash(Protocol):
    """What a hashlib object offers (hashlib's own type is not public)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...
class _Frames:
    """The envelope's payload as lists of frames (bytes, as libsodium wants
    them), read ahead by a thread that also hashes the whole envelope. Each
    frame is read by its own pread() straight into the bytes object that is
    then opened: no copy in between."""

    def __init__(self, fd: int, offset: int, size: int, header: bytes):
        self.sha = hashlib.sha256(header)
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._run, args=(fd, offset + len(header), offset + size),
            name="intake-read", daemon=True)
        self._thread.start()

    def _run(self, fd: int, pos: int, end: int) -> None:
        update = self.sha.update
        try:
            for frames in _batches(fd, pos, end):
                for frame in frames:
                    update(frame)
                if not self._put(frames):
                    return
            self._put(_END)
        except EnvelopeError as exc:  # _batches' Truncated, an OSError's included
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[list[bytes]]:
        while not self._done:
            item = self._queue.get()
            if item is _END:
                self._done = True
                return
            if isinstance(item, BaseException):
                self._done = True
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def digest(self) -> str:
        self._thread.join()
        return self.sha.hexdigest()


def _batches(fd: int, pos: int, end: int) -> Iterator[list[bytes]]:
    """The frames from `pos` to `end`, BATCH at a time, each read by its own
    pread() straight into the bytes object that is then opened."""
    with contextlib.suppress(OSError):  # advice only: read ahead generously
        os.posix_fadvise(fd, pos, end - pos, os.POSIX_FADV_SEQUENTIAL)
    pread = os.pread
    try:
        while pos < end:
            frames = []
            for _ in range(BATCH):
                want = min(FRAME, end - pos)
                frame = pread(fd, want, pos)
                if len(frame) != want:
                    raise Truncated("truncated: the bundle ends inside it")
                frames.append(frame)
                pos += want
                if pos == end:
                    break
            yield frames
    except OSError as exc:
        raise Truncated(f"truncated: the bundle cannot be read ({exc.strerror})") from exc


class _Behind:
    """Writes through the page cache, and lets go of what it wrote a little
    behind: POSIX_FADV_DONTNEED starts the write-back of those pages and drops
    them once on disk. So the kernel reuses a few MiB of pages instead of
    finding a fresh one for every page of the item (on a virtual machine that
    costs more than the decryption), no plaintext lingers in memory, the
    vault's sync before a commit finds little left to write, and no write
    waits for the disk. Where it does not apply (a memfd) the advice is
    ignored."""

    def __init__(self, fd: int):
        self._fd = fd
        self._start = self._end = os.lseek(fd, 0, os.SEEK_CUR)
        self._advised = self._start

    def write(self, pieces: list[bytes]) -> None:
        self._end += write_all(self._fd, pieces)
        if self._end - self._advised >= LET_GO + KEEP_BEHIND:
            self._advised = self._end - KEEP_BEHIND
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, self._start, self._advised - self._start,
                                 os.POSIX_FADV_DONTNEED)


class _Sink:
    """Hashes and writes the plaintext in a thread of its own."""

    def __init__(self, fd: int, hash_content: bool, envelope: _Hash | None = None):
        self.sha = hashlib.sha256() if hash_content else None
        self.envelope = envelope
        self.size = 0
        self._out = _Behind(fd)
        self._queue: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="intake-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the caller finds the error at close()
            frames, batch = item
            if self.envelope is not None:
                for frame in frames:
                    self.envelope.update(frame)
            try:
                if self.sha is not None:
                    for piece in batch:
                        self.sha.update(piece)
                self._out.write(batch)
                self.size += sum(map(len, batch))
            except OSError as exc:
                self._error = exc

    def put(self, batch: list[bytes], frames: list[bytes] | None = None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((frames or [], batch))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def unseal(bundle_fd: int, offset: int, size: int, key: PrivateKey, out_fd: int, *,
           hash_content: bool = True, small: int = SMALL, alone: bool = True) -> Unsealed:
    """Decrypts the envelope at [offset, offset + size) of `bundle_fd` into
    `out_fd`. Raises EnvelopeError (the message is safe to show) when the
    envelope is not whole; OSError when the output cannot be written.
    `hash_content=False` leaves content_sha256 empty and saves its cost; an
    envelope of at most `small` bytes is opened without threads, and so is
    any with `alone=False`: other envelopes are being opened beside it
    (intake.workstation.ahead), on the other cores."""
    if size <= small:
        return _unseal_small(bundle_fd, offset, size, key, out_fd, hash_content)
    keep_freed_memory()
    head = os.pread(bundle_fd, min(size, MAX_HEADER), offset)
    reader = EnvelopeReader(io.BytesIO(head), key)
    opener = reader.payload()
    header = head[:reader.header_size]
    if hash_content and alone:
        return _three_threads(opener, _Frames(bundle_fd, offset, size, header), out_fd)
    batches = _batches(bundle_fd, offset + len(header), offset + size)
    if not alone:
        return _one_thread(opener, batches, hashlib.sha256(header), out_fd, hash_content)
    return _two_threads(opener, batches, hashlib.sha256(header), out_fd)


def _one_thread(opener: PayloadOpener, batches: Iterator[list[bytes]], envelope: _Hash,
                out_fd: int, hash_content: bool) -> Unsealed:
    """Everything in this thread, frame by frame: each is hashed, opened and
    its plaintext hashed and written while it is still in this core's
    cache. Beside another envelope opened the same way on the other core,
    that costs less CPU than the threads above, which hand every frame from
    core to core (bench/README.md)."""
    content = hashlib.sha256() if hash_content else None
    out = _Behind(out_fd)
    size = 0
    for frames in batches:
        for frame in frames:
            envelope.update(frame)
        pieces = opener.open(frames)
        if content is not None:
            for piece in pieces:
                content.update(piece)
        out.write(pieces)
        size += sum(map(len, pieces))
    rest = opener.finish()
    if content is not None:
        content.update(rest)
    out.write([rest])
    size += len(rest)
    assert opener.metadata is not None
    return Unsealed(opener.metadata, envelope.hexdigest(),
                    content.hexdigest() if content is not None else "", size)


def _three_threads(opener: PayloadOpener, source: _Frames, out_fd: int) -> Unsealed:
    """Both SHA-256s: the envelope's in the reading thread, the content's in
    the writing one, the decryption between them."""
    sink: _Sink | None = None
    try:
        sink = _Sink(out_fd, True)
        for frames in source:
            pieces = opener.open(frames)
            if pieces:
                sink.put(pieces)
        rest = opener.finish()
        if rest:
            sink.put([rest])
        done, sink = sink, None
        done.close()
        assert opener.metadata is not None and done.sha is not None
        return Unsealed(opener.metadata, source.digest(), done.sha.hexdigest(), done.size)
    finally:
        if sink is not None:
            with contextlib.suppress(OSError):  # the envelope's own failure is reported
                sink.close()
        source.close()


def _two_threads(opener: PayloadOpener, batches: Iterator[list[bytes]],
                 envelope: _Hash, out_fd: int) -> Unsealed:
    """The envelope's SHA-256 only: this thread reads and decrypts, the other
    hashes what was read and writes what was decrypted. Two even halves of
    the work, where a third thread would leave one core waiting on the
    other's two."""
    sink: _Sink | None = _Sink(out_fd, False, envelope)
    try:
        for frames in batches:
            sink.put(opener.open(frames), frames)  # type: ignore[union-attr]
        rest = opener.finish()
        sink.put([rest] if rest else [])  # type: ignore[union-attr]
        done, sink = sink, None
        done.close()
        assert opener.metadata is not None
        return Unsealed(opener.metadata, envelope.hexdigest(), "", done.size)
    finally:
        if sink is not None:
            with contextlib.suppress(OSError):  # the envelope's own failure is reported
                sink.close()


def _unseal_small(bundle_fd: int, offset: int, size: int, key: PrivateKey, out_fd: int,
                  hash_content: bool) -> Unsealed:
    """A small envelope (a testimony, most often) in one read and one write:
    starting threads would cost more than they save."""
    raw = os.pread(bundle_fd, size, offset)
    if len(raw) != size:
        raise Truncated("truncated: the bundle ends inside it")
    reader = EnvelopeReader(io.BytesIO(raw), key)
    pieces = list(reader.content())
    write_all(out_fd, pieces)
    assert reader.metadata is not None
    content_sha = ""
    if hash_content:
        sha = hashlib.sha256()
        for piece in pieces:
            sha.update(piece)
        content_sha = sha.hexdigest()
    return Unsealed(reader.metadata, hashlib.sha256(raw).hexdigest(), content_sha,
                    sum(map(len, pieces)))
