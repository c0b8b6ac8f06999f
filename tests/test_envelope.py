"""Round-trip and refusal properties of the envelope, the encrypted spool, and
the team key files."""

from __future__ import annotations

import hashlib
import io
import json
import stat

import pytest
from nacl import pwhash
from nacl.public import PrivateKey
from support import FAST_KDF

from intake.format import secretstream as ss
from intake.format import teamkeys
from intake.format.envelope import (
    CHUNK,
    MAX_METADATA,
    MAX_RECIPIENTS,
    EnvelopeError,
    EnvelopeReader,
    EnvelopeWriter,
    Recipient,
    open_envelope,
    seal,
)
from intake.format.teamkeys import KdfCost, KeyFileError

META = {"format": "intake-item/1", "kind": "file", "item_id": "0" * 32}
META_BYTES = len(json.dumps(META, ensure_ascii=False, sort_keys=True).encode())
TRAILER = META_BYTES + 4  # metadata + its u32 length
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate()


def pattern(n: int) -> bytes:
    return (hashlib.sha256(str(n).encode()).digest() * (n // 32 + 1))[:n]


def sealed(content: bytes, keys, metadata=META, pieces=None) -> bytes:
    out = io.BytesIO()
    seal(out, [Recipient(k.public_key) for k in keys], pieces or [content], metadata)
    return out.getvalue()


def frames(data: bytes, count: int = 1) -> tuple[bytes, list[bytes]]:
    """Splits an envelope into its header and its sealed chunks."""
    head = 34 + 96 * count
    body = data[head:]
    step = CHUNK + ss.ABYTES
    return data[:head], [body[i:i + step] for i in range(0, len(body), step)]


# -- envelope: round trips ---------------------------------------------------------

BOUNDARY_SIZES = sorted({0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK,
                         2 * CHUNK + 1, CHUNK - TRAILER - 1, CHUNK - TRAILER,
                         CHUNK - TRAILER + 1, 2 * CHUNK - TRAILER, 2 * CHUNK - TRAILER + 1})


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_round_trip_around_chunk_boundaries(key, size):
    content = pattern(size)
    data = sealed(content, [key])
    assert open_envelope(io.BytesIO(data), key) == (content, META)
    plain = size + TRAILER
    chunks = -(-plain // CHUNK)
    assert len(data) == 34 + 96 + plain + ss.ABYTES * chunks
    _, sealed_chunks = frames(data)
    assert len(sealed_chunks) == chunks
    last = len(sealed_chunks[-1]) - ss.ABYTES
    assert 1 <= last <= CHUNK  # the FINAL chunk is never empty


def test_streaming_writer_with_odd_write_sizes(key):
    sizes = [1, 7, 0, CHUNK - 1, 3, CHUNK + 1, 100_003, 13, 2 * CHUNK]
    pieces = [pattern(n) for n in sizes]
    out = io.BytesIO()
    writer = EnvelopeWriter(out, [Recipient(key.public_key)])
    for piece in pieces:
        writer.write(piece)
    writer.close(META)
    assert writer.size == sum(sizes)
    content, meta = open_envelope(io.BytesIO(out.getvalue()), key)
    assert content == b"".join(pieces) and meta == META


def test_streaming_reader_holds_the_last_piece_until_the_envelope_is_whole(key):
    content = pattern(3 * CHUNK + 5)
    reader = EnvelopeReader(io.BytesIO(sealed(content, [key])), key)
    got, verified = bytearray(), []
    for piece in reader.content():
        verified.append(reader.metadata is not None)
        got += piece
    assert bytes(got) == content and reader.metadata == META
    assert verified[-1] and not any(verified[:-1]) and len(verified) == 3


def test_several_recipients_each_open_it_alone():
    keys = [PrivateKey.generate() for _ in range(3)]
    data = sealed(b"to the whole team", keys)
    assert data[9] == 3
    for k in keys:
        assert open_envelope(io.BytesIO(data), k) == (b"to the whole team", META)
    with pytest.raises(EnvelopeError, match="^not sealed to this key"):
        open_envelope(io.BytesIO(data), PrivateKey.generate())


def test_recipient_count_limits(key):
    many = [key] + [PrivateKey.generate() for _ in range(MAX_RECIPIENTS - 1)]
    data = sealed(b"x", many)
    assert data[9] == 255
    assert open_envelope(io.BytesIO(data), many[-1])[0] == b"x"
    with pytest.raises(ValueError, match="between 1 and 255"):
        sealed(b"x", many + [key])
    with pytest.raises(ValueError, match="between 1 and 255"):
        sealed(b"x", [])


def test_metadata_size_limit_is_enforced_in_bytes(key):
    base = len(json.dumps({"pad": ""}).encode())
    largest = {"pad": "x" * (MAX_METADATA - base)}
    data = sealed(b"", [key], metadata=largest)
    assert open_envelope(io.BytesIO(data), key) == (b"", largest)
    with pytest.raises(ValueError, match="larger than one chunk"):
        sealed(b"", [key], metadata={"pad": "x" * (MAX_METADATA - base + 1)})
    # Cyrillic letters take two bytes each: the limit counts bytes, not characters.
    with pytest.raises(ValueError, match="larger than one chunk"):
        sealed(b"", [key], metadata={"pad": "я" * ((MAX_METADATA - base) // 2 + 1)})


def test_every_envelope_has_its_own_file_key(key):
    a, b = sealed(b"same", [key]), sealed(b"same", [key])
    assert len(a) == len(b)
    assert a[10:26] == b[10:26]  # the same fingerprint
    assert a[26:106] != b[26:106] and a[106:130] != b[106:130] and a[130:] != b[130:]


# -- envelope: refusals made on the fly ----------------------------------------------

def test_any_changed_header_byte_is_refused(key):
    data = sealed(b"short", [key])
    for offset in range(130):
        broken = bytearray(data)
        broken[offset] ^= 0x80
        with pytest.raises(EnvelopeError):
            open_envelope(io.BytesIO(bytes(broken)), key)


def test_a_changed_stanza_of_another_recipient_breaks_the_header_binding(key):
    other = PrivateKey.generate()
    data = bytearray(sealed(b"short", [key, other]))
    data[106 + 16 + 20] ^= 1  # inside the second stanza's sealed key
    with pytest.raises(EnvelopeError, match="^damaged"):
        open_envelope(io.BytesIO(bytes(data)), key)
    with pytest.raises(EnvelopeError, match="^not sealed to this key"):
        open_envelope(io.BytesIO(bytes(data)), other)


@pytest.mark.parametrize("change", ["swap_2_3", "drop_2", "repeat_2", "drop_final"])
def test_reordered_or_dropped_chunks_are_refused(key, change):
    head, chunks = frames(sealed(pattern(3 * CHUNK + 1), [key]))
    assert len(chunks) == 4
    c1, c2, c3, c4 = chunks
    body = {"swap_2_3": [c1, c3, c2, c4], "drop_2": [c1, c3, c4],
            "repeat_2": [c1, c2, c2, c3, c4], "drop_final": [c1, c2, c3]}[change]
    expected = "^truncated" if change == "drop_final" else "^damaged"
    with pytest.raises(EnvelopeError, match=expected):
        open_envelope(io.BytesIO(head + b"".join(body)), key)


@pytest.mark.parametrize("cut", [1, 9, 60, 129, 130, 131, 130 + CHUNK + ss.ABYTES, -1])
def test_every_truncation_is_refused(key, cut):
    data = sealed(pattern(CHUNK + 100), [key])
    with pytest.raises(EnvelopeError):
        open_envelope(io.BytesIO(data[:cut]), key)


# -- team keys ---------------------------------------------------------------------------

def test_generate_and_load(tmp_path):
    pub, key_file = teamkeys.generate("team", tmp_path / "k", PASSPHRASE, FAST_KDF)
    assert (pub.name, key_file.name) == ("team.pub", "team.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    doc = json.loads(pub.read_text())
    assert doc["format"] == "intake-public-key" and doc["name"] == "team"
    recipient = teamkeys.load_public_key(pub)
    assert doc["fingerprint"] == teamkeys.format_fingerprint(recipient.public_key)
    assert len(doc["fingerprint"]) == 39 and doc["fingerprint"].count(":") == 7
    private = teamkeys.load_private_key(key_file, PASSPHRASE)
    assert bytes(private.public_key) == bytes(recipient.public_key)
    sealed_doc = json.loads(key_file.read_text())
    assert sealed_doc["kdf"]["algorithm"] == "argon2id13"
    assert len(teamkeys.unb64(sealed_doc["sealed_private_key"])) == 72
    assert bytes(private).hex() not in key_file.read_text()
    data = sealed(b"for the team", [private])
    assert open_envelope(io.BytesIO(data), private)[0] == b"for the team"


def test_load_uses_the_cost_written_in_the_file(tmp_path):
    """The key file names its own Argon2id cost: loading needs no setting, and
    a file written at another cost opens with the same call."""
    costly = KdfCost(pwhash.argon2id.OPSLIMIT_MIN + 1, 2 * pwhash.argon2id.MEMLIMIT_MIN)
    _, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, costly)
    written = json.loads(key_file.read_text())["kdf"]
    assert (written["opslimit"], written["memlimit"]) == (costly.opslimit, costly.memlimit)
    private = teamkeys.load_private_key(key_file, PASSPHRASE)
    assert bytes(private.public_key) == teamkeys.unb64(json.loads(key_file.read_text())
                                                       ["public_key"])
    doc = json.loads(key_file.read_text())
    doc["kdf"]["opslimit"] = pwhash.argon2id.OPSLIMIT_MIN  # the cost is part of the key
    key_file.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        teamkeys.load_private_key(key_file, PASSPHRASE)


def test_wrong_passphrase(tmp_path):
    _, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    with pytest.raises(KeyFileError, match="team.key: wrong passphrase"):
        teamkeys.load_private_key(key_file, b"correct horse battery stapler")


def test_generate_refuses_to_overwrite(tmp_path):
    pub, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    before = (pub.read_bytes(), key_file.read_bytes())
    with pytest.raises(KeyFileError, match="exists already; not overwriting a key"):
        teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    assert (pub.read_bytes(), key_file.read_bytes()) == before
    pub.unlink()  # a lone private key is protected too
    with pytest.raises(KeyFileError, match="exists already"):
        teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)


@pytest.mark.parametrize(("name", "passphrase", "message"), [
    ("team", b"short", "at least 12 characters"),
    ("../team", PASSPHRASE, "plain word"),
    (".hidden", PASSPHRASE, "plain word"),
    ("", PASSPHRASE, "plain word"),
])
def test_generate_refuses_bad_names_and_passphrases(tmp_path, name, passphrase, message):
    with pytest.raises(KeyFileError, match=message):
        teamkeys.generate(name, tmp_path / "k", passphrase, FAST_KDF)
    assert not (tmp_path / "k").exists() or list((tmp_path / "k").iterdir()) == []


def test_malformed_key_files(tmp_path):
    pub, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    junk = tmp_path / "junk.pub"
    junk.write_text("not json")
    with pytest.raises(KeyFileError, match="junk.pub: not an Intake key file"):
        teamkeys.load_public_key(junk)
    with pytest.raises(KeyFileError, match="not an Intake public key"):
        teamkeys.load_public_key(key_file)
    with pytest.raises(KeyFileError, match="not an Intake private key"):
        teamkeys.load_private_key(pub, PASSPHRASE)
    doc = json.loads(pub.read_text())
    doc["public_key"] = teamkeys.b64(b"\x01" * 31)
    short = tmp_path / "short.pub"
    short.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="short.pub: the public key is malformed"):
        teamkeys.load_public_key(short)
    doc = json.loads(key_file.read_text())
    doc["public_key"] = teamkeys.b64(bytes(PrivateKey.generate().public_key))
    other = tmp_path / "other.key"
    other.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="does not match its public key"):
        teamkeys.load_private_key(other, PASSPHRASE)


def _edit(doc: dict, where: str, value) -> None:
    *path, last = where.split(".")
    for part in path:
        doc = doc[part]
    if value is _GONE:
        del doc[last]
    else:
        doc[last] = value


_GONE = object()


@pytest.mark.parametrize(("field", "value"), [
    ("kdf.memlimit", 2 ** 45),
    ("kdf.memlimit", -1),
    ("kdf.memlimit", pwhash.argon2id.MEMLIMIT_MIN - 1),
    ("kdf.memlimit", str(pwhash.argon2id.MEMLIMIT_MIN)),
    ("kdf.memlimit", float(pwhash.argon2id.MEMLIMIT_MIN)),
    ("kdf.memlimit", _GONE),
    ("kdf.opslimit", 0),
    ("kdf.opslimit", 2 ** 40),
    ("kdf.opslimit", True),
    ("kdf.opslimit", None),
    ("kdf.algorithm", "scrypt"),
    ("kdf.algorithm", "ARGON2ID13"),
    ("kdf.salt", teamkeys.b64(b"s" * 8)),
    ("kdf.salt", teamkeys.b64(b"s" * 32)),
    ("kdf.salt", "not base64!"),
    ("kdf.salt", "c2FsdHNhbHRzYWx0c2FsdA"),  # 16 bytes, its padding left off
    ("kdf.salt", 12),
    ("kdf", None),
    ("kdf", _GONE),
    ("sealed_private_key", teamkeys.b64(b"k" * 40)),
    ("sealed_private_key", _GONE),
    ("public_key", teamkeys.b64(b"p" * 31)),
    ("version", 2),
    ("version", True),
])
def test_a_damaged_key_file_is_not_a_wrong_passphrase(tmp_path, field, value):
    """With the right passphrase, a key file edited out of what keygen writes
    used to say "wrong passphrase" (or, for "scrypt" or a string memlimit, to
    be used as it was): each field is checked first and named."""
    _, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    doc = json.loads(key_file.read_text())
    _edit(doc, field, value)
    key_file.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError) as info:
        teamkeys.load_private_key(key_file, PASSPHRASE)
    assert str(info.value).startswith(f"team.key: the key file is damaged: {field} (")
    assert "passphrase" not in str(info.value) and "\n" not in str(info.value)


def test_base64_in_a_key_file_is_strict(tmp_path):
    """Only the one encoding b64() writes: not the same bytes spelled with
    non-zero padding bits."""
    _, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    doc = json.loads(key_file.read_text())
    salt = doc["kdf"]["salt"]  # 16 bytes: 22 characters, "==", 4 bits of padding
    doc["kdf"]["salt"] = salt[:21] + chr(ord(salt[21]) + 1) + "=="
    assert teamkeys.unb64(doc["kdf"]["salt"]) == teamkeys.unb64(salt)
    key_file.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="damaged: kdf.salt"):
        teamkeys.load_private_key(key_file, PASSPHRASE)


def test_a_well_formed_key_file_that_does_not_open_is_a_wrong_passphrase(tmp_path):
    _, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    doc = json.loads(key_file.read_text())
    sealed = bytearray(teamkeys.unb64(doc["sealed_private_key"]))
    sealed[-1] ^= 1
    doc["sealed_private_key"] = teamkeys.b64(bytes(sealed))
    key_file.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="^team.key: wrong passphrase$"):
        teamkeys.load_private_key(key_file, PASSPHRASE)


