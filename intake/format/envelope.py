"""The envelope: one item sealed to every team key. Specified in docs/envelope.md.

    header  = MAGIC | version | count | count x stanza | stream header
    stanza  = fingerprint(16) | crypto_box_seal(file key)(80)
    payload = secretstream over  content | metadata JSON | u32be(len(metadata)),
              cut into chunks of exactly CHUNK bytes, the last one (1..CHUNK
              bytes) tagged FINAL. The first chunk's additional data is the
              whole header, which binds every stanza to the payload.

Metadata goes last so that an item can be sealed in the same pass that reads
it, while its hashes are still being computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from intake.format import secretstream as ss
from intake.format import untrusted_json

MAGIC = b"INTAKE\x00E"
VERSION = 1
CHUNK = 64 * 1024
FRAME = CHUNK + ss.ABYTES  # a sealed chunk
FINGERPRINT_BYTES = 16
SEALED_KEY_BYTES = 32 + 48  # file key + crypto_box_seal overhead
STANZA_BYTES = FINGERPRINT_BYTES + SEALED_KEY_BYTES
MAX_RECIPIENTS = 255
MAX_METADATA = CHUNK - 4  # so the trailer always fits in the last two chunks
MAX_HEADER = len(MAGIC) + 2 + MAX_RECIPIENTS * STANZA_BYTES + ss.HEADER_BYTES
READ_BACK_CHUNKS = 16  # about 1 MiB per piece read back


class EnvelopeError(Exception):
    """Any reason an envelope cannot be opened. The message is safe to show."""


def fingerprint(public_key: PublicKey) -> bytes:
    return hashlib.sha256(bytes(public_key)).digest()[:FINGERPRINT_BYTES]


@dataclass(frozen=True)
class Recipient:
    public_key: PublicKey

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.public_key)


def _header(recipients: list[Recipient], file_key: bytes, stream_header: bytes) -> bytes:
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ValueError("an envelope needs between 1 and 255 recipients")
    parts = [MAGIC, bytes([VERSION, len(recipients)])]
    for r in recipients:
        parts.append(r.fingerprint)
        parts.append(SealedBox(r.public_key).encrypt(file_key))
    parts.append(stream_header)
    return b"".join(parts)


class EnvelopeWriter:
    """Streams content into an envelope; close() appends the metadata chunk."""

    def __init__(self, out: BinaryIO, recipients: Iterable[Recipient]):
        self._out = out
        self._file_key = ss.new_key()
        self._pusher = ss.Pusher(self._file_key)
        self.header = _header(list(recipients), self._file_key, self._pusher.header)
        self._ad: bytes | None = self.header
        out.write(self.header)
        self._buf = bytearray()
        self._chunks_out = 0
        self.size = 0

    def _seal_chunk(self, chunk: bytes, *, final: bool = False) -> bytes:
        # Only the first chunk carries the header as additional data.
        sealed = self._pusher.push(chunk, final=final, ad=self._ad)
        self._ad = None
        self._chunks_out += 1
        return sealed

    def write(self, data: bytes) -> None:
        """Seals every whole chunk now, from `data` itself where it can; one
        writelines() to `out` per call, not one write per chunk."""
        self.size += len(data)
        view = memoryview(data)
        sealed: list[bytes] = []
        if self._buf:  # complete the chunk begun by an earlier write
            take = CHUNK - len(self._buf)
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < CHUNK:
                return
            sealed.append(self._seal_chunk(bytes(self._buf)))
            self._buf.clear()
        whole = len(view) - len(view) % CHUNK
        if whole:
            sealed += self._pusher.push_all(view[:whole], CHUNK, ad=self._ad)
            self._ad = None
            self._chunks_out += whole // CHUNK
        self._buf += view[whole:]
        if sealed:
            self._out.writelines(sealed)

    def close(self, metadata: dict) -> None:
        meta = json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode()
        if len(meta) > MAX_METADATA:
            raise ValueError("metadata is larger than one chunk")
        self._buf += meta + len(meta).to_bytes(4, "big")
        sealed = []
        while len(self._buf) > CHUNK:
            sealed.append(self._seal_chunk(bytes(self._buf[:CHUNK])))
            del self._buf[:CHUNK]
        sealed.append(self._seal_chunk(bytes(self._buf), final=True))
        self._out.writelines(sealed)
        self._buf.clear()
        self._file_key = b""

    def written_content(self, written: BinaryIO) -> Iterator[bytes]:
        """The content written so far, read back from this envelope's own bytes
        with the file key this writer holds in memory (only until close()).

        Lets the server inspect and sanitize an upload it sealed as it arrived,
        without ever keeping a clear-text copy."""
        if not self._file_key:
            raise ValueError("the envelope is closed; its file key is gone")
        if written.read(len(self.header)) != self.header:
            raise EnvelopeError("damaged: the envelope changed while being written")
        puller = ss.Puller(self._file_key, self.header[-ss.HEADER_BYTES:])
        ad: bytes | None = self.header
        left = self._chunks_out
        while left:
            batch = min(left, READ_BACK_CHUNKS)
            sealed = written.read(batch * (CHUNK + ss.ABYTES))
            if len(sealed) != batch * (CHUNK + ss.ABYTES):
                raise EnvelopeError("truncated: the envelope lost bytes while being written")
            try:
                plain = puller.pull_all(sealed, CHUNK, ad=ad)
            except ss.StreamError as exc:
                raise EnvelopeError("damaged: the envelope changed while being written") \
                    from exc
            ad = None
            left -= batch
            yield plain
        if self._buf:
            yield bytes(self._buf)


def seal(out: BinaryIO, recipients: Iterable[Recipient], content: Iterable[bytes],
         metadata: dict) -> None:
    writer = EnvelopeWriter(out, recipients)
    for piece in content:
        writer.write(piece)
    writer.close(metadata)


def _read_exact(inp: BinaryIO, n: int, what: str) -> bytes:
    data = inp.read(n)
    if len(data) != n:
        raise EnvelopeError(f"truncated: the {what} is incomplete")
    return data


def read_header(inp: BinaryIO) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """Returns (raw header, [(fingerprint, sealed key)], stream header)."""
    head = inp.read(len(MAGIC) + 2)
    if head[: len(MAGIC)] != MAGIC[: len(head)] or len(head) < len(MAGIC):
        raise EnvelopeError("not an Intake envelope")
    if len(head) < len(MAGIC) + 2:
        raise EnvelopeError("truncated: the header is incomplete")
    version, count = head[len(MAGIC)], head[len(MAGIC) + 1]
    if version != VERSION:
        raise EnvelopeError(f"unsupported envelope version {version}")
    if count == 0:
        raise EnvelopeError("damaged: the envelope names no recipient")
    raw = _read_exact(inp, count * STANZA_BYTES + ss.HEADER_BYTES, "header")
    stanzas = [
        (raw[i:i + FINGERPRINT_BYTES], raw[i + FINGERPRINT_BYTES:i + STANZA_BYTES])
        for i in range(0, count * STANZA_BYTES, STANZA_BYTES)
    ]
    return head + raw, stanzas, raw[-ss.HEADER_BYTES:]


def _file_key(stanzas: list[tuple[bytes, bytes]], private_key: PrivateKey) -> bytes:
    mine = fingerprint(private_key.public_key)
    box = SealedBox(private_key)
    for fp, sealed in stanzas:
        if fp != mine:
            continue
        try:
            key = box.decrypt(sealed)
        except CryptoError:
            continue
        if len(key) == ss.KEY_BYTES:
            return key
    raise EnvelopeError("not sealed to this key (wrong key, or a bundle for another team)")


class PayloadOpener:
    """Steps 7 to 10 of the decoding (docs/envelope.md) over frames the caller
    reads itself: every frame FRAME bytes but the payload's last one. For a
    reader that reads ahead in another thread (intake.workstation.unseal);
    EnvelopeReader.content() uses it too, so the rules live here once.

    open() returns the content that is sure to be content; the last full
    plaintext is held back, as the metadata may begin in it. finish() after
    the last frame returns the rest and sets .metadata."""

    def __init__(self, puller: ss.Puller, ad: bytes):
        self._puller = puller
        self._ad: bytes | None = ad  # only the first chunk carries the header
        self._pending: bytes | None = None
        self._final: bytes | None = None
        self.metadata: dict | None = None

    @property
    def final_seen(self) -> bool:
        return self._final is not None

    def open(self, frames: Iterable[bytes]) -> list[bytes]:
        out: list[bytes] = []
        pull = self._puller.pull
        for frame in frames:
            if self._final is not None:
                raise EnvelopeError("damaged: data follows the final chunk")
            try:
                plain, final = pull(frame, ad=self._ad)
            except ss.UnknownTag as exc:
                raise EnvelopeError("damaged: a chunk has an unknown tag") from exc
            except ss.StreamError as exc:
                raise EnvelopeError("damaged or tampered: a chunk failed authentication") \
                    from exc
            self._ad = None
            if final:
                self._final = plain
                continue
            if len(plain) != CHUNK:
                raise EnvelopeError("damaged: a chunk has the wrong size")
            if self._pending is not None:
                out.append(self._pending)
            self._pending = plain
        return out

    def finish(self) -> bytes:
        if self._final is None:
            raise EnvelopeError("truncated: the final chunk is missing")
        tail = (self._pending or b"") + self._final
        self._pending = self._final = None
        n = int.from_bytes(tail[-4:], "big") if len(tail) >= 4 else len(tail)
        if n > MAX_METADATA or n + 4 > len(tail):
            raise EnvelopeError("damaged: the metadata length is wrong")
        try:
            metadata = untrusted_json.loads(tail[len(tail) - 4 - n:-4])
        except untrusted_json.TooDeep as exc:  # anyone may seal to the team key
            raise EnvelopeError("damaged: the metadata is nested too deeply") from exc
        except ValueError as exc:
            raise EnvelopeError("damaged: the metadata is not valid JSON") from exc
        if not isinstance(metadata, dict):
            raise EnvelopeError("damaged: the metadata is not a JSON object")
        try:  # JSON may escape what UTF-8 cannot carry: half a surrogate pair
            json.dumps(metadata, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise EnvelopeError("damaged: the metadata holds text that is not Unicode "
                                "(half a surrogate pair)") from exc
        self.metadata = metadata
        return tail[:len(tail) - 4 - n]


class EnvelopeReader:
    """Opens an envelope; iterate content(), then read .metadata.

    Each content chunk is authenticated before it is yielded, but the envelope
    is whole only once iteration ends without error: callers write to a
    temporary place and keep the result only then.
    """

    def __init__(self, inp: BinaryIO, private_key: PrivateKey):
        self._inp = inp
        self._ad, stanzas, stream_header = read_header(inp)
        self._puller = ss.Puller(_file_key(stanzas, private_key), stream_header)
        self.header_size = len(self._ad)
        self.metadata: dict | None = None

    def payload(self) -> PayloadOpener:
        """The payload's opener, for a caller that reads the frames itself
        (from header_size on); use it or content(), once."""
        return PayloadOpener(self._puller, self._ad)

    def content(self) -> Iterator[bytes]:
        opener = self.payload()
        while not opener.final_seen:
            frame = self._inp.read(FRAME)
            if not frame:
                break
            yield from opener.open((frame,))
        if opener.final_seen and self._inp.read(1):
            raise EnvelopeError("damaged: data follows the final chunk")
        rest = opener.finish()
        self.metadata = opener.metadata
        if rest:
            yield rest


def open_envelope(inp: BinaryIO, private_key: PrivateKey) -> tuple[bytes, dict]:
    """Reads a whole envelope into memory. For tests and small items."""
    reader = EnvelopeReader(inp, private_key)
    content = b"".join(reader.content())
    assert reader.metadata is not None
    return content, reader.metadata
