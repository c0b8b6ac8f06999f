"""Known-answer vectors, opened by intake.envelope and by a decoder written from
docs/envelope.md alone, so that the document is tested as well as the code."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from nacl import bindings as sodium
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey

from intake.format import envelope

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
SPEC = ROOT / "docs" / "envelope.md"
INDEX = json.loads((VECTORS / "index.json").read_text())
KEYS = {name: k for name, k in INDEX["keys"].items()}

GOOD = [(v, k) for v in INDEX["vectors"] if v["expect"] == "ok" for k in v["keys"]]
BAD = [(v, k) for v in INDEX["vectors"] if v["expect"] == "error" for k in v["keys"]]


def _ids(cases):
    return [f"{v['name']}-{k}" for v, k in cases]


# -- an independent decoder, following docs/envelope.md step by step ---------

class Refused(Exception):
    """The message starts with the category from the spec's error table."""


def spec_decode(data: bytes, private_key: bytes) -> tuple[bytes, dict]:
    magic = b"INTAKE\x00E"
    frame = 65536 + 17
    if len(data) < 8 or data[:8] != magic:
        raise Refused("not an Intake envelope")
    if len(data) < 10:
        raise Refused("truncated")
    if data[8] != 1:
        raise Refused("unsupported envelope version")
    count = data[9]
    if count == 0:
        raise Refused("damaged: no recipients")
    header_len = 10 + 96 * count + 24
    if len(data) < header_len:
        raise Refused("truncated: header")
    header = data[:header_len]

    public_key = sodium.crypto_scalarmult_base(private_key)
    mine = hashlib.sha256(public_key).digest()[:16]
    file_key = None
    for i in range(count):
        stanza = header[10 + 96 * i:10 + 96 * (i + 1)]
        if stanza[:16] != mine:
            continue
        try:
            opened = sodium.crypto_box_seal_open(stanza[16:], public_key, private_key)
        except CryptoError:
            continue
        if len(opened) == 32:
            file_key = opened
            break
    if file_key is None:
        raise Refused("not sealed to this key")

    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header[-24:], file_key)
    plain = bytearray()
    pos, first = header_len, True
    while True:
        sealed = data[pos:pos + frame]
        pos += len(sealed)
        if not sealed:
            raise Refused("truncated: no FINAL chunk")
        try:
            chunk, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                state, sealed, header if first else None)
        except CryptoError as exc:
            raise Refused("damaged: authentication") from exc
        first = False
        if tag == sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL:
            plain += chunk
            break
        if tag != sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE:
            raise Refused("damaged: unknown tag")
        if len(chunk) != 65536:
            raise Refused("damaged: short chunk")
        plain += chunk
    if pos != len(data):
        raise Refused("damaged: data after FINAL")

    if len(plain) < 4:
        raise Refused("damaged: no trailer")
    length = int.from_bytes(plain[-4:], "big")
    if length + 4 > len(plain) or length > 65532:
        raise Refused("damaged: metadata length")
    try:
        metadata = json.loads(bytes(plain[len(plain) - 4 - length:-4]).decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise Refused("damaged: metadata") from exc
    if not isinstance(metadata, dict):
        raise Refused("damaged: metadata is not an object")
    return bytes(plain[:len(plain) - 4 - length]), metadata


# -- the vectors ----------------------------------------------------------------

def _data(vector: dict) -> bytes:
    return (VECTORS / vector["file"]).read_bytes()


def _key(name: str) -> bytes:
    return bytes.fromhex(KEYS[name]["private_key"])


def test_index_keys_are_consistent():
    for k in KEYS.values():
        pk = PrivateKey(bytes.fromhex(k["private_key"])).public_key
        assert bytes(pk).hex() == k["public_key"]
        assert envelope.fingerprint(pk).hex() == k["fingerprint"]


def test_index_names_every_file_and_covers_the_cases():
    files = {p.name for p in VECTORS.glob("*.env")}
    named = {v["file"] for v in INDEX["vectors"]}
    assert files == named
    names = {v["name"] for v in INDEX["vectors"]}
    sizes = {v["content_size"] for v in INDEX["vectors"] if v["expect"] == "ok"}
    assert {0, 65536, 65536 * 2 + 1} <= sizes
    assert {"two_recipients", "unicode_metadata", "wrong_key", "chunks_swapped",
            "final_chunk_removed", "appended_after_final", "stanza_from_other_envelope",
            "bit_flip_stream_header"} <= names


@pytest.mark.parametrize(("vector", "key"), GOOD, ids=_ids(GOOD))
def test_good_vector_opens_with_intake(vector, key):
    content, metadata = envelope.open_envelope(io.BytesIO(_data(vector)),
                                               PrivateKey(_key(key)))
    assert len(content) == vector["content_size"]
    assert hashlib.sha256(content).hexdigest() == vector["content_sha256"]
    assert metadata == vector["metadata"]


@pytest.mark.parametrize(("vector", "key"), GOOD, ids=_ids(GOOD))
def test_good_vector_opens_with_the_spec_decoder(vector, key):
    content, metadata = spec_decode(_data(vector), _key(key))
    assert len(content) == vector["content_size"]
    assert hashlib.sha256(content).hexdigest() == vector["content_sha256"]
    assert metadata == vector["metadata"]


@pytest.mark.parametrize(("vector", "key"), GOOD, ids=_ids(GOOD))
def test_good_vector_size_matches_the_spec_formula(vector, key):
    data = _data(vector)
    count = data[9]
    meta = json.dumps(vector["metadata"], ensure_ascii=False, sort_keys=True).encode()
    plain = vector["content_size"] + len(meta) + 4
    assert len(data) == 34 + 96 * count + plain + 17 * -(-plain // 65536)


@pytest.mark.parametrize(("vector", "key"), BAD, ids=_ids(BAD))
def test_bad_vector_is_refused_by_intake(vector, key):
    with pytest.raises(envelope.EnvelopeError) as info:
        envelope.open_envelope(io.BytesIO(_data(vector)), PrivateKey(_key(key)))
    assert str(info.value).startswith(vector["error"])


@pytest.mark.parametrize(("vector", "key"), BAD, ids=_ids(BAD))
def test_bad_vector_is_refused_by_the_spec_decoder(vector, key):
    with pytest.raises(Refused) as info:
        spec_decode(_data(vector), _key(key))
    assert str(info.value).startswith(vector["error"])


@pytest.mark.parametrize(("vector", "key"), BAD, ids=_ids(BAD))
def test_bad_vector_is_refused_when_streamed(vector, key):
    """A refused envelope fails loudly when read as a stream too, not only whole."""
    data = _data(vector)
    with pytest.raises(envelope.EnvelopeError):
        reader = envelope.EnvelopeReader(io.BytesIO(data), PrivateKey(_key(key)))
        for _ in reader.content():
            pass


# -- the document itself ----------------------------------------------------------

def test_worked_example_matches_the_vector():
    text = SPEC.read_text()
    block = text.split("## Worked example", 1)[1].split("```", 2)[1]
    dump = bytearray()
    for line in block.splitlines():
        m = re.match(r"^([0-9a-f]{4})  ((?:[0-9a-f]{2} ?)+)", line)
        if m:
            assert int(m.group(1), 16) == len(dump)
            dump += bytes.fromhex(m.group(2))
    small = (VECTORS / "small.env").read_bytes()
    assert len(dump) == 130
    assert bytes(dump) == small[:130]
    assert KEYS["alice"]["private_key"] in text
    assert KEYS["alice"]["public_key"] in text
    assert f"{len(small)}-byte envelope" in text


def test_spec_constants_match_the_code():
    text = SPEC.read_text()
    assert bytes.fromhex("494e54414b450045") == envelope.MAGIC
    assert "`49 4e 54 41 4b 45 00 45`" in text
    assert envelope.VERSION == 1 and envelope.CHUNK == 65536
    assert envelope.STANZA_BYTES == 96 and envelope.MAX_METADATA == 65532
    assert envelope.MAX_RECIPIENTS == 255
    for tag, value in (("TAG_MESSAGE", sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE),
                       ("TAG_FINAL", sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL)):
        assert f"`{tag}` = `0x{value:02x}`" in text


def _documented_metadata_members() -> set[str]:
    section = SPEC.read_text().split("## Metadata", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.0-9]+)` \|", section, re.MULTILINE))


def test_spec_documents_every_metadata_member_of_the_vectors():
    documented = _documented_metadata_members()
    for vector, _ in GOOD:
        meta = vector["metadata"]
        members = set(meta) | {f"{k}.{sub}" for k, v in meta.items() if isinstance(v, dict)
                               for sub in v}
        assert members <= documented, members - documented


def test_spec_documents_every_metadata_member_the_server_writes(tmp_path):
    """Seals a real submission through intake.server.receive and reads it back."""
    from support import FAST_KDF

    from intake.format import teamkeys
    from intake.server.config import load_config
    from intake.server.receive import Upload, receive
    from intake.server.service import prepare
    from intake.server.upload_spool import UploadSpool

    keys = tmp_path / "keys"
    _, key_file = teamkeys.generate("team", tmp_path / "private", b"correct horse battery",
                                    FAST_KDF)
    keys.mkdir()
    (keys / "team.pub").write_bytes((tmp_path / "private" / "team.pub").read_bytes())
    config = load_config(env={}, data_dir=tmp_path / "data", keys_dir=keys,
                         kdf_opslimit=1, kdf_memlimit=8192)
    intake = prepare(config)
    try:
        spool = UploadSpool(intake.store, intake.recipients)
        spool.write(bytes(range(256)) * 4)  # a type no sanitizer claims
        # Kept as received only because the witness asked for originals.
        receive(intake, "I saw it.", [Upload("readings.bin", spool)], keep_originals=True)
        spool.close()
    finally:
        intake.close()
    private = teamkeys.load_private_key(key_file, b"correct horse battery")
    documented = _documented_metadata_members()
    kinds = set()
    for path in config.store_dir.glob("*.env"):
        with open(path, "rb") as f:
            _, meta = envelope.open_envelope(f, private)
        kinds.add(meta["kind"])
        members = set(meta) | {f"{k}.{sub}" for k, v in meta.items() if isinstance(v, dict)
                               for sub in v}
        assert members <= documented, members - documented
    assert kinds == {"testimony", "file"}