def test_a_key_derivation_that_fails_is_not_a_wrong_passphrase(tmp_path, monkeypatch):
    """A cost within libsodium's bounds may still be more memory than this
    machine gives: that is said as such."""
    from nacl.exceptions import RuntimeError as NaclRuntimeError

    _, key_file = teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)

    def fails(*args):
        raise NaclRuntimeError("Unexpected failure in key derivation")

    monkeypatch.setattr(teamkeys, "_derive", fails)
    with pytest.raises(KeyFileError, match="could not be opened: Argon2id failed") as info:
        teamkeys.load_private_key(key_file, PASSPHRASE)
    assert "passphrase" not in str(info.value)


def test_a_key_file_nested_too_deeply_is_not_a_key_file(tmp_path):
    deep = tmp_path / "deep.key"
    deep.write_text("[" * 100_000)
    with pytest.raises(KeyFileError, match="deep.key: not an Intake key file"):
        teamkeys.load_private_key(deep, PASSPHRASE)


def test_key_folder_loads_every_public_key(tmp_path):
    made = tmp_path / "made"
    folder = tmp_path / "keys"
    folder.mkdir()
    for name in ("old-team", "new-team"):
        pub, _ = teamkeys.generate(name, made, PASSPHRASE, FAST_KDF)
        (folder / pub.name).write_bytes(pub.read_bytes())
    (folder / "README.txt").write_text("public keys only")
    recipients = teamkeys.load_key_folder(folder)
    assert len(recipients) == 2
    expected = {bytes(teamkeys.load_public_key(made / f"{n}.pub").public_key)
                for n in ("old-team", "new-team")}
    assert {bytes(r.public_key) for r in recipients} == expected


