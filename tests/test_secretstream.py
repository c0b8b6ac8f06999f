"""Opening secretstream with OpenSSL (intake.format.secretstream.Puller)
against libsodium's own pull, through PyNaCl: the same plaintexts and tags
for whatever libsodium sealed, and a refusal wherever libsodium refuses."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium
from nacl.exceptions import CryptoError

from intake.format import secretstream as ss
from intake.format.secretstream import _hchacha20

PROPERTY = settings(max_examples=200, deadline=10_000, database=None)
TAG_PUSH = sodium.crypto_secretstream_xchacha20poly1305_TAG_PUSH
TAG_REKEY = sodium.crypto_secretstream_xchacha20poly1305_TAG_REKEY

# Every residue modulo 16 (the MAC's padding differs from the AEAD's with
# it), the envelope's own chunk and the lengths around it.
LENGTHS = st.integers(0, 200) | st.sampled_from([65535, 65536, 65537, 4096, 4104])
ADS = st.none() | st.binary(max_size=40)


def sealed(key: bytes, chunks: list[tuple[bytes, bytes | None, int]]) -> tuple[bytes, list]:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    return header, [sodium.crypto_secretstream_xchacha20poly1305_push(state, m, ad, tag)
                    for m, ad, tag in chunks]


def libsodium_pull(key: bytes, header: bytes, frames: list[tuple[bytes, bytes | None]]):
    """What libsodium makes of the frames: (plaintext, tag) each, up to the
    first it refuses, then None."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    out = []
    for frame, ad in frames:
        try:
            out.append(sodium.crypto_secretstream_xchacha20poly1305_pull(state, frame, ad))
        except (CryptoError, ValueError):
            out.append(None)
            break
    return out


def our_pull(key: bytes, header: bytes, frames: list[tuple[bytes, bytes | None]]):
    puller = ss.Puller(key, header)
    out = []
    for frame, ad in frames:
        try:
            plain, final = puller.pull(frame, ad=ad)
        except ss.StreamError:
            out.append(None)
            break
        out.append((plain, ss.TAG_FINAL if final else ss.TAG_MESSAGE))
        if final:
            break
    return out


@st.composite
def streams(draw):
    count = draw(st.integers(1, 5))
    # The bytes come from a drawn seed: chunks of 64 KiB drawn byte by byte
    # exceed what Hypothesis will generate, and their values matter less
    # than their lengths.
    chunks = [(random.Random(draw(st.integers(0, 2**32))).randbytes(n), draw(ADS),
               ss.TAG_MESSAGE)
              for n in draw(st.lists(LENGTHS, min_size=count, max_size=count))]
    if draw(st.booleans()):
        m, ad, _ = chunks[-1]
        chunks[-1] = (m, ad, ss.TAG_FINAL)
    return draw(st.binary(min_size=32, max_size=32)), chunks


@PROPERTY
@given(streams())
def test_opens_what_libsodium_sealed(stream):
    key, chunks = stream
    header, frames = sealed(key, chunks)
    with_ad = [(f, ad) for f, (_m, ad, _t) in zip(frames, chunks, strict=True)]
    ours = our_pull(key, header, with_ad)
    assert ours == libsodium_pull(key, header, with_ad)
    assert [plain for plain, _tag in ours] == [m for m, _ad, _t in chunks]


