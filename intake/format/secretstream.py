"""A thin, typed wrapper over libsodium's secretstream (XChaCha20-Poly1305).

Both the envelope payload and the server's ephemeral spool use it, so the
chunking rules live here once.
"""

from __future__ import annotations

from nacl import bindings as b
from nacl.exceptions import CryptoError

KEY_BYTES = b.crypto_secretstream_xchacha20poly1305_KEYBYTES
HEADER_BYTES = b.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES = b.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = b.crypto_secretstream_xchacha20poly1305_TAG_FINAL


class StreamError(Exception):
    """A chunk failed to authenticate: damaged, reordered, or forged."""


class UnknownTag(StreamError):
    """An authentic chunk with a tag this format never writes (PUSH, REKEY)."""


def new_key() -> bytes:
    return b.crypto_secretstream_xchacha20poly1305_keygen()


class Pusher:
    """Encrypts chunks in order; the caller decides chunk sizes and the FINAL tag."""

    def __init__(self, key: bytes):
        self._state = b.crypto_secretstream_xchacha20poly1305_state()
        self.header = b.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)

    def push(self, chunk: bytes, *, final: bool = False, ad: bytes | None = None) -> bytes:
        tag = TAG_FINAL if final else TAG_MESSAGE
        return b.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, ad, tag)

    def push_all(self, data, size: int, *, ad: bytes | None = None) -> list[bytes]:
        """Seals `data` (a multiple of `size` bytes) as consecutive non-final
        chunks of `size` bytes; `ad` goes with the first. The same bytes as
        calling push() on each chunk in turn, one sealed chunk each: the
        caller writes them as they are (writev), never gathered in a copy."""
        count, rest = divmod(len(data), size)
        if rest:
            raise ValueError("push_all takes whole chunks only")
        view = memoryview(data).cast("B")
        push, state = b.crypto_secretstream_xchacha20poly1305_push, self._state
        return [push(state, bytes(view[i * size:(i + 1) * size]), ad if i == 0 else None,
                     TAG_MESSAGE) for i in range(count)]


class Puller:
    """Decrypts chunks in order; each pull returns (plaintext, is_final)."""

    def __init__(self, key: bytes, header: bytes):
        if len(header) != HEADER_BYTES:
            raise StreamError("stream header is truncated")
        self._state = b.crypto_secretstream_xchacha20poly1305_state()
        b.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)

    def pull_all(self, data, size: int, *, ad: bytes | None = None) -> bytearray:
        """Opens `data`, consecutive sealed chunks of `size` plaintext bytes each,
        every one of them tagged MESSAGE; `ad` goes with the first. The same as
        pull() on each in turn, gathered in one buffer."""
        step = size + ABYTES
        count, rest = divmod(len(data), step)
        if rest:
            raise StreamError("a sealed chunk is truncated")
        view = memoryview(data).cast("B")
        out = bytearray(count * size)
        for i in range(count):
            plain, final = self.pull(bytes(view[i * step:(i + 1) * step]),
                                     ad=ad if i == 0 else None)
            if final:
                raise UnknownTag("a chunk has an unexpected tag")
            out[i * size:(i + 1) * size] = plain
        return out

    def pull(self, chunk: bytes, *, ad: bytes | None = None) -> tuple[bytes, bool]:
        try:
            plain, tag = b.crypto_secretstream_xchacha20poly1305_pull(self._state, chunk, ad)
        except CryptoError as exc:
            raise StreamError("chunk failed authentication") from exc
        if tag not in (TAG_MESSAGE, TAG_FINAL):
            raise UnknownTag("a chunk has an unknown tag")
        return plain, tag == TAG_FINAL