def test_key_folder_refuses_a_private_key(tmp_path):
    teamkeys.generate("team", tmp_path, PASSPHRASE, FAST_KDF)
    with pytest.raises(KeyFileError) as info:
        teamkeys.load_key_folder(tmp_path)
    message = str(info.value)
    assert "private key found in the keys folder" in message and "team.key" in message
    assert "air-gapped workstation only" in message and "rotate the key" in message


def test_key_folder_refuses_a_private_key_under_another_name(tmp_path):
    made = tmp_path / "made"
    _, key_file = teamkeys.generate("team", made, PASSPHRASE, FAST_KDF)
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "team.pub").write_bytes(key_file.read_bytes())
    with pytest.raises(KeyFileError, match="private key found .*team.pub"):
        teamkeys.load_key_folder(folder)


def test_key_folder_missing_or_empty(tmp_path):
    with pytest.raises(KeyFileError, match="keys folder .* does not exist"):
        teamkeys.load_key_folder(tmp_path / "nowhere")
    with pytest.raises(KeyFileError, match=r"no public key \(\*\.pub\) .*intake keygen"):
        teamkeys.load_key_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(KeyFileError, match="no public key"):
        teamkeys.load_key_folder(tmp_path)


def test_push_all_seals_chunks_as_push_does():
    """The batch path calls libsodium directly; each chunk opens like push()'s,
    the additional data binds the first only, and the stream goes on after it."""
    key = ss.new_key()
    pusher = ss.Pusher(key)
    data = pattern(3 * CHUNK)
    pieces = pusher.push_all(memoryview(data), CHUNK, ad=b"header")
    last = pusher.push(b"end", final=True)
    step = CHUNK + ss.ABYTES
    assert [len(p) for p in pieces] == [step] * 3 and all(type(p) is bytes for p in pieces)
    sealed_chunks = b"".join(pieces)
    puller = ss.Puller(key, pusher.header)
    opened = [puller.pull(bytes(sealed_chunks[i:i + step]), ad=b"header" if i == 0 else None)
              for i in range(0, len(sealed_chunks), step)]
    assert b"".join(p for p, _ in opened) == data and not any(f for _, f in opened)
    assert puller.pull(last) == (b"end", True)
    with pytest.raises(ss.StreamError):
        ss.Puller(key, pusher.header).pull(bytes(sealed_chunks[:step]), ad=b"other")
    with pytest.raises(ValueError):
        pusher.push_all(b"x" * (CHUNK + 1), CHUNK)


