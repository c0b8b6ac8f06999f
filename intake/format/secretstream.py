"""A thin, typed wrapper over libsodium's secretstream (XChaCha20-Poly1305).

Both the envelope payload and the server's ephemeral spool use it, so the
chunking rules live here once. Sealing is PyNaCl's (libsodium's own push);
opening computes libsodium's pull with OpenSSL's ChaCha20 and Poly1305
(Puller, below), which is checked against PyNaCl's pull in the tests.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.poly1305 import Poly1305
from nacl import bindings as b

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


_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_ZEROS = bytes(64)


def _hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 (libsodium's crypto_core_hchacha20): the ChaCha20 block
    function without its final addition, words 0-3 and 12-15. One block of
    keystream whose input words 12-15 are `nonce16` is that plus the input,
    so subtracting the known input words gives it."""
    block = Cipher(algorithms.ChaCha20(key, nonce16), None).encryptor().update(_ZEROS)
    words = struct.unpack("<16I", block)
    given = struct.unpack("<4I", nonce16)
    return struct.pack("<8I", *((words[i] - _SIGMA[i]) & 0xFFFFFFFF for i in range(4)),
                       *((words[12 + i] - given[i]) & 0xFFFFFFFF for i in range(4)))


class Puller:
    """Decrypts chunks in order; each pull returns (plaintext, is_final).

    libsodium's crypto_secretstream_xchacha20poly1305_pull, step by step
    (docs/envelope.md, "The stream in ChaCha20 and Poly1305"), over OpenSSL's
    ChaCha20 and Poly1305 through `cryptography`: OpenSSL uses the CPU's
    widest vector units, and opens a gigabyte in half the CPU time of
    PyNaCl's pull (bench/README.md). A chunk of a multiple of 16 bytes
    (every one of an envelope but its last) is the IETF ChaCha20-Poly1305
    AEAD over the encrypted tag block and the chunk, opened in one call; at
    other lengths libsodium pads the MAC's input differently from the AEAD,
    and the chunk is opened in steps. Only the tags this format writes are
    taken, so the state never needs libsodium's rekeying."""

    def __init__(self, key: bytes, header: bytes):
        if len(header) != HEADER_BYTES:
            raise StreamError("stream header is truncated")
        if len(key) != KEY_BYTES:
            raise ValueError("a secretstream key is 32 bytes")
        self._key = _hchacha20(bytes(key), bytes(header[:16]))
        self._aead = ChaCha20Poly1305(self._key)
        self._counter = 1
        self._inonce = int.from_bytes(header[16:], "little")
        self._ended = False

    def _open_aligned(self, nonce: bytes, chunk: bytes, ad: bytes | None) -> tuple[bytes, int]:
        # The tag block as encrypted: its first byte travels, the other 63
        # are keystream block 1, the AEAD's first block of data.
        keystream = self._aead.encrypt(nonce, _ZEROS, None)
        try:
            opened = self._aead.decrypt(
                nonce, b"".join((chunk[:1], keystream[1:64], memoryview(chunk)[1:])), ad)
        except InvalidTag as exc:
            raise StreamError("chunk failed authentication") from exc
        return opened[64:], opened[0]

    def _open_any(self, nonce: bytes, chunk: bytes, ad: bytes | None) -> tuple[bytes, int]:
        chunk = bytes(chunk)  # the last chunk of a stream, at most: a copy costs nothing
        stream = Cipher(algorithms.ChaCha20(self._key, bytes(4) + nonce), None).encryptor()
        mac_key = stream.update(_ZEROS)[:32]
        keystream = stream.update(_ZEROS)  # block 1: the tag block's
        block = chunk[:1] + keystream[1:]
        ad = ad or b""
        text = chunk[1:-16]
        mac = Poly1305(mac_key)
        mac.update(ad)
        mac.update(_ZEROS[:-len(ad) % 16])
        mac.update(block)
        mac.update(text)
        mac.update(_ZEROS[:len(text) % 16])  # libsodium's padding, not the AEAD's
        mac.update(struct.pack("<QQ", len(ad), len(block) + len(text)))
        try:
            mac.verify(bytes(chunk[-16:]))
        except InvalidSignature as exc:
            raise StreamError("chunk failed authentication") from exc
        return stream.update(text), chunk[0] ^ keystream[0]

    def pull(self, chunk: bytes, *, ad: bytes | None = None) -> tuple[bytes, bool]:
        if self._ended:
            raise StreamError("the stream has ended")
        if len(chunk) < ABYTES:
            raise StreamError("chunk failed authentication")
        nonce = self._counter.to_bytes(4, "little") + self._inonce.to_bytes(8, "little")
        if (len(chunk) - ABYTES) % 16 == 0:
            plain, tag = self._open_aligned(nonce, chunk, ad)
        else:
            plain, tag = self._open_any(nonce, chunk, ad)
        # The state moves on as libsodium's does: the MAC goes into the nonce.
        self._inonce ^= int.from_bytes(chunk[-16:-8], "little")
        self._counter += 1
        if tag not in (TAG_MESSAGE, TAG_FINAL):
            self._ended = True
            raise UnknownTag("a chunk has an unknown tag")
        # After FINAL, or a counter of 2**32, libsodium rekeys: nothing this
        # format writes comes after either (2**32 chunks are 256 TiB).
        self._ended = tag == TAG_FINAL or self._counter == 1 << 32
        return plain, tag == TAG_FINAL

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
