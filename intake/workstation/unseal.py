"""Opening one envelope of a bundle into a file: read, hash, decrypt, hash and
write in one pass, in bounded memory, at the speed of the format.

Above SMALL, two threads share the work, each on its own core when there is
one (the SHA-256s, the reads and writes and libsodium release the GIL):

    caller   pread()s the member frame by frame, each straight into the bytes
             object libsodium then opens, and decrypts and authenticates it
             (intake.format.envelope.PayloadOpener); BATCH frames (about
             1 MiB) are handed over at a time
    writer   writes the plaintext through the page cache, which it lets go
             of a few MiB behind (_Behind)

and the hashes are shared out so that the halves are about even: with both
(`vault import`) the caller hashes each frame it read (the envelope's
SHA-256, checked against the manifest) while it is in cache, and the writer
the plaintext (checked against the sealed sha256_kept); with the envelope's
only (`intake decrypt`) the writer hashes what was read. (Until
2026-12-07 import used three threads, reading and hashing in one, and
decrypt three before that: each hand-over of a frame between cores costs
more than it saves on two.)

Those threads are for an envelope opened alone. When a bundle holds several
large ones, intake.workstation.ahead opens them side by side instead, each
in one thread (`alone=False`): one core per envelope, each frame hashed,
opened, hashed and written while it is in that core's cache, costs less CPU
than handing every frame from thread to thread (bench/README.md).

Between the threads at most QUEUE_DEPTH batches wait, so memory stays flat
whatever the size (about 10 MiB of chunks). The caller writes into a file it made for
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
from intake.format.bundle import BundleReader, Candidate
from intake.format.envelope import (
    FRAME,
    MAX_HEADER,
    EnvelopeError,
    EnvelopeReader,
    PayloadOpener,
    fingerprint,
    read_header,
)
from intake.format.teamkeys import format_fingerprint
from intake.write_all import write_all

BATCH = 16  # frames handed over at once: about 1 MiB
KEEP_BEHIND = 8 * 1024 * 1024  # written plaintext left in the page cache while it is written back
LET_GO = 4 * 1024 * 1024  # advised away at a time
QUEUE_DEPTH = 4
SMALL = 2 * 1024 * 1024  # envelopes up to this size are opened without threads


class Truncated(EnvelopeError):
    pass


class WrongKey(Exception):
    """The bundle is not sealed to this key. The message is safe to show."""


def check_key(reader: BundleReader, cand: Candidate, key: PrivateKey, bundle_name: str,
              key_name: str) -> None:
    """The first envelope says which keys the bundle is sealed to: refuse the
    whole bundle at once (WrongKey) when this key is not one of them, rather
    than call every item damaged."""
    head = os.pread(reader.fd, min(cand.size, MAX_HEADER), cand.offset)
    try:
        _raw, stanzas, _ = read_header(io.BytesIO(head))
    except EnvelopeError:
        return  # a damaged first envelope: reported as such, the others still tried
    mine = fingerprint(key.public_key)
    if any(fp == mine for fp, _sealed in stanzas):
        return
    theirs = ", ".join(":".join(fp.hex()[i:i + 4] for i in range(0, 32, 4))
                       for fp, _ in stanzas)
    raise WrongKey(
        f"{bundle_name} is not sealed to {key_name} ({format_fingerprint(key.public_key)}) "
        f"but to {theirs}: wrong key, or a bundle for another team")


@dataclass(frozen=True)
class Unsealed:
    metadata: dict
    envelope_sha256: str
    content_sha256: str
    content_size: int


class _Hash(Protocol):
    """What a hashlib object offers (hashlib's own type is not public)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


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
    batches = _batches(bundle_fd, offset + len(header), offset + size)
    if not alone:
        return _one_thread(opener, batches, hashlib.sha256(header), out_fd, hash_content)
    return _two_threads(opener, batches, hashlib.sha256(header), out_fd, hash_content)


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


def _two_threads(opener: PayloadOpener, batches: Iterator[list[bytes]],
                 envelope: _Hash, out_fd: int, hash_content: bool) -> Unsealed:
    """This thread reads and decrypts, the other writes; the envelope's hash
    is taken here when the other takes the content's, else there."""
    sink: _Sink | None = _Sink(out_fd, hash_content, None if hash_content else envelope)
    update = envelope.update
    try:
        for frames in batches:
            if hash_content:
                for frame in frames:
                    update(frame)
                sink.put(opener.open(frames))  # type: ignore[union-attr]
            else:
                sink.put(opener.open(frames), frames)  # type: ignore[union-attr]
        rest = opener.finish()
        sink.put([rest] if rest else [])  # type: ignore[union-attr]
        done, sink = sink, None
        done.close()
        assert opener.metadata is not None
        return Unsealed(opener.metadata, envelope.hexdigest(),
                        done.sha.hexdigest() if done.sha is not None else "", done.size)
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
