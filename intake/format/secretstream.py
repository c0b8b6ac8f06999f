"""A thin, typed wrapper over libsodium's secretstream (XChaCha20-Poly1305).

Both the envelope payload and the server's ephemeral spool use it, so the
chunking rules live here once.
"""

from __future__ import annotations

from nacl import bindings as b

# PyNaCl's own cffi binding to libsodium: push_all() and pull_all() call it
# directly, so that a run of chunks goes from the caller's buffer into one
# output buffer, without the two copies per chunk of push() and pull().
from nacl._sodium import ffi, lib
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

    def push_all(self, data, size: int, *, ad: bytes | None = None) -> bytearray:
        """Seals `data` (a multiple of `size` bytes) as consecutive non-final
        chunks of `size` bytes; `ad` goes with the first. The same bytes as
        calling push() on each chunk in turn."""
        count, rest = divmod(len(data), size)
        if rest:
            raise ValueError("push_all takes whole chunks only")
        out = bytearray(count * (size + ABYTES))
        src, dst = ffi.from_buffer(data), ffi.from_buffer(out, require_writable=True)
        for i in range(count):
            first_ad = ad if i == 0 and ad is not None else None
            rc = lib.crypto_secretstream_xchacha20poly1305_push(
                self._state.statebuf, dst + i * (size + ABYTES), ffi.NULL,
                src + i * size, size,
                first_ad if first_ad is not None else ffi.NULL,
                len(first_ad) if first_ad is not None else 0, TAG_MESSAGE)
            if rc != 0:
                raise RuntimeError("libsodium could not seal a chunk")
        return out


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
        pull() on each in turn, without its copies."""
        step = size + ABYTES
        count, rest = divmod(len(data), step)
        if rest:
            raise StreamError("a sealed chunk is truncated")
        out = bytearray(count * size)
        src, dst = ffi.from_buffer(data), ffi.from_buffer(out, require_writable=True)
        tag = ffi.new("unsigned char *")
        for i in range(count):
            first_ad = ad if i == 0 and ad is not None else None
            rc = lib.crypto_secretstream_xchacha20poly1305_pull(
                self._state.statebuf, dst + i * size, ffi.NULL, tag,
                src + i * step, step,
                first_ad if first_ad is not None else ffi.NULL,
                len(first_ad) if first_ad is not None else 0)
            if rc != 0:
                raise StreamError("chunk failed authentication")
            if tag[0] != TAG_MESSAGE:
                raise UnknownTag("a chunk has an unexpected tag")
        return out

    def pull(self, chunk: bytes, *, ad: bytes | None = None) -> tuple[bytes, bool]:
        try:
            plain, tag = b.crypto_secretstream_xchacha20poly1305_pull(self._state, chunk, ad)
        except CryptoError as exc:
            raise StreamError("chunk failed authentication") from exc
        if tag not in (TAG_MESSAGE, TAG_FINAL):
            raise UnknownTag("a chunk has an unknown tag")
        return plain, tag == TAG_FINAL