def test_pull_all_opens_what_push_all_sealed_and_refuses_changes():
    key = ss.new_key()
    pusher = ss.Pusher(key)
    data = pattern(4 * CHUNK)
    sealed_chunks = b"".join(pusher.push_all(data, CHUNK, ad=b"header"))
    assert ss.Puller(key, pusher.header).pull_all(sealed_chunks, CHUNK, ad=b"header") == data
    broken = bytearray(sealed_chunks)
    broken[CHUNK + ss.ABYTES + 5] ^= 1  # in the second chunk
    with pytest.raises(ss.StreamError):
        ss.Puller(key, pusher.header).pull_all(broken, CHUNK, ad=b"header")
    with pytest.raises(ss.StreamError):
        ss.Puller(key, pusher.header).pull_all(sealed_chunks[:-1], CHUNK, ad=b"header")
    final = ss.Pusher(key)
    with pytest.raises(ss.UnknownTag):
        ss.Puller(key, final.header).pull_all(final.push(data[:CHUNK], final=True), CHUNK)


def test_generate_never_writes_through_a_link_planted_meanwhile(tmp_path, monkeypatch):
    """NAME.pub is created exclusively, without following a link, even when the
    link appears after the names were checked; the private half written just
    before is removed again, and nothing is written outside the folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    document = teamkeys.public_key_document

    def plant_then_write(name, public_key):
        (out / "team.pub").symlink_to(elsewhere / "planted.pub")
        return document(name, public_key)

    monkeypatch.setattr(teamkeys, "public_key_document", plant_then_write)
    with pytest.raises(KeyFileError, match=r"team.pub exists already; .*team.key removed again"):
        teamkeys.generate("team", out, PASSPHRASE, FAST_KDF)
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in out.iterdir()] == ["team.pub"] and (out / "team.pub").is_symlink()


def test_generate_refuses_a_key_file_link_planted_meanwhile(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    document = teamkeys.private_key_document

    def plant_then_write(*args):
        (out / "team.key").symlink_to(elsewhere / "planted.key")
        return document(*args)

    monkeypatch.setattr(teamkeys, "private_key_document", plant_then_write)
    with pytest.raises(KeyFileError, match="team.key exists already; not overwriting a key"):
        teamkeys.generate("team", out, PASSPHRASE, FAST_KDF)
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in out.iterdir()] == ["team.key"]