@PROPERTY
@given(streams(), st.data())
def test_refuses_where_libsodium_refuses(stream, data):
    """A bit flipped anywhere, a frame cut short or lengthened, other
    additional data, frames swapped or left out, a changed header: each
    refused by both at the same frame, and the frames before it opened
    alike."""
    key, chunks = stream
    header, frames = sealed(key, chunks)
    pairs = [(f, ad) for f, (_m, ad, _t) in zip(frames, chunks, strict=True)]
    i = data.draw(st.integers(0, len(pairs) - 1))
    frame, ad = pairs[i]
    change = data.draw(st.sampled_from(["bit", "cut", "longer", "ad", "swap", "skip", "header"]))
    if change == "bit":
        at = data.draw(st.integers(0, len(frame) * 8 - 1))
        broken = bytearray(frame)
        broken[at // 8] ^= 1 << (at % 8)
        pairs[i] = (bytes(broken), ad)
    elif change == "cut":
        pairs[i] = (frame[:data.draw(st.integers(0, len(frame) - 1))], ad)
    elif change == "longer":
        pairs[i] = (frame + data.draw(st.binary(min_size=1, max_size=17)), ad)
    elif change == "ad":
        other = data.draw(ADS.filter(lambda x: (x or b"") != (ad or b"")))
        pairs[i] = (frame, other)
    elif change == "swap" and len(pairs) > 1:
        j = (i + 1) % len(pairs)
        pairs[i], pairs[j] = (pairs[j][0], ad), (frame, pairs[j][1])
    elif change == "skip" and len(pairs) > 1:
        del pairs[i]
    else:
        at = data.draw(st.integers(0, 23 * 8))
        header = bytearray(header)
        header[min(at // 8, 23)] ^= 1 << (at % 8)
        header = bytes(header)
    ours = our_pull(key, header, pairs)
    assert ours == libsodium_pull(key, header, pairs)
    # A stream cut after a whole frame opens as far as it goes: whoever
    # reads it must find the FINAL chunk missing (docs/envelope.md).
    assert ours[-1] is None or ours == [(m, t) for m, _ad, t in chunks][:len(ours)]


@pytest.mark.parametrize("tag", [TAG_PUSH, TAG_REKEY])
def test_an_authentic_tag_this_format_never_writes_ends_the_stream(tag):
    key = ss.new_key()
    header, frames = sealed(key, [(b"a" * 64, None, tag), (b"b", None, ss.TAG_FINAL)])
    puller = ss.Puller(key, header)
    with pytest.raises(ss.UnknownTag):
        puller.pull(frames[0])
    with pytest.raises(ss.StreamError):  # libsodium would have rekeyed: nothing is taken
        puller.pull(frames[1])


def test_nothing_is_opened_after_the_final_chunk():
    """libsodium rekeys after FINAL; a frame sealed after it is refused."""
    key = ss.new_key()
    header, frames = sealed(key, [(b"end", None, ss.TAG_FINAL), (b"more", None, ss.TAG_MESSAGE)])
    puller = ss.Puller(key, header)
    assert puller.pull(frames[0]) == (b"end", True)
    with pytest.raises(ss.StreamError):
        puller.pull(frames[1])


def test_a_short_header_or_key_is_refused():
    with pytest.raises(ss.StreamError):
        ss.Puller(ss.new_key(), bytes(23))
    with pytest.raises(ValueError):
        ss.Puller(bytes(31), bytes(24))


def test_hchacha20_matches_the_xchacha_draft():
    """draft-irtf-cfrg-xchacha-03, section 2.2.1."""
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    assert _hchacha20(key, nonce).hex() == (
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")


@pytest.mark.parametrize("first", ["ffffffff", "feffffff", "00000000", "ff" * 16])
def test_hchacha20_where_openssl_would_carry_its_block_counter(first):
    """HChaCha20 is one ChaCha20 block whose counter word is the header's
    first four bytes: at 2**32 - 1 OpenSSL carries the counter into the
    nonce, after the block. Checked against libsodium's XChaCha20-Poly1305,
    whose subkey is the same HChaCha20."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    key = bytes(range(32))
    nonce = bytes.fromhex(first) + bytes(range(24 - len(first) // 2))
    sealed_ = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(b"text", b"ad", nonce, key)
    ours = ChaCha20Poly1305(_hchacha20(key, nonce[:16])).encrypt(
        bytes(4) + nonce[16:], b"text", b"ad")
    assert ours == sealed_
